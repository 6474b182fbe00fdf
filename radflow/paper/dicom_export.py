"""A series' results as DICOM (config dicom_export): its masks as one DICOM Segmentation and its features as one
DICOM Structured Report, TID 1500 (Measurement Report), both written with highdicom, so that a viewer (3D Slicer,
OHIF) shows them next to the images and an archive (IDC) takes them as it takes its own.

- SEG: one segment per mask of the series (radflow's NIfTI masks, voxel for voxel), binary, referencing the source
  images; the segment label is the mask's label (standard name, _2 … for further instances), the description names
  the original ROI and its structure set; category and type are coded (SNOMED CT) where the standard name says what
  the ROI is (SEGMENT_CODES), else Tissue.
- SR: per ROI with features one volumetric measurement group referencing its SEG segment and the source series, each
  feature a measurement coded by its IBSI-1 code (scheme "IBSI") where pyradiomics' value is IBSI's feature, else by
  its pyradiomics name (scheme "99PYRADIOMICS"), with its UCUM unit (radflow.paper.dictionary).

UIDs are derived from the content (the source series, the masks' labels and the feature values), so that a rerun
on the same input writes the same UIDs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from radflow import __version__
from radflow.dicom.convert import stack_geometry
from radflow.features import feature_unit
from radflow.paper.dictionary import ALIASES, DEFINED_OTHERWISE, IBSI_COLUMNS, ibsi_terms, pyradiomics_to_ibsi, ucum
from radflow.tables import pyradiomics_columns

SEG_NAME = "seg.dcm"
SR_NAME = "sr.dcm"
# standard ROI name -> (category, type), pydicom's SNOMED CT concept names (codes.SCT.<name>)
SEGMENT_CODES = {
    "GTVp": ("MorphologicallyAbnormalStructure", "NeoplasmPrimary"),
    "GTVn": ("MorphologicallyAbnormalStructure", "NeoplasmSecondary"),
    "CTV": ("SpatialAndRelationalConcept", "ClinicalTargetVolume"),
    "PTV": ("SpatialAndRelationalConcept", "PlanningTargetVolume"),
    "External": ("AnatomicalStructure", "EntireBody"),
    "Couch": ("PhysicalObject", "Table"),
    "Marker": ("PhysicalObject", "PhysicalObject"),
    "Parotid_L": ("AnatomicalStructure", "ParotidGland"),
    "Parotid_R": ("AnatomicalStructure", "ParotidGland"),
    "Submandibular_L": ("AnatomicalStructure", "SubmandibularGland"),
    "Submandibular_R": ("AnatomicalStructure", "SubmandibularGland"),
    "SpinalCord": ("AnatomicalStructure", "SpinalCord"),
    "Brainstem": ("AnatomicalStructure", "BrainStem"),
    "Brain": ("AnatomicalStructure", "Brain"),
    "Mandible": ("AnatomicalStructure", "Mandible"),
    "Larynx": ("AnatomicalStructure", "Larynx"),
    "OralCavity": ("AnatomicalStructure", "OralCavity"),
    "Eye_L": ("AnatomicalStructure", "Eye"),
    "Eye_R": ("AnatomicalStructure", "Eye"),
    "Lens_L": ("AnatomicalStructure", "Lens"),
    "Lens_R": ("AnatomicalStructure", "Lens"),
    "OpticChiasm": ("AnatomicalStructure", "OpticChiasm"),
    "OpticNrv_L": ("AnatomicalStructure", "OpticNerve"),
    "OpticNrv_R": ("AnatomicalStructure", "OpticNerve"),
    "Lung_L": ("AnatomicalStructure", "Lung"),
    "Lung_R": ("AnatomicalStructure", "Lung"),
    "Lungs": ("AnatomicalStructure", "Lung"),
    "Heart": ("AnatomicalStructure", "Heart"),
    "Esophagus": ("AnatomicalStructure", "Esophagus"),
    "Trachea": ("AnatomicalStructure", "Trachea"),
    "Liver": ("AnatomicalStructure", "Liver"),
}
FALLBACK_CODES = ("Tissue", "Tissue")
PROCEDURES = {"CT": "CTUnspecifiedBodyRegion", "PT": "PETUnspecifiedBodyRegion", "MR": "MRIUnspecifiedBodyRegion"}
PYRADIOMICS_SCHEME = "99PYRADIOMICS"
ARBITRARY_UNIT = ("[arb'U]", "arbitrary unit")


# what of the source images' patient module a SEG or SR keeps: the PatientID (the ID the pipeline needs, which a
# viewer matches the images by) and nothing that identifies a person (the name only where it is the ID, as TCIA's
# de-identified data have it)
BLANKED = (
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientWeight",
    "PatientSize",
    "AccessionNumber",
    "ReferringPhysicianName",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthTime",
    "EthnicGroup",
)


def keep_only_the_patient_id(ds: pydicom.Dataset) -> None:
    if str(ds.get("PatientName", "")) != str(ds.get("PatientID", "")):
        ds.PatientName = ""
    for keyword in BLANKED:
        if keyword in ds:
            ds.data_element(keyword).value = ""
    # de-identified sources (TCIA's) say PatientIdentityRemoved YES, which makes the method Type 1C; some (NSCLC-
    # Radiomics) leave it out, which the SEG and SR then inherit as an error
    said = str(ds.get("DeidentificationMethod", "")) or "DeidentificationMethodCodeSequence" in ds
    if str(ds.get("PatientIdentityRemoved", "")).upper() == "YES" and not said:
        ds.DeidentificationMethod = "as the source images; radflow kept only the PatientID"


# value lengths of the VRs a source's study and patient modules carry (PS3.5 table 6.2-1)
MAX_LENGTH = {"SH": 16, "LO": 64, "CS": 16, "AE": 16}


def fit_lengths(ds: pydicom.Dataset) -> list[str]:
    """Cut the top-level text values a SEG or SR copied from its source that are longer than their VR allows (real
    sources have them: the IBSI sarcoma CTs' StudyID holds 17-20 characters of a 16-character SH); returns what
    was cut, for export.json."""
    cut = []
    for element in ds:
        limit = MAX_LENGTH.get(element.VR)
        if not limit or element.value is None or element.VM == 0:
            continue
        values = list(element.value) if element.VM > 1 else [element.value]
        if any(len(str(v)) > limit for v in values):
            fitted = [str(v)[:limit] for v in values]
            element.value = fitted if element.VM > 1 else fitted[0]
            cut.append(f"{element.keyword} (over {limit} characters in the source)")
    return cut


def describe_private_scheme(ds: pydicom.Dataset) -> None:
    """Name the pyradiomics coding scheme in the SR (CodingSchemeIdentificationSequence), as PS3.3 asks of a
    private scheme."""
    item = pydicom.Dataset()
    item.CodingSchemeDesignator = PYRADIOMICS_SCHEME
    item.CodingSchemeName = "pyradiomics feature names (class_Feature, image type prefix)"
    item.CodingSchemeResponsibleOrganization = "pyradiomics (https://pyradiomics.readthedocs.io)"
    ds.CodingSchemeIdentificationSequence = [item]


class ExportError(ValueError):
    """A series that cannot be written as DICOM; the message says which and why."""


def _sct(name: str) -> hd.sr.CodedConcept:
    code = getattr(codes.SCT, name)
    return hd.sr.CodedConcept(code.value, code.scheme_designator, code.meaning)


def segment_codes(roi: str) -> tuple[hd.sr.CodedConcept, hd.sr.CodedConcept]:
    """(segmented property category, type) of a standard ROI name; Tissue/Tissue when radflow does not know it."""
    category, kind = SEGMENT_CODES.get(roi, FALLBACK_CODES)
    return _sct(category), _sct(kind)


def _uid(*parts) -> str:
    return generate_uid(prefix=None, entropy_srcs=["radflow", *map(str, parts)])


def source_images(files) -> list[pydicom.Dataset]:
    """The series' DICOM images in the order of its NIfTI slices (radflow.dicom.convert.stack_geometry's)."""
    datasets = [pydicom.dcmread(str(f), stop_before_pixels=True) for f in files]  # the SEG needs the headers
    if any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for ds in datasets):
        raise ExportError("multi-frame images: radflow writes DICOM SEG for single-frame series only")
    ordered, _, _ = stack_geometry(datasets)
    return ordered


def _check_slices(image: sitk.Image, datasets) -> None:
    """The mask's slice k must be the k-th source image (the same position, within 0.01 mm)."""
    for k in (0, len(datasets) - 1):
        here = np.array(image.TransformIndexToPhysicalPoint((0, 0, k)))
        there = np.array([float(v) for v in datasets[k].ImagePositionPatient])
        if np.abs(here - there).max() > 0.01:
            raise ExportError(f"mask slice {k} is at {here.round(3)}, the source image's at {there.round(3)}")


