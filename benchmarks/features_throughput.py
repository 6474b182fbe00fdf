"""Benchmark: radflow's feature extraction against bare pyradiomics, and peak memory with filters on a big CT.

1. The demo's planning CTs with their 5 ROIs each: radflow's extract_series (the image read once for all ROIs,
   provenance hashes, failure rows) against bare pyradiomics (extractor.execute(image file, mask file) per ROI, as
   its documentation shows). Same settings (config/pyradiomics/CT.yaml); the overhead is the ratio - 1.
2. A 512 x 512 x 200 CT with a 60 mm sphere ROI, CT settings plus LoG (sigma 1, 2, 3 mm) and wavelet: wall time,
   feature count and peak RSS of one extraction in its own process (/usr/bin/time).

Run: .venv/bin/python benchmarks/features_throughput.py [--results results]   (after `make demo`)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import yaml

REPO = Path(__file__).resolve().parents[1]
BIG = """
import sys, time, SimpleITK as sitk
from radflow.features import make_extractor, extract_roi
e = make_extractor(sys.argv[3])
image, mask = sitk.ReadImage(sys.argv[1]), sitk.ReadImage(sys.argv[2])
t = time.perf_counter()
values, failure = extract_roi(e, image, mask)
print("FEATURES", len(values), "SECONDS", round(time.perf_counter() - t, 1), failure)
"""


def demo_pairs(results: Path):
    series = json.loads("[]")
    for masks in sorted((results / "masks").glob("*/*")):
        image = results / "images" / masks.parent.name / f"{masks.name}.nii.gz"
        if json.loads(image.with_name(f"{masks.name}.json").read_text())["modality"] == "CT":
            series.append((image, masks))
    return series


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", default="results")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from radflow.features import extract_series, make_extractor

    settings = REPO / "config" / "pyradiomics" / "CT.yaml"
    pairs = demo_pairs(Path(args.results))
    if not pairs:
        sys.exit(f"no demo results under {args.results}: run `make demo` first")
    n_rois = sum(len(json.loads((m / "masks.json").read_text())) for _, m in pairs)
    ours, bare = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        for image, masks in pairs:
            extract_series(image, masks, settings)
        ours.append(time.perf_counter() - t)
        extractor = make_extractor(settings)
        t = time.perf_counter()
        for image, masks in pairs:
            for m in json.loads((masks / "masks.json").read_text()):
                extractor.execute(str(image), str(masks / f"{m['label']}.nii.gz"))
        bare.append(time.perf_counter() - t)
    a, b = min(ours), min(bare)
    print(
        f"demo CTs: {len(pairs)} images, {n_rois} ROIs; radflow {a:.2f} s, bare pyradiomics {b:.2f} s "
        f"(best of {args.repeats}); overhead {100 * (a / b - 1):+.1f} %"
    )

    tmp = Path(tempfile.mkdtemp(prefix="radflow-features-bench-"))
    rng = np.random.default_rng(0)
    ct = rng.normal(40, 20, (200, 512, 512)).astype(np.int16)
    zz, yy, xx = np.ogrid[:200, :512, :512]
    sphere = ((zz - 100) * 1.0) ** 2 + ((yy - 256) * 0.8) ** 2 + ((xx - 256) * 0.8) ** 2 <= 30.0**2
    ct[sphere] += 30
    image = sitk.GetImageFromArray(ct)
    image.SetSpacing((0.8, 0.8, 1.0))
    mask = sitk.GetImageFromArray(sphere.astype(np.uint8))
    mask.CopyInformation(image)
    sitk.WriteImage(image, str(tmp / "ct.nii.gz"))
    sitk.WriteImage(mask, str(tmp / "mask.nii.gz"))
    cfg = yaml.safe_load(settings.read_text())
    cfg["imageType"] = {"Original": {}, "LoG": {"sigma": [1.0, 2.0, 3.0]}, "Wavelet": {}}
    (tmp / "filters.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "PEAK %M WALL %e",
            sys.executable,
            "-c",
            BIG,
            str(tmp / "ct.nii.gz"),
            str(tmp / "mask.nii.gz"),
            str(tmp / "filters.yaml"),
        ],
        capture_output=True,
        text=True,
    )
    peak = re.search(r"PEAK (\d+) WALL ([\d.]+)", proc.stderr)
    found = re.search(r"FEATURES (\d+) SECONDS ([\d.]+)", proc.stdout)
    print(
        f"512x512x200 CT, {int(sphere.sum())}-voxel sphere ROI, LoG sigma 1/2/3 + wavelet: "
        f"{found.group(1) if found else '?'} features in {found.group(2) if found else '?'} s; process "
        f"{peak.group(2) if peak else '?'} s wall, "
        f"peak RSS {int(peak.group(1)) / 1024 if peak else float('nan'):.0f} MiB"
    )
    if proc.returncode:
        print(proc.stderr[-1500:])


if __name__ == "__main__":
    main()
