"""A corpus of broken inputs: each kind of breakage a routine-care cohort holds, written into a copy of the demo
cohort, with what radflow must say about it.

`write_corpus(demo_dir, out_dir)` copies the demo cohort and applies every kind of KINDS; it returns one
Expectation per kind: where the broken item must be reported (problems.tsv, the features table's status, the
clinical problems), the words the reason must contain (the file, series or ROI, and the cause), and which
patients' results may differ from a clean run because of it. Config and output breakage (a missing folder, a
malformed value, an unknown clinical format, a read-only results folder, a full disk) cannot share one run with
the rest; tests/test_broken_corpus.py runs those on their own.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from factory import add_roi, rewrite_dicom
from pydicom.uid import JPEG2000Lossless, generate_uid


@dataclass
class Expectation:
    kind: str
    where: str  # "problems" (results/index/problems.tsv), "features" (status column), "clinical_problems"
    names: list[str]  # words the reason (or the row's item) must hold: the file, series or ROI, and the cause
    affected: set[str] = field(default_factory=set)  # patients or series whose results may differ
    status: str = "failed"  # for where == "features"
    series_uid: str = ""  # the row must be of this series (features) or item (problems), when set


class Cohort:
    """The copy being broken, with handles on its series."""

    def __init__(self, root: Path, truth: dict):
        self.root, self.truth = root, truth

    def folder(self, patient: str, pattern: str) -> Path:
        return next(p for p in (self.root / patient).rglob(f"*{pattern}*") if p.is_dir())

    def files(self, patient: str, pattern: str) -> list[Path]:
        return sorted(self.folder(patient, pattern).iterdir())

    def rtstruct(self, patient: str) -> Path:
        return self.files(patient, "RTSTRUCT")[0]

    def uid(self, patient: str, what: str) -> str:
        return self.truth["patients"][patient][what]


def _new_uid(*parts) -> str:
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def _gtv_plane(c: Cohort, patient: str) -> tuple[np.ndarray, float]:
    """The first contour of the patient's GTV: its points, and its z."""
    rs = pydicom.dcmread(c.rtstruct(patient))
    number = next(
        int(r.ROINumber)
        for r in rs.StructureSetROISequence
        if "GTV" in r.ROIName.upper() and "N" not in r.ROIName.upper().replace("GTV", "")
    )
    contour = next(rc for rc in rs.ROIContourSequence if int(rc.ReferencedROINumber) == number).ContourSequence
    pts = np.asarray([float(v) for v in contour[len(contour) // 2].ContourData]).reshape(-1, 3)
    return pts, float(pts[0, 2])


# ----------------------------------------------------------------------------------------------- DICOM files
def truncated_file(c: Cohort) -> Expectation:
    src = c.files("TCGA-0Z-0006", "CT HEAD NECK")[10]
    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _new_uid("truncated", src)
    out = src.with_name("1-900.dcm")
    ds.save_as(out)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) - 60000])  # the download stopped half way through the pixel data
    return Expectation("truncated DICOM file", "problems", ["1-900.dcm", "truncated"])


def not_dicom(c: Cohort) -> Expectation:
    (c.folder("TCGA-0Z-0006", "CT HEAD NECK") / "1-901.dcm").write_text("<html>502 Bad Gateway</html>\n" * 20)
    return Expectation("non-DICOM file with a .dcm name", "problems", ["1-901.dcm", "not a DICOM"])


def zero_bytes(c: Cohort) -> Expectation:
    (c.folder("TCGA-0Z-0006", "CT HEAD NECK") / "1-902.dcm").write_bytes(b"")
    return Expectation("zero-byte file", "problems", ["1-902.dcm", "empty"])


# ----------------------------------------------------------------------------------------------- series
def missing_slice(c: Cohort) -> Expectation:
    c.files("TCGA-00-0004", "CT HEAD NECK")[30].unlink()
    uid = c.uid("TCGA-00-0004", "ct_series_uid")
    return Expectation(
        "missing slice", "problems", [uid, "missing slice", "gap of 5.00 mm"], {"TCGA-00-0004"}, series_uid=uid
    )


