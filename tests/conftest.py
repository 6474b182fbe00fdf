"""Shared fixtures: the demo cohort and one real snakemake run on it, in a temporary project folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _reference() -> Path:
    """Reference data written by others (IBSI, TCGA): $RADFLOW_REFERENCE, ../shared/reference, or /work/shared."""
    candidates = [
        os.environ.get("RADFLOW_REFERENCE", ""),
        REPO.parent / "shared" / "reference",
        Path("/work/shared/reference"),
    ]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return Path(candidates[1])


REFERENCE = _reference()


def debian_tool(name: str, package: str) -> str:
    """The path of a Debian tool a test reads radflow's output with (.ci/run installs it): under CI=true a missing
    tool fails the test, elsewhere it skips it, saying which package to install."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (apt-get install {package})"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def snakemake_env() -> dict:
    """PATH with this interpreter's bin first, so that snakemake and its scripts use the project's venv."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


# Test scenarios: .test/<name>/config.yaml, each a config a contributor can also run from the checkout
# (snakemake --configfile .test/<name>/config.yaml). The demo scenario (make demo) is the demo cohort with every
# analysis on; a study's template is config/config.yaml.
SCENARIOS = REPO / ".test"
DEMO_CONFIG = SCENARIOS / "demo" / "config.yaml"

# robustness, negative controls and harmonisation: the demo scenario has them on (the demo shows them); the demo_run
# fixture runs them once, the other workflow tests switch them off unless they ask (each costs a run's time)
TRUST_OFF = dict(robustness=None, negative_controls=None, harmonisation=None)


def _rebased(value: str, demo_dir: Path | None) -> str:
    """A scenario's path as the test's project folder sees it: data/demo/… is the demo cohort the test made,
    ../shared/reference/… the reference data, config/… the project's copy, anything else the checkout's."""
    path = Path(value)
    if path.is_absolute() or value.startswith("config/"):
        return value
    if demo_dir is not None and path.parts[:2] == ("data", "demo"):
        return str(demo_dir.joinpath(*path.parts[2:]))
    if path.parts[:3] == ("..", "shared", "reference"):
        return str(REFERENCE.joinpath(*path.parts[3:]))
    return str(REPO / path)


def scenario_config(name: str, demo_dir: Path | None = None) -> dict:
    """The scenario's config with its paths rebased for a project folder outside the checkout (_rebased)."""
    cfg = yaml.safe_load((SCENARIOS / name / "config.yaml").read_text())
    for key in ("demo_cohort", "dicom_root"):
        if isinstance(cfg.get(key), str):
            cfg[key] = _rebased(cfg[key], demo_dir)
    clinical = []
    for entry in cfg.get("clinical") or []:
        if isinstance(entry, dict):
            clinical.append(dict(entry, path=_rebased(entry["path"], demo_dir)))
        else:
            clinical.append(_rebased(entry, demo_dir))
    cfg["clinical"] = clinical
    model = cfg.get("model") or {}
    if isinstance(model.get("studies"), str):
        model["studies"] = _rebased(model["studies"], demo_dir)
    return cfg


def scenario(name: str, workdir: Path, demo_dir: Path | None = None, **overrides) -> Path:
    """A project folder of the scenario .test/<name>/: a copy of config/ (roi_names, pyradiomics settings) and the
    scenario's config.yaml (scenario_config), then the overrides (the data the test made, keys a test changes)."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "config", workdir / "config", dirs_exist_ok=True)
    cfg = scenario_config(name, demo_dir)
    cfg.update(overrides)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return workdir


def make_project(workdir: Path, demo_dir: Path, trust: bool = False, **overrides) -> Path:
    """A project folder of the demo scenario on demo_dir (trust: keep its robustness, negative_controls and
    harmonisation)."""
    return scenario("demo", workdir, demo_dir, **{**({} if trust else TRUST_OFF), **overrides})


# Two demo patients that hold every modality and relation of the demo between them: TCGA-00-0001 (CT, PET, RTSTRUCT,
# RTPLAN, RTDOSE) and TCGA-00-0003 (CT, MR with its own RTSTRUCT, a follow-up study). A scenario that checks how the
# workflow runs (on SLURM, deployed as a module) rather than what the whole cohort gives runs on these.
DEMO_SUBSET = ("TCGA-00-0001", "TCGA-00-0003")


def demo_subset(demo_dir: Path, root: Path, patients=DEMO_SUBSET) -> Path:
    """A DICOM root holding copies of some of the demo's patients."""
    for pid in patients:
        shutil.copytree(demo_dir / "TCGA-HNSC" / pid, root / pid)
    return root


