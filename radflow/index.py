"""Index a DICOM tree: one row per file, per series, per RTSTRUCT ROI, per RTSTRUCT-to-image link, and
a problems table that says what was left out and why.

Only headers are read, except the pixel data of series whose slice positions repeat (phases are told from true
duplicates by it). The index is the one place that decides which series are images
to convert; everything downstream trusts it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from pydicom.errors import InvalidDicomError

from . import __version__
from .contours import audit_roi, contour_data, patient_planes
from .dicom_header import pixel_data_problem, pixel_element, read_header
from .roi_names import load_aliases, standard_name
from .suv import SUVError, suv_factors, suv_tags

IMAGE_MODALITIES = {"CT", "MR", "PT"}
INDEX_FORMAT = 2  # raised whenever the tables gain columns: an index written before is built again
RTSTRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
ROLES = {"RTSTRUCT": "rtstruct", "RTDOSE": "rtdose", "RTPLAN": "rtplan", "SEG": "seg", "REG": "registration"}

INSTANCE_COLUMNS = [
    "path",
    "size",
    "mtime",
    "patient_id",
    "study_uid",
    "study_date",
    "study_description",
    "series_uid",
    "series_number",
    "series_description",
    "modality",
    "sop_class_uid",
    "sop_instance_uid",
    "frame_of_reference_uid",
    "manufacturer",
    "image_type",
    "rows",
    "columns",
    "pixel_spacing_row",
    "pixel_spacing_col",
    "slice_thickness",
    "orientation",
    "position_x",
    "position_y",
    "position_z",
    "instance_number",
    "acquisition_number",
    "number_of_frames",
    "temporal_position",
    "trigger_time",
    "content_time",
    "referenced_series_uid",
    "suv_tags",
    "pixel_problem",
    "series_key",
]
CACHE_COLUMNS = INSTANCE_COLUMNS + ["file_problem"]
SERIES_COLUMNS = [
    "patient_id",
    "study_uid",
    "study_date",
    "study_description",
    "series_uid",
    "dicom_series_uid",
    "series_number",
    "series_description",
    "modality",
    "role",
    "frame_of_reference_uid",
    "manufacturer",
    "n_files",
    "rows",
    "columns",
    "n_slices",
    "pixel_spacing_row",
    "pixel_spacing_col",
    "slice_spacing",
    "slice_thickness",
    "orientation",
    "z_min",
    "z_max",
    "convert",
    "reason",
]
ROI_COLUMNS = [
    "patient_id",
    "study_uid",
    "rtstruct_series_uid",
    "rtstruct_sop_uid",
    "rtstruct_path",
    "referenced_series_uid",
    "frame_of_reference_uid",
    "roi_number",
    "roi_original",
    "roi",
    "roi_pattern",
    "n_contours",
    "contour_types",
    "z_min",
    "z_max",
    "duplicate_contours",
    "crossing_planes",
    "crossing_area_mm2",
    "contour_warnings",
]
LINK_COLUMNS = [
    "patient_id",
    "source_modality",
    "source_series_uid",
    "source_sop_uid",
    "source_path",
    "image_series_uid",
    "image_modality",
    "relation",
]
PROBLEM_COLUMNS = ["level", "item", "patient_id", "series_uid", "severity", "reason"]


# ------------------------------------------------------------------------------------------ files
def crawl(root) -> list[tuple[str, int, int]]:
    """(path, size, mtime in ns) of every regular file under root (any layout, any extension), in a stable
    order; hidden files and folders are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"DICOM root {root} does not exist or is not a folder")
    files = []
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        subdirs = []
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                subdirs.append(e.path)
            elif e.is_file():
                st = e.stat()
                files.append((e.path, st.st_size, st.st_mtime_ns))
        stack.extend(reversed(subdirs))
    return files


def _text(ds, keyword, default=""):
    v = ds.get(keyword, default)
    return default if v is None else str(v).strip()


def _values(v) -> list[str]:
    """Multi-valued element as strings, from pydicom (MultiValue) or the fast reader ("a\\b")."""
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [x.strip() for x in v.split("\\")]
    if isinstance(v, (list, tuple)) or hasattr(v, "__iter__") and not isinstance(v, bytes):
        return [str(x).strip() for x in v]
    return [str(v).strip()]


def _number(values: list[str], index: int, cast=float):
    try:
        return cast(float(values[index])) if cast is int else cast(values[index])
    except (IndexError, TypeError, ValueError):
        return np.nan if cast is float else 0


def _referenced_series(ds) -> str:
    for ref_for in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in ref_for.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                if series.get("SeriesInstanceUID"):
                    return str(series.SeriesInstanceUID)
    return ""


def instance_row(get, path: str, st) -> dict:
    """One instances row from get(keyword) (a pydicom Dataset's .get, or the fast reader's dict .get)."""
    orientation = _values(get("ImageOrientationPatient"))
    position = _values(get("ImagePositionPatient"))
    spacing = _values(get("PixelSpacing"))

    def text(k):
        v = get(k)
        return "" if v is None else str(v).strip()

    return dict(
        path=path,
        size=st.st_size,
        mtime=st.st_mtime_ns,
        patient_id=text("PatientID"),
        study_uid=text("StudyInstanceUID"),
        study_date=text("StudyDate"),
        study_description=text("StudyDescription"),
        series_uid=text("SeriesInstanceUID"),
        series_number=text("SeriesNumber"),
        series_description=text("SeriesDescription"),
        modality=text("Modality").upper(),
        sop_class_uid=text("SOPClassUID") or text("MediaStorageSOPClassUID"),
        sop_instance_uid=text("SOPInstanceUID"),
        frame_of_reference_uid=text("FrameOfReferenceUID"),
        manufacturer=text("Manufacturer"),
        image_type="\\".join(_values(get("ImageType"))).upper(),
        rows=_number([text("Rows")], 0, int),
        columns=_number([text("Columns")], 0, int),
        pixel_spacing_row=_number(spacing, 0),
        pixel_spacing_col=_number(spacing, 1),
        slice_thickness=_number([text("SliceThickness")], 0),
        orientation="\\".join(f"{float(v):.6f}" for v in orientation) if len(orientation) == 6 else "",
        position_x=_number(position, 0),
        position_y=_number(position, 1),
        position_z=_number(position, 2),
        instance_number=_number([text("InstanceNumber")], 0, int),
        acquisition_number=text("AcquisitionNumber"),
        temporal_position=text("TemporalPositionIdentifier"),
        trigger_time=text("TriggerTime"),
        content_time=text("ContentTime"),
        number_of_frames=max(1, _number([text("NumberOfFrames")], 0, int)),
        referenced_series_uid="",
        suv_tags="",
        pixel_problem="",
    )


