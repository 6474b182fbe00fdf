"""Nothing lost: one snakemake run over a copy of the demo cohort holding every kind of broken input
(tests/broken_corpus.py) finishes, names each broken item with its cause, and gives every other item the clean
run's values. Config and output breakage, each on its own: a clear message before any work starts."""

from __future__ import annotations

import os
import shutil
import subprocess

import pandas as pd
import pytest
import yaml
from broken_corpus import KINDS, RUN_LEVEL_KINDS, write_corpus
from conftest import REPO, make_project, run_snakemake, scenario

pytestmark = pytest.mark.workflow

KEYS = ["patient_id", "series_uid", "roi_label"]


@pytest.fixture(scope="module")
def corpus_run(demo_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("corpus")
    expectations = write_corpus(demo_dir, base / "demo")
    corpus = base / "demo"
    workdir = scenario(  # .test/broken_corpus/config.yaml, on the corpus written here
        "broken_corpus", base / "project", dicom_root=str(corpus / "TCGA-HNSC"), clinical=[str(corpus / "clinical.tsv")]
    )
    proc = run_snakemake(workdir)
    assert proc.returncode == 0, f"snakemake failed on the broken corpus:\n{proc.stderr[-5000:]}"
    return workdir, expectations


def test_the_corpus_has_25_kinds_or_more():
    kinds = [k.__name__ for k in KINDS] + RUN_LEVEL_KINDS
    assert len(kinds) >= 25 and len(set(kinds)) == len(kinds)


def _reported(workdir, e) -> pd.DataFrame:
    """The rows that report expectation e."""
    results = workdir / "results"
    if e.where == "problems":
        table = pd.read_csv(results / "index" / "problems.tsv", sep="\t", keep_default_na=False)
    elif e.where == "features":
        table = pd.read_parquet(results / "features.parquet")
        table = table[table["status"] == e.status]
    else:
        table = pd.read_csv(results / "clinical_problems.tsv", sep="\t", keep_default_na=False)
    if e.series_uid:
        table = table[table["series_uid"] == e.series_uid]
    text = {
        "problems": lambda: table["item"] + " | " + table["reason"],
        "features": lambda: table["series_uid"] + " | " + table["roi_original"] + " | " + table["reason"],
        "clinical_problems": lambda: table["patient_id"] + " | " + table["reason"],
    }[e.where]()
    hit = pd.Series(True, index=table.index)
    for word in e.names:
        hit &= text.str.contains(word, regex=False)
    return table[hit]


@pytest.mark.parametrize("kind", [k.__name__ for k in KINDS])
def test_each_broken_item_is_named_with_its_cause(corpus_run, kind):
    workdir, expectations = corpus_run
    e = expectations[kind]
    rows = _reported(workdir, e)
    assert len(rows) >= 1, f"{e.kind}: no row of {e.where} holds all of {e.names}"


def test_everything_else_equals_the_clean_run(corpus_run, demo_run):
    workdir, expectations = corpus_run
    affected = set().union(*(e.affected for e in expectations.values()))  # for the clinical and modelling tables
    imaging = set().union(*(e.affected for e in expectations.values() if e.where != "clinical_problems"))
    named_rois = {w for e in expectations.values() if e.where == "features" for w in e.names}
    broken = pd.read_parquet(workdir / "results" / "features.parquet")
    clean = pd.read_parquet(demo_run / "results" / "features.parquet")
    keep = (
        ~clean["patient_id"].isin(imaging)
        & ~clean["series_uid"].isin(imaging)
        & ~clean["roi_original"].isin(named_rois)
    )
    reference = clean[keep].set_index(KEYS).sort_index()
    assert len(reference) >= 14  # enough of the cohort is untouched to mean something: 3 patients' CTs
    got = broken.set_index(KEYS).sort_index()
    assert set(reference.index) <= set(got.index)
    got = got.loc[reference.index]
    assert (got["status"] == "ok").all()
    pd.testing.assert_frame_equal(got, reference)
    # clinical and modelling rows of untouched patients, value for value
    for table, least in (("clinical.csv", 3), ("modelling_table.csv", 2)):
        b = pd.read_csv(workdir / "results" / table).set_index("patient_id")
        c = pd.read_csv(demo_run / "results" / table).set_index("patient_id")
        untouched = [p for p in c.index if p not in affected]
        assert len(untouched) >= least and set(untouched) <= set(b.index), table
        # a broken ROI has no DVH (dose/dvh.parquet says why): its dose columns (model.dose) are empty
        broken_dose = [x for x in c.columns if any(x.startswith(f"dose_{roi}_") for roi in named_rois)]
        assert b.loc[untouched, broken_dose].isna().all().all()
        pd.testing.assert_frame_equal(
            b.loc[untouched].drop(columns=broken_dose), c.loc[untouched].drop(columns=broken_dose)
        )


def test_cohort_table_says_why_broken_patients_are_out(corpus_run):
    workdir, _ = corpus_run
    cohort = pd.read_csv(workdir / "results" / "cohort.tsv", sep="\t", keep_default_na=False).set_index("patient_id")
    for pid in ("TCGA-00-0002", "TCGA-00-0004", "TCGA-0Z-0006", "TCGA-0Z-0007"):
        row = cohort.loc[pid]
        assert not row["in_modelling_table"] and row["reason"], pid


# ------------------------------------------------------------------------------------ run-level breakage
def _start(workdir, *extra):
    """A real run (not a dry run) that must stop before any job."""
    proc = run_snakemake(workdir, *extra, timeout=300)
    assert proc.returncode != 0
    assert not (workdir / "results" / "index").exists() and not (workdir / "logs").exists()
    return proc.stdout + proc.stderr


def _refused(workdir, monkeypatch) -> str:
    """The start-up check of the project's config, in process (what the Snakefile runs before any job; the first test
    below goes through snakemake itself): the ConfigError's message."""
    from radflow.config.check import ConfigError, check_config

    monkeypatch.chdir(workdir)
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    with pytest.raises(ConfigError) as err:
        check_config(config, REPO / "workflow" / "schemas" / "config.schema.yaml", workdir)
    assert str(err.value).startswith("radflow cannot start; fix the configuration first:")
    return str(err.value)


def test_config_naming_a_folder_that_does_not_exist(demo_dir, tmp_path):
    """Through snakemake: the run stops before any job (no index, no logs) with the sentence."""
    missing = tmp_path / "downloads" / "TCGA-HNSC"
    workdir = make_project(tmp_path / "project", demo_dir, demo_cohort=None, dicom_root=str(missing))
    out = _start(workdir)
    assert f"config key dicom_root = '{missing}': the folder does not exist" in out


@pytest.mark.parametrize(
    "key, value, expected",
    [
        (
            "survival",
            {"endpoint": "os", "min_events": 4, "penalizer": 0.5, "l1_ratio": 0.5, "folds": "five"},
            "config key survival.folds = 'five': expected an integer",
        ),
        ("series_selection", "newest", "config key series_selection = 'newest': expected one of referenced, all"),
        ("index_threads", 0, "config key index_threads = 0: expected a number >= 1"),
        (
            "survival",
            {"min_icc": 0.75},
            "config key survival.min_icc needs robustness (the ICC of each feature comes from it)",
        ),
        (
            "negative_controls",
            {"controls": ["shuffled_tumour"]},
            "config key negative_controls.controls.0 = 'shuffled_tumour': expected one of shuffled_roi",
        ),
        (
            "harmonisation",
            {"batch": {"path": "sites.csv", "column": "hospital"}},
            "config key harmonisation.batch.path = 'sites.csv': the file does not exist",
        ),
    ],
)
def test_malformed_config_value(demo_dir, tmp_path, monkeypatch, key, value, expected):
    workdir = make_project(tmp_path / "project", demo_dir, **{key: value})
    assert expected in _refused(workdir, monkeypatch)


def test_clinical_file_of_an_unknown_format(demo_dir, tmp_path, monkeypatch):
    odd = tmp_path / "clinical.json"
    odd.write_text('{"cases": []}\n')
    workdir = make_project(
        tmp_path / "project", demo_dir, demo_cohort=None, clinical=[str(demo_dir / "clinical.tsv"), str(odd)]
    )
    out = _refused(workdir, monkeypatch)
    assert f"config key clinical[1]: {odd}: unknown clinical file format" in out


def test_pyradiomics_settings_that_pyradiomics_refuses(demo_dir, tmp_path, monkeypatch):
    """A misspelled setting and a value of the wrong type in MR.yaml stop the run before any job, named."""
    workdir = make_project(tmp_path / "project", demo_dir)
    mr = workdir / "config" / "pyradiomics" / "MR.yaml"
    mr.write_text(mr.read_text().replace("binCount:", "binCont:").replace("padDistance: 10", "padDistance: ten"))
    out = _refused(workdir, monkeypatch)
    assert "config key pyradiomics_settings: config/pyradiomics/MR.yaml is refused by pyradiomics" in out
    assert "Key 'binCont' was not defined" in out and "Value 'ten' is not of type 'int'" in out


def _make_read_only(folder):
    """A results folder nobody may write in: chattr +i as root (root ignores permission bits), chmod otherwise."""
    if os.geteuid() == 0:
        if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)]).returncode == 0:
            return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)
        pytest.skip("running as root without chattr +i: cannot make a folder read-only for root")
    folder.chmod(0o555)
    return lambda: folder.chmod(0o755)