def mask_records(masks_dir) -> list[dict]:
    """The masks of a series folder that hold voxels, in the order masks.json lists them."""
    path = Path(masks_dir) / "masks.json"
    records = json.loads(path.read_text()) if path.exists() else []
    return [r for r in records if r.get("status") == "ok" and r.get("voxel_count", 0) > 0]


def build_seg(datasets, masks_dir, series_number: int = 9001) -> tuple[pydicom.Dataset, dict[str, int]]:
    """The SEG of a series' masks, and {mask label: segment number}."""
    records = mask_records(masks_dir)
    if not records:
        raise ExportError(f"no mask with voxels in {masks_dir}")
    frames, descriptions, numbers = [], [], {}
    for number, r in enumerate(records, start=1):
        image = sitk.ReadImage(str(Path(masks_dir) / f"{r['label']}.nii.gz"))
        if number == 1:
            _check_slices(image, datasets)
        frames.append(sitk.GetArrayFromImage(image) > 0)
        category, kind = segment_codes(r.get("roi", ""))
        origin = f"RTSTRUCT series {r.get('rtstruct_series_uid', '')}" if r.get("rtstruct_series_uid") else ""
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=r["label"][:64],
                segmented_property_category=category,
                segmented_property_type=kind,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
                tracking_id=r["label"][:64],
                tracking_uid=_uid(datasets[0].SeriesInstanceUID, "segment", r["label"]),
            )
        )
        descriptions[-1].SegmentDescription = f"{r.get('roi_original', '')} ({origin})"[:64]
        numbers[r["label"]] = number
    pixels = np.stack(frames, axis=-1)  # bool, as highdicom takes a binary segmentation (no uint8 copy)
    if pixels.shape[:3] != (len(datasets), int(datasets[0].Rows), int(datasets[0].Columns)):
        raise ExportError(f"masks of shape {pixels.shape[:3]} do not fit {len(datasets)} images of the series")
    digest = [datasets[0].SeriesInstanceUID, *numbers, int(pixels.sum())]
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=_uid("seg series", *digest),
        series_number=series_number,
        sop_instance_uid=_uid("seg", *digest),
        instance_number=1,
        manufacturer="radflow",
        manufacturer_model_name="radflow",
        software_versions=__version__,
        device_serial_number="radflow",
        content_description="ROI masks rasterised by radflow",
        content_label="RADFLOW_ROIS",
        series_description="radflow ROI masks",
    )
    return seg, numbers


