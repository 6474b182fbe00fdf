"""IBSI-compliant pre-processing before pyradiomics (an `ibsi:` block in a settings file).

What pyradiomics does differently from IBSI-1, and what this mode does instead (../shared/IBSI-NOTES.md):
- the resampling grid is centred on the original grid (pyradiomics anchors it at a corner of the ROI box);
- the image is interpolated with the configured interpolator and rounded when asked; the mask is interpolated
  linearly and thresholded at 0.5 (pyradiomics: nearest neighbour);
- re-segmentation by range, then by 3 sigma on what remains (pyradiomics takes one): both end in one interval,
  which pyradiomics then applies, so shape features keep the un-resegmented (morphological) mask as IBSI wants;
- fixed bin size bins start at the re-segmentation minimum (pyradiomics: at a multiple of the width below the ROI
  minimum), through a narrow hook on pyradiomics' getBinEdges that only acts when radflow asks for it;
- after pyradiomics, IBSI's definitions where pyradiomics' differ, in their own columns: ibsi_stat_kurt (excess
  kurtosis) and ibsi_morph_pca_*_axis (covariance over N - 1). pyradiomics' own columns are left as they are.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

INTERPOLATORS = {"linear": sitk.sitkLinear, "cubic": sitk.sitkBSpline, "nearest": sitk.sitkNearestNeighbor}
BIN_START = "radflowBinStart"  # a setting only radflow's hook reads


def install_bin_start_hook():
    """Let fixed-bin-size discretisation start at a given value (IBSI) when the settings carry BIN_START."""
    from radiomics import imageoperations

    if getattr(imageoperations.getBinEdges, "_radflow", False):
        return
    original = imageoperations.getBinEdges

    def getBinEdges(parameterValues, **kwargs):
        start = kwargs.get(BIN_START)
        width = kwargs.get("binWidth")
        if start is None or kwargs.get("binCount") is not None or not width:
            return original(parameterValues, **kwargs)
        top = float(np.max(parameterValues))
        edges = np.arange(start, top + width, width)
        if len(edges) < 2:
            edges = np.array([start, start + width])
        return edges

    getBinEdges._radflow = True
    imageoperations.getBinEdges = getBinEdges


def centred_grid(image: sitk.Image, spacing) -> sitk.Image:
    """An empty image on IBSI's resampling grid: the new spacing, the same centre. A spacing of 0 or None on an
    axis keeps that axis as it is (in-plane resampling for 2D configurations)."""
    old_size = np.array(image.GetSize(), float)
    old_spacing = np.array(image.GetSpacing(), float)
    new_spacing = np.array([o if (s is None or s == 0) else float(s) for s, o in zip(spacing, old_spacing)])
    new_size = np.where(new_spacing == old_spacing, old_size, np.ceil(old_size * old_spacing / new_spacing))
    # the centre of the grid, in the original's continuous index space, stays where it is
    shift = (old_spacing * (old_size - 1) - new_spacing * (new_size - 1)) / 2.0
    direction = np.array(image.GetDirection()).reshape(3, 3)
    origin = np.array(image.GetOrigin()) + direction @ shift
    ref = sitk.Image([int(v) for v in new_size], sitk.sitkFloat32)
    ref.SetSpacing(tuple(new_spacing))
    ref.SetOrigin(tuple(origin))
    ref.SetDirection(image.GetDirection())
    return ref


def preprocess(image: sitk.Image, mask: sitk.Image, cfg: dict, label: int = 1):
    """(image, mask, pyradiomics setting overrides, audit) after IBSI's interpolation and re-segmentation."""
    audit = {}
    mask = sitk.Cast(sitk.Equal(mask, label), sitk.sitkUInt8) if label != 1 else sitk.Cast(mask > 0, sitk.sitkUInt8)
    if cfg.get("resample"):
        ref = centred_grid(image, cfg["resample"])
        interpolator = INTERPOLATORS[cfg.get("interpolator", "linear")]
        image = sitk.Resample(
            sitk.Cast(image, sitk.sitkFloat64), ref, sitk.Transform(), interpolator, 0.0, sitk.sitkFloat64, True
        )
        if cfg.get("round", False):
            image = sitk.Round(image)
        soft = sitk.Resample(
            sitk.Cast(mask, sitk.sitkFloat64), ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat64, True
        )
        mask = sitk.Cast(soft >= float(cfg.get("mask_threshold", 0.5)), sitk.sitkUInt8)
    values = sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(mask) > 0].astype(float)
    audit["roi_voxels"] = int(values.size)
    lo, hi = -math.inf, math.inf
    if cfg.get("resegment_range"):
        lo, hi = (float(v) if v is not None else s for v, s in zip(cfg["resegment_range"], (-math.inf, math.inf)))
        values = values[(values >= lo) & (values <= hi)]
    if cfg.get("resegment_sigma"):
        k = float(cfg["resegment_sigma"])
        mu, sd = float(values.mean()), float(values.std())
        lo, hi = max(lo, mu - k * sd), min(hi, mu + k * sd)
    overrides = {}
    if math.isfinite(lo) or math.isfinite(hi):
        overrides["resegmentRange"] = [
            lo if math.isfinite(lo) else float(values.min()),
            hi if math.isfinite(hi) else float(values.max()),
        ]
        overrides["resegmentMode"] = "absolute"
    if cfg.get("resegment_range") and cfg["resegment_range"][0] is not None:
        overrides[BIN_START] = float(cfg["resegment_range"][0])  # IBSI: bins start at the range minimum
    audit["intensity_roi_voxels"] = int(((values >= lo) & (values <= hi)).sum())
    audit["resegment_interval"] = [lo, hi]
    return image, mask, overrides, audit


def ibsi_columns(values: dict, morph_voxels: int) -> dict:
    """IBSI's definitions where pyradiomics' differ, under IBSI names."""
    out = {}
    if "original_firstorder_Kurtosis" in values:
        out["ibsi_stat_kurt"] = values["original_firstorder_Kurtosis"] - 3.0
    if morph_voxels > 1:
        scale = math.sqrt(morph_voxels / (morph_voxels - 1))
        for ibsi, ours in (("maj", "MajorAxisLength"), ("min", "MinorAxisLength"), ("least", "LeastAxisLength")):
            key = f"original_shape_{ours}"
            if key in values:
                out[f"ibsi_morph_pca_{ibsi}_axis"] = values[key] * scale
    return out
