"""A study of one's own: radflow deployed into a study folder with snakedeploy as a Snakemake module, a study config
that is the user's alone (nothing of the demo scenario reaches it), and a results folder that carries the settings
behind its numbers."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import DEMO_CONFIG, DEMO_SUBSET, REPO, copy_run, demo_subset, make_project, snakemake_env

from radflow.tables import RUNTIME_COLUMNS

BIN = Path(sys.executable).parent
TRUST_JOBS = ("perturb", "perturbed_table", "robustness", "negative_controls", "harmonise")


def _job_counts(stdout: str) -> dict[str, int]:
    """{rule: jobs} of snakemake's job stats table."""
    lines = stdout.split("Job stats:", 1)[-1].splitlines()[3:]
    rows = [line.split() for line in lines[: next((i for i, x in enumerate(lines) if x.startswith("total")), 0)]]
    return {r[0]: int(r[1]) for r in rows if len(r) == 2 and r[1].isdigit()}


def _jobs(stdout: str) -> set[str]:
    """The rule names of snakemake's job stats table."""
    return set(_job_counts(stdout))


def _snakemake(cwd, *extra, timeout=1200):
    cmd = [str(BIN / "snakemake"), "--cores", "2", *extra]
    return subprocess.run(cmd, cwd=cwd, env=snakemake_env(), capture_output=True, text=True, timeout=timeout)


def test_a_configfile_replaces_the_study_config_instead_of_merging(demo_dir, tmp_path):
    """A project whose config/config.yaml is the demo scenario (every trust analysis on): `--configfile mine.yaml`
    naming only dicom_root and clinical runs mine alone; its unset keys take the schema's defaults (robustness off,
    min_events 10), and the start-up says so. Nothing is merged from the other file."""
    project = make_project(tmp_path / "project", demo_dir, trust=True)
    assert yaml.safe_load((project / "config" / "config.yaml").read_text())["robustness"]  # the demo's chains
    mine = dict(dicom_root=str(demo_dir / "TCGA-HNSC"), clinical=[str(demo_dir / "clinical.tsv")])
    (project / "mine.yaml").write_text(yaml.safe_dump(mine))
    proc = _snakemake(project, "-s", str(REPO / "workflow" / "Snakefile"), "-n", "--configfile", "mine.yaml")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    jobs = _jobs(proc.stdout)
    assert {"index", "merge_features", "survival", "provenance"} <= jobs and not jobs & set(TRUST_JOBS)
    assert "extended by additional config" not in proc.stdout + proc.stderr
    assert "robustness = null" in proc.stderr and "survival.min_events = 10" in proc.stderr
    # the demo scenario itself, given the same way, brings its own
    proc = _snakemake(project, "-s", str(REPO / "workflow" / "Snakefile"), "-n", "--configfile", str(DEMO_CONFIG))
    assert proc.returncode == 0 and {"perturbed_table", "robustness", "harmonise"} <= _jobs(proc.stdout)


