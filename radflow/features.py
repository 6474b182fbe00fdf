"""pyradiomics features per image series x ROI, with one settings file per modality.

The image is read once for all its ROIs. A failure for one ROI (an empty mask, an ROI smaller than the settings
allow, an error inside pyradiomics) becomes a row with status "failed" and the reason; flat intensities give
status "flat" (texture undefined). Nothing stops the other ROIs. Every row carries its provenance: pyradiomics,
SimpleITK and numpy versions, the settings hash, and hashes of the image and mask voxels.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from .failures import is_machine_error

ID_COLUMNS = ["patient_id", "study_uid", "series_uid", "modality", "roi", "roi_original", "roi_label",
              "rtstruct_series_uid", "relation", "status", "reason", "mask_voxels", "mask_volume_mm3",
              "settings", "settings_sha256", "image_sha256", "mask_sha256", "radiomics_version",
              "simpleitk_version", "numpy_version"]


def make_extractor(settings_path):
    """A pyradiomics extractor from a settings file. An `ibsi:` block in the file (radflow's, not pyradiomics')
    switches on the IBSI-compliant pre-processing of radflow.ibsi_mode for every extraction with it."""
    import yaml
    from radiomics import featureextractor, setVerbosity

    from .ibsi_mode import install_bin_start_hook

    setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    params = yaml.safe_load(Path(settings_path).read_text()) or {}
    ibsi = params.pop("ibsi", None)
    extractor = featureextractor.RadiomicsFeatureExtractor(params)
    extractor.radflow_ibsi = ibsi
    if ibsi is not None:
        install_bin_start_hook()
    return extractor


def image_hash(image: sitk.Image) -> str:
    """SHA-256 (16 hex digits) of an image's voxels and geometry: equal images, equal hashes, whatever file."""
    h = hashlib.sha256(sitk.GetArrayViewFromImage(image).tobytes())
    h.update(repr((image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection(),
                   image.GetPixelIDTypeAsString())).encode())
    return h.hexdigest()[:16]


def extract_roi(extractor, image: sitk.Image, mask: sitk.Image, label: int = 1) -> tuple[dict, str]:
    """(features, failure reason or "") of one image and mask, diagnostics dropped. With an IBSI-mode extractor the
    image and mask are pre-processed the IBSI way first and IBSI-defined columns (ibsi_*) are added."""
    ibsi = getattr(extractor, "radflow_ibsi", None)
    audit = {}
    saved = dict(extractor.settings)
    try:
        if ibsi is not None:
            from .ibsi_mode import preprocess

            image, mask, overrides, audit = preprocess(image, mask, ibsi, label)
            label = 1
            extractor.settings.update(overrides)
        result = extractor.execute(image, mask, label=label)
    except Exception as err:  # pyradiomics raises ValueError/AssertionError for small or empty ROIs
        if is_machine_error(err):  # too little memory: fail the job, so that the retry gets more
            raise
        return {}, f"pyradiomics: {type(err).__name__}: {err}".strip()
    finally:
        extractor.settings.clear()
        extractor.settings.update(saved)
    try:
        values = feature_values(result)
    except FeatureValueError as err:
        return {}, f"pyradiomics: {err}"
    if ibsi is not None:
        from .ibsi_mode import ibsi_columns

        values.update(ibsi_columns(values, audit["roi_voxels"]))
        values["ibsi_roi_voxels"] = float(audit["roi_voxels"])
        values["ibsi_intensity_roi_voxels"] = float(audit["intensity_roi_voxels"])
    return values, ""


class FeatureValueError(ValueError):
    """A pyradiomics result that is not a real number."""


# A complex value whose imaginary part is below this (relative to its size, at least 1) is a real number that went
# through a general eigen-decomposition: pyradiomics' shape features take numpy.linalg.eig of a symmetric
# covariance, and for a symmetric ROI (two equal eigenvalues) LAPACK on some CPUs returns a conjugate pair with an
# imaginary part of 1e-17 where others return real values.
IMAGINARY_TOLERANCE = 1e-9


def feature_value(name: str, value):
    """One pyradiomics result as the table holds it: a float (arrays as JSON lists of floats).

    Complex values at rounding level become their real part, the same rule on every CPU; any other complex
    value, or a value that is not a number, raises FeatureValueError naming the feature."""
    arr = np.asarray(value)
    if np.iscomplexobj(arr):
        imaginary = np.abs(arr.imag)
        if (imaginary > IMAGINARY_TOLERANCE * np.maximum(1.0, np.abs(arr.real))).any():
            raise FeatureValueError(f"{name} is complex ({value!r}): its imaginary part is not at rounding level")
        arr = arr.real
    if arr.dtype.kind not in "biuf":
        raise FeatureValueError(f"{name} is not a number ({value!r})")
    return float(arr) if arr.ndim == 0 else json.dumps(arr.astype(float).tolist())


def feature_values(result) -> dict:
    """The features of one pyradiomics result (diagnostics dropped), each through feature_value."""
    return {key: feature_value(key, value) for key, value in result.items() if not key.startswith("diagnostics_")}


