"""The features of a features table recomputed with pyradiomics' own shape coefficients, preparation and size zone
matrix (radflow's switchable shortcuts off: `radflow: {fast_shape: false, fast_preparation: false, fast_size_zones:
false}`) on the run's images and masks: what radflow's extraction must equal. The crop before resampling stays on
both sides (it is compared with pyradiomics' whole-image resampling in tests/test_features.py). Shared by the demo's
and the real data's tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import SimpleITK as sitk
import yaml

from radflow.features import extract_roi, make_extractor


def reference_extractor(settings: Path, tmp: Path):
    """The settings file with pyradiomics' own shape coefficients and preparation."""
    params = yaml.safe_load(settings.read_text()) or {}
    params["radflow"] = {"fast_shape": False, "fast_preparation": False, "fast_size_zones": False}
    path = tmp / f"pyradiomics_own_{settings.name}"
    path.write_text(yaml.safe_dump(params))
    return make_extractor(path)


def summed_otherwise(name: str) -> bool:
    """A feature whose sum radflow adds in another order than pyradiomics, equal to 1e-12 relative: a shape feature
    computed from the mesh's surface or volume (MeshVolume, SurfaceArea, their ratio, Sphericity:
    radflow.features.mesh_shape) and the GLSZM features summed over the whole matrix (ZoneEntropy, the area-grey-level
    emphases: radflow.features.size_zones). Also the GLCM's MCC: numpy's eigenvalues (LAPACK) of a matrix that
    pyradiomics computes afresh in each process, whose last digit was seen to differ between the workflow's job and
    another process (STS_006's PET GTV: 0.8818502269417205 and ...208, either way with or without radflow's
    shortcuts). Every other value is pyradiomics' own, bit for bit."""
    if name.endswith("_glcm_MCC"):
        return True
    if "_glszm_" in name:
        return any(word in name for word in ("ZoneEntropy", "AreaLowGray", "AreaHighGray"))
    return name.startswith("original_shape_") and not any(
        word in name for word in ("Diameter", "AxisLength", "Elongation", "Flatness", "VoxelVolume")
    )


def compare_with_pyradiomics(project: Path, features: pd.DataFrame, tmp: Path, max_voxels: int | None = None) -> int:
    """Every ok image ROI of the table (up to max_voxels after resampling): every feature against pyradiomics' own
    extraction. Returns how many ROIs were compared; raises with the ROI and feature that differ (beyond 1e-12
    relative for the features radflow sums in another order, summed_otherwise, at all for any other)."""
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
            ok = abs(mine - value) <= 1e-12 * abs(value) if summed_otherwise(name) else mine == value
            assert ok, (row["patient_id"], row["series_uid"], row["roi_label"], name, mine, value)
        compared += 1
    return compared
