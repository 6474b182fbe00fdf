"""Index a DICOM tree: one row per file, per series, per RTSTRUCT ROI, per RTSTRUCT-to-image link, and
a problems table that says what was left out and why.

Only headers are read (no pixel data). The index is the one place that decides which series are images
to convert; everything downstream trusts it.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from pydicom.errors import InvalidDicomError

from .roi_names import load_aliases, standard_name
from .suv import SUVError, suv_factors, suv_tags

IMAGE_MODALITIES = {"CT", "MR", "PT"}
RTSTRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
ROLES = {"RTSTRUCT": "rtstruct", "RTDOSE": "rtdose", "RTPLAN": "rtplan", "SEG": "seg", "REG": "registration"}

INSTANCE_COLUMNS = [
    "path", "size", "mtime", "patient_id", "study_uid", "study_date", "study_description", "series_uid",
    "series_number", "series_description", "modality", "sop_class_uid", "sop_instance_uid", "frame_of_reference_uid",
    "manufacturer", "image_type", "rows", "columns", "pixel_spacing_row", "pixel_spacing_col", "slice_thickness",
    "orientation", "position_x", "position_y", "position_z", "instance_number", "number_of_frames",
    "referenced_series_uid", "suv_tags",
]
SERIES_COLUMNS = [
    "patient_id", "study_uid", "study_date", "study_description", "series_uid", "series_number", "series_description",
    "modality", "role", "frame_of_reference_uid", "manufacturer", "n_files", "rows", "columns", "n_slices",
    "pixel_spacing_row", "pixel_spacing_col", "slice_spacing", "slice_thickness", "orientation", "convert", "reason",
]
ROI_COLUMNS = [
    "patient_id", "study_uid", "rtstruct_series_uid", "rtstruct_sop_uid", "rtstruct_path", "referenced_series_uid",
    "frame_of_reference_uid", "roi_number", "roi_original", "roi", "roi_pattern", "n_contours", "contour_types",
]
LINK_COLUMNS = ["patient_id", "source_modality", "source_series_uid", "source_sop_uid", "source_path",
                "image_series_uid", "image_modality", "relation"]
PROBLEM_COLUMNS = ["level", "item", "patient_id", "series_uid", "severity", "reason"]


# ------------------------------------------------------------------------------------------ files
def crawl(root) -> list[Path]:
    """Every regular file under root (any layout, any extension), in a stable order; hidden files skipped."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"DICOM root {root} does not exist or is not a folder")
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return files


def _text(ds, keyword, default=""):
    v = ds.get(keyword, default)
    return default if v is None else str(v).strip()


def _float(ds, keyword, index=None):
    v = ds.get(keyword)
    if v is None or v == "":
        return np.nan
    try:
        return float(v[index]) if index is not None else float(v)
    except (TypeError, ValueError, IndexError):
        return np.nan


def _referenced_series(ds) -> str:
    for ref_for in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in ref_for.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                if series.get("SeriesInstanceUID"):
                    return str(series.SeriesInstanceUID)
    return ""


