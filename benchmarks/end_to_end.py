"""Benchmark: DICOM to a CT feature table, end to end, radflow against med-imagetools + pyradiomics and against the
floor, on the demo cohort, interleaved.

- radflow: `snakemake --cores N results/features.csv` from an empty project folder, `modalities: [CT]` (the index,
  one job per image series, the merge).
- med-imagetools: `imgtools autopipeline` (CT + RTSTRUCT to NIfTI images and masks, N jobs), then its features two
  ways: as shipped (one `pyradiomics` batch with `--jobs N`, whose parent busy-waits, diagnostics on), and run as
  well as it can be (N plain `pyradiomics` processes over N parts of the batch, diagnostics off); the same settings
  file (config/pyradiomics/CT.yaml).
- floor: dcm2niix on each CT series (no masks: the least any pipeline must do to read the images) plus bare
  `pyradiomics` over radflow's own images and masks (no index, no checks, no provenance): N plain processes over N
  parts of the batch with pyradiomics' diagnostics off, as radflow runs it (the honest floor); and, for the record,
  the floor as BENCHMARKS.md measured it before 2026-12-07 (one process, diagnostics on).

Each round runs the three in a rotated order; the table prints the median wall and CPU time (user + system of
every process) and the ratios. Then a feature-agreement check: radflow's table against bare pyradiomics on
radflow's NIfTI (they must be identical), and the mask volumes of radflow and med-imagetools against the demo's
analytic volumes.

med-imagetools, its pyradiomics and dcm2niix are installed from PyPI into their own environment (--tools-env,
created when absent: med-imagetools==2.16.0, pyradiomics-bhklab==3.1.4, dcm2niix); radflow runs from this
checkout's .venv. Run: .venv/bin/python benchmarks/end_to_end.py [--rounds 3] [--cores 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TOOLS = ["med-imagetools==2.16.0", "pyradiomics-bhklab==3.1.4", "dcm2niix"]
SETTINGS = REPO / "config" / "pyradiomics" / "CT.yaml"


def tools_env(path: Path) -> Path:
    """The tools' own virtual environment (created and filled from PyPI when absent); its bin folder."""
    bin_dir = path / "bin"
    if not (bin_dir / "imgtools").exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(bin_dir / "pip"), "install", "--quiet", *TOOLS], check=True)
    return bin_dir


def timed(cmd, cwd=None, env=None) -> tuple[float, float]:
    """(wall s, CPU s of the command and all its children) of one command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def timed_parallel(cmds) -> tuple[float, float]:
    """(wall s, CPU s) of commands run at once, each of which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in cmds]
    errors = [(c, p.communicate()[1]) for c, p in zip(cmds, procs)]
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for (c, err), p in zip(errors, procs):
        if p.returncode:
            sys.exit(f"{' '.join(map(str, c))} failed:\n{err[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def no_diagnostics(folder: Path) -> Path:
    """The CT settings with pyradiomics' diagnostics off (additionalInfo: false), as radflow extracts."""
    params = yaml.safe_load(SETTINGS.read_text())
    params["setting"]["additionalInfo"] = False
    path = folder / "CT_no_diagnostics.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def split_batch(batch: Path, parts: int) -> list[Path]:
    """A pyradiomics batch file in parts of alternate rows (sizes within one of each other)."""
    rows = list(csv.DictReader(open(batch)))
    out = []
    for k in range(parts):
        path = batch.with_name(f"{batch.stem}_part{k}.csv")
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["id", "Image", "Mask"])
            w.writeheader()
            w.writerows(rows[k::parts])
        out.append(path)
    return out


def plain_processes(pyradiomics: Path, batch: Path, settings: Path, out: Path, parts: int) -> tuple[float, float]:
    """N plain pyradiomics processes over N parts of a batch, at once; their tables joined into out/features.csv
    (each part's table in out/, a fresh folder: pyradiomics appends to an output file that exists)."""
    pieces = split_batch(batch, parts)
    tables = [out / f"part{k}.csv" for k in range(len(pieces))]
    cmds = [[pyradiomics, p, "-p", settings, "-o", t, "-f", "csv"] for p, t in zip(pieces, tables)]
    wall, cpu = timed_parallel(cmds)
    pd.concat([pd.read_csv(t, low_memory=False) for t in tables]).to_csv(out / "features.csv", index=False)
    return wall, cpu


