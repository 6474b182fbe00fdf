"""Benchmark: the DICOM export of one TCGA-HNSC-shaped planning CT (config dicom_export).

The generated planning CT of benchmarks/features_cost.py (512 x 512 x 150 slices of 2.5 mm, an RTSTRUCT of 33 ROIs:
body outline, couch, targets, 21 organs at risk, an isocentre and four markers), converted and masked as the series
job does, its features extracted with config/pyradiomics/CT.yaml (feature_rois: standard, max_roi_voxels
4,000,000), then exported as the dicom_export job does: one DICOM SEG of every mask with voxels, one SR TID 1500 of
every ROI with features. Printed: seconds for the SEG and the SR, their sizes, and the peak resident memory of the
export alone (a fresh process, as the job runs).

Run: .venv/bin/python benchmarks/dicom_export.py
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]

EXPORT = """
import json, resource, sys, time
import pandas as pd
from radflow.paper.dicom_export import export_series
files, masks, features, out = json.loads(sys.argv[1])
t = time.perf_counter()
summary = export_series(files, masks, pd.read_parquet(features), out)
summary["seconds"] = time.perf_counter() - t
summary["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(summary))
"""


def main():
    import pydicom
    from features_cost import planning_ct

    from radflow.dicom.convert import convert_series
    from radflow.features import extract_series
    from radflow.roi_names import FeatureRois, load_aliases
    from radflow.run.series_job import masks_step

    work = Path(tempfile.mkdtemp(prefix="radflow-dicom-export-"))
    planning_ct(work / "dicom")
    datasets = {p: pydicom.dcmread(p, stop_before_pixels=True) for p in (work / "dicom").rglob("*.dcm")}
    ct = [str(p) for p, d in datasets.items() if d.Modality == "CT"]
    rs = next(p for p, d in datasets.items() if d.Modality == "RTSTRUCT")
    image = work / "ct.nii.gz"
    sidecar = convert_series(ct, image)
    structures = [
        dict(path=str(rs), series_uid=str(datasets[rs].SeriesInstanceUID), modality="RTSTRUCT", relation="referenced")
    ]
    aliases = load_aliases(REPO / "config" / "roi_names.yaml")
    masks_step(dict(series_key="ct", structures=structures), image, sidecar, work / "masks", aliases)
    features = extract_series(
        image,
        work / "masks",
        REPO / "config" / "pyradiomics" / "CT.yaml",
        FeatureRois("standard", REPO / "config" / "roi_names.yaml"),
        4_000_000,
    )
    features.to_parquet(work / "features.parquet")
    args = json.dumps([ct, str(work / "masks"), str(work / "features.parquet"), str(work / "export")])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", EXPORT, args], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    masks = json.loads((work / "masks" / "masks.json").read_text())
    voxels = sum(r.get("voxel_count", 0) for r in masks if r.get("status") == "ok")
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {len(ct)} CT slices 512 x 512")
    seg_mb = (work / "export" / "seg.dcm").stat().st_size / 1e6
    print(
        f"SEG: {summary['segments']} segments ({voxels:,} mask voxels), {seg_mb:.1f} MB; "
        f"SR: {summary['measurement_groups']} ROIs, {summary['measurements']} measurements, "
        f"{(work / 'export' / 'sr.dcm').stat().st_size / 1e6:.2f} MB; export {summary['seconds']:.1f} s, "
        f"peak resident {summary['peak_mb']:.0f} MB"
    )


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    here = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(whole benchmark {time.perf_counter() - t:.0f} s; {here:.0f} MB in this process)")
