"""Dose-volume histograms of an ROI from its contours, not from a mask on the dose or image grid.

The ROI is the object its contours define: each contour plane stands for a slab as thick as the spacing between
contour planes (the DICOM convention the masks use too, radflow.dicom.masks.rasterise_roi), filled by the configured
overlap rule. It is rasterised on a sub-voxel sampling grid aligned with the dose grid (spacing `spacing_mm`: 0.25 mm,
coarser only for ROIs whose bounding box would need more than MAX_SAMPLES points), and the dose is interpolated
trilinearly at every sample (exact for a dose that is linear between the dose grid's voxel centres). Every sample
stands for the same volume, so the DVH is the distribution of the sampled doses.

On the analytic suite of tests/test_dvh.py (spheres, cylinders and cones in linear gradients and a spherical
fall-off, dose grids of 1 to 3 mm, contours every 1 to 3 mm) every dose metric is within 1 % or 0.1 Gy, and every
V x Gy within 1 % of the volume, of its closed-form value (BENCHMARKS.md has the comparison with dicompyler-core).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import SimpleITK as sitk

from radflow.dicom.geometry import Grid
from radflow.tables import CURVE_COLUMNS, DVH_ID_COLUMNS

SPACING_MM = 0.25  # the sampling grid's finest spacing
MAX_SAMPLES = 20_000_000  # points of the sampling grid's bounding box, at most (a body outline samples at ~1.5 mm)
CHUNK_SAMPLES = 2_000_000  # sampling points whose doses are interpolated at once
METHOD = "contours as stacked slabs, sampled on a {spacing:g} mm grid, dose trilinear"

D_PERCENT = (98, 95, 50, 2)  # D98 %, D95 %, D50 %, D2 % (the minimum dose of the hottest x % of the volume)
D_CC = (0.03,)  # D0.03cc: the near-maximum dose
V_GY = (5, 10, 20, 30, 40, 50, 60, 70)  # V5Gy … V70Gy: the share of the volume receiving at least x Gy


# The metrics a config names (model.dose), by the DVH table's columns: Dmean, Dmin, Dmax, D98 … D2 (% of the
# volume), D0.03cc, V5Gy … V70Gy (% of the volume), V5Gy_cc … (cc), volume (cc).
METRIC_COLUMNS = {
    "Dmean": "dmean_gy",
    "Dmin": "dmin_gy",
    "Dmax": "dmax_gy",
    **{f"D{x:g}": f"d{x:g}_pct_gy" for x in D_PERCENT},
    **{f"D{x:g}cc": f"d{x:g}cc_gy".replace(".", "_") for x in D_CC},
    **{f"V{x:g}Gy": f"v{x:g}gy_pct" for x in V_GY},
    **{f"V{x:g}Gy_cc": f"v{x:g}gy_cc" for x in V_GY},
    "volume": "volume_cc",
}


def metric_unit(metric: str) -> str:
    """The unit of a metric of METRIC_COLUMNS: Gy for doses, % of the ROI for V x Gy, cc for V x Gy_cc and volume."""
    return "cc" if metric.endswith("_cc") or metric == "volume" else "%" if metric.startswith("V") else "Gy"


# which dose grid of a study stands for it, by DoseSummationType: the plan's sum first
SUMMATION_ORDER = ("PLAN", "MULTI_PLAN", "RECORD", "FRACTION", "BEAM", "BRACHY", "CONTROL_IMAGE")


def sampling_grid(contours, dose: Grid, spacing_mm: float = SPACING_MM, max_samples: int = MAX_SAMPLES) -> Grid:
    """A grid along the dose grid's axes over the ROI's bounding box (the contour planes' slabs included), with a
    spacing of spacing_mm, or coarser when the box would hold more than max_samples points."""
    points = np.concatenate([pts for kind, pts in contours if kind == "CLOSED_PLANAR" and len(pts) >= 3])
    axes = dose.matrix  # columns: the dose grid's row, column and slice directions
    along = (points - np.asarray(dose.origin)) @ axes
    planes = np.unique(np.round(along[:, 2], 2))
    half = float(np.median(np.diff(planes))) / 2 if len(planes) > 1 else 0.5
    lo = along.min(axis=0) - np.array([0.0, 0.0, half])
    hi = along.max(axis=0) + np.array([0.0, 0.0, half])
    extent = np.maximum(hi - lo, 1e-6)
    spacing = max(spacing_mm, float(np.cbrt(np.prod(extent) / max_samples)))
    # cells of the spacing tile the box (centred on it); a sample stands at each cell's centre (the midpoint rule:
    # no sample on the box's faces or on the faces of the contours' slabs)
    size = tuple(int(n) for n in np.ceil(extent / spacing - 1e-9).astype(int))
    start = lo + (extent - np.asarray(size) * spacing) / 2 + spacing / 2
    origin = np.asarray(dose.origin) + axes @ start
    return Grid(size, (spacing, spacing, spacing), tuple(float(v) for v in origin), tuple(dose.direction))


def roi_doses(contours, dose: sitk.Image, name: str = "ROI", overlap: str = "even-odd", **grid_args):
    """(doses in Gy of every sample inside the ROI, the volume of one sample in mm³, info): info gives the sampling
    grid's spacing, the samples, the share of them outside the dose grid (dose 0 there) and the masks' audit
    (warnings, the contours' polygon volume)."""
    from scipy.ndimage import map_coordinates

    from radflow.dicom.masks import rasterise_roi

    grid = sampling_grid(contours, Grid.of_image(dose), **grid_args)
    mask, audit = rasterise_roi(contours, grid, name, overlap)
    m = grid.matrix * np.asarray(grid.spacing)[None, :]
    size = np.asarray(dose.GetSize())
    values = sitk.GetArrayViewFromImage(dose)
    parts, outside_parts = [], []
    step = max(1, CHUNK_SAMPLES // max(1, mask.shape[1] * mask.shape[2]))
    for first in range(0, mask.shape[0], step):  # a slab of sampling planes at a time: memory stays bounded
        k, j, i = np.nonzero(mask[first : first + step])
        points = np.asarray(grid.origin)[None, :] + np.column_stack([i, j, k + first]) @ m.T
        index = Grid.of_image(dose).to_index(points)  # continuous (i, j, k) on the dose grid
        outside = ((index < -0.5) | (index > size - 0.5)).any(axis=1)
        sampled = map_coordinates(values, index[:, ::-1].T, order=1, mode="nearest")
        sampled[outside] = 0.0
        parts.append(sampled)
        outside_parts.append(outside)
    doses = np.concatenate(parts) if parts else np.zeros(0)
    outside = np.concatenate(outside_parts) if outside_parts else np.zeros(0, bool)
    info = dict(
        spacing_mm=float(grid.spacing[0]),
        samples=int(len(doses)),
        outside_dose_grid=float(outside.mean()) if len(doses) else 0.0,
        warnings=audit["warnings"],
        polygon_volume_mm3=audit["polygon_volume_mm3"],
    )
    return doses.astype(np.float64), float(np.prod(grid.spacing)), info


def dose_at_volume(sorted_desc: np.ndarray, volume_mm3: float, sample_mm3: float) -> float:
    """The minimum dose of the hottest volume_mm3 (D at that volume): the dose of the sample at which the cumulative
    volume, hottest first, reaches it; NaN when the ROI is smaller."""
    n = volume_mm3 / sample_mm3
    if n > len(sorted_desc) or n <= 0:
        return math.nan
    return float(sorted_desc[max(int(math.ceil(n)) - 1, 0)])


def dvh_metrics(
    doses: np.ndarray, sample_mm3: float, d_percent=D_PERCENT, d_cc=D_CC, v_gy=V_GY, ascending=None
) -> dict:
    """The DVH metrics users quote: volume (cc), Dmean, Dmin, Dmax (the hottest sample), D x % and D x cc (the
    minimum dose of the hottest x % or x cc), V x Gy (share of the volume, %, and cc); Gy throughout. ascending:
    the doses sorted, when the caller has them (a whole-body outline holds some 20 million samples)."""
    out = dict(volume_cc=len(doses) * sample_mm3 / 1000.0)
    if not len(doses):
        return out
    asc = np.sort(doses) if ascending is None else ascending
    desc = asc[::-1]
    total = len(doses) * sample_mm3
    out.update(dmean_gy=float(doses.mean()), dmin_gy=float(desc[-1]), dmax_gy=float(desc[0]))
    for x in d_percent:
        out[f"d{x:g}_pct_gy"] = dose_at_volume(desc, total * x / 100.0, sample_mm3)
    for x in d_cc:
        out[f"d{x:g}cc_gy".replace(".", "_")] = dose_at_volume(desc, x * 1000.0, sample_mm3)
    for x in v_gy:
        # a sample exactly at the level stands for a cell half above it (dose grids and sampling grids aligned
        # with contour planes put many samples on round doses)
        below, not_above = np.searchsorted(asc, x, side="left"), np.searchsorted(asc, x, side="right")
        share = float((len(asc) - not_above) / len(asc) + 0.5 * ((not_above - below) / len(asc)))
        out[f"v{x:g}gy_pct"] = 100.0 * share
        out[f"v{x:g}gy_cc"] = share * total / 1000.0
    return out


def cumulative_dvh(doses: np.ndarray, sample_mm3: float, step_gy: float = 0.1, ascending=None) -> pd.DataFrame:
    """The cumulative DVH: for dose levels 0, step, 2 step … up to the maximum, the volume receiving at least that
    dose, in cc and in % of the ROI. ascending: the doses sorted, when the caller has them."""
    top = float(doses.max()) if len(doses) else 0.0
    levels = np.round(np.arange(0.0, top + step_gy, step_gy), 6)
    asc = np.sort(doses) if ascending is None else ascending
    # at each level: the samples above it, and half of those exactly at it (as in dvh_metrics)
    at_least = len(asc) - (np.searchsorted(asc, levels, side="left") + np.searchsorted(asc, levels, side="right")) / 2
    at_least[levels <= 0] = len(asc)  # every sample has at least 0 Gy (those outside the dose grid exactly 0)
    return pd.DataFrame(
        dict(
            dose_gy=levels,
            volume_cc=at_least * sample_mm3 / 1000.0,
            volume_pct=100.0 * at_least / max(len(asc), 1),
        )
    )


def plan_structure_sets(structures: list[dict], plan: dict | None) -> tuple[list[dict], str]:
    """(the structure sets whose ROIs get a dose grid's DVHs and dose features, and how they were chosen), from
    the structure sets of the dose's CTs (masks orders) and the dose order's plan: the structure sets the plan
    references (RTDOSE -> RTPLAN -> RTSTRUCT) where they are among them, otherwise all of them, saying why."""
    plan = plan or {}
    label = f"RTPLAN '{plan.get('label', '')}'" if plan.get("label") else "its RTPLAN"
    wanted = set(plan.get("structure_sop_uids", []))
    chosen = [s for s in structures if s.get("sop_uid") in wanted]
    if chosen:
        return chosen, f"plan: the structure set {label} references"
    if not plan.get("sop_uid"):
        why = "the RTDOSE references no RTPLAN"
    elif not wanted:
        why = f"{label} is not in the cohort or its structure set is not"
    else:
        why = f"the structure set {label} references is not among those of the dose's CTs"
    return structures, f"frame of reference: every structure set of the dose's CTs ({why})"


def _roi_dvh(roi: dict, row: dict, dose: sitk.Image, overlap: str) -> tuple[dict, pd.DataFrame | None]:
    """One ROI's DVH row (its metrics, or why there are none: skipped, failed) and its cumulative curve."""
    from radflow.dicom.masks import contour_kinds, point_reason
    from radflow.failures import is_machine_error

    why = roi.get("error") or point_reason(roi["roi_type"], contour_kinds(roi["contours"]))
    if not roi["contours"]:
        why = why or "no contours"
    if why:
        return dict(row, status="skipped" if not roi.get("error") else "failed", reason=why), None
    try:
        doses, sample_mm3, info = roi_doses(roi["contours"], dose, roi["name"], overlap)
    except Exception as err:
        if is_machine_error(err):
            raise
        return dict(row, status="failed", reason=f"{type(err).__name__}: {err}"), None
    if not len(doses):
        return dict(row, status="failed", reason="its contours enclose no sampling point"), None
    ascending = np.sort(doses)
    row = dict(
        row,
        method=METHOD.format(spacing=info["spacing_mm"]),
        sampling_mm=info["spacing_mm"],
        samples=info["samples"],
        outside_dose_grid_pct=100 * info["outside_dose_grid"],
        polygon_volume_cc=info["polygon_volume_mm3"] / 1000,
        **dvh_metrics(doses, sample_mm3, ascending=ascending),
    )
    if info["outside_dose_grid"] > 0:
        row["reason"] = f"{100 * info['outside_dose_grid']:.1f} % of the ROI lies outside the dose grid (0 Gy there)"
    curve = cumulative_dvh(doses, sample_mm3, ascending=ascending).assign(**{k: row[k] for k in CURVE_COLUMNS[:5]})
    return row, curve


def dose_to_rois(
    dose_path,
    sidecar: dict,
    structures: list[dict],
    aliases,
    overlap: str = "even-odd",
    plan_label: str = "",
    structure_sets_by: str = "",
):
    """(one DVH row per ROI of the structure sets, their cumulative curves) for the dose grid at dose_path (Gy):
    every ROI with closed contours, named by its standard name; points, markers and ROIs without closed contours
    get a row with status skipped and why, a structure set or ROI that cannot be read one with status failed."""
    from radflow.dicom.masks import read_rtstruct
    from radflow.failures import is_machine_error
    from radflow.roi_names import standard_name

    dose = sitk.Cast(sitk.ReadImage(str(dose_path)), sitk.sitkFloat64)
    base = dict(
        patient_id=sidecar.get("patient_id", ""),
        study_uid=sidecar.get("study_uid", ""),
        dose_series_uid=sidecar.get("series_uid", ""),
        dose_summation_type=sidecar.get("dose_summation_type", ""),
        dose_type=sidecar.get("dose_type", ""),
    )
    beams = ", ".join(str(b) for b in sidecar.get("referenced_beam_numbers", []))
    base.update(plan_label=plan_label, dose_beams=beams, structure_sets_by=structure_sets_by)
    rows, curves = [], []
    for s in structures:
        try:
            _, rois = read_rtstruct(s["path"])
        except Exception as err:  # one broken structure set is recorded; the others go on
            if is_machine_error(err):
                raise
            why = f"structure set {s['path']} cannot be read: {type(err).__name__}: {err}"
            rows.append(dict(base, rtstruct_series_uid=s["series_uid"], roi="", roi_original="", status="failed"))
            rows[-1]["reason"] = why
            continue
        for number, roi in sorted(rois.items()):
            name = standard_name(roi["name"], aliases)[0]
            row = dict(base, rtstruct_series_uid=s["series_uid"], roi=name, roi_original=roi["name"], status="ok")
            row["reason"] = ""
            row, curve = _roi_dvh(roi, row, dose, overlap)
            rows.append(row)
            if curve is not None:
                curves.append(curve)
    table = _concat([pd.DataFrame(rows)], DVH_ID_COLUMNS)
    return table, _concat(curves, CURVE_COLUMNS)[CURVE_COLUMNS]


def _concat(frames, first_columns: list[str]) -> pd.DataFrame:
    """The non-empty frames one below the other, first_columns first (an empty frame of them when none)."""
    frames = [f for f in frames if len(f)]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=first_columns)
    return table.reindex(columns=first_columns + [c for c in table.columns if c not in first_columns])


def merge_dose_tables(folders, out_table, out_csv, out_curves, plots_dir) -> pd.DataFrame:
    """The DVH rows and curves of every dose folder in one table each (results/dose/dvh.parquet and .csv,
    dvh_curves.parquet), and a picture of the cumulative DVHs per patient and dose grid (plots_dir)."""
    table = _concat([pd.read_parquet(f"{f}/dvh.parquet") for f in folders], DVH_ID_COLUMNS)
    curve = _concat([pd.read_parquet(f"{f}/dvh_curves.parquet") for f in folders], CURVE_COLUMNS)
    table.to_parquet(out_table, index=False)
    table.to_csv(out_csv, index=False)
    curve.to_parquet(out_curves, index=False)
    dvh_plots(table, curve, plots_dir)
    return table


def dvh_plots(table: pd.DataFrame, curves: pd.DataFrame, out_dir) -> list[str]:
    """One picture per patient and dose grid: the cumulative DVH (% of the ROI's volume against Gy) of each ROI."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for (patient, grid), rows in curves.groupby(["patient_id", "dose_series_uid"], sort=True):
        about = table[(table["patient_id"] == patient) & (table["dose_series_uid"] == grid)]
        kind = str(about["dose_summation_type"].iloc[0]) if len(about) else ""
        label = str(about["plan_label"].iloc[0]) if len(about) and "plan_label" in about else ""
        beams = str(about["dose_beams"].iloc[0]) if len(about) and "dose_beams" in about else ""
        fig, ax = plt.subplots(figsize=(8, 5), dpi=90)
        for (roi, original, rs), c in rows.groupby(["roi", "roi_original", "rtstruct_series_uid"], sort=True):
            ax.plot(c["dose_gy"], c["volume_pct"], label=f"{roi} ('{original}')" if roi != original else roi)
        ax.set_xlabel("dose [Gy]")
        ax.set_ylabel("volume receiving at least the dose [% of the ROI]")
        ax.set_ylim(0, 101)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        plan = (f" beam {beams}" if beams else "") + (f" of plan '{label}'" if label else "")
        kind = f"({kind})" if kind else "(no DoseSummationType)"
        title = f"{patient} · RTDOSE {kind}{plan} · series …{grid[-12:]}: cumulative DVH"
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        name = f"{patient}_{grid}"
        fig.savefig(out / f"{name}.png", metadata={"Software": None, "Title": title})
        plt.close(fig)
        names.append(name)
    return names
