"""Kill and resume: a run killed (SIGKILL, the whole process tree) at several points, and once starved by a
file-size limit (a full disk), then rerun as the README says, ends with the tables of an uninterrupted run. No
partial file is ever taken as done.

It runs on its own copy of the demo cohort, generated again in another folder (the demo files themselves are
compared first): so it is also the reviewer's rerun. It takes the two demo patients that hold every modality
(conftest.DEMO_SUBSET: CT, PET, RTDOSE; CT, MR, a follow-up), whose rows must be the uninterrupted demo run's, value
for value, and whose clinical table byte for byte."""

from __future__ import annotations

import hashlib
import os
import re
import resource
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import DEMO_SUBSET, REPO, demo_subset, make_project, read_table, same_rows, snakemake_env

pytestmark = pytest.mark.workflow

# tables with one or more rows per patient: the subset's rows are the demo run's
TABLES = [
    "features.parquet",
    "features.csv",
    "features_long.csv",
    "modelling_table.csv",
    "delta_radiomics.csv",
    "cohort.tsv",
    "index/series.parquet",
]
PROFILE = ["--profile", str(REPO / "profiles" / "local"), "--cores", "2"]


def _snakemake(*extra) -> list[str]:
    return ["snakemake", "-s", str(REPO / "workflow" / "Snakefile"), *PROFILE, *extra]


def _unlock(workdir: Path) -> None:
    """After a kill, Snakemake's lock stays behind: the README's first step."""
    subprocess.run(_snakemake("--unlock"), cwd=workdir, env=snakemake_env(), capture_output=True, check=True)


def _run_until(workdir: Path, done, timeout=600) -> bool:
    """Start the workflow in its own process group; SIGKILL the whole group as soon as done() holds.
    Returns True when it was killed, False when the run ended first."""
    log = open(workdir / "killed-runs.log", "a")
    proc = subprocess.Popen(
        _snakemake(), cwd=workdir, env=snakemake_env(), stdout=log, stderr=log, start_new_session=True
    )
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            if proc.poll() is not None:
                return False
            if done():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.05)
        raise AssertionError("the run neither ended nor reached the kill point")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _resume(workdir: Path, limit_bytes: int | None = None, timeout=900) -> subprocess.CompletedProcess:
    """What the README says after a kill: unlock, then the same command (the profile reruns incomplete jobs)."""
    _unlock(workdir)

    def limit():
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        _snakemake(),
        cwd=workdir,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
    )


def _done(workdir: Path, pattern: str) -> list[Path]:
    """Outputs under their own names (not the .partial-* names of jobs still writing, or killed while writing)."""
    return [p for p in (workdir / "results").glob(pattern) if not any(part.startswith(".partial-") for part in p.parts)]


def _big(workdir: Path) -> list[Path]:
    """Converted images over 1.5 MB (the demo's planning CTs)."""
    return sorted(p for p in _done(workdir, "images/*/*.nii.gz") if p.stat().st_size > 1_500_000)


