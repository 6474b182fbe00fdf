"""Benchmark: the index on a synthetic cohort of TCGA-HNSC's shape, and `snakemake -n` over it.

Generates 227 patients, 479 studies, 2,561 series and 270,376 DICOM files (tiny 8x8 pixel matrices; one RTSTRUCT
per patient, on its planning CT) in the NBIA layout, then prints:
- the raw cost of reading the first 4 KiB of every file;
- files/s of a first index (2 processes) and of a re-index with nothing changed;
- the time to write every per-series work order (radflow.index.orders), and again when nothing changed;
- the wall time of `snakemake -n` over the whole cohort.
Run: .venv/bin/python benchmarks/index_scale.py [--out /tmp/radflow-scale] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml
from pydicom.uid import generate_uid

from radflow.dicom import write

REPO = Path(__file__).resolve().parents[1]
PATIENTS, STUDIES, SERIES, FILES = 227, 479, 2561, 270376
CT, RTSTRUCT = write.CT_STORAGE, write.RTSTRUCT_STORAGE


def plan() -> list[tuple]:
    """(patient, study, series index, n files, kind) for every series, with the cohort's totals."""
    rng = np.random.default_rng(7)
    studies_of = np.full(PATIENTS, 2)
    studies_of[rng.choice(PATIENTS, STUDIES - 2 * PATIENTS, replace=False)] += 1
    study_list = [(p, s) for p in range(PATIENTS) for s in range(studies_of[p])]
    series_per_study = np.full(STUDIES, SERIES // STUDIES)
    series_per_study[rng.choice(STUDIES, SERIES - series_per_study.sum(), replace=False)] += 1
    rows = []
    for (p, s), n in zip(study_list, series_per_study):
        for k in range(n):
            kind = "rtstruct" if (s == 0 and k == n - 1) else "ct"
            rows.append([p, s, k, 1, kind])
    images = [r for r in rows if r[4] == "ct"]
    sizes = rng.integers(40, 200, len(images)).astype(float)
    sizes = np.floor(sizes / sizes.sum() * (FILES - (len(rows) - len(images)))).astype(int)
    sizes[: FILES - (len(rows) - len(images)) - sizes.sum()] += 1
    for r, n in zip(images, sizes):
        r[3] = int(n)
    assert sum(r[3] for r in rows) == FILES and len(rows) == SERIES
    return [tuple(r) for r in rows]


def _uid(*parts) -> str:
    return generate_uid(entropy_srcs=["radflow-scale", *map(str, parts)])


def _identify(ds, pid, study_uid, series_uid, for_uid, k):
    ds.PatientID = ds.PatientName = pid
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, for_uid
    ds.StudyDate, ds.SeriesNumber, ds.Manufacturer = "20000101", k + 1, "radflow synthetic"


def write_patient(args) -> int:
    root, p, series = args
    pid = f"TCGA-00-{p:04d}"
    n = 0
    for _, s, k, files, kind in series:
        study_uid, series_uid, for_uid = _uid(pid, s), _uid(pid, s, k), _uid(pid, s, "for")
        folder = (
            Path(root)
            / "TCGA-HNSC"
            / pid
            / f"01-01-2000-NA-study{s}-{study_uid[-5:]}"
            / f"{k + 1}.000000-{kind}-{series_uid[-5:]}"
        )
        folder.mkdir(parents=True, exist_ok=True)
        if kind == "rtstruct":
            ds = write.new_dataset(RTSTRUCT, _uid(series_uid, 0))
            _identify(ds, pid, study_uid, series_uid, for_uid, k)
            ds.Modality = "RTSTRUCT"
            images = dict(study_uid=study_uid, series_uid=_uid(pid, s, 0), sop_class=CT, sop_uids=[])
            square = write.Contour(np.array([[0, 0, 2.5], [4, 0, 2.5], [4, 4, 2.5], [0, 4, 2.5]]))
            write.structure_set(ds, for_uid, [write.Roi("GTV", [square])], images)
            write.save(ds, folder / "1-1.dcm")
            n += 1
            continue
        ds = write.new_dataset(CT)
        _identify(ds, pid, study_uid, series_uid, for_uid, k)
        ds.Modality, ds.ImageType = "CT", ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PixelSpacing, ds.SliceThickness = [1, 1], 2.5
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        write.pixel_module(ds, np.zeros((8, 8), np.int16))
        for i in range(files):
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid(series_uid, i)
            ds.InstanceNumber = i + 1
            ds.ImagePositionPatient = [0, 0, 2.5 * i]
            write.save(ds, folder / f"1-{i + 1:03d}.dcm")
        n += files
    return n


def generate(root: Path) -> int:
    by_patient: dict[int, list] = {}
    for row in plan():
        by_patient.setdefault(row[0], []).append(row)
    with ProcessPoolExecutor(2) as pool:
        return sum(pool.map(write_patient, [(str(root), p, s) for p, s in sorted(by_patient.items())]))


def raw_read(root: Path) -> tuple[int, float]:
    t = time.perf_counter()
    n = 0
    for folder, _, files in os.walk(root):
        for f in files:
            with open(os.path.join(folder, f), "rb") as fp:
                fp.read(4096)
            n += 1
    return n, time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/radflow-scale")
    parser.add_argument("--keep", action="store_true", help="keep the generated cohort")
    args = parser.parse_args()
    from radflow.index import build_index

    out = Path(args.out)
    root = out / "dicom"
    if not (root / "TCGA-HNSC").is_dir():
        t = time.perf_counter()
        n = generate(root)
        print(f"generated {n} files in {time.perf_counter() - t:.0f} s")
    n, raw = raw_read(root)
    print(f"raw read of the first 4 KiB of {n} files: {raw:.1f} s ({n / raw:,.0f} files/s)")
    index = out / "project" / "results" / "index"
    shutil.rmtree(index, ignore_errors=True)
    names = REPO / "config" / "roi_names.yaml"
    t = time.perf_counter()
    tables = build_index(root, index, names, threads=2, series_selection="all", progress=False)
    first = time.perf_counter() - t
    print(
        f"first index: {first:.1f} s ({n / first:,.0f} files/s; {first / raw:.1f}x the raw read); "
        f"{len(tables['series'])} series, {int(tables['series']['convert'].sum())} to convert, "
        f"{len(tables['links'])} links"
    )
    t = time.perf_counter()
    again = build_index(root, index, names, threads=2, series_selection="all", progress=False, load_instances=False)
    second = time.perf_counter() - t
    print(
        f"re-index, nothing changed: {second:.1f} s ({n / second:,.0f} files/s; {first / second:.0f}x faster; "
        f"{again['stats']['read']} files read)"
    )
    from radflow.index.orders import write_orders

    orders = out / "project" / "results" / "orders"
    shutil.rmtree(orders, ignore_errors=True)
    for what in ("first", "again, nothing changed"):
        t = time.perf_counter()
        counts = write_orders(tables, orders)
        print(f"work orders, {what}: {time.perf_counter() - t:.1f} s ({counts})")
    project = out / "project"
    shutil.copytree(REPO / "config", project / "config", dirs_exist_ok=True)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    clinical = project / "clinical.tsv"
    clinical.write_text(
        "case_submitter_id\tvital_status\tdays_to_death\tdays_to_last_follow_up\n"
        + "".join(f"TCGA-00-{p:04d}\tAlive\t'--\t100\n" for p in range(PATIENTS))
    )
    cfg.update(demo_cohort=None, dicom_root=str(root), clinical=[str(clinical)], series_selection="all")
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    t = time.perf_counter()
    proc = subprocess.run(
        ["snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "-n", "--quiet", "rules"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    dry = time.perf_counter() - t
    jobs = [line for line in proc.stdout.splitlines() if line.strip()]
    print(f"snakemake -n over the cohort: {dry:.1f} s (exit {proc.returncode}); job summary:")
    print("\n".join("  " + line for line in jobs[-14:]))
    if proc.returncode:
        print(proc.stderr[-2000:])
    if not args.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
