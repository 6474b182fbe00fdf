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
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from . import mesh_shape
from .failures import is_machine_error
from .masks import bounding_box
from .records import image_sidecar
from .roi_names import FeatureRois

ID_COLUMNS = [
    "patient_id",
    "study_uid",
    "series_uid",
    "modality",
    "image_units",
    "roi",
    "roi_original",
    "roi_label",
    "rtstruct_series_uid",
    "relation",
    "status",
    "reason",
    "shared_with",  # an identical mask of the same image, extracted once: the label whose values the row carries
    "mask_voxels",
    "mask_volume_mm3",
    "resampled_voxels",
    "settings",
    "settings_sha256",
    "image_sha256",
    "mask_sha256",
    "radiomics_version",
    "simpleitk_version",
    "numpy_version",
    "seconds",
    "peak_rss_mb",
]
# What one extraction cost on this run's machine (seconds, peak resident MB): per series file and in
# results/features_cost.csv, never in the features tables, which must be the same on every rerun.
RUNTIME_COLUMNS = ["seconds", "peak_rss_mb"]
COST_COLUMNS = [
    "patient_id",
    "series_uid",
    "modality",
    "roi_label",
    "roi_original",
    "status",
    "mask_voxels",
    "resampled_voxels",
] + RUNTIME_COLUMNS


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
    # radflow's own switches (not pyradiomics'): fast_shape (default on) computes the shape class's mesh
    # coefficients with radflow.mesh_shape (the same values); false keeps pyradiomics' all-pairs diameters
    own = params.pop("radflow", None) or {}
    # pyradiomics' diagnostics (SHA-1 of the whole image and mask, label statistics) cost seconds per ROI on a
    # planning CT and radflow drops them; a settings file may still ask for them
    params["setting"] = dict(params.get("setting") or {})
    params["setting"].setdefault("additionalInfo", False)
    extractor = featureextractor.RadiomicsFeatureExtractor(params)
    extractor.radflow_ibsi = ibsi
    extractor.radflow_fast_shape = bool(own.get("fast_shape", True))
    if ibsi is not None:
        install_bin_start_hook()
    return extractor


def image_hash(image: sitk.Image) -> str:
    """SHA-256 (all 64 hex digits) of an image's voxels and geometry: equal images, equal hashes, whatever file."""
    h = hashlib.sha256(sitk.GetArrayViewFromImage(image).tobytes())
    h.update(
        repr(
            (
                image.GetSize(),
                image.GetSpacing(),
                image.GetOrigin(),
                image.GetDirection(),
                image.GetPixelIDTypeAsString(),
            )
        ).encode()
    )
    return h.hexdigest()


# Voxels kept around an ROI when the image is cropped before resampling: pyradiomics' padding, the cubic B-spline's
# support, and 24 voxels over which the B-spline prefilter's boundary condition fades (its pole is 0.268;
# 0.268**24 = 1.9e-14: at most 6e-11 HU over a 3,000 HU range, the size of the difference the crop's arithmetic
# makes anyway, measured 4.8e-11 on the demo's and the real CTs with 24, 32 and 48). An integer image keeps
# pyradiomics' values exactly (resample_cropped's TIE, 1e-9, is 16 times that); 48 took twice the time (BENCHMARKS.md).
CROP_MARGIN = 24
# How close to a whole number a resampled value may come before the cropped and the whole image's resampling (which
# differ by ~1e-13 relative) could be cast to different integers (resample_cropped)
TIE = 1e-9


def crop_margin(settings: dict, spacing, axis: int) -> int:
    """Voxels kept around an ROI along one axis when the image is cropped before extraction (resample_cropped):
    with resampling, pyradiomics' padding on the new grid, the B-spline's support and CROP_MARGIN; without, the
    padding pyradiomics crops to anyway."""
    pad = float(settings.get("padDistance", 5))
    spacing_to = settings.get("resampledPixelSpacing")
    if bool(spacing_to) and settings.get("interpolator") is not None:
        new = float(spacing_to[axis]) or spacing[axis]
        return int(np.ceil(pad * new / spacing[axis])) + 3 + CROP_MARGIN
    return int(np.ceil(pad)) + 1


