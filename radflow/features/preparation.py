"""pyradiomics' preparation of an ROI without its repeated and quadratic-in-Python steps, with pyradiomics' values.

Measured on the real CTs of ../shared/reference/real (benchmarks/features_profile.py, cProfile): a third of an
extraction went to steps of pyradiomics' preparation that compute nothing new. While `enabled` (the default; a
settings file's `radflow: {fast_preparation: false}` keeps pyradiomics' own), they are replaced by steps that give
the same results bit for bit and raise the same errors:

- imageoperations.getMask sorts every voxel of the whole mask (numpy.unique) to learn whether the label is in it:
  0.7 s per ROI on an image radflow does not crop. Here `(mask == label).any()`; when the label is absent,
  pyradiomics' own function runs and raises its own message.
- imageoperations.checkMask runs SimpleITK's LabelStatisticsImageFilter (intensity statistics of the whole image per
  label) for a bounding box and a voxel count, twice per ROI (before and after resegmentation). For a mask on the
  image's own grid they are read from the mask; pyradiomics' checks and messages follow unchanged.
- imageoperations.getBinEdges (fixed bin width) takes the ROI's minimum and maximum with Python's builtin min() and
  max() over a numpy array, one Python comparison per voxel (0.04 s per million voxels, six times per ROI). Here
  pyradiomics' function is given the two values numpy finds (the same elements; an array holding NaN, where the
  builtins' answer depends on the order, goes to pyradiomics whole). The IBSI mode's bin start (ibsi_mode) is left
  to its own hook.
- RadiomicsFeaturesBase._applyBinning: firstorder and the five texture classes each discretise the same ROI again.
  Within one `with enabled():` block (one extract_roi), the first class's discretised image is kept, read-only, and
  the others get it too, once their ROI's intensities are checked equal to those it was computed from (image, mask,
  label and binning settings the same).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from radflow.features.switch import Switch

_STATE = {"enabled": False, "cache": None}  # pyradiomics' own outside an `enabled(True)` block
_ORIGINAL = {}


def _get_mask(mask, **kwargs):
    """imageoperations.getMask with its label check by comparison instead of sorting the mask."""
    label = kwargs.get("label", 1)
    if not _STATE["enabled"] or not label or "vector" in mask.GetPixelIDTypeAsString().lower():
        return _ORIGINAL["getMask"](mask, **kwargs)
    cast = sitk.Cast(mask, sitk.sitkUInt32)
    if (sitk.GetArrayViewFromImage(cast) == label).any():
        return cast
    return _ORIGINAL["getMask"](mask, **kwargs)  # pyradiomics says which labels there are


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (
        a.GetDimension() == b.GetDimension() == 3
        and a.GetSize() == b.GetSize()
        and a.GetOrigin() == b.GetOrigin()
        and a.GetSpacing() == b.GetSpacing()
        and a.GetDirection() == b.GetDirection()
    )


def _check_mask(imageNode, maskNode, **kwargs):  # noqa: N803 (pyradiomics' signature)
    """imageoperations.checkMask for a mask on the image's own grid (the same size, origin, spacing and direction,
    exactly): the label's bounding box and voxel count from the mask alone, then pyradiomics' checks and messages.
    SimpleITK's LabelStatisticsImageFilter, which pyradiomics runs for them, also computes intensity statistics of
    the whole image per label (0.05 s on a million voxels, twice per ROI). Anything else goes to pyradiomics."""
    from radflow.dicom.geometry import bounding_box

    original = _ORIGINAL["checkMask"]
    label = int(kwargs.get("label", 1))
    if not _STATE["enabled"] or not _same_grid(imageNode, maskNode) or "vector" in maskNode.GetPixelIDTypeAsString():
        return original(imageNode, maskNode, **kwargs)
    inside = sitk.GetArrayViewFromImage(maskNode) == label
    count = int(inside.sum())
    if not count:
        return original(imageNode, maskNode, **kwargs)  # pyradiomics says the label is not there
    first, size = (box := bounding_box(inside))[:3], box[3:]
    bounds = np.array([v for a, n in zip(first, size) for v in (a, a + n - 1)])  # (L_x, U_x, L_y, U_y, L_z, U_z)
    ndims = np.sum((bounds[1::2] - bounds[0::2] + 1) > 1)
    min_dims, min_size = kwargs.get("minimumROIDimensions", 2), kwargs.get("minimumROISize", None)
    if ndims == 0:
        raise ValueError("mask only contains 1 segmented voxel! Cannot extract features for a single voxel.")
    if ndims < min_dims:
        raise ValueError(
            "mask has too few dimensions (number of dimensions %d, minimum required %d)" % (ndims, min_dims)
        )
    if min_size is not None and count <= min_size:
        raise ValueError("Size of the ROI is too small (minimum size: %g, ROI size: %g" % (min_size, count))
    return bounds, None


def _get_bin_edges(parameterValues, **kwargs):  # noqa: N803 (pyradiomics' signature)
    """imageoperations.getBinEdges with the fixed bin width's minimum and maximum found by numpy."""
    from radflow.features.ibsi_mode import BIN_START

    original = _ORIGINAL["getBinEdges"]
    if not _STATE["enabled"] or kwargs.get("binCount") is not None or kwargs.get(BIN_START) is not None:
        return original(parameterValues, **kwargs)
    values = np.asarray(parameterValues)
    if values.ndim != 1 or not values.size or values.dtype.kind not in "iuf" or np.isnan(values.min()):
        return original(parameterValues, **kwargs)
    # (with a fixed bin width pyradiomics reads nothing of the values but min() and max())
    return original(np.array([values.min(), values.max()], dtype=values.dtype), **kwargs)