def _expected_pixel_bytes(row: dict, get) -> int | None:
    try:
        bits = int(get("BitsAllocated") or 0)
        samples = int(get("SamplesPerPixel") or 1)
    except (TypeError, ValueError):
        return None
    if not bits or not row["rows"] or not row["columns"]:
        return None
    return row["rows"] * row["columns"] * samples * row["number_of_frames"] * bits // 8


def read_instance(path) -> tuple[dict | None, list[dict], str]:
    """(instance row, ROI rows if an RTSTRUCT, problem) for one file. A file that is not DICOM gives a problem.

    CT/MR/RTDOSE headers go through the fast reader; PET (SUV tags), RTSTRUCT (ROIs), unusual transfer syntaxes
    and anything the fast reader declines go through pydicom."""
    path = str(path)
    st = os.stat(path)
    if st.st_size == 0:
        return None, [], "empty file (0 bytes)"
    fast = None
    try:
        fast = read_header(path)
    except OSError as err:
        return None, [], f"unreadable file: {err}"
    if (
        fast is not None
        and str(fast.get("Modality", "")).upper() not in ("PT", "RTSTRUCT", "SEG", "")
        and fast.get("SeriesInstanceUID")
        and fast.get("MediaStorageSOPClassUID") != DICOMDIR_CLASS
    ):
        row = instance_row(fast.get, path, st)
        row["pixel_problem"] = pixel_data_problem(
            st.st_size, fast.get("_pixel_start"), fast.get("_pixel_length"), _expected_pixel_bytes(row, fast.get)
        )
        return row, [], ""
    try:
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True)
            pixel_tell = fp.tell()
            head = fp.read(12)
    except InvalidDicomError:
        return None, [], "not a DICOM file (no 'DICM' prefix after the 128-byte preamble)"
    except Exception as err:  # truncated or corrupt headers raise many kinds of errors
        return None, [], f"unreadable DICOM header: {type(err).__name__}: {err}"
    sop_class = _text(ds, "SOPClassUID") or _text(getattr(ds, "file_meta", {}), "MediaStorageSOPClassUID")
    if sop_class == DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        return None, [], "DICOMDIR (a media directory, not an image)"
    if not ds.get("SeriesInstanceUID"):
        return None, [], "DICOM file without SeriesInstanceUID"
    row = instance_row(ds.get, path, st)
    row["sop_class_uid"] = sop_class
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    little = (
        syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
        or syntax.startswith("1.2.840.10008.1.2.4")
        or syntax == "1.2.840.10008.1.2.5"
    )
    if little and head[:4] == b"\xe0\x7f\x10\x00":  # stopped at the pixel data element
        start, length = pixel_element(head, pixel_tell, syntax == "1.2.840.10008.1.2")
        row["pixel_problem"] = pixel_data_problem(st.st_size, start, length, _expected_pixel_bytes(row, ds.get))
    elif not head and row["modality"] in IMAGE_MODALITIES | {"RTDOSE"}:
        # pydicom reads a header cut short without complaint; an image file must go on to its pixels
        row["pixel_problem"] = f"truncated: the file ends at byte {st.st_size} before any pixel data"
    rtstruct = row_is_rtstruct(ds, sop_class)
    if rtstruct:
        row["referenced_series_uid"] = _referenced_series(ds)
    if row["modality"] == "SEG":
        seg_rows = _seg_rows(ds, row)
        row["referenced_series_uid"] = seg_rows[0]["referenced_series_uid"] if seg_rows else ""
        return row, seg_rows, ""
    if row["modality"] == "PT":
        # the tags that decide the SUV factor, so that the index can refuse a series before conversion
        row["suv_tags"] = json.dumps(suv_tags(ds), sort_keys=True)
    return row, _roi_rows(ds, row) if rtstruct else [], ""


def row_is_rtstruct(ds, sop_class) -> bool:
    return sop_class == RTSTRUCT_CLASS or _text(ds, "Modality").upper() == "RTSTRUCT"


def _seg_rows(ds, inst: dict) -> list[dict]:
    """One ROI row per segment of a DICOM SEG (its label is the original name)."""
    refs = [str(s.SeriesInstanceUID) for s in ds.get("ReferencedSeriesSequence", []) if s.get("SeriesInstanceUID")]
    zs = []
    for frame in ds.get("PerFrameFunctionalGroupsSequence", []):
        for plane in frame.get("PlanePositionSequence", []):
            zs.append(float(plane.ImagePositionPatient[2]))
    rows = []
    for seg in ds.get("SegmentSequence", []):
        rows.append(
            dict(
                patient_id=inst["patient_id"],
                study_uid=inst["study_uid"],
                rtstruct_series_uid=inst["series_uid"],
                rtstruct_sop_uid=inst["sop_instance_uid"],
                rtstruct_path=inst["path"],
                referenced_series_uid=refs[0] if refs else "",
                frame_of_reference_uid=inst["frame_of_reference_uid"],
                roi_number=int(seg.SegmentNumber),
                roi_original=_text(seg, "SegmentLabel"),
                n_contours=int(ds.get("NumberOfFrames", 0) or 0),
                contour_types="SEG",
                z_min=min(zs) if zs else np.nan,
                z_max=max(zs) if zs else np.nan,
                duplicate_contours=0,
                crossing_planes=0,
                crossing_area_mm2=0.0,
                contour_warnings="",
            )
        )
    return rows


