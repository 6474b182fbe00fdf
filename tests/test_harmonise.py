"""ComBat (radflow.trust.harmonise) against the reference implementation and against a known site effect; the ICC of the
robustness analysis (radflow.trust.robustness) against Shrout & Fleiss's published example and against known truths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from radflow.trust.harmonise import HarmonisationError, combat
from radflow.trust.robustness import icc1


def cohort(n_per_site=(30, 35, 25), p=25, seed=1, shift=3.0, scale=2.0):
    """Features x patients with an age effect (0.05 per year), a sex effect (0.7), unit noise, and site B shifted by
    `shift` and its noise scaled by `scale`; ages are whole years (neuroCombat reads continuous covariates as
    float32: whole numbers are the same in both)."""
    rng = np.random.default_rng(seed)
    n = sum(n_per_site)
    site = np.repeat(["A", "B", "C"][: len(n_per_site)], n_per_site)
    age = np.round(rng.normal(60, 10, n))
    sex = rng.choice(["f", "m"], n)
    base = rng.normal(5, 1, p)[:, None] + 0.05 * age + 0.7 * (sex == "m")
    noise = rng.normal(0, 1, (p, n))
    noise[:, site == "B"] *= scale
    data = base + noise + shift * (site == "B")
    return data, pd.DataFrame(dict(site=site, age=age, sex=sex)), base  # (base: without noise and site)


def test_combat_equals_neurocombat():
    from neuroCombat import neuroCombat

    data, covars, _ = cohort()
    mine, estimates = combat(data, covars, "site", ["sex"], ["age"])
    theirs = neuroCombat(data.copy(), covars, "site", ["sex"], ["age"])
    np.testing.assert_allclose(mine, theirs["data"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(estimates["gamma_star"], theirs["estimates"]["gamma.star"], rtol=1e-10, atol=1e-12)
    # and without covariates
    plain = neuroCombat(data.copy(), covars[["site"]], "site")["data"]
    np.testing.assert_allclose(combat(data, covars[["site"]], "site")[0], plain, rtol=1e-12, atol=1e-12)


def test_a_known_site_effect_is_removed_and_the_covariates_kept():
    data, covars, _ = cohort(n_per_site=(150, 150), p=20, shift=3.0, scale=2.0)
    b = (covars["site"] == "B").to_numpy()
    before = data[:, b].mean(axis=1) - data[:, ~b].mean(axis=1)
    assert np.allclose(before, 3.0, atol=0.4)
    out, _ = combat(data, covars, "site", ["sex"], ["age"])
    # the site's effect with the covariates' taken out (sites differ a little in age and sex by chance)
    design = np.column_stack([np.ones(len(covars)), covars["age"], covars["sex"] == "m", b]).astype(float)
    fits = {k: np.linalg.lstsq(design, v.T, rcond=None)[0] for k, v in (("before", data), ("after", out))}
    assert np.abs(fits["before"][3] - 3.0).max() < 0.5
    # the additive effect, 3, is gone to within its estimate's noise: ComBat shrinks each feature's site effect towards
    # the mean over features, so the per-feature error of a site effect estimated from 150 + 150 patients (about
    # 0.2 here) stays, and averages out over features
    assert abs(fits["after"][3].mean()) < 0.05 and np.abs(fits["after"][3]).max() < 0.5
    resid = out - (design @ fits["after"]).T
    ratio = resid[:, b].std(axis=1) / resid[:, ~b].std(axis=1)
    assert np.abs(np.log(ratio)).max() < np.log(1.15)  # the multiplicative one: 2x -> within 15 %
    # the kept effects, age (0.05 a year) and sex (0.7): as estimated before harmonisation, and right on average
    assert np.abs(fits["after"][1] - fits["before"][1]).max() < 0.01 and abs(fits["after"][1].mean() - 0.05) < 0.01
    assert np.abs(fits["after"][2] - fits["before"][2]).max() < 0.15 and abs(fits["after"][2].mean() - 0.7) < 0.15
    # without covariates the change within a site is affine per feature: the patients' order and distances stay
    plain, _ = combat(data, covars[["site"]], "site")
    for site in (b, ~b):
        assert min(np.corrcoef(plain[f, site], data[f, site])[0, 1] for f in range(len(out))) > 1 - 1e-12


def test_batches_too_small_or_confounded_are_named():
    data, covars, _ = cohort(n_per_site=(20, 20, 1))
    with pytest.raises(HarmonisationError, match=r"C \(1 sample\) too small"):
        combat(data, covars, "site")
    data, covars, _ = cohort(n_per_site=(20, 20))
    covars["scanner"] = covars["site"].map({"A": "GE", "B": "Siemens"})
    with pytest.raises(HarmonisationError, match="confounded with batch 'site'"):
        combat(data, covars, "site", ["scanner"])


def test_icc_of_shrout_and_fleiss_table_2():
    """Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; ICC(1,1) = .17 from BMS = 11.24 and WMS = 6.26."""
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    r = icc1(ratings)
    assert round(r["ms_between"], 2) == 11.24 and round(r["ms_within"], 2) == 6.26
    assert round(r["icc"], 2) == 0.17 and r["ci_low"] < 0 < r["icc"] < r["ci_high"] < 1


def test_icc_of_identical_perturbations_is_one_and_of_noise_near_zero():
    rng = np.random.default_rng(7)
    patients = rng.normal(0, 3, 50)
    same = icc1(np.repeat(patients[:, None], 6, axis=1))
    assert same["icc"] == 1.0 and same["ci_low"] == 1.0
    noise = icc1(rng.normal(0, 1, (300, 5)))
    assert abs(noise["icc"]) < 0.05 and noise["ci_low"] < 0 < noise["ci_high"]
    assert np.isnan(icc1(np.ones((10, 3)))["icc"])  # a constant feature has none


def test_a_modelling_table_by_tcga_site_with_a_batch_too_small(tmp_path):
    from radflow.trust.harmonise import before_after_plot, harmonise_table, tcga_site

    data, covars, _ = cohort(n_per_site=(12, 10, 1), p=6)
    sites = {"A": "CV", "B": "CN", "C": "QK"}
    table = pd.DataFrame(data.T, columns=[f"original_f{k}" for k in range(6)])
    table.insert(0, "patient_id", [f"TCGA-{sites[s]}-{k:04d}" for k, s in enumerate(covars["site"])])
    table["age"] = covars["age"]
    table.loc[3, "age"] = np.nan  # a patient without the covariate
    batch = table["patient_id"].map(tcga_site)
    assert tcga_site("TCGA-CV-7100-01A") == "CV" and tcga_site("LUNG1-001") == ""
    features = [c for c in table.columns if c.startswith("original_")]
    out, report = harmonise_table(table, batch, features, continuous=["age"])
    report = report.set_index("batch")
    assert report.loc["QK", "status"].startswith("too small") and report.loc["QK", "patients"] == "TCGA-QK-0022"
    assert report.loc["CV", "status"] == "harmonised (1 without a covariate value left out)"
    assert len(out) == 21 and "TCGA-QK-0022" not in set(out["patient_id"]) and 3 not in out.index
    kept = table.drop(index=[3, 22])
    expected, _ = combat(kept[features].to_numpy(float).T, kept[["age"]].assign(b=batch[kept.index]), "b", (), ["age"])
    np.testing.assert_allclose(out[features].to_numpy().T, expected)
    before_after_plot(table, out, batch, features[:3], tmp_path / "harmonisation.png", "site", ["age"], "HU")
    assert (tmp_path / "harmonisation.png").stat().st_size > 10_000
    # the picture names the batch variable, the batches with their sizes and the covariates kept
    text = Image.open(tmp_path / "harmonisation.png").text
    assert text["Title"] == "ComBat by site: 2 batches, 21 patients; covariates kept: age"
    assert text["Description"] == (
        "batches (site): CN n=10, CV n=11; features: original_f0 [unit not stated], original_f1 [unit not stated], "
        "original_f2 [unit not stated]"
    )
    with pytest.raises(HarmonisationError, match="fewer than two batches"):
        harmonise_table(table, batch.where(batch != "CN", "QK"), features, min_batch=13)


def test_the_batch_comes_from_the_site_the_scanner_or_a_file(tmp_path):
    from radflow.trust.harmonise import batch_of, read_batch_file

    table = pd.DataFrame(
        {"patient_id": ["TCGA-CV-0001", "TCGA-CN-0002", "LUNG1-001"], "series_uid": ["1.1", "1.2", "1.3"]}
    )
    series = pd.DataFrame(
        {
            "series_uid": ["1.1", "1.2", "1.3"],
            "manufacturer": ["GE MEDICAL SYSTEMS", "SIEMENS", ""],
            "manufacturer_model": ["LightSpeed16", "Biograph 64", ""],
        }
    )
    assert batch_of(table, "site", series).tolist() == ["CV", "CN", ""]
    assert batch_of(table, "manufacturer", series).tolist() == ["GE MEDICAL SYSTEMS", "SIEMENS", ""]
    assert batch_of(table, "model", series).tolist() == ["LightSpeed16", "Biograph 64", ""]
    (tmp_path / "sites.csv").write_text("patient_id,hospital\nTCGA-CV-0001,Houston\nLUNG1-001,Maastricht\n")
    assert batch_of(table, {"path": str(tmp_path / "sites.csv"), "column": "hospital"}).tolist() == [
        "Houston",
        "",
        "Maastricht",
    ]
    with pytest.raises(ValueError, match="sites.csv: no column centre"):
        read_batch_file(tmp_path / "sites.csv", "centre")
    (tmp_path / "twice.csv").write_text("patient_id,hospital\nA,x\nA,y\n")
    with pytest.raises(ValueError, match="patient A has more than one row"):
        read_batch_file(tmp_path / "twice.csv", "hospital")


def test_the_harmonised_table_says_it_is_harmonised_and_each_patients_batch(tmp_path):
    """harmonise_step (the workflow's): the copy names the ComBat batch variable and covariates in every row and the
    batch of each patient; the picture names its feature units from the image's modality."""
    from radflow.config.build import build_settings
    from radflow.trust.harmonise import harmonise_step

    data, covars, _ = cohort(n_per_site=(8, 9), p=4)
    table = pd.DataFrame(data.T, columns=[f"original_firstorder_F{k}" for k in range(4)])
    table.insert(0, "patient_id", [f"TCGA-{'CV' if s == 'A' else 'CN'}-{k:04d}" for k, s in enumerate(covars["site"])])
    table.insert(1, "modality", "CT")
    table.insert(2, "roi_original", "GTV")
    table["age"] = covars["age"]
    settings = build_settings(dict(harmonisation=dict(batch="site", covariates=["age"], min_batch=3)))
    out = tmp_path / "h.csv"
    harmonise_step(table, None, settings.harmonisation, out, tmp_path / "b.tsv", tmp_path / "h.png")
    copy = pd.read_csv(out)
    assert list(copy.columns[:5]) == ["patient_id", "modality", "roi_original", "harmonised_by", "harmonisation_batch"]
    assert set(copy["harmonised_by"]) == {"ComBat by site; covariates: age"}
    assert (copy["harmonisation_batch"] == copy["patient_id"].str[5:7]).all()
    assert copy["harmonisation_batch"].value_counts().to_dict() == {"CN": 9, "CV": 8}
    shown = Image.open(tmp_path / "h.png").text["Description"]
    assert shown.startswith("batches (site): CN n=9, CV n=8; features: original_firstorder_F")
    assert shown.count(" [HU]") == 4  # CT's unit, on each first-order feature shown
