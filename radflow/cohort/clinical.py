"""Clinical outcomes from every shape TCGA clinical data comes in: one row per patient.

Readers (auto-detected from the file, or named):
- GDC portal clinical.tsv, older flat names (case_submitter_id, vital_status, days_to_death,
  days_to_last_follow_up …) or newer dotted names (cases.submitter_id, demographic.vital_status,
  diagnoses.days_to_last_follow_up …); several rows per case, `'--` for missing, days as decimals;
- GDC portal follow_up.tsv (follow_ups.days_to_follow_up …), which extends the last follow-up;
- BCR Biotab nationwidechildrens.org_clinical_patient_<type>.txt: three header rows, `[Not Available]` tokens;
- TCGA-CDR (Liu et al. 2018, Table S1 .xlsx, sheet TCGA-CDR): OS, DSS, DFI, PFI with times, `#N/A` cells;
- any other table (CSV, TSV or XLSX: a collection's clinical spreadsheet) with a column mapping (`TableSpec`), e.g.
  NSCLC-Radiomics: PatientID, Survival.time, deadstatus.event; covariates beyond the standard ones are carried as
  extra columns.

Every reader gives rows in one standard shape; the rules that make one row per patient, in this order:
- a death wins: if any row says the patient died (vital status Dead, or OS = 1), os_event = 1 and os_days is the
  death time (the largest given; disagreeing death times are recorded as a problem);
- otherwise os_event = 0 and os_days is the longest follow-up of any row or file;
- a negative time (follow-up before diagnosis, death before diagnosis) is recorded as a problem and never used;
- DSS and PFI come from the sources that have them (TCGA-CDR), with the same rules;
- covariates (age at diagnosis, sex, stage, tumour site, HPV, smoking) take the first non-empty value in the
  order the files are given; the source of each value is recorded.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pandas as pd

from radflow.ids import normalise_barcode
from radflow.tables import CLINICAL_COLUMNS, COVARIATES

MISSING = {
    "",
    "'--",
    "--",
    "NA",
    "N/A",
    "#N/A",
    "NaN",
    "nan",
    "None",
    "not reported",
    "Not Reported",
    "unknown",
    "Unknown",
    "[Not Available]",
    "[Not Applicable]",
    "[Unknown]",
    "[Not Evaluated]",
    "[Discrepancy]",
    "[Completed]",
    "[Not Reported]",
}
STANDARD = [
    "patient_id",
    "project",
    "vital_status",
    "days_to_death",
    "days_to_last_follow_up",
    "os_event_given",
    "os_days_given",
    "dss_event",
    "dss_days",
    "pfi_event",
    "pfi_days",
    *COVARIATES,
    "source",
]
# What each column of the standard shape means, its unit, and which readers can fill it: what a table whose column
# stayed empty says about why (radflow.cohort.model.column_dictionary).
COLUMN_MEANING = {
    "os_days": ("overall survival: days from diagnosis to death, or to the last follow-up if alive", "days"),
    "os_event": ("overall survival event: 1 died, 0 alive at the last follow-up (censored)", "1"),
    "dss_days": ("disease-specific survival time (TCGA-CDR's definition)", "days"),
    "dss_event": ("disease-specific survival event: 1 died of the disease, 0 censored", "1"),
    "pfi_days": ("progression-free interval time (TCGA-CDR's definition)", "days"),
    "pfi_event": (
        "progression-free interval event: 1 progression, recurrence or death of the disease, 0 censored",
        "1",
    ),
    "age": ("age at diagnosis", "years"),
    "sex": ("sex (GDC gender)", ""),
    "stage": ("AJCC stage, pathological where given, else clinical", ""),
    "tumour_site": ("tumour site (tissue or organ of origin)", ""),
    "hpv_status": ("HPV status: positive or negative by p16 or ISH, discordant when they disagree", ""),
    "smoking": ("tobacco smoking history", ""),
}
COLUMN_READERS = {
    "os": "every reader (vital status, days to death, days to last follow-up)",
    "dss": "TCGA-CDR only (DSS, DSS.time; Liu et al. 2018, Table S1), or a table's column mapping",
    "pfi": "TCGA-CDR only (PFI, PFI.time), or a table's column mapping",
    "age": "GDC clinical.tsv (age_at_index, age_at_diagnosis), BCR Biotab and TCGA-CDR "
    "(age_at_initial_pathologic_diagnosis), or a table's column mapping",
    "sex": "GDC clinical.tsv (gender), BCR Biotab, TCGA-CDR, or a table's column mapping",
    "stage": "GDC clinical.tsv (ajcc_pathologic_stage, ajcc_clinical_stage), BCR Biotab, TCGA-CDR, or a table's "
    "column mapping",
    "tumour_site": "GDC clinical.tsv (tissue_or_organ_of_origin), BCR Biotab (anatomic_organ_subdivision), or a "
    "table's column mapping",
    "hpv_status": "BCR Biotab clinical_patient file only (hpv_status_p16, hpv_status_ish), or a table's column mapping",
    "smoking": "BCR Biotab clinical_patient file only (tobacco_smoking_history_indicator), or a table's column mapping",
}


def readers_of(column: str) -> str:
    """Which clinical files can fill a standard column (COLUMN_READERS by the column's outcome or name)."""
    return COLUMN_READERS.get(column.split("_")[0] if column[:4] in ("os_d", "os_e", "dss_", "pfi_") else column, "")


SMOKING = {
    "1": "lifelong non-smoker",
    "2": "current smoker",
    "3": "reformed smoker > 15 years",
    "4": "reformed smoker <= 15 years",
    "5": "reformed smoker, duration not specified",
}


class ClinicalError(ValueError):
    """A clinical file cannot be read."""


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    df = df.astype(str).apply(lambda c: c.str.strip())
    return df.where(~df.isin(MISSING), "")


def _frame(n, **columns) -> pd.DataFrame:
    out = pd.DataFrame({c: [""] * n for c in STANDARD})
    for k, v in columns.items():
        out[k] = v
    return out


# --------------------------------------------------------------------------------------------- readers
def detect_format(path) -> str:
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xls"):
        return "cdr"
    try:
        with open(path, encoding="utf-8", errors="replace") as fp:
            head = [fp.readline() for _ in range(3)]
    except OSError as err:
        raise ClinicalError(f"{path}: cannot be read: {err}") from None
    first = head[0].rstrip("\n").split("\t")
    if "bcr_patient_barcode" in first and head[2].startswith("CDE_ID"):
        return "biotab"
    if any(c.startswith("follow_ups.") for c in first) and "cases.submitter_id" in first:
        return "gdc_follow_up"
    if "case_submitter_id" in first or "cases.submitter_id" in first:
        return "gdc"
    raise ClinicalError(
        f"{path}: unknown clinical file format: expected a GDC clinical.tsv or follow_up.tsv "
        "(case_submitter_id / cases.submitter_id), a BCR Biotab clinical_patient file "
        "(bcr_patient_barcode, then two more header rows) or the TCGA-CDR .xlsx"
    )


def _col(raw: pd.DataFrame, *names) -> pd.Series:
    """The first of names present: flat names match dotted columns by their last part."""
    short = {}
    for c in raw.columns:
        part = c.split(".", 1)[1] if "." in c else c
        if part == "submitter_id" and not c.startswith("cases."):
            continue  # demographic./diagnoses./treatments.submitter_id are not the patient
        short.setdefault(part, c)
        short.setdefault(c, c)
    for n in names:
        if n in short:
            return raw[short[n]]
    return pd.Series([""] * len(raw), index=raw.index)


def read_gdc(path) -> pd.DataFrame:
    raw = _clean(pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False))
    ages_years = pd.to_numeric(_col(raw, "age_at_index"), errors="coerce")
    ages_days = pd.to_numeric(_col(raw, "age_at_diagnosis"), errors="coerce")
    age = ages_years.where(ages_years.notna(), (ages_days / 365.25).round(1))
    stage = _col(raw, "ajcc_pathologic_stage", "tumor_stage")
    stage = stage.where(stage != "", _col(raw, "ajcc_clinical_stage"))
    return _frame(
        len(raw),
        patient_id=_col(raw, "case_submitter_id", "submitter_id").map(normalise_barcode),
        project=_col(raw, "project_id"),
        vital_status=_col(raw, "vital_status"),
        days_to_death=_col(raw, "days_to_death"),
        days_to_last_follow_up=_col(raw, "days_to_last_follow_up"),
        age=age.map(lambda v: "" if pd.isna(v) else f"{v:g}"),
        sex=_col(raw, "gender", "sex_at_birth").str.lower(),
        stage=stage,
        tumour_site=_col(raw, "tissue_or_organ_of_origin", "site_of_resection_or_biopsy"),
        source=Path(path).name,
    )