def _roi_rows(ds, inst: dict) -> list[dict]:
    contours = {
        int(rc.ReferencedROINumber): rc.get("ContourSequence", [])
        for rc in ds.get("ROIContourSequence", [])
        if "ReferencedROINumber" in rc
    }
    rows = []
    for item in ds.get("StructureSetROISequence", []):
        number = int(item.ROINumber)
        seq = contours.get(number, [])
        types = sorted({str(c.get("ContourGeometricType", "")) for c in seq})
        name = _text(item, "ROIName")
        try:
            data = [contour_data(c) for c in seq]
            points = [d.reshape(-1, 3) for d in data if d.size and d.size % 3 == 0]
            closed = [
                p for p, c in zip(points, seq) if str(c.get("ContourGeometricType", "")).upper() == "CLOSED_PLANAR"
            ]
            found = audit_roi(patient_planes(closed))
            audit = dict(
                duplicate_contours=found.duplicates,
                crossing_planes=found.crossing_planes,
                crossing_area_mm2=round(found.crossing_area_mm2, 3),
                contour_warnings=" | ".join(found.warnings(name)),
            )
        except Exception as err:  # the masks step says what is wrong with this ROI's contours
            points, audit = (
                [],
                dict(
                    duplicate_contours=0,
                    crossing_planes=0,
                    crossing_area_mm2=0.0,
                    contour_warnings=f"ROI '{name}': contours not readable ({type(err).__name__}: {err})",
                ),
            )
        zs = np.concatenate([p[:, 2] for p in points]) if points else np.zeros(0)
        rows.append(
            dict(
                patient_id=inst["patient_id"],
                study_uid=inst["study_uid"],
                rtstruct_series_uid=inst["series_uid"],
                rtstruct_sop_uid=inst["sop_instance_uid"],
                rtstruct_path=inst["path"],
                referenced_series_uid=inst["referenced_series_uid"],
                frame_of_reference_uid=_text(item, "ReferencedFrameOfReferenceUID") or inst["frame_of_reference_uid"],
                roi_number=number,
                roi_original=name,
                n_contours=len(seq),
                contour_types=",".join(t for t in types if t),
                z_min=float(zs.min()) if zs.size else np.nan,
                z_max=float(zs.max()) if zs.size else np.nan,
                **audit,
            )
        )
    return rows


def _read_chunk(paths) -> list[tuple]:
    """Cache rows (tuples in CACHE_COLUMNS order) and ROI rows for a chunk of files: tuples cross the process
    boundary far cheaper than dicts."""
    out = []
    for path in paths:
        row, rois, problem = read_instance(path)
        if row is None:
            st = os.stat(path)
            row = dict.fromkeys(CACHE_COLUMNS, "") | dict(path=path, size=st.st_size, mtime=st.st_mtime_ns)
        row["file_problem"] = problem
        out.append((tuple(row.get(c, "") for c in CACHE_COLUMNS), rois))
    return out


def _read_many(paths, threads: int, progress: bool) -> tuple[list[tuple], list[dict]]:
    """Cache rows and ROI rows of paths, read in `threads` processes, with a progress line on a terminal."""
    n = len(paths)
    size = 2000
    chunks = [paths[k : k + size] for k in range(0, n, size)]
    rows, rois = [], []

    def take(result):
        for row, r in result:
            rows.append(row)
            rois.extend(r)
        if progress:
            print(
                f"\rradflow index: {len(rows)}/{n} files read",
                end="" if len(rows) < n else "\n",
                file=sys.stderr,
                flush=True,
            )

    if threads <= 1 or n < 500:
        for chunk in chunks:
            take(_read_chunk(chunk))
    else:
        with ProcessPoolExecutor(max_workers=threads) as pool:
            for result in pool.map(_read_chunk, chunks):
                take(result)
    return rows, rois


# ----------------------------------------------------------------------------------------- series
SERIES_FIELDS = [
    "path",
    "patient_id",
    "study_uid",
    "study_date",
    "study_description",
    "series_uid",
    "series_number",
    "series_description",
    "modality",
    "frame_of_reference_uid",
    "manufacturer",
    "image_type",
    "rows",
    "columns",
    "pixel_spacing_row",
    "pixel_spacing_col",
    "slice_thickness",
    "orientation",
    "position_x",
    "position_y",
    "position_z",
    "instance_number",
    "acquisition_number",
    "number_of_frames",
    "suv_tags",
    "temporal_position",
    "trigger_time",
    "content_time",
]


class Slices:
    """The instances of one (sub-)series as numpy arrays: per-series checks without pandas overhead."""

    def __init__(self, columns: dict, idx: np.ndarray, along: np.ndarray, geometry_key: np.ndarray):
        self.columns, self.idx, self.along_all, self.key_all = columns, idx, along, geometry_key

    def __len__(self):
        return len(self.idx)

    def __getitem__(self, name):
        return self.columns[name][self.idx]

    def subset(self, mask) -> "Slices":
        return Slices(self.columns, self.idx[mask], self.along_all, self.key_all)

    @property
    def along(self):
        return self.along_all[self.idx]

    @property
    def geometry_key(self):
        return self.key_all[self.idx]

    def first(self, name):
        return self[name][int(np.argmin(self["instance_number"]))]