def extract_series(image_path, masks_dir, settings_path) -> pd.DataFrame:
    """One row per mask in masks_dir (as listed in its masks.json) for the image at image_path."""
    import radiomics

    image_path, masks_dir, settings_path = Path(image_path), Path(masks_dir), Path(settings_path)
    sidecar = json.loads(image_path.with_name(image_path.name.replace(".nii.gz", ".json")).read_text())
    masks = json.loads((masks_dir / "masks.json").read_text())
    settings_hash = hashlib.sha256(settings_path.read_bytes()).hexdigest()[:16]
    failed_image = sidecar.get("status") == "failed"
    extractor = None if failed_image else make_extractor(settings_path)
    image = None if failed_image else sitk.ReadImage(str(image_path))  # once for all ROIs
    image_sha = "" if failed_image else image_hash(image)
    rows = []
    for m in masks:
        row = dict(patient_id=sidecar["patient_id"], study_uid=sidecar["study_uid"], series_uid=sidecar["series_uid"],
                   modality=sidecar["modality"], roi=m["roi"], roi_original=m["roi_original"], roi_label=m["label"],
                   rtstruct_series_uid=m["rtstruct_series_uid"], relation=m.get("relation", ""), status="ok",
                   reason="", mask_voxels=m["voxel_count"], mask_volume_mm3=m["volume_mm3"],
                   settings=settings_path.name, settings_sha256=settings_hash, image_sha256=image_sha,
                   mask_sha256="", radiomics_version=str(radiomics.__version__),
                   simpleitk_version=sitk.Version_VersionString(), numpy_version=np.__version__)
        if m.get("status") == "failed" or failed_image:
            row.update(status="failed", reason=m.get("reason") or sidecar.get("reason", "failed"))
            rows.append(row)
            continue
        if m["voxel_count"] == 0:
            why = "; ".join(dict.fromkeys(list(m.get("warnings", [])) + list(m.get("notes", []))))
            row.update(status="failed", reason=f"empty mask: ROI '{m['roi_original']}' covers no voxel of this image"
                                               + (f" ({why})" if why else ""))
            rows.append(row)
            continue
        try:
            row.update(_roi_row(extractor, image, masks_dir, m))
        except Exception as err:  # nothing one ROI does takes the other ROIs of its series down
            if is_machine_error(err):
                raise
            row.update(status="failed", reason=f"ROI '{m['roi_original']}': {type(err).__name__}: {err}")
        rows.append(row)
    return _ordered(pd.DataFrame(rows))


def _roi_row(extractor, image: sitk.Image, masks_dir: Path, m: dict) -> dict:
    """The status, reason, mask hash and features of one ROI's row."""
    mask = sitk.ReadImage(str(masks_dir / f"{m['label']}.nii.gz"))
    row = dict(mask_sha256=image_hash(mask))
    values, failure = extract_roi(extractor, image, mask)
    inside = sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(mask) > 0]
    if inside.size > 1 and np.ptp(inside) == 0:  # before pyradiomics' own verdict: normalising 0/0 gives NaN
        row.update(status="flat", reason=f"every voxel of ROI '{m['roi_original']}' has the same intensity "
                                         f"({float(inside[0]):g}): texture features are undefined"
                                         + (f"; {failure}" if failure else ""))
    elif failure:
        row.update(status="failed", reason=failure)
    elif values.get("original_firstorder_Range", 1.0) == 0:
        row.update(status="flat", reason=f"every voxel of ROI '{m['roi_original']}' has the same intensity "
                                         "after pre-processing: texture features are undefined")
    row.update(values)
    return row


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    for c in ID_COLUMNS:
        if c not in df.columns:
            df[c] = pd.Series(dtype=object)
    features = [c for c in df.columns if c not in ID_COLUMNS]
    return df[ID_COLUMNS + features]


def long_table(wide: pd.DataFrame) -> pd.DataFrame:
    """One row per patient x series x ROI x feature: the wide table's identifiers, feature name and value."""
    keys = ["patient_id", "study_uid", "series_uid", "modality", "roi", "roi_original", "roi_label", "status"]
    features = [c for c in wide.columns if c not in ID_COLUMNS]
    long = wide[keys + features].melt(id_vars=keys, var_name="feature", value_name="value")
    return long.dropna(subset=["value"]).sort_values(keys[:3] + ["roi_label", "feature"], ignore_index=True)


def merge_features(paths, out_parquet, out_csv, long_parquet=None, long_csv=None) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in paths]
    frames = [f for f in frames if len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ID_COLUMNS)
    df = _ordered(df).sort_values(["patient_id", "study_uid", "modality", "series_uid", "roi_label"],
                                  ignore_index=True)
    df.to_parquet(out_parquet, index=False)
    df.to_csv(out_csv, index=False)
    if long_parquet or long_csv:
        long = long_table(df)
        if long_parquet:
            long.to_parquet(long_parquet, index=False)
        if long_csv:
            long.to_csv(long_csv, index=False)
    return df
