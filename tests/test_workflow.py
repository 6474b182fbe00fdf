"""A real snakemake run on the demo cohort, checked against the generator's analytic truth."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def features(demo_run):
    return pd.read_parquet(demo_run / "results" / "features.parquet")


def test_every_table_is_written(demo_run):
    for rel in [
        "index/series.parquet",
        "index/rois.parquet",
        "index/problems.tsv",
        "index/links.parquet",
        "features.parquet",
        "features.csv",
        "features_long.parquet",
        "features_long.csv",
        "clinical.csv",
        "modelling_table.csv",
        "cohort.tsv",
        "qc/counts.tsv",
        "delta_radiomics.csv",
        "timeline.tsv",
    ]:
        assert (demo_run / "results" / rel).stat().st_size > 0, rel


def test_features_csv_equals_parquet(demo_run, features):
    csv = pd.read_csv(demo_run / "results" / "features.csv")
    assert list(csv.columns) == list(features.columns)
    assert np.allclose(csv["original_firstorder_Mean"], features["original_firstorder_Mean"], rtol=1e-12)


def test_one_row_per_patient_series_roi(features, truth):
    assert not features.duplicated(["patient_id", "series_uid", "roi_label"]).any()
    ct = features[features["modality"] == "CT"]
    # every demo patient: 5 ROIs on the planning CT, and the GTV on the follow-up CT of two of them
    assert ct.groupby("patient_id").size().to_dict() == {p: 5 + ("followup" in t) for p, t in truth["patients"].items()}
    assert (features["status"] == "ok").all()
    first = ["patient_id", "study_uid", "series_uid", "modality", "image_units", "roi", "roi_original"]
    assert features.columns[:7].tolist() == first


def test_gtv_volume_matches_the_analytic_volume(features, truth):
    for pid, p in truth["patients"].items():
        for original, roi in p["rois"].items():
            row = features[
                (features["patient_id"] == pid)
                & (features["series_uid"] == p["ct_series_uid"])
                & (features["roi_original"] == original)
            ].iloc[0]
            # radflow's mask on the CT grid: within 2 % of the ellipsoid / cylinder the generator drew
            assert row["mask_volume_mm3"] == pytest.approx(roi["volume_mm3"], rel=0.02), (pid, original)
            if roi["standard"].startswith("GTV"):
                # pyradiomics' own volume is taken after its 1 mm resampling (nearest-neighbour mask)
                assert row["original_shape_VoxelVolume"] == pytest.approx(roi["volume_mm3"], rel=0.06)


def test_pet_lesion_suvmax(features, truth):
    pets = [(pid, p) for pid, p in truth["patients"].items() if "pet_series_uid" in p]
    assert len(pets) >= 2
    for pid, p in pets:
        row = features[(features["series_uid"] == p["pet_series_uid"]) & (features["roi"] == "GTVp")].iloc[0]
        assert row["modality"] == "PT"
        assert row["original_firstorder_Maximum"] == pytest.approx(p["pet_lesion_suvmax"], rel=0.01)
        # the GTV drawn on the CT was rasterised directly on the PET grid
        assert row["relation"] == "same_frame_of_reference"


def test_every_demo_roi_name_is_mapped(demo_run, truth):
    rois = pd.read_parquet(demo_run / "results" / "index" / "rois.parquet")
    assert (rois["roi"] != "unmapped").all()
    for pid, p in truth["patients"].items():
        got = rois[rois["rtstruct_series_uid"] == p["rtstruct_series_uid"]]
        assert dict(zip(got["roi_original"], got["roi"])) == {o: r["standard"] for o, r in p["rois"].items()}


def test_os_equals_what_the_clinical_rows_imply(demo_run, truth):
    clinical = pd.read_csv(demo_run / "results" / "clinical.csv").set_index("patient_id")
    assert set(clinical.index) == set(truth["clinical"])
    for pid, c in truth["clinical"].items():
        assert clinical.loc[pid, "os_days"] == c["os_days"], pid
        assert clinical.loc[pid, "os_event"] == c["os_event"], pid
        assert clinical.loc[pid, "sex"] == c["sex"]
        assert clinical.loc[pid, "stage"] == c["stage"]


def test_scout_rtplan_rtdose_are_not_images(demo_run, truth):
    series = pd.read_parquet(demo_run / "results" / "index" / "series.parquet").set_index("series_uid")
    converted = {p.name[:-7] for p in (demo_run / "results" / "images").rglob("*.nii.gz")}
    for kind, uid in truth["not_images"].items():
        assert uid in series.index, kind
        assert not series.loc[uid, "convert"], kind
        assert uid not in converted, kind
        assert series.loc[uid, "reason"], kind
    assert "LOCALIZER" in series.loc[truth["not_images"]["scout"], "reason"]
    problems = pd.read_csv(demo_run / "results" / "index" / "problems.tsv", sep="\t")
    assert set(truth["not_images"].values()) <= set(problems["series_uid"])


def test_converted_images_are_the_ct_pet_and_mr(demo_run, truth):
    converted = {p.name[:-7] for p in (demo_run / "results" / "images").rglob("*.nii.gz")}
    expected = set()
    for p in truth["patients"].values():
        expected |= {p[k] for k in ("ct_series_uid", "pet_series_uid", "mr_series_uid") if k in p}
        expected |= {p["followup"]["ct_series_uid"]} if "followup" in p else set()
    assert converted == expected


def test_sidecars_say_units_and_suv_factor(demo_run, truth):
    p = truth["patients"]["TCGA-00-0001"]
    sidecar = json.loads((demo_run / "results" / "images" / "TCGA-00-0001" / f"{p['pet_series_uid']}.json").read_text())
    assert sidecar["units"].startswith("SUVbw")
    assert sidecar["suv"]["suv_factor"] == pytest.approx(p["pet_suv_per_bqml"], rel=1e-6)
    ct = sitk.ReadImage(str(demo_run / "results" / "images" / "TCGA-00-0001" / f"{p['ct_series_uid']}.nii.gz"))
    hu = sitk.GetArrayFromImage(ct)
    assert hu.min() == -1000 and 600 < hu.max() < 800  # air and bone in HU


def test_the_tables_say_their_units(demo_run, features, truth):
    """Each features row names its image's units; the modelling table's dictionary gives each column's unit and
    kind, and says why a column no row has is empty (the demo's clinical.tsv, a GDC portal file, has no DSS, PFI,
    HPV or smoking fields)."""
    units = features.groupby("modality")["image_units"].unique().map(list).to_dict()
    assert units == {"CT": ["HU"], "MR": ["as stored"], "PT": ["SUVbw (g/ml)"], "RTDOSE": ["Gy"]}
    table = pd.read_csv(demo_run / "results" / "modelling_table.csv")
    columns = pd.read_csv(demo_run / "results" / "modelling_table_columns.tsv", sep="\t", keep_default_na=False)
    assert list(columns["column"]) == list(table.columns)
    c = columns.set_index("column")
    assert c.loc["os_days", "unit"] == "days" and c.loc["os_days", "kind"] == "outcome"
    assert c.loc["os_days", "values"] == table["os_days"].notna().sum() == len(table)
    assert c.loc["original_shape_MeshVolume", "unit"] == "mm³" and c.loc["original_firstorder_Mean", "unit"] == "HU"
    assert c.loc["original_glcm_Contrast", "unit"] == "1" and c.loc["age", "unit"] == "years"
    for empty in ("dss_days", "dss_event", "pfi_days", "pfi_event", "hpv_status", "smoking"):
        assert table[empty].isna().all() and c.loc[empty, "values"] == 0, empty
        assert c.loc[empty, "why_empty"].startswith(
            "no clinical file of this run (clinical.tsv) gives it; it comes "
        ), empty
    assert "TCGA-CDR only (DSS, DSS.time" in c.loc["dss_days", "why_empty"]
    assert "BCR Biotab clinical_patient file only (hpv_status_p16, hpv_status_ish)" in c.loc["hpv_status", "why_empty"]
    assert (c.loc[c["values"] > 0, "why_empty"] == "").all()


def test_modelling_table_and_cohort(demo_run, truth):
    table = pd.read_csv(demo_run / "results" / "modelling_table.csv")
    cohort = pd.read_csv(demo_run / "results" / "cohort.tsv", sep="\t", keep_default_na=False)
    assert sorted(table["patient_id"]) == sorted(truth["patients"])
    assert not table["patient_id"].duplicated().any()
    assert (table["roi"] == "GTVp").all() and (table["modality"] == "CT").all()
    for pid, c in truth["clinical"].items():
        if pid in truth["patients"]:
            assert table.set_index("patient_id").loc[pid, "os_days"] == c["os_days"]
    # every patient is accounted for; the clinical-only patient says why it is absent
    assert set(cohort["patient_id"]) == set(truth["clinical"]) | set(truth["patients"])
    only = cohort.set_index("patient_id").loc[truth["clinical_only"][0]]
    assert not only["in_modelling_table"] and "no converted image" in only["reason"]


def test_overlays_counts_and_report(demo_run, features, truth):
    """snakemake --report: counts, an overlay per ROI, feature distributions, problems, survival plot, robustness."""
    from conftest import run_snakemake

    qc = demo_run / "results" / "qc"
    ok = features[features["status"] == "ok"]
    images = ok[ok["modality"] != "RTDOSE"]  # (dose features are drawn as DVHs, not overlays)
    pictures = sorted(qc.glob("overlays/*/*/*.png"))
    assert len(pictures) == len(images) == 53  # 8 x 5 CT ROIs, 2 follow-up GTVs, 2 x 5 PET ROIs, 1 MR GTV
    assert {(p.parent.parent.name, p.parent.name, p.stem) for p in pictures} == set(
        zip(images["patient_id"], images["series_uid"], images["roi"])
    )
    counts = pd.read_csv(qc / "counts.tsv", sep="\t")
    n = dict(zip(counts["count"], counts["n"]))
    assert n["patients with DICOM"] == len(truth["patients"])
    assert n["patients in the modelling table"] == len(truth["patients"])
    followed = sum("followup" in t for t in truth["patients"].values())
    assert n["patients with two or more studies"] == followed == 2
    assert n["modelling table patients with other candidates passed over"] == followed
    assert n["OS events in the modelling table"] == sum(truth["clinical"][p]["os_event"] for p in truth["patients"])
    assert n["feature rows ok"] == len(ok) == 53 + 5  # and the 5 ROIs' dose features of the one RTDOSE
    assert n["left out: no converted image series"] == len(truth["clinical_only"])
    assert len(list((qc / "feature_distributions").glob("*.png"))) == ok.groupby(["modality", "roi"]).ngroups
    from PIL import Image

    pet = Image.open(qc / "feature_distributions" / "PT_GTVp.png").text
    assert pet["Title"].startswith("PT (SUVbw (g/ml)) GTVp: ") and pet["Title"].endswith("settings PT.yaml")
    assert "original_firstorder_Mean [SUVbw]" in pet["Description"]
    p = truth["patients"]["TCGA-00-0001"]
    title = Image.open(qc / "overlays" / "TCGA-00-0001" / p["ct_series_uid"] / "GTVp.png").text["Title"]
    assert title.startswith("TCGA-00-0001 · CT 'CT HEAD NECK") and " · GTVp ('GTV')\nwindow -160 to 240 HU" in title

    proc = run_snakemake(demo_run, "--report", "report.html")
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (demo_run / "report.html").read_text()
    for category in (
        "Mask overlays",
        "Feature distributions",
        "Cohort",
        "counts.tsv",
        "problems.tsv",
        "km.png",
        "dvh.csv",
        "methods.html",
        "reporting_checklist.html",
        "features.html",
    ):
        assert category in html, category
    # robustness, negative controls and harmonisation (on in the shipped config): the ICC plot per feature class,
    # the negative-control table, the before/after plot and the batches
    for item in ("Robustness", "icc.png", "icc.csv", "association.csv", "before_after.png", "batches.tsv"):
        assert item in html, item
    # every overlay is embedded as a picture, and the three pictures above
    embedded = html.count("data:image/png;charset=utf8;filename=")
    assert embedded >= 51 + ok.groupby(["modality", "roi"]).ngroups + 1 + 2


def test_baseline_chosen_and_followup_passed_over(demo_run, truth):
    table = pd.read_csv(demo_run / "results" / "modelling_table.csv")
    cohort = pd.read_csv(demo_run / "results" / "cohort.tsv", sep="\t", keep_default_na=False).set_index("patient_id")
    assert table["patient_id"].is_unique and sorted(table["patient_id"]) == sorted(truth["patients"])
    followed = {p: t for p, t in truth["patients"].items() if "followup" in t}
    assert len(followed) == 2
    for pid, t in truth["patients"].items():
        row = cohort.loc[pid]
        assert (row["series_uid"], row["study_uid"], row["study_day"]) == (t["ct_series_uid"], t["study_uid"], "0")
        assert row["time_point"] == "baseline" and row["selection"].startswith("baseline: the earliest study")
        if pid in followed:  # the follow-up CT lost, and cohort.tsv says so with its day
            fu = t["followup"]
            assert f"day {fu['day']} series {fu['ct_series_uid']} GTVp" in row["passed_over"]
            assert row["passed_over"].endswith("later study")
        else:
            assert row["passed_over"] == ""


def test_delta_table_shows_the_gtv_shrinking(demo_run, truth):
    delta = pd.read_csv(demo_run / "results" / "delta_radiomics.csv")
    followed = {p: t for p, t in truth["patients"].items() if "followup" in t}
    # only the GTV is drawn on the follow-ups: one row per followed patient, CT, GTVp
    assert sorted(delta["patient_id"]) == sorted(followed)
    assert set(delta["modality"]) == {"CT"} and set(delta["roi"]) == {"GTVp"}
    for row in delta.itertuples():
        t = followed[row.patient_id]
        fu = t["followup"]
        assert (row.series_uid_0, row.series_uid_1) == (t["ct_series_uid"], fu["ct_series_uid"])
        assert (row.day_0, row.day_1, row.interval_days) == (0, fu["day"], fu["day"])
        before = t["rois"][fu["gtvp_original"]]["volume_mm3"]
        # radflow's masks on each CT's own grid: the drop the generator made, within 2 %
        assert row.mask_volume_mm3_delta == pytest.approx(fu["gtvp_volume_mm3"] - before, rel=0.02)
        assert row.mask_volume_mm3_relative == pytest.approx(fu["gtvp_volume_ratio"] - 1, rel=0.02)
        # pyradiomics' mesh volume after its 1 mm resampling (3 mm follow-up slices): within 5 %
        assert row.original_shape_MeshVolume_relative == pytest.approx(fu["gtvp_volume_ratio"] - 1, rel=0.05)


def test_timeline_of_the_demo(demo_run, truth):
    timeline = pd.read_csv(demo_run / "results" / "timeline.tsv", sep="\t", keep_default_na=False)
    first = timeline.drop_duplicates("patient_id")  # the planning study of each patient, on day 0
    assert sorted(first["patient_id"]) == sorted(truth["patients"]) and (first["day"] == 0).all()
    assert (timeline["structure_sets"] >= 1).all()
    later = timeline[timeline.duplicated("patient_id")]  # the follow-ups, on the generator's day
    assert {r.patient_id: (r.study_uid, r.day) for r in later.itertuples()} == {
        p: (t["followup"]["study_uid"], t["followup"]["day"]) for p, t in truth["patients"].items() if "followup" in t
    }
    rows = first.set_index("patient_id")
    assert rows.loc["TCGA-00-0001", "modalities"] == "CT,PT,RTDOSE,RTPLAN,RTSTRUCT"
    assert rows.loc["TCGA-00-0001", "rtdose"] == 1
    assert rows.loc["TCGA-00-0003", "structure_sets"] == 2  # the CT's and the MR's
    assert rows.loc["TCGA-00-0002", "image_series"] == 3 and rows.loc["TCGA-00-0002", "converted_images"] == 2


def test_rerun_does_nothing(demo_run):
    from conftest import run_snakemake

    proc = run_snakemake(demo_run, "--dry-run")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def _analytic_dose(image: sitk.Image, rtdose: dict) -> tuple[np.ndarray, np.ndarray]:
    """(dose read, analytic dose) at every voxel centre of image."""
    size = image.GetSize()
    k, j, i = np.meshgrid(*(np.arange(n) for n in reversed(size)), indexing="ij")
    idx = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(float)
    d = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    pts = idx @ d.T + np.asarray(image.GetOrigin())
    analytic = rtdose["base_gy"] + rtdose["gradient_gy_per_mm"] * (pts[:, 2] - rtdose["centre"][2])
    return sitk.GetArrayFromImage(image).ravel(), analytic


def test_rtdose_in_gy_on_its_grid_and_on_the_ct(demo_run, truth):
    p = truth["patients"]["TCGA-00-0001"]
    folder = demo_run / "results" / "dose" / "TCGA-00-0001" / p["rtdose"]["series_uid"]
    read, analytic = _analytic_dose(sitk.ReadImage(str(folder / "dose.nii.gz")), p["rtdose"])
    scaling = json.loads((folder / "dose.json").read_text())["dose_grid_scaling"]
    assert np.abs(read - analytic).max() <= scaling  # quantisation of the stored integers only
    on_ct = sitk.ReadImage(str(folder / f"on_{p['ct_series_uid']}.nii.gz"))
    ct = sitk.ReadImage(str(demo_run / "results" / "images" / "TCGA-00-0001" / f"{p['ct_series_uid']}.nii.gz"))
    assert on_ct.GetSize() == ct.GetSize() and np.allclose(on_ct.GetOrigin(), ct.GetOrigin())
    read, analytic = _analytic_dose(on_ct, p["rtdose"])
    dose_grid = sitk.ReadImage(str(folder / "dose.nii.gz"))
    lo = np.asarray(dose_grid.GetOrigin())
    hi = lo + (np.asarray(dose_grid.GetSize()) - 1) * np.asarray(dose_grid.GetSpacing())
    size = ct.GetSize()
    k, j, i = np.meshgrid(*(np.arange(n) for n in reversed(size)), indexing="ij")
    pts = np.stack([i.ravel(), j.ravel(), k.ravel()], 1) * np.asarray(ct.GetSpacing()) + np.asarray(ct.GetOrigin())
    inside = ((pts >= lo - 1e-6) & (pts <= hi + 1e-6)).all(axis=1)
    # the interpolator also serves the half voxel beyond the outermost dose voxel centres
    half = np.asarray(dose_grid.GetSpacing()) / 2
    served = ((pts >= lo - half) & (pts < hi + half)).all(axis=1)
    covered = json.loads((folder / "dose.json").read_text())["resampled_on"][p["ct_series_uid"]]["covered_fraction"]
    assert covered == pytest.approx(served.mean(), abs=0.005) and 0.2 < covered < 1.0
    # linear interpolation of a linear dose: exact, but for the stored integers' quantisation and float32
    assert np.abs(read[inside] - analytic[inside]).max() <= 2 * scaling + 1e-4
    assert (read[~served] == 0).all()


def test_survival_starter_ran_on_the_demo(demo_run, truth):
    summary = json.loads((demo_run / "results" / "survival" / "summary.json").read_text())
    imaging = [c for p, c in truth["clinical"].items() if p in truth["patients"]]
    assert summary["patients"] == len(imaging) and summary["events"] == sum(c["os_event"] for c in imaging)
    assert summary["status"] == "fitted" and 0.0 <= summary["cv_c_index"] <= 1.0
    assert (demo_run / "results" / "survival" / "km.png").stat().st_size > 1000
    uni = pd.read_csv(demo_run / "results" / "survival" / "univariate_cox.csv")
    assert len(uni) == summary["features"] and uni["q_bh"].between(0, 1).all()


def test_provenance_record(demo_run):
    """results/provenance/ carries every setting behind the numbers: copies of the settings files under the hash the
    features table names, the config as run, every table and picture with its full SHA-256, every distribution."""
    import hashlib

    from radflow.run.provenance import sha256

    results = demo_run / "results"
    record = json.loads((results / "provenance" / "provenance.json").read_text())
    packages = record["packages"]
    assert packages["numpy"] == np.__version__ and packages["pyradiomics-bhklab"] == "3.1.4"
    assert {"scipy", "matplotlib", "shapely", "lifelines", "snakemake", "SimpleITK".lower()} <= {
        p.lower() for p in packages
    }
    assert record["config"]["model"] == {
        "modality": "CT",
        "roi": "GTVp",
        "time_point": "baseline",
        "studies": None,
        "dose": {"GTVp": ["Dmean", "D95", "D2"], "Parotid_L": ["Dmean", "V5Gy"]},
    }
    assert "survival.endpoint" in record["config_defaulted"] and "robustness" not in record["config_defaulted"]
    assert len(record["git"]["commit"]) in (0, 40)
    # the config as run, defaults filled in
    as_run = yaml.safe_load((results / "provenance" / "config.yaml").read_text())
    assert as_run["survival"]["endpoint"] == "os" and as_run["survival"]["min_events"] == 4
    # the settings copies are the files the run read, and the features table names them by full hash
    ct = demo_run / "config" / "pyradiomics" / "CT.yaml"
    copy = results / "provenance" / "settings" / "pyradiomics" / "CT.yaml"
    assert copy.read_bytes() == ct.read_bytes()
    features = pd.read_parquet(results / "features.parquet")
    ct_rows = features[features["modality"] == "CT"]
    assert ct_rows["settings_sha256"].eq(hashlib.sha256(ct.read_bytes()).hexdigest()).all()
    assert record["settings"]["pyradiomics/CT.yaml"]["sha256"] == ct_rows["settings_sha256"].iloc[0]
    # every table and picture of the run, with its full hash
    manifest = pd.read_csv(results / "provenance" / "manifest.tsv", sep="\t").set_index("path")
    for table in (
        "features.parquet",
        "features_long.csv",
        "delta_radiomics.csv",
        "timeline.tsv",
        "robustness/icc.csv",
        "negative_controls/association.csv",
        "harmonised/modelling_table.csv",
        "survival/summary.json",
        "survival/km.png",
        "qc/counts.tsv",
        "provenance/config.yaml",
        "provenance/settings/roi_names.yaml",
    ):
        assert manifest.loc[table, "sha256"] == sha256(results / table), table
    assert manifest["sha256"].str.len().eq(64).all()
    pictures = manifest[manifest["kind"] == "picture"].index
    assert sum(p.startswith("qc/overlays/") for p in pictures) > 10 and "harmonised/before_after.png" in pictures
    assert not any(p.startswith(("images/", "masks/", "orders/")) for p in manifest.index)
    assert record["manifest"]["sha256"] == sha256(results / "provenance" / "manifest.tsv")
    assert record["manifest"]["path"] == "provenance/manifest.tsv"
    assert not any(p.endswith(".snakemake_timestamp") for p in manifest.index)


def test_radflow_verify_names_a_changed_table(demo_run, tmp_path):
    """`radflow verify` passes on the run's own folder; a copy with one byte changed in a table, a settings copy
    that is not the one the features were made with, and a missing picture are each named."""
    import shutil
    import subprocess
    import sys

    verify = [sys.executable, "-m", "radflow.cli", "verify"]
    proc = subprocess.run([*verify, str(demo_run / "results")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all as the run wrote them" in proc.stdout
    copy = tmp_path / "results"
    shutil.copytree(demo_run / "results", copy, ignore=shutil.ignore_patterns("images", "masks"))
    table = copy / "delta_radiomics.csv"
    data = bytearray(table.read_bytes())
    data[len(data) // 2] ^= 1
    table.write_bytes(bytes(data))
    (copy / "survival" / "km.png").unlink()
    settings = copy / "provenance" / "settings" / "pyradiomics" / "CT.yaml"
    settings.write_text(settings.read_text().replace("binWidth: 25", "binWidth: 10"))
    proc = subprocess.run([*verify, str(copy)], capture_output=True, text=True)
    assert proc.returncode == 1
    out = proc.stdout
    assert "changed: delta_radiomics.csv" in out and "missing: survival/km.png" in out
    assert "changed: provenance/settings/pyradiomics/CT.yaml" in out
    assert "settings: features.parquet was made with CT.yaml" in out
    assert "changed: features.parquet" not in out


def _contoured_above(planes: dict, step: float, z0: float) -> float:
    """mm³ of a contoured ROI above the height z0: each plane's polygons (even-odd: shoelace areas, holes
    negative by nesting are not in the demo) stand for a slab of `step` around the plane."""
    total = 0.0
    for z, polys in planes.items():
        area = sum(
            abs(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1))) / 2 for p in polys
        )
        total += area * min(max(z + step / 2 - z0, 0.0), step)
    return total


def test_dvh_of_the_demo_has_its_closed_form(demo_run, demo_dir, truth):
    """The demo's RTDOSE is linear along z (radflow.demo.DEMO_DOSE): the DVH of a contoured ROI is then a sum over its
    contour planes of polygon area times the part of the plane's slab above each dose's height, computed here from
    the RTSTRUCT with pydicom. GTVp and GTVn of TCGA-00-0001 (wholly inside the dose grid): every metric within 1 %
    or 0.1 Gy; the table's rows, the curves and a DVH picture per patient and dose grid."""
    import pydicom
    from PIL import Image
    from scipy.optimize import brentq

    p = truth["patients"]["TCGA-00-0001"]
    dose = p["rtdose"]
    table = pd.read_parquet(demo_run / "results" / "dose" / "dvh.parquet")
    mine = table[table["dose_series_uid"] == dose["series_uid"]].set_index("roi")
    assert set(mine.index) == {"GTVp", "GTVn", "Parotid_L", "Parotid_R", "SpinalCord"}
    assert (mine["status"] == "ok").all() and (mine["dose_summation_type"] == "PLAN").all()
    # the ROIs of the structure set the dose's plan references (RTDOSE -> RTPLAN -> RTSTRUCT)
    assert mine["structure_sets_by"].str.startswith("plan: the structure set RTPLAN '").all()
    rs_path = next(next((demo_dir / "TCGA-HNSC" / "TCGA-00-0001").rglob("*RTSTRUCT*")).iterdir())
    rs = pydicom.dcmread(rs_path)
    names = {int(r.ROINumber): str(r.ROIName) for r in rs.StructureSetROISequence}
    for roi, original in (("GTVp", "GTV"), ("GTVn", "GTVn")):
        number = next(n for n, name in names.items() if name == original)
        contours = next(c for c in rs.ROIContourSequence if int(c.ReferencedROINumber) == number).ContourSequence
        planes: dict = {}
        for c in contours:
            pts = np.asarray(c.ContourData, float).reshape(-1, 3)
            planes.setdefault(round(float(pts[0, 2]), 3), []).append(pts[:, :2])
        zs = sorted(planes)
        step = float(np.median(np.diff(zs)))
        row = mine.loc[roi]
        assert row["roi_original"] == original and row["outside_dose_grid_pct"] == 0

        def above(d):
            return _contoured_above(
                planes, step, dose["centre"][2] + (d - dose["base_gy"]) / dose["gradient_gy_per_mm"]
            )

        def dose_at(z):
            return dose["base_gy"] + dose["gradient_gy_per_mm"] * (z - dose["centre"][2])

        lo, hi = dose_at(zs[0] - step / 2), dose_at(zs[-1] + step / 2)
        total = above(lo - 1)
        levels = np.linspace(lo, hi, 4001)
        v = np.array([above(d) for d in levels])
        want = dict(
            volume_cc=total / 1000,
            dmean_gy=lo + float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(levels))) / total,
            dmin_gy=lo,
            dmax_gy=hi,
            **{f"d{x}_pct_gy": brentq(lambda d: above(d) - total * x / 100, lo, hi) for x in (98, 95, 50, 2)},
            d0_03cc_gy=brentq(lambda d: above(d) - 30.0, lo, hi),
            v60gy_pct=100 * above(60.0) / total,
        )
        # doses within 1 % or 0.1 Gy, V x Gy within 1 % of the volume (as tests/test_dvh.py: the 0.25 mm sampling
        # puts a level up to half a sample off, 0.8 % of this GTV's volume at its widest plane)
        off = {
            k: (row[k], w)
            for k, w in want.items()
            if not abs(row[k] - w) <= (1.0 if k.startswith("v") else max(0.1, 0.01 * abs(w)))
        }
        assert not off, (roi, off)
    curves = pd.read_parquet(demo_run / "results" / "dose" / "dvh_curves.parquet")
    gtv = curves[(curves["dose_series_uid"] == dose["series_uid"]) & (curves["roi"] == "GTVp")]
    assert gtv["volume_pct"].iloc[0] == 100 and (np.diff(gtv["volume_cc"]) <= 0).all()
    picture = demo_run / "results" / "qc" / "dvh" / f"TCGA-00-0001_{dose['series_uid']}.png"
    assert Image.open(picture).text["Title"].startswith("TCGA-00-0001 · RTDOSE (PLAN) of plan 'HN 70/35' · series …")


