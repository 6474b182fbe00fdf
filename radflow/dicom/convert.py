"""One DICOM image series to one NIfTI volume with exactly the DICOM geometry, plus a JSON sidecar.

CT in HU, PET in SUVbw, MR as stored (float32): radflow.modalities says which modality is made how. Rescale slope
and intercept are applied slice by slice.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from radflow import __version__
from radflow.dicom.geometry import (
    POSITION_TOLERANCE_MM,
    WARN_DRIFT_MM,
    WARN_SPACING_FRACTION,
    Grid,
    direction_from_orientation,
)
from radflow.dicom.suv import SUVError, suv_factors, suv_tags
from radflow.failures import write_image
from radflow.ids import normalise_barcode
from radflow.modalities import image_modality
from radflow.modalities import units as modality_units
from radflow.records import image_sidecar


class ConversionError(ValueError):
    """A series cannot be converted; the message names the series and the reason."""


def stack_geometry(datasets) -> tuple[list, Grid, list[str]]:
    """(datasets sorted along the slice normal, grid, warnings) of one series' slices (headers suffice)."""
    if not datasets:
        raise ConversionError("no files given")
    uids = {str(ds.SeriesInstanceUID) for ds in datasets}
    if len(uids) != 1:
        raise ConversionError(f"files belong to {len(uids)} series, expected one: {sorted(uids)}")
    uid = uids.pop()
    orientations = {tuple(round(float(v), 5) for v in ds.ImageOrientationPatient) for ds in datasets}
    if len(orientations) != 1:
        raise ConversionError(f"series {uid}: {len(orientations)} different slice orientations")
    direction = direction_from_orientation(datasets[0].ImageOrientationPatient)
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets])
    along = positions @ direction[:, 2]
    order = np.argsort(along, kind="stable")
    datasets = [datasets[i] for i in order]
    positions, along = positions[order], along[order]
    steps = np.diff(along)
    if len(datasets) < 2:
        raise ConversionError(f"series {uid}: a single slice is not a volume")
    if (steps < POSITION_TOLERANCE_MM).any():
        raise ConversionError(f"series {uid}: duplicate slice positions")
    # The mean step over the whole stack: exact for uniform series, and free of one slice's rounding noise.
    spacing_z = float((along[-1] - along[0]) / (len(along) - 1))
    warnings = []
    if np.abs(steps - spacing_z).max() > WARN_SPACING_FRACTION * spacing_z:
        warnings.append(
            f"slice spacing varies from {steps.min():.4f} to {steps.max():.4f} mm; the mean {spacing_z:.4f} mm is used"
        )
    # Slices must stack along the normal; an in-plane drift (gantry tilt) would need resampling.
    drift = positions - positions[0] - np.outer(along - along[0], direction[:, 2])
    if np.abs(drift).max() > WARN_DRIFT_MM:
        warnings.append(
            f"slice positions drift {np.abs(drift).max():.3f} mm off the slice normal "
            "(gantry tilt?); geometry follows the first slice"
        )
    shapes = {(int(ds.Rows), int(ds.Columns)) for ds in datasets}
    if len(shapes) != 1:
        raise ConversionError(f"series {uid}: several matrix sizes {sorted(shapes)}")
    rows, cols = shapes.pop()
    ps = [float(v) for v in datasets[0].PixelSpacing]  # (row spacing, column spacing)
    grid = Grid(
        size=(cols, rows, len(datasets)),
        spacing=(ps[1], ps[0], spacing_z),
        origin=tuple(positions[0]),
        direction=tuple(direction.ravel()),
    )
    return datasets, grid, warnings


def series_grid(files_or_headers) -> Grid:
    """The grid of an image series from its headers alone (no pixel data is read)."""
    headers = [
        f if isinstance(f, pydicom.Dataset) else pydicom.dcmread(f, stop_before_pixels=True) for f in files_or_headers
    ]
    return stack_geometry(headers)[1]


# Acquisition and reconstruction parameters kept in the sidecar for the methods and the reporting checklists
# (radflow.paper): sidecar key -> DICOM keyword, per modality. Numbers per series as the median over its slices
# (with the range when they vary, e.g. the tube current under automatic exposure control); texts as their values.
ACQUISITION_TAGS = {
    "CT": {
        "kvp": "KVP",
        "tube_current_ma": "XRayTubeCurrent",
        "exposure_mas": "Exposure",
        "kernel": "ConvolutionKernel",
        "contrast_agent": "ContrastBolusAgent",
    },
    "PT": {
        "reconstruction": "ReconstructionMethod",
        "attenuation_correction": "AttenuationCorrectionMethod",
        "corrections": "CorrectedImage",
        "kernel": "ConvolutionKernel",
    },
    "MR": {
        "field_strength_t": "MagneticFieldStrength",
        "repetition_time_ms": "RepetitionTime",
        "echo_time_ms": "EchoTime",
        "inversion_time_ms": "InversionTime",
        "flip_angle_deg": "FlipAngle",
        "echo_train_length": "EchoTrainLength",
        "scanning_sequence": "ScanningSequence",
        "sequence_variant": "SequenceVariant",
        "acquisition_type": "MRAcquisitionType",
        "contrast_agent": "ContrastBolusAgent",
    },
}