def read_gdc_follow_up(path) -> pd.DataFrame:
    raw = _clean(pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False))
    return _frame(
        len(raw),
        patient_id=_col(raw, "cases.submitter_id").map(normalise_barcode),
        project=_col(raw, "project_id"),
        days_to_last_follow_up=_col(raw, "follow_ups.days_to_follow_up", "days_to_follow_up"),
        source=Path(path).name,
    )


def read_biotab(path) -> pd.DataFrame:
    raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, header=0, skiprows=[1, 2])
    raw = _clean(raw.loc[:, ~raw.columns.duplicated()])
    project = re.search(r"clinical_patient_([a-z]+)", Path(path).name)
    stage = raw.get("ajcc_pathologic_tumor_stage", pd.Series([""] * len(raw)))
    stage = stage.where(stage != "", raw.get("clinical_stage", ""))
    hpv = [
        _hpv(a, b)
        for a, b in zip(raw.get("hpv_status_p16", [""] * len(raw)), raw.get("hpv_status_ish", [""] * len(raw)))
    ]
    return _frame(
        len(raw),
        patient_id=raw["bcr_patient_barcode"].map(normalise_barcode),
        project=project.group(1).upper() if project else "",
        vital_status=raw.get("vital_status", ""),
        days_to_death=raw.get("death_days_to", ""),
        days_to_last_follow_up=raw.get("last_contact_days_to", ""),
        age=raw.get("age_at_initial_pathologic_diagnosis", ""),
        sex=raw.get("gender", "").str.lower(),
        stage=stage,
        tumour_site=raw.get("anatomic_organ_subdivision", ""),
        hpv_status=hpv,
        smoking=raw.get("tobacco_smoking_history_indicator", pd.Series([""] * len(raw))).map(
            lambda v: SMOKING.get(v, v)
        ),
        source=Path(path).name,
    )


