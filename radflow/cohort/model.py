"""The modelling table (features of one modality and ROI joined with outcomes, one row per patient) and the
cohort accounting (every patient, and why they are or are not in the modelling table).

Which image and ROI stand for a patient is decided by radflow.cohort.selection (the time point, the instance rule, the
tie-breaks), and each choice is stated in cohort.tsv.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from radflow.cohort.selection import drawn_rows, plan_studies, read_listed, select, with_context
from radflow.cohort.timeline import read_timeline
from radflow.modalities import DOSE_MODALITY
from radflow.settings import ModelSettings
from radflow.tables import CLINICAL_COLUMNS, CLINICAL_KEEP, COHORT_COLUMNS, DICTIONARY_COLUMNS, feature_columns


def modelling_table(
    features: pd.DataFrame,
    clinical: pd.DataFrame | None,
    series: pd.DataFrame,
    settings: ModelSettings,
    listed: pd.DataFrame | None = None,
    timeline: pd.DataFrame | None = None,
    dvh: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per patient (chosen by radflow.cohort.selection with the model settings: modality, ROI, time point,
    ROI instances), and the cohort accounting. timeline: the patients' studies in time (results/timeline.tsv;
    computed from series when not given). clinical None: a run without clinical data (the cohort accounting only;
    every patient's reason says so). Covariates of a mapped clinical table beyond the standard ones (columns after
    CLINICAL_COLUMNS) are carried into the table. settings.dose ({ROI: [metric, ...]}, config model.dose) with dvh
    (results/dose/dvh.parquet): the DVH metrics of the chosen study's dose grid as columns (dose_columns)."""
    without_clinical = clinical is None
    if without_clinical:
        clinical = pd.DataFrame(columns=CLINICAL_COLUMNS)
    extra = [c for c in clinical.columns if c not in CLINICAL_COLUMNS]
    # (patient IDs: the index's, normalised once there by radflow.ids; the clinical table's, by its reader)
    modality = settings.modality
    drawn = with_context(
        drawn_rows(features[features["modality"] == modality], settings.roi, settings.roi_instances), series, timeline
    )
    found = _Found(series, drawn, clinical.set_index("patient_id"), modality)
    plans = plan_studies(series)
    feature_cols = feature_columns(features)
    rows, cohort = [], []
    for pid in sorted(set(series["patient_id"]) | set(clinical["patient_id"])):
        entry = found.entry(pid)
        chosen, selection, passed = None, "", ""
        if entry["has_roi"]:
            mine = None if listed is None else listed[listed["patient_id"] == pid]
            chosen, selection, passed = select(
                drawn[drawn["patient_id"] == pid], settings.time_point, settings.roi_instances, plans, mine
            )
        reason = _left_out_because(entry, features, settings, chosen, selection, without_clinical)
        entry.update(in_modelling_table=not reason, reason=reason, **_choice(chosen, entry, settings.time_point))
        entry.update(selection=selection, passed_over=passed)
        cohort.append(entry)
        if not reason:
            row = dict(patient_id=pid, modality=modality, roi=settings.roi)
            row.update({c: chosen[c] for c in ("study_uid", "series_uid", "roi_original")})
            row.update({c: found.clinical.loc[pid, c] for c in CLINICAL_KEEP + extra})
            if settings.dose:
                rtstruct = chosen.get("rtstruct_series_uid", "")
                row.update(dose_values(dvh, pid, chosen["study_uid"], rtstruct, settings.dose))
            row.update({c: chosen[c] for c in feature_cols})
            rows.append(row)
    ids = ["patient_id", "study_uid", "series_uid", "modality", "roi", "roi_original"]
    dose = dose_columns(settings.dose) if settings.dose else []
    table = pd.DataFrame(rows, columns=[*ids, *CLINICAL_KEEP, *extra, *dose, *feature_cols])
    for c in ("os_event", "dss_event", "pfi_event"):
        table[c] = table[c].astype("Int64")
    cohort = pd.DataFrame(cohort, columns=COHORT_COLUMNS)
    cohort["study_day"] = cohort["study_day"].astype("Int64")
    return table, cohort


class _Found:
    """What the run has of each patient: images, the model's modality, its ROI with features, a clinical record."""

    def __init__(self, series: pd.DataFrame, drawn: pd.DataFrame, clinical: pd.DataFrame, modality: str):
        images = series[series["convert"]]
        # the series that carry the modality's features: converted images, or the dose grids (role rtdose)
        carriers = series[series["role"] == "rtdose"] if modality == DOSE_MODALITY else images
        self.images = set(images["patient_id"])
        self.carriers = set(carriers.loc[carriers["modality"] == modality, "patient_id"])
        self.with_roi = set(drawn.loc[drawn["status"] == "ok", "patient_id"])
        self.clinical = clinical

    def entry(self, pid: str) -> dict:
        entry = dict(
            patient_id=pid,
            has_images=pid in self.images,
            has_modality=pid in self.carriers,
            has_roi=pid in self.with_roi,
            has_clinical=pid in self.clinical.index,
        )
        entry["has_outcome"] = bool(
            entry["has_clinical"]
            and pd.notna(self.clinical.loc[pid, "os_days"])
            and pd.notna(self.clinical.loc[pid, "os_event"])
        )
        return entry


