"""Benchmark: the whole workflow on the demo cohort, from an empty project folder.

Prints wall times and peak memory (the sum of RSS over snakemake and all its children, sampled every 0.1 s,
and the largest single process from getrusage). Run: .venv/bin/python benchmarks/demo_run.py [--cores N]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cores", default="2")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="radflow-bench-"))
    shutil.copytree(REPO / "config", work / "config")
    cfg = yaml.safe_load((work / "config" / "config.yaml").read_text())
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--cores", args.cores, "--quiet", "all"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"snakemake failed:\n{proc.stderr.read().decode()[-3000:]}")
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    n_images = len(list((work / "results" / "images").rglob("*.nii.gz")))
    n_rows = sum(1 for _ in open(work / "results" / "features.csv")) - 1
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )
    print(f"demo run (generate cohort + whole workflow, --cores {args.cores}): {wall:.1f} s wall")
    print(f"  {n_images} images converted, {n_rows} feature rows")
    print(f"  peak memory, all processes together: {peak / 2**20:.0f} MiB; largest single process: {largest:.0f} MiB")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