def _normals(orientations: np.ndarray) -> np.ndarray:
    """Slice normal per row, parsing each distinct ImageOrientationPatient once (NaN where absent)."""
    out = np.full((len(orientations), 3), np.nan)
    values, inverse = np.unique(orientations.astype(str), return_inverse=True)
    for k, text in enumerate(values):
        try:
            o = np.array([float(v) for v in text.split("\\")])
            out[inverse == k] = np.cross(o[:3], o[3:6])
        except ValueError:
            pass
    return out


# What tells the images at one slice position apart, in the order tried: (instances column, DICOM keyword).
PHASE_KEYS = (
    ("temporal_position", "TemporalPositionIdentifier"),
    ("trigger_time", "TriggerTime"),
    ("content_time", "ContentTime"),
    ("acquisition_number", "AcquisitionNumber"),
)


def pixel_digest(path) -> str:
    """SHA-1 of a file's pixel data as stored (the bytes after the Pixel Data element header)."""
    header = read_header(path)
    start, length = (header or {}).get("_pixel_start"), (header or {}).get("_pixel_length")
    if start is not None and length is not None and 0 <= length != 0xFFFFFFFF:
        with open(path, "rb") as fp:
            fp.seek(start)
            data = fp.read(length)
    else:  # encapsulated, big-endian or anything the fast reader leaves to pydicom
        data = pydicom.dcmread(path).get("PixelData", b"") or b""
    return hashlib.sha1(data).hexdigest()


def _value_order(v: str):
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def split_phases(sl: Slices, digest=pixel_digest) -> tuple[list[Slices], str, str]:
    """(phases, how, refusal) of a (sub-)series whose slice positions repeat: several acquisitions or the phases of
    a dynamic series. Phases are told apart by the first of PHASE_KEYS that gives as many groups as the most images
    at one position, each group with one image per position; else, when every position holds the same number of
    images, by InstanceNumber order within each position. Images with identical pixel data at one position are
    true duplicates: nothing is split, and the refusal says so (the series is then excluded)."""
    z = np.round(sl.along, 3)
    _, position, counts = np.unique(z, return_inverse=True, return_counts=True)
    n = int(counts.max())
    paths = sl["path"]
    repeated = np.flatnonzero(counts[position] > 1)
    digests = {i: digest(paths[i]) for i in repeated}
    same = sum(
        len({digests[i] for i in repeated[position[repeated] == p]}) < counts[p] for p in np.unique(position[repeated])
    )
    if same:
        return [sl], "", f"{same} slice position(s) hold images with identical pixel data: true duplicates, not phases"
    for column, keyword in PHASE_KEYS:
        values = sl[column].astype(str)
        labels = sorted(set(values), key=_value_order)
        if (values == "").any() or len(labels) != n:
            continue
        groups = [sl.subset(values == label) for label in labels]
        if all(len(np.unique(np.round(g.along, 3))) == len(g) for g in groups):
            what = "acquisitions" if keyword == "AcquisitionNumber" else "phases"
            return groups, f"{n} {what} at the same slice positions, told apart by {keyword}", ""
    if (counts != n).any():
        return (
            [sl],
            "",
            (
                f"slice positions hold from {int(counts.min())} to {n} images each, and no "
                "TemporalPositionIdentifier, TriggerTime, ContentTime or AcquisitionNumber tells them apart"
            ),
        )
    order = np.lexsort((sl["instance_number"], position))
    rank = np.empty(len(z), int)
    rank[order] = np.arange(len(z)) % n  # sorted by position, then InstanceNumber: n per position
    return (
        [sl.subset(rank == p) for p in range(n)],
        (
            f"{n} images at each of {len(counts)} slice positions, in InstanceNumber order (no "
            "TemporalPositionIdentifier, TriggerTime, ContentTime or AcquisitionNumber tells them apart)"
        ),
        "",
    )


def split_series(sl: Slices, digest=pixel_digest) -> tuple[list[Slices], str, str]:
    """Sub-series of one SeriesInstanceUID: one per orientation and matrix size, and one per acquisition or phase
    when the slice positions repeat (split_phases). Returns ([sl], "", refusal) when nothing needs splitting;
    refusal says why repeated positions were not split."""
    keys = sl.geometry_key
    distinct = list(dict.fromkeys(keys))  # first-seen order
    parts = [sl.subset(keys == k) for k in distinct] if len(distinct) > 1 else [sl]
    why = ["orientation or matrix size"] if len(parts) > 1 else []
    out, refusals = [], []
    for part in parts:
        z = np.round(part.along, 3)
        if np.isfinite(z).all() and len(np.unique(z)) < len(z):
            phases, how, refusal = split_phases(part, digest)
            if len(phases) > 1:
                out.extend(phases)
                why.append(how)
                continue
            refusals.append(refusal)
        out.append(part)
    out.sort(key=lambda g: (g["instance_number"].min(), g["path"].min()))
    return out, " and ".join(dict.fromkeys(why)), "; ".join(r for r in refusals if r)