def _tag_values(datasets, keyword) -> list:
    out = []
    for ds in datasets:
        v = ds.get(keyword)
        if v is None or v == "":
            continue
        out.extend(list(v) if isinstance(v, pydicom.multival.MultiValue) else [v])
    return out


def acquisition_parameters(datasets, modality: str) -> dict:
    """The modality's acquisition and reconstruction parameters of a series, as its headers give them: numbers as
    the median over the slices (key_range [min, max] when they vary), texts as their distinct values joined by
    " / ". A tag no slice carries is left out. PET also names the radiopharmaceutical."""
    out: dict = dict(model=str(datasets[0].get("ManufacturerModelName", "")).strip())
    for key, keyword in ACQUISITION_TAGS.get(modality, {}).items():
        values = _tag_values(datasets, keyword)
        if not values:
            continue
        try:
            numbers = np.array([float(v) for v in values])
        except (TypeError, ValueError):
            texts = list(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))
            if texts:
                out[key] = " / ".join(texts)
            continue
        out[key] = float(np.median(numbers))
        if numbers.min() != numbers.max():
            out[key + "_range"] = [float(numbers.min()), float(numbers.max())]
    if modality == "PT":
        for info in datasets[0].get("RadiopharmaceuticalInformationSequence", []):
            tracer = str(info.get("Radiopharmaceutical", "")).strip()
            codes = info.get("RadionuclideCodeSequence", [])
            nuclide = str(codes[0].get("CodeMeaning", "")).strip() if codes else ""
            if tracer or nuclide:
                out["radiopharmaceutical"] = tracer or nuclide
                out["radionuclide"] = nuclide
            break
    return out


def read_series(files) -> tuple[list, np.ndarray, Grid, list[str]]:
    """(datasets sorted along the slice normal, rescaled volume [k, j, i] float64, grid, warnings)."""
    datasets, grid, warnings = stack_geometry([pydicom.dcmread(f) for f in files])
    volume = np.empty((grid.size[2], grid.size[1], grid.size[0]), dtype=np.float64)
    for k, ds in enumerate(datasets):
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        volume[k] = ds.pixel_array.astype(np.float64) * slope + intercept
    return datasets, volume, grid, warnings


def pet_to_suv(datasets, volume, fallback: str | None = None) -> tuple[np.ndarray, dict, str]:
    """(values, SUV provenance, units). fallback "bqml" keeps a BQML series in Bq/ml when its SUV factor
    cannot be computed, flagged in the provenance; otherwise that series is refused."""
    uid = str(datasets[0].SeriesInstanceUID)
    try:
        factors, info = suv_factors([suv_tags(ds) for ds in datasets])
    except SUVError as err:
        units = str(datasets[0].get("Units", "")).upper()
        if fallback == "bqml" and units == "BQML":
            info = dict(
                units="BQML",
                suv_factor=None,
                fallback="kept in Bq/ml (config pet_fallback: bqml)",
                warnings=[f"SUVbw not computable: {err}"],
            )
            return volume, info, "Bq/ml (SUV not computable)"
        raise ConversionError(f"PET series {uid}: {err}") from None
    uniform = bool(np.ptp(factors) <= 1e-12 * np.abs(factors).max())
    info["suv_factor"] = float(factors[0]) if uniform else None
    if not uniform:
        info["suv_factor_per_slice"] = [float(f) for f in factors]
    return volume * factors[:, None, None], info, modality_units("PT")


