"""Which image and ROI stand for a patient at a time point: the one set of rules shared by the modelling table
(radflow.cohort.model), the delta table (radflow.cohort.delta) and the QC overlays of the model's ROI (radflow.qc).

1. the study, by the time point rule (config model.time_point):
   - "baseline": the earliest study that has the modality and the ROI (if its ROI or image failed, the patient is
     left out with that reason: no later study stands in for it);
   - "planning": the study with the RT plan (an RTPLAN or RTDOSE series); without one, the earliest study whose
     own structure set holds the ROI;
   - "listed": the study named for the patient in the file model.studies (columns patient_id, study_uid and
     optionally series_uid); patients not in it are left out, with that reason;
2. within the study, the ROI instance by the instance rule (config roi_instances) when one standard ROI was drawn
   more than once (GTV_1 and GTV_2; GTVp on two series):
   - "largest": the instance with the largest mask volume;
   - "union": the union of the instances on one image (label <ROI>_union, written by the masks rule);
   - "suffix": every instance is its own ROI, GTVp, GTVp_2, ...: model.roi names the one to model;
3. ties (the same ROI on several series of the study) by thinner slices, then more slices, then the larger mask,
   then the series UID.

Study days come from the timeline (radflow.cohort.timeline, results/timeline.tsv): day 0 is the patient's first study.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from radflow.cohort.timeline import patient_timeline
from radflow.ids import normalise_barcode

UNION_SUFFIX = "_union"
TIE_BREAKS = "thinner slices, more slices, larger mask, series UID"
INSTANCE_RULES = ("largest", "union", "suffix")


def instance_of(label: str, standard: str, roi: str, instances: str) -> bool:
    """Whether the mask labelled `label` (standard name `standard`, e.g. GTVp_2 of GTVp) can stand for the model's
    `roi` under the instance rule: the label itself under "suffix"; under "largest" and "union" any instance of the
    standard ROI, and its union (GTVp, GTVp_2, GTVp_union). The QC overlays draw these."""
    if instances == "suffix":
        return label == roi
    return standard == roi or bool(re.fullmatch(re.escape(roi) + r"(_[0-9]+|" + UNION_SUFFIX + ")?", label))


def roi_candidates(rows: pd.DataFrame, roi: str | None, instances: str) -> pd.DataFrame:
    """The feature rows that can stand for `roi` (every ROI when None) under the instance rule.
    "suffix": the rows labelled exactly `roi`; "union": per image the union row when there is one, else its single
    instance; "largest": every instance (no union rows)."""
    if instances == "suffix":
        return rows if roi is None else rows[rows["roi_label"] == roi]
    rows = rows if roi is None else rows[rows["roi"] == roi]
    union = rows["roi_label"].astype(str).str.endswith(UNION_SUFFIX)
    if instances == "largest":
        return rows[~union]
    pair = rows["series_uid"].astype(str) + "\x00" + rows["roi"].astype(str)
    return rows[union | ~pair.isin(set(pair[union]))]


def order_within_study(c: pd.DataFrame, instances: str, by=()) -> pd.DataFrame:
    """Candidates best first (within each group of the columns `by`, e.g. the study): "largest" by mask volume
    first, then the tie-breaks; otherwise the tie-breaks (thinner slices, more slices, larger mask, series UID)."""
    c = c.assign(
        _spacing=c["slice_spacing"].fillna(np.inf),
        _slices=-c["n_slices"].fillna(0),
        _volume=-c["mask_volume_mm3"].fillna(0),
    )
    keys = ["_spacing", "_slices", "_volume", "series_uid", "roi_label"]
    if instances == "largest":
        keys = ["_volume"] + [k for k in keys if k != "_volume"]
    return c.sort_values([*by, *keys], kind="stable").drop(columns=["_spacing", "_slices", "_volume"])


DESCRIBED = [
    "study_uid",
    "study_day",
    "series_uid",
    "roi_label",
    "roi_original",
    "slice_spacing",
    "n_slices",
    "mask_volume_mm3",
]


def _describe(r) -> str:
    day = "no date" if pd.isna(r.study_day) else f"day {int(r.study_day)}"
    return (
        f"{day} series {r.series_uid} {r.roi_label} ('{r.roi_original}', {r.slice_spacing:g} mm x "
        f"{int(r.n_slices) if pd.notna(r.n_slices) else '?'} slices, {r.mask_volume_mm3:.0f} mm3)"
    )


def choose_study(c: pd.DataFrame, time_point: str, plan_studies: set, listed: pd.DataFrame | None):
    """(study UID or None, why, why the other studies were passed over) for one patient's candidates."""
    studies = (
        c.groupby("study_uid", sort=False)["study_day"]
        .first()
        .reset_index()
        .assign(_day=lambda s: s["study_day"].astype(float).fillna(np.inf))
        .sort_values(["_day", "study_uid"])
    )
    if time_point == "listed":
        wanted = listed if listed is not None else pd.DataFrame(columns=["study_uid"])
        present = studies[studies["study_uid"].isin(set(wanted["study_uid"]))]
        if wanted.empty:
            return None, "not listed in model.studies", "not listed"
        if present.empty:
            return (
                None,
                f"listed study {', '.join(sorted(wanted['study_uid']))} has no feature row of the ROI on this modality",
                "not listed",
            )
        return present["study_uid"].iloc[0], "listed in model.studies", "not listed"
    if time_point == "planning":
        planned = studies[studies["study_uid"].isin(plan_studies)]
        if len(planned):
            return planned["study_uid"].iloc[0], "planning: the study with the RT plan", "not the planning study"
        own = c[c["rtstruct_study_uid"] == c["study_uid"]]
        owned = studies[studies["study_uid"].isin(set(own["study_uid"]))]
        if len(owned):
            return (
                owned["study_uid"].iloc[0],
                "planning: no RT plan; the earliest study with its own structure set",
                "not the planning study",
            )
        return (
            studies["study_uid"].iloc[0],
            "planning: no RT plan and no study with its own structure set; the earliest study",
            "later study",
        )
    return studies["study_uid"].iloc[0], "baseline: the earliest study with the modality and ROI", "later study"


