"""Which ROIs a features job extracts and what it costs: pyradiomics' limits from the settings, the voxel budget
(max_roi_voxels), and the measured cost model the workflow asks memory and time by."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radflow.roi_names import FeatureRois


def roi_limits(settings_path) -> dict:
    """What a settings file asks of an ROI: the resampled voxel size (mm, 0 = as acquired) and pyradiomics'
    minimum dimensions."""
    import yaml

    setting = (yaml.safe_load(Path(settings_path).read_text()) or {}).get("setting") or {}
    return dict(spacing=setting.get("resampledPixelSpacing"), min_dims=int(setting.get("minimumROIDimensions", 2)))


def resampled_voxel_estimate(voxel_count: int, spacing, resampled) -> int:
    """Voxels of a mask after resampling to the settings' voxel size (a 0 keeps that axis' own spacing): the
    mask's volume over the new voxel's volume."""
    if not resampled:
        return int(voxel_count)
    new = [r if r else s for r, s in zip(resampled, spacing)]
    return int(round(voxel_count * float(np.prod(spacing)) / float(np.prod(new))))


def skip_reason(m: dict, spacing, limits: dict, feature_rois: FeatureRois | None, max_roi_voxels: int | None) -> str:
    """Why an ROI gets no features although its mask is fine ("" when it gets them): a point or marker, not among
    the feature ROIs, or larger than the voxel budget."""
    name = m["roi_original"]
    if m.get("point"):
        return f"not a volume: ROI '{name}' is {m['point']}; pyradiomics needs a volume"
    if not m["voxel_count"]:
        return ""  # an empty mask is a failure to report, whatever the ROI
    if feature_rois is not None:
        why = feature_rois.why_not(m)
        if why:
            return why
    if max_roi_voxels and m["voxel_count"]:
        voxels = resampled_voxel_estimate(m["voxel_count"], spacing, limits["spacing"])
        if voxels > max_roi_voxels:
            return (
                f"ROI '{name}' is too large: {voxels:,} voxels after resampling ({m['volume_mm3'] / 1000:,.0f} "
                f"cm3) exceed max_roi_voxels = {max_roi_voxels:,}; raise max_roi_voxels in the config to extract "
                "it (time and memory grow with the voxels)"
            )
    return ""


# The cost of one features job (radflow's extraction, pyradiomics settings as shipped), fitted to the per-ROI and
# per-job peaks and times of real series (LUNG1-001's CT with its lungs, the QIN PET, the sarcoma CT/MR/PET) and of
# a generated 512 x 512 x 150 planning CT with every ROI extracted (benchmarks/features_cost.py, BENCHMARKS.md):
# resident memory = the process with its libraries + the image and mask held for the job + the largest extracted
# ROI, linear in its voxels since radflow.features.size_zones builds the size zone matrix without pyradiomics' dense
# grey levels x zone sizes (a 19-million-voxel body outline peaked at 15.6 GB before, 3.1 GB after, 2026-12-08);
# time = start-up + per ROI a part that grows with the image + the ROI's resampled voxels (the body outline's seven
# classes 45 s, with radflow's shape coefficients, preparation and size zones; 8 s per million voxels keeps a margin
# for lung parenchyma, the slowest texture measured).
BASE_MB = 330


MB_PER_MVOXEL_IMAGE = 12


MB_PER_MVOXEL_ROI = 150


SECONDS_START = 20.0


SECONDS_PER_ROI = 0.5


SECONDS_PER_ROI_PER_MVOXEL_IMAGE = 0.03


SECONDS_PER_MVOXEL = 8.0


def job_resources(
    image_sidecar: dict, masks: list[dict], settings_path, feature_rois: FeatureRois | None, max_roi_voxels: int | None
) -> dict:
    """Memory (MB) and run time (minutes) a features job needs for its own masks, by the measured cost model above;
    ROIs that will be skipped (points, not among feature_rois, over max_roi_voxels) or fail before pyradiomics cost
    nothing. Also the number of ROIs to extract, the largest one's resampled voxels and the estimated seconds."""
    limits = roi_limits(settings_path)
    spacing = image_sidecar.get("spacing") or [1.0, 1.0, 1.0]
    image_mvoxels = float(np.prod(image_sidecar.get("size") or [1])) / 1e6
    largest, seconds, n = 0, SECONDS_START, 0
    for m in masks:
        if m.get("status") == "failed" or not m.get("voxel_count"):
            continue
        if skip_reason(m, spacing, limits, feature_rois, max_roi_voxels):
            continue
        if m.get("bounding_box") and too_few_dimensions(m["bounding_box"][3:], "", limits):
            continue  # fails before pyradiomics
        n += 1
        voxels = resampled_voxel_estimate(m["voxel_count"], spacing, limits["spacing"])
        largest = max(largest, voxels)
        seconds += (
            SECONDS_PER_ROI + SECONDS_PER_ROI_PER_MVOXEL_IMAGE * image_mvoxels + SECONDS_PER_MVOXEL * voxels / 1e6
        )
    v = largest / 1e6
    mem = BASE_MB + MB_PER_MVOXEL_IMAGE * image_mvoxels + MB_PER_MVOXEL_ROI * v
    return dict(
        mem_mb=int(np.ceil(mem / 100) * 100),
        minutes=max(2, int(np.ceil(2 * seconds / 60))),
        rois=n,
        largest_roi_voxels=int(largest),
        seconds=round(seconds, 1),
    )


