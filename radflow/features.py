"""pyradiomics features per image series x ROI, with one settings file per modality.

A failure for one ROI (an empty mask, an ROI smaller than the settings allow) becomes a row with status "failed"
and the reason; it never stops the other ROIs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

ID_COLUMNS = ["patient_id", "study_uid", "series_uid", "modality", "roi", "roi_original", "roi_label",
              "rtstruct_series_uid", "relation", "status", "reason", "mask_voxels", "mask_volume_mm3",
              "settings", "settings_sha256", "radiomics_version"]


def _extractor(settings_path):
    from radiomics import featureextractor, setVerbosity

    setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    return featureextractor.RadiomicsFeatureExtractor(str(settings_path))


def settings_for(modality: str, settings_dir) -> Path:
    path = Path(settings_dir) / f"{modality}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no pyradiomics settings for modality {modality}: {path} does not exist")
    return path


def extract_series(image_path, masks_dir, settings_path) -> pd.DataFrame:
    """One row per mask in masks_dir (as listed in its masks.json) for the image at image_path."""
    import radiomics

    image_path, masks_dir, settings_path = Path(image_path), Path(masks_dir), Path(settings_path)
    sidecar = json.loads(image_path.with_name(image_path.name.replace(".nii.gz", ".json")).read_text())
    masks = json.loads((masks_dir / "masks.json").read_text())
    settings_hash = hashlib.sha256(settings_path.read_bytes()).hexdigest()[:16]
    extractor = _extractor(settings_path)
    image = sitk.ReadImage(str(image_path))
    rows = []
    for m in masks:
        row = dict(patient_id=sidecar["patient_id"], study_uid=sidecar["study_uid"], series_uid=sidecar["series_uid"],
                   modality=sidecar["modality"], roi=m["roi"], roi_original=m["roi_original"], roi_label=m["label"],
                   rtstruct_series_uid=m["rtstruct_series_uid"], relation=m.get("relation", ""), status="ok",
                   reason="", mask_voxels=m["voxel_count"], mask_volume_mm3=m["volume_mm3"],
                   settings=settings_path.name, settings_sha256=settings_hash,
                   radiomics_version=str(radiomics.__version__))
        if m["voxel_count"] == 0:
            row.update(status="failed", reason="empty mask: the ROI covers no voxel of this image")
            rows.append(row)
            continue
        mask = sitk.ReadImage(str(masks_dir / f"{m['label']}.nii.gz"))
        try:
            result = extractor.execute(image, mask, label=1)
        except Exception as err:  # pyradiomics raises ValueError/AssertionError for small or flat ROIs
            row.update(status="failed", reason=f"pyradiomics: {type(err).__name__}: {err}".strip())
            rows.append(row)
            continue
        for key, value in result.items():
            if key.startswith("diagnostics_"):
                continue
            row[key] = float(np.asarray(value)) if np.ndim(value) == 0 else json.dumps(np.asarray(value).tolist())
        rows.append(row)
    return _ordered(pd.DataFrame(rows))


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    for c in ID_COLUMNS:
        if c not in df.columns:
            df[c] = pd.Series(dtype=object)
    features = [c for c in df.columns if c not in ID_COLUMNS]
    return df[ID_COLUMNS + features]


def merge_features(paths, out_parquet, out_csv) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in paths]
    frames = [f for f in frames if len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ID_COLUMNS)
    df = _ordered(df).sort_values(["patient_id", "study_uid", "modality", "series_uid", "roi_label"],
                                  ignore_index=True)
    df.to_parquet(out_parquet, index=False)
    df.to_csv(out_csv, index=False)
    return df