# pyradiomics' image types prefix every feature name: original_, wavelet-LLH_, log-sigma-1-0-mm-3D_, square_, ...
FEATURE_PREFIXES = ("original_", "log-", "wavelet-", "square", "exponential", "logarithm", "gradient", "lbp-")


def pyradiomics_columns(table) -> list[str]:
    """The feature columns of a table (features, modelling, perturbed): pyradiomics' names, in the table's order."""
    return [c for c in table.columns if c.startswith(FEATURE_PREFIXES) and "diagnostics" not in c]


def feature_class(name: str) -> str:
    """A feature's class from its pyradiomics name (original_glcm_Idmn -> glcm); empty when it has none."""
    parts = name.split("_")
    return parts[1] if len(parts) >= 3 else ""


# Units of pyradiomics' shape features (3D and 2D), by feature name; the others are ratios ("1").
SHAPE_UNITS = {
    "MeshVolume": "mm³",
    "VoxelVolume": "mm³",
    "SurfaceArea": "mm²",
    "SurfaceVolumeRatio": "1/mm",
    "Maximum3DDiameter": "mm",
    "Maximum2DDiameterSlice": "mm",
    "Maximum2DDiameterColumn": "mm",
    "Maximum2DDiameterRow": "mm",
    "MajorAxisLength": "mm",
    "MinorAxisLength": "mm",
    "LeastAxisLength": "mm",
    "MeshSurface": "mm²",
    "PixelSurface": "mm²",
    "Perimeter": "mm",
    "PerimeterSurfaceRatio": "1/mm",
    "MaximumDiameter": "mm",
}
# first-order features in the square of the image's unit (TotalEnergy also times the voxel volume), or without one
FIRSTORDER_SQUARED = {"Energy", "Variance"}
FIRSTORDER_UNITLESS = {"Entropy", "Uniformity", "Skewness", "Kurtosis"}
# image types whose values keep the image's unit: the original, and linear filters normalised to it (pyradiomics'
# wavelet decomposition and its scale-normalised Laplacian of Gaussian)
SAME_UNIT_IMAGE_TYPES = ("wavelet-", "log-sigma-")


def intensity_unit(image_units: str, normalized: bool = False) -> str:
    """The unit of an image's intensities as the settings see them (what a bin width, a re-segmentation range or a
    first-order feature is in): HU, SUVbw, Gy, Bq/ml …; "1" after normalisation; "" where the values are as
    stored."""
    if normalized:
        return "1"
    return {"BQML": "Bq/ml", "as stored": ""}.get(image_units, str(image_units).split(" (")[0])


def feature_unit(name: str, image_units: str, normalized: bool = False) -> str:
    """The unit of a pyradiomics feature column for an image in image_units (HU, SUVbw (g/ml), …): mm, mm², mm³ or
    1/mm for sizes; the image's unit (or its square) for first-order statistics of intensity; "1" for ratios and
    for every texture feature (computed on discretised grey levels, not on the intensities); "" where radflow does
    not state one (first-order features of images of a non-linear filter: square, exponential, logarithm …, or of an
    image whose values are as stored). normalized: the settings' `normalize` (intensities become z-scores: "1")."""
    parts = name.split("_", 2)
    if len(parts) < 3:
        return ""
    image_type, cls, feature = parts
    if cls.startswith("shape"):
        return SHAPE_UNITS.get(feature, "1")
    if cls != "firstorder":
        return "1"
    if feature in FIRSTORDER_UNITLESS:
        return "1"
    if image_type != "original" and not image_type.startswith(SAME_UNIT_IMAGE_TYPES):
        return ""
    unit = intensity_unit(image_units, normalized)
    if not unit:
        return ""
    squared = "1" if unit == "1" else f"{unit}²"
    if feature == "TotalEnergy":
        return "mm³" if unit == "1" else f"{squared}·mm³"
    return squared if feature in FIRSTORDER_SQUARED else unit


