"""One image series from DICOM to its feature rows in two jobs: convert and masks (run_series), then features
(run_features).

Each step costs a new process about a second of CPU to start Python and import numpy, pandas, pydicom, SimpleITK
and pyradiomics, as much as converting or masking a demo CT takes; conversion and masks share one job, which reads
the image it wrote back once from its NIfTI for the masks: exactly the voxels and geometry every later reader of the
file gets. The features are their own job, so that a change of the pyradiomics settings redoes only them and what
reads them (on a cluster the slurm profile groups the two jobs of a series into one SLURM job). Every output is
written under a temporary name and renamed when its job is done, so a job killed half way leaves no output a rerun
would take as finished.

What each step does, and how one broken series, structure set or ROI is recorded and skipped, is in
radflow.dicom.convert, radflow.dicom.masks and radflow.features; this module only chains them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from radflow.failures import atomic_outputs, is_machine_error
from radflow.settings import FeatureSettings, SeriesSettings


@dataclass
class SeriesOutputs:
    image: str  # results/images/<patient>/<series>.nii.gz (its sidecar .json next to it)
    sidecar: str
    masks: str  # results/masks/<patient>/<series>/ (masks.json and one NIfTI + JSON per ROI)


def convert_step(order: dict, image_path, sidecar_path, pet_fallback=None) -> dict:
    """The convert work order's series to image_path + sidecar_path; a series that cannot be converted gets a
    placeholder image and a sidecar with status failed and the reason (the masks and features turn it into failed
    rows). Machine errors (a full disk, too little memory) are raised: the job must fail and be redone."""
    from radflow.dicom.convert import convert_series, write_failed_conversion

    files = [f["path"] for f in order["files"]]
    try:
        return convert_series(
            files, image_path, sidecar_path, pet_fallback=pet_fallback, series_key=order["series_key"]
        )
    except Exception as err:  # one broken series is recorded and skipped; the cohort goes on
        if is_machine_error(err):
            raise
        reason = f"series {order['series_key']} cannot be converted: {type(err).__name__}: {err}"
        print(reason, flush=True)
        return write_failed_conversion(
            image_path,
            sidecar_path,
            reason,
            dict(
                patient_id=order["patient_id"],
                study_uid=order["study_uid"],
                series_uid=order["series_key"],
                modality=order["modality"],
            ),
        )


def masks_step(
    order: dict | None, image, sidecar: dict, out_dir, aliases, roi_instances="largest", overlap="even-odd"
) -> list[dict]:
    """The masks work order's structure sets rasterised on the image (a path or the image read from it) into
    out_dir; without an order (no structure set goes with the series) an empty masks.json. After a failed
    conversion every ROI fails with the image's reason."""
    from radflow.dicom.masks import failed_entry, write_masks

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if order is None:
        entries = []
    elif sidecar.get("status") == "failed":  # nothing to rasterise on: every ROI fails with the image's reason
        entries = [failed_entry("(every ROI)", sidecar["reason"], order["series_key"])]
    else:
        structures = order["structures"]
        return write_masks(
            sorted({s["path"] for s in structures}),
            image,
            out,
            aliases,
            order["series_key"],
            {s["series_uid"]: s["relation"] for s in structures},
            union=roi_instances == "union",
            overlap=overlap,
            modalities={s["path"]: s["modality"] for s in structures},
        )
    (out / "masks.json").write_text(json.dumps(entries, indent=2))
    return entries


def run_series(
    convert_order: dict,
    masks_order: dict | None,
    outputs: SeriesOutputs,
    settings: SeriesSettings,
    *,
    roi_names_path,
    progress=None,
) -> None:
    """Convert and mask one image series (see the module's docstring) with the series settings (PET fallback, ROI
    instances, contour overlap). The log (progress) gets a line per step with its seconds."""
    import time

    import SimpleITK as sitk

    progress = progress or sys.stdout  # (the job's log: the script points sys.stdout at it before calling)

    from radflow.roi_names import load_aliases

    with atomic_outputs(outputs.image, outputs.sidecar, outputs.masks) as (image_path, sidecar_path, masks_dir):
        started = time.perf_counter()
        sidecar = convert_step(convert_order, image_path, sidecar_path, settings.pet_fallback)
        image = None if sidecar.get("status") == "failed" else sitk.ReadImage(image_path)
        converted = time.perf_counter()
        print(
            f"convert: {convert_order['modality']} series {convert_order['series_key']}, "
            f"{len(convert_order['files'])} files, {sidecar.get('status')}, {converted - started:.2f} s",
            file=progress,
            flush=True,
        )
        masks = masks_step(
            masks_order,
            image if image is not None else image_path,
            sidecar,
            masks_dir,
            load_aliases(roi_names_path),
            settings.roi_instances,
            settings.contour_overlap,
        )
        masked = time.perf_counter()
        print(
            f"masks: {len(masks)} ROI masks, {masked - converted:.2f} s; series job: total {masked - started:.2f} s",
            file=progress,
            flush=True,
        )


def run_features(
    image_path,
    masks_dir,
    features_path,
    settings: FeatureSettings,
    *,
    settings_path,
    roi_names_path,
    progress=None,
    notes: dict | None = None,
) -> None:
    """The feature rows of one series' masks (radflow.features.extract_series) with the features settings (which
    ROIs, the voxel budget) and the pyradiomics settings file settings_path, written under a temporary name and
    renamed when done. Its own job: a pyradiomics settings change redoes this and what reads the features, not the
    conversion, the masks, the overlays or the dose. notes: {(rtstruct_series_uid, roi_original): text} said in the
    reason of those ROIs' rows that have features (e.g. the part of an ROI outside a dose grid)."""
    import time

    from radflow.features import extract_series
    from radflow.roi_names import FeatureRois

    progress = progress or sys.stdout
    with atomic_outputs(features_path) as (path,):
        started = time.perf_counter()
        table = extract_series(
            image_path,
            masks_dir,
            settings_path,
            FeatureRois(settings.feature_rois, roi_names_path),
            settings.max_roi_voxels,
            progress=progress,
        )
        for key, text in (notes or {}).items():
            rows = (table["rtstruct_series_uid"] == key[0]) & (table["roi_original"] == key[1])
            rows &= table["status"] == "ok"
            table.loc[rows, "reason"] = [f"{r}; {text}" if r else text for r in table.loc[rows, "reason"]]
        table.to_parquet(path, index=False)
        print(f"features: {len(table)} rows, {time.perf_counter() - started:.2f} s", file=progress, flush=True)
