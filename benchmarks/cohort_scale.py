"""Benchmark: radflow end to end at TCGA-HNSC's shape, and what 2,561 series would take.

A generated cohort of N patients (default 100), each the planning CT of benchmarks/features_cost.py (512 x 512 x 150
slices of 2.5 mm, an RTSTRUCT of 33 ROIs: body, couch, targets, 21 organs at risk, an isocentre and four markers),
copied with its own patient ID and every study, series, instance and frame-of-reference UID made new. radflow runs
on it from an empty project folder (`snakemake --cores C results/features.csv`, CT only, no overlays), as a user
would. Printed: wall and CPU time of the run, of the index, and per series (convert and masks from its series job's
log, features from its features job's log), the per-ROI extraction time, and the projection for 2,561 series on a
16-core workstation (every series taken as such a planning CT; TCGA-HNSC's 2,561 series include structure sets,
plans and doses, so it is an upper bound).

Run: .venv/bin/python benchmarks/cohort_scale.py [--patients 100] [--cores 2] [--keep]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

from end_to_end import ct_project, snakemake  # noqa: E402

UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")


def collect_uids(files) -> set[str]:
    """The instance UIDs of the template (study, series, SOP instance, frame of reference), not class UIDs."""
    uids = set()
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        uids |= {str(ds.get(k)) for k in UID_KEYWORDS if ds.get(k)}
    return uids


def remap(ds, mapping: dict[str, str]) -> None:
    """Every UI value of the dataset (nested sequences too) found in mapping replaced by its new UID."""

    def visit(dataset, elem):
        if elem.VR == "UI" and elem.value:
            if elem.VM > 1:
                elem.value = [mapping.get(str(v), str(v)) for v in elem.value]
            else:
                elem.value = mapping.get(str(elem.value), str(elem.value))

    ds.walk(visit)
    if "MediaStorageSOPInstanceUID" in ds.file_meta:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def make_cohort(root: Path, patients: int) -> int:
    """N copies of the generated planning CT patient under root (NBIA layout); returns the number of files."""
    from features_cost import planning_ct

    template = root.parent / "template"
    planning_ct(template)
    files = sorted(p for p in template.rglob("*.dcm"))
    uids = collect_uids(files)
    n = 0
    for k in range(1, patients + 1):
        pid = f"TCGA-SC-{k:04d}"
        mapping = {u: generate_uid(entropy_srcs=[u, pid]) for u in uids}
        for f in files:
            ds = pydicom.dcmread(f)
            remap(ds, mapping)
            ds.PatientID = ds.PatientName = pid
            rel = f.relative_to(template)
            out = root / pid / Path(*rel.parts[1:])
            out.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(out)
            n += 1
    shutil.rmtree(template)
    return n


def job_lines(logs: Path) -> list[dict]:
    """Per image series: the convert and masks seconds of its series job, the seconds of its features job, their
    total, and the ROIs extracted, from the two jobs' logs."""
    out = []
    for log in sorted(logs.glob("series/*/*.log")):
        text = log.read_text()
        converted = re.search(r"^convert: .*, ([\d.]+) s$", text, flags=re.M)
        masked = re.search(r"^masks: \d+ ROI masks, ([\d.]+) s;", text, flags=re.M)
        features_log = logs / "features" / log.parent.name / log.name
        if not (converted and masked and features_log.exists()):
            continue
        features_text = features_log.read_text()
        extracted = re.search(r"^features: \d+ rows, ([\d.]+) s$", features_text, flags=re.M)
        rois = re.findall(r"^ROI .*?, ([\d.]+) s, peak [\d.]+ MB, ok$", features_text, flags=re.M)
        if extracted:
            parts = dict(convert=float(converted[1]), masks=float(masked[1]), features=float(extracted[1]))
            out.append(dict(parts, total=sum(parts.values()), rois=len(rois), roi_seconds=[float(s) for s in rois]))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="radflow-scale-"))
    t0 = time.perf_counter()
    n_files = make_cohort(work / "dicom" / "TCGA-SC", args.patients)
    print(f"cohort: {args.patients} patients, {n_files} files, written in {time.perf_counter() - t0:.0f} s")
    clinical = work / "clinical.tsv"
    clinical.write_text("cases.submitter_id\tdemographic.vital_status\n")
    project = ct_project(work / "project", work / "dicom" / "TCGA-SC", clinical)
    index_wall, index_cpu = snakemake(project, "results/index/series.parquet", args.cores)
    wall, cpu = snakemake(project, "results/features.csv", args.cores)
    wall, cpu = wall + index_wall, cpu + index_cpu
    jobs = job_lines(project / "logs")
    rois = [s for j in jobs for s in j["roi_seconds"]]
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.cores} used\n"
        f"run: {wall:.0f} s wall, {cpu:.0f} s CPU, {len(jobs)} series (a series and a features job each), "
        f"{sum(j['rois'] for j in jobs)} ROIs extracted"
    )
    for part in ("convert", "masks", "features", "total"):
        values = [j[part] for j in jobs]
        print(f"{part:<9} median {statistics.median(values):6.2f} s  (min {min(values):.2f}, max {max(values):.2f})")
    print(f"per extracted ROI: median {statistics.median(rois):.2f} s, mean {statistics.mean(rois):.2f} s")
    print(f"index ({n_files} files): {index_wall:.0f} s wall, {index_cpu:.0f} s CPU (included in the run)")
    per_series_cpu = cpu / max(len(jobs), 1)
    hours = 2561 * per_series_cpu / 16 / 3600
    print(
        f"projection: 2,561 such series on 16 cores: {2561 * per_series_cpu / 3600:.1f} CPU hours, "
        f"{hours:.2f} h wall at full use ({per_series_cpu:.1f} s of CPU per series, this run's CPU over its jobs)"
    )
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