def _left_out_because(entry: dict, features, settings: ModelSettings, chosen, selection: str, no_clinical) -> str:
    """Why a patient is not in the modelling table ("" when it is): the first thing missing."""
    modality, roi, time_point = settings.modality, settings.roi, settings.time_point
    if not entry["has_images"]:
        return "no converted image series"
    if not entry["has_modality"]:
        return "no RTDOSE dose grid" if modality == DOSE_MODALITY else f"no {modality} image series"
    if not entry["has_roi"]:  # (a failed image conversion counts as no usable ROI, with its reason)
        # the ROI's own failure, or its image's (a failed conversion fails every ROI: roi "")
        failed = features[
            (features["patient_id"] == entry["patient_id"])
            & (features["modality"] == modality)
            & features["roi"].isin([roi, ""])
            & (features["status"] != "ok")
        ]
        if len(failed):
            return f"{roi} on {modality} failed: {failed['reason'].iloc[0]}"
        return f"no ROI mapped to {roi} on a {modality} series"
    if chosen is None:
        return selection if selection.startswith(time_point) else f"time point {time_point}: {selection}"
    if no_clinical:
        return "no clinical data in this run (clinical: [] and no source.clinical)"
    if not entry["has_clinical"]:
        return "no clinical record"
    if not entry["has_outcome"]:
        return "clinical record without an OS time and event"
    return ""


def _choice(chosen, entry: dict, time_point: str) -> dict:
    """cohort.tsv's columns of the chosen image and ROI (empty when none was chosen)."""
    keys = ("study_uid", "series_uid", "roi_label", "roi_original")
    out = {k: chosen[k] if chosen is not None else "" for k in keys}
    out["study_day"] = chosen["study_day"] if chosen is not None else pd.NA
    out["time_point"] = time_point if entry["has_roi"] else ""
    return out


def dose_columns(dose: dict) -> list[str]:
    """The modelling table's dose columns for config model.dose: which dose grid, then dose_<ROI>_<metric>."""
    return ["dose_series_uid"] + [f"dose_{roi}_{metric}" for roi, metrics in dose.items() for metric in metrics]


def dose_values(dvh: pd.DataFrame | None, patient: str, study_uid: str, rtstruct_uid: str, dose: dict) -> dict:
    """The DVH metrics of one patient's chosen study (dvh's patient IDs normalised, as modelling_table does): its
    dose grid by DoseSummationType (the plan's sum first, radflow.features.dvh.SUMMATION_ORDER; ties by series UID),
    each ROI's row from the structure set the chosen image's ROI came from where it has one, else its largest; NaN where
    the study has no dose grid or the grid no such ROI."""
    from radflow.features.dvh import METRIC_COLUMNS, SUMMATION_ORDER

    out = {c: np.nan for c in dose_columns(dose)}
    out["dose_series_uid"] = ""
    if dvh is None or not len(dvh):
        return out
    mine = dvh[(dvh["patient_id"] == patient) & (dvh["study_uid"] == study_uid)]
    mine = mine[mine["status"] == "ok"]
    if not len(mine):
        return out
    rank = {kind: n for n, kind in enumerate(SUMMATION_ORDER)}
    grids = mine.drop_duplicates("dose_series_uid")
    grids = grids.assign(_rank=grids["dose_summation_type"].map(rank).fillna(len(rank)))
    grid = grids.sort_values(["_rank", "dose_series_uid"])["dose_series_uid"].iloc[0]
    out["dose_series_uid"] = grid
    for roi, metrics in dose.items():
        rows = mine[(mine["dose_series_uid"] == grid) & (mine["roi"] == roi)]
        if not len(rows):
            continue
        same = rows[rows["rtstruct_series_uid"] == rtstruct_uid]
        row = (same if len(same) else rows).sort_values("volume_cc", ascending=False).iloc[0]
        for metric in metrics:
            out[f"dose_{roi}_{metric}"] = float(row[METRIC_COLUMNS[metric]])
    return out


IDENTIFIERS = {
    "patient_id": "the patient (TCGA barcode)",
    "study_uid": "StudyInstanceUID of the image's study",
    "series_uid": "the image series (its SeriesInstanceUID, or <UID>_<n> for a sub-series)",
    "modality": "the image's DICOM modality",
    "roi": "the ROI's standard name (roi_names.yaml)",
    "roi_original": "the ROI's name in the structure set",
    "dose_series_uid": "the RTDOSE whose DVHs give the dose columns (model.dose): the chosen study's plan sum",
}


