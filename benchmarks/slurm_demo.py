"""Benchmark: the demo cohort through profiles/slurm on a one-node SLURM cluster on localhost.

Needs root on Debian (the cluster of tests/slurm_cluster.py: Debian's slurmctld, slurmd, munge). Prints the wall
time, the SLURM jobs submitted (grouped) against the rule jobs they ran, and the time of a local run of the same
project for comparison. Run: .venv/bin/python benchmarks/slurm_demo.py [--series-per-group N]
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import make_project, snakemake_env  # noqa: E402
from slurm_cluster import LocalSlurm  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series-per-group", type=int, default=3)
    args = ap.parse_args()
    from radflow.demo import generate_demo

    tmp = Path(tempfile.mkdtemp(prefix="radflow-slurm-bench-"))
    generate_demo(tmp / "demo")
    snake = ["snakemake", "-s", str(REPO / "workflow" / "Snakefile")]
    local = make_project(tmp / "local", tmp / "demo")
    t0 = time.monotonic()
    subprocess.run([*snake, "--cores", "2"], cwd=local, env=snakemake_env(), check=True, capture_output=True)
    local_s = time.monotonic() - t0
    work = make_project(tmp / "slurm", tmp / "demo")
    with LocalSlurm(tmp / "cluster"):
        t0 = time.monotonic()
        proc = subprocess.run(
            [
                "timeout",
                "-k",
                "30",
                "1800",
                *snake,
                "--profile",
                str(REPO / "profiles" / "slurm"),
                "--group-components",
                f"series={args.series_per_group}",
            ],
            cwd=work,
            env=snakemake_env(),
            capture_output=True,
            text=True,
        )
        slurm_s = time.monotonic() - t0
    log = proc.stdout + proc.stderr
    submitted = len(re.findall(r"has been submitted with SLURM jobid", log))
    rule_jobs = len(re.findall(r"Finished jobid: \d+ \(Rule: (?!all\))", log))
    same = (work / "results" / "features.csv").read_bytes() == (local / "results" / "features.csv").read_bytes()
    print(f"machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}")
    print(f"snakemake exit code {proc.returncode}; features.csv equal to the local run's: {same}")
    print(f"local run (--cores 2): {local_s:.1f} s")
    print(
        f"SLURM run: {slurm_s:.1f} s, {submitted} SLURM jobs for {rule_jobs} rule jobs "
        f"({args.series_per_group} series per group)"
    )


if __name__ == "__main__":
    main()
