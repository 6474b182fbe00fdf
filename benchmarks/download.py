"""Benchmark: radflow download against plain clients on the same files, from local servers.

A cohort of N generated planning CTs (benchmarks/cohort_scale.py: 512 x 512 x 150 slices and an RTSTRUCT each) is
served (1) by the NBIA-like HTTP server of the tests (tests/servers.py, in its own process; each series' zip made
once before timing) and (2) from moto's S3 server, laid out like IDC's buckets. Timed, interleaved, R rounds:

- NBIA: `radflow download --tcia` (rate limit off: --requests-per-second 1000) against one `curl` process fetching
  the same getImageWithMD5Hash zips (curl alone, and curl + unzip, which is what a user needs to have files);
- IDC: `radflow download --idc` (two s5cmd calls per series: a listing for the ETags, then the copy) against one
  `s5cmd cp` of the whole bucket;
- the verification radflow adds, timed on its own over the downloaded files: MD5 of every file, and every file read
  as DICOM with the series, count and patient checked (radflow.download.images.verify_folder).

Run: .venv/bin/python benchmarks/download.py [--patients 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from cohort_scale import make_cohort  # noqa: E402
from servers import S3Server, dicom_catalog, free_port  # noqa: E402

BIN = Path(sys.executable).parent
COLLECTION = "TCGA-SC"


def timed(cmd, **kw) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def _start_server(root: Path, link) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "servers.py"), str(root), COLLECTION, str(port)]
        + ([str(link)] if link else []),
        stdout=subprocess.PIPE,
        text=True,
    )
    server.stdout.readline()
    return server, f"http://127.0.0.1:{port}"


def _zip_once(urls: list[str]) -> int:
    """Ask the server for every zip once (it makes each once; not timed); their bytes."""
    zipped = 0
    for u in urls:
        got = subprocess.run(
            ["curl", "-s", "-o", os.devnull, "-w", "%{size_download}", u], check=True, capture_output=True, text=True
        )
        zipped += int(float(got.stdout))
    return zipped


def _curl(dest: Path, urls: list[str], times: dict) -> float:
    """curl of every zip in one process (timed), then unzip of each (times["curl + unzip"] gets both)."""
    dest.mkdir()
    cmd = ["curl", "-s", "--fail"]
    for k, u in enumerate(urls):
        cmd += ["-o", str(dest / f"{k}.zip"), u]
    t = timed(cmd)
    start = time.perf_counter()
    for k in range(len(urls)):
        subprocess.run(["unzip", "-q", "-d", str(dest / str(k)), str(dest / f"{k}.zip")], check=True)
    times["curl + unzip"].append(t + time.perf_counter() - start)
    return t


def _tools(url: str, urls: list[str], s3, index: Path, times: dict) -> dict:
    """What each round runs, by name: a function of the destination folder that returns its seconds."""
    radflow = [str(BIN / "radflow"), "download", "--requests-per-second", "1000"]
    idc = COLLECTION.lower().replace("-", "_")
    no_aws = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    s5cmd = [str(BIN / "s5cmd"), "--no-sign-request", "--endpoint-url", s3.url, "cp", "s3://idc-open-data/*"]
    return {
        "radflow tcia": lambda dest: timed(radflow + ["--tcia", COLLECTION, "--url", url, "--dest", str(dest)]),
        "curl": lambda dest: _curl(dest, urls, times),
        "radflow idc": lambda dest: timed(
            radflow + ["--idc", idc, "--index", str(index), "--url", s3.url, "--dest", str(dest)]
        ),
        "s5cmd cp": lambda dest: timed(s5cmd + [f"{dest}/"], env=no_aws),
    }


def _verification(last: Path) -> tuple[float, float]:
    """The verification on its own, over the last round's radflow download: (MD5 of every file, DICOM checks)."""
    from radflow.download.images import verify_folder

    folders = sorted({p.parent for p in last.rglob("*.dcm")})
    start = time.perf_counter()
    for f in folders:
        for p in f.iterdir():
            hashlib.md5(p.read_bytes()).hexdigest()
    t_md5 = time.perf_counter() - start
    start = time.perf_counter()
    for f in folders:
        verify_folder(f, dict(series_uid=f.name, expected_files=None))
    return t_md5, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--link", type=float, default=None, help="MB/s of the NBIA server's link (default: loopback)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="radflow-download-bench-"))
    try:
        root = work / "served"
        n_files = make_cohort(root, args.patients)
        catalog = dicom_catalog(root, COLLECTION)
        size = sum(len(d) for s in catalog.values() for _, d in s["files"])
        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.patients} patients, "
            f"{len(catalog)} series, {n_files} files, {size / 1e6:.0f} MB of DICOM"
        )
        server, url = _start_server(root, args.link)
        urls = [f"{url}/getImageWithMD5Hash?SeriesInstanceUID={u}" for u in sorted(catalog)]
        zipped = _zip_once(urls)
        print(
            f"the server's zips: {zipped / 1e6:.0f} MB (deflated)"
            + (f"; its link {args.link:g} MB/s, shared by all connections" if args.link else "; loopback")
        )
        times = {k: [] for k in ("radflow tcia", "curl", "curl + unzip", "radflow idc", "s5cmd cp")}
        with S3Server() as s3:
            index = work / "idc_index.parquet"
            pd.DataFrame(s3.publish("idc-open-data", catalog)).to_parquet(index)
            tools = _tools(url, urls, s3, index, times)
            for r in range(args.rounds):
                for what, run in tools.items():
                    dest = work / f"out-{r}-{what.replace(' ', '_')}"
                    times[what].append(run(dest))
                    if r < args.rounds - 1:
                        shutil.rmtree(dest)
        server.terminate()
        t_md5, t_dicom = _verification(work / f"out-{args.rounds - 1}-radflow_tcia")
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"\nmedian of {args.rounds} interleaved rounds (s) and throughput of DICOM bytes:")
        for k, v in med.items():
            print(
                f"  {k:14s} {v:7.2f} s  {size / 1e6 / v:7.1f} MB/s   rounds {', '.join(f'{x:.2f}' for x in times[k])}"
            )
        print(
            f"radflow tcia / curl = {med['radflow tcia'] / med['curl']:.2f}x, "
            f"/ (curl + unzip) = {med['radflow tcia'] / med['curl + unzip']:.2f}x"
        )
        print(f"radflow idc / s5cmd cp = {med['radflow idc'] / med['s5cmd cp']:.2f}x")
        print(
            f"verification alone: MD5 of {n_files} files {t_md5:.2f} s, DICOM read + checks {t_dicom:.2f} s "
            f"({(t_md5 + t_dicom) / med['radflow tcia'] * 100:.0f} % of radflow's NBIA download)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
