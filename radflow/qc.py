"""Pictures and counts for looking at a run: ROI outlines on the image in three planes, feature distributions,
cohort counts. They feed `snakemake --report`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from radflow.cohort.selection import instance_of
from radflow.modalities import IMAGE_MODALITIES, image_modality
from radflow.modalities import units as modality_units
from radflow.records import image_sidecar

MARGIN_MM = 40.0  # shown around the ROI's bounding box


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _window(values: np.ndarray, modality: str, roi: np.ndarray | None = None) -> tuple[float, float]:
    """The display window of radflow.modalities: fixed (CT), else percentiles of the image's values; for PET up to
    the ROI's highest value at least, so that a lesion hotter than 99.5 % of the image is not one white blot."""
    kind = image_modality(modality) or IMAGE_MODALITIES["MR"]
    if kind.window is not None:
        return kind.window
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(np.percentile(finite, p)) for p in kind.window_percentiles)
    if kind.window_from_zero:
        lo = 0.0
    if kind.window_to_roi_max and roi is not None and roi.any():
        inside = values[roi]
        inside = inside[np.isfinite(inside)]
        if inside.size:
            hi = max(hi, float(inside.max()))
    return lo, hi if hi > lo else lo + 1.0


def window_note(modality: str, lo: float, hi: float, units: str) -> str:
    """The display window in words, as a picture states it: its range in the image's unit and how it was chosen."""
    kind = image_modality(modality) or IMAGE_MODALITIES["MR"]
    if kind.window is not None:
        how = f"fixed, W {hi - lo:g} L {(hi + lo) / 2:g}"
    else:
        p_lo, p_hi = kind.window_percentiles
        how = ("0" if kind.window_from_zero else f"percentile {p_lo:g}") + f" to percentile {p_hi:g} of the image"
        how += " or the ROI's maximum" if kind.window_to_roi_max else ""
    shown = {"as stored": "(values as stored)", "BQML": "Bq/ml"}.get(units, units)
    return f"window {lo:.4g} to {hi:.4g} {shown} ({how})"


def _crop(mask_2d: np.ndarray, spacing_rc: tuple[float, float]) -> tuple[slice, slice]:
    """Rows and columns of the ROI's bounding box in this plane, widened by MARGIN_MM."""
    rows, cols = np.nonzero(mask_2d)
    if rows.size == 0:
        return slice(None), slice(None)
    out = []
    for idx, sp, n in ((rows, spacing_rc[0], mask_2d.shape[0]), (cols, spacing_rc[1], mask_2d.shape[1])):
        pad = int(np.ceil(MARGIN_MM / sp))
        out.append(slice(max(int(idx.min()) - pad, 0), min(int(idx.max()) + pad + 1, n)))
    return out[0], out[1]


