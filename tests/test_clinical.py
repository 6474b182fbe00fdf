"""Clinical outcomes from real GDC portal files in both column namings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import REFERENCE
from radflow.clinical import ClinicalError, clinical_table, normalise_barcode

TCGA = REFERENCE / "tcga-clinical"
DOTTED = TCGA / "new_format_ArjunCodess_TCGA-THCA" / "clinical.tsv"
FLAT = TCGA / "old_format_jrbobes_TCGA-PAAD" / "clinical.tsv"


def _raw(path, patient_col):
    raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return raw.replace("'--", "")


@pytest.mark.parametrize("path,pid,vital,death,follow", [
    (DOTTED, "cases.submitter_id", "demographic.vital_status", "demographic.days_to_death",
     "diagnoses.days_to_last_follow_up"),
    (FLAT, "case_submitter_id", "vital_status", "days_to_death", "days_to_last_follow_up"),
])
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
    f.write_text("case_submitter_id\tvital_status\tdays_to_death\tdays_to_last_follow_up\n"
                 "TCGA-AA-0001\tAlive\t'--\t300.0\n"
                 "TCGA-AA-0001\tDead\t250.5\t'--\n"
                 "TCGA-AA-0002\tAlive\t'--\t-12\n")
    problems = tmp_path / "problems.tsv"
    table = clinical_table([f], problems_tsv=problems).set_index("patient_id")
    assert table.loc["TCGA-AA-0001", "os_event"] == 1 and table.loc["TCGA-AA-0001", "os_days"] == 250.5
    assert np.isnan(table.loc["TCGA-AA-0002", "os_days"])
    text = problems.read_text()
    assert "negative days_to_last_follow_up" in text and "disagree" in text


def test_not_a_clinical_file(tmp_path):
    f = tmp_path / "clinical.tsv"
    f.write_text("a\tb\n1\t2\n")
    with pytest.raises(ClinicalError, match="clinical.tsv"):
        clinical_table([f])


def test_barcodes():
    assert normalise_barcode("tcga-cv-7100-01a-11r-2016-07") == "TCGA-CV-7100"
    assert normalise_barcode("TCGA-CV-7100") == "TCGA-CV-7100"