def _measurement_concept(column: str) -> hd.sr.CodedConcept:
    """A feature column's concept: its IBSI code where pyradiomics' value is IBSI's feature (an original-image
    feature whose definition IBSI shares, or radflow's ibsi_* column), else its pyradiomics name."""
    if column.startswith("ibsi_"):
        name, code = ibsi_terms()[column[len("ibsi_") :]]
        return hd.sr.CodedConcept(code, "IBSI", name)
    image_type, cls, feature = (column.split("_", 2) + ["", ""])[:3]
    tags = [t for t in pyradiomics_to_ibsi().get(f"{cls}_{feature}", []) if t not in ALIASES]
    if image_type == "original" and tags and tags[0] not in DEFINED_OTHERWISE:
        name, code = ibsi_terms()[tags[0]]
        return hd.sr.CodedConcept(code, "IBSI", name)
    return hd.sr.CodedConcept(column, PYRADIOMICS_SCHEME, column)


def _unit_concept(column: str, image_units: str, normalized: bool) -> hd.sr.CodedConcept:
    unit = IBSI_COLUMNS[column][1] if column in IBSI_COLUMNS else feature_unit(column, image_units, normalized)
    code = ucum(unit)
    if not code:
        return hd.sr.CodedConcept(*ARBITRARY_UNIT[:1], "UCUM", ARBITRARY_UNIT[1])
    return hd.sr.CodedConcept(code, "UCUM", unit or code)