def resample_cropped(image: sitk.Image, mask: sitk.Image, settings: dict, label: int = 1, image_types=("Original",)):
    """The image and mask pyradiomics would extract from, computed from only the part of the image around the ROI;
    None where that does not apply (pyradiomics then does it all).

    pyradiomics resamples the whole image for every ROI: on a 512 x 512 x 150 CT the B-spline prefilter alone takes
    over a second per ROI, and the label checks of the whole mask as much again. With resampling, the output grid
    is pyradiomics' own (imageoperations.resampleImage, given the whole mask); only the image is cropped, to the
    ROI's bounding box plus a margin in which the prefilter's boundary effect vanishes. Without resampling, image
    and mask are cropped to the bounding box plus padDistance, which pyradiomics crops to anyway (only for the
    Original image type: filters would see the crop's edges). Either way the values are those of pyradiomics on
    the whole image, bit for bit (tested feature by feature, flat whole-number regions included: where a resampled
    value the features read lies within TIE of a whole number, None, and pyradiomics resamples the whole image).
    Not used with normalize (its statistics are over the whole image) or when the mask is not on the image's grid."""
    from radiomics import imageoperations

    spacing_to = settings.get("resampledPixelSpacing")
    resample = bool(spacing_to) and settings.get("interpolator") is not None
    if settings.get("normalize") or (not resample and set(image_types) != {"Original"}):
        return None
    if mask.GetSize() != image.GetSize() or not (
        np.allclose(mask.GetOrigin(), image.GetOrigin(), atol=1e-4)
        and np.allclose(mask.GetSpacing(), image.GetSpacing(), atol=1e-6)
        and np.allclose(mask.GetDirection(), image.GetDirection(), atol=1e-6)
    ):
        return None
    box = bounding_box(sitk.GetArrayViewFromImage(mask) == label)  # (x, y, z) first voxel, then extent
    if not all(box[3:]):
        return None  # pyradiomics says what is wrong with an empty mask
    lo, hi = box[:3], [a + n - 1 for a, n in zip(box[:3], box[3:])]
    size = image.GetSize()
    start, extent = [], []
    for k in range(3):
        margin = crop_margin(settings, image.GetSpacing(), k)
        a, b = max(lo[k] - margin, 0), min(hi[k] + margin, size[k] - 1)
        start.append(a)
        extent.append(b - a + 1)
    if extent == list(size):
        return None
    crop = sitk.RegionOfInterest(image, extent, start)
    if not resample:
        return crop, sitk.Cast(sitk.RegionOfInterest(mask, extent, start), sitk.sitkUInt32)
    whole_mask = sitk.Cast(mask, sitk.sitkUInt32)
    if crop.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64):
        return imageoperations.resampleImage(crop, whole_mask, **dict(settings, label=label))
    # an integer image: pyradiomics resamples in double precision and casts back, truncating (ITK's static_cast with
    # clamping). The same, from the crop's double-precision resampling, unless a value the features read lies within
    # rounding of a whole number, where the crop's ~1e-13 could truncate to another integer than the whole image's
    # (flat regions: air at exactly -1000 HU, padding at -1024): then the whole image is resampled, as pyradiomics does
    as_double, mask_out = imageoperations.resampleImage(
        sitk.Cast(crop, sitk.sitkFloat64), whole_mask, **dict(settings, label=label)
    )
    values = sitk.GetArrayViewFromImage(as_double)
    inside = values[sitk.GetArrayViewFromImage(mask_out) == label]
    if np.any(np.abs(inside - np.round(inside)) <= TIE * np.maximum(1.0, np.abs(inside))):
        return None
    dtype = sitk.GetArrayViewFromImage(crop).dtype
    limits = np.iinfo(dtype)
    image_out = sitk.GetImageFromArray(np.clip(np.trunc(values), limits.min, limits.max).astype(dtype))
    image_out.CopyInformation(as_double)
    return image_out, mask_out


def extract_roi(
    extractor, image: sitk.Image, mask: sitk.Image, label: int = 1, info: dict | None = None
) -> tuple[dict, str]:
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
        else:
            cropped = resample_cropped(image, mask, extractor.settings, label, extractor.enabledImagetypes)
            if cropped is not None:
                image, mask = cropped
                extractor.settings.update(resampledPixelSpacing=None)  # done, on the grid pyradiomics would use
                if info is not None:
                    info["resampled_voxels"] = int((sitk.GetArrayViewFromImage(mask) == label).sum())
        with mesh_shape.enabled(getattr(extractor, "radflow_fast_shape", True)):
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