def column_dictionary(
    table: pd.DataFrame, clinical: pd.DataFrame | None, image_units: str, normalized: bool = False, dose=None
) -> pd.DataFrame:
    """One row per column of the modelling table: its kind (identifier, outcome, covariate, feature), unit, how many
    rows have a value, what it means, and, for a column no row has, why: which clinical files this run read and
    which ones give that column (radflow.cohort.clinical.COLUMN_READERS)."""
    from radflow.cohort.clinical import readers_of
    from radflow.tables import pyradiomics_columns

    doses = {f"dose_{roi}_{m}": (roi, m) for roi, metrics in (dose or {}).items() for m in metrics}
    files = set()
    if clinical is not None:
        for c in ("os_source", "covariates_source"):
            for text in clinical.get(c, pd.Series(dtype=str)).dropna().astype(str):
                files.update(part.split(": ")[-1].strip() for part in text.split(";") if part.strip())
    read = ", ".join(sorted(files)) or "none"
    features = set(pyradiomics_columns(table))
    rows = []
    for c in table.columns:
        n = int(table[c].notna().sum() - (table[c].astype(str) == "").sum()) if len(table) else 0
        kind, unit, meaning = _column_meaning(c, features, doses, image_units, normalized)
        why = ""
        if n == 0 and len(table):
            readers = readers_of(c)
            why = f"no clinical file of this run ({read}) gives it" + (f"; it comes from {readers}" if readers else "")
            if kind == "dose":
                why = "no dose grid of the patients' chosen studies holds this ROI (results/dose/dvh.parquet)"
        rows.append(dict(column=c, kind=kind, unit=unit, values=n, rows=len(table), meaning=meaning, why_empty=why))
    return pd.DataFrame(rows, columns=DICTIONARY_COLUMNS)


def _column_meaning(c: str, features: set, doses: dict, image_units: str, normalized: bool) -> tuple[str, str, str]:
    """(kind, unit, meaning) of a modelling-table column: feature, identifier, dose, outcome or covariate."""
    from radflow.cohort.clinical import COLUMN_MEANING
    from radflow.features import feature_unit
    from radflow.features.dvh import metric_unit
    from radflow.tables import feature_class

    if c in features:
        return "feature", feature_unit(c, image_units, normalized), f"pyradiomics {feature_class(c)} feature of the ROI"
    if c in IDENTIFIERS:
        return "identifier", "", IDENTIFIERS[c]
    if c in doses:
        roi, metric = doses[c]
        meaning = f"{metric} of {roi}, DVH from its contours in the chosen study's dose grid (dose_series_uid)"
        return "dose", metric_unit(metric), meaning
    if c in COLUMN_MEANING:
        meaning, unit = COLUMN_MEANING[c]
        return ("outcome" if c.endswith(("_days", "_event")) else "covariate"), unit, meaning
    return "covariate", "", "a covariate of the clinical table's column mapping"


def write_modelling_table(
    features_path,
    clinical_path,
    series_path,
    settings: ModelSettings,
    out_csv,
    cohort_tsv,
    timeline_path=None,
    dictionary_tsv=None,
    settings_path=None,
    dvh_path=None,
):
    """Writes the cohort accounting, and the modelling table when there is a clinical table (clinical_path and
    out_csv None: a run without clinical data), with its column dictionary (dictionary_tsv; the units of the
    features follow the modality's units and the settings' `normalize`)."""
    features = pd.read_parquet(features_path)
    clinical = None
    if clinical_path is not None:
        clinical = pd.read_csv(
            clinical_path,
            dtype={c: str for c in ("patient_id", "sex", "stage", "tumour_site", "hpv_status", "smoking", "project")},
            keep_default_na=False,
            na_values=[""],
        )
    series = pd.read_parquet(series_path)
    listed = read_listed(settings.studies) if settings.time_point == "listed" else None
    timeline = read_timeline(timeline_path) if timeline_path else None
    dvh = pd.read_parquet(dvh_path) if dvh_path and settings.dose else None
    table, cohort = modelling_table(features, clinical, series, settings, listed, timeline, dvh)
    Path(cohort_tsv).parent.mkdir(parents=True, exist_ok=True)
    if out_csv is not None:
        table.to_csv(out_csv, index=False)
    if dictionary_tsv is not None:
        import yaml

        from radflow.modalities import units

        pyradiomics = yaml.safe_load(Path(settings_path).read_text()) if settings_path else {}
        normalized = bool(((pyradiomics or {}).get("setting") or {}).get("normalize"))
        # the units of the images the table's rows come from (PET kept in Bq/ml by pet_fallback differs from SUV):
        # one unit, or none stated for the features when they are mixed
        used = features.loc[features["series_uid"].isin(set(table["series_uid"])), "image_units"].dropna().unique()
        image_units = used[0] if len(used) == 1 else units(settings.modality) if len(used) == 0 else ""
        column_dictionary(table, clinical, image_units, normalized, settings.dose).to_csv(
            dictionary_tsv, sep="\t", index=False
        )
    cohort.to_csv(cohort_tsv, sep="\t", index=False)
    return table, cohort