def check_image_series(sl: Slices) -> tuple[bool, str, dict]:
    """(convert?, reason, geometry) for the instances of one CT/MR/PT (sub-)series."""
    geometry = {}
    if any("LOCALIZER" in t for t in sl["image_type"]):
        return False, "localizer/scout image (ImageType LOCALIZER): not a volume", geometry
    along = sl.along
    if (sl["orientation"] == "").any() or not np.isfinite(along).all():
        return False, "slices without ImageOrientationPatient/ImagePositionPatient", geometry
    if sl["number_of_frames"].max() > 1:
        return (
            False,
            (
                "multi-frame (enhanced) image objects are not supported yet: "
                f"{int(sl['number_of_frames'].max())} frames in one file"
            ),
            geometry,
        )
    if len(sl) < 2:
        return False, "a single slice: not a volume", geometry
    order = np.argsort(along, kind="stable")
    z = along[order]
    geometry.update(z_min=float(z[0]), z_max=float(z[-1]))
    steps = np.diff(z)
    if (steps < 1e-3).any():
        return False, f"{int((steps < 1e-3).sum())} duplicate slice position(s)", geometry
    median = float(np.median(steps))
    geometry["slice_spacing"] = median
    if (steps > 1.5 * median).any():
        return (
            False,
            (f"missing slice(s): a gap of {float(steps.max()):.2f} mm where the spacing is {median:.2f} mm"),
            geometry,
        )
    mean = (z[-1] - z[0]) / (len(z) - 1)
    off_grid = np.abs(z - (z[0] + mean * np.arange(len(z)))).max()
    if off_grid > 0.1 * mean:
        return (
            False,
            (
                f"non-uniform slice spacing: steps from {steps.min():.2f} to {steps.max():.2f} mm, a slice "
                f"lies {off_grid:.2f} mm off a uniform grid"
            ),
            geometry,
        )
    # Gantry tilt: slices stacked along a direction that is not the slice normal.
    o = np.array([float(v) for v in sl["orientation"][0].split("\\")])
    normal = np.cross(o[:3], o[3:6])
    pos = np.column_stack([sl["position_x"], sl["position_y"], sl["position_z"]]).astype(float)[order]
    drift = pos - pos[0] - np.outer(z - z[0], normal)
    spacing = np.concatenate([sl["pixel_spacing_row"], sl["pixel_spacing_col"]]).astype(float)
    pixel = float(np.nanmin(spacing)) if np.isfinite(spacing).any() else 1.0
    shift = float(np.abs(drift).max())
    if shift > 0.5 * pixel:
        angle = float(np.degrees(np.arctan2(np.linalg.norm(drift[-1]), z[-1] - z[0])))
        return (
            False,
            (
                f"gantry tilt (about {angle:.1f} degrees): slices shift {shift:.1f} mm in-plane across the "
                "stack; not converted"
            ),
            geometry,
        )
    return True, "", geometry


def check_pet_series(sl: Slices, pet_fallback: str | None = None) -> tuple[bool, str, str]:
    """(convert?, reason, severity): whether SUVbw can be computed from the slices' headers."""
    tags = sl["suv_tags"][np.argsort(sl.along, kind="stable")]
    try:
        suv_factors([json.loads(t) for t in tags])
    except SUVError as err:
        units = json.loads(tags[0])["units"]
        if pet_fallback == "bqml" and units == "BQML":
            return True, f"SUVbw not computable ({err}); kept in Bq/ml (pet_fallback: bqml)", "warning"
        return False, f"PET without SUVbw: {err}", "excluded"
    return True, "", ""


def _series_row(key, uid, sl: Slices, geometry, role, convert, reason) -> dict:
    f = sl.first
    return dict(
        patient_id=f("patient_id"),
        study_uid=f("study_uid"),
        study_date=f("study_date"),
        study_description=f("study_description"),
        series_uid=key,
        dicom_series_uid=uid,
        series_number=f("series_number"),
        series_description=f("series_description"),
        modality=f("modality"),
        role=role,
        frame_of_reference_uid=f("frame_of_reference_uid"),
        manufacturer=f("manufacturer"),
        n_files=len(sl),
        rows=int(f("rows")),
        columns=int(f("columns")),
        n_slices=int(sl["number_of_frames"].sum()),
        pixel_spacing_row=f("pixel_spacing_row"),
        pixel_spacing_col=f("pixel_spacing_col"),
        slice_spacing=geometry.get("slice_spacing", np.nan),
        slice_thickness=f("slice_thickness"),
        orientation=f("orientation"),
        z_min=geometry.get("z_min", np.nan),
        z_max=geometry.get("z_max", np.nan),
        convert=bool(convert),
        reason=reason,
    )


def series_table(
    instances: pd.DataFrame, pet_fallback: str | None = None, modalities=("CT", "MR", "PT")
) -> tuple[pd.DataFrame, list[dict], np.ndarray]:
    """(series table, problems, series key per instance). An image SeriesInstanceUID that mixes orientations,
    matrix sizes or acquisitions becomes sub-series with keys <UID>_1, <UID>_2 …"""
    rows, problems = [], []
    columns = {c: instances[c].to_numpy() for c in SERIES_FIELDS}
    normals = _normals(columns["orientation"])
    positions = np.column_stack([columns["position_x"], columns["position_y"], columns["position_z"]]).astype(float)
    along = (positions * normals).sum(axis=1)
    geometry_key = (
        instances["orientation"].astype(str)
        + "|"
        + instances["rows"].astype(str)
        + "|"
        + instances["columns"].astype(str)
    ).to_numpy()
    keys = columns["series_uid"].astype(object).copy()

    def problem(key, patient, severity, reason):
        problems.append(
            dict(level="series", item=key, patient_id=patient, series_uid=key, severity=severity, reason=reason)
        )

    groups = instances.groupby("series_uid", sort=True).indices
    for uid in sorted(groups):
        sl = Slices(columns, np.asarray(groups[uid]), along, geometry_key)
        modality = sl["modality"][0]
        role = "image" if modality in IMAGE_MODALITIES else ROLES.get(modality, "other")
        patient = sl["patient_id"][0]
        if role != "image":
            reason = {
                "rtdose": "RTDOSE: a dose grid, converted to Gy under results/dose, not as an image",
                "rtplan": "RTPLAN: a treatment plan, holds no image",
                "rtstruct": "",
                "seg": "",
            }.get(role, f"modality {modality or '(none)'}: not an image series radflow converts")
            if reason:
                problem(uid, patient, "info", reason)
            rows.append(_series_row(uid, uid, sl, {}, role, False, reason))
            continue
        parts, why, refusal = split_series(sl)
        if len(parts) > 1:
            problem(
                uid,
                patient,
                "split",
                f"one SeriesInstanceUID holds {len(parts)} sub-series (by {why}); "
                f"indexed as {uid}_1 … {uid}_{len(parts)}",
            )
        for n, part in enumerate(parts, start=1):
            key = f"{uid}_{n}" if len(parts) > 1 else uid
            keys[part.idx] = key
            convert, reason, geometry = check_image_series(part)
            if refusal and "duplicate slice position" in reason:
                reason = f"{reason}: {refusal}"
            severity = "excluded"
            if convert and modality not in modalities:
                convert, reason, severity = False, f"modality {modality} is not in the config's modalities", "info"
            if convert and modality == "PT":
                convert, reason, pet_severity = check_pet_series(part, pet_fallback)
                severity = pet_severity or severity
            if reason:
                problem(key, patient, severity, reason)
            rows.append(_series_row(key, uid, part, geometry, role, convert, reason))
    df = pd.DataFrame(rows, columns=SERIES_COLUMNS)
    order = pd.to_numeric(df["series_number"], errors="coerce")
    df = df.assign(_n=order).sort_values(["patient_id", "study_date", "study_uid", "_n", "series_uid"])
    return df.drop(columns="_n").reset_index(drop=True), problems, keys