def test_dose_columns_of_the_modelling_table(demo_run, truth):
    """The demo scenario's model.dose ({GTVp: [Dmean, D95, D2], Parotid_L: [Dmean, V5Gy]}): the one patient with an
    RTDOSE has its DVH metrics as columns, equal to results/dose/dvh.parquet's; the others have none, and the
    dictionary says what the columns are."""
    table = pd.read_csv(demo_run / "results" / "modelling_table.csv").set_index("patient_id")
    dvh = pd.read_parquet(demo_run / "results" / "dose" / "dvh.parquet").set_index("roi")
    dose = truth["patients"]["TCGA-00-0001"]["rtdose"]
    row = table.loc["TCGA-00-0001"]
    assert row["dose_series_uid"] == dose["series_uid"]
    assert (
        row["dose_GTVp_Dmean"] == dvh.loc["GTVp", "dmean_gy"] and row["dose_GTVp_D95"] == dvh.loc["GTVp", "d95_pct_gy"]
    )
    assert row["dose_GTVp_D2"] == dvh.loc["GTVp", "d2_pct_gy"]
    assert row["dose_Parotid_L_Dmean"] == dvh.loc["Parotid_L", "dmean_gy"]
    assert row["dose_Parotid_L_V5Gy"] == dvh.loc["Parotid_L", "v5gy_pct"]
    # the GTV's mean dose is the base dose at its centre (a linear dose, a near-symmetric ellipsoid)
    assert row["dose_GTVp_Dmean"] == pytest.approx(dose["base_gy"], abs=0.5)
    others = table.drop(index="TCGA-00-0001")
    assert others["dose_GTVp_Dmean"].isna().all() and others["dose_series_uid"].isna().all()
    columns = pd.read_csv(demo_run / "results" / "modelling_table_columns.tsv", sep="\t", keep_default_na=False)
    c = columns.set_index("column")
    assert c.loc["dose_GTVp_Dmean", "kind"] == "dose" and c.loc["dose_GTVp_Dmean", "unit"] == "Gy"
    assert c.loc["dose_Parotid_L_V5Gy", "unit"] == "%" and c.loc["dose_GTVp_D95", "values"] == 1


