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

from radflow.dicom.geometry import bounding_box
from radflow.failures import is_machine_error
from radflow.features import mesh_shape, preparation, size_zones
from radflow.features.budget import roi_limits, skip_reason, too_few_dimensions
from radflow.records import image_sidecar
from radflow.roi_names import FeatureRois
from radflow.tables import ordered_features

# The keys of a settings file's `radflow:` block (removed before pyradiomics reads the file)
FAST_PATHS = ("fast_shape", "fast_preparation", "fast_size_zones")


def make_extractor(settings_path):
    """A pyradiomics extractor from a settings file. An `ibsi:` block in the file (radflow's, not pyradiomics')
    switches on the IBSI-compliant pre-processing of radflow.features.ibsi_mode for every extraction with it."""
    import yaml
    from radiomics import featureextractor, setVerbosity

    from radflow.features.ibsi_mode import install_bin_start_hook

    setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    params = yaml.safe_load(Path(settings_path).read_text()) or {}
    ibsi = params.pop("ibsi", None)
    # radflow's own switches (not pyradiomics'), each on by default, each with pyradiomics' values: fast_shape (the
    # shape class's mesh coefficients by radflow.features.mesh_shape; false keeps pyradiomics' all-pairs diameters)
    # fast_preparation (radflow.features.preparation; false keeps pyradiomics' own preparation of each ROI) and
    # fast_size_zones (radflow.features.size_zones: the GLSZM without pyradiomics' dense grey levels x sizes matrix)
    own = params.pop("radflow", None) or {}
    unknown = sorted(set(own) - set(FAST_PATHS)) if isinstance(own, dict) else ["(not a mapping)"]
    if unknown:
        raise ValueError(
            f"{settings_path}: radflow: {', '.join(map(str, unknown))} is not one of radflow's settings "
            f"({', '.join(FAST_PATHS)}, each true or false)"
        )
    # pyradiomics' diagnostics (SHA-1 of the whole image and mask, label statistics) cost seconds per ROI on a
    # planning CT and radflow drops them; a settings file may still ask for them
    params["setting"] = dict(params.get("setting") or {})
    params["setting"].setdefault("additionalInfo", False)
    extractor = featureextractor.RadiomicsFeatureExtractor(params)
    extractor.radflow_ibsi = ibsi
    extractor.radflow_fast_shape = bool(own.get("fast_shape", True))
    extractor.radflow_fast_preparation = bool(own.get("fast_preparation", True))
    extractor.radflow_fast_size_zones = bool(own.get("fast_size_zones", True))
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
            from radflow.features.ibsi_mode import preprocess

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
        with (
            mesh_shape.enabled(getattr(extractor, "radflow_fast_shape", True)),
            preparation.enabled(getattr(extractor, "radflow_fast_preparation", True)),
            size_zones.enabled(getattr(extractor, "radflow_fast_size_zones", True)),
        ):
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
        from radflow.features.ibsi_mode import ibsi_columns

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
    table = ordered_features(pd.DataFrame(rows))
    if progress is not None:
        counts = ", ".join(f"{n} {status}" for status, n in table["status"].value_counts().sort_index().items())
        print(
            f"{len(table)} ROIs ({counts}) in {time.perf_counter() - job_started:.1f} s; peak resident memory "
            f"of the job {job_peak_mb():.0f} MB",
            file=progress,
            flush=True,
        )
    return table


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
    small = too_few_dimensions(box[3:], m["roi_original"], limits)
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