def _overlaps(lo, hi, image_lo, image_hi, margin) -> bool:
    if any(pd.isna(v) for v in (lo, hi, image_lo, image_hi)):
        return True  # unknown extent: do not refuse
    return hi >= image_lo - margin and lo <= image_hi + margin


def link_table(series: pd.DataFrame, rois: pd.DataFrame, instances: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """RTSTRUCT and RTDOSE -> every converted image series they belong to.

    An RTSTRUCT goes to the series it references (ReferencedSeriesInstanceUID, all its converted sub-series);
    also, and when that reference dangles instead, to every converted image series of the same patient and frame
    of reference whose slices cover its contours (the PET of a PET/CT), on which its ROIs are rasterised directly.
    An RTDOSE goes to the converted CT series of its frame of reference."""
    images = series[series["convert"]]
    modality = dict(zip(images["series_uid"], images["modality"]))
    sources = []
    structs = rois.groupby("rtstruct_sop_uid", sort=False) if len(rois) else []
    for _, g in structs:
        rs = g.iloc[0]
        sources.append(
            dict(
                patient_id=rs["patient_id"],
                source_modality="SEG" if rs["contour_types"] == "SEG" else "RTSTRUCT",
                source_series_uid=rs["rtstruct_series_uid"],
                source_sop_uid=rs["rtstruct_sop_uid"],
                source_path=rs["rtstruct_path"],
                referenced=rs["referenced_series_uid"],
                frame_of_reference_uid=rs["frame_of_reference_uid"],
                z_min=g["z_min"].min(),
                z_max=g["z_max"].max(),
            )
        )
    for _, d in instances[instances["modality"] == "RTDOSE"].iterrows():
        sources.append(
            dict(
                patient_id=d["patient_id"],
                source_modality="RTDOSE",
                source_series_uid=d["series_uid"],
                source_sop_uid=d["sop_instance_uid"],
                source_path=d["path"],
                referenced="",
                frame_of_reference_uid=d["frame_of_reference_uid"],
                z_min=np.nan,
                z_max=np.nan,
            )
        )
    links, problems = [], []
    for src in sources:
        targets = {}
        ref = src["referenced"]
        referenced = images[images["dicom_series_uid"] == ref] if ref else images.iloc[0:0]
        for uid in referenced["series_uid"]:
            targets[uid] = "referenced"
        if ref and not len(referenced):
            problems.append(
                dict(
                    level="series",
                    item=src["source_series_uid"],
                    patient_id=src["patient_id"],
                    series_uid=src["source_series_uid"],
                    severity="warning",
                    reason=f"{src['source_modality']} references image series {ref}, which is not among "
                    "the converted image series; linked by frame of reference and slice "
                    "coverage instead",
                )
            )
        same_for = images[
            (images["frame_of_reference_uid"] == src["frame_of_reference_uid"])
            & (images["patient_id"] == src["patient_id"])
        ]
        if src["source_modality"] == "RTDOSE":
            same_for = same_for[same_for["modality"] == "CT"]
        for _, im in same_for.iterrows():
            margin = im["slice_spacing"] / 2 if pd.notna(im["slice_spacing"]) else 0.0
            if _overlaps(src["z_min"], src["z_max"], im["z_min"], im["z_max"], margin):
                targets.setdefault(im["series_uid"], "same_frame_of_reference")
        if not targets:
            problems.append(
                dict(
                    level="series",
                    item=src["source_series_uid"],
                    patient_id=src["patient_id"],
                    series_uid=src["source_series_uid"],
                    severity="excluded",
                    reason=f"{src['source_modality']} has no converted image series to go with "
                    f"(referenced series {ref or '(none)'} absent; no image of frame of reference "
                    f"{src['frame_of_reference_uid'] or '(none)'} covers it)",
                )
            )
        for uid, relation in targets.items():
            links.append(
                dict(
                    {k: src[k] for k in LINK_COLUMNS if k in src},
                    image_series_uid=uid,
                    image_modality=modality[uid],
                    relation=relation,
                )
            )
    return pd.DataFrame(links, columns=LINK_COLUMNS), problems


def select_series(series: pd.DataFrame, links: pd.DataFrame, selection: str) -> tuple[pd.DataFrame, list[dict]]:
    """With selection "referenced", only image series that a structure set goes with are converted (the
    referenced series and the series on its frame of reference); with "all", every usable image series."""
    if selection == "all":
        return series, []
    if selection != "referenced":
        raise ValueError(f"series_selection must be 'referenced' or 'all', not {selection!r}")
    linked = set(links.loc[links["source_modality"].isin(["RTSTRUCT", "SEG"]), "image_series_uid"])
    drop = series["convert"] & ~series["series_uid"].isin(linked)
    series = series.copy()
    series.loc[drop, "convert"] = False
    series.loc[drop, "reason"] = "no structure set goes with this series (series_selection: referenced)"
    problems = [
        dict(
            level="series",
            item=r.series_uid,
            patient_id=r.patient_id,
            series_uid=r.series_uid,
            severity="info",
            reason=r.reason,
        )
        for r in series[drop].itertuples()
    ]
    return series, problems


def read_manifest(path) -> list[str]:
    """SeriesInstanceUIDs of an NBIA .tcia manifest: a header block of key=value lines, then one UID per line."""
    uids = []
    for line in Path(path).read_text(errors="replace").splitlines():
        line = line.strip()
        if line and "=" not in line and line[0].isdigit() and all(c.isdigit() or c == "." for c in line):
            uids.append(line)
    if not uids:
        raise ValueError(f"{path}: no SeriesInstanceUID lines found (is it an NBIA .tcia manifest?)")
    return uids


# ------------------------------------------------------------------------------------------ entry
def _unchanged(files, cache_path: Path) -> bool:
    """True when the cache holds exactly these (path, size, mtime) triples."""
    if not cache_path.exists():
        return False
    cached = pd.read_parquet(cache_path, columns=["path", "size", "mtime"])
    if len(cached) != len(files):
        return False
    # the cache is written in crawl order, so equal trees give equal arrays
    paths, sizes, mtimes = zip(*files) if files else ((), (), ())
    return bool(
        np.array_equal(cached["path"].to_numpy(), np.asarray(paths, dtype=object))
        and np.array_equal(cached["size"].to_numpy(np.int64), np.asarray(sizes, np.int64))
        and np.array_equal(cached["mtime"].to_numpy(np.int64), np.asarray(mtimes, np.int64))
    )


def _read_with_cache(files, cache_path: Path, threads: int, progress: bool):
    """Instance rows, ROI rows and file problems for every file; files whose path, size and mtime match the
    cache of the previous run are not read again."""
    cached = pd.read_parquet(cache_path) if cache_path.exists() else pd.DataFrame(columns=CACHE_COLUMNS)
    cached_rois = (
        pd.read_parquet(cache_path.with_name("cache_rois.parquet"))
        if cache_path.with_name("cache_rois.parquet").exists()
        else pd.DataFrame()
    )
    roi_base = [c for c in ROI_COLUMNS if c not in ("roi", "roi_pattern")]
    if list(cached.columns) != CACHE_COLUMNS or (len(cached_rois) and list(cached_rois.columns) != roi_base):
        # a cache written by an older radflow lacks columns: every file is read again
        cached, cached_rois = pd.DataFrame(columns=CACHE_COLUMNS), pd.DataFrame()
    current = pd.DataFrame(files, columns=["path", "size", "mtime"])
    merged = current.merge(
        cached[["path", "size", "mtime"]].astype({"size": "int64", "mtime": "int64"}).assign(_hit=True),
        on=["path", "size", "mtime"],
        how="left",
    )
    hit = merged["_hit"].eq(True).to_numpy()
    todo = current.loc[~hit, "path"].tolist()
    reused = cached[cached["path"].isin(set(current.loc[hit, "path"]))]
    rows, roi_rows = _read_many(todo, threads, progress)
    fresh = pd.DataFrame.from_records(rows, columns=CACHE_COLUMNS)
    for c in ("rows", "columns", "instance_number", "number_of_frames"):
        fresh[c] = pd.to_numeric(fresh[c], errors="coerce").fillna(0).astype("int64")
    for c in ("pixel_spacing_row", "pixel_spacing_col", "slice_thickness", "position_x", "position_y", "position_z"):
        fresh[c] = pd.to_numeric(fresh[c], errors="coerce")
    parts = [f for f in (reused, fresh) if len(f)]
    table = pd.concat(parts, ignore_index=True) if parts else fresh
    table = table.astype({"size": "int64", "mtime": "int64"})
    order = pd.Series(np.arange(len(current)), index=current["path"].to_numpy())
    table = table.iloc[np.argsort(order.loc[table["path"]].to_numpy(), kind="stable")].reset_index(drop=True)
    old_rois = (
        cached_rois[cached_rois["rtstruct_path"].isin(set(reused["path"]))]
        if len(cached_rois)
        else pd.DataFrame(columns=roi_base)
    )
    new_rois = pd.DataFrame(roi_rows, columns=roi_base)
    all_rois = pd.concat([f for f in (old_rois, new_rois) if len(f)] or [new_rois], ignore_index=True)
    table.to_parquet(cache_path, index=False)
    all_rois.to_parquet(cache_path.with_name("cache_rois.parquet"), index=False)
    return table, all_rois, len(todo)


def build_index(
    root,
    out_dir,
    roi_names,
    threads: int = 1,
    pet_fallback: str | None = None,
    modalities=("CT", "MR", "PT"),
    series_selection: str = "referenced",
    manifest=None,
    progress: bool | None = None,
    load_instances: bool = True,
) -> dict[str, pd.DataFrame]:
    """Index the DICOM tree under root into out_dir: instances, series, rois and links (parquet), problems.tsv,
    and manifest.tsv when a .tcia manifest is given. Incremental: unchanged files are not read again."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    aliases = load_aliases(roi_names)
    if progress is None:
        progress = sys.stderr.isatty()
    files = crawl(root)
    # Nothing changed on disk and the settings are the same: the tables of the last run stand as they are.
    signature = json.dumps(
        dict(
            version=__version__,
            index_format=INDEX_FORMAT,
            roi_names=hashlib.sha256(Path(roi_names).read_bytes()).hexdigest(),
            pet_fallback=pet_fallback,
            modalities=sorted(modalities),
            series_selection=series_selection,
            manifest=hashlib.sha256(Path(manifest).read_bytes()).hexdigest() if manifest else None,
        ),
        sort_keys=True,
    )
    outputs = [out / f"{n}.parquet" for n in ("instances", "series", "rois", "links")] + [
        out / "problems.tsv",
        out / "index_stats.json",
    ]
    stamp = out / "index_settings.json"
    if (
        stamp.exists()
        and stamp.read_text() == signature
        and all(p.exists() for p in outputs)
        and _unchanged(files, out / "cache.parquet")
    ):
        tables = load_index(out, instances=load_instances)
        if manifest:
            tables["manifest"] = pd.read_csv(out / "manifest.tsv", sep="\t")
        tables["stats"] = json.loads((out / "index_stats.json").read_text()) | dict(read=0, reused=len(files))
        return tables
    stamp.unlink(missing_ok=True)
    table, roi_rows, n_read = _read_with_cache(files, out / "cache.parquet", threads, progress)
    problems = [
        dict(level="file", item=r.path, patient_id="", series_uid="", severity="skipped", reason=r.file_problem)
        for r in table[table["file_problem"] != ""].itertuples()
    ]
    instances = table[table["file_problem"] == ""].drop(columns="file_problem")
    broken = instances[instances["pixel_problem"] != ""]
    problems += [
        dict(
            level="file",
            item=r.path,
            patient_id=r.patient_id,
            series_uid=r.series_uid,
            severity="skipped",
            reason=r.pixel_problem,
        )
        for r in broken.itertuples()
    ]
    instances = instances[instances["pixel_problem"] == ""]
    instances = instances.sort_values(["patient_id", "series_uid", "instance_number", "path"], ignore_index=True)
    dup = instances[instances.duplicated("sop_instance_uid", keep="first")]
    problems += [
        dict(
            level="file",
            item=r.path,
            patient_id=r.patient_id,
            series_uid=r.series_uid,
            severity="skipped",
            reason=f"duplicate SOPInstanceUID {r.sop_instance_uid}: an earlier file has the same one",
        )
        for r in dup.itertuples()
    ]
    instances = instances.drop(index=dup.index).reset_index(drop=True)
    series, series_problems, keys = series_table(instances, pet_fallback, tuple(modalities))
    instances["series_key"] = keys
    problems.extend(series_problems)

    rois = roi_rows[roi_rows["rtstruct_sop_uid"].isin(set(instances["sop_instance_uid"]))].copy()
    mapped = [standard_name(n, aliases) for n in rois["roi_original"]]
    rois["roi"] = [m[0] for m in mapped]
    rois["roi_pattern"] = [m[1] for m in mapped]
    rois = rois.reindex(columns=ROI_COLUMNS).sort_values(
        ["patient_id", "rtstruct_series_uid", "roi_number"], ignore_index=True
    )
    for r in rois[rois["n_contours"] == 0].itertuples():
        problems.append(
            dict(
                level="roi",
                item=f"{r.rtstruct_series_uid}/{r.roi_original}",
                patient_id=r.patient_id,
                series_uid=r.rtstruct_series_uid,
                severity="excluded",
                reason=f"ROI '{r.roi_original}' has no contours",
            )
        )
    for r in rois[rois["contour_warnings"].fillna("") != ""].itertuples():
        for text in r.contour_warnings.split(" | "):
            problems.append(
                dict(
                    level="roi",
                    item=f"{r.rtstruct_series_uid}/{r.roi_original}",
                    patient_id=r.patient_id,
                    series_uid=r.rtstruct_series_uid,
                    severity="warning",
                    reason=text,
                )
            )
    links, link_problems = link_table(series, rois, instances)
    problems.extend(link_problems)
    series, selection_problems = select_series(series, links, series_selection)
    problems.extend(selection_problems)
    links = links[links["image_series_uid"].isin(set(series.loc[series["convert"], "series_uid"]))]

    tables = dict(instances=instances, series=series, rois=rois, links=links.reset_index(drop=True))
    if manifest:
        expected = read_manifest(manifest)
        present = set(instances["series_uid"])
        tables["manifest"] = pd.DataFrame(
            dict(series_uid=expected, status=["present" if u in present else "missing" for u in expected])
        )
        problems += [
            dict(
                level="series",
                item=u,
                patient_id="",
                series_uid=u,
                severity="missing",
                reason=f"listed in the manifest {Path(manifest).name} but not in the download",
            )
            for u in expected
            if u not in present
        ]
        extra = sorted(present - set(expected))
        problems += [
            dict(
                level="series",
                item=u,
                patient_id="",
                series_uid=u,
                severity="info",
                reason=f"in the download but not in the manifest {Path(manifest).name}",
            )
            for u in extra
        ]
    problems_df = pd.DataFrame(problems, columns=PROBLEM_COLUMNS)
    for name, t in tables.items():
        if name == "manifest":
            t.to_csv(out / "manifest.tsv", sep="\t", index=False)
        else:
            t.to_parquet(out / f"{name}.parquet", index=False)
    problems_df.to_csv(out / "problems.tsv", sep="\t", index=False)
    stamp.write_text(signature)
    tables["problems"] = problems_df
    tables["stats"] = dict(files=len(files), instances=len(instances), read=n_read, reused=len(files) - n_read)
    (out / "index_stats.json").write_text(json.dumps(dict(files=len(files), instances=len(instances))))
    return tables


def load_index(index_dir, instances: bool = True) -> dict[str, pd.DataFrame]:
    d = Path(index_dir)
    names = ("instances", "series", "rois", "links") if instances else ("series", "rois", "links")
    tables = {name: pd.read_parquet(d / f"{name}.parquet") for name in names}
    tables["problems"] = pd.read_csv(d / "problems.tsv", sep="\t", dtype=str, keep_default_na=False)
    return tables


def series_files(instances: pd.DataFrame, series_uid: str) -> list[str]:
    """The files of one image series or sub-series (key <UID> or <UID>_<n>)."""
    column = "series_key" if "series_key" in instances.columns else "series_uid"
    files = instances.loc[instances[column] == series_uid, "path"].tolist()
    if not files:
        raise KeyError(f"series {series_uid} is not in the index")
    return files