def extract_series(
    image_path,
    masks_dir,
    settings_path,
    feature_rois: FeatureRois | None = None,
    max_roi_voxels: int | None = None,
    progress=None,
) -> pd.DataFrame:
    """One row per mask in masks_dir (as listed in its masks.json) for the image at image_path.

    feature_rois (radflow.roi_names.FeatureRois; None: every ROI) says which ROIs get features; points and markers
    never do; an ROI of more than max_roi_voxels voxels after the settings' resampling is skipped. The others'
    rows say why (status "skipped"). progress: a file to which one line per ROI is written as it is done (name,
    voxels after resampling, seconds, peak memory); the same numbers are in the row (RUNTIME_COLUMNS)."""
    import radiomics

    job_started = time.perf_counter()
    image_path, masks_dir, settings_path = Path(image_path), Path(masks_dir), Path(settings_path)
    sidecar = json.loads(image_sidecar(image_path).read_text())
    masks = json.loads((masks_dir / "masks.json").read_text())
    # the settings file by its full SHA-256: results/provenance/ keeps a copy under the same hash
    settings_hash = hashlib.sha256(settings_path.read_bytes()).hexdigest()
    limits = roi_limits(settings_path)
    failed_image = sidecar.get("status") == "failed"
    extractor = None
    extracted: dict[str, tuple[str, dict]] = {}  # mask SHA-256 -> (label, row) of the ROIs extracted so far
    image = None if failed_image else sitk.ReadImage(str(image_path))  # once for all ROIs
    image_sha = "" if failed_image else image_hash(image)
    rows = []
    for m in masks:
        row = dict(
            patient_id=sidecar["patient_id"],
            study_uid=sidecar["study_uid"],
            series_uid=sidecar["series_uid"],
            modality=sidecar["modality"],
            image_units=sidecar.get("units", ""),
            roi=m["roi"],
            roi_original=m["roi_original"],
            roi_label=m["label"],
            rtstruct_series_uid=m["rtstruct_series_uid"],
            relation=m.get("relation", ""),
            status="ok",
            reason="",
            shared_with="",
            mask_voxels=m["voxel_count"],
            mask_volume_mm3=m["volume_mm3"],
            resampled_voxels=np.nan,
            settings=settings_path.name,
            settings_sha256=settings_hash,
            image_sha256=image_sha,
            mask_sha256="",
            radiomics_version=str(radiomics.__version__),
            simpleitk_version=sitk.Version_VersionString(),
            numpy_version=np.__version__,
            seconds=np.nan,
            peak_rss_mb=np.nan,
        )
        if m.get("status") == "failed" or failed_image:
            row.update(status="failed", reason=m.get("reason") or sidecar.get("reason", "failed"))
        elif skip := skip_reason(m, image.GetSpacing(), limits, feature_rois, max_roi_voxels):
            row.update(status="skipped", reason=skip)
        elif m["voxel_count"] == 0:
            why = "; ".join(dict.fromkeys(list(m.get("warnings", [])) + list(m.get("notes", []))))
            row.update(
                status="failed",
                reason=f"empty mask: ROI '{m['roi_original']}' covers no voxel of this image"
                + (f" ({why})" if why else ""),
            )
        else:
            _reset_peak_memory()
            started = time.perf_counter()
            try:
                extractor = extractor or make_extractor(settings_path)
                row.update(_roi_row(extractor, image, masks_dir, m, limits, extracted))
            except Exception as err:  # nothing one ROI does takes the other ROIs of its series down
                if is_machine_error(err):
                    raise
                row.update(status="failed", reason=f"ROI '{m['roi_original']}': {type(err).__name__}: {err}")
            row.update(seconds=round(time.perf_counter() - started, 3), peak_rss_mb=_peak_memory_mb())
        if progress is not None:
            voxels = "" if pd.isna(row["resampled_voxels"]) else f"{int(row['resampled_voxels']):,} voxels resampled, "
            timing = "" if pd.isna(row["seconds"]) else f"{row['seconds']:.1f} s, peak {row['peak_rss_mb']:.0f} MB, "
            print(
                f"ROI {m['label'] or m['roi_original']} ('{m['roi_original']}'): {m['voxel_count']:,} mask voxels, "
                f"{voxels}{timing}{row['status']}" + (f": {row['reason']}" if row["reason"] else ""),
                file=progress,
                flush=True,
            )
        rows.append(row)
    table = _ordered(pd.DataFrame(rows))
    if progress is not None:
        counts = ", ".join(f"{n} {status}" for status, n in table["status"].value_counts().sort_index().items())
        print(
            f"{len(table)} ROIs ({counts}) in {time.perf_counter() - job_started:.1f} s; peak resident memory "
            f"of the job {job_peak_mb():.0f} MB",
            file=progress,
            flush=True,
        )
    return table


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
# ROI, which grows faster than its voxels (pyradiomics' size-zone matrix is grey levels x the largest zone: a
# 19-million-voxel body outline peaked at 15.6 GB, a 1.7-million-voxel PTV at 1.3 GB, a 3-million-voxel lung at
# 1.1 GB); time = start-up + per ROI a part that grows with the image + the ROI's resampled voxels (lung
# parenchyma took 41-46 s per million voxels, a body outline 25, tumours 13-20).
BASE_MB = 330
MB_PER_MVOXEL_IMAGE = 12
MB_PER_MVOXEL_ROI = 420
MB_PER_MVOXEL_ROI_SQUARED = 20
SECONDS_START = 20.0
SECONDS_PER_ROI = 0.5
SECONDS_PER_ROI_PER_MVOXEL_IMAGE = 0.03
SECONDS_PER_MVOXEL = 50.0


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
        if m.get("bounding_box") and _too_few_dimensions(m["bounding_box"][3:], "", limits):
            continue  # fails before pyradiomics
        n += 1
        voxels = resampled_voxel_estimate(m["voxel_count"], spacing, limits["spacing"])
        largest = max(largest, voxels)
        seconds += (
            SECONDS_PER_ROI + SECONDS_PER_ROI_PER_MVOXEL_IMAGE * image_mvoxels + SECONDS_PER_MVOXEL * voxels / 1e6
        )
    v = largest / 1e6
    mem = BASE_MB + MB_PER_MVOXEL_IMAGE * image_mvoxels + MB_PER_MVOXEL_ROI * v + MB_PER_MVOXEL_ROI_SQUARED * v * v
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


