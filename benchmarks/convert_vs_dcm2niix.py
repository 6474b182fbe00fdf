"""Benchmark: converting one DICOM series to NIfTI, radflow against dcm2niix, whole process each.

For each series: the median wall time of `radflow convert DIR OUT.nii.gz` and of `dcm2niix -z y DIR` over
N runs, their ratio, and radflow's in-process conversion time (no interpreter start-up).
Run: .venv/bin/python benchmarks/convert_vs_dcm2niix.py [--runs 5] [--demo data/demo]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IBSI = Path(os.environ.get("RADFLOW_REFERENCE", REPO.parent / "shared" / "reference")) / "ibsi"
BIN = Path(sys.executable).parent


def timed(cmd) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--demo", default=None, help="an existing demo cohort (else one is generated)")
    args = parser.parse_args()
    from radflow.demo import generate_demo
    from radflow.dicom.convert import convert_series

    tmp = Path(tempfile.mkdtemp(prefix="radflow-convert-bench-"))
    demo = Path(args.demo) if args.demo else tmp / "demo"
    if not args.demo:
        generate_demo(demo)
    p1 = demo / "TCGA-HNSC" / "TCGA-00-0001"
    cases = {
        "demo CT 256x256x72": next(p1.glob("*/2.000000-CT*")),
        "demo PET 128x128x54": next(p1.glob("*/4.000000-PET*")),
        "demo MR 256x256x36": next((demo / "TCGA-HNSC" / "TCGA-00-0003").glob("*/3.000000-T1*")),
        "IBSI CT phantom 204x201x60": IBSI / "ibsi_1_ct_radiomics_phantom" / "dicom" / "image",
        "IBSI STS_001 CT": IBSI / "ibsi_validation" / "dicom" / "STS_001" / "CT" / "image",
        "IBSI STS_001 PET": IBSI / "ibsi_validation" / "dicom" / "STS_001" / "PET" / "image",
        "IBSI SUV DRO_0_0": IBSI.parent / "ibsi-suv-dro" / "DRO" / "DRO_0_0" / "PT",
        "IBSI SUV DRO_3_4 (DC NONE)": IBSI.parent / "ibsi-suv-dro" / "DRO" / "DRO_3_4" / "PT",
    }
    print(f"{'series':30s} {'files':>5s} {'radflow':>9s} {'dcm2niix':>9s} {'ratio':>6s} {'in-process':>10s}")
    for name, folder in cases.items():
        if not folder.is_dir():
            continue
        files = sorted(str(p) for p in folder.iterdir())
        ours, theirs, inproc = [], [], []
        for n in range(args.runs):
            out = tmp / f"run{n}"
            out.mkdir()
            ours.append(timed([str(BIN / "radflow"), "convert", str(folder), str(out / "ours.nii.gz")]))
            theirs.append(timed([str(BIN / "dcm2niix"), "-z", "y", "-f", "ref", "-o", str(out), str(folder)]))
            t = time.perf_counter()
            convert_series(files, out / "inproc.nii.gz")
            inproc.append(time.perf_counter() - t)
            shutil.rmtree(out)
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{name:30s} {len(files):5d} {a:8.2f}s {b:8.2f}s {a / b:5.2f}x {statistics.median(inproc):9.2f}s")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