def ct_project(folder: Path, dicom_root: Path, clinical: Path, checkout: Path = REPO) -> Path:
    """A radflow project folder whose config (the checkout's, with these paths) converts and extracts CT only and
    draws no overlays; also used by benchmarks/cohort_scale.py."""
    shutil.copytree(checkout / "config", folder / "config")
    cfg = yaml.safe_load((folder / "config" / "config.yaml").read_text())
    cfg.update(
        demo_cohort=None,
        dicom_root=str(dicom_root),
        clinical=[str(clinical)],
        modalities=["CT"],
        qc_overlays="none",
    )
    (folder / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return folder


def snakemake(project: Path, target: str, cores: int, checkout: Path = REPO) -> tuple[float, float]:
    """(wall s, CPU s) of `snakemake --cores N target` in the project, with the checkout's Snakefile and its own
    radflow package (PYTHONPATH: not the one installed in the environment, which is this checkout's)."""
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(checkout),
    )
    cmd = ["snakemake", "-s", checkout / "workflow" / "Snakefile", "--cores", str(cores), target, "--quiet", "all"]
    return timed(cmd, cwd=project, env=env)


def run_radflow(work: Path, demo: Path, cores: int, checkout: Path = REPO) -> tuple[float, float, Path]:
    project = ct_project(
        Path(tempfile.mkdtemp(prefix="radflow-", dir=work)), demo / "TCGA-HNSC", demo / "clinical.tsv", checkout
    )
    wall, cpu = snakemake(project, "results/features.csv", cores, checkout)
    return wall, cpu, project


def run_medimagetools(work: Path, demo: Path, cores: int, bin_dir: Path) -> dict:
    """med-imagetools' autopipeline, then its features as shipped and as two plain processes: {variant: (wall,
    CPU, folder)}, each including the autopipeline's time."""
    out = Path(tempfile.mkdtemp(prefix="mit-", dir=work))
    t1 = timed(
        [
            bin_dir / "imgtools",
            "-q",
            "autopipeline",
            demo / "TCGA-HNSC",
            out / "nifti",
            "-m",
            "CT,RTSTRUCT",
            "-j",
            str(cores),
            "--crawl-directory",
            out / "crawl",
        ]
    )
    rows = list(csv.DictReader(open(out / "nifti" / "nifti_index-simple.csv")))
    ct = {r["SampleNumber"]: r["filepath"] for r in rows if r["Modality"] == "CT"}
    with open(out / "batch.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "Image", "Mask"])
        w.writeheader()
        for r in rows:
            if r["Modality"] == "RTSTRUCT" and r["SampleNumber"] in ct:
                image, mask = out / "nifti" / ct[r["SampleNumber"]], out / "nifti" / r["filepath"]
                w.writerow(dict(id=r["filepath"], Image=image, Mask=mask))
    shipped = timed(
        [
            bin_dir / "pyradiomics",
            out / "batch.csv",
            "-p",
            SETTINGS,
            "-o",
            out / "features.csv",
            "-f",
            "csv",
            "--jobs",
            str(cores),
        ]
    )
    plain_dir = out / "plain"
    plain_dir.mkdir()
    plain = plain_processes(bin_dir / "pyradiomics", out / "batch.csv", no_diagnostics(out), plain_dir, cores)
    return {
        "medimagetools (as shipped)": (t1[0] + shipped[0], t1[1] + shipped[1], out),
        "medimagetools (plain processes)": (t1[0] + plain[0], t1[1] + plain[1], out),
    }


def radflow_batch(project: Path, path: Path) -> int:
    """A pyradiomics batch file of every CT ROI radflow extracted (status ok), on radflow's images and masks (not the
    dose features of the demo's RTDOSE: they are on the dose grid, with other settings)."""
    features = pd.read_csv(project / "results" / "features.csv", dtype=str, keep_default_na=False)
    ok = features[(features["status"] == "ok") & (features["modality"] == "CT")]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "Image", "Mask"])
        w.writeheader()
        for r in ok.itertuples():
            w.writerow(
                dict(
                    id=f"{r.patient_id}/{r.series_uid}/{r.roi_label}",
                    Image=project / "results" / "images" / r.patient_id / f"{r.series_uid}.nii.gz",
                    Mask=project / "results" / "masks" / r.patient_id / r.series_uid / f"{r.roi_label}.nii.gz",
                )
            )
    return len(ok)


