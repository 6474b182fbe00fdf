"""The per-patient timeline: days between studies, what each study holds, undated studies last."""

from __future__ import annotations

import pandas as pd

from radflow.cohort.timeline import patient_timeline, read_timeline


def _series(pid, study, date, modality, role, convert=False):
    return dict(
        patient_id=pid,
        study_uid=study,
        study_date=date,
        study_description=f"{study} desc",
        modality=modality,
        role=role,
        convert=convert,
    )


def test_days_between_studies_and_their_contents():
    series = pd.DataFrame(
        [
            _series("P1", "s-follow", "20100401", "CT", "image", True),  # 90 days after the baseline
            _series("P1", "s-base", "20100101", "CT", "image", True),
            _series("P1", "s-base", "20100101", "RTSTRUCT", "rtstruct"),
            _series("P1", "s-base", "20100101", "RTDOSE", "rtdose"),
            _series("P1", "s-base", "20100101", "CT", "image", False),  # a scout
            _series("P1", "s-undated", "", "MR", "image", True),
            _series("P2", "s-leap", "20120301", "PT", "image", True),
            _series("P2", "s-early", "20120228", "CT", "image", True),  # 2012 is a leap year: 2 days
        ]
    )
    t = patient_timeline(series)
    p1 = t[t["patient_id"] == "P1"].set_index("study_uid")
    assert list(p1.index) == ["s-base", "s-follow", "s-undated"]
    assert p1.loc["s-base", "day"] == 0 and p1.loc["s-follow", "day"] == 90 and pd.isna(p1.loc["s-undated", "day"])
    assert p1.loc["s-base", "modalities"] == "CT,RTDOSE,RTSTRUCT"
    assert (p1.loc["s-base", ["image_series", "converted_images", "structure_sets", "rtdose"]] == [2, 1, 1, 1]).all()
    assert p1.loc["s-follow", "structure_sets"] == 0
    p2 = t[t["patient_id"] == "P2"].set_index("study_uid")
    assert p2["day"].to_dict() == {"s-early": 0, "s-leap": 2}


def test_timeline_tsv_reads_back_as_written(tmp_path):
    """The modelling and delta tables read results/timeline.tsv: it must give back the same days, UIDs with their
    dots and leading zeros, and an undated study's empty day."""
    series = pd.DataFrame(
        [
            _series("TCGA-CV-0001", "1.2.840.0100", "20100401", "CT", "image", True),
            _series("TCGA-CV-0001", "1.2.840.0200", "20100101", "CT", "image", True),
            _series("TCGA-CV-0001", "1.2.840.0300", "", "MR", "image", True),
        ]
    )
    written = patient_timeline(series)
    written.to_csv(tmp_path / "timeline.tsv", sep="\t", index=False)
    back = read_timeline(tmp_path / "timeline.tsv")
    pd.testing.assert_frame_equal(back, written, check_dtype=False)
    assert back["day"].tolist()[:2] == [0, 90] and pd.isna(back["day"].iloc[2])
    assert back["study_uid"].tolist() == ["1.2.840.0200", "1.2.840.0100", "1.2.840.0300"]


def test_no_series_gives_an_empty_timeline():
    t = patient_timeline(
        pd.DataFrame(
            columns=["patient_id", "study_uid", "study_date", "study_description", "modality", "role", "convert"]
        )
    )
    assert t.empty and "day" in t.columns
