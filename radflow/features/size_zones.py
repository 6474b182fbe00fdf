"""pyradiomics' grey level size zone matrix (GLSZM) without its dense intermediate, with pyradiomics' values.

pyradiomics' C (cMatrices.calculate_glszm) returns a matrix of every grey level by every zone size from 1 to the
largest zone, which its class then sums and thins to the sizes that occur. For a large homogeneous ROI the largest
zone has millions of voxels: a body outline of 19 million voxels (1 mm) took 49 s and 15.6 GB in that class alone
(BENCHMARKS.md), where every other class needed under 3 GB. Here the zones are found by SimpleITK's
ScalarConnectedComponentImageFilter (voxels of the same grey level, 26-connected in 3D as pyradiomics' region
growing), counted, and the matrix is built with the occurring sizes only: the matrix and coefficients pyradiomics'
class ends up with, value for value (counts, sums of counts, counts times sizes: whole numbers, exact in double
precision). The features are pyradiomics' own formulas on them; the five that sum over the whole matrix (ZoneEntropy
and the four area-grey-level emphases) can add in another order, because numpy lays out pyradiomics' thinned matrix
in memory by its original width: equal to 1e-12 relative (measured: 2e-16), every other GLSZM feature bit for bit.
Voxel-based extraction, force2D and images that are not 3D go to pyradiomics. While `enabled` (the default in
radflow's extractions; a settings file's `radflow: {fast_size_zones: false}` keeps pyradiomics' own).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from radflow.features.switch import Switch

_STATE = {"enabled": False}  # pyradiomics' own outside an `enabled(True)` block
_ORIGINAL = {}


def zones(binned: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grey level, size) of every zone of the ROI: the 26-connected sets of voxels with one grey level."""
    values = np.where(mask, binned, 0)
    small = np.uint16 if values.max() < 2**16 else np.uint32
    image = sitk.GetImageFromArray(values.astype(small))
    components = sitk.ScalarConnectedComponent(image, 0.0, True)  # (kept: the view below reads its buffer)
    labels = sitk.GetArrayViewFromImage(components).ravel()
    sizes = np.bincount(labels)
    grey = np.zeros(len(sizes), dtype=values.dtype)
    grey[labels] = values.ravel()  # one grey level per zone: every voxel of a zone writes the same
    keep = grey > 0  # (voxels outside the ROI are 0, zones of their own; the ROI's grey levels start at 1)
    return grey[keep], sizes[keep]


def size_zone_counts(binned: np.ndarray, mask: np.ndarray, ng: int) -> tuple[np.ndarray, np.ndarray]:
    """(counts, sizes): a C-ordered 1 x ng x len(sizes) matrix of how many zones of grey level i + 1 have size
    sizes[j], for the sizes that occur (ascending): pyradiomics' matrix without its columns of zeros."""
    grey, size = zones(binned, mask)
    present = np.unique(size)
    cols = np.searchsorted(present, size)
    counts = np.bincount((grey.astype(np.int64) - 1) * len(present) + cols, minlength=ng * len(present))
    return counts.astype(np.float64).reshape(1, ng, len(present)), present.astype(np.float64)


def _init_calculation(self, voxelCoordinates=None):  # noqa: N803 (pyradiomics' signature)
    """RadiomicsGLSZM._initCalculation: pyradiomics' own steps from its matrix on (RadiomicsGLSZM._calculateMatrix
    and _calculateCoefficients, the same numpy operations in the same order), with the zone sizes that occur in place
    of 1 ... largest zone."""
    if (
        not _STATE["enabled"]
        or self.voxelBased
        or self.settings.get("force2D", False)
        or self.imageArray.ndim != 3
        or np.asarray(self.imageArray).dtype.kind not in "iu"
    ):
        return _ORIGINAL["_initCalculation"](self, voxelCoordinates)
    ng = self.coefficients["Ng"]
    P_glszm, jvector = size_zone_counts(self.imageArray, self.maskArray, ng)
    gray_levels = self.coefficients["grayLevels"]
    empty_gray_levels = np.array(list(set(range(1, ng + 1)) - set(gray_levels)), dtype=int)
    P_glszm = np.delete(P_glszm, empty_gray_levels - 1, 1)
    ps = np.sum(P_glszm, 1)
    pg = np.sum(P_glszm, 2)
    Nz = np.sum(P_glszm, (1, 2))
    Nz[Nz == 0] = 1
    Np = np.sum(ps * jvector[None, :], 1)
    Np[Np == 0] = 1
    empty_zone_sizes = np.where(np.sum(ps, 0) == 0)  # none here (pyradiomics deletes its columns of zeros here)
    self.P_glszm = np.delete(P_glszm, empty_zone_sizes, 2)
    jvector = np.delete(jvector, empty_zone_sizes)
    ps = np.delete(ps, empty_zone_sizes, 1)
    self.coefficients.update(Np=Np, Nz=Nz, ps=ps, pg=pg, ivector=gray_levels.astype(float), jvector=jvector)


def _install() -> None:
    from radiomics import glszm

    if _ORIGINAL:
        return
    _ORIGINAL["_initCalculation"] = glszm.RadiomicsGLSZM._initCalculation
    glszm.RadiomicsGLSZM._initCalculation = _init_calculation


class enabled(Switch):
    """`with enabled(True):` pyradiomics' GLSZM class gets its matrix from here; `enabled(False)`: from its own C
    (settings `radflow: {fast_size_zones: false}`)."""

    def __init__(self, on: bool = True):
        _install()
        super().__init__(_STATE, on)