def read_instance(path) -> tuple[dict | None, list[dict], str]:
    """(instance row, ROI rows if an RTSTRUCT, problem) for one file. A file that is not DICOM gives a problem."""
    path = Path(path)
    st = path.stat()
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        return None, [], "not a DICOM file (no DICOM preamble or header)"
    except Exception as err:  # truncated or corrupt headers raise many kinds of errors
        return None, [], f"unreadable DICOM header: {type(err).__name__}: {err}"
    sop_class = _text(ds, "SOPClassUID") or _text(getattr(ds, "file_meta", {}), "MediaStorageSOPClassUID")
    if sop_class == DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        return None, [], "DICOMDIR (a media directory, not an image)"
    if not ds.get("SeriesInstanceUID"):
        return None, [], "DICOM file without SeriesInstanceUID"
    orientation = ds.get("ImageOrientationPatient")
    position = ds.get("ImagePositionPatient")
    row = dict(
        path=str(path), size=st.st_size, mtime=st.st_mtime,
        patient_id=_text(ds, "PatientID"), study_uid=_text(ds, "StudyInstanceUID"),
        study_date=_text(ds, "StudyDate"), study_description=_text(ds, "StudyDescription"),
        series_uid=_text(ds, "SeriesInstanceUID"), series_number=_text(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription"), modality=_text(ds, "Modality").upper(),
        sop_class_uid=sop_class, sop_instance_uid=_text(ds, "SOPInstanceUID"),
        frame_of_reference_uid=_text(ds, "FrameOfReferenceUID"), manufacturer=_text(ds, "Manufacturer"),
        image_type="\\".join(str(v) for v in ds.get("ImageType", []) or []).upper(),
        rows=int(ds.get("Rows", 0) or 0), columns=int(ds.get("Columns", 0) or 0),
        pixel_spacing_row=_float(ds, "PixelSpacing", 0), pixel_spacing_col=_float(ds, "PixelSpacing", 1),
        slice_thickness=_float(ds, "SliceThickness"),
        orientation="\\".join(f"{float(v):.6f}" for v in orientation) if orientation else "",
        position_x=float(position[0]) if position else np.nan,
        position_y=float(position[1]) if position else np.nan,
        position_z=float(position[2]) if position else np.nan,
        instance_number=int(ds.get("InstanceNumber", 0) or 0),
        number_of_frames=int(ds.get("NumberOfFrames", 1) or 1),
        referenced_series_uid=_referenced_series(ds) if row_is_rtstruct(ds, sop_class) else "",
        # PET: the tags that decide the SUV factor, so that the index can refuse a series before conversion
        suv_tags=json.dumps(suv_tags(ds), sort_keys=True) if _text(ds, "Modality").upper() == "PT" else "",
    )
    rois = _roi_rows(ds, row) if row_is_rtstruct(ds, sop_class) else []
    return row, rois, ""


def row_is_rtstruct(ds, sop_class) -> bool:
    return sop_class == RTSTRUCT_CLASS or _text(ds, "Modality").upper() == "RTSTRUCT"


def _roi_rows(ds, inst: dict) -> list[dict]:
    contours = {int(rc.ReferencedROINumber): rc.get("ContourSequence", [])
                for rc in ds.get("ROIContourSequence", []) if "ReferencedROINumber" in rc}
    rows = []
    for item in ds.get("StructureSetROISequence", []):
        number = int(item.ROINumber)
        seq = contours.get(number, [])
        types = sorted({str(c.get("ContourGeometricType", "")) for c in seq})
        rows.append(dict(
            patient_id=inst["patient_id"], study_uid=inst["study_uid"], rtstruct_series_uid=inst["series_uid"],
            rtstruct_sop_uid=inst["sop_instance_uid"], rtstruct_path=inst["path"],
            referenced_series_uid=inst["referenced_series_uid"],
            frame_of_reference_uid=_text(item, "ReferencedFrameOfReferenceUID") or inst["frame_of_reference_uid"],
            roi_number=number, roi_original=_text(item, "ROIName"), n_contours=len(seq),
            contour_types=",".join(t for t in types if t),
        ))
    return rows


def _read_many(paths, threads: int):
    if threads <= 1 or len(paths) < 64:
        return [read_instance(p) for p in paths]
    with ProcessPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(read_instance, paths, chunksize=64))


# ----------------------------------------------------------------------------------------- series
def _positions_along_normal(group: pd.DataFrame) -> np.ndarray:
    o = np.array([float(v) for v in group["orientation"].iloc[0].split("\\")])
    normal = np.cross(o[:3], o[3:6])
    pos = group[["position_x", "position_y", "position_z"]].to_numpy(float)
    return pos @ normal


def check_image_series(group: pd.DataFrame) -> tuple[bool, str, dict]:
    """(convert?, reason, geometry) for the instances of one CT/MR/PT series."""
    geometry = {}
    if group["image_type"].str.contains("LOCALIZER").any():
        return False, "localizer/scout image (ImageType LOCALIZER): not a volume", geometry
    if group["orientation"].eq("").any() or group["position_z"].isna().any():
        return False, "slices without ImageOrientationPatient/ImagePositionPatient", geometry
    for column, what in (("orientation", "orientations"), ("rows", "row counts"), ("columns", "column counts")):
        if group[column].nunique() > 1:
            return False, f"several {what} in one series ({group[column].nunique()}); not converted", geometry
    if group["number_of_frames"].max() > 1:
        return False, "multi-frame image series are not supported yet", geometry
    if len(group) < 2:
        return False, "a single slice: not a volume", geometry
    z = np.sort(_positions_along_normal(group))
    steps = np.diff(z)
    if (steps < 1e-3).any():
        return False, f"{int((steps < 1e-3).sum())} duplicate slice position(s)", geometry
    median = float(np.median(steps))
    geometry["slice_spacing"] = median
    if (steps > 1.5 * median).any():
        worst = float(steps.max())
        return False, f"missing slice(s): a gap of {worst:.2f} mm where the spacing is {median:.2f} mm", geometry
    return True, "", geometry


