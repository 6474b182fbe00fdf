"""The index tables' columns and the DICOM constants the index decides by."""

from __future__ import annotations

INDEX_FORMAT = 6  # raised whenever the tables gain columns: an index written before is built again
RTSTRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"

INSTANCE_COLUMNS = [
    "path",
    "size",
    "mtime",
    "patient_id",  # the PatientID normalised (radflow.ids: a TCGA sample barcode stands for its patient)
    "dicom_patient_id",  # the PatientID as the file has it
    "study_uid",
    "study_date",
    "study_description",
    "dicom_series_uid",  # the SeriesInstanceUID; series_key (added by the index) is the (sub-)series
    "series_number",
    "series_description",
    "modality",
    "sop_class_uid",
    "sop_instance_uid",
    "frame_of_reference_uid",
    "manufacturer",
    "manufacturer_model",  # ManufacturerModelName: the scanner model (a harmonisation batch)
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
    # RTDOSE: the RTPLANs it belongs to (ReferencedRTPlanSequence); RTPLAN: its structure sets
    # (ReferencedStructureSetSequence); SOP instance UIDs joined by "\\"
    "referenced_sop_uids",
    "rt_label",  # RTPLAN: RTPlanLabel
    "suv_tags",
    "pixel_problem",
    "series_key",
]
# the instance columns a series' checks read (as numpy arrays, radflow.index.series.Slices)
SERIES_FIELDS = [
    c
    for c in INSTANCE_COLUMNS
    if c
    not in (
        "size",
        "mtime",
        "sop_class_uid",
        "sop_instance_uid",
        "referenced_series_uid",
        "referenced_sop_uids",
        "rt_label",
        "dicom_patient_id",
        "pixel_problem",
        "series_key",
    )
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
    "manufacturer_model",
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
    "x_min",  # the contours' extent in patient coordinates (mm): what a series job plans its memory by
    "x_max",
    "y_min",
    "y_max",
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
    # RTDOSE: the plan it names (RTDOSE -> RTPLAN) and the structure sets that plan names (RTPLAN -> RTSTRUCT)
    "plan_sop_uid",
    "plan_label",
    "plan_structure_sop_uids",
]
PROBLEM_COLUMNS = ["level", "item", "patient_id", "series_uid", "severity", "reason"]


def split_uids(joined) -> list[str]:
    """The UIDs of a column that joins several with "\\" (referenced_sop_uids, plan_structure_sop_uids)."""
    return [u for u in str(joined or "").split("\\") if u]


def problem(level: str, item: str, patient_id: str, series_uid: str, severity: str, reason: str) -> dict:
    """One row of problems.tsv: what (file, series or ROI: level and item), whose, how bad, and why in words."""
    return dict(level=level, item=item, patient_id=patient_id, series_uid=series_uid, severity=severity, reason=reason)
