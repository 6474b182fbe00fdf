"""The config schema is the one place defaults live: a config that sets only the required keys gets them all (and
is told which), and the study template config/config.yaml writes out the same values."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
import yaml
from conftest import REPO, snakemake_env

from radflow.config.check import ConfigError, check_config, defaults_note, fill_defaults, load_schema, schema_problems

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def _defaults(schema: dict, prefix="") -> dict:
    out = {}
    for key, sub in schema.get("properties", {}).items():
        nested = sub.get("properties") and isinstance(sub.get("default", {}), dict)  # (source.images: null)
        if "default" in sub and not nested:
            out[prefix + key] = sub["default"]
        if nested:
            out.update(_defaults(sub, f"{prefix}{key}."))
    return out


def test_a_minimal_config_gets_every_default(tmp_path):
    (tmp_path / "dicom").mkdir()
    (tmp_path / "clinical.tsv").write_text("cases.submitter_id\tdemographic.vital_status\nTCGA-00-0001\tAlive\n")
    config = dict(
        dicom_root=str(tmp_path / "dicom"),
        clinical=[str(tmp_path / "clinical.tsv")],
        roi_names=str(REPO / "config" / "roi_names.yaml"),
        pyradiomics_settings=str(REPO / "config" / "pyradiomics"),
    )
    filled = check_config(config, SCHEMA, workdir=tmp_path)
    schema = load_schema(SCHEMA)
    # every key the config left out is named, with the value it took; the keys it set are not
    assert {"model.modality", "model.roi", "survival.min_events", "qc_overlays", "robustness"} <= set(filled)
    assert not {"dicom_root", "clinical", "roi_names", "model"} & set(filled)
    note = defaults_note(filled, config)
    assert "survival.min_events = 10" in note and "robustness = null" in note
    for key, value in _defaults(schema).items():
        node = config
        for part in key.split("."):
            node = node[part]
        if key not in ("roi_names", "pyradiomics_settings", "clinical"):  # given above
            assert node == value, key
    assert config["survival"] == dict(
        endpoint="os", min_events=10, penalizer=0.5, l1_ratio=0.5, folds=5, min_icc=None, harmonised=False
    )
    assert config["robustness"] is None and config["negative_controls"] is None and config["harmonisation"] is None
    assert config["modalities"] == ["CT", "PT", "MR"] and config["contour_overlap"] == "even-odd"
    assert config["model"] == dict(modality="CT", roi="GTVp", time_point="baseline", studies=None, dose=None)
    assert config["qc_overlays"] == "model"
    # a value the user set is kept, nested ones too
    mine = fill_defaults(dict(survival=dict(folds=3), qc_overlays="none"), schema)
    assert mine["survival"]["folds"] == 3 and mine["survival"]["endpoint"] == "os" and mine["qc_overlays"] == "none"


def test_the_study_template_writes_out_the_schema_defaults():
    """config/config.yaml is a study's template: every key with a default is written out with that default (a
    study that deletes a key gets what it read); only dicom_root is the user's to fill in."""
    template = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for key, value in _defaults(load_schema(SCHEMA)).items():
        node = template
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"config/config.yaml does not write out {key}"
            node = node[part]
        assert node == value, f"config/config.yaml sets {key} = {node!r}, the schema's default is {value!r}"
    assert template["robustness"] is None and template["negative_controls"] is None
    assert template["harmonisation"] is None and template["demo_cohort"] is None


def test_the_demo_scenario_is_not_a_studys_base():
    """The demo's own values (every trust analysis, min_events 4, every overlay) live in its scenario file only."""
    from conftest import DEMO_CONFIG

    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    assert demo["robustness"]["perturbations"] and demo["negative_controls"] and demo["harmonisation"]
    assert demo["survival"]["min_events"] == 4 and demo["qc_overlays"] == "all"
    assert schema_problems(demo, SCHEMA) == []