def test_dose_features_are_rows_of_the_features_table(demo_run, features, truth):
    """Each ROI of the planning CT's structure set gets dose features from the RTDOSE (modality RTDOSE, Gy, no shape
    class); on the demo's linear dose the first-order mean inside the GTVs (masks on the 4 mm dose grid) is the
    DVH's Dmean from the contours within 0.5 Gy (2 mm of the 0.25 Gy/mm gradient)."""
    dose = truth["patients"]["TCGA-00-0001"]["rtdose"]
    rows = features[features["modality"] == "RTDOSE"].set_index("roi")
    assert set(rows.index) == {"GTVp", "GTVn", "Parotid_L", "Parotid_R", "SpinalCord"}
    assert (rows["series_uid"] == dose["series_uid"]).all() and (rows["image_units"] == "Gy").all()
    assert (rows["status"] == "ok").all() and rows["original_shape_MeshVolume"].isna().all()
    assert rows["settings"].eq("RTDOSE.yaml").all() and rows["original_glcm_Contrast"].notna().all()
    dvh = pd.read_parquet(demo_run / "results" / "dose" / "dvh.parquet").set_index("roi")
    for roi in ("GTVp", "GTVn"):
        assert rows.loc[roi, "original_firstorder_Mean"] == pytest.approx(dvh.loc[roi, "dmean_gy"], abs=0.5), roi
    # an ROI partly outside the dose grid: its row says so, with the DVH's share, and the ROIs inside say nothing
    clipped = dvh[dvh["outside_dose_grid_pct"] > 0].index
    assert "SpinalCord" in clipped and "GTVp" not in clipped
    for roi in rows.index:
        said = f"{dvh.loc[roi, 'outside_dose_grid_pct']:.1f} % of the ROI lies outside the dose grid"
        assert (said in rows.loc[roi, "reason"]) == (roi in clipped), (roi, rows.loc[roi, "reason"])
    kept = demo_run / "results" / "provenance" / "settings" / "pyradiomics" / "RTDOSE.yaml"
    assert kept.read_bytes() == (demo_run / "config" / "pyradiomics" / "RTDOSE.yaml").read_bytes()


