"""Benchmark: what a features job costs on real data and on a TCGA-HNSC-like planning CT, by feature_rois.

For each image series with a structure set or SEG (the real patients of ../shared/reference/real, and a generated
planning CT: 512 x 512 x 150 slices of 2.5 mm with 33 ROIs: a body outline, a couch, GTVs, CTVs, PTVs, head-and-
neck organs and five points), the series is indexed, converted and its masks rasterised by radflow's own functions;
then its features job runs in a process of its own, as Snakemake runs it, with the defaults (feature_rois:
standard, max_roi_voxels: 4,000,000) and with feature_rois: all (no voxel budget). Printed per series and setting:
ROIs extracted and skipped, wall seconds, peak resident memory of the job (wait4), and the memory and time the job
would ask Snakemake/SLURM for (radflow.features.job_resources) with the ratio ask / peak.

Run: .venv/bin/python benchmarks/features_cost.py [--only planning|real] [--reference ../shared/reference]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from radflow import demo  # noqa: E402
from radflow.dicom import write  # noqa: E402
from radflow.dicom.convert import convert_series  # noqa: E402
from radflow.dicom.masks import write_masks  # noqa: E402
from radflow.features import job_resources  # noqa: E402
from radflow.index import build_index, series_files  # noqa: E402
from radflow.roi_names import FeatureRois, load_aliases  # noqa: E402

ROI_NAMES = REPO / "config" / "roi_names.yaml"
JOB = """
import sys
from radflow.features import extract_series
from radflow.roi_names import FeatureRois
rule, budget = sys.argv[4], int(sys.argv[5]) or None
with open(sys.argv[7] + ".log", "w") as log:
    rows = extract_series(sys.argv[1], sys.argv[2], sys.argv[3],
                          FeatureRois(rule if rule in ("standard", "all") else rule.split(","), sys.argv[6]), budget,
                          progress=log)
