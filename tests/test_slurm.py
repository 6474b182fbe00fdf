"""Two demo patients (every modality and relation of the demo) through profiles/slurm on a real one-node SLURM
cluster give the local demo run's rows of those patients."""

from __future__ import annotations

import re
import subprocess

import pandas as pd
import pytest
from conftest import DEMO_SUBSET, REPO, demo_subset, make_project, read_table, same_rows, snakemake_env
from slurm_cluster import LocalSlurm, SlurmUnavailable

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except SlurmUnavailable as why:
        cluster.stop()
        pytest.skip(f"no SLURM here: {why}")
    except BaseException:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def slurm_run(slurm, demo_dir, tmp_path_factory):
    # tables only (the overlays and the DICOM export are tested on the local run): fewer jobs in the serial groups
    base = tmp_path_factory.mktemp("project-slurm")
    root = demo_subset(demo_dir, base / "dicom")
    workdir = make_project(
        base / "project", demo_dir, demo_cohort=None, dicom_root=str(root), qc_overlays="none", dicom_export=False
    )
    env = snakemake_env()
    env["SLURM_CONF"] = str(slurm.conf)
    # 3 series per group instead of 20: the demo's 11 series become several group jobs, two at a time on the
    # node's 2 cores (the jobs inside a group run one after another)
    cmd = [
        "snakemake",
        "-s",
        str(REPO / "workflow" / "Snakefile"),
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--group-components",
        "series=3",
        # the job states every 2 s instead of Snakemake's 10: on this one-node cluster each step of the dependency
        # chain would otherwise wait out the interval (a real cluster's scheduler is spared by the profile's pace)
        "--seconds-between-status-checks",
        "2",
    ]
    # snakemake can hang on a broken status query: always under a hard timeout (-k: SIGKILL after SIGTERM)
    proc = subprocess.run(["timeout", "-k", "30", "900", *cmd], cwd=workdir, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, (
        f"snakemake on SLURM failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}\n{slurm.logs()}"
    )
    return workdir, proc.stdout + proc.stderr


def test_jobs_went_through_slurm_in_groups(slurm_run):
    _, log = slurm_run
    submitted = [line for line in log.splitlines() if "has been submitted with SLURM jobid" in line]
    finished = [line for line in log.splitlines() if re.search(r"Finished jobid: \d+ \(Rule: (?!all\))", line)]
    # the index (a checkpoint), groups of up to 3 series jobs (how Snakemake packs the 13 series and the dose varies)
    # and the survival model: a handful of SLURM jobs for the 25-odd rule jobs; the cohort tables ran locally
    assert 3 <= len(submitted) <= 9 and len(finished) >= 20, "\n".join(submitted) or log[-3000:]
    assert sum("rule_index" in s for s in submitted) == 1
    assert 1 <= sum("group_series" in s for s in submitted) <= 6
    assert sum("rule_survival" in s for s in submitted) == 1
    assert not any(rule in s for s in submitted for rule in ("merge_features", "modelling_table", "delta_radiomics"))


@pytest.mark.parametrize(
    "table",
    [
        "features.parquet",
        "features.csv",
        "clinical.csv",
        "modelling_table.csv",
        "cohort.tsv",
        "delta_radiomics.csv",
        "index/series.parquet",
    ],
)
def test_slurm_tables_equal_local_run(slurm_run, demo_run, table):
    """Each table's rows of the two patients as the local run of the whole demo has them, value for value (the
    clinical table holds every patient of the clinical file, in both runs)."""
    workdir, _ = slurm_run
    mine, local = read_table(workdir / "results" / table), read_table(demo_run / "results" / table)
    if table == "clinical.csv":
        pd.testing.assert_frame_equal(mine, local)
    elif table == "cohort.tsv":  # (every clinical patient is accounted for: the others have no images here)
        same_rows(mine[mine["patient_id"].isin(DEMO_SUBSET)], local)
    else:
        assert set(mine["patient_id"]) <= set(DEMO_SUBSET) and len(mine)
        same_rows(mine, local)