def _too_few_dimensions(extent, name: str, limits: dict) -> str:
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


_JOB_PEAK_MB = 0.0


def job_peak_mb() -> float:
    """Peak resident memory (MB) of this process since it started, across the per-ROI resets."""
    return max(_JOB_PEAK_MB, _peak_memory_mb())


def _reset_peak_memory():
    """Start a new peak of resident memory for this process (Linux: /proc/self/clear_refs, value 5); the peak
    so far is kept for job_peak_mb."""
    global _JOB_PEAK_MB
    _JOB_PEAK_MB = job_peak_mb()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_memory_mb() -> float:
    """Peak resident memory (MB) of this process since _reset_peak_memory (else since it started)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _roi_row(
    extractor, image: sitk.Image, masks_dir: Path, m: dict, limits: dict, extracted: dict | None = None
) -> dict:
    """The status, reason, mask hash and features of one ROI's row. extracted: {mask SHA-256: (label, row)} of the
    image's ROIs done before; a mask identical voxel for voxel to one of them (the same GTV from the CT's, the MR's
    and the PET's structure set of one frame of reference) takes that ROI's values, saying so in shared_with: the
    same image, mask and settings give the same numbers."""
    mask = sitk.ReadImage(str(masks_dir / f"{m['label']}.nii.gz"))
    row = dict(mask_sha256=image_hash(mask))
    if extracted is not None and row["mask_sha256"] in extracted:
        label, done = extracted[row["mask_sha256"]]
        return done | row | dict(shared_with=label)
    row = _extracted_row(extractor, image, mask, m, limits, row)
    if extracted is not None and row.get("status", "ok") == "ok":
        extracted[row["mask_sha256"]] = (m["label"], row)
    return row


def _extracted_row(extractor, image: sitk.Image, mask: sitk.Image, m: dict, limits: dict, row: dict) -> dict:
    """An ROI's row from pyradiomics: its features, or why there are none (too small, flat, failed)."""
    box = m.get("bounding_box") or bounding_box(sitk.GetArrayViewFromImage(mask))
    small = _too_few_dimensions(box[3:], m["roi_original"], limits)
    if small:
        return row | dict(status="failed", reason=small)
    info = {}
    values, failure = extract_roi(extractor, image, mask, info=info)
    row["resampled_voxels"] = info.get("resampled_voxels", m["voxel_count"] if not limits["spacing"] else np.nan)
    if pd.isna(row["resampled_voxels"]) and "original_shape_VoxelVolume" in values:  # pyradiomics resampled it
        new = [r or s for r, s in zip(limits["spacing"], image.GetSpacing())]
        row["resampled_voxels"] = int(round(values["original_shape_VoxelVolume"] / float(np.prod(new))))
    (x, y, z), (nx, ny, nz) = box[:3], box[3:]
    region = np.s_[z : z + nz, y : y + ny, x : x + nx]
    inside = sitk.GetArrayViewFromImage(image)[region][sitk.GetArrayViewFromImage(mask)[region] > 0]
    if inside.size > 1 and np.ptp(inside) == 0:  # before pyradiomics' own verdict: normalising 0/0 gives NaN
        row.update(
            status="flat",
            reason=f"every voxel of ROI '{m['roi_original']}' has the same intensity "
            f"({float(inside[0]):g}): texture features are undefined" + (f"; {failure}" if failure else ""),
        )
    elif failure:
        row.update(status="failed", reason=failure)
    elif values.get("original_firstorder_Range", 1.0) == 0:
        row.update(
            status="flat",
            reason=f"every voxel of ROI '{m['roi_original']}' has the same intensity "
            "after pre-processing: texture features are undefined",
        )
    row.update(values)
    return row


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    for c in ID_COLUMNS:
        if c not in df.columns:
            df[c] = pd.Series(dtype=object)
    # a whole number or empty (not extracted), the same type whichever rows a series has
    df["resampled_voxels"] = pd.to_numeric(df["resampled_voxels"], errors="coerce").round().astype("Int64")
    features = [c for c in df.columns if c not in ID_COLUMNS]
    return df[ID_COLUMNS + features]


