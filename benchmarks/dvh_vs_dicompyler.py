"""Benchmark: radflow's DVHs against dicompyler-core's on the analytic cases of tests/analytic_dvh.py (in the manner of
Nelms et al., Med Phys 2015;42:4435): spheres, cylinders and cones contoured every 1-3 mm in 1-3 mm dose grids with
linear gradients along and across the slices, and a spherical fall-off in a sphere. Each case is written as real
DICOM (an RTSTRUCT of the contours, an RTDOSE of the dose) and read by both: radflow
(radflow.features.dvh.dose_to_rois, the dose job's function) and dicompyler-core 0.5.6 `dvhcalc.get_dvh`, as most
projects call it (no interpolation) and with its in-plane interpolation to 0.25 mm and 2 segments between planes. Each
metric (Dmean, D98, D95, D50, D2, D0.03cc, V20-V60 Gy, volume) is compared with its closed form for the contoured
object; printed: how many are off by more than 1 % and 3 % (or 0.1 Gy / 1 % of the volume for V), the largest error,
and the seconds.

dicompyler-core 0.5.6 (its latest release on PyPI) imports `pydicom.dicomio.read_file`, which pydicom 3 (radflow's pin)
no longer has: it runs in its own environment (--tools-env, created when absent: dicompyler-core 0.5.6, pydicom
2.4.4), one process per call, timed inside that process.

Run: .venv/bin/python benchmarks/dvh_vs_dicompyler.py [--tools-env benchmarks/.dvh-env]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from analytic_dvh import (  # noqa: E402
    CASES,
    D0,
    GRADIENT,
    PEAK,
    SHAPES,
    SIGMA,
    above_falloff,
    above_linear,
    contours_of,
    dose_grid,
    falloff,
    linear,
    sphere,
    truth,
)
from factory import write_rtdose, write_rtstruct  # noqa: E402

METRICS = ["volume_cc", "dmean_gy", "d98_pct_gy", "d95_pct_gy", "d50_pct_gy", "d2_pct_gy", "d0_03cc_gy"]
METRICS += [f"v{x}gy_pct" for x in (20, 30, 40, 50, 60)]


TOOLS = ["dicompyler-core==0.5.6", "pydicom==2.4.4", "scikit-image==0.25.2"]  # scikit-image: its interpolation
# run by the tools' environment: the metrics of ROI 1 of an RTSTRUCT in an RTDOSE, and the seconds of get_dvh
DICOMPYLER = """
import json, sys, time
from dicompylercore import dvhcalc
rs, rd, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if "interpolation_resolution" in kwargs:
    kwargs["interpolation_resolution"] = tuple(kwargs["interpolation_resolution"])
t0 = time.perf_counter()
dvh = dvhcalc.get_dvh(rs, rd, 1, **kwargs)
seconds = time.perf_counter() - t0
relative = dvh.relative_volume
out = dict(volume_cc=float(dvh.volume), dmean_gy=float(dvh.mean), seconds=seconds)
for x in (98, 95, 50, 2):
    out[f"d{x}_pct_gy"] = float(dvh.statistic(f"D{x}").value)
out["d0_03cc_gy"] = float(dvh.statistic("D0.03cc").value)
for x in (20, 30, 40, 50, 60):
    out[f"v{x}gy_pct"] = float(relative.statistic(f"V{x}Gy").value)
print(json.dumps(out))
"""


def tools_env(path: Path) -> Path:
    """The python of dicompyler-core's own virtual environment, created and filled from PyPI when absent."""
    python = path / "bin" / "python"
    if not (path / "ready").exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *TOOLS], check=True)
        (path / "ready").write_text("\n".join(TOOLS) + "\n")
    return python


