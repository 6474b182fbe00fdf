"""Reading the files: the crawl, one row per file from its header (radflow's fast reader, else pydicom), the ROI
rows of RTSTRUCTs and SEGs, and the pixel digest of a file."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from radflow.dicom.contours import audit_roi, contour_data, patient_planes
from radflow.dicom.header import pixel_data_problem, pixel_element, read_header
from radflow.dicom.suv import suv_tags
from radflow.ids import normalise_barcode
from radflow.index.columns import CACHE_COLUMNS, DICOMDIR_CLASS, RTSTRUCT_CLASS
from radflow.modalities import FULL_HEADER_MODALITIES, IMAGE_MODALITIES, image_modality


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
        patient_id=normalise_barcode(text("PatientID")),  # the ID of every table (radflow.ids)
        dicom_patient_id=text("PatientID"),
        study_uid=text("StudyInstanceUID"),
        study_date=text("StudyDate"),
        study_description=text("StudyDescription"),
        dicom_series_uid=text("SeriesInstanceUID"),
        series_number=text("SeriesNumber"),
        series_description=text("SeriesDescription"),
        modality=text("Modality").upper(),
        sop_class_uid=text("SOPClassUID") or text("MediaStorageSOPClassUID"),
        sop_instance_uid=text("SOPInstanceUID"),
        frame_of_reference_uid=text("FrameOfReferenceUID"),
        manufacturer=text("Manufacturer"),
        manufacturer_model=text("ManufacturerModelName"),
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
        referenced_sop_uids="",
        rt_label="",
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


def _fast_row(path: str, st, fast: dict | None) -> dict | None:
    """The instance row from the fast reader's header, when it read one radflow needs no more of (not a PET, an
    RT object, a SEG or a DICOMDIR); else None (pydicom reads the file)."""
    if (
        fast is None
        or str(fast.get("Modality", "")).upper() in FULL_HEADER_MODALITIES | {""}
        or not fast.get("SeriesInstanceUID")
        or fast.get("MediaStorageSOPClassUID") == DICOMDIR_CLASS
    ):
        return None
    row = instance_row(fast.get, path, st)
    row["pixel_problem"] = pixel_data_problem(
        st.st_size, fast.get("_pixel_start"), fast.get("_pixel_length"), _expected_pixel_bytes(row, fast.get)
    )
    return row


def _pixel_problem(ds, row: dict, head: bytes, pixel_tell: int, size: int) -> str:
    """What is wrong with the pixel data pydicom stopped before ("" when nothing is): its length against what the
    header announces, or an image file that ends before any pixel data."""
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    little = (
        syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
        or syntax.startswith("1.2.840.10008.1.2.4")
        or syntax == "1.2.840.10008.1.2.5"
    )
    if little and head[:4] == b"\xe0\x7f\x10\x00":  # stopped at the pixel data element
        start, length = pixel_element(head, pixel_tell, syntax == "1.2.840.10008.1.2")
        return pixel_data_problem(size, start, length, _expected_pixel_bytes(row, ds.get))
    if not head and row["modality"] in {*IMAGE_MODALITIES, "RTDOSE"}:
        # pydicom reads a header cut short without complaint; an image file must go on to its pixels
        return f"truncated: the file ends at byte {size} before any pixel data"
    return row.get("pixel_problem", "")


def _read_with_pydicom(path: str):
    """(dataset, position of the pixel data element, its first 12 bytes), or (None, 0, problem)."""
    try:
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True)
            return ds, fp.tell(), fp.read(12)
    except InvalidDicomError:
        return None, 0, "not a DICOM file (no 'DICM' prefix after the 128-byte preamble)"
    except Exception as err:  # truncated or corrupt headers raise many kinds of errors
        return None, 0, f"unreadable DICOM header: {type(err).__name__}: {err}"


def read_instance(path) -> tuple[dict | None, list[dict], str]:
    """(instance row, ROI rows if an RTSTRUCT, problem) for one file. A file that is not DICOM gives a problem.

    CT/MR/RTDOSE headers go through the fast reader; PET (SUV tags), RTSTRUCT (ROIs), unusual transfer syntaxes
    and anything the fast reader declines go through pydicom."""
    path = str(path)
    st = os.stat(path)
    if st.st_size == 0:
        return None, [], "empty file (0 bytes)"
    try:
        row = _fast_row(path, st, read_header(path))
    except OSError as err:
        return None, [], f"unreadable file: {err}"
    if row is not None:
        return row, [], ""
    ds, pixel_tell, head = _read_with_pydicom(path)
    if ds is None:
        return None, [], head
    sop_class = _text(ds, "SOPClassUID") or _text(getattr(ds, "file_meta", {}), "MediaStorageSOPClassUID")
    if sop_class == DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        return None, [], "DICOMDIR (a media directory, not an image)"
    if not ds.get("SeriesInstanceUID"):
        return None, [], "DICOM file without SeriesInstanceUID"
    row = instance_row(ds.get, path, st)
    row["sop_class_uid"] = sop_class
    row["pixel_problem"] = _pixel_problem(ds, row, head, pixel_tell, st.st_size)
    return row, _by_kind(ds, row, sop_class), ""


def _by_kind(ds, row: dict, sop_class: str) -> list[dict]:
    """What a file of its kind adds to its row (a plan's references, a PET's SUV tags, the series a structure set or
    SEG references) and its ROI rows (an RTSTRUCT's ROIs, a SEG's segments)."""
    if row["modality"] in ("RTDOSE", "RTPLAN"):
        row["referenced_sop_uids"], row["rt_label"] = _plan_references(ds, row["modality"])
    if row["modality"] == "SEG":
        seg_rows = _seg_rows(ds, row)
        row["referenced_series_uid"] = seg_rows[0]["referenced_series_uid"] if seg_rows else ""
        return seg_rows
    gate = image_modality(row["modality"])
    if gate and gate.header_gate == "suv":
        # the tags that decide the SUV factor, so that the index can refuse a series before conversion
        row["suv_tags"] = json.dumps(suv_tags(ds), sort_keys=True)
    if not row_is_rtstruct(ds, sop_class):
        return []
    row["referenced_series_uid"] = _referenced_series(ds)
    return _roi_rows(ds, row)


def _plan_references(ds, modality: str) -> tuple[str, str]:
    """(the SOP instance UIDs an RTDOSE's plans or an RTPLAN's structure sets have, joined by "\\"; the plan's
    label)."""
    sequence = "ReferencedRTPlanSequence" if modality == "RTDOSE" else "ReferencedStructureSetSequence"
    uids = [_text(r, "ReferencedSOPInstanceUID") for r in ds.get(sequence, None) or []]
    return "\\".join(u for u in uids if u), _text(ds, "RTPlanLabel") if modality == "RTPLAN" else ""


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
                rtstruct_series_uid=inst["dicom_series_uid"],
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
                x_min=np.nan,
                x_max=np.nan,
                y_min=np.nan,
                y_max=np.nan,
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
        xyz = np.concatenate(points) if points else np.zeros((0, 3))
        zs = xyz[:, 2]

        def extent(values, pick):
            return float(pick(values)) if values.size else np.nan

        rows.append(
            dict(
                patient_id=inst["patient_id"],
                study_uid=inst["study_uid"],
                rtstruct_series_uid=inst["dicom_series_uid"],
                rtstruct_sop_uid=inst["sop_instance_uid"],
                rtstruct_path=inst["path"],
                referenced_series_uid=inst["referenced_series_uid"],
                frame_of_reference_uid=_text(item, "ReferencedFrameOfReferenceUID") or inst["frame_of_reference_uid"],
                roi_number=number,
                roi_original=name,
                n_contours=len(seq),
                contour_types=",".join(t for t in types if t),
                z_min=extent(zs, np.min),
                z_max=extent(zs, np.max),
                x_min=extent(xyz[:, 0], np.min),
                x_max=extent(xyz[:, 0], np.max),
                y_min=extent(xyz[:, 1], np.min),
                y_max=extent(xyz[:, 1], np.max),
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
