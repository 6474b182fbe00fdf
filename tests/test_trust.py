"""Robustness, negative controls and harmonisation in the demo run (the shipped config has all three on): checked
against what the generator put in (two sites, site 0Z's scanner 12 HU higher and noisier), against the survival
starter's own univariate Cox, and against analytic truths of the perturbations (volume changes as asked)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import copy_run, run_snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def perturbed(demo_run):
    return pd.read_parquet(demo_run / "results" / "perturbed.parquet")


def test_every_model_image_is_perturbed_as_asked(demo_run, perturbed):
    config = yaml.safe_load((demo_run / "results" / "provenance" / "config.yaml").read_text())  # as run
    asked = config["robustness"]["perturbations"]
    cohort = pd.read_csv(demo_run / "results" / "cohort.tsv", sep="\t", dtype=str)
    chosen = cohort.dropna(subset=["series_uid"])
    rows = perturbed[perturbed["series_uid"].isin(chosen["series_uid"])]
    # every patient of the modelling table: the original, each perturbation and each control, all extracted
    counts = rows.groupby("patient_id")["perturbation"].nunique()
    assert len(counts) == 8 and (counts == 1 + len(asked) + len(config["negative_controls"]["controls"])).all()
    assert rows["status"].eq("ok").all(), rows.loc[rows["status"] != "ok", "reason"].tolist()
    # volume changes as asked: exact voxel counts for volume adaptation, none for rigid moves, noise or controls
    for r in rows.itertuples():
        original = rows[(rows["series_uid"] == r.series_uid) & (rows["kind"] == "original")]["mask_voxels"].iloc[0]
        assert r.mask_voxels == round(original * (1 + r.volume_change_asked)), (r.perturbation, r.mask_voxels)
    # the noise added is the image's own, by Chang's wavelet estimate: the generator's 8 HU (site 00) and 13 HU (0Z)
    from radflow.demo import SCANNERS, site_of

    for r in rows[rows["perturbation"] == "noise"].itertuples():
        assert r.noise_sd == pytest.approx(SCANNERS[site_of(r.patient_id)]["noise_sd"], rel=0.1), r.patient_id
    # the original row is the series' own feature row
    features = pd.read_parquet(demo_run / "results" / "features.parquet")
    one = rows[rows["kind"] == "original"].iloc[0]
    mine = features[(features["series_uid"] == one["series_uid"]) & (features["roi_label"] == one["roi_label"])]
    assert mine["original_glcm_Contrast"].iloc[0] == one["original_glcm_Contrast"]


def test_icc_table(demo_run):
    config = yaml.safe_load((demo_run / "results" / "provenance" / "config.yaml").read_text())  # as run
    icc = pd.read_csv(demo_run / "results" / "robustness" / "icc.csv").set_index("feature")
    k = 1 + len(config["robustness"]["perturbations"])  # the original and each chain
    assert (icc["n_patients"] == 8).all() and (icc["n_images"] == k).all() and (icc["n_perturbations"] == k - 1).all()
    assert (icc["form"] == "ICC(1,1)").all() and (icc["ci_low"] <= icc["icc"]).all()
    # the demo's tumours differ in size by a factor of several, and a rotation or 10 % of volume is small beside it
    assert icc.loc["original_shape_VoxelVolume", "icc"] > 0.9
    # site 0Z's CT reads 12 HU higher: the mean HU differs between patients far more than under a perturbation
    assert icc.loc["original_firstorder_Mean", "icc"] > 0.9
    # all tumours share one noise texture: their texture differs between patients no more than under perturbation
    assert icc.loc["original_glcm_Idmn", "icc"] < 0.5
    assert (demo_run / "results" / "robustness" / "icc.png").stat().st_size > 10_000


def test_the_perturbed_features_are_the_same_when_computed_again(demo_run, perturbed):
    from radflow.config.build import build_settings
    from radflow.trust.perturbed import perturbed_series

    config = yaml.safe_load((demo_run / "results" / "provenance" / "config.yaml").read_text())  # as run
    one = perturbed.iloc[0]
    p, s = one["patient_id"], one["series_uid"]
    r = demo_run / "results"
    again = perturbed_series(
        r / "images" / p / f"{s}.nii.gz",
        r / "masks" / p / s,
        r / "features" / p / f"{s}.parquet",
        demo_run / "config" / "pyradiomics" / "CT.yaml",
        build_settings(config).perturb,
    )
    stored = pd.read_parquet(r / "perturbed" / p / f"{s}.parquet")
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), stored.drop(columns="seconds"), check_exact=True)


def test_negative_controls_side_by_side(demo_run):
    table = pd.read_csv(demo_run / "results" / "negative_controls" / "association.csv").set_index("feature")
    # the original's association is the survival starter's univariate Cox, feature for feature
    cox = pd.read_csv(demo_run / "results" / "survival" / "univariate_cox.csv").set_index("feature")
    both = table.join(cox, how="inner")
    assert len(both) >= 100
    assert np.allclose(both["original_hr_per_sd"], both["hazard_ratio_per_sd"], rtol=1e-9, equal_nan=True)
    # a control keeps the mask: the shape features are the same; a shuffle destroys texture: GLCM features are not
    for control in ("shuffled_roi", "randomized_sampled_roi"):
        assert table.loc[table.index.str.contains("_shape_"), f"{control}_same"].all()
        assert not table.loc[table.index.str.contains("_glcm_"), f"{control}_same"].any()
        assert (table[f"{control}_n"] == 8).all()


def test_harmonisation_removes_the_demo_site_effect(demo_run, truth):
    r = demo_run / "results"
    before = pd.read_csv(r / "modelling_table.csv").set_index("patient_id")
    after = pd.read_csv(r / "harmonised" / "modelling_table.csv").set_index("patient_id")
    batches = pd.read_csv(r / "harmonised" / "batches.tsv", sep="\t", dtype=str)
    assert batches[["batch", "n", "status"]].values.tolist() == [["00", "4", "harmonised"], ["0Z", "4", "harmonised"]]
    site = pd.Series({p: truth["patients"][p]["site"] for p in before.index})
    mean = "original_firstorder_Mean"
    gap_before = before.groupby(site)[mean].mean().diff().iloc[-1]
    gap_after = after.groupby(site)[mean].mean().diff().iloc[-1]
    assert 9 < gap_before < 15 and abs(gap_after) < 1  # the generator's +12 HU, then gone
    # the protected covariate and the clinical columns are untouched; shape is left as it is (leave_classes)
    for column in ("age", "os_days", "os_event", "original_shape_VoxelVolume"):
        assert after[column].equals(before.loc[after.index, column]), column
    assert (r / "harmonised" / "before_after.png").stat().st_size > 10_000


def test_the_survival_starter_on_robust_harmonised_features(demo_run, tmp_path):
    """A real snakemake run of the survival rule alone, in a copy of the demo run, with min_icc and harmonised."""
    work = tmp_path / "project"
    copy_run(demo_run, work)
    path = work / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["survival"].update(min_icc=0.75, harmonised=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = run_snakemake(work, "results/survival/summary.json", "--allowed-rules", "survival")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((work / "results" / "survival" / "summary.json").read_text())
    icc = pd.read_csv(work / "results" / "robustness" / "icc.csv")
    assert summary["table"] == "results/harmonised/modelling_table.csv" and summary["min_icc"] == 0.75
    assert summary["features_robust"] == int((icc["icc"] >= 0.75).sum()) < summary["features_with_icc"]
    assert 0 < summary["features"] <= summary["features_robust"]
    chosen = pd.read_csv(work / "results" / "survival" / "univariate_cox.csv")["feature"]
    assert set(chosen) <= set(icc.loc[icc["icc"] >= 0.75, "feature"])


def test_perturbing_around_the_roi_is_perturbing_the_whole_image(demo_run):
    """The perturb job works on a crop around the ROI and pastes it back: the features equal those of the whole
    image perturbed, exactly; a chain that moves nothing gives the series' own features exactly (the perturbed CT
    is stored in HU integers like the original, so pyradiomics resamples the same values)."""
    import SimpleITK as sitk

    from radflow.features import extract_roi, make_extractor
    from radflow.trust.robustness import crop_for_perturbation, paste, perturb

    r = demo_run / "results"
    c = pd.read_csv(r / "cohort.tsv", sep="\t", dtype=str).dropna(subset=["series_uid"]).iloc[0]
    image = sitk.ReadImage(str(r / "images" / c["patient_id"] / f"{c['series_uid']}.nii.gz"))
    mask = sitk.ReadImage(str(r / "masks" / c["patient_id"] / c["series_uid"] / f"{c['roi_label']}.nii.gz"))
    extractor = make_extractor(demo_run / "config" / "pyradiomics" / "CT.yaml")
    chains = [dict(rotation_deg=-4), dict(volume_change=0.1)]
    part_image, part_mask, start = crop_for_perturbation(image, mask, chains, extractor.settings)
    assert np.prod(part_image.GetSize()) < 0.7 * np.prod(image.GetSize())
    voxels = int((sitk.GetArrayViewFromImage(mask) > 0).sum())
    for spec in chains + [dict(translation_mm=[0.0, 0.0, 0.0])]:
        whole = perturb(image, mask, spec, np.random.default_rng(0), voxels)[:2]
        near = paste(image, mask, *perturb(part_image, part_mask, spec, np.random.default_rng(0), voxels)[:2], start)
        assert extract_roi(extractor, *whole)[0] == extract_roi(extractor, *near)[0], spec
    features = pd.read_parquet(r / "features" / c["patient_id"] / f"{c['series_uid']}.parquet")
    own = features[features["roi_label"] == c["roi_label"]].iloc[0]
    moved_nothing = extract_roi(extractor, *near)[0]
    assert all(own[k] == v for k, v in moved_nothing.items() if k.startswith("original_")), "identity != original"


def test_dose_features_as_the_model_modality(demo_run, truth, tmp_path):
    """model.modality RTDOSE: a real snakemake run in a copy of the demo run. The modelling table takes the dose
    features of the one patient with an RTDOSE (the others: 'no RTDOSE dose grid'); the perturb job perturbs the dose
    grid and its masks. The demo's dose is linear along z (0.25 Gy/mm): an in-plane rotation leaves the GTV's mean
    dose as it is, the translation's 1.25 mm along z moves it by 1.25 x 0.25 Gy, and the noise added is the dose
    grid's own, none."""
    work = tmp_path / "project"
    copy_run(demo_run, work)
    path = work / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["model"]["modality"] = "RTDOSE"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = run_snakemake(work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dose = truth["patients"]["TCGA-00-0001"]["rtdose"]
    cohort = pd.read_csv(work / "results" / "cohort.tsv", sep="\t", dtype=str).set_index("patient_id")
    assert cohort.loc["TCGA-00-0001", "in_modelling_table"] == "True"
    others = cohort.drop(index="TCGA-00-0001")
    imaged = others[others["has_images"] == "True"]
    assert len(imaged) == 7 and (imaged["reason"] == "no RTDOSE dose grid").all()
    table = pd.read_csv(work / "results" / "modelling_table.csv")
    assert table["patient_id"].tolist() == ["TCGA-00-0001"] and table["modality"].tolist() == ["RTDOSE"]
    assert table["series_uid"].tolist() == [dose["series_uid"]]
    dvh = pd.read_parquet(work / "results" / "dose" / "dvh.parquet").set_index("roi")
    assert table["original_firstorder_Mean"].iloc[0] == pytest.approx(dvh.loc["GTVp", "dmean_gy"], abs=0.5)
    perturbed = pd.read_parquet(work / "results" / "perturbed.parquet").set_index("perturbation")
    assert (perturbed["modality"] == "RTDOSE").all() and perturbed["status"].eq("ok").all()
    mean = perturbed["original_firstorder_Mean"]
    assert mean["rotation-4deg"] == pytest.approx(mean["original"], abs=1e-9)
    (moved,) = [p for p in config["robustness"]["perturbations"] if "translation_mm" in p]
    (name,) = [n for n in perturbed.index if n.startswith("translation")]
    shift = moved["translation_mm"][2] * dose["gradient_gy_per_mm"]
    assert mean["original"] - mean[name] == pytest.approx(shift, abs=2e-5)  # (float32 doses near 60 Gy: 4e-6 apart)
    assert perturbed.loc["noise", "noise_sd"] == pytest.approx(0, abs=1e-9) and mean["noise"] == mean["original"]