def select(
    c: pd.DataFrame,
    time_point: str,
    instances: str,
    plan_studies: set = frozenset(),
    listed: pd.DataFrame | None = None,
) -> tuple[pd.Series | None, str, str]:
    """(chosen row or None, selection reason, passed-over alternatives) among one patient's candidates: feature rows
    of the ROI of any status. The study is chosen among all of them, so that a study whose ROI failed is not
    silently replaced by another time point (a follow-up standing in for a failed baseline): the patient is left
    out with the failure instead."""
    study, why, other_study = choose_study(c, time_point, plan_studies, listed)
    if study is None:
        return None, why, "; ".join(f"{_describe(r)}: {other_study}" for r in c[DESCRIBED].itertuples())
    inside = c[(c["study_uid"] == study) & (c["status"] == "ok")]
    if inside.empty:
        failed = c[c["study_uid"] == study]
        day = "no date" if pd.isna(failed["study_day"].iloc[0]) else f"day {int(failed['study_day'].iloc[0])}"
        others = c[c["study_uid"] != study]
        return (
            None,
            (f"{why} ({day}): its ROI failed ({failed['reason'].iloc[0]}); no other time point is used in its place"),
            "; ".join(f"{_describe(r)}: {other_study}" for r in others[DESCRIBED].itertuples()),
        )
    named = set(listed["series_uid"]) - {""} if time_point == "listed" and "series_uid" in listed else set()
    if inside["series_uid"].isin(named).any():  # a listed series, when the file names one
        inside = inside[inside["series_uid"].isin(named)]
    ordered = order_within_study(inside, instances)
    chosen = ordered.iloc[0]
    rule = "largest mask volume, then " + TIE_BREAKS if instances == "largest" else TIE_BREAKS
    day = "no date" if pd.isna(chosen["study_day"]) else f"day {int(chosen['study_day'])}"
    reason = f"{why} ({day}); instances: {instances}"
    if len(ordered) > 1:
        reason += f"; within the study by {rule}"
    passed = [
        f"{_describe(r)}: {'not chosen within the study' if r.study_uid == study else other_study}"
        for r in c[DESCRIBED].itertuples()
        if not (r.series_uid == chosen["series_uid"] and r.roi_label == chosen["roi_label"])
    ]
    return chosen, reason, "; ".join(passed)


def drawn_rows(features: pd.DataFrame, roi: str | None, instances: str) -> pd.DataFrame:
    """Every row that says a time point has the ROI, whatever its status: the ROI's candidates (ok or failed), and
    the rows of images that failed as a whole (roi "", every ROI of its structure sets lost with it)."""
    named = roi_candidates(features[features["roi"].astype(str) != ""], roi, instances)
    lost = features[(features["roi"].astype(str) == "") & (features["status"] != "ok")]
    return pd.concat([named, lost]) if len(lost) else named


def with_context(features: pd.DataFrame, series: pd.DataFrame, timeline: pd.DataFrame | None = None) -> pd.DataFrame:
    """Feature rows with what selection needs: the study's day (from the timeline: days since the patient's first
    study; computed from series when not given), the image's slice spacing and count, and the study of the
    structure set the ROI came from."""
    if timeline is None:
        timeline = patient_timeline(series)
    days = timeline[["patient_id", "study_uid", "day"]].rename(columns={"day": "study_day"})
    geometry = series[["series_uid", "study_date", "slice_spacing", "n_slices"]].drop_duplicates("series_uid")
    rs_study = (
        series[["series_uid", "study_uid"]]
        .drop_duplicates("series_uid")
        .rename(columns={"series_uid": "rtstruct_series_uid", "study_uid": "rtstruct_study_uid"})
    )
    return (
        features.merge(geometry, on="series_uid", how="left")
        .merge(days, on=["patient_id", "study_uid"], how="left")
        .merge(rs_study, on="rtstruct_series_uid", how="left")
    )


def plan_studies(series: pd.DataFrame) -> set:
    """Studies that hold an RT plan or dose."""
    return set(series.loc[series["role"].isin(["rtplan", "rtdose"]), "study_uid"])


def read_listed(path) -> pd.DataFrame:
    """model.studies: a CSV or TSV with patient_id and study_uid (series_uid optional)."""
    sep = "\t" if str(path).endswith((".tsv", ".txt")) else ","
    listed = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    missing = {"patient_id", "study_uid"} - set(listed.columns)
    if missing:
        raise ValueError(
            f"{path}: model.studies needs the columns patient_id and study_uid; missing {', '.join(sorted(missing))}"
        )
    listed["patient_id"] = listed["patient_id"].map(normalise_barcode)
    return listed