def test_read_only_results_folder(demo_dir, tmp_path):
    workdir = make_project(tmp_path / "project", demo_dir)
    (workdir / "results").mkdir()
    undo = _make_read_only(workdir / "results")
    try:
        proc = run_snakemake(workdir, timeout=300)
    finally:
        undo()
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"results folder {workdir / 'results'}: cannot write in {workdir / 'results'}" in out
    assert not any((workdir / "results").iterdir()) and not (workdir / "logs").exists()


def test_dicom_root_with_no_dicom_in_it(demo_dir, tmp_path):
    """The index job stops with a sentence that names the folder, the reason and the files (no Python traceback),
    and keeps the problems table next to its log (Snakemake deletes a failed job's outputs)."""
    root = tmp_path / "download"
    (root / "notes").mkdir(parents=True)
    (root / "README.txt").write_text("downloaded with the NBIA Data Retriever\n")
    (root / "notes" / "1-01.dcm").write_bytes(b"an HTML error page saved as .dcm" * 8)
    workdir = make_project(tmp_path / "project", demo_dir, demo_cohort=None, dicom_root=str(root))
    proc = run_snakemake(workdir, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert (
        f"radflow index: nothing to convert. {root}: none of its 2 files is a DICOM instance radflow can read; "
        f"by reason:\n  2 × not a DICOM file (no 'DICM' prefix after the 128-byte preamble): {root}/README.txt, "
        f"{root}/notes/1-01.dcm\nEvery file and series with its reason: logs/index_problems.tsv"
    ) in out
    assert "Traceback" not in out and "KeyError" not in out
    kept = pd.read_csv(workdir / "logs" / "index_problems.tsv", sep="\t")
    assert kept["item"].tolist() == [f"{root}/README.txt", f"{root}/notes/1-01.dcm"]
    assert not (workdir / "results" / "features.parquet").exists()


def test_every_run_level_kind_has_its_test():
    names = {
        "config naming a folder that does not exist": test_config_naming_a_folder_that_does_not_exist,
        "malformed config value": test_malformed_config_value,
        "clinical file of an unknown format": test_clinical_file_of_an_unknown_format,
        "read-only results folder": test_read_only_results_folder,
        "pyradiomics settings file that pyradiomics refuses": test_pyradiomics_settings_that_pyradiomics_refuses,
        "DICOM root with no DICOM in it": test_dicom_root_with_no_dicom_in_it,
    }
    from test_kill_resume import test_kill_full_disk_and_resume_give_the_clean_tables as full_disk

    names["full disk while writing (ulimit -f)"] = full_disk
    assert set(names) == set(RUN_LEVEL_KINDS)
