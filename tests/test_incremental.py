"""A cohort that grows (issue 17): after adding a patient and re-indexing, only that patient's series are converted,
masked, extracted and drawn; re-indexing with nothing new redoes none of them. On a cohort whose
instances.parquet is over 5 MB, where Snakemake no longer compares the content of the index tables."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest
from conftest import make_project, run_snakemake
from factory import write_tiny_ct_series

PER_SERIES = {"series", "features", "overlays", "dose"}  # series: convert and masks of one image series


def jobs(proc) -> list[tuple[str, str]]:
    """(rule, patient) of every job a snakemake run started, from its log."""
    out, rule = [], None
    for line in (proc.stdout + proc.stderr).splitlines():
        if m := re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):", line):
            rule = m.group(1)
            out.append((rule, ""))
        elif rule and (m := re.match(r"^\s+wildcards: .*patient=([^,\s]+)", line)):
            out[-1] = (rule, m.group(1))
    return out


@pytest.mark.workflow
def test_adding_a_patient_redoes_that_patient_only(demo_dir, tmp_path):
    root = tmp_path / "dicom"
    shutil.copytree(demo_dir / "TCGA-HNSC" / "TCGA-0Z-0006", root / "TCGA-0Z-0006")
    # the bulk of a real cohort: 110,400 files of series no structure set refers to (indexed, never converted)
    for s in range(24):
        write_tiny_ct_series(
            root / "TCGA-99-0001" / "01-01-2000-NA-bulk-00001" / f"{s + 1}.000000-CT-{s:05d}",
            "TCGA-99-0001",
            f"1.2.826.0.1.3680043.8.498.77770.{s + 1}",
            4600,
            seed=s,
        )
    workdir = make_project(tmp_path / "project", demo_dir, dicom_root=str(root), dicom_export=False)
    first = run_snakemake(workdir)
    assert first.returncode == 0, first.stderr[-4000:]
    index = workdir / "results" / "index"
    assert (index / "instances.parquet").stat().st_size > 5e6  # far above Snakemake's 1 MB checksum limit
    assert {p for r, p in jobs(first) if r in PER_SERIES} == {"TCGA-0Z-0006"}

    shutil.copytree(demo_dir / "TCGA-HNSC" / "TCGA-0Z-0007", root / "TCGA-0Z-0007")
    second = run_snakemake(workdir, "--forcerun", "index")
    assert second.returncode == 0, second.stderr[-4000:]
    ran = [(r, p) for r, p in jobs(second) if r in PER_SERIES]
    series = pd.read_parquet(index / "series.parquet")
    new = series[(series["patient_id"] == "TCGA-0Z-0007") & series["convert"]]
    assert {p for _, p in ran} == {"TCGA-0Z-0007"}
    assert sum(r == "series" for r, _ in ran) == len(new) >= 1
    features = pd.read_parquet(workdir / "results" / "features.parquet")
    assert {"TCGA-0Z-0006", "TCGA-0Z-0007"} <= set(features["patient_id"])

    third = run_snakemake(workdir, "--forcerun", "index")
    assert third.returncode == 0, third.stderr[-4000:]
    assert ("index", "") in jobs(third)  # the index did run again ...
    assert not [j for j in jobs(third) if j[0] in PER_SERIES]  # ... and redid no series
    log = (workdir / "logs" / "index.log").read_text()
    assert re.search(r"0 written, \d+ unchanged, 0 removed", log), log
    orders = sorted((workdir / "results" / "orders").rglob("*.json"))
    assert {o.parent.name for o in orders} == {"TCGA-0Z-0006", "TCGA-0Z-0007"}
    order = json.loads(next(o for o in orders if o.name.endswith(".convert.json")).read_text())
    assert set(order) >= {"series_key", "dicom_series_uid", "modality", "files", "patient_id"}