def read_table(path: Path) -> pd.DataFrame:
    """A results table as the comparisons read it: parquet as stored, CSV and TSV as text (no type guessing)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str, keep_default_na=False)


def same_rows(table: pd.DataFrame, reference: pd.DataFrame, patients=DEMO_SUBSET) -> None:
    """table equals reference's rows of those patients (columns, values and order)."""
    mine = reference[reference["patient_id"].isin(patients)].reset_index(drop=True)
    pd.testing.assert_frame_equal(table.reset_index(drop=True), mine)


def run_snakemake(workdir: Path, *extra, timeout=1200) -> subprocess.CompletedProcess:
    cmd = ["snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--cores", "2", *extra]
    return subprocess.run(cmd, cwd=workdir, env=snakemake_env(), capture_output=True, text=True, timeout=timeout)


def shared_folder(tmp_path_factory, name: str, make) -> Path:
    """A session fixture's folder, made once for the whole test run: `make test` runs two pytest-xdist workers,
    each with its own session; the first to ask makes the folder under a lock (make(folder)), the other waits and
    reuses it. Tests only read it (those that change a run copy it first)."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers: <pytest-N>/, not <pytest-N>/popen-gwK/
    folder, done = base / name, base / f"{name}.done"
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            if folder.exists():
                shutil.rmtree(folder)  # what a worker that failed left
            folder.mkdir(parents=True)
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    from radflow.demo import generate_demo

    return shared_folder(tmp_path_factory, "demo", generate_demo)


@pytest.fixture(scope="session")
def truth(demo_dir) -> dict:
    return json.loads((demo_dir / "truth.json").read_text())


@pytest.fixture(scope="session")
def index_tables(demo_dir, tmp_path_factory):
    from radflow.index import build_index

    return build_index(
        demo_dir / "TCGA-HNSC", tmp_path_factory.mktemp("index"), REPO / "config" / "roi_names.yaml", threads=2
    )


@pytest.fixture(scope="session")
def demo_run(demo_dir, tmp_path_factory) -> Path:
    """The whole workflow, run by snakemake on the demo cohort; returns the project folder."""

    def run(workdir):
        make_project(workdir, demo_dir, trust=True)
        proc = run_snakemake(workdir)
        assert proc.returncode == 0, f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"

    return shared_folder(tmp_path_factory, "project", run)


def copy_run(run: Path, dest: Path) -> Path:
    """A copy of a run's project folder to change and run again (without Snakemake's locks of a run that another
    test may have going in the original)."""
    shutil.copytree(run, dest, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    return dest


# The files whose runs take longest, first: `make test`'s two workers take a file each in this order (xdist's
# --no-loadscope-reorder: the first to the first worker, the second to the other, then the next file to whichever
# worker is nearly done), so that the two end together. While one worker makes the demo run (test_workflow) the other
# runs the real-data scenario and then the incremental one, neither of which waits for the demo run; the files after
# them read it. (Seconds per file on this machine: BENCHMARKS.md, "Demo run".)
FIRST = (
    "test_workflow.py",
    "test_real_data.py",
    "test_incremental.py",
    "test_slurm.py",
    "test_study.py",
    "test_kill_resume.py",
    "test_download.py",
    "test_dvh.py",
    "test_broken_corpus.py",
    "test_several_studies.py",
    "test_trust.py",
)


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return FIRST.index(name) if name in FIRST else len(FIRST)

    items.sort(key=rank)  # stable: the order within a file, and of the other files, stays