def _count(workdir: Path, pattern: str) -> int:
    return len(_done(workdir, pattern))


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_kill_full_disk_and_resume_give_the_clean_tables(demo_dir, demo_run, tmp_path):
    from radflow.demo import generate_demo

    generate_demo(tmp_path / "demo")  # the demo again, elsewhere: the same files
    assert _digests(tmp_path / "demo") == _digests(demo_dir)
    root = demo_subset(tmp_path / "demo", tmp_path / "dicom")
    workdir = make_project(  # CT GTVp pictures only, no DICOM export (not among the tables compared)
        tmp_path / "project",
        tmp_path / "demo",
        demo_cohort=None,
        dicom_root=str(root),
        qc_overlays="model",
        dicom_export=False,
    )
    images = "images/*/*.json"
    # 1. killed while converting: the index is written, a few images are
    assert _run_until(workdir, lambda: _count(workdir, images) >= 2)
    # 2. resumed, then killed again while extracting features
    _unlock(workdir)
    # (and a planning CT among the finished series: which series finish first is the scheduler's choice)
    assert _run_until(workdir, lambda: _count(workdir, "features/*/*.parquet") >= 3 and _big(workdir))
    # every output under its own name is whole: a job killed while writing left only a .partial-* name
    for table in _done(workdir, "features/*/*.parquet"):
        pd.read_parquet(table)
    # 3. resumed on a "full disk": no file may grow past 1.5 MB (ulimit -f), and each CT image is 1.7 MB. Which jobs
    # are left depends on where the kill fell; so that a large write is surely among them, one converted CT is lost
    # (as a user deleting a file would): its series job must run again, and cannot finish.
    big = _big(workdir)
    assert big, "no CT image was converted before the second kill"
    big[0].unlink()
    # and its features, if they were extracted before the kill: with them, nothing left to run would need the image,
    # and Snakemake leaves a missing intermediate file missing
    features = workdir / "results" / "features" / big[0].parent.name / big[0].name.replace(".nii.gz", ".parquet")
    features.unlink(missing_ok=True)
    starved = _resume(workdir, limit_bytes=1_500_000)
    out = starved.stdout + starved.stderr
    assert starved.returncode != 0, "a run that could not write its images must not succeed"
    # the jobs that write files over the limit fail: the lost CT's series job, and the dose resampled onto a CT if it
    # was still to come
    starved_rules = set(re.findall(r"Error in rule (\w+)", out))
    assert "series" in starved_rules and starved_rules <= {"series", "dose"}, out[-3000:]
    # the job's log names the file and the likely cause
    logs = [p.read_text() for rule in starved_rules for p in (workdir / "logs" / rule).glob("*/*.log")]
    starved_logs = [text for text in logs if "disk full or a file-size limit" in text]
    assert starved_logs and all(re.search(r"cannot write results/(images|dose)/", t) for t in starved_logs)
    # nothing half-written is left behind as if it were done: every image that exists reads back whole
    for image in _done(workdir, "images/*/*.nii.gz"):
        assert sitk.GetArrayFromImage(sitk.ReadImage(str(image))).size > 1, image
    failed = _done(workdir, "images/*/*.json")
    assert all('"status": "failed"' not in p.read_text() for p in failed), "a full disk is not a broken series"
    # 4. resumed with space again, killed once more while the cohort tables are written
    _unlock(workdir)
    _run_until(workdir, lambda: (workdir / "results" / "features.parquet").exists())
    # 5. the last resume finishes
    final = _resume(workdir)
    assert final.returncode == 0, final.stderr[-4000:]
    for table in TABLES:
        mine = read_table(workdir / "results" / table)
        mine = mine[mine["patient_id"].isin(DEMO_SUBSET)]  # (cohort.tsv: the clinical file's other patients too)
        same_rows(mine, read_table(demo_run / "results" / table), DEMO_SUBSET)
    clinical = "clinical.csv"  # the clinical file's every patient, as in the demo run
    assert (workdir / "results" / clinical).read_bytes() == (demo_run / "results" / clinical).read_bytes()
    assert not list((workdir / "results").rglob(".partial-*")), "a killed job's leftovers stayed behind"
    # qc_overlays: model drew the modelling table's ROI on its modality only
    pictures = sorted((workdir / "results" / "qc" / "overlays").glob("*/*/*.png"))
    assert {p.stem for p in pictures} == {"GTVp"} and len(pictures) == 3  # 2 baseline CTs, 1 follow-up


def test_atomic_outputs(tmp_path):
    """Outputs appear under their names only when their job ends well; a killed job's leftovers are cleared."""
    from radflow.failures import OutputError, atomic_outputs

    table, folder = tmp_path / "out" / "table.csv", tmp_path / "out" / "pictures"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".partial-table.csv").write_text("half a table from a killed run")
    folder.mkdir()  # as Snakemake may leave it
    with atomic_outputs(table, folder) as (t, f):
        assert t.endswith("/.partial-table.csv") and not Path(t).exists()
        Path(t).write_text("a,b\n1,2\n")
        Path(f).mkdir()
        (Path(f) / "one.png").write_bytes(b"png")
    assert table.read_text() == "a,b\n1,2\n" and (folder / "one.png").exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pictures", "table.csv"]
    with pytest.raises(ValueError):  # the job fails half way: nothing new under the output's name
        with atomic_outputs(tmp_path / "out" / "other.csv") as (t,):
            Path(t).write_text("a,b\n")
            raise ValueError("pyradiomics failed")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pictures", "table.csv"]
    with pytest.raises(OutputError, match="the job wrote nothing"):
        with atomic_outputs(tmp_path / "out" / "never.csv"):
            pass