def convert_series(
    files, out_path, sidecar_path=None, pet_fallback: str | None = None, series_key: str | None = None
) -> dict:
    """Convert one image series; writes out_path (.nii.gz) and its JSON sidecar; returns the sidecar.
    series_key names a sub-series (<UID>_<n>) in the sidecar's series_uid; dicom_series_uid keeps the UID."""
    datasets, volume, grid, warnings = read_series(files)
    first = datasets[0]
    modality = str(first.Modality).upper()
    uid = str(first.SeriesInstanceUID)
    sidecar = dict(
        radflow_version=__version__,
        patient_id=normalise_barcode(first.get("PatientID", "")),  # as the index (radflow.ids)
        study_uid=str(first.StudyInstanceUID),
        series_uid=series_key or uid,
        dicom_series_uid=uid,
        modality=modality,
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")),
        series_description=str(first.get("SeriesDescription", "")),
        manufacturer=str(first.get("Manufacturer", "")),
        acquisition=acquisition_parameters(datasets, modality),
        n_slices=len(datasets),
        size=list(grid.size),
        spacing=list(grid.spacing),
        origin=list(grid.origin),
        direction=list(grid.direction),
        units=modality_units(modality),
        warnings=warnings,
        status="ok",
        transfer_syntax=str(first.file_meta.TransferSyntaxUID.name) if "TransferSyntaxUID" in first.file_meta else "",
        sop_instance_uids=[str(ds.SOPInstanceUID) for ds in datasets],
    )
    kind = image_modality(modality)
    if kind is None:
        raise ConversionError(f"series {uid}: modality {modality} is not an image radflow converts")
    if kind.values == "suv":
        data, sidecar["suv"], sidecar["units"] = pet_to_suv(datasets, volume, pet_fallback)
        sidecar["warnings"].extend(sidecar["suv"].pop("warnings", []))
    else:  # "rescaled": stored * RescaleSlope + RescaleIntercept, as read
        data = volume
    # CT in whole HU fits int16 exactly; everything else is float32.
    whole = kind.whole_numbers_as_int16
    if whole and np.array_equal(data, np.round(data)) and data.min() >= -32768 and data.max() <= 32767:
        array = data.astype(np.int16)
    else:
        array = data.astype(np.float32)
    image = grid.apply_to(sitk.GetImageFromArray(array))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_image(image, out_path)
    sidecar_path = Path(sidecar_path) if sidecar_path else image_sidecar(out_path)
    sidecar_path.write_text(json.dumps(sidecar, indent=2, sort_keys=True))
    return sidecar


def write_failed_conversion(out_path, sidecar_path, reason: str, meta: dict) -> dict:
    """After a failed conversion: a 1-voxel placeholder image (Snakemake needs the file) and a sidecar with
    status "failed" and the reason, which the masks and features steps turn into failed rows."""
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    write_image(sitk.Image([1, 1, 1], sitk.sitkUInt8), out_path, compress=False)
    sidecar = dict(meta, status="failed", reason=reason, placeholder=True, radflow_version=__version__)
    Path(sidecar_path).write_text(json.dumps(sidecar, indent=2, sort_keys=True))
    return sidecar


def image_headers_in(folder) -> list[pydicom.Dataset]:
    """The headers (no pixels) of the one CT, MR or PET series in a folder (for the command line)."""
    if not Path(folder).is_dir():
        raise ConversionError(f"{folder}: no such folder")
    series: dict[str, list] = {}
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    others: dict[str, int] = {}
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:
            others["not DICOM"] = others.get("not DICOM", 0) + 1
            continue
        modality = str(ds.get("Modality", "")) or "(no Modality)"
        if image_modality(modality):
            series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
        else:
            others[modality] = others.get(modality, 0) + 1
    if len(series) != 1:
        found = f"{len(files)} files" + (
            ", " + ", ".join(f"{n} {what}" for what, n in sorted(others.items())) if others else ""
        )
        raise ConversionError(
            f"{folder}: expected one CT, MR or PET series, found {len(series)} ({found}; "
            + ("radflow index sorts a tree of several series)" if len(series) > 1 else "no CT, MR or PET image)")
        )
    return next(iter(series.values()))


def image_files_in(folder) -> list[str]:
    """The files of the one image series in a folder (for the command line)."""
    return [str(ds.filename) for ds in image_headers_in(folder)]