def test_the_paper_folder_states_what_the_run_did(demo_run, features, truth):
    """results/paper/: the methods' numbers are the run's (patients, scanners as the index counts them, kVp and
    kernel from the headers, bin widths per modality, the robustness ratings and the DVH method as their tables
    have them); the checklist holds every item of IBSI-1, CLEAR and METRICS once; the dictionary every feature
    column of the table with its unit; cite.md what this run used."""
    results = demo_run / "results"
    paper = results / "paper"
    methods = (paper / "methods.md").read_text()
    checklist = pd.read_csv(paper / "reporting_checklist.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert checklist.groupby("standard").size().to_dict() == {"IBSI-1": 104, "CLEAR": 58, "METRICS": 30}
    items = checklist.set_index(["standard", "item"])

    ok = features[features["status"] == "ok"]
    assert f"Features were computed for {len(truth['patients'])} patients" in methods
    series = pd.read_parquet(results / "index" / "series.parquet")
    used = series[series["series_uid"].isin(set(ok.loc[ok["modality"] != "RTDOSE", "series_uid"]))]
    scanners = items.loc[("IBSI-1", "7"), "value"]
    for modality, g in used.groupby("modality"):
        listed = scanners.split(f"{ {'PT': 'PET'}.get(modality, modality) }: ")[1].split(";")[0]
        for scanner, n in (g["manufacturer"] + " " + g["manufacturer_model"]).value_counts().items():
            assert f"{scanner} (n = {n})" in listed, (modality, scanner)
    models = {p["scanner_model"] for p in truth["patients"].values()}
    assert all(m in methods for m in models) and len(models) == 2
    n_ct = int((used["modality"] == "CT").sum())
    assert "tube voltage 120 kVp" in methods and f"reconstruction kernel STANDARD (n = {n_ct})" in methods
    assert items.loc[("IBSI-1", "14"), "value"] == f"120 kVp ({n_ct} of {n_ct} series)"
    for text in (
        "a fixed bin width of 25 HU",
        "a fixed bin width of 0.25 SUVbw",
        "a fixed bin width of 0.5 Gy",
        "a fixed bin number of 32",
        "SUVbw, g/ml",
    ):
        assert text in methods, text
    icc = pd.read_csv(results / "robustness" / "icc.csv")
    ratings = re.search(r"was rated ((?:\w+ \(n = \d+\)(?:, )?)+)", methods).group(1)
    assert sum(int(n) for n in re.findall(r"n = (\d+)", ratings)) == len(icc)
    dvh = pd.read_parquet(results / "dose" / "dvh.parquet")
    assert dvh["method"].iloc[0] in methods
    assert "Clinical data: a GDC portal clinical.tsv (the config's clinical files)." in methods

    dictionary = pd.read_csv(paper / "features.tsv", sep="\t", dtype=str, keep_default_na=False)
    from radflow.tables import pyradiomics_columns

    for modality, g in ok.groupby("modality"):
        columns = {c for c in pyradiomics_columns(g) if g[c].notna().any()}
        rows = dictionary[(dictionary["kind"] == "feature") & (dictionary["modality"] == modality)]
        assert set(rows["column"]) == columns and len(rows) == len(columns), modality
    mean = dictionary[dictionary["column"].eq("original_firstorder_Mean")].set_index("modality")
    assert mean.loc[["CT", "PT", "RTDOSE"], "ucum"].tolist() == ["[hnsfld'U]", "{SUVbw}g/ml", "Gy"]
    assert mean["ibsi_code"].eq("Q4LE").all()

    cite = (paper / "cite.md").read_text()
    for key in ("pyradiomics", "IBSI", "Snakemake", "ComBat", "READII", "perturbation", "lifelines", "CLEAR"):
        assert f"**{key}**" in cite, key
    assert "TCGA-CDR" not in cite and "**TCIA**" not in cite  # OS from the clinical file; the demo is synthetic
    assert "<h2>Regions of interest</h2>" in (paper / "methods.html").read_text()


def test_dicom_seg_and_sr_are_read_back_by_others(demo_run, features, tmp_path):
    """dicom_export (on in the demo): every masked series has a SEG and an SR; dciodvfy finds no error in either;
    dcmqi's segimage2itkimage reads every segment back voxel-identical to radflow's NIfTI mask; dcmqi's
    tid1500reader gives every feature value of the table with its unit, coded by IBSI where the dictionary says so,
    and the SR's exact values are the table's."""
    from dicom_readback import check_series_export

    results = demo_run / "results"
    dictionary = pd.read_csv(results / "paper" / "features.tsv", sep="\t", dtype=str, keep_default_na=False)
    ok = features[(features["status"] == "ok") & (features["modality"] != "RTDOSE")]
    folders = sorted((results / "dicom").glob("*/*"))
    assert {(f.parent.name, f.name) for f in folders} == set(zip(ok["patient_id"], ok["series_uid"]))
    for folder in folders:
        rows = ok[(ok["patient_id"] == folder.parent.name) & (ok["series_uid"] == folder.name)]
        check_series_export(folder, results, rows, dictionary, tmp_path)


def test_the_report_in_a_real_browser(demo_run, features):
    """snakemake --report, opened in headless Chromium as a person would: no console error or uncaught exception,
    every embedded picture decodes, the categories are there, the Paper category shows the methods (with the run's
    CT bin width) and the checklist (IBSI-1, CLEAR and METRICS rows). A screenshot of the methods is kept next to
    the report (report_methods.png)."""
    import base64
    import time

    from browser import Browser
    from conftest import run_snakemake

    report = demo_run / "report.html"
    if not report.exists():
        proc = run_snakemake(demo_run, "--report", "report.html")
        assert proc.returncode == 0, proc.stderr[-3000:]
    browser = Browser()
    try:
        browser.open(report.as_uri())
        time.sleep(1.5)  # the report renders itself after the load event
        sidebar = browser.evaluate("document.body.innerText")
        for category in ("Cohort", "Dose", "Feature distributions", "Mask overlays", "Paper", "Robustness"):
            assert category in sidebar, category
        found, decoded = browser.evaluate(
            """(async () => {
                const uris = Array.from(document.documentElement.innerHTML.matchAll(/data:image\\/png;[^"'\\s)]+/g));
                let decoded = 0;
                for (const [uri] of uris) {
                    const img = new Image(); img.src = uri;
                    try { await img.decode(); if (img.naturalWidth > 0) decoded++; } catch (e) {}
                }
                return [uris.length, decoded];
            })()"""
        )
        overlays = len(list((demo_run / "results" / "qc" / "overlays").rglob("*.png")))
        assert found == decoded and decoded >= overlays > 50

        def show(category, file):
            browser.evaluate(
                f"Array.from(document.querySelectorAll('a')).find(e => e.textContent.trim() === '{category}').click()"
            )
            time.sleep(0.5)
            browser.evaluate(
                "Array.from(document.querySelectorAll('td')).find(e => e.textContent.trim() === "
                f"'{file}').parentElement.querySelector('a[iconname=eye]').click()"
            )
            time.sleep(1.5)
            src = browser.evaluate("document.querySelector('iframe').src")
            return base64.b64decode(src.split("base64,", 1)[1]).decode()

        methods = show("Paper", "results/paper/methods.html")
        assert "<h1>Methods: image processing and feature extraction</h1>" in methods
        assert "a fixed bin width of 25 HU" in methods
        browser.screenshot(demo_run / "report_methods.png")
        browser.open(report.as_uri())  # from the top again
        time.sleep(1.5)
        checklist = show("Paper", "results/paper/reporting_checklist.html")
        for text in ('<td class="standard">IBSI-1</td>', '<td class="standard">CLEAR</td>', "Scanner type"):
            assert text in checklist, text
        problems = [c for c in browser.console if c["level"] in ("error", "exception")]
        assert not problems, problems
    finally:
        browser.close()


def test_features_equal_pyradiomics_own(demo_run, features, tmp_path):
    """Every image ROI of the demo (CT, PET, MR), every feature: radflow's extraction equals the one with
    pyradiomics' own shape coefficients and preparation on the same image and mask, bit for bit (the shape features
    read from the mesh's sums to 1e-12 relative)."""
    from pyradiomics_reference import compare_with_pyradiomics

    ok = features[(features["status"] == "ok") & (features["modality"] != "RTDOSE")]
    assert compare_with_pyradiomics(demo_run, features, tmp_path) == len(ok) > 50