def test_image_modalities_come_from_the_one_table(monkeypatch):
    """model.modality and modalities are checked against radflow.modalities: a new modality is one entry there."""
    from radflow.modalities import IMAGE_MODALITIES, ImageModality

    config = dict(dicom_root="d", clinical=["c"], model=dict(modality="NM", roi="GTVp"), modalities=["CT", "NM"])
    assert schema_problems(config, SCHEMA) == [
        "config key modalities.1 = 'NM': expected one of CT, PT, MR",
        "config key model.modality = 'NM': expected one of CT, PT, MR, RTDOSE",  # (RTDOSE: the dose features)
    ]
    nm = ImageModality("NM", "nuclear medicine", units="counts", window_percentiles=(0.0, 99.5), window_from_zero=True)
    monkeypatch.setitem(IMAGE_MODALITIES, "NM", nm)
    assert schema_problems(config, SCHEMA) == []
    assert load_schema(SCHEMA)["properties"]["modalities"]["default"] == ["CT", "PT", "MR"]  # the default stays


@pytest.mark.workflow
def test_the_workflow_runs_from_a_minimal_config(tmp_path, demo_dir):
    """Only the required keys: snakemake plans the whole run (a dry run) with the schema's defaults."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(
        yaml.safe_dump(
            dict(
                dicom_root=str(demo_dir / "TCGA-HNSC"),
                clinical=[str(demo_dir / "clinical.tsv")],
                roi_names=str(REPO / "config" / "roi_names.yaml"),
                pyradiomics_settings=str(REPO / "config" / "pyradiomics"),
            )
        )
    )
    proc = subprocess.run(
        ["snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--cores", "1", "-n"],
        cwd=tmp_path,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "index" in proc.stdout


def test_a_download_source_is_one_entry(monkeypatch, tmp_path):
    """source.images.from, what it needs and the command line's option come from radflow.download.sources: a new
    source is its module and one entry there (issue 33)."""
    from dataclasses import replace

    from radflow.cli import build_parser
    from radflow.download.sources import IMAGE_SOURCES

    config = dict(dicom_root="d", clinical=["c"], source=dict(images={"from": "xnat", "collection": "HNSC"}))
    assert schema_problems(config, SCHEMA) == [
        "config key source.images.from = 'xnat': expected one of tcia, manifest, idc"
    ]
    xnat = replace(IMAGE_SOURCES["idc"], name="xnat", needs="project", help="an XNAT project", metavar="PROJECT")
    monkeypatch.setitem(IMAGE_SOURCES, "xnat", xnat)
    assert schema_problems(config, SCHEMA) == []
    with pytest.raises(ConfigError, match=r"source.images.from = 'xnat' needs source.images.project"):
        check_config(dict(config, dicom_root=str(tmp_path)), SCHEMA, workdir=tmp_path, settings=False)
    args = build_parser().parse_args(["download", "--xnat", "HNSC", "--dest", "d"])
    assert args.xnat == "HNSC"
    manifest = dict(config, source=dict(images={"from": "manifest", "manifest": str(tmp_path / "none.tcia")}))
    with pytest.raises(ConfigError, match=r"source.images.manifest = '.*none.tcia': the file does not exist"):
        check_config(dict(manifest, dicom_root=str(tmp_path)), SCHEMA, workdir=tmp_path, settings=False)


def test_a_perturbation_is_one_entry(monkeypatch):
    """A perturbation chain's keys, its name and what it does come from radflow.trust.robustness.PERTURBATIONS: a
    new step is one entry there, which the schema, the name and the chain all take (issue 33)."""
    import numpy as np
    import SimpleITK as sitk

    from radflow.trust import robustness

    chain = dict(rotation_deg=4, blur_mm=1.5)
    config = dict(dicom_root="d", clinical=["c"], robustness=dict(perturbations=[chain]))
    assert any("blur_mm" in p for p in schema_problems(config, SCHEMA))  # an unknown key is refused
    too_far = dict(config, robustness=dict(perturbations=[dict(rotation_deg=60)]))
    assert schema_problems(too_far, SCHEMA) == [
        "config key robustness.perturbations.0.rotation_deg = 60: expected a number <= 45"
    ]

    def blur(image, mask, spec, rng, voxels):
        return sitk.SmoothingRecursiveGaussian(image, spec["blur_mm"]), mask, 0.0

    step = robustness.PerturbationStep(
        schema={"blur_mm": {"type": "number", "minimum": 0}},
        asked=lambda spec: bool(spec.get("blur_mm")),
        name=lambda spec: [f"blur{spec['blur_mm']:g}mm"] if spec.get("blur_mm") else [],
        apply=blur,
    )
    monkeypatch.setattr(robustness, "PERTURBATIONS", (*robustness.PERTURBATIONS, step))
    assert schema_problems(config, SCHEMA) == []
    assert robustness.perturbation_name(chain) == "rotation+4deg+blur1.5mm"
    image = sitk.GetImageFromArray(np.random.default_rng(1).normal(0, 100, (12, 20, 20)).astype(np.int16))
    mask = sitk.GetImageFromArray((np.indices((12, 20, 20))[0] > 3).astype(np.uint8))
    blurred, _, _ = robustness.perturb(image, mask, dict(blur_mm=1.5), np.random.default_rng(0), 100)
    values = sitk.GetArrayViewFromImage(blurred)
    assert values.dtype == np.int16 and values.std() < 0.5 * sitk.GetArrayViewFromImage(image).std()


def test_model_roi_must_be_a_standard_name(tmp_path):
    """model.roi: GTV (an original spelling, not a standard name) is named at start-up, not found hours later as an
    empty modelling table; labels of a standard name (GTVp_2, GTVp_union) pass."""
    (tmp_path / "dicom").mkdir()
    base = dict(
        dicom_root=str(tmp_path / "dicom"),
        roi_names=str(REPO / "config" / "roi_names.yaml"),
        pyradiomics_settings=str(REPO / "config" / "pyradiomics"),
    )
    with pytest.raises(ConfigError, match=r"model.roi = 'GTV': not a standard name of .*roi_names.yaml.*GTVp"):
        check_config(dict(base, model=dict(roi="GTV")), SCHEMA, workdir=tmp_path, settings=False)
    for label in ("GTVp", "GTVp_2", "Parotid_L", "GTVn_union"):
        check_config(dict(base, model=dict(roi=label)), SCHEMA, workdir=tmp_path, settings=False)


def test_model_dose_names_standard_rois_and_dvh_metrics(tmp_path):
    """model.dose: both documented forms give one mapping; a non-standard ROI and a metric the DVH table does not
    have are named at start-up."""
    (tmp_path / "dicom").mkdir()
    base = dict(
        dicom_root=str(tmp_path / "dicom"),
        roi_names=str(REPO / "config" / "roi_names.yaml"),
        pyradiomics_settings=str(REPO / "config" / "pyradiomics"),
    )
    listed = dict(base, model=dict(dose=[{"GTVp": ["Dmean", "D95"]}, {"Parotid_L": ["Dmean", "V30Gy_cc"]}]))
    check_config(listed, SCHEMA, workdir=tmp_path, settings=False)
    assert listed["model"]["dose"] == {"GTVp": ["Dmean", "D95"], "Parotid_L": ["Dmean", "V30Gy_cc"]}
    mapping = dict(base, model=dict(dose={"GTVp": ["D0.03cc", "volume"]}))
    check_config(mapping, SCHEMA, workdir=tmp_path, settings=False)
    with pytest.raises(ConfigError) as err:
        check_config(
            dict(base, model=dict(dose={"GTV": ["Dmean"], "GTVp": ["Dmean", "D90", "V35Gy"]})),
            SCHEMA,
            workdir=tmp_path,
            settings=False,
        )
    text = str(err.value)
    assert "config key model.dose.GTV: not a standard name of" in text
    assert "config key model.dose.GTVp = ['Dmean', 'D90', 'V35Gy']: 'D90', 'V35Gy' not a DVH metric; expected " in text
    assert "Dmean, Dmin, Dmax, D98, D95, D50, D2, D0.03cc, V5Gy" in text


def test_feature_rois_has_one_form(tmp_path):
    """The list form of feature_rois (README: [GTVp, Parotid_L]) becomes one hashable form at start-up."""
    (tmp_path / "dicom").mkdir()
    config = dict(dicom_root=str(tmp_path / "dicom"), feature_rois=["GTVp", " Parotid_L"])
    config.update(
        roi_names=str(REPO / "config" / "roi_names.yaml"), pyradiomics_settings=str(REPO / "config" / "pyradiomics")
    )
    check_config(config, SCHEMA, workdir=tmp_path, settings=False)
    assert config["feature_rois"] == ("GTVp", "Parotid_L") and hash(config["feature_rois"])


@pytest.mark.workflow
def test_a_list_of_feature_rois_plans_the_features_jobs(tmp_path, demo_dir):
    """feature_rois: [GTVp, GTVn] through a real snakemake: the index, then a dry run that plans every series and
    features job, the latter with its resources from the list (before: TypeError: unhashable type: 'list' in
    _series_resources)."""
    from conftest import make_project, run_snakemake

    project = make_project(tmp_path / "project", demo_dir, feature_rois=["GTVp", "GTVn"])
    proc = run_snakemake(project, "results/index/series.parquet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_snakemake(project, "-n")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    series = pd.read_parquet(project / "results" / "index" / "series.parquet")
    stats = " ".join(proc.stdout.split())
    assert f"series {int(series['convert'].sum())}" in stats and f"features {int(series['convert'].sum())}" in stats


@pytest.mark.workflow
def test_the_workstation_profile_prints_no_empty_shell_commands(tmp_path, demo_dir):
    """With --printshellcmds every job of a script rule prints "Shell command: None"; the shipped profile (make demo's)
    does not ask for it, so a dry run of a fresh project with it prints none."""
    from conftest import make_project, run_snakemake

    project = make_project(tmp_path / "project", demo_dir)
    noisy = run_snakemake(project, "-n", "-p")
    assert noisy.returncode == 0 and "Shell command: None" in noisy.stdout + noisy.stderr
    quiet = run_snakemake(project, "-n", "--profile", str(REPO / "profiles" / "local"))
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "Shell command" not in quiet.stdout + quiet.stderr and "checkpoint index:" in quiet.stdout + quiet.stderr


def test_library_defaults_are_the_schemas():
    """One default per key: where a library function's keyword stands for a config key (for a caller without a
    config: the tests, the benchmarks, a notebook), its default is the schema's. Two differ on purpose and are named:
    build_index reads with one process unless asked (index_threads is the workflow's), and extract_series has no
    voxel budget unless given one (max_roi_voxels is the workflow's)."""
    import inspect

    from radflow.cohort.delta import delta_table, write_delta_table
    from radflow.dicom.convert import convert_series
    from radflow.dicom.masks import rasterise_roi, write_masks
    from radflow.features import extract_series
    from radflow.features.dvh import dose_to_rois
    from radflow.index import build_index
    from radflow.qc import series_overlays
    from radflow.run.series_job import masks_step
    from radflow.trust.perturbed import chosen_label

    schema = fill_defaults({}, load_schema(SCHEMA))
    keyword = {
        (build_index, "pet_fallback"): "pet_fallback",
        (build_index, "modalities"): "modalities",
        (build_index, "series_selection"): "series_selection",
        (build_index, "manifest"): "manifest",
        (convert_series, "pet_fallback"): "pet_fallback",
        (write_masks, "overlap"): "contour_overlap",
        (rasterise_roi, "overlap"): "contour_overlap",
        (masks_step, "overlap"): "contour_overlap",
        (masks_step, "roi_instances"): "roi_instances",
        (dose_to_rois, "overlap"): "contour_overlap",
        (delta_table, "instances"): "roi_instances",
        (write_delta_table, "instances"): "roi_instances",
        (chosen_label, "instances"): "roi_instances",
        (series_overlays, "instances"): "roi_instances",
    }
    for (function, name), key in keyword.items():
        default = inspect.signature(function).parameters[name].default
        value = list(default) if isinstance(default, tuple) else default
        assert value == schema[key], (function.__name__, name, value, schema[key])
    assert inspect.signature(build_index).parameters["threads"].default == 1 != schema["index_threads"]
    assert inspect.signature(extract_series).parameters["max_roi_voxels"].default is None