def ct_series_folders(demo: Path) -> list[Path]:
    import pydicom

    folders = []
    for folder in sorted({p.parent for p in (demo / "TCGA-HNSC").rglob("*.dcm")}):
        first = next(folder.glob("*.dcm"))
        if str(pydicom.dcmread(first, stop_before_pixels=True).Modality) == "CT":
            folders.append(folder)
    return folders


def run_floor(work: Path, folders: list[Path], batch: Path, bin_dir: Path, cores: int) -> dict:
    """dcm2niix (from the tools' environment) on each CT series, then bare pyradiomics: radflow's own environment's,
    so that numpy, SimpleITK and pyradiomics are the versions radflow pins (the tools' environment has numpy 2,
    whose last bits differ). {variant: (wall, CPU, folder)}: the honest floor (N plain processes, diagnostics off)
    and the floor as measured before (one process, diagnostics on), each including dcm2niix's time."""
    out = Path(tempfile.mkdtemp(prefix="floor-", dir=work))
    wall = cpu = 0.0
    for n, folder in enumerate(folders):
        w, c = timed([bin_dir / "dcm2niix", "-z", "y", "-o", out, "-f", f"ct{n:03d}", folder])
        wall, cpu = wall + w, cpu + c
    pyradiomics = Path(sys.executable).parent / "pyradiomics"
    honest = plain_processes(pyradiomics, batch, no_diagnostics(out), out, cores)
    before = out / "before"
    before.mkdir()
    w, c = timed([pyradiomics, batch, "-p", SETTINGS, "-o", before / "features.csv", "-f", "csv"])
    return {
        "floor": (wall + honest[0], cpu + honest[1], out),
        "floor as before (1 process, diagnostics)": (wall + w, cpu + c, before),
    }


def agreement(project: Path, floor_csv: Path) -> dict:
    """radflow's features against bare pyradiomics' on radflow's NIfTI, feature by feature."""
    ours = pd.read_csv(project / "results" / "features.csv", keep_default_na=False, low_memory=False)
    ours = ours[(ours["status"] == "ok") & (ours["modality"] == "CT")]
    ours.index = ours["patient_id"] + "/" + ours["series_uid"].astype(str) + "/" + ours["roi_label"]
    bare = pd.read_csv(floor_csv, keep_default_na=False, low_memory=False).set_index("id")
    names = [c for c in bare.columns if c.startswith("original_")]
    a = ours.loc[bare.index, names].to_numpy(float)
    b = bare[names].to_numpy(float)
    rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-300)
    return dict(
        rois=len(bare),
        features=len(names),
        values=a.size,
        identical=int((a == b).sum()),
        max_relative_difference=float(np.nanmax(rel)) if rel.size else 0.0,
    )


def mask_volumes(project: Path, mit: Path, demo: Path) -> pd.DataFrame:
    """Each demo CT ROI's volume (mm3) in radflow's and med-imagetools' masks against the analytic volume."""
    truth = json.loads((demo / "truth.json").read_text())
    rows = []
    mit_index = pd.read_csv(mit / "nifti" / "nifti_index-simple.csv", dtype=str)
    for pid, p in truth["patients"].items():
        for original, roi in (p.get("rois") or {}).items():
            volume = roi["volume_mm3"]
            masks = json.loads((project / "results" / "masks" / pid / p["ct_series_uid"] / "masks.json").read_text())
            ours = next((m["volume_mm3"] for m in masks if m["roi_original"] == original), np.nan)
            theirs = np.nan
            hit = mit_index[
                (mit_index["PatientID"] == pid) & (mit_index["filepath"].str.contains(f"[{original}]", regex=False))
            ]
            if len(hit):
                img = sitk.ReadImage(str(mit / "nifti" / hit["filepath"].iloc[0]))
                theirs = float(sitk.GetArrayViewFromImage(img).astype(bool).sum() * np.prod(img.GetSpacing()))
            rows.append(dict(patient=pid, roi=original, truth=volume, radflow=ours, medimagetools=theirs))
    return pd.DataFrame(rows)