def planned_resources(
    series: dict, rois: list[dict], settings_path, feature_rois: FeatureRois | None, max_roi_voxels: int | None
) -> dict:
    """job_resources before the masks exist (a features job is planned before its series job masks): each ROI of the
    series' structure sets is taken as its contours' bounding box on the image's voxel grid (from the index:
    x/y/z_min/max in mm), which holds at least the ROI's voxels, so the memory asked is not below what its mask
    will need; an ROI whose box is above max_roi_voxels counts as the budget (the most that is extracted), one
    without an extent (a DICOM SEG segment) as the budget too, or the whole image without a budget.
    series: the index's row (rows, columns, n_slices, pixel and slice spacing); rois: the index's ROI rows."""
    spacing = [
        float(series.get("pixel_spacing_col") or 1.0),
        float(series.get("pixel_spacing_row") or 1.0),
        float(series.get("slice_spacing") or series.get("slice_thickness") or 1.0),
    ]
    size = [int(series.get("columns") or 512), int(series.get("rows") or 512), int(series.get("n_slices") or 200)]
    whole = int(np.prod(size))
    limits = roi_limits(settings_path)
    resampled = [r or s for r, s in zip(limits["spacing"] or [0, 0, 0], spacing)]
    # the budget (voxels after resampling) in voxels of the image's own grid
    budget = int(max_roi_voxels * float(np.prod(resampled)) / float(np.prod(spacing))) if max_roi_voxels else whole
    masks = []
    for r in rois:
        box = np.array([r.get(k, np.nan) for k in ("x_min", "x_max", "y_min", "y_max", "z_min", "z_max")], float)
        entry = dict(roi=r.get("roi", ""), roi_original=r.get("roi_original", ""), label=r.get("roi", ""))
        if np.isfinite(box).all():
            extent = [int(np.floor((hi - lo) / sp)) + 1 for lo, hi, sp in zip(box[0::2], box[1::2], spacing)]
            entry.update(voxel_count=min(int(np.prod(extent)), budget, whole), bounding_box=[0, 0, 0, *extent])
        else:
            entry.update(voxel_count=min(budget, whole))
        masks.append(entry)
    return job_resources(dict(size=size, spacing=spacing), masks, settings_path, feature_rois, None)


def too_few_dimensions(extent, name: str, limits: dict) -> str:
    """pyradiomics' minimum ROI dimensions, checked on the mask's own grid and said in words ("" when it passes)."""
    ndims = sum(e > 1 for e in extent)
    if ndims < limits["min_dims"]:
        shape = " x ".join(str(e) for e in extent)
        return (
            f"ROI '{name}' spans {shape} voxels: {ndims} dimension(s) with more than one voxel, and the "
            f"settings ask for minimumROIDimensions {limits['min_dims']} (a point, a line or a single-slice "
            "contour is not a volume)"
        )
    return ""
