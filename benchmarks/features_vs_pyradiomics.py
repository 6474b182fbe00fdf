"""Benchmark: the features step against bare pyradiomics on the same images and masks (issue 31).

Three sets of CT series, each an image and its masks folder as the series job leaves them:
- the demo's CTs (a demo run's results/),
- the real CTs of a study on ../shared/reference/real (LUNG1-001, the sarcoma CTs),
- the generated planning CT of benchmarks/features_cost.py (512 x 512 x 150, 33 ROIs).

radflow: radflow.features.extract_series(image, masks, CT.yaml, feature_rois standard, max_roi_voxels 4,000,000),
what the features job runs (image read once, provenance hashes, its crop before resampling, its shape coefficients,
preparation and size zones, identical masks extracted once). Bare pyradiomics: a RadiomicsFeatureExtractor of the
same CT.yaml with diagnostics off (additionalInfo: false) and its own code throughout, the image read once,
`execute(image, mask)` for every ROI radflow gave a row with values (status ok). Rounds interleaved (radflow first
in odd rounds, pyradiomics first in even ones), in one process; medians printed. The values are compared too: the
largest relative difference over every feature of every ROI.

Run: .venv/bin/python benchmarks/features_vs_pyradiomics.py [--rounds 3] [--planning-ct] RUN_FOLDER ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]
SETTINGS = REPO / "config" / "pyradiomics" / "CT.yaml"
MAX_ROI_VOXELS = 4_000_000


def ct_series(run: Path):
    """(image, masks folder) of every CT series of a run with masks."""
    results = run / "results"
    for sidecar in sorted((results / "images").glob("*/*.json")):
        meta = json.loads(sidecar.read_text())
        masks = results / "masks" / meta["patient_id"] / meta["series_uid"]
        if meta.get("modality") == "CT" and (masks / "masks.json").exists():
            yield sidecar.parent / (sidecar.name[: -len(".json")] + ".nii.gz"), masks


def planning_ct_series(tmp: Path):
    """The generated planning CT, converted and masked as the series job does: [(image, masks folder)]."""
    import pydicom
    from features_cost import planning_ct

    from radflow.dicom.convert import convert_series
    from radflow.roi_names import load_aliases
    from radflow.run.series_job import masks_step

    planning_ct(tmp / "dicom")
    files = {p: pydicom.dcmread(p, stop_before_pixels=True) for p in (tmp / "dicom").rglob("*.dcm")}
    ct = [str(p) for p, d in files.items() if d.Modality == "CT"]
    rs = next(p for p, d in files.items() if d.Modality == "RTSTRUCT")
    sidecar = convert_series(ct, tmp / "ct.nii.gz")
    uid = str(files[rs].SeriesInstanceUID)
    structures = [dict(path=str(rs), series_uid=uid, modality="RTSTRUCT", relation="referenced")]
    masks_step(
        dict(series_key="ct", structures=structures),
        tmp / "ct.nii.gz",
        sidecar,
        tmp / "masks",
        load_aliases(REPO / "config" / "roi_names.yaml"),
    )
    return [(tmp / "ct.nii.gz", tmp / "masks")]


def radflow_step(series) -> tuple[float, dict]:
    """Seconds for the features step on every series, and {(image, label): values} of its ok rows."""
    from radflow.features import extract_series
    from radflow.roi_names import FeatureRois
    from radflow.tables import feature_columns

    wanted = FeatureRois("standard", REPO / "config" / "roi_names.yaml")
    t = time.perf_counter()
    tables = [(image, extract_series(image, masks, SETTINGS, wanted, MAX_ROI_VOXELS)) for image, masks in series]
    seconds = time.perf_counter() - t
    values = {}
    for image, table in tables:
        for _, row in table[table["status"] == "ok"].iterrows():
            values[(str(image), row["roi_label"])] = {c: row[c] for c in feature_columns(table)}
    return seconds, values


def bare_pyradiomics(series, labels) -> tuple[float, dict]:
    """Seconds for bare pyradiomics on the ROIs radflow extracted (image read once per series), and its values."""
    import logging

    import radiomics
    import yaml
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)
    params = yaml.safe_load(SETTINGS.read_text())
    params["setting"] = dict(params.get("setting") or {}, additionalInfo=False)
    params.pop("radflow", None)
    from radflow.features import mesh_shape

    t = time.perf_counter()
    extractor = featureextractor.RadiomicsFeatureExtractor(params)
    values = {}
    # pyradiomics' own shape C: radflow's extractions in this process installed its coefficients in pyradiomics'
    # shape class, on unless switched off (radflow's preparation and size zones are off outside its extractions)
    with mesh_shape.enabled(False):
        for image_path, masks in series:
            image = sitk.ReadImage(str(image_path))
            for label in sorted(lab for img, lab in labels if img == str(image_path)):
                mask = sitk.ReadImage(str(masks / f"{label}.nii.gz"))
                result = extractor.execute(image, mask)
                values[(str(image_path), label)] = {k: v for k, v in result.items() if not k.startswith("diagnostics_")}
    return time.perf_counter() - t, values


def largest_difference(ours: dict, theirs: dict) -> tuple[float, str]:
    """The largest relative difference between the two extractions' values, and where (radflow's mesh sums and
    whole-matrix GLSZM sums add in another order: 1e-12 relative at most; everything else is expected equal)."""
    worst, where = 0.0, ""
    for key, values in theirs.items():
        for name, value in values.items():
            a, b = float(np.asarray(ours[key][name], float)), float(np.real(np.asarray(value)))
            diff = abs(a - b) / max(abs(b), 1e-300) if a != b else 0.0
            if diff > worst:
                worst, where = diff, f"{Path(key[0]).parent.name} {key[1]} {name}"
    return worst, where


def compare(name: str, series, rounds: int) -> None:
    ours, bare = [], []
    values = labels = theirs = None
    for r in range(rounds):  # radflow first in the first round: the ROIs bare pyradiomics extracts are its ok rows
        for which in ("radflow", "bare") if r % 2 == 0 else ("bare", "radflow"):
            if which == "radflow":
                seconds, values = radflow_step(series)
                labels = labels or set(values)
                ours.append(seconds)
            else:
                seconds, theirs = bare_pyradiomics(series, labels)
                bare.append(seconds)
    worst, where = largest_difference(values, theirs)
    a, b = statistics.median(ours), statistics.median(bare)
    rounds = [", ".join(f"{x:.2f}" for x in times) for times in (ours, bare)]
    print(
        f"{name}: {len(series)} series, {len(labels)} ROIs extracted; radflow {a:.2f} s ({rounds[0]}), bare "
        f"pyradiomics {b:.2f} s ({rounds[1]}); pyradiomics / radflow = {b / a:.2f}x; largest relative difference "
        f"{worst:.1e}" + (f" ({where})" if where else ""),
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--planning-ct", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(f"{machine}, {os.cpu_count()} cores; {SETTINGS.name}; {args.rounds} rounds")
    for run in args.runs:
        compare(str(run), list(ct_series(run)), args.rounds)
    if args.planning_ct:
        tmp = Path(tempfile.mkdtemp(prefix="radflow-vs-pyradiomics-"))
        compare("planning CT (standard ROIs)", planning_ct_series(tmp), args.rounds)


if __name__ == "__main__":
    main()
