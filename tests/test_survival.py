"""The survival starter: known effects are found, nothing is found in noise, too few events is a message."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from radflow.cohort.survival import benjamini_hochberg, survival_starter


def survival(**changes):
    """The schema's survival settings with these changed."""
    from dataclasses import replace

    from radflow.config.build import defaults

    return replace(defaults().survival, **changes)


def cohort(n=150, seed=3, effect=0.9):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12))
    t = rng.exponential(1000 / np.exp(effect * x[:, 0]))
    c = rng.uniform(200, 3000, n)
    df = pd.DataFrame(x, columns=[f"original_firstorder_f{i}" for i in range(12)])
    df["os_days"], df["os_event"] = np.minimum(t, c).round() + 1, (t < c).astype(int)
    df["patient_id"] = [f"TCGA-XX-{i:04d}" for i in range(n)]
    return df


def test_benjamini_hochberg_matches_the_definition():
    p = np.array([0.01, 0.04, 0.03, 0.20, np.nan])
    # sorted 0.01, 0.03, 0.04, 0.20 -> 0.04, 0.0533, 0.0533, 0.20
    assert np.allclose(benjamini_hochberg(p)[:4], [0.04, 0.16 / 3, 0.16 / 3, 0.20]) and np.isnan(
        benjamini_hochberg(p)[4]
    )


def test_a_known_effect_is_found(tmp_path):
    summary = survival_starter(cohort(), tmp_path, survival())
    uni = pd.read_csv(tmp_path / "univariate_cox.csv")
    top = uni.iloc[0]
    assert top["feature"] == "original_firstorder_f0" and top["q_bh"] < 1e-4
    assert top["hazard_ratio_per_sd"] > 1.5
    assert (uni["q_bh"] < 0.05).sum() == 1
    assert summary["status"] == "fitted" and summary["cv_c_index"] > 0.6 and summary["logrank_p"] < 0.01
    assert (tmp_path / "km.png").stat().st_size > 1000
    assert json.loads((tmp_path / "summary.json").read_text())["cv_c_index"] == summary["cv_c_index"]


def test_noise_gives_a_c_index_near_one_half(tmp_path):
    summary = survival_starter(cohort(effect=0.0, seed=5), tmp_path, survival())
    assert 0.35 < summary["cv_c_index"] < 0.65
    assert summary["significant_univariate_q05"] == 0


def test_too_few_events_is_a_message_not_a_crash(tmp_path):
    summary = survival_starter(cohort().iloc[:8], tmp_path, survival(min_events=10))
    assert summary["status"] == "too few events" and "min_events" in summary["message"]
    assert (tmp_path / "km.png").exists() and (tmp_path / "univariate_cox.csv").exists()


def test_an_empty_one_patient_or_event_free_table_is_a_summary_not_a_crash(tmp_path):
    """No imaging patient with clinical data (the modelling table as written: header only, or rows without an outcome),
    one patient, no events: a summary saying why, an empty but valid univariate table, a plot that says so."""
    header_only = pd.read_csv(__import__("io").StringIO(",".join(cohort(4).columns) + "\n"))
    no_outcome = cohort(5).assign(os_days=np.nan, os_event=np.nan)
    for name, table, status in (
        ("empty", header_only, "no patients"),
        ("no outcome", no_outcome, "no patients"),
        ("one patient", cohort(1), "too few events"),
        ("event free", cohort(40).assign(os_event=0), "too few events"),
    ):
        out = tmp_path / name.replace(" ", "_")
        summary = survival_starter(table, out, survival(min_events=4))
        assert summary["status"] == status, name
        assert json.loads((out / "summary.json").read_text())["message"] == summary["message"]
        uni = pd.read_csv(out / "univariate_cox.csv")
        assert len(uni) == 0 and list(uni.columns)[:2] == ["feature", "hazard_ratio_per_sd"]
        assert (out / "km.png").stat().st_size > 1000
    assert (
        "no patient with an OS time and event"
        in survival_starter(header_only, tmp_path / "again", survival())["message"]
    )


def test_the_folds_used_and_why_are_said(tmp_path):
    """Folds are stratified by event: with 3 events the 5 folds asked become 3, and summary.json says so; one C-index
    per fold, null where a fold holds no comparable pair."""
    data = cohort(n=40, seed=11)
    events = data.index[data["os_event"] == 1]
    data.loc[events[3:], "os_event"] = 0  # keep 3 events
    summary = survival_starter(data, tmp_path, survival(min_events=2, folds=5))
    assert summary["folds_asked"] == 5 and summary["folds"] == 3
    assert "3 folds, not the 5 asked" in summary["folds_note"] and "3 events" in summary["folds_note"]
    assert len(summary["cv_c_index_per_fold"]) == 3
    assert all(c is None or 0 <= c <= 1 for c in summary["cv_c_index_per_fold"])
    full = survival_starter(cohort(), tmp_path / "full", survival(folds=5))
    assert full["folds"] == 5 and full["folds_note"] == "5 folds as asked" and None not in full["cv_c_index_per_fold"]
