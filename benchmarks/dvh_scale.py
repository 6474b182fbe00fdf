"""Benchmark: the dose job's DVHs and dose features on a TCGA-HNSC-shaped planning CT.

The generated planning CT of benchmarks/features_cost.py (512 x 512 x 150 slices of 2.5 mm, an RTSTRUCT of 33 ROIs:
body outline, couch, targets, 21 organs at risk, an isocentre and four markers) with an RTDOSE over the whole CT on a
2.5 mm grid (a dose falling off from the targets: 70 Gy Gaussian, sigma 40 mm). Timed in one process, as the dose job
runs them: radflow.features.dvh.dose_to_rois (every ROI's DVH from its contours) and the dose features (the ROIs
rasterised on the dose grid, pyradiomics with config/pyradiomics/RTDOSE.yaml, the workflow's defaults feature_rois:
standard and max_roi_voxels 4,000,000). Printed: seconds per ROI (the five slowest), the sampling spacing each got,
totals and the peak resident memory of the process.

Run: .venv/bin/python benchmarks/dvh_scale.py
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]


def main():
    from factory import write_rtdose
    from features_cost import planning_ct

    from radflow.dicom.convert import convert_rtdose
    from radflow.features import extract_series
    from radflow.features.dvh import dose_to_rois
    from radflow.roi_names import FeatureRois, load_aliases
    from radflow.run.series_job import masks_step

    work = Path(tempfile.mkdtemp(prefix="radflow-dvh-scale-"))
    planning_ct(work / "dicom")
    rs_path = next(
        p for p in (work / "dicom").rglob("*.dcm") if pydicom.dcmread(p, stop_before_pixels=True).Modality == "RTSTRUCT"
    )
    cts = [pydicom.dcmread(p, stop_before_pixels=True) for p in (work / "dicom").rglob("*.dcm")]
    cts = [d for d in cts if d.Modality == "CT"]
    z = sorted(float(d.ImagePositionPatient[2]) for d in cts)
    x0, y0 = (float(v) for v in cts[0].ImagePositionPatient[:2])
    extent = float(cts[0].Columns) * float(cts[0].PixelSpacing[1])
    rs = pydicom.dcmread(rs_path)
    target = next(r for r in rs.StructureSetROISequence if r.ROIName.upper().startswith(("GTV", "PTV")))
    pts = np.concatenate(
        [
            np.asarray(c.ContourData, float).reshape(-1, 3)
            for rc in rs.ROIContourSequence
            if rc.ReferencedROINumber == target.ROINumber
            for c in rc.ContourSequence
        ]
    )
    centre = pts.mean(axis=0)
    step = 2.5
    n_xy, n_z = int(extent / step), int((z[-1] - z[0]) / step) + 1
    zz, yy, xx = np.meshgrid(
        z[0] + np.arange(n_z) * step, y0 + np.arange(n_xy) * step, x0 + np.arange(n_xy) * step, indexing="ij"
    )
    dose = 70.0 * np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (zz - centre[2]) ** 2) / (2 * 40.0**2))
    image = sitk.GetImageFromArray(dose)
    image.SetSpacing((step, step, step))
    image.SetOrigin((x0, y0, z[0]))
    rd = write_rtdose(work / "rd.dcm", image, for_uid=str(rs.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID))
    out = work / "dose"
    sidecar = convert_rtdose(rd, out / "dose.nii.gz")
    aliases = load_aliases(REPO / "config" / "roi_names.yaml")
    structures = [
        dict(
            path=str(rs_path),
            series_uid=str(rs.SeriesInstanceUID),
            modality="RTSTRUCT",
            relation="same_frame_of_reference",
        )
    ]
    t0 = time.perf_counter()
    table, curves = dose_to_rois(out / "dose.nii.gz", sidecar, structures, aliases)
    t1 = time.perf_counter()
    masks_step(dict(series_key="dose", structures=structures), out / "dose.nii.gz", sidecar, out / "masks", aliases)
    t2 = time.perf_counter()
    features = extract_series(
        out / "dose.nii.gz",
        out / "masks",
        REPO / "config" / "pyradiomics" / "RTDOSE.yaml",
        FeatureRois("standard", REPO / "config" / "roi_names.yaml"),
        4_000_000,
    )
    t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ok = table[table["status"] == "ok"]
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores; dose grid {n_xy} x {n_xy} x {n_z} "
        f"of {step} mm; {len(table)} ROIs ({len(ok)} with a DVH, the others points or markers)"
    )
    print(
        f"DVHs: {t1 - t0:.1f} s; masks on the dose grid: {t2 - t1:.1f} s; dose features "
        f"({int((features['status'] == 'ok').sum())} ROIs extracted): {t3 - t2:.1f} s; peak resident {peak:.0f} MB"
    )
    slow = ok.sort_values("samples", ascending=False).head(5)
    for r in slow.itertuples():
        size = f"{r.volume_cc:9.1f} cc  sampled at {r.sampling_mm:.2f} mm, {int(r.samples):,} samples"
        print(f"  {r.roi_original:<16} {size}")


if __name__ == "__main__":
    main()
