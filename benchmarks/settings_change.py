"""Benchmark: what a pyradiomics settings change costs, and what the first run costs, for this checkout and another
(--also, e.g. the commit before a change to the rules), interleaved.

On the demo cohort with the demo scenario (.test/demo/config.yaml of each checkout: overlays of every masked series,
the dose; the trust analyses off, since their perturbations depend on the settings either way): a first run from an
empty project, then `binWidth: 25` -> `binWidth: 10` in the project's CT settings and a second run. Each round runs
the checkouts in a rotated order; the table gives the median wall and CPU time (user + system of every process) of
both runs and the jobs the second run started, by rule.

Each checkout runs its own radflow: PYTHONPATH points at it, so the Snakefile and the jobs import the package from
that checkout and not the one installed in the environment. Run:
    .venv/bin/python benchmarks/settings_change.py --also <checkout> [--rounds 2] [--cores 2]
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TRUST_OFF = dict(robustness=None, negative_controls=None, harmonisation=None)


def project(folder: Path, checkout: Path, demo: Path) -> Path:
    shutil.copytree(checkout / "config", folder / "config")
    cfg = yaml.safe_load((checkout / ".test" / "demo" / "config.yaml").read_text())
    cfg.update(
        TRUST_OFF,
        demo_cohort=str(demo),
        dicom_root=str(demo / "TCGA-HNSC"),
        clinical=[str(demo / "clinical.tsv")],
    )
    (folder / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return folder


def run(folder: Path, checkout: Path, cores: int) -> tuple[float, float, collections.Counter]:
    """(wall s, CPU s of snakemake and every job, jobs started by rule) of one `snakemake --cores N`."""
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(checkout),
    )
    cmd = ["snakemake", "-s", str(checkout / "workflow" / "Snakefile"), "--cores", str(cores)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"snakemake in {folder} ({checkout}) failed:\n{proc.stderr[-3000:]}")
    jobs = collections.Counter(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", proc.stderr, re.M))
    jobs.pop("all", None)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), jobs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--also", type=Path, required=True, help="another radflow checkout to time in the same rounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from radflow.demo import generate_demo

    work = Path(tempfile.mkdtemp(prefix="radflow-settings-"))
    demo = work / "demo"
    generate_demo(demo)
    checkouts = {"this checkout": REPO, f"--also {args.also.name}": args.also.resolve()}
    first, second, rerun_jobs = collections.defaultdict(list), collections.defaultdict(list), {}
    names = list(checkouts)
    for r in range(args.rounds):
        for name in names[r % 2 :] + names[: r % 2]:
            folder = project(Path(tempfile.mkdtemp(dir=work)), checkouts[name], demo)
            wall, cpu, _ = run(folder, checkouts[name], args.cores)
            first[name].append((wall, cpu))
            ct = folder / "config" / "pyradiomics" / "CT.yaml"
            ct.write_text(ct.read_text().replace("binWidth: 25", "binWidth: 10"))
            wall2, cpu2, jobs = run(folder, checkouts[name], args.cores)
            second[name].append((wall2, cpu2))
            rerun_jobs[name] = jobs
            print(
                f"round {r + 1} {name}: first run {wall:.1f} s wall {cpu:.1f} s CPU; after binWidth 25 -> 10: "
                f"{wall2:.1f} s wall {cpu2:.1f} s CPU",
                flush=True,
            )
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.cores} used; medians")
    print(f"{'':<24}{'first wall':>11}{'first CPU':>10}{'rerun wall':>11}{'rerun CPU':>10}  rerun jobs by rule")
    for name in names:
        med = [statistics.median(v[i] for v in runs) for runs in (first[name], second[name]) for i in (0, 1)]
        jobs = ", ".join(f"{rule} {n}" for rule, n in sorted(rerun_jobs[name].items()))
        print(f"{name:<24}{med[0]:11.1f}{med[1]:10.1f}{med[2]:11.1f}{med[3]:10.1f}  {jobs}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
