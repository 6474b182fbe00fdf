"""Each patient's studies in time, from the index: the day of each study relative to the patient's first study,
what it holds (modalities, converted images, structure sets, dose), in date order.

TCIA shifts all dates of a site by one offset, so days between a patient's studies are true intervals even
though the dates themselves are not. Studies without a StudyDate come last, with no day.
"""

from __future__ import annotations

import pandas as pd

from radflow.tables import TIMELINE_COLUMNS


def write_timeline(series, timeline) -> None:
    """results/timeline.tsv from the index's series table (the timeline rule's call)."""
    patient_timeline(pd.read_parquet(series)).to_csv(timeline, sep="\t", index=False)


def patient_timeline(series: pd.DataFrame) -> pd.DataFrame:
    """One row per patient x study (see the module's docstring), sorted by patient, day, study UID."""
    if series.empty:
        return pd.DataFrame(columns=TIMELINE_COLUMNS)
    s = series.assign(
        _date=pd.to_datetime(series["study_date"].astype(str).str.strip(), format="%Y%m%d", errors="coerce")
    )
    rows = []
    for (pid, study), g in s.groupby(["patient_id", "study_uid"], sort=True):
        images = g[g["role"] == "image"]
        rows.append(
            dict(
                patient_id=pid,
                study_uid=study,
                study_date=str(g["study_date"].iloc[0] or ""),
                _date=g["_date"].min(),
                study_description=str(g["study_description"].iloc[0] or ""),
                modalities=",".join(sorted(set(g["modality"].astype(str)) - {""})),
                image_series=len(images),
                converted_images=int(images["convert"].sum()),
                structure_sets=int(g["role"].isin(["rtstruct", "seg"]).sum()),
                rtdose=int((g["role"] == "rtdose").sum()),
            )
        )
    t = pd.DataFrame(rows)
    first = t.groupby("patient_id")["_date"].transform("min")
    t["day"] = (t["_date"] - first).dt.days.astype("Int64")
    t = t.sort_values(["patient_id", "_date", "study_uid"], na_position="last")
    return t[TIMELINE_COLUMNS].reset_index(drop=True)


def read_timeline(path) -> pd.DataFrame:
    """results/timeline.tsv as patient_timeline wrote it (UIDs and dates as text, day as an integer or empty)."""
    t = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if t.empty:
        return pd.DataFrame(columns=TIMELINE_COLUMNS)
    t["day"] = pd.to_numeric(t["day"].replace("", None)).astype("Int64")
    for c in ("image_series", "converted_images", "structure_sets", "rtdose"):
        t[c] = t[c].astype(int)
    return t[TIMELINE_COLUMNS]
