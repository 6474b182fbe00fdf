"""Delta-radiomics: the change of each feature of one ROI between a patient's first study (time point 0) and each
later study (time point 1), for every standard ROI drawn at two or more time points on the same modality.

Each time point stands for one study; within it the image and ROI instance are chosen as for the modelling table
(radflow.cohort.selection: the instance rule, then thinner slices, more slices, larger mask, series UID). Days count
from the patient's first study (TCIA shifts the dates of a patient together, so intervals are true). Studies without a
StudyDate cannot be placed in time and are left out, and the log says so. When the first study's ROI (or its
image) failed, that ROI has no time point 0 and no rows: a later study never stands in for the first.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from radflow.cohort.selection import drawn_rows, order_within_study, with_context
from radflow.cohort.timeline import read_timeline
from radflow.roi_names import UNMAPPED
from radflow.tables import DELTA_KEY_COLUMNS, DELTA_SUFFIXES, feature_columns

log = logging.getLogger(__name__)


def delta_table(
    features: pd.DataFrame, series: pd.DataFrame, instances: str = "largest", timeline: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per patient x modality x standard ROI x later study: for the mask volume (mask_volume_mm3) and every
    numeric feature f, f_0 (first study), f_1 (the later study), f_delta = f_1 - f_0 and f_relative =
    f_delta / |f_0| (empty when f_0 is 0). timeline: results/timeline.tsv (computed from series when not given)."""
    rows = features[~features["roi"].astype(str).str.startswith(UNMAPPED)]
    rows = with_context(drawn_rows(rows, None, instances), series, timeline)
    # radflow's mask volume on the image's own grid first (the GTV volume), then every numeric pyradiomics feature
    names = ["mask_volume_mm3"] + [c for c in feature_columns(features) if pd.api.types.is_numeric_dtype(features[c])]
    key = "roi_label" if instances == "suffix" else "roi"
    group = ["patient_id", "modality", "_key"]
    named = rows[rows["roi"].astype(str) != ""].assign(_key=lambda d: d[key])
    # an image that failed as a whole (roi "") stands for every ROI of its patient and modality
    lost = rows[rows["roi"].astype(str) == ""].merge(named[group].drop_duplicates(), on=["patient_id", "modality"])
    drawn = pd.concat([named, lost], ignore_index=True)
    undated = drawn[drawn["study_day"].isna()]
    for (pid, modality, roi), g in undated.groupby(group):
        log.warning(
            "%s %s %s: studies without a date left out of the delta table: %s",
            pid,
            modality,
            roi,
            ", ".join(sorted(set(g["study_uid"]))),
        )
    drawn = drawn[drawn["study_day"].notna()]
    # the first study of each patient x modality x ROI, whatever its status: when it failed, there is no time point 0
    first_study = (
        drawn.sort_values([*group, "study_day", "study_uid"]).drop_duplicates(group).set_index(group)["study_uid"]
    )
    cands = drawn[drawn["status"] == "ok"]
    # one row per patient x modality x ROI x study (the best by the instance rule and tie-breaks), in time order
    points = order_within_study(cands, instances, by=[*group, "study_day", "study_uid"])
    points = points.drop_duplicates([*group, "study_uid"]).reset_index(drop=True)
    first = points.groupby(group, sort=False).cumcount() == 0
    baseline = points[first].set_index(group)
    failed_first = baseline.index[baseline["study_uid"] != first_study.loc[baseline.index]]
    for pid, modality, roi in failed_first:
        bad = drawn[
            (drawn["patient_id"] == pid)
            & (drawn["modality"] == modality)
            & (drawn["_key"] == roi)
            & (drawn["study_uid"] == first_study.loc[(pid, modality, roi)])
        ]
        log.warning(
            "%s %s %s: the first study %s failed (%s): no delta rows",
            pid,
            modality,
            roi,
            first_study.loc[(pid, modality, roi)],
            bad["reason"].iloc[0],
        )
    baseline = baseline.drop(index=failed_first)
    later = points[~first]
    later = later[pd.MultiIndex.from_frame(later[group]).isin(baseline.index)]
    base = baseline.loc[pd.MultiIndex.from_frame(later[group])].reset_index(drop=True)
    later = later.reset_index(drop=True)
    table = pd.DataFrame(dict(patient_id=later["patient_id"], modality=later["modality"], roi=later["_key"]))
    for suffix, p in (("_0", base), ("_1", later)):
        for c in ("study_uid", "series_uid", "roi_label", "roi_original"):
            table[c + suffix] = p[c].to_numpy()
        table["day" + suffix] = p["study_day"].astype(int).to_numpy()
    table["interval_days"] = table["day_1"] - table["day_0"]
    v0 = base[names].to_numpy(float)
    v1 = later[names].to_numpy(float)
    delta = v1 - v0
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where((v0 != 0) & np.isfinite(v0), delta / np.abs(v0), np.nan)
    values = np.stack([v0, v1, delta, relative], axis=2).reshape(len(later), 4 * len(names))
    columns = [f"{f}{s}" for f in names for s in DELTA_SUFFIXES]
    table = pd.concat([table, pd.DataFrame(values, columns=columns)], axis=1)
    return table[DELTA_KEY_COLUMNS + columns].sort_values(["patient_id", "modality", "roi", "day_1"], ignore_index=True)


def write_delta_table(features_path, series_path, out_csv, instances="largest", timeline_path=None) -> pd.DataFrame:
    timeline = read_timeline(timeline_path) if timeline_path else None
    table = delta_table(pd.read_parquet(features_path), pd.read_parquet(series_path), instances, timeline)
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    log.info(
        "delta table: %d rows (patient x modality x ROI x later study), %d patients",
        len(table),
        table["patient_id"].nunique(),
    )
    return table
