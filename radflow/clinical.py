"""Clinical outcomes from GDC portal clinical.tsv files: one row per patient.

Both column namings of the GDC portal are read: the older flat names (case_submitter_id, vital_status,
days_to_death, days_to_last_follow_up, ...) and the newer dotted names (cases.submitter_id,
demographic.vital_status, diagnoses.days_to_last_follow_up, ...). A case has several rows (diagnoses x
treatments); `'--` marks a missing value and days may be written as decimals.

Rules for one patient's rows, in this order:
- a death wins: if any row says Dead, os_event = 1 and os_days = days_to_death (the largest given);
- otherwise os_event = 0 and os_days = the longest days_to_last_follow_up;
- a negative or missing time is never used as a time: os_days stays empty and the problem is recorded.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

MISSING = {"", "'--", "--", "NA", "N/A", "NaN", "nan", "None", "not reported", "Not Reported", "unknown",
           "Unknown", "[Not Available]", "[Not Applicable]", "[Unknown]", "[Not Evaluated]", "[Discrepancy]"}
# standard field -> candidate columns, after the dotted prefix is dropped
FIELDS = {
    "patient_id": ["case_submitter_id", "submitter_id"],
    "vital_status": ["vital_status"],
    "days_to_death": ["days_to_death"],
    "days_to_last_follow_up": ["days_to_last_follow_up"],
    "age_years": ["age_at_index"],
    "age_days": ["age_at_diagnosis"],
    "sex": ["gender", "sex_at_birth"],
    "stage_pathologic": ["ajcc_pathologic_stage", "tumor_stage"],
    "stage_clinical": ["ajcc_clinical_stage"],
}
CLINICAL_COLUMNS = ["patient_id", "os_days", "os_event", "age", "sex", "stage", "source"]
BARCODE = re.compile(r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})", re.IGNORECASE)


class ClinicalError(ValueError):
    """A clinical file cannot be read."""


def normalise_barcode(value: str) -> str:
    """The 12-character patient barcode of any TCGA sample/portion/aliquot barcode; other IDs as they are."""
    value = str(value).strip()
    m = BARCODE.match(value)
    return m.group(1).upper() if m else value


def _column(df: pd.DataFrame, field: str) -> str | None:
    by_short: dict[str, str] = {}
    for c in df.columns:
        short = c.split(".", 1)[1] if c.startswith(("cases.", "demographic.", "diagnoses.", "treatments.",
                                                     "project.", "exposures.", "follow_ups.")) else c
        # cases.submitter_id is the patient; demographic./diagnoses./treatments.submitter_id are not
        if short == "submitter_id" and not c.startswith("cases."):
            continue
        by_short.setdefault(short, c)
    for candidate in FIELDS[field]:
        if candidate in by_short:
            return by_short[candidate]
    return None


def read_gdc_clinical(path) -> pd.DataFrame:
    """The rows of a GDC clinical.tsv with standard field names (strings; missing values empty)."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except Exception as err:
        raise ClinicalError(f"{path}: not a readable tab-separated file: {err}") from None
    out = pd.DataFrame(index=raw.index)
    for field in FIELDS:
        col = _column(raw, field)
        out[field] = raw[col].str.strip() if col else ""
    if not _column(raw, "patient_id") or not _column(raw, "vital_status"):
        raise ClinicalError(f"{path}: not a GDC clinical.tsv: needs case_submitter_id (or cases.submitter_id) "
                            "and vital_status (or demographic.vital_status) columns")
    out = out.where(~out.isin(MISSING), "")
    out["patient_id"] = out["patient_id"].map(normalise_barcode)
    out["source"] = path.name
    return out


def _days(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(float)  # "" and text become NaN


def patient_outcomes(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """One row per patient from standard-field rows (see read_gdc_clinical), and the problems found."""
    out, problems = [], []
    for pid, g in rows.groupby("patient_id", sort=True):
        vital = {v.lower() for v in g["vital_status"] if v}
        death = _days(g["days_to_death"])
        follow = _days(g["days_to_last_follow_up"])
        for what, arr in (("days_to_death", death), ("days_to_last_follow_up", follow)):
            if (arr < 0).any():
                problems.append(dict(patient_id=pid, reason=f"negative {what} ({arr[arr < 0].min():g}); not used"))
        death, follow = death[death >= 0], follow[follow >= 0]
        if len({v for v in vital if v in ("alive", "dead")}) > 1:
            problems.append(dict(patient_id=pid, reason="rows disagree on vital status; a death wins"))
        event = 1 if "dead" in vital or len(death) else (0 if "alive" in vital else np.nan)
        if event == 1:
            os_days = float(death.max()) if len(death) else np.nan
            if np.isnan(os_days):
                problems.append(dict(patient_id=pid, reason="dead without days_to_death: no OS time"))
            elif len(follow) and follow.max() > os_days:
                problems.append(dict(patient_id=pid, reason=f"follow-up ({follow.max():g} d) after death "
                                                            f"({os_days:g} d); death time used"))
        elif event == 0:
            os_days = float(follow.max()) if len(follow) else np.nan
            if np.isnan(os_days):
                problems.append(dict(patient_id=pid, reason="alive without days_to_last_follow_up: no OS time"))
        else:
            os_days = np.nan
            problems.append(dict(patient_id=pid, reason="no vital status"))
        ages = _days(g["age_years"])
        age_days = _days(g["age_days"])
        age = float(np.nanmax(ages)) if np.isfinite(ages).any() else (
            float(np.round(np.nanmax(age_days) / 365.25, 1)) if np.isfinite(age_days).any() else np.nan)
        stages = [s for s in list(g["stage_pathologic"]) + list(g["stage_clinical"]) if s]
        sexes = [s.lower() for s in g["sex"] if s]
        out.append(dict(patient_id=pid, os_days=os_days, os_event=event, age=age,
                        sex=sexes[0] if sexes else "", stage=stages[0] if stages else "",
                        source=";".join(sorted(set(g["source"])))))
    df = pd.DataFrame(out, columns=CLINICAL_COLUMNS)
    df["os_event"] = df["os_event"].astype("Int64")
    return df, problems


def clinical_table(paths, out_csv=None, problems_tsv=None) -> pd.DataFrame:
    """Read GDC clinical files and write one row per patient (and the problems found) when paths are given."""
    if not paths:
        raise ClinicalError("no clinical files given")
    rows = pd.concat([read_gdc_clinical(p) for p in paths], ignore_index=True)
    table, problems = patient_outcomes(rows)
    if out_csv:
        Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out_csv, index=False)
    if problems_tsv:
        pd.DataFrame(problems, columns=["patient_id", "reason"]).to_csv(problems_tsv, sep="\t", index=False)
    return table
