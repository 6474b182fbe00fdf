"""Clinical outcomes from real GDC portal files in both column namings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REFERENCE

from radflow.cohort.clinical import ClinicalError, clinical_table, normalise_barcode

TCGA = REFERENCE / "tcga-clinical"
DOTTED = TCGA / "new_format_ArjunCodess_TCGA-THCA" / "clinical.tsv"
FLAT = TCGA / "old_format_jrbobes_TCGA-PAAD" / "clinical.tsv"


def _raw(path, patient_col):
    raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return raw.replace("'--", "")


@pytest.mark.parametrize(
    "path,pid,vital,death,follow",
    [
        (
            DOTTED,
            "cases.submitter_id",
            "demographic.vital_status",
            "demographic.days_to_death",
            "diagnoses.days_to_last_follow_up",
        ),
        (FLAT, "case_submitter_id", "vital_status", "days_to_death", "days_to_last_follow_up"),
    ],
)
def test_os_from_real_gdc_files(path, pid, vital, death, follow):
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    table = clinical_table([path]).set_index("patient_id")
    raw = _raw(path, pid)
    assert set(table.index) == set(raw[pid])
    assert raw.groupby(pid).size().max() > 1  # several rows per case: the point of the rules
    for case, rows in raw.groupby(pid):
        deaths = pd.to_numeric(rows[death], errors="coerce").dropna()
        follows = pd.to_numeric(rows[follow], errors="coerce").dropna()
        got = table.loc[case]
        if (rows[vital] == "Dead").any():
            assert got["os_event"] == 1
            assert got["os_days"] == deaths.max() if len(deaths) else np.isnan(got["os_days"])
        elif (rows[vital] == "Alive").any():
            assert got["os_event"] == 0
            assert got["os_days"] == follows.max() if len(follows) else np.isnan(got["os_days"])


def test_known_patients():
    if not FLAT.exists():
        pytest.skip(f"{FLAT} is not on this machine")
    table = clinical_table([FLAT]).set_index("patient_id")
    # read off the file by eye: TCGA-2J-AAB1 died at day 66, TCGA-2J-AAB4 alive at 729
    assert (table.loc["TCGA-2J-AAB1", "os_days"], table.loc["TCGA-2J-AAB1", "os_event"]) == (66.0, 1)
    assert (table.loc["TCGA-2J-AAB4", "os_days"], table.loc["TCGA-2J-AAB4", "os_event"]) == (729.0, 0)


def test_death_wins_and_negative_times_are_problems(tmp_path):
    f = tmp_path / "clinical.tsv"
    f.write_text(
        "case_submitter_id\tvital_status\tdays_to_death\tdays_to_last_follow_up\n"
        "TCGA-AA-0001\tAlive\t'--\t300.0\n"
        "TCGA-AA-0001\tDead\t250.5\t'--\n"
        "TCGA-AA-0002\tAlive\t'--\t-12\n"
    )
    problems = tmp_path / "problems.tsv"
    table = clinical_table([f], problems_tsv=problems).set_index("patient_id")
    assert table.loc["TCGA-AA-0001", "os_event"] == 1 and table.loc["TCGA-AA-0001", "os_days"] == 250.5
    assert np.isnan(table.loc["TCGA-AA-0002", "os_days"])
    text = problems.read_text()
    assert "negative OS time (-12 d)" in text and "disagree" in text and "no usable OS time" in text


def test_not_a_clinical_file(tmp_path):
    f = tmp_path / "clinical.tsv"
    f.write_text("a\tb\n1\t2\n")
    with pytest.raises(ClinicalError, match="clinical.tsv"):
        clinical_table([f])


def test_barcodes():
    assert normalise_barcode("tcga-cv-7100-01a-11r-2016-07") == "TCGA-CV-7100"
    assert normalise_barcode("TCGA-CV-7100") == "TCGA-CV-7100"


BIOTAB = TCGA / "nationwidechildrens.org_clinical_patient_hnsc.txt"
CDR = TCGA / "tcga-cdr" / "TCGA-CDR-SupplementalTableS1.xlsx"
FOLLOW_UP = TCGA / "new_format_ArjunCodess_TCGA-THCA" / "follow_up.tsv"


def _need(*paths):
    for p in paths:
        if not p.exists():
            pytest.skip(f"{p} is not on this machine")


def test_biotab_hnsc_through_the_command_line(tmp_path):
    """`radflow clinical` on the real TCGA-HNSC BCR Biotab: 528 patients, and the deaths its rows record."""
    _need(BIOTAB)
    from radflow.cli import main

    out = tmp_path / "clinical.csv"
    assert main(["clinical", str(BIOTAB), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    raw = pd.read_csv(BIOTAB, sep="\t", dtype=str, skiprows=[1, 2], keep_default_na=False)
    assert len(table) == 528 == raw["bcr_patient_barcode"].nunique()
    assert table["os_event"].eq(1).sum() == (raw["vital_status"] == "Dead").sum() == 170
    row = table.set_index("patient_id").loc["TCGA-BA-4074"]  # read off the file: Dead at 462 days, 69, male
    assert (row["os_days"], row["os_event"], row["age"], row["sex"]) == (462, 1, 69, "male")
    assert row["smoking"] == "current smoker" or row["smoking"].lower() == "current smoker"
    assert set(table["hpv_status"].dropna()) <= {"positive", "negative", "discordant (p16/ISH)"}
    assert table["hpv_status"].eq("positive").sum() > 10


def test_tcga_cdr_hnsc():
    """The TCGA-CDR table: its HNSC patients number 528, with 223 OS events; DSS and PFI come along."""
    _need(CDR)
    table = clinical_table([CDR], project="HNSC")
    assert len(table) == 528 and table["os_event"].eq(1).sum() == 223
    assert table["dss_event"].notna().sum() > 400 and table["pfi_event"].eq(1).sum() > 100
    assert set(table["os_source"]) == {CDR.name}
    raw = pd.read_excel(CDR, sheet_name="TCGA-CDR", usecols=["bcr_patient_barcode", "type"])
    assert len(clinical_table([CDR], project="TCGA-UVM")) == (raw["type"] == "UVM").sum()  # another project


def test_gdc_follow_up_extends_the_last_follow_up(tmp_path):
    _need(DOTTED, FOLLOW_UP)
    alone = clinical_table([DOTTED]).set_index("patient_id")
    both = clinical_table([DOTTED, FOLLOW_UP]).set_index("patient_id")
    assert len(both) == len(alone)  # one row per case
    follow = pd.read_csv(FOLLOW_UP, sep="\t", dtype=str, keep_default_na=False)
    days = pd.to_numeric(follow["follow_ups.days_to_follow_up"].replace("'--", ""), errors="coerce")
    latest = days.groupby(follow["cases.submitter_id"]).max()
    alive = both[both["os_event"] == 0].index
    # the real files agree: the longest follow-up of either is the OS time of every living patient
    for p in alive:
        expected = np.nanmax([alone.loc[p, "os_days"], latest.get(p, np.nan)])
        assert both.loc[p, "os_days"] == expected
    # a later follow-up visit, added to the real file, extends that patient's OS time
    patient = alive[0]
    row = follow[follow["cases.submitter_id"] == patient].iloc[[0]].copy()
    row["follow_ups.days_to_follow_up"] = str(alone.loc[patient, "os_days"] + 365.0)
    pd.concat([follow, row]).to_csv(tmp_path / "follow_up.tsv", sep="\t", index=False)
    extended = clinical_table([DOTTED, tmp_path / "follow_up.tsv"]).set_index("patient_id")
    assert extended.loc[patient, "os_days"] == alone.loc[patient, "os_days"] + 365.0
    assert extended.loc[patient, "os_event"] == 0


def test_one_row_per_case_in_both_namings():
    _need(DOTTED, FLAT)
    for path, col in ((DOTTED, "cases.submitter_id"), (FLAT, "case_submitter_id")):
        raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        table = clinical_table([path])
        assert len(table) == raw[col].nunique() and not table["patient_id"].duplicated().any()


def test_sources_are_combined_by_the_rules(tmp_path):
    """Biotab and TCGA-CDR together: a death in either wins, and every value names its source."""
    _need(BIOTAB, CDR)
    both = clinical_table([BIOTAB, CDR], project="HNSC", problems_tsv=tmp_path / "p.tsv")
    cdr = clinical_table([CDR], project="HNSC").set_index("patient_id")
    assert len(both) == 528
    assert both["os_event"].eq(1).sum() >= cdr["os_event"].eq(1).sum()
    assert both["covariates_source"].str.contains(BIOTAB.name).all()


def test_unknown_format_is_named(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello\tworld\n1\t2\n3\t4\n")
    with pytest.raises(ClinicalError, match="unknown clinical file format"):
        clinical_table([f])