def _export_checkout(dest: Path) -> Path:
    """The checkout's files as a user's clone has them (tracked and new files, no .venv or results)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / name.decode()
        if src.is_file():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            (dest / name.decode()).write_bytes(src.read_bytes())
    return dest


# what a change of a pyradiomics settings file plans besides the extraction it changes: the tables that read the
# features, the paper folder and the provenance
FEATURE_READERS = {
    "merge_features": 1,
    "delta_radiomics": 1,
    "modelling_table": 1,
    "qc_summary": 1,
    "survival": 1,
    "paper": 1,
    "provenance": 1,
    "all": 1,
}


@pytest.mark.workflow
def test_a_study_deployed_with_snakedeploy(demo_run, demo_dir, tmp_path):
    """snakedeploy deploy-workflow from a checkout into an empty folder; a study config of only dicom_root and
    clinical; snakemake there runs radflow as a module: no perturbation or harmonisation is planned or run, the
    features equal the demo run's, the settings kept with the results are the study's own, and a binWidth change
    reruns the CT series and changes the copy and the hash in the table together; radflow verify passes."""
    checkout = _export_checkout(tmp_path / "radflow")
    study = tmp_path / "study"
    proc = subprocess.run(
        [
            str(BIN / "snakedeploy"),
            "deploy-workflow",
            str(checkout),
            str(study),
            "--branch",
            "main",
            "--name",
            "radflow",
        ],
        capture_output=True,
        text=True,
        env=snakemake_env(),
    )
    assert proc.returncode == 0, proc.stderr
    # the study's own template: config.yaml, roi_names.yaml, the pyradiomics settings, profiles
    for name in ("config.yaml", "roi_names.yaml", "pyradiomics/CT.yaml", "pyradiomics/PT.yaml", "pyradiomics/MR.yaml"):
        assert (study / "config" / name).read_bytes() == (REPO / "config" / name).read_bytes(), name
    assert (study / "profiles" / "local" / "config.yaml").is_file() and (study / "profiles" / "slurm").is_dir()
    snakefile = study / "workflow" / "Snakefile"
    text = snakefile.read_text()
    assert "module radflow:" in text and "use rule * from radflow" in text
    # snakedeploy 0.17's local provider writes the module's path relative to the checkout ("workflow/Snakefile"),
    # which Snakemake reads relative to the study's workflow/: README "Your own study" gives this one-line fix
    assert '"workflow/Snakefile"' in text
    snakefile.write_text(text.replace('"workflow/Snakefile"', f'"{checkout}/workflow/Snakefile"'))

    # two demo patients hold every modality and relation of the demo (conftest.DEMO_SUBSET)
    root = demo_subset(demo_dir, tmp_path / "dicom")
    (study / "config" / "config.yaml").write_text(
        yaml.safe_dump(dict(dicom_root=str(root), clinical=[str(demo_dir / "clinical.tsv")]))
    )
    plan = _snakemake(study, "-n")
    assert plan.returncode == 0, plan.stdout[-2000:] + plan.stderr[-3000:]
    assert not _jobs(plan.stdout) & set(TRUST_JOBS) and "provenance" in _jobs(plan.stdout)
    run = _snakemake(study)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    results = study / "results"
    assert not (results / "perturbed").exists() and not (results / "harmonised").exists()
    assert not any("perturb" in p.name or "harmonise" in p.name for p in (study / "logs").rglob("*"))
    # overlays of the model's ROI only (the template's qc_overlays: model)
    overlays = {p.stem for p in (results / "qc" / "overlays").rglob("*.png")}
    assert overlays and all(name.startswith("GTVp") for name in overlays)

    keys = ["patient_id", "series_uid", "roi_label"]
    mine = pd.read_parquet(results / "features.parquet").drop(columns=RUNTIME_COLUMNS, errors="ignore")
    demo = pd.read_parquet(demo_run / "results" / "features.parquet").drop(columns=RUNTIME_COLUMNS, errors="ignore")
    demo = demo[demo["patient_id"].isin(DEMO_SUBSET)]
    assert len(mine) == len(demo) > 20
    mine, demo = mine.set_index(keys).sort_index(), demo.set_index(keys).sort_index()
    pd.testing.assert_frame_equal(mine, demo.loc[mine.index, mine.columns])

    kept = results / "provenance" / "settings" / "pyradiomics" / "CT.yaml"
    assert kept.read_bytes() == (study / "config" / "pyradiomics" / "CT.yaml").read_bytes()
    as_run = yaml.safe_load((results / "provenance" / "config.yaml").read_text())
    assert as_run["robustness"] is None and as_run["survival"]["min_events"] == 10
    verify = [sys.executable, "-m", "radflow.cli", "verify", "results"]
    assert subprocess.run(verify, cwd=study, capture_output=True, text=True).returncode == 0

    # the study changes its CT bin width: the CT features are extracted again, and only what reads them follows
    # (not the conversion, the masks, the overlays or the dose); the copy and the table's hash follow
    settings = study / "config" / "pyradiomics" / "CT.yaml"
    settings.write_text(settings.read_text().replace("binWidth: 25", "binWidth: 10"))
    new_hash = hashlib.sha256(settings.read_bytes()).hexdigest()
    plan = _snakemake(study, "-n")
    assert plan.returncode == 0, plan.stdout[-2000:] + plan.stderr[-3000:]
    ct_series = mine.loc[mine["modality"] == "CT"].reset_index()[["patient_id", "series_uid"]].drop_duplicates()
    assert _job_counts(plan.stdout) == {"features": len(ct_series), **FEATURE_READERS}
    run = _snakemake(study)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    after = pd.read_parquet(results / "features.parquet").set_index(keys).sort_index()
    ct = after["modality"] == "CT"
    assert after.loc[ct, "settings_sha256"].eq(new_hash).all()
    assert after.loc[~ct, "settings_sha256"].isin(mine["settings_sha256"]).all()  # PET, MR: as before
    assert kept.read_bytes() == settings.read_bytes()
    ok = ct & after["status"].eq("ok")
    assert (after.loc[ok, "original_glcm_JointEntropy"] > mine.loc[after[ok].index, "original_glcm_JointEntropy"]).all()
    proc = subprocess.run(verify, cwd=study, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    # the paper folder says what the run did: 10 HU now, and so does the checklist
    paper = results / "paper"
    methods = (paper / "methods.md").read_text()
    assert "a fixed bin width of 10 HU" in methods and "bin width of 25 HU" not in methods
    checklist = pd.read_csv(paper / "reporting_checklist.tsv", sep="\t", dtype=str).set_index(["standard", "item"])
    assert "CT: fixed bin size (FBS), 10 HU" in checklist.loc[("IBSI-1", "56b"), "value"]

    # a change of the dose features' settings: their one job (one RTDOSE in the demo) and its readers, not the dose
    dose_settings = study / "config" / "pyradiomics" / "RTDOSE.yaml"
    dose_settings.write_text(dose_settings.read_text().replace("binWidth: 0.5", "binWidth: 1"))
    plan = _snakemake(study, "-n")
    assert plan.returncode == 0, plan.stdout[-2000:] + plan.stderr[-3000:]
    assert _job_counts(plan.stdout) == {"dose_features": 1, **FEATURE_READERS}
    # ... and of the CT resampling: run, the methods, the checklist and the dictionary follow (the dose's too)
    settings.write_text(settings.read_text().replace("Spacing: [1, 1, 1]", "Spacing: [2, 2, 2]"))
    run = _snakemake(study)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    methods = (paper / "methods.md").read_text()
    ct_paragraph = methods.split("**CT**")[1].split("**")[0]
    assert "resampled to 2×2×2 mm voxels" in ct_paragraph and "a fixed bin width of 10 HU" in ct_paragraph
    assert "a fixed bin width of 1 Gy" in methods
    checklist = pd.read_csv(paper / "reporting_checklist.tsv", sep="\t", dtype=str).set_index(["standard", "item"])
    assert "CT: 2×2×2 mm" in checklist.loc[("IBSI-1", "51"), "value"]
    dictionary = pd.read_csv(paper / "features.tsv", sep="\t", dtype=str)
    ct_rows = dictionary[dictionary["modality"].eq("CT")]
    assert ct_rows["settings"].str.contains("resampled to 2×2×2 mm", regex=False).all()
    assert subprocess.run(verify, cwd=study, capture_output=True, text=True).returncode == 0


@pytest.mark.workflow
def test_switching_an_analysis_off_removes_its_outputs(demo_run, tmp_path):
    """The demo run, copied, then run without clinical data and without the trust analyses: the harmonised table,
    the negative controls, the robustness folder, the perturbed tables and the outcome tables of before are gone, and
    radflow verify finds nothing in the folder that this run did not make."""

    project = tmp_path / "project"
    copy_run(demo_run, project)
    for stale in ("harmonised/modelling_table.csv", "negative_controls/association.csv", "robustness/icc.csv"):
        assert (project / "results" / stale).is_file()
    config = yaml.safe_load((project / "config" / "config.yaml").read_text())
    config.update(clinical=[], robustness=None, negative_controls=None, harmonisation=None)
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = _snakemake(project, "-s", str(REPO / "workflow" / "Snakefile"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = project / "results"
    for gone in (
        "harmonised",
        "negative_controls",
        "robustness",
        "perturbed",
        "perturbed.parquet",
        "survival",
        "modelling_table.csv",
        "clinical.csv",
    ):
        assert not (results / gone).exists(), gone
    assert "removed results/harmonised" in (project / "logs" / "provenance.log").read_text()
    proc = subprocess.run([sys.executable, "-m", "radflow.cli", "verify", str(results)], capture_output=True, text=True)
    assert proc.returncode == 0 and "not made by this run" not in proc.stdout, proc.stdout