def check_pet_series(group: pd.DataFrame, pet_fallback: str | None = None) -> tuple[bool, str, str]:
    """(convert?, reason, severity): whether SUVbw can be computed from the slices' headers."""
    slices = group.assign(_z=_positions_along_normal(group)).sort_values("_z")
    try:
        suv_factors([json.loads(t) for t in slices["suv_tags"]])
    except SUVError as err:
        units = json.loads(slices["suv_tags"].iloc[0])["units"]
        if pet_fallback == "bqml" and units == "BQML":
            return True, f"SUVbw not computable ({err}); kept in Bq/ml (pet_fallback: bqml)", "warning"
        return False, f"PET without SUVbw: {err}", "excluded"
    return True, "", ""


def series_table(instances: pd.DataFrame, pet_fallback: str | None = None) -> tuple[pd.DataFrame, list[dict]]:
    rows, problems = [], []
    for series_uid, group in instances.groupby("series_uid", sort=True):
        first = group.sort_values("instance_number").iloc[0]
        modality = first["modality"]
        role = "image" if modality in IMAGE_MODALITIES else ROLES.get(modality, "other")
        convert, reason, geometry = False, "", {}
        severity = "excluded" if role == "image" else "info"
        if role == "image":
            convert, reason, geometry = check_image_series(group)
            if convert and modality == "PT":
                convert, reason, pet_severity = check_pet_series(group, pet_fallback)
                severity = pet_severity or severity
        elif role == "rtdose":
            reason = "RTDOSE: a dose grid, converted to Gy under results/dose, not as an image"
        elif role == "rtplan":
            reason = "RTPLAN: a treatment plan, holds no image"
        elif role in ("rtstruct", "seg"):
            reason = ""
        else:
            reason = f"modality {modality or '(none)'}: not an image series radflow converts"
        if reason:
            problems.append(dict(level="series", item=series_uid, patient_id=first["patient_id"],
                                 series_uid=series_uid, severity=severity, reason=reason))
        rows.append(dict(
            patient_id=first["patient_id"], study_uid=first["study_uid"], study_date=first["study_date"],
            study_description=first["study_description"], series_uid=series_uid,
            series_number=first["series_number"], series_description=first["series_description"],
            modality=modality, role=role, frame_of_reference_uid=first["frame_of_reference_uid"],
            manufacturer=first["manufacturer"], n_files=len(group), rows=int(first["rows"]),
            columns=int(first["columns"]), n_slices=int(group["number_of_frames"].sum()),
            pixel_spacing_row=first["pixel_spacing_row"], pixel_spacing_col=first["pixel_spacing_col"],
            slice_spacing=geometry.get("slice_spacing", np.nan), slice_thickness=first["slice_thickness"],
            orientation=first["orientation"], convert=bool(convert), reason=reason,
        ))
    df = pd.DataFrame(rows, columns=SERIES_COLUMNS)
    order = pd.to_numeric(df["series_number"], errors="coerce")
    df = df.assign(_n=order).sort_values(["patient_id", "study_date", "study_uid", "_n", "series_uid"])
    return df.drop(columns="_n").reset_index(drop=True), problems


