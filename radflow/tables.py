"""The columns of radflow's results tables, defined once: every writer and reader imports them from here.

The index's own tables (instances, series, rois, links, problems) are defined in radflow.index.columns.
"""

from __future__ import annotations

import pandas as pd

# --- features.parquet / .csv: one row per patient x series x ROI (then the features)
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


# pyradiomics' image types prefix every feature name: original_, wavelet-LLH_, log-sigma-1-0-mm-3D_, square_, ...
FEATURE_PREFIXES = ("original_", "log-", "wavelet-", "square", "exponential", "logarithm", "gradient", "lbp-")


def pyradiomics_columns(table) -> list[str]:
    """The feature columns of a table (features, modelling, perturbed): pyradiomics' names, in the table's order."""
    return [c for c in table.columns if c.startswith(FEATURE_PREFIXES) and "diagnostics" not in c]


def feature_class(name: str) -> str:
    """A feature's class from its pyradiomics name (original_glcm_Idmn -> glcm); empty when it has none."""
    parts = name.split("_")
    return parts[1] if len(parts) >= 3 else ""


def feature_columns(features: pd.DataFrame) -> list[str]:
    """The measurements of a features table (pyradiomics' and the IBSI mode's ibsi_* columns): every column that is
    not one of ID_COLUMNS, in the table's order."""
    return [c for c in features.columns if c not in ID_COLUMNS]


def model_feature_columns(table: pd.DataFrame) -> list[str]:
    """The numeric measurements of a modelling table or its harmonised copy (features and dose metrics), in the
    table's order: not the identifiers, the clinical columns, the outcomes (*_days, *_event, *_source) or the
    harmonisation's own columns."""
    skip = set(ID_COLUMNS) | set(CLINICAL_COLUMNS) | set(HARMONISED_COLUMNS)
    return [
        c
        for c in table.columns
        if c not in skip and not c.endswith(OUTCOME_SUFFIXES) and pd.api.types.is_numeric_dtype(table[c])
    ]


def ordered_features(df: pd.DataFrame) -> pd.DataFrame:
    """A features table's columns in their one order: ID_COLUMNS (added empty where missing), then the features."""
    for c in ID_COLUMNS:
        if c not in df.columns:
            df[c] = pd.Series(dtype=object)
    # a whole number or empty (not extracted), the same type whichever rows a series has
    df["resampled_voxels"] = pd.to_numeric(df["resampled_voxels"], errors="coerce").round().astype("Int64")
    features = [c for c in df.columns if c not in ID_COLUMNS]
    return df[ID_COLUMNS + features]


# --- clinical.csv: one row per patient
# the outcomes (time and event of each endpoint) and the covariates radflow reads from every clinical format
OUTCOMES = ["os_days", "os_event", "dss_days", "dss_event", "pfi_days", "pfi_event"]
COVARIATES = ["age", "sex", "stage", "tumour_site", "hpv_status", "smoking"]
CLINICAL_COLUMNS = [
    "patient_id",
    "project",
    *COVARIATES,
    "vital_status",
    *OUTCOMES,
    "os_source",
    "dss_source",
    "pfi_source",
    "covariates_source",
]


# outcome columns of clinical.csv and the modelling table: os_days, os_event, os_source …
OUTCOME_SUFFIXES = ("_days", "_event", "_source")


# --- timeline.tsv: one row per patient x study
TIMELINE_COLUMNS = [
    "patient_id",
    "study_uid",
    "study_date",
    "day",
    "study_description",
    "modalities",
    "image_series",
    "converted_images",
    "structure_sets",
    "rtdose",
]


# --- cohort.tsv: every patient accounted for
COHORT_COLUMNS = [
    "patient_id",
    "has_images",
    "has_modality",
    "has_roi",
    "has_clinical",
    "has_outcome",
    "in_modelling_table",
    "reason",
    "study_uid",
    "study_day",
    "series_uid",
    "roi_label",
    "roi_original",
    "time_point",
    "selection",
    "passed_over",
]


# --- modelling_table.csv: the clinical columns it carries (outcomes and covariates)
CLINICAL_KEEP = [*OUTCOMES, *COVARIATES]