def duplicated_slice(c: Cohort) -> Expectation:
    src = c.files("TCGA-0Z-0007", "CT HEAD NECK")[20]
    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _new_uid("duplicated slice", src)
    ds.InstanceNumber = 999
    ds.save_as(src.with_name("1-999.dcm"))  # the same slice, sent twice under two SOP instance UIDs
    uid = c.uid("TCGA-0Z-0007", "ct_series_uid")
    return Expectation(
        "duplicated slice", "problems", [uid, "duplicate slice position"], {"TCGA-0Z-0007"}, series_uid=uid
    )


def duplicate_sop_uid(c: Cohort) -> Expectation:
    files = c.files("TCGA-0Z-0008", "CT HEAD NECK")
    ds = pydicom.dcmread(files[40])  # same SOP instance UID, different pixels, a later file name
    arr = ds.pixel_array.copy()
    arr[:10, :10] = 1000
    ds.PixelData = arr.astype(arr.dtype).tobytes()
    out = files[40].with_name("zz-duplicate.dcm")
    ds.save_as(out)
    return Expectation(
        "duplicate SOP instance UID with different content",
        "problems",
        ["zz-duplicate.dcm", "duplicate SOPInstanceUID", str(ds.SOPInstanceUID)],
    )


def mixed_matrix(c: Cohort) -> Expectation:
    files = c.files("TCGA-0Z-0009", "CT HEAD NECK")
    ds = pydicom.dcmread(files[-1])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _new_uid("mixed matrix", files[-1])
    ds.Rows = ds.Columns = 128  # a reconstruction at another matrix size, filed into the same series
    ds.PixelSpacing = [2.0, 2.0]
    ds.PixelData = np.zeros((128, 128), np.int16).tobytes()
    ds.InstanceNumber = 500
    ds.save_as(files[-1].with_name("1-500.dcm"))
    uid = c.uid("TCGA-0Z-0009", "ct_series_uid")
    return Expectation(
        "mixed matrix sizes in one series",
        "problems",
        [uid, "sub-series", "matrix size"],
        {"TCGA-0Z-0009"},
        series_uid=uid,
    )


def gantry_tilt(c: Cohort) -> Expectation:
    def tilt(ds):
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + np.tan(np.radians(12)) * (z + 90), z]
        ds.GantryDetectorTilt = 12

    rewrite_dicom(c.files("TCGA-00-0002", "CT HEAD NECK"), tilt)
    uid = c.uid("TCGA-00-0002", "ct_series_uid")
    return Expectation("gantry tilt", "problems", [uid, "gantry tilt"], {"TCGA-00-0002"}, series_uid=uid)


def single_slice(c: Cohort) -> Expectation:
    src = c.files("TCGA-0Z-0006", "CT HEAD NECK")[36]
    ds = pydicom.dcmread(src)
    ds.SeriesInstanceUID = _new_uid("single slice series")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _new_uid("single slice", src)
    ds.SeriesNumber, ds.SeriesDescription = 77, "KEY IMAGE"
    folder = src.parent.with_name("77.000000-KEY IMAGE-00001")
    folder.mkdir()
    ds.save_as(folder / "1-1.dcm")
    return Expectation(
        "series with a single slice",
        "problems",
        [str(ds.SeriesInstanceUID), "single slice"],
        series_uid=str(ds.SeriesInstanceUID),
    )


def corrupt_codestream(c: Cohort) -> Expectation:
    files = c.files("TCGA-0Z-0006", "CT HEAD NECK")
    ds = pydicom.dcmread(files[30])
    ds.compress(JPEG2000Lossless)
    frame = bytearray(ds.PixelData)
    frame[200:400] = b"\xff" * 200  # the headers are fine, so the index keeps it; the pixels cannot be decoded
    ds.PixelData = bytes(frame)
    ds.save_as(files[30])
    uid = c.uid("TCGA-0Z-0006", "ct_series_uid")
    return Expectation(
        "pixel data that cannot be decoded (corrupt JPEG 2000)",
        "features",
        [uid, "cannot be converted"],
        {"TCGA-0Z-0006"},
        series_uid=uid,
    )