def long_table(wide: pd.DataFrame) -> pd.DataFrame:
    """One row per patient x series x ROI x feature: the wide table's identifiers, feature name and value."""
    keys = ["patient_id", "study_uid", "series_uid", "modality", "roi", "roi_original", "roi_label", "status"]
    features = [c for c in wide.columns if c not in ID_COLUMNS]
    long = wide[keys + features].melt(id_vars=keys, var_name="feature", value_name="value")
    return long.dropna(subset=["value"]).sort_values(keys[:3] + ["roi_label", "feature"], ignore_index=True)


def merge_features(paths, out_parquet, out_csv, long_parquet=None, long_csv=None, cost_csv=None) -> pd.DataFrame:
    """The wide (and long) features tables of every series file; the run's own cost per ROI (seconds, peak memory)
    goes to cost_csv only, so that a rerun of the same input writes the same features tables."""
    frames = [pd.read_parquet(p) for p in paths]
    frames = [f for f in frames if len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ID_COLUMNS)
    df = _ordered(df).sort_values(["patient_id", "study_uid", "modality", "series_uid", "roi_label"], ignore_index=True)
    if cost_csv:
        df[COST_COLUMNS].to_csv(cost_csv, index=False)
    df = df.drop(columns=RUNTIME_COLUMNS)
    df.to_parquet(out_parquet, index=False)
    df.to_csv(out_csv, index=False)
    if long_parquet or long_csv:
        long = long_table(df)
        if long_parquet:
            long.to_parquet(long_parquet, index=False)
        if long_csv:
            long.to_csv(long_csv, index=False)
    return df