rows.to_csv(sys.argv[7], index=False)
from radflow.features import job_peak_mb
print("PEAK_MB", job_peak_mb())
"""


# --------------------------------------------------------------------------------- the planning CT
class Slab:
    """A shape that is an ellipse between two planes (demo shapes only know ellipsoids and cylinders)."""

    def __init__(self, cx, cy, a, b, z0, z1):
        self.centre, self.axes, self.z = (cx, cy, (z0 + z1) / 2), (a, b, 1.0), (z0, z1)

    def section(self, z):
        return (self.axes[0], self.axes[1]) if self.z[0] <= z <= self.z[1] else None


def planning_ct(root: Path) -> None:
    """A head-and-neck planning CT as TCGA-HNSC's sites export it: 512 x 512 x 150 slices of 2.5 mm (0.98 mm pixels),
    an RTSTRUCT of 33 ROIs (body outline, couch, targets, 21 organs at risk, an isocentre and four markers)."""
    rng = np.random.default_rng(16)
    z0, n, pixel = -187.5, 150, 500 / 512
    grid = demo.SliceGrid(512, 512, pixel, 2.5, n, (-250.0 + pixel / 2, -250.0 + pixel / 2, z0))
    z1 = z0 + (n - 1) * 2.5
    anat = demo.make_anatomy(rng, (z0, z1))
    anat.body_axes = (150.0, 110.0)  # a neck and shoulders rather than the demo's small head
    study = demo._study(root, "TCGA-00-0100", "PLANNING", demo.datetime(2026, 1, 5, 9, 0), "M", 80.0)
    for_uid = demo.uid("TCGA-00-0100", "for")
    ct = demo._ct(study, anat, grid, rng, for_uid)
    E = demo.Ellipsoid
    gp, gn = anat.gtvp, anat.gtvn
    rois = [
        ("BODY", Slab(0.0, 10.0, 150.0, 110.0, z0, z1)),
        ("Couch Surface", Slab(0.0, 170.0, 240.0, 12.0, z0, z1)),
        ("GTV_P", gp),
        ("GTV_N", gn),
        ("GTVn_2", E((-34.0, -4.0, -28.0), (7.0, 7.0, 7.0))),
        ("CTV_70", E(gp.centre, tuple(a + 5 for a in gp.axes))),
        ("CTV_56", E((0.0, 0.0, 0.0), (70.0, 60.0, 80.0))),
        ("PTV_70", E(gp.centre, tuple(a + 8 for a in gp.axes))),
        ("PTV_56", E((0.0, 0.0, 0.0), (74.0, 64.0, 84.0))),
        ("PTV_63", E(gn.centre, tuple(a + 8 for a in gn.axes))),
        ("Parotid_L", anat.parotid_l),
        ("Parotid_R", anat.parotid_r),
        ("Submandibular_L", E((35.0, -20.0, 5.0), (10.0, 10.0, 12.0))),
        ("Submandibular_R", E((-35.0, -20.0, 5.0), (10.0, 10.0, 12.0))),
        ("SpinalCord", anat.cord),
        ("Cord_PRV5", demo.Cylinder(anat.cord.centre, 10.0, anat.cord.z_range)),
        ("Brainstem", E((0.0, 40.0, 120.0), (12.0, 14.0, 25.0))),
        ("Mandible", E((0.0, -45.0, 25.0), (45.0, 30.0, 15.0))),
        ("Larynx", E((0.0, -25.0, -60.0), (18.0, 18.0, 25.0))),
        ("Oral_Cavity", E((0.0, -40.0, 45.0), (30.0, 25.0, 15.0))),
        ("Pharyngeal Constrictors", E((0.0, 10.0, -10.0), (15.0, 8.0, 40.0))),
        ("Thyroid", E((0.0, -20.0, -100.0), (25.0, 10.0, 15.0))),
        ("Cochlea_L", E((40.0, 30.0, 140.0), (3.0, 3.0, 3.0))),
        ("Cochlea_R", E((-40.0, 30.0, 140.0), (3.0, 3.0, 3.0))),
        ("Eye_L", E((32.0, -60.0, 165.0), (12.0, 12.0, 12.0))),
        ("Eye_R", E((-32.0, -60.0, 165.0), (12.0, 12.0, 12.0))),
        ("Lens_L", E((32.0, -70.0, 165.0), (4.5, 2.5, 4.5))),
        ("Lens_R", E((-32.0, -70.0, 165.0), (4.5, 2.5, 4.5))),
    ]
    rs = demo.write_rtstruct(study, 7, ct, rois)
    # the points a planning system adds: an isocentre and markers, as POINT contours with their interpreted type
    path = next(Path(study.folder).glob("7.000000-RTSTRUCT-*/1-1.dcm"))
    ds = pydicom.dcmread(path)
    points = [("ISO", "ISOCENTER", (0.0, 0.0, 0.0))] + [
        (f"Marker_{k}", "MARKER", (x, 95.0, z))
        for k, (x, z) in enumerate([(-60, -100), (60, -100), (-60, 100), (60, 100)], start=1)
    ]
    for name, kind, xyz in points:
        write.append_roi(ds, write.Roi(name, [write.Contour(xyz, "POINT")], kind, [255, 255, 0], "MANUAL"))
    ds.save_as(path)
    assert rs


# ------------------------------------------------------------------------------------------- the runs
def prepared_series(dicom_root: Path, work: Path) -> list[dict]:
    """Index, convert and rasterise every image series that has a structure set, as the workflow does."""
    tables = build_index(dicom_root, work / "index", ROI_NAMES, threads=2)
    series, links, instances = tables["series"], tables["links"], tables["instances"]
    structs = links[links["source_modality"].isin(["RTSTRUCT", "SEG"])]
    aliases = load_aliases(ROI_NAMES)
    out = []
    for row in series[series["convert"] & series["series_uid"].isin(set(structs["image_series_uid"]))].itertuples():
        image = work / "images" / row.patient_id / f"{row.series_uid}.nii.gz"
        image.parent.mkdir(parents=True, exist_ok=True)
        convert_series(
            series_files(instances, row.series_uid),
            image,
            image.with_suffix("").with_suffix(".json"),
            series_key=row.series_uid,
        )
        mine = structs[structs["image_series_uid"] == row.series_uid]
        masks = work / "masks" / row.patient_id / row.series_uid
        write_masks(
            sorted(set(mine["source_path"])),
            image,
            masks,
            aliases,
            row.series_uid,
            dict(zip(mine["source_series_uid"], mine["relation"])),
        )
        out.append(
            dict(
                patient=row.patient_id,
                series=row.series_uid,
                modality=row.modality,
                image=image,
                masks=masks,
                size="x".join(str(int(v)) for v in (row.columns, row.rows, row.n_slices)),
            )
        )
    return out


def run_job(s: dict, rule: str, budget: int | None, out_csv: Path) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of one features job in its own process. The peak is the job's own (VmHWM,
    kept across the per-ROI resets): the rusage of a child counts the pages of this parent it was forked from."""
    settings = REPO / "config" / "pyradiomics" / f"{s['modality']}.yaml"
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            JOB,
            str(s["image"]),
            str(s["masks"]),
            str(settings),
            rule,
            str(budget or 0),
            str(ROI_NAMES),
            str(out_csv),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise SystemExit(f"features job failed for {s['series']}:\n{proc.stderr[-3000:]}")
    peak = float(proc.stdout.split("PEAK_MB")[-1].split()[0])
    return time.perf_counter() - start, peak


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", default=str(REPO.parent / "shared" / "reference"))
    ap.add_argument("--only", choices=["planning", "real"], default=None)
    ap.add_argument("--defaults-only", action="store_true", help="only feature_rois: standard")
    ap.add_argument("--keep", default=None, help="work in this folder and keep it (the DICOM, images, masks)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(args.keep or tmp)
        sources = []
        if args.only != "real":
            planning_ct(tmp / "planning")
            sources.append(("planning CT (generated)", tmp / "planning"))
        if args.only != "planning":
            real = Path(args.reference) / "real"
            sources += [
                ("LUNG1-001", real / "mirp_nsclc_lung1_001"),
                ("QIN PET + SEG", real / "mirp_qin_headneck_0139_pet_seg"),
                ("sarcoma STS", real / "ibsi_validation_sts"),
            ]
        for label, root in sources:
            for s in prepared_series(root, tmp / "work" / label.replace(" ", "_")):
                sidecar = json.loads(s["image"].with_suffix("").with_suffix(".json").read_text())
                masks = json.loads((s["masks"] / "masks.json").read_text())
                for rule, budget in (("standard", 4_000_000), ("all", None))[: 1 if args.defaults_only else 2]:
                    table = tmp / f"rows-{s['patient']}-{s['series'][-8:]}-{rule}.csv"
                    wall, peak = run_job(s, rule, budget, table)
                    done = pd.read_csv(table)
                    settings = REPO / "config" / "pyradiomics" / f"{s['modality']}.yaml"
                    ask = job_resources(sidecar, masks, settings, FeatureRois(rule, ROI_NAMES), budget)
                    rows.append(
                        dict(
                            source=label,
                            patient=s["patient"],
                            modality=s["modality"],
                            size=s["size"],
                            feature_rois=rule,
                            rois=len(done),
                            extracted=int((done["status"] == "ok").sum()),
                            skipped=int((done["status"] == "skipped").sum()),
                            failed=int((done["status"] == "failed").sum()),
                            seconds=round(wall, 1),
                            peak_mb=round(peak),
                            ask_mb=ask["mem_mb"],
                            ask_min=ask["minutes"],
                            mem_ratio=round(ask["mem_mb"] / peak, 2),
                            time_ratio=round(ask["minutes"] * 60 / wall, 1),
                        )
                    )
                    print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    print()
    print(df.to_markdown(index=False) if hasattr(df, "to_markdown") else df.to_string(index=False))


if __name__ == "__main__":
    main()