# --- harmonised/modelling_table.csv: the modelling table's columns, then these
HARMONISED_COLUMNS = ["harmonised_by", "harmonisation_batch"]


# --- modelling_table_columns.tsv: what each column of the modelling table is
DICTIONARY_COLUMNS = ["column", "kind", "unit", "values", "rows", "meaning", "why_empty"]


# --- delta_radiomics.csv: the two time points of a patient x modality x ROI
DELTA_KEY_COLUMNS = [
    "patient_id",
    "modality",
    "roi",
    "study_uid_0",
    "series_uid_0",
    "roi_label_0",
    "roi_original_0",
    "day_0",
    "study_uid_1",
    "series_uid_1",
    "roi_label_1",
    "roi_original_1",
    "day_1",
    "interval_days",
]


DELTA_SUFFIXES = ("_0", "_1", "_delta", "_relative")


# --- dose/dvh.parquet: one row per dose grid x ROI (then the metrics, radflow.features.dvh.METRIC_COLUMNS)
DVH_ID_COLUMNS = [
    "patient_id",
    "study_uid",
    "dose_series_uid",
    "dose_summation_type",
    "dose_type",
    "plan_label",
    "dose_beams",  # the plan's beams a per-beam dose grid holds ("1, 2"; empty for a plan sum)
    "structure_sets_by",  # the plan's reference (RTDOSE -> RTPLAN -> RTSTRUCT) or the frame of reference, and why
    "rtstruct_series_uid",
    "roi",
    "roi_original",
    "status",
    "reason",
    "method",
    "sampling_mm",
    "samples",
    "outside_dose_grid_pct",
    "polygon_volume_cc",
]


# --- dose/dvh_curves.parquet: the cumulative DVH of each
CURVE_COLUMNS = [
    "patient_id",
    "dose_series_uid",
    "rtstruct_series_uid",
    "roi",
    "roi_original",
    "dose_gy",
    "volume_cc",
    "volume_pct",
]


# --- perturbed.parquet: one row per image x ROI x perturbation (then the features)
# the features table's identifiers of an image's ROI, by name (not by position in features.ID_COLUMNS)
PERTURBED_IDS = ["patient_id", "study_uid", "series_uid", "modality", "image_units", "roi", "roi_original", "roi_label"]


PERTURBED_COLUMNS = PERTURBED_IDS + [
    "kind",  # original, perturbation or negative_control
    "perturbation",  # its name: original, rotation+5deg, volume-10%, shuffled_roi, ...
    "parameters",  # JSON: what was asked
    "mask_voxels",
    "volume_change_asked",
    "volume_change",
    "noise_sd",
    "status",
    "reason",
    "seconds",
]


# --- the IBSI conformance table (radflow ibsi, CONFORMANCE.md)
CONFORMANCE_COLUMNS = [
    "dataset",
    "mode",
    "ibsi_feature",
    "pyradiomics_feature",
    "reference",
    "tolerance",
    "value",
    "within_tolerance",
    "note",
]


# --- paper/reporting_checklist.tsv
CHECKLIST_COLUMNS = ["standard", "item", "section", "topic", "modality", "status", "value", "source"]


# --- paper/features.tsv: one row per feature column
FEATURE_DICTIONARY_COLUMNS = [
    "column",
    "kind",
    "modality",
    "image_units",
    "image_type",
    "feature_class",
    "feature",
    "ibsi_name",
    "ibsi_code",
    "ibsi_aggregation",
    "ibsi_aggregation_code",
    "unit",
    "ucum",
    "settings",
    "note",
    "meaning",
]


# --- provenance/manifest.tsv: every output with its hash
MANIFEST_COLUMNS = ["path", "kind", "bytes", "sha256"]


# --- download/images.tsv: one row per series asked for
DOWNLOAD_COLUMNS = [
    "source",
    "collection",
    "patient_id",
    "study_uid",
    "series_uid",
    "modality",
    "outcome",
    "files",
    "bytes",
    "checksums",
    "attempts",
    "seconds",
    "path",
    "reason",
]