def measurements(row, columns, normalized: bool) -> list[hd.sr.Measurement]:
    out = []
    for column in columns:
        value = row.get(column)
        if value is None or not np.isfinite(float(value)):
            continue
        out.append(
            hd.sr.Measurement(
                name=_measurement_concept(column),
                value=float(value),
                unit=_unit_concept(column, str(row.get("image_units", "")), normalized),
            )
        )
    return out


def build_sr(datasets, seg: pydicom.Dataset, numbers: dict[str, int], features, normalized: bool = False):
    """The TID 1500 report of a series' feature rows (features: a DataFrame of the series' rows)."""
    if "status" not in features or "roi_label" not in features:
        raise ExportError("the series has no feature rows")
    ok = features[(features["status"] == "ok") & features["roi_label"].isin(numbers)]
    if ok.empty:
        raise ExportError("no ROI of the SEG has features")
    columns = pyradiomics_columns(ok) + [c for c in ok.columns if c.startswith("ibsi_")]
    first = datasets[0]
    source_series = hd.sr.SourceSeriesForSegmentation(first.SeriesInstanceUID)
    groups = []
    for _, row in ok.iterrows():
        label = row["roi_label"]
        category, kind = segment_codes(row.get("roi", ""))
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    identifier=f"{label} ({row.get('roi_original', '')})"[:64],
                    uid=_uid(first.SeriesInstanceUID, "group", label),
                ),
                referenced_segment=hd.sr.ReferencedSegment(
                    sop_class_uid=seg.SOPClassUID,
                    sop_instance_uid=seg.SOPInstanceUID,
                    segment_number=numbers[label],
                    source_series=source_series,
                ),
                finding_type=kind,
                finding_category=category,
                measurements=measurements(row.to_dict(), columns, normalized),
            )
        )
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=_uid("radflow device"), name="radflow", model_name=f"radflow {__version__}"
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        ),
        observer_person_context=None,
    )
    procedure = getattr(codes.LN, PROCEDURES.get(str(first.Modality), "CTUnspecifiedBodyRegion"))
    report = hd.sr.MeasurementReport(
        observation_context=context, procedure_reported=procedure, imaging_measurements=groups
    )
    values = ok[columns].to_numpy(dtype=float)
    digest = [first.SeriesInstanceUID, seg.SOPInstanceUID, np.nansum(values).hex() if values.size else ""]
    return hd.sr.Comprehensive3DSR(
        evidence=[seg, *datasets],
        content=report,
        series_instance_uid=_uid("sr series", *digest),
        series_number=9002,
        sop_instance_uid=_uid("sr", *digest),
        instance_number=1,
        manufacturer="radflow",
        is_complete=True,
        series_description="radflow radiomics features (pyradiomics)",
    )


def export_series(files, masks_dir, features, out_dir, normalized: bool = False) -> dict:
    """Write out_dir/seg.dcm and out_dir/sr.dcm of one image series, and out_dir/export.json saying what was
    written (segments, measurement groups, measurements) or why not (a series without masks or without features, a
    multi-frame series): one series that cannot be written never stops the others."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = dict(status="ok", seg="", sr="", segments=0, measurement_groups=0, measurements=0, reason="")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*person name.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*exceeds the maximum length.*", category=UserWarning)
        try:
            datasets = source_images(files)
            seg, numbers = build_seg(datasets, masks_dir)
            keep_only_the_patient_id(seg)
            summary["cut"] = fit_lengths(seg)
            seg.save_as(out / SEG_NAME)
            summary.update(seg=SEG_NAME, segments=len(numbers))
            sr = build_sr(datasets, seg, numbers, features, normalized)
            keep_only_the_patient_id(sr)
            fit_lengths(sr)
            describe_private_scheme(sr)
            sr.save_as(out / SR_NAME)
            groups = features[(features["status"] == "ok") & features["roi_label"].isin(numbers)]
            summary.update(sr=SR_NAME, measurement_groups=len(groups), measurements=_count_measurements(sr))
        except ExportError as err:
            summary.update(status="not written" if not summary["seg"] else "SEG only", reason=str(err))
    (out / "export.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def _count_measurements(sr: pydicom.Dataset) -> int:
    def walk(items):
        n = 0
        for item in items:
            n += item.get("ValueType") == "NUM"
            n += walk(item.get("ContentSequence", []))
        return n

    return walk(sr.ContentSequence)