def dicompyler_metrics(python: Path, rs, rd, **kwargs) -> dict:
    proc = subprocess.run(
        [str(python), "-c", DICOMPYLER, str(rs), str(rd), json.dumps(kwargs)], capture_output=True, text=True
    )
    if proc.returncode:
        sys.exit(f"dicompyler-core failed on {rs}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def radflow_metrics(rs, rd) -> dict:
    from radflow.dicom.convert import convert_rtdose
    from radflow.features.dvh import dose_to_rois

    out = Path(rd).with_suffix(".nii.gz")
    sidecar = convert_rtdose(rd, out)
    table, _ = dose_to_rois(out, sidecar, [dict(path=str(rs), series_uid="1")], aliases=[])
    return table.iloc[0].to_dict()


def errors(got: dict, want: dict) -> dict:
    """Per metric: the error as a share of the tolerance's base (relative, or 0.1 Gy for small doses)."""
    out = {}
    for k in METRICS:
        if k.startswith("v"):
            out[k] = abs(got[k] - want[k]) / 100  # share of the volume
        else:
            out[k] = abs(got[k] - want[k]) / max(abs(want[k]), 10.0)  # 1 % of >= 10 Gy: 0.1 Gy
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tools-env", type=Path, default=REPO / "benchmarks" / ".dvh-env")
    args = parser.parse_args()
    python = tools_env(args.tools_env)
    work = Path(tempfile.mkdtemp(prefix="radflow-dvh-"))
    tools = {
        "radflow": lambda rs, rd: radflow_metrics(rs, rd),
        "dicompyler-core (default)": lambda rs, rd: dicompyler_metrics(python, rs, rd),
        "dicompyler-core (0.25 mm, 2 segments)": lambda rs, rd: dicompyler_metrics(
            python, rs, rd, interpolation_resolution=[0.25, 0.25], interpolation_segments_between_planes=2
        ),
    }
    results = {name: [] for name in tools}
    seconds = {name: 0.0 for name in tools}
    cases = [(s, a, g, st, "linear") for s, a, g, st in CASES] + [
        ("sphere", None, g, st, "falloff") for g, st in ((1.0, 1.0), (2.0, 2.0), (3.0, 3.0))
    ]
    for n, (shape, axis, grid, step, kind) in enumerate(cases):
        zs, radii, _ = SHAPES[shape](step) if kind == "linear" else sphere(step)
        image = dose_grid(grid, linear(axis) if kind == "linear" else falloff)
        rs = write_rtstruct(work / f"rs{n}.dcm", {"ROI": [c for _, c in contours_of(zs, radii)]})
        rd = write_rtdose(work / f"rd{n}.dcm", image)
        total = above_linear(zs, radii, step, 2, -1e9)
        if kind == "linear":
            lo, hi = (zs[0] - step / 2, zs[-1] + step / 2) if axis == 2 else (-radii.max(), radii.max())
            want = truth(lambda d: above_linear(zs, radii, step, axis, (d - D0) / GRADIENT), total, D0 + lo, D0 + hi)
        else:
            outer = max(math.hypot(zs[0] - step / 2, radii[0]), max(radii))
            want = truth(
                lambda d: above_falloff(zs, radii, step, d), total, PEAK * math.exp(-(outer**2) / (2 * SIGMA**2)), PEAK
            )
        for name, run in tools.items():
            t0 = time.perf_counter()
            got = run(rs, rd)
            # dicompyler-core's own timing (inside its process); radflow's includes reading the RTDOSE
            seconds[name] += got.get("seconds", time.perf_counter() - t0)
            results[name].append(errors(got, want))
        print(f"case {n + 1}/{len(cases)}: {shape} {kind} axis {axis} grid {grid} mm contours {step} mm", flush=True)
    n_metrics = len(cases) * len(METRICS)
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {len(cases)} cases x {len(METRICS)}"
        f" metrics = {n_metrics}"
    )
    print(f"{'':<40}{'> 1 %':>7}{'> 3 %':>7}{'largest':>10}{'seconds':>9}")
    for name, rows in results.items():
        values = np.array([[r[k] for k in METRICS] for r in rows])
        worst = np.unravel_index(np.argmax(values), values.shape)
        print(
            f"{name:<40}{int((values > 0.01).sum()):>7}{int((values > 0.03).sum()):>7}"
            f"{100 * values.max():>9.2f}%{seconds[name]:>9.1f}   (largest: {METRICS[worst[1]]}, case {worst[0] + 1})"
        )


if __name__ == "__main__":
    main()