def link_table(series: pd.DataFrame, rois: pd.DataFrame, instances: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """RTSTRUCT and RTDOSE -> every converted image series they belong to.

    An RTSTRUCT goes first to the series it references (ReferencedSeriesInstanceUID), then to every other converted
    image series of the same patient and frame of reference (the PET of a PET/CT), on which its ROIs are rasterised
    directly. An RTDOSE goes to the converted image series of its frame of reference."""
    images = series[series["convert"]]
    modality = dict(zip(images["series_uid"], images["modality"]))
    sources = []
    structs = rois.drop_duplicates("rtstruct_sop_uid") if len(rois) else rois
    for _, rs in structs.iterrows():
        sources.append(dict(patient_id=rs["patient_id"], source_modality="RTSTRUCT",
                            source_series_uid=rs["rtstruct_series_uid"], source_sop_uid=rs["rtstruct_sop_uid"],
                            source_path=rs["rtstruct_path"], referenced=rs["referenced_series_uid"],
                            frame_of_reference_uid=rs["frame_of_reference_uid"]))
    for _, d in instances[instances["modality"] == "RTDOSE"].iterrows():
        sources.append(dict(patient_id=d["patient_id"], source_modality="RTDOSE", source_series_uid=d["series_uid"],
                            source_sop_uid=d["sop_instance_uid"], source_path=d["path"], referenced="",
                            frame_of_reference_uid=d["frame_of_reference_uid"]))
    links, problems = [], []
    for src in sources:
        targets = {}
        ref = src["referenced"]
        if ref in modality:
            targets[ref] = "referenced"
        elif ref:
            problems.append(dict(level="series", item=src["source_series_uid"], patient_id=src["patient_id"],
                                 series_uid=src["source_series_uid"], severity="warning",
                                 reason=f"{src['source_modality']} references image series {ref}, which is not among "
                                        "the converted image series; linked by frame of reference only"))
        same_for = images[(images["frame_of_reference_uid"] == src["frame_of_reference_uid"])
                          & (images["patient_id"] == src["patient_id"])]
        if src["source_modality"] == "RTDOSE":
            same_for = same_for[same_for["modality"] == "CT"]
        for uid in same_for["series_uid"]:
            targets.setdefault(uid, "same_frame_of_reference")
        if not targets:
            problems.append(dict(level="series", item=src["source_series_uid"], patient_id=src["patient_id"],
                                 series_uid=src["source_series_uid"], severity="excluded",
                                 reason=f"{src['source_modality']} has no converted image series to go with "
                                        f"(referenced series {ref or '(none)'}, frame of reference "
                                        f"{src['frame_of_reference_uid'] or '(none)'})"))
        for uid, relation in targets.items():
            links.append(dict({k: src[k] for k in LINK_COLUMNS if k in src}, image_series_uid=uid,
                              image_modality=modality[uid], relation=relation))
    return pd.DataFrame(links, columns=LINK_COLUMNS), problems


# ------------------------------------------------------------------------------------------ entry
def build_index(root, out_dir, roi_names, threads: int = 1, pet_fallback: str | None = None
                ) -> dict[str, pd.DataFrame]:
    """Index the DICOM tree under root into out_dir (parquet tables and problems.tsv)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    aliases = load_aliases(roi_names)
    paths = crawl(root)
    instance_rows, roi_rows, problems = [], [], []
    for path, (row, rois, problem) in zip(paths, _read_many(paths, threads)):
        if row is None:
            problems.append(dict(level="file", item=str(path), patient_id="", series_uid="", severity="skipped",
                                 reason=problem))
            continue
        instance_rows.append(row)
        roi_rows.extend(rois)
    instances = pd.DataFrame(instance_rows, columns=INSTANCE_COLUMNS)
    instances = instances.sort_values(["patient_id", "series_uid", "instance_number", "path"], ignore_index=True)
    dup = instances[instances.duplicated("sop_instance_uid", keep="first")]
    for _, r in dup.iterrows():
        problems.append(dict(level="file", item=r["path"], patient_id=r["patient_id"], series_uid=r["series_uid"],
                             severity="skipped", reason=f"duplicate SOPInstanceUID {r['sop_instance_uid']}: "
                                                        "an earlier file has the same one"))
    instances = instances.drop(index=dup.index).reset_index(drop=True)
    series, series_problems = series_table(instances, pet_fallback)
    problems.extend(series_problems)

    rois = pd.DataFrame(roi_rows, columns=[c for c in ROI_COLUMNS if c not in ("roi", "roi_pattern")])
    mapped = [standard_name(n, aliases) for n in rois["roi_original"]]
    rois["roi"] = [m[0] for m in mapped]
    rois["roi_pattern"] = [m[1] for m in mapped]
    rois = rois[ROI_COLUMNS].sort_values(["patient_id", "rtstruct_series_uid", "roi_number"], ignore_index=True)
    for _, r in rois[rois["n_contours"] == 0].iterrows():
        problems.append(dict(level="roi", item=f"{r['rtstruct_series_uid']}/{r['roi_original']}",
                             patient_id=r["patient_id"], series_uid=r["rtstruct_series_uid"], severity="excluded",
                             reason=f"ROI '{r['roi_original']}' has no contours"))
    links, link_problems = link_table(series, rois, instances)
    problems.extend(link_problems)

    problems_df = pd.DataFrame(problems, columns=PROBLEM_COLUMNS)
    tables = dict(instances=instances, series=series, rois=rois, links=links)
    for name, table in tables.items():
        table.to_parquet(out / f"{name}.parquet", index=False)
    problems_df.to_csv(out / "problems.tsv", sep="\t", index=False)
    tables["problems"] = problems_df
    return tables


def load_index(index_dir) -> dict[str, pd.DataFrame]:
    d = Path(index_dir)
    tables = {name: pd.read_parquet(d / f"{name}.parquet") for name in ("instances", "series", "rois", "links")}
    tables["problems"] = pd.read_csv(d / "problems.tsv", sep="\t", dtype=str, keep_default_na=False)
    return tables


def series_files(instances: pd.DataFrame, series_uid: str) -> list[str]:
    files = instances.loc[instances["series_uid"] == series_uid, "path"].tolist()
    if not files:
        raise KeyError(f"series {series_uid} is not in the index")
    return files