def roi_overlay(
    image: sitk.Image, mask: sitk.Image, out_png: Path, modality: str, title: str, units: str | None = None
) -> dict:
    """One picture: the image with the ROI's outline through the ROI's centre, axial, coronal and sagittal; the
    title's last line gives the display window (window_note) in the image's units (default: the modality's).

    Both are reoriented to LPS axes first (a permutation and flips, no resampling), so every series — axial,
    sagittal or coronal acquisitions — is shown the same way: axial from the feet, patient's right on the
    left; coronal and sagittal with the head up. Returns the centre (voxel indices, LPS order) drawn through.
    """
    plt = _pyplot()
    image = sitk.DICOMOrient(image, "LPS")
    mask = sitk.DICOMOrient(mask, "LPS")
    img = sitk.GetArrayViewFromImage(image).astype(np.float32)  # z, y, x
    roi = sitk.GetArrayViewFromImage(mask) > 0
    sx, sy, sz = image.GetSpacing()
    lo, hi = _window(img, modality, roi)
    window = window_note(modality, lo, hi, units if units is not None else modality_units(modality))
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.4), dpi=90)
    if not roi.any():
        centre = tuple(int(n // 2) for n in img.shape)
        title = f"{title}: empty mask\n{window}"
    else:
        centre = tuple(int(round(c)) for c in np.argwhere(roi).mean(axis=0))
        title = f"{title}\n{window}"
    fig.suptitle(title, fontsize=10)
    kz, jy, ix = centre
    planes = [
        ("axial", img[kz], roi[kz], (sy, sx), "upper"),
        ("coronal", img[:, jy, :], roi[:, jy, :], (sz, sx), "lower"),
        ("sagittal", img[:, :, ix], roi[:, :, ix], (sz, sy), "lower"),
    ]
    for ax, (name, pixels, outline, spacing, origin) in zip(axes, planes):
        rs, cs = _crop(outline, spacing)
        pixels, outline = pixels[rs, cs], outline[rs, cs]
        ax.imshow(
            pixels,
            cmap="gray",
            vmin=lo,
            vmax=hi,
            origin=origin,
            aspect=spacing[0] / spacing[1],
            interpolation="nearest",
        )
        if outline.any():
            ax.contour(outline.astype(np.uint8), levels=[0.5], colors="red", linewidths=1.2, origin=origin)
        ax.set_title(f"{name} ({int(outline.sum())} voxels in plane)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    # the title in the PNG's own text too (Title), for readers of the file without eyes
    fig.savefig(out_png, metadata={"Software": None, "Title": title})
    plt.close(fig)
    return {"centre_lps_index": [ix, jy, kz], "voxels": int(roi.sum()), "window": [lo, hi]}


def series_overlays(
    image_path: Path,
    masks_dir: Path,
    out_dir: Path,
    patient: str,
    series: str,
    model_roi: str | None = None,
    instances: str = "largest",
) -> list[str]:
    """An overlay picture for every ROI mask of one image series, or, with model_roi, for every mask that can stand
    for the model's ROI under the instance rule (radflow.cohort.selection.instance_of: GTVp, GTVp_2, GTVp_union under
    "largest" and "union"; the named label alone under "suffix"), so whichever the modelling table chose is drawn."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sidecar = image_sidecar(image_path)
    meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    written = []
    masks = sorted(Path(masks_dir).glob("*.nii.gz"))
    if model_roi is not None:
        listed = Path(masks_dir) / "masks.json"
        standard = {m["label"]: m.get("roi", "") for m in json.loads(listed.read_text())} if listed.exists() else {}
        masks = [
            m
            for m in masks
            if instance_of((label := m.name[: -len(".nii.gz")]), standard.get(label, label), model_roi, instances)
        ]
    if meta.get("status") == "failed" or not masks:
        return written
    modality = meta.get("modality", "CT")
    described = f" '{meta['series_description']}'" if meta.get("series_description") else ""
    image = sitk.ReadImage(str(image_path))
    for m in masks:
        roi = m.name[: -len(".nii.gz")]
        about = m.with_name(f"{roi}.json")
        entry = json.loads(about.read_text()) if about.exists() else {}
        original = f" ('{entry['roi_original']}')" if entry.get("roi_original") not in (None, "", roi) else ""
        title = f"{patient} · {modality}{described} series …{series[-12:]} · {roi}{original}"
        roi_overlay(image, sitk.ReadImage(str(m)), out_dir / f"{roi}.png", modality, title, meta.get("units"))
        written.append(roi)
    return written


# the features shown as distributions: shape, intensity, texture
DISTRIBUTION_FEATURES = [
    "original_shape_MeshVolume",
    "original_shape_Sphericity",
    "original_firstorder_Mean",
    "original_firstorder_90Percentile",
    "original_firstorder_Entropy",
    "original_firstorder_Skewness",
    "original_glcm_Contrast",
    "original_glcm_Idm",
    "original_glrlm_RunLengthNonUniformity",
    "original_glszm_ZoneEntropy",
    "original_gldm_DependenceNonUniformity",
    "original_ngtdm_Coarseness",
]


def axis_unit(column: str, image_units: str) -> str:
    """A feature's unit as an axis states it (radflow.features.feature_unit; "dimensionless" for 1)."""
    from radflow.features import feature_unit

    unit = feature_unit(column, image_units)
    return {"1": "dimensionless", "": "unit not stated"}.get(unit, unit)


def feature_distributions(features: pd.DataFrame, out_dir: Path) -> list[str]:
    """One picture per modality and ROI (and image unit, when a modality's series differ: SUV and Bq/ml PET):
    histograms of a dozen features over the patients (status ok only), each axis in the feature's unit (also in
    the PNG's Description)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = features[features["status"] == "ok"].fillna({"image_units": ""})
    several = ok.groupby("modality")["image_units"].nunique()
    names = []
    for (modality, units, roi), rows in ok.groupby(["modality", "image_units", "roi"], sort=True):
        # (dose features have no shape class: the ROI's shape is its image's)
        cols = [c for c in DISTRIBUTION_FEATURES if c in rows.columns and rows[c].notna().any()]
        if not cols:
            continue
        fig, axes = plt.subplots(3, 4, figsize=(12, 8), dpi=80)
        # fixed margins for this grid and these font sizes: tight_layout measured every label of every panel again
        # and took 40 % of the job (BENCHMARKS.md)
        fig.subplots_adjust(left=0.05, right=0.98, bottom=0.07, top=0.9, wspace=0.3, hspace=0.45)
        labels = []
        for ax, col in zip(axes.ravel(), cols):
            values = pd.to_numeric(rows[col], errors="coerce").dropna()
            ax.hist(values, bins=min(20, max(len(values), 1)), color="#4477aa")
            ax.set_title(col.replace("original_", ""), fontsize=8)
            labels.append(f"{col} [{axis_unit(col, units)}]")
            ax.set_xlabel(f"[{axis_unit(col, units)}]", fontsize=7)
            ax.set_ylabel("rows", fontsize=7)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of rows: whole numbers
            ax.tick_params(labelsize=7)
        for ax in axes.ravel()[len(cols) :]:
            ax.axis("off")
        patients = rows["patient_id"].nunique()
        title = (
            f"{modality} ({units or 'values as stored'}) {roi}: {patients} patient{'s' * (patients != 1)}, "
            f"{len(rows)} row{'s' * (len(rows) != 1)}; settings {', '.join(sorted(rows['settings'].unique()))}"
        )
        fig.suptitle(title, fontsize=10)
        name = f"{modality}_{roi}" if several[modality] == 1 else f"{modality}_{units.split(' ')[0]}_{roi}"
        meta = {"Software": None, "Title": title, "Description": "; ".join(labels)}
        fig.savefig(out_dir / f"{name}.png", metadata=meta)
        plt.close(fig)
        names.append(name)
    return names


def cohort_counts(
    series: pd.DataFrame,
    problems: pd.DataFrame,
    features: pd.DataFrame,
    cohort: pd.DataFrame,
    clinical: pd.DataFrame,
    modelling: pd.DataFrame,
    endpoint: str = "os",
) -> pd.DataFrame:
    """The run in numbers, one row per count: what came in, what was used, what was left out."""
    rows = []

    def add(stage, what, n):
        rows.append({"stage": stage, "count": what, "n": int(n)})

    add("index", "patients with DICOM", series["patient_id"].nunique())
    add("index", "studies", series["study_uid"].nunique())
    studies = series.groupby("patient_id")["study_uid"].nunique()
    add("index", "patients with two or more studies", (studies >= 2).sum())
    add("index", "series (and sub-series)", len(series))
    for modality, n in series["modality"].value_counts().sort_index().items():
        add("index", f"series of modality {modality}", n)
    add("index", "image series converted", int(series["convert"].sum()))
    for severity, n in problems["severity"].value_counts().sort_index().items():
        add("index", f"problems.tsv rows: {severity}", n)
    add("features", "feature rows (patient x series x ROI)", len(features))
    for status, n in features["status"].value_counts().sort_index().items():
        add("features", f"feature rows {status}", n)
    for (modality, roi), n in features[features["status"] == "ok"].groupby(["modality", "roi"]).size().items():
        add("features", f"ok rows {modality} {roi}", n)
    add("clinical", "patients in the clinical files", clinical["patient_id"].nunique())
    event = f"{endpoint}_event"
    if event in clinical.columns:
        add(
            "clinical",
            f"patients with {endpoint.upper()} time and status",
            clinical[[f"{endpoint}_days", event]].notna().all(axis=1).sum(),
        )
    add("cohort", "patients (images or clinical)", cohort["patient_id"].nunique())
    add("cohort", "patients in the modelling table", len(modelling))
    if "passed_over" in cohort.columns:
        add(
            "cohort",
            "modelling table patients with other candidates passed over",
            (cohort["in_modelling_table"].astype(bool) & (cohort["passed_over"].fillna("") != "")).sum(),
        )
    if event in modelling.columns:
        add("cohort", f"{endpoint.upper()} events in the modelling table", pd.to_numeric(modelling[event]).sum())
    for reason, n in cohort.loc[~cohort["in_modelling_table"].astype(bool), "reason"].fillna("").value_counts().items():
        add("cohort", f"left out: {reason}", n)
    return pd.DataFrame(rows)