# ----------------------------------------------------------------------------------------------- RTSTRUCT
def rtstruct_without_image(c: Cohort) -> Expectation:
    src = c.rtstruct("TCGA-0Z-0006")
    rs = pydicom.dcmread(src)
    rs.SeriesInstanceUID = _new_uid("orphan rtstruct")
    rs.SOPInstanceUID = rs.file_meta.MediaStorageSOPInstanceUID = _new_uid("orphan rtstruct sop")
    lost_for = _new_uid("a frame of reference nobody has")
    for item in rs.ReferencedFrameOfReferenceSequence:
        item.FrameOfReferenceUID = lost_for
        for study in item.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                series.SeriesInstanceUID = _new_uid("an image series that was never downloaded")
    for roi in rs.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = lost_for
    folder = src.parent.with_name("88.000000-RTSTRUCT ORPHAN-00001")
    folder.mkdir()
    rs.save_as(folder / "1-1.dcm")
    return Expectation(
        "RTSTRUCT whose image series is absent",
        "problems",
        [str(rs.SeriesInstanceUID), "no converted image series"],
        series_uid=str(rs.SeriesInstanceUID),
    )


def empty_roi(c: Cohort) -> Expectation:
    add_roi(c.rtstruct("TCGA-00-0001"), "GTV_EMPTY", None)
    return Expectation("empty ROI (no contours)", "problems", ["GTV_EMPTY", "has no contours"])


def contour_outside(c: Cohort) -> Expectation:
    pts, z = _gtv_plane(c, "TCGA-00-0001")
    far = pts + np.array([4000.0, 0.0, 0.0])  # four metres to the patient's left
    add_roi(c.rtstruct("TCGA-00-0001"), "Marker_far", [("CLOSED_PLANAR", far)])
    return Expectation(
        "contour entirely outside the image", "features", ["Marker_far", "empty mask", "outside the image"]
    )


