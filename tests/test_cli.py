"""The command line calls the same functions as the rules, and fails with a clear message."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from conftest import REPO

RADFLOW = [sys.executable, "-m", "radflow.cli"]


def run(*args, cwd=REPO):
    return subprocess.run([*RADFLOW, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)


def _folder(demo_dir, pattern):
    return next(p for p in (demo_dir / "TCGA-HNSC" / "TCGA-00-0001").rglob(pattern) if p.is_dir())


def test_convert_and_masks(demo_dir, truth, tmp_path):
    ct_dir, rs_dir = _folder(demo_dir, "*CT HEAD NECK*"), _folder(demo_dir, "*RTSTRUCT*")
    proc = run("convert", ct_dir, tmp_path / "ct.nii.gz")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["units"] == "HU"
    assert sitk.ReadImage(str(tmp_path / "ct.nii.gz")).GetSize() == (256, 256, 72)

    proc = run("masks", next(rs_dir.iterdir()), ct_dir, tmp_path / "masks")
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (tmp_path / "masks").glob("*.nii.gz"))
    assert names == sorted(f"{r['standard']}.nii.gz" for r in truth["patients"]["TCGA-00-0001"]["rois"].values())
    gtv = json.loads((tmp_path / "masks" / "GTVp.json").read_text())
    assert gtv["volume_mm3"] == pytest.approx(truth["patients"]["TCGA-00-0001"]["rois"]["GTV"]["volume_mm3"], rel=0.02)


def test_index_and_clinical(demo_dir, truth, tmp_path):
    proc = run("index", demo_dir / "TCGA-HNSC", tmp_path / "index", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    # NBIA layout: collection / patient / study / series folder; one series per folder
    folders = [p for p in (demo_dir / "TCGA-HNSC").glob("*/*/*") if p.is_dir()]
    assert len(pd.read_parquet(tmp_path / "index" / "series.parquet")) == len(folders) > 20
    proc = run("clinical", demo_dir / "clinical.tsv", "--out", tmp_path / "clinical.csv")
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(tmp_path / "clinical.csv")) == len(truth["clinical"])
    assert f"{sum(c['os_event'] for c in truth['clinical'].values())} deaths" in proc.stdout


def test_clear_errors(tmp_path):
    proc = run("index", tmp_path / "nowhere", tmp_path / "index")
    assert proc.returncode == 2 and "nowhere" in proc.stderr and "does not exist" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run("convert", tmp_path / "empty", tmp_path / "x.nii.gz")
    assert proc.returncode == 2 and "expected one CT, MR or PET series, found 0 (0 files; " in proc.stderr
    proc = run("convert", tmp_path / "nowhere", tmp_path / "x.nii.gz")
    assert proc.returncode == 2 and f"{tmp_path / 'nowhere'}: no such folder" in proc.stderr
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("not DICOM")
    proc = run("index", tmp_path / "text", tmp_path / "index")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"radflow index: error: nothing to convert. {tmp_path / 'text'}: none of its 1 files" in proc.stderr
    assert f"Every file and series with its reason: {tmp_path / 'index' / 'problems.tsv'}" in proc.stderr
    assert pd.read_csv(tmp_path / "index" / "problems.tsv", sep="\t")["item"].tolist() == [
        str(tmp_path / "text" / "a.txt")
    ]


def test_the_command_line_runs_outside_the_checkout(demo_dir, truth, tmp_path):
    """From a folder that is not the checkout (no config/ there): index, convert, masks and features take radflow's
    shipped ROI names and settings, and features the workflow's defaults (standard ROIs, the voxel budget)."""
    import hashlib

    elsewhere = tmp_path / "study"
    elsewhere.mkdir()
    proc = run("--version", cwd=elsewhere)
    assert proc.returncode == 0 and proc.stdout.startswith("radflow ")
    proc = run("index", demo_dir / "TCGA-HNSC", "index", "--threads", "1", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    rois = pd.read_parquet(elsewhere / "index" / "rois.parquet")
    assert "GTVp" in set(rois["roi"])  # the shipped aliases were read
    ct_dir, rs_dir = _folder(demo_dir, "*CT HEAD NECK*"), _folder(demo_dir, "*RTSTRUCT*")
    assert run("convert", ct_dir, "ct.nii.gz", cwd=elsewhere).returncode == 0
    proc = run("masks", next(rs_dir.iterdir()), ct_dir, "masks", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    proc = run("features", "ct.nii.gz", "masks", "--out", "features.csv", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(elsewhere / "features.csv").set_index("roi")
    ct_settings = hashlib.sha256((REPO / "config" / "pyradiomics" / "CT.yaml").read_bytes()).hexdigest()
    assert table["settings_sha256"].eq(ct_settings).all() and table["settings"].eq("CT.yaml").all()
    assert table.loc["GTVp", "status"] == "ok" and table.loc["GTVp", "original_firstorder_Mean"] > 0
    standard = {r["standard"] for r in truth["patients"]["TCGA-00-0001"]["rois"].values()}
    assert set(table.index) == standard


def test_the_command_lines_defaults_are_the_schemas():
    """An option that a config key also sets defaults to the schema's value (issue 33: one default per key), read
    here from the schema file itself; the settings objects built from an empty config carry the same values, and a
    perturbation or control without a seed takes the schema's seed."""
    from radflow.cli import build_parser
    from radflow.config.build import build_settings
    from radflow.config.check import SCHEMA_PATH
    from radflow.modalities import DEFAULT_MODALITIES

    schema = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]
    parser = build_parser()
    index = parser.parse_args(["index", "dicom", "out"])
    assert index.threads == schema["index_threads"]["default"] == 2
    assert index.series_selection == schema["series_selection"]["default"]
    assert index.modalities == list(DEFAULT_MODALITIES)  # the schema's default is built from this table
    assert index.pet_fallback == schema["pet_fallback"]["default"]
    masks = parser.parse_args(["masks", "rs.dcm", "series", "out"])
    assert masks.contour_overlap == schema["contour_overlap"]["default"]
    features = parser.parse_args(["features", "image.nii.gz", "masks", "--out", "f.csv"])
    assert features.feature_rois == schema["feature_rois"]["default"]
    assert features.max_roi_voxels == schema["max_roi_voxels"]["default"] == 4_000_000
    trust = build_settings(
        {"robustness": {"perturbations": [{"rotation_deg": 4}]}, "negative_controls": {"controls": ["shuffled_roi"]}}
    ).perturb
    seeds = [schema[k]["properties"]["seed"]["default"] for k in ("robustness", "negative_controls")]
    assert trust.robustness.seed == trust.controls.seed == seeds[0] == seeds[1] == 20261130
    assert trust.robustness.volume_tolerance == schema["robustness"]["properties"]["volume_tolerance"]["default"]