def read_rtdose(path) -> tuple[pydicom.Dataset, np.ndarray, Grid, list[str]]:
    """(dataset, dose in Gy [k, j, i], grid, warnings) of one multi-frame RTDOSE."""
    ds = pydicom.dcmread(path)
    uid = str(ds.get("SeriesInstanceUID", ""))
    if str(ds.get("Modality", "")).upper() != "RTDOSE":
        raise ConversionError(f"{path}: Modality {ds.get('Modality', '(none)')} is not RTDOSE")
    missing = [
        t for t in ("DoseGridScaling", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing") if t not in ds
    ]
    if missing:
        raise ConversionError(f"RTDOSE {uid}: missing {', '.join(missing)}")
    units = str(ds.get("DoseUnits", "")).upper()
    if units not in ("GY", "CGY"):
        raise ConversionError(f"RTDOSE {uid}: DoseUnits {units or '(none)'} is not an absolute dose (GY)")
    frames = ds.pixel_array.astype(np.float64)
    if frames.ndim == 2:
        frames = frames[None]
    dose = frames * float(ds.DoseGridScaling) * (0.01 if units == "CGY" else 1.0)
    direction = direction_from_orientation(ds.ImageOrientationPatient)
    origin = np.array([float(v) for v in ds.ImagePositionPatient])
    offsets = np.array([float(v) for v in ds.get("GridFrameOffsetVector", [0.0])])
    warnings = []
    if len(offsets) != len(dose):
        raise ConversionError(f"RTDOSE {uid}: {len(dose)} frames but {len(offsets)} GridFrameOffsetVector values")
    if len(offsets) > 1 and offsets[0] != 0:
        # "type B": offsets are absolute positions along the normal; make them relative to the first frame
        offsets = (
            offsets - origin @ direction[:, 2]
            if abs(offsets[0] - origin @ direction[:, 2]) < 1e-3
            else offsets - offsets[0]
        )
    steps = np.diff(offsets)
    if len(steps) and (steps <= 0).any():
        raise ConversionError(f"RTDOSE {uid}: GridFrameOffsetVector is not increasing")
    spacing_z = (
        float((offsets[-1] - offsets[0]) / (len(offsets) - 1))
        if len(offsets) > 1
        else float(ds.get("SliceThickness", 1.0) or 1.0)
    )
    if len(steps) and np.abs(steps - spacing_z).max() > 0.01 * spacing_z:
        warnings.append(f"dose frame spacing varies ({steps.min():.3f}-{steps.max():.3f} mm); mean used")
    ps = [float(v) for v in ds.PixelSpacing]
    grid = Grid(
        size=(dose.shape[2], dose.shape[1], dose.shape[0]),
        spacing=(ps[1], ps[0], spacing_z),
        origin=tuple(origin + offsets[0] * direction[:, 2]),
        direction=tuple(direction.ravel()),
    )
    return ds, dose, grid, warnings


def convert_rtdose(path, out_path, on_images: dict | None = None) -> dict:
    """An RTDOSE to Gy on its own grid (out_path), and resampled (linear) onto each image in on_images
    ({series UID: (image .nii.gz, output .nii.gz)}). Writes and returns the sidecar."""
    ds, dose, grid, warnings = read_rtdose(path)
    image = grid.apply_to(sitk.GetImageFromArray(dose.astype(np.float32)))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_image(image, out_path)
    resampled = {}
    for series_uid, (reference, target) in sorted((on_images or {}).items()):
        ref = sitk.ReadImage(str(reference))
        # Outside the dose grid the dose is 0 Gy, as planning systems assume; the sidecar says how much of the
        # image the dose grid covers (NIfTI through ITK cannot keep NaN to mark it).
        on_ref = sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear, float("nan"), sitk.sitkFloat32)
        values = sitk.GetArrayFromImage(on_ref)
        covered = np.isfinite(values)
        values[~covered] = 0.0
        filled = sitk.GetImageFromArray(values)
        filled.CopyInformation(on_ref)
        write_image(filled, target)
        resampled[series_uid] = dict(path=Path(target).name, covered_fraction=float(covered.mean()))
    sidecar = dict(
        radflow_version=__version__,
        patient_id=normalise_barcode(ds.get("PatientID", "")),
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        modality="RTDOSE",
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        units="Gy",
        dose_type=str(ds.get("DoseType", "")),
        dose_summation_type=str(ds.get("DoseSummationType", "")),
        dose_grid_scaling=float(ds.DoseGridScaling),
        max_dose_gy=float(dose.max()),
        referenced_plan_uids=[str(r.ReferencedSOPInstanceUID) for r in ds.get("ReferencedRTPlanSequence", [])],
        # a per-beam dose (DoseSummationType BEAM) names its beams in the plan
        referenced_beam_numbers=sorted(
            {
                int(beam.ReferencedBeamNumber)
                for plan in ds.get("ReferencedRTPlanSequence", None) or []
                for group in plan.get("ReferencedFractionGroupSequence", None) or []
                for beam in group.get("ReferencedBeamSequence", None) or []
                if beam.get("ReferencedBeamNumber") is not None
            }
        ),
        size=list(grid.size),
        spacing=list(grid.spacing),
        origin=list(grid.origin),
        direction=list(grid.direction),
        resampled_on=resampled,
        warnings=warnings,
    )
    image_sidecar(out_path).write_text(json.dumps(sidecar, indent=2, sort_keys=True))
    return sidecar
