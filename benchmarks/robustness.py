"""Benchmark: what robustness and negative controls cost, per patient and per perturbation, against a plain extraction.

For each patient's model image and ROI of a finished run (results/cohort.tsv's choice; the demo's CT GTVp), with
the run's CT settings: the plain extraction (extract_roi on the image and mask, what the series job does), then each
perturbation chain and negative control of config.yaml applied and extracted (radflow.trust.robustness.perturb,
radflow.trust.negative_controls.negative_control: what the perturb job does), each timed. Prints per kind the median
seconds and the ratio to the plain extraction, and per patient the whole perturb job's work against one extraction.
The job start (Python and the imports, about 2 s of CPU) comes on top, once per series.

Run: .venv/bin/python benchmarks/robustness.py [--project .]   (after `make demo`; or a test's project folder)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import yaml


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", default=".", help="a folder with config/ and results/ of a finished run")
    parser.add_argument("--chains", help="take the perturbations and controls from this config file instead")
    args = parser.parse_args()
    from radflow.features import extract_roi, make_extractor
    from radflow.trust.negative_controls import negative_control, parse_control
    from radflow.trust.robustness import crop_for_perturbation, paste, perturb, perturbation_name

    project = Path(args.project)
    config = yaml.safe_load((project / "config" / "config.yaml").read_text())
    results = project / "results"
    cohort = pd.read_csv(results / "cohort.tsv", sep="\t", dtype=str).dropna(subset=["series_uid"])
    modality = config["model"]["modality"]
    extractor = make_extractor(project / config["pyradiomics_settings"] / f"{modality}.yaml")
    asked = yaml.safe_load(Path(args.chains).read_text()) if args.chains else config
    chains = (asked.get("robustness") or {}).get("perturbations") or []
    controls = (asked.get("negative_controls") or {}).get("controls") or []
    rows = []
    for c in cohort.itertuples():
        image = sitk.ReadImage(str(results / "images" / c.patient_id / f"{c.series_uid}.nii.gz"))
        mask = sitk.ReadImage(str(results / "masks" / c.patient_id / c.series_uid / f"{c.roi_label}.nii.gz"))
        voxels = int((sitk.GetArrayViewFromImage(mask) > 0).sum())
        t = time.perf_counter()
        extract_roi(extractor, image, mask)
        plain = time.perf_counter() - t
        rows.append(dict(patient=c.patient_id, kind="plain extraction", seconds=plain, voxels=voxels))
        near_image, near_mask, start = crop_for_perturbation(image, mask, chains, extractor.settings)
        for k, spec in enumerate(chains):
            t = time.perf_counter()
            img, msk, _ = perturb(near_image, near_mask, spec, np.random.default_rng([1, k]), voxels)
            img, msk = paste(image, mask, img, msk, start)
            made = time.perf_counter() - t
            extract_roi(extractor, img, msk)
            rows.append(
                dict(patient=c.patient_id, kind=perturbation_name(spec), seconds=time.perf_counter() - t, make=made)
            )
        for name in controls:
            t = time.perf_counter()
            img = negative_control(image, mask, *parse_control(name), seed=1)
            made = time.perf_counter() - t
            extract_roi(extractor, img, mask)
            rows.append(dict(patient=c.patient_id, kind=name, seconds=time.perf_counter() - t, make=made))
    table = pd.DataFrame(rows)
    plain = table[table["kind"] == "plain extraction"].set_index("patient")["seconds"]
    table["ratio"] = table["seconds"] / table["patient"].map(plain)
    print(
        f"{len(plain)} patients, {modality} {config['model']['roi']}, ROI voxels (native grid) median "
        f"{int(table['voxels'].median())}"
    )
    summary = table.groupby("kind", sort=False).agg(
        seconds=("seconds", "median"), making=("make", "median"), ratio=("ratio", "median")
    )
    print(summary.round(3).to_string())
    per_patient = table[table["kind"] != "plain extraction"].groupby("patient")["seconds"].sum()
    print(
        f"per patient: {len(chains)} perturbations + {len(controls)} controls = {per_patient.median():.2f} s "
        f"(median), {float((per_patient / plain).median()):.1f} x one plain extraction ({plain.median():.2f} s)"
    )


if __name__ == "__main__":
    main()