def _hpv(p16: str, ish: str) -> str:
    values = {v.lower() for v in (p16, ish) if v}
    if "positive" in values:
        return "positive" if "negative" not in values else "discordant (p16/ISH)"
    return "negative" if "negative" in values else ""


@functools.lru_cache(maxsize=2)
def _cdr_sheet(path: str, mtime_ns: int) -> pd.DataFrame:
    # reading the 11,160-row workbook takes seconds: once per file version
    try:
        raw = pd.read_excel(path, sheet_name="TCGA-CDR", dtype=str, keep_default_na=False)
    except ValueError as err:
        raise ClinicalError(f"{path}: no sheet 'TCGA-CDR' (is it Table S1 of Liu et al. 2018?): {err}") from None
    return _clean(raw)


def read_cdr(path) -> pd.DataFrame:
    raw = _cdr_sheet(str(path), Path(path).stat().st_mtime_ns).copy()
    stage = raw["ajcc_pathologic_tumor_stage"].where(raw["ajcc_pathologic_tumor_stage"] != "", raw["clinical_stage"])

    def event(c):
        return pd.to_numeric(raw[c], errors="coerce").map(lambda v: "" if pd.isna(v) else str(int(v)))

    return _frame(
        len(raw),
        patient_id=raw["bcr_patient_barcode"].map(normalise_barcode),
        project=raw["type"],
        vital_status=raw["vital_status"],
        days_to_death=raw["death_days_to"],
        days_to_last_follow_up=raw["last_contact_days_to"],
        os_event_given=event("OS"),
        os_days_given=raw["OS.time"],
        dss_event=event("DSS"),
        dss_days=raw["DSS.time"],
        pfi_event=event("PFI"),
        pfi_days=raw["PFI.time"],
        age=raw["age_at_initial_pathologic_diagnosis"],
        sex=raw["gender"].str.lower(),
        stage=stage,
        source=Path(path).name,
    )


