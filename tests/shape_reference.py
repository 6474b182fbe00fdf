"""The shape features of a features table recomputed with pyradiomics' own C (radflow's fast shape off) on the
run's images and masks: what radflow.features.mesh_shape must equal. Shared by the demo's and the real data's tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import SimpleITK as sitk
import yaml

from radflow.features import extract_roi, make_extractor


def reference_extractor(settings: Path, tmp: Path):
    """The settings file with only the shape class, and pyradiomics' own shape coefficients."""
    params = yaml.safe_load(settings.read_text()) or {}
    params["featureClass"] = {"shape": None}
    params["radflow"] = {"fast_shape": False}
    path = tmp / f"shape_only_{settings.name}"
    path.write_text(yaml.safe_dump(params))
    return make_extractor(path)


def compare_shapes(project: Path, features: pd.DataFrame, tmp: Path, max_voxels: int | None = None) -> int:
    """Every ok image ROI of the table (up to max_voxels after resampling): its shape columns against pyradiomics'.
    Returns how many ROIs were compared; raises with the ROI and feature that differ beyond 1e-12 relative."""
    results = project / "results"
    rows = features[(features["status"] == "ok") & (features["modality"] != "RTDOSE")]
    if max_voxels is not None:
        rows = rows[rows["resampled_voxels"] <= max_voxels]
    extractors = {}
    compared = 0
    for _, row in rows.iterrows():
        settings = project / "config" / "pyradiomics" / row["settings"]
        if row["settings"] not in extractors:
            extractors[row["settings"]] = reference_extractor(settings, tmp)
        image = sitk.ReadImage(str(results / "images" / row["patient_id"] / f"{row['series_uid']}.nii.gz"))
        mask = sitk.ReadImage(
            str(results / "masks" / row["patient_id"] / row["series_uid"] / f"{row['roi_label']}.nii.gz")
        )
        values, why = extract_roi(extractors[row["settings"]], image, mask)
        assert not why, (row["patient_id"], row["roi_label"], why)
        for name, value in values.items():
            mine = float(row[name])
            assert abs(mine - value) <= 1e-12 * abs(value), (
                row["patient_id"],
                row["series_uid"],
                row["roi_label"],
                name,
                mine,
                value,
            )
        compared += 1
    return compared
