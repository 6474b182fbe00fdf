"""Benchmark: where a features job's time goes, per step and per feature class (issue 31's profile).

For each ROI of the given runs' CT series (and of the generated planning CT of benchmarks/features_cost.py), in one
process as the features job runs: radflow's crop and resampling (radflow.features.resample_cropped), pyradiomics'
own preparation on the result (an `execute` with no feature class: its image and mask checks, cropping and
discretisation set-up), each feature class alone (an `execute` with that class only, its preparation included)
and all seven at once (radflow.features.extract_roi, what the job runs). Printed per group: the total seconds of
each over the ROIs, and each class's share once its preparation is taken off.

Run: .venv/bin/python benchmarks/features_profile.py [--planning-ct] RUN_FOLDER ...
(a RUN_FOLDER is a project or study folder with results/: the demo's, a real-data study's)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]
CLASSES = ["shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"]


def ct_rois(run: Path, limit: int = 4_000_000):
    """(label, image, mask) of every ok CT mask of a run's results."""
    results = run / "results"
    for sidecar in sorted((results / "images").glob("*/*.json")):
        meta = json.loads(sidecar.read_text())
        if meta.get("modality") != "CT":
            continue
        image = sitk.ReadImage(str(sidecar.parent / (sidecar.name[: -len(".json")] + ".nii.gz")))
        masks = results / "masks" / meta["patient_id"] / meta["series_uid"]
        for r in json.loads((masks / "masks.json").read_text()) if (masks / "masks.json").exists() else []:
            if r.get("status") == "ok" and 50 <= r.get("voxel_count", 0) <= limit:
                yield f"{meta['patient_id']} {r['label']}", image, sitk.ReadImage(str(masks / f"{r['label']}.nii.gz"))


def extractors(tmp: Path):
    from radflow.features import make_extractor

    base = yaml.safe_load((REPO / "config" / "pyradiomics" / "CT.yaml").read_text())
    out = {"all": make_extractor(REPO / "config" / "pyradiomics" / "CT.yaml")}
    for name in ["none", *CLASSES]:
        params = dict(base, featureClass={"shape" if name == "none" else name: None})
        params["setting"] = dict(base["setting"], resampledPixelSpacing=None)  # on radflow's resampled crop
        path = tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(params))
        out[name] = make_extractor(path)
    out["none"].disableAllFeatures()  # pyradiomics' checks and preparation, no feature
    return out


def profile(name: str, rois, ex) -> None:
    from radflow.features import extract_roi, mesh_shape, resample_cropped

    totals = {k: 0.0 for k in ["crop and resample", "preparation", *CLASSES, "all (extract_roi)"]}
    n = 0
    for _, image, mask in rois:
        t = time.perf_counter()
        cropped = resample_cropped(image, mask, ex["all"].settings)
        if cropped is None:  # the whole image, as pyradiomics resamples it
            from radiomics import imageoperations

            cropped = imageoperations.resampleImage(image, sitk.Cast(mask, sitk.sitkUInt32), **ex["all"].settings)
        totals["crop and resample"] += time.perf_counter() - t
        img, msk = cropped
        with mesh_shape.enabled(True):
            for k in ["none", *CLASSES]:
                t = time.perf_counter()
                try:
                    ex[k].execute(img, msk)
                except Exception:  # pyradiomics refuses the ROI the same way in every class
                    pass
                totals["preparation" if k == "none" else k] += time.perf_counter() - t
        t = time.perf_counter()
        extract_roi(ex["all"], image, mask)
        totals["all (extract_roi)"] += time.perf_counter() - t
        n += 1
    prep = totals["preparation"]
    print(f"\n{name}: {n} ROIs")
    for k, v in totals.items():
        share = f"  (without its preparation: {v - prep:.2f} s)" if k in CLASSES else ""
        print(f"  {k:<20}{v:8.2f} s{share}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--planning-ct", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="radflow-profile-"))
    ex = extractors(tmp)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; CT.yaml")
    for run in args.runs:
        profile(str(run), list(ct_rois(run)), ex)
    if args.planning_ct:
        from features_vs_pyradiomics import planning_ct_series

        from radflow.roi_names import FeatureRois

        ((image_path, masks),) = planning_ct_series(tmp)
        wanted = FeatureRois("standard", REPO / "config" / "roi_names.yaml")
        image = sitk.ReadImage(str(image_path))
        rois = [
            (r["label"], image, sitk.ReadImage(str(masks / f"{r['label']}.nii.gz")))
            for r in json.loads((masks / "masks.json").read_text())
            if r.get("status") == "ok" and r.get("voxel_count", 0) >= 50 and not wanted.why_not(r)
        ]
        profile("planning CT (standard ROIs)", rois, ex)


if __name__ == "__main__":
    main()