# ------------------------------------------------------------------------- any table with a column mapping
MAPPABLE = ["patient_id", "os_days", "os_event", "dss_days", "dss_event", "pfi_days", "pfi_event", "vital_status"]
MAPPABLE += COVARIATES
TIME_UNITS = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
EVENT_WORDS = {
    **dict.fromkeys(["1", "dead", "deceased", "died", "true", "yes", "event"], 1),
    **dict.fromkeys(["0", "alive", "living", "false", "no", "censored"], 0),
}


def table_spec(entry) -> dict | None:
    """The mapping of a `clinical:` entry given as {path, columns, ...}; None for a plain path (auto-detected)."""
    if not isinstance(entry, dict):
        return None
    columns = dict(entry.get("columns") or {})
    if "patient_id" not in columns:
        raise ClinicalError(f"{entry.get('path')}: the column mapping names no patient_id column")
    return dict(
        path=str(entry["path"]),
        columns=columns,
        covariates=dict(entry.get("covariates") or {}),
        time_unit=entry.get("time_unit", "days"),
        event_values={str(k).strip().lower(): int(v) for k, v in (entry.get("event_values") or {}).items()},
        sheet=entry.get("sheet"),
    )


def _read_any_table(path, sheet=None) -> pd.DataFrame:
    path = Path(path)
    try:
        if path.suffix.lower() in (".xlsx", ".xls"):
            raw = pd.read_excel(path, sheet_name=sheet or 0, dtype=str, keep_default_na=False)
        else:
            sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else None  # None: sniffed (comma, semicolon)
            raw = pd.read_csv(path, sep=sep, engine="python", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise ClinicalError(f"{path}: cannot be read as a table: {err}") from None
    return _clean(raw)


def _check_mapping(spec: dict, raw: pd.DataFrame) -> None:
    """A column mapping's keys are radflow's, its covariates are not radflow's names, its columns are in the file,
    its time unit is known; ClinicalError naming the file otherwise."""
    path, columns = spec["path"], spec["columns"]
    unknown = sorted(set(columns) - set(MAPPABLE))
    if unknown:
        raise ClinicalError(f"{path}: the column mapping has unknown keys {unknown}; expected some of {MAPPABLE}")
    clash = sorted(n for n in spec.get("covariates", {}) if n in STANDARD or n in CLINICAL_COLUMNS)
    if clash:
        raise ClinicalError(
            f"{path}: covariates {clash} are names of the clinical table itself: map them under columns, "
            "or choose other names"
        )
    wanted = {**columns, **spec.get("covariates", {})}
    missing = sorted(c for c in wanted.values() if c not in raw.columns)
    if missing:
        raise ClinicalError(f"{path}: the column mapping names columns that are not in the file: {missing}")
    unit = spec.get("time_unit", "days")
    if unit not in TIME_UNITS:
        raise ClinicalError(f"{path}: time_unit {unit!r}; expected one of {sorted(TIME_UNITS)}")


def _event(value: str, words: dict, path, column: str) -> str:
    """One cell of an event column as "1", "0" or "" (empty): 1/0, or a word (dead/alive, the file's own)."""
    key = value.strip().lower()
    if key == "":
        return ""
    if key in words:
        return str(words[key])
    number = pd.to_numeric(key, errors="coerce")
    if number in (0, 1):
        return str(int(number))
    raise ClinicalError(
        f"{path}: column {column!r} holds {value!r}, not an event (1/0, dead/alive, ...); "
        "name the file's values under event_values"
    )


def read_table(spec: dict) -> pd.DataFrame:
    """Standard rows from any table through its column mapping (see table_spec): times in time_unit become days,
    events are 1/0 (or words such as dead/alive; event_values adds the file's own), covariates are carried."""
    path, columns = spec["path"], spec["columns"]
    raw = _read_any_table(path, spec.get("sheet"))
    _check_mapping(spec, raw)
    factor = TIME_UNITS[spec.get("time_unit", "days")]
    words = {**EVENT_WORDS, **spec.get("event_values", {})}

    def days(column):
        v = pd.to_numeric(raw[column], errors="coerce") * factor
        return v.map(lambda x: "" if pd.isna(x) else f"{x:.10g}")

    out = {"patient_id": raw[columns["patient_id"]].map(normalise_barcode)}
    for name in ("os", "dss", "pfi"):
        if f"{name}_days" in columns:
            out[f"{name}_days" if name != "os" else "os_days_given"] = days(columns[f"{name}_days"])
        if f"{name}_event" in columns:
            column = columns[f"{name}_event"]
            out[f"{name}_event" if name != "os" else "os_event_given"] = raw[column].map(
                lambda v, column=column: _event(v, words, path, column)
            )
    out.update({c: raw[columns[c]] for c in ["vital_status", *COVARIATES] if c in columns})
    if "sex" in out:
        out["sex"] = out["sex"].str.lower()
    frame = _frame(len(raw), source=Path(path).name, **out)
    for name, column in spec.get("covariates", {}).items():
        frame[name] = raw[column].to_numpy()
    return frame


READERS = {"gdc": read_gdc, "gdc_follow_up": read_gdc_follow_up, "biotab": read_biotab, "cdr": read_cdr}


def read_clinical(path, fmt: str | None = None) -> pd.DataFrame:
    """Standard rows of one clinical file: path, or a `clinical:` entry {path, columns, ...} (read_table)."""
    spec = table_spec(path)
    if spec is not None:
        return read_table(spec)
    fmt = fmt or detect_format(path)
    if fmt not in READERS:
        raise ClinicalError(f"{path}: unknown format {fmt!r}; one of {sorted(READERS)}")
    try:
        return READERS[fmt](path)
    except (KeyError, pd.errors.ParserError) as err:
        raise ClinicalError(f"{path}: not a readable {fmt} file: {err}") from None


# ---------------------------------------------------------------------------------------- one per patient
def _numbers(values) -> np.ndarray:
    return pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(float)


def _endpoint(pid, name, events, times, problems) -> tuple[float, object]:
    """(days, event) of an endpoint from (event, time) pairs: an event wins; else the longest time."""
    pairs = [(e, t) for e, t in zip(events, times) if e in (0, 1)]
    bad = [t for _, t in pairs if not np.isnan(t) and t < 0]
    if bad:
        problems.append(dict(patient_id=pid, reason=f"negative {name} time ({min(bad):g} d); not used"))
    pairs = [(e, np.nan if t < 0 else t) for e, t in pairs]  # the event stands, the impossible time does not
    if not pairs:
        return np.nan, pd.NA
    event_times = [t for e, t in pairs if e == 1 and not np.isnan(t)]
    if any(e == 1 for e, _ in pairs):
        if len(set(event_times)) > 1:
            problems.append(
                dict(
                    patient_id=pid,
                    reason=f"{name} event times disagree ({sorted(set(event_times))}); the largest is used",
                )
            )
        days = max(event_times) if event_times else np.nan
        later = [t for e, t in pairs if e == 0 and not np.isnan(t)]
        if event_times and later and max(later) > days:
            problems.append(
                dict(
                    patient_id=pid,
                    reason=f"{name}: follow-up ({max(later):g} d) after the event ({days:g} d); the event time is used",
                )
            )
        if np.isnan(days):
            problems.append(dict(patient_id=pid, reason=f"{name} event without a time"))
        return days, 1
    times_ = [t for _, t in pairs if not np.isnan(t)]
    return (max(times_) if times_ else np.nan), 0


def _os_pairs(g: pd.DataFrame, vital: list[str]) -> tuple[list, list, list]:
    """OS (event, time, source) from each row: its OS/OS.time when given, a death (vital status or days to death),
    the last follow-up (or an alive vital status without a time)."""
    events, times, sources = [], [], []
    death, follow = _numbers(g["days_to_death"]), _numbers(g["days_to_last_follow_up"])
    given_e, given_t = _numbers(g["os_event_given"]), _numbers(g["os_days_given"])
    for k, (v, src) in enumerate(zip(vital, g["source"])):
        pairs = []
        if not np.isnan(given_e[k]):
            pairs.append((int(given_e[k]), given_t[k]))
        if v == "dead" or not np.isnan(death[k]):
            pairs.append((1, death[k]))
        if not np.isnan(follow[k]):
            pairs.append((0, follow[k]))
        elif v == "alive":
            pairs.append((0, np.nan))
        for e, t in pairs:
            events.append(e), times.append(t), sources.append(src)
    return events, times, sources


def _patient_os(pid, g: pd.DataFrame, problems: list) -> dict:
    """A patient's OS (days, event, the files it comes from) and vital status, with the problems found."""
    vital = [v.lower() for v in g["vital_status"]]
    if {"alive", "dead"} <= set(vital):
        problems.append(dict(patient_id=pid, reason="rows disagree on vital status; a death wins"))
    events, times, sources = _os_pairs(g, vital)
    os_days, os_event = _endpoint(pid, "OS", events, times, problems)
    if pd.isna(os_event):
        problems.append(dict(patient_id=pid, reason="no vital status or follow-up: no OS"))
        return dict(vital_status="", os_days=os_days, os_event=os_event, os_source="")
    if np.isnan(os_days):
        problems.append(dict(patient_id=pid, reason="no usable OS time"))
    used = {s for e, t, s in zip(events, times, sources) if e == os_event and (t == os_days or np.isnan(os_days))}
    vital_status = "dead" if os_event == 1 else "alive"
    return dict(vital_status=vital_status, os_days=os_days, os_event=os_event, os_source=";".join(sorted(used)))


def _patient_endpoint(pid, g: pd.DataFrame, name: str, problems: list) -> dict:
    """A patient's DSS or PFI (days, event, source) from the rows that give one."""
    e, t = _numbers(g[f"{name}_event"]), _numbers(g[f"{name}_days"])
    has = ~np.isnan(e)
    days, event = _endpoint(pid, name.upper(), [int(x) for x in e[has]], list(t[has]), problems)
    return {f"{name}_days": days, f"{name}_event": event, f"{name}_source": ";".join(sorted(set(g["source"][has])))}


def _patient_covariates(g: pd.DataFrame, names: list[str]) -> dict:
    """Each covariate's first value among the patient's rows, and which file gave it."""
    entry, sources = {}, []
    for c in names:
        values = [(v, s) for v, s in zip(g[c], g["source"]) if v]
        entry[c] = values[0][0] if values else ""
        if values:
            sources.append(f"{c}: {values[0][1]}")
    entry["covariates_source"] = "; ".join(sources)
    return entry


def patient_outcomes(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """One row per patient from standard rows (see the readers), and the problems found."""
    out, problems = [], []
    extra = [c for c in rows.columns if c not in STANDARD]  # covariates of a mapped table beyond the standard ones
    rows = rows.fillna("")
    for pid, g in rows.groupby("patient_id", sort=True):
        if not pid:
            continue
        entry = dict(patient_id=pid, project=next((p for p in g["project"] if p), ""))
        entry.update(_patient_os(pid, g, problems))
        for name in ("dss", "pfi"):
            entry.update(_patient_endpoint(pid, g, name, problems))
        entry.update(_patient_covariates(g, COVARIATES + extra))
        out.append(entry)
    df = pd.DataFrame(out, columns=CLINICAL_COLUMNS + extra)
    df["age"] = pd.to_numeric(df["age"], errors="coerce")
    for c in ("os_event", "dss_event", "pfi_event"):
        df[c] = df[c].astype("Int64")
    return df, problems


def clinical_table(
    paths, out_csv=None, problems_tsv=None, project: str | None = None, formats: list[str] | None = None
) -> pd.DataFrame:
    """Read clinical files (any of the shapes above) into one row per patient; project ("HNSC" or "TCGA-HNSC")
    keeps that project's patients only. Writes out_csv and problems_tsv when given."""
    if not paths:
        raise ClinicalError("no clinical files given")
    frames = [read_clinical(p, (formats or [None] * len(paths))[k]) for k, p in enumerate(paths)]
    rows = pd.concat(frames, ignore_index=True)
    if project:
        want = project.upper().removeprefix("TCGA-")
        rows = rows[rows["project"].str.upper().str.removeprefix("TCGA-").isin([want, ""])]
        # rows without a project (follow_up.tsv) stay only for patients the project has
        keep = set(rows.loc[rows["project"] != "", "patient_id"])
        rows = rows[rows["patient_id"].isin(keep)]
    table, problems = patient_outcomes(rows)
    if out_csv:
        Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out_csv, index=False)
    if problems_tsv:
        pd.DataFrame(problems, columns=["patient_id", "reason"]).to_csv(problems_tsv, sep="\t", index=False)
    return table
