"""Benchmark: pyradiomics' shape class with radflow's mesh coefficients (radflow.features.mesh_shape) against
pyradiomics' own (all-pairs diameters), on balls in a 1 mm grid (the sizes of issue 31's table) and, when given, real
ROIs.

Each round extracts the shape class alone (config/pyradiomics/CT.yaml with only `shape`, no resampling) once with
each (radflow: its shape coefficients and its preparation, radflow.features.preparation; pyradiomics: its own of
both), alternating which goes first; printed: the median seconds of each and the ratio, and whether every shape value
agrees to 1e-12 relative.

Run: .venv/bin/python benchmarks/shape_class.py [--rounds 3] [IMAGE.nii.gz MASK.nii.gz ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def ball(radius: float) -> tuple[sitk.Image, sitk.Image]:
    n = int(2 * radius + 9)
    z, y, x = np.mgrid[:n, :n, :n]
    c = (n - 1) / 2
    mask = ((z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= radius * radius).astype(np.uint8)
    image = sitk.GetImageFromArray(np.random.default_rng(0).normal(40, 20, mask.shape).astype(np.int16))
    label = sitk.GetImageFromArray(mask)
    return image, label


def extractors(tmp: Path):
    from radflow.features import make_extractor

    params = yaml.safe_load((REPO / "config" / "pyradiomics" / "CT.yaml").read_text())
    params["featureClass"] = {"shape": None}
    params["setting"].pop("resampledPixelSpacing", None)
    out = {}
    for name, fast in (("radflow", True), ("pyradiomics", False)):
        params["radflow"] = {"fast_shape": fast, "fast_preparation": fast}
        path = tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(params))
        out[name] = make_extractor(path)
    return out


def main():
    from radflow.features import extract_roi

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("pairs", nargs="*", help="image and mask NIfTI files, in pairs")
    args = parser.parse_args()
    cases = [(f"ball r={r}", *ball(r)) for r in (20, 45)]
    for image, mask in zip(args.pairs[::2], args.pairs[1::2]):
        cases.append((Path(mask).name, sitk.ReadImage(image), sitk.ReadImage(mask)))
    ex = extractors(Path(tempfile.mkdtemp()))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.rounds} interleaved rounds")
    print(f"{'ROI':<28}{'voxels':>10}{'pyradiomics s':>15}{'radflow s':>11}{'ratio':>8}  values")
    for name, image, mask in cases:
        times = {"radflow": [], "pyradiomics": []}
        values = {}
        for r in range(args.rounds):
            order = ["radflow", "pyradiomics"] if r % 2 == 0 else ["pyradiomics", "radflow"]
            for which in order:
                t = time.perf_counter()
                values[which], why = extract_roi(ex[which], image, mask)
                times[which].append(time.perf_counter() - t)
                assert not why, why
        agree = all(abs(values["radflow"][k] - v) <= 1e-12 * abs(v) for k, v in values["pyradiomics"].items())
        voxels = int(sitk.GetArrayViewFromImage(mask).astype(bool).sum())
        p, f = statistics.median(times["pyradiomics"]), statistics.median(times["radflow"])
        print(f"{name:<28}{voxels:>10,}{p:>15.2f}{f:>11.2f}{p / f:>7.1f}x  {'equal' if agree else 'DIFFER'}")


if __name__ == "__main__":
    main()