def open_contour(c: Cohort) -> Expectation:
    pts, z = _gtv_plane(c, "TCGA-00-0001")
    add_roi(c.rtstruct("TCGA-00-0001"), "Line_open", [("OPEN_PLANAR", pts[: len(pts) // 2])])
    return Expectation(
        "open contour",
        "features",
        ["Line_open", "not a volume", "made of 1 OPEN_PLANAR contour and no CLOSED_PLANAR contour"],
        status="skipped",
    )


def point_roi(c: Cohort) -> Expectation:
    pts, z = _gtv_plane(c, "TCGA-00-0001")
    add_roi(c.rtstruct("TCGA-00-0001"), "Ref_point", [("POINT", pts[:1])])
    return Expectation(
        "ROI made of one point",
        "features",
        ["Ref_point", "not a volume", "made of 1 POINT contour and no CLOSED_PLANAR contour"],
        status="skipped",
    )


def contours_stored_twice(c: Cohort) -> Expectation:
    """Every contour of an ROI stored twice on its plane, as a real XiO export does: one contour, a warning."""
    rs = pydicom.dcmread(c.rtstruct("TCGA-00-0002"))
    number = next(int(r.ROINumber) for r in rs.StructureSetROISequence if "PAROTID" in r.ROIName.upper())
    contours = next(rc for rc in rs.ROIContourSequence if int(rc.ReferencedROINumber) == number).ContourSequence
    pts = [np.asarray([float(v) for v in k.ContourData]).reshape(-1, 3) for k in contours]
    add_roi(c.rtstruct("TCGA-00-0002"), "Copy_twice", [("CLOSED_PLANAR", p) for p in pts for _ in (0, 1)])
    return Expectation(
        "contours stored twice", "problems", ["Copy_twice", f"stores {len(pts)} of its {2 * len(pts)} contours twice"]
    )


def malformed_contour_data(c: Cohort) -> Expectation:
    rs_path = c.rtstruct("TCGA-00-0001")
    rs = pydicom.dcmread(rs_path)
    number = next(
        int(r.ROINumber)
        for r in rs.StructureSetROISequence
        if "PAROTID" in r.ROIName.upper() and ("L" in r.ROIName.upper().replace("PAROTID", ""))
    )
    name = next(r.ROIName for r in rs.StructureSetROISequence if int(r.ROINumber) == number)
    contour = next(rc for rc in rs.ROIContourSequence if int(rc.ReferencedROINumber) == number).ContourSequence[0]
    contour.ContourData = list(contour.ContourData)[:-1]  # a coordinate lost: not a multiple of 3
    rs.save_as(rs_path)
    return Expectation("ContourData that is not x,y,z triples", "features", [name, "ContourData"])


# ----------------------------------------------------------------------------------------------- PET
def pet_without_weight(c: Cohort) -> Expectation:
    rewrite_dicom(c.files("TCGA-00-0001", "PET AC"), lambda ds: delattr(ds, "PatientWeight"))
    uid = c.uid("TCGA-00-0001", "pet_series_uid")
    return Expectation("PET without patient weight", "problems", [uid, "PatientWeight"], {uid}, series_uid=uid)


def pet_without_dose(c: Cohort) -> Expectation:
    def drop(ds):
        del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose

    rewrite_dicom(c.files("TCGA-00-0002", "PET AC"), drop)
    uid = c.uid("TCGA-00-0002", "pet_series_uid")
    return Expectation("PET without injected dose", "problems", [uid, "RadionuclideTotalDose"], {uid}, series_uid=uid)


def pet_unknown_units(c: Cohort) -> Expectation:
    src = c.files("TCGA-00-0001", "PET AC")
    new_series = _new_uid("PET in PROPCPS")
    folder = src[0].parent.with_name("5.000000-PET NAC-00001")
    folder.mkdir()
    for f in src:
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = new_series, 5, "PET NAC"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _new_uid("PROPCPS", f)
        ds.Units = "PROPCPS"  # proportional counts per second: no SUV from it
        ds.PatientWeight = 70.0
        ds.save_as(folder / f.name)
    return Expectation(
        "PET in units the SUV manual does not cover", "problems", [new_series, "PROPCPS"], series_uid=new_series
    )


# ----------------------------------------------------------------------------------------------- MR
def mr_zeros(c: Cohort) -> Expectation:
    def zero(ds):
        ds.PixelData = np.zeros_like(ds.pixel_array).tobytes()

    rewrite_dicom(c.files("TCGA-00-0003", "T1 AX"), zero)
    uid = c.uid("TCGA-00-0003", "mr_series_uid")
    return Expectation(
        "MR whose ROI holds only zeros", "features", ["same intensity (0)"], {uid}, status="flat", series_uid=uid
    )


# ----------------------------------------------------------------------------------------------- clinical
def clinical_conflict(c: Cohort) -> Expectation:
    path = c.root.parent / "clinical.tsv"
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    pid = "TCGA-0Z-0007"
    rows = table[table["cases.submitter_id"] == pid].copy()
    vital = "Alive" if rows["demographic.vital_status"].iloc[0] == "Dead" else "Dead"
    rows["demographic.vital_status"] = vital
    rows["demographic.days_to_death"] = "'--" if vital == "Alive" else "400"
    pd.concat([table, rows]).to_csv(path, sep="\t", index=False)
    return Expectation("patient listed twice with conflicting values", "clinical_problems", [pid, "disagree"], {pid})


def negative_follow_up(c: Cohort) -> Expectation:
    path = c.root.parent / "clinical.tsv"
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    pid = "TCGA-0Z-0008"
    extra = table[table["cases.submitter_id"] == pid].iloc[[0]].copy()
    extra["diagnoses.days_to_last_follow_up"] = "-30"  # a follow-up dated before the diagnosis
    pd.concat([table, extra]).to_csv(path, sep="\t", index=False)
    return Expectation("negative follow-up", "clinical_problems", [pid, "negative"], {pid})


KINDS = [
    truncated_file,
    not_dicom,
    zero_bytes,
    missing_slice,
    duplicated_slice,
    duplicate_sop_uid,
    mixed_matrix,
    gantry_tilt,
    single_slice,
    corrupt_codestream,
    rtstruct_without_image,
    empty_roi,
    contour_outside,
    open_contour,
    point_roi,
    malformed_contour_data,
    contours_stored_twice,
    pet_without_weight,
    pet_without_dose,
    pet_unknown_units,
    mr_zeros,
    clinical_conflict,
    negative_follow_up,
]

# Kinds that cannot share one run with the rest: tests/test_broken_corpus.py runs each on its own.
RUN_LEVEL_KINDS = [
    "config naming a folder that does not exist",
    "malformed config value",
    "clinical file of an unknown format",
    "read-only results folder",
    "pyradiomics settings file that pyradiomics refuses",
    "full disk while writing (ulimit -f)",
    "DICOM root with no DICOM in it",
]


def write_corpus(demo_dir: Path, out: Path) -> dict[str, Expectation]:
    """A copy of the demo cohort with every kind of KINDS applied; {kind's function name: its expectation}."""
    shutil.copytree(demo_dir, out)
    truth = json.loads((out / "truth.json").read_text())
    cohort = Cohort(out / truth["collection"], truth)
    return {kind.__name__: kind(cohort) for kind in KINDS}