class _Binned:
    """One discretised ROI: what _applyBinning returned and set, and what it was computed from."""

    def __init__(self, keep, inside: np.ndarray, binned: np.ndarray, coefficients: dict):
        self.keep = keep  # the image and mask objects, so that their ids stay theirs while cached
        self.inside = inside
        self.binned = binned
        self.gray_levels = coefficients["grayLevels"].copy()
        self.ng = coefficients["Ng"]


def _apply_binning(self, matrix):
    """RadiomicsFeaturesBase._applyBinning, done once per image, mask, label and binning settings."""
    from radflow.features.ibsi_mode import BIN_START

    original = _ORIGINAL["_applyBinning"]
    cache = _STATE["cache"]
    if cache is None or not _STATE["enabled"] or self.voxelBased:
        return original(self, matrix)
    s = self.settings
    key = (id(self.inputImage), id(self.inputMask), self.label, s.get("binWidth"), s.get("binCount"), s.get(BIN_START))
    inside = matrix[self.maskArray]
    hit = cache.get(key)
    if hit is not None and hit.binned.shape == matrix.shape and np.array_equal(hit.inside, inside):
        self.coefficients["grayLevels"] = hit.gray_levels.copy()
        self.coefficients["Ng"] = hit.ng
        return hit.binned
    binned = original(self, matrix)
    # one array for every class, read-only: a class that wrote into it would raise instead of changing another's
    # input (none does; on a body outline the discretised image is 0.75 GB)
    binned.flags.writeable = False
    cache[key] = _Binned((self.inputImage, self.inputMask), inside, binned, self.coefficients)
    return binned


def _install() -> None:
    """Put radflow's steps in pyradiomics' place, once; each defers to the original unless enabled."""
    from radiomics import base, imageoperations

    if _ORIGINAL:
        return
    _ORIGINAL.update(
        checkMask=imageoperations.checkMask,
        getMask=imageoperations.getMask,
        getBinEdges=imageoperations.getBinEdges,
        _applyBinning=base.RadiomicsFeaturesBase._applyBinning,
    )
    imageoperations.getMask = _get_mask
    imageoperations.checkMask = _check_mask
    imageoperations.getBinEdges = _get_bin_edges
    base.RadiomicsFeaturesBase._applyBinning = _apply_binning


class enabled(Switch):
    """`with enabled(True):` one extraction with radflow's preparation steps (the discretisation shared by the
    classes within the block); `enabled(False)`: pyradiomics' own (settings `radflow: {fast_preparation: false}`)."""

    def __init__(self, on: bool = True):
        _install()
        super().__init__(_STATE, on)

    def __enter__(self):
        self.cache_before = _STATE["cache"]
        _STATE["cache"] = {} if self.on else None  # the discretisations of this block's extraction
        return super().__enter__()

    def __exit__(self, *exc):
        _STATE["cache"] = self.cache_before
        return super().__exit__(*exc)