def _agreement_and_volumes(reference: Path, last: dict, demo: Path) -> None:
    """How radflow's values agree with bare pyradiomics' on radflow's NIfTI, and each tool's mask volumes against
    the demo's analytic truth."""
    agree = agreement(reference, last["floor"] / "features.csv")
    print(
        f"\nradflow vs bare pyradiomics on radflow's NIfTI: {agree['rois']} ROIs x {agree['features']} features, "
        f"{agree['identical']} of {agree['values']} values identical, max relative difference "
        f"{agree['max_relative_difference']:.3g}"
    )
    volumes = mask_volumes(reference, last["medimagetools (as shipped)"], demo)
    if len(volumes):
        for tool in ("radflow", "medimagetools"):
            err = 100 * (volumes[tool] - volumes["truth"]) / volumes["truth"]
            print(
                f"mask volume vs analytic ({len(volumes)} ROIs), {tool}: median {err.median():+.1f} %, "
                f"range {err.min():+.1f} to {err.max():+.1f} %"
            )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--tools-env", type=Path, default=REPO / "benchmarks" / ".tools-env")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--also", type=Path, help="another radflow checkout (e.g. an earlier commit) to time in the same rounds"
    )
    args = parser.parse_args()
    bin_dir = tools_env(args.tools_env)
    work = Path(tempfile.mkdtemp(prefix="radflow-e2e-"))
    from radflow.demo import generate_demo

    demo = work / "demo"
    generate_demo(demo)
    folders = ct_series_folders(demo)
    # a first radflow run outside the rounds gives the floor its images and masks
    _, _, reference = run_radflow(work, demo, args.cores)
    batch = work / "floor_batch.csv"
    n_rois = radflow_batch(reference, batch)
    times = {"radflow": []}
    if args.also:
        times["radflow (--also)"] = []
    last = {}
    order = list(times) + ["medimagetools", "floor"]
    contenders = {
        "radflow (--also)": lambda: {"radflow (--also)": run_radflow(work, demo, args.cores, args.also)},
        "radflow": lambda: {"radflow": run_radflow(work, demo, args.cores)},
        "medimagetools": lambda: run_medimagetools(work, demo, args.cores, bin_dir),
        "floor": lambda: run_floor(work, folders, batch, bin_dir, args.cores),
    }
    for r in range(args.rounds):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            runs = contenders[name]()
            for variant, (wall, cpu, folder) in runs.items():
                times.setdefault(variant, []).append((wall, cpu))
                last[variant] = folder
                print(f"round {r + 1} {variant}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.cores} used; "
        f"{len(folders)} CT series, {n_rois} ROIs; {args.rounds} rounds (medians)"
    )
    ref = statistics.median(w for w, _ in times["radflow"])
    print(f"{'':<44}{'wall s':>8}{'CPU s':>8}{'wall / radflow':>16}  (min-max of rounds)")
    for name, runs in times.items():
        walls = [w for w, _ in runs]
        ratios = [w / rw for w, (rw, _) in zip(walls, times["radflow"])]
        print(
            f"{name:<44}{statistics.median(walls):8.1f}{statistics.median(c for _, c in runs):8.1f}"
            f"{statistics.median(walls) / ref:16.2f}  ({min(ratios):.2f}-{max(ratios):.2f})"
        )
    _agreement_and_volumes(reference, last, demo)
    if args.keep:
        print(f"\nwork folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
