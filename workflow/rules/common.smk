# Input functions over the index checkpoint: the DAG after the index is built from its tables.
import functools
import os
from pathlib import Path

import pandas as pd

from radflow.workflow_env import export_checkout

# `snakemake --sdm conda` runs every rule in this environment (pinned like pyproject.toml); the scripts import
# radflow from this checkout, so it need not be installed there.
CONDA_ENV = "../../envs/radflow.yaml"
export_checkout(Path(workflow.basedir))


wildcard_constraints:
    patient="[^/]+",
    series="[0-9.]+(_[0-9]+)?",


@functools.lru_cache(maxsize=4)
def _read_index(series_path, links_path, stamp):
    return pd.read_parquet(series_path), pd.read_parquet(links_path)


def index_tables():
    """The series and links tables, read once per version of the files (input functions run per job)."""
    out = checkpoints.index.get().output
    stamp = (os.stat(out.series).st_mtime_ns, os.stat(out.links).st_mtime_ns)
    return _read_index(out.series, out.links, stamp)


# Per-series work orders (radflow.orders): a convert, masks or dose job reads its own order, never the index tables,
# so that re-indexing redoes only the series whose orders changed.
ORDERS = "results/orders"


def work_order(kind):
    """Input function: the job's work order. The index writes them all; one deleted since is written again here
    from the index tables (the others are left as they are)."""

    def order(wildcards):
        from radflow.orders import order_path, write_index_orders

        out = checkpoints.index.get().output
        path = order_path(ORDERS, kind, wildcards.patient, wildcards.series)
        if not path.exists():
            write_index_orders(Path(out.series).parent, ORDERS)
        return str(path)

    return order


@functools.lru_cache(maxsize=4)
def _planned(series_path, links_path, stamp):
    from radflow.orders import build_orders

    series, links = _read_index(series_path, links_path, stamp)
    return build_orders(dict(series=series, links=links), kinds=("masks", "dose"))


def planned_orders(kind):
    """The masks or dose orders the index tables make (radflow.orders.build_orders: the one place that says which
    structure sets and dose grids go with which image series)."""
    out = checkpoints.index.get().output
    stamp = (os.stat(out.series).st_mtime_ns, os.stat(out.links).st_mtime_ns)
    return [order for (k, _, _), order in _planned(out.series, out.links, stamp).items() if k == kind]


def series_with_masks():
    """(patient, series key, modality) of every converted image series that has a structure set or SEG."""
    return [(o["patient_id"], o["series_key"], o["image_modality"]) for o in planned_orders("masks")]


def overlay_dirs(wildcards):
    """Overlay folders to draw (config qc_overlays): every masked series, the model's modality only, or none."""
    which = config["qc_overlays"]
    if which == "none":
        return []
    modality = config["model"]["modality"]
    return [f"results/qc/overlays/{p}/{s}" for p, s, m in series_with_masks() if which == "all" or m == modality]


def dose_files(wildcards):
    """The dose folder of every RTDOSE that has an image series to go with."""
    return [f"results/dose/{o['patient_id']}/{o['series_key']}" for o in planned_orders("dose")]


def dose_images(wildcards):
    """The converted CT images an RTDOSE is resampled onto."""
    images = [o["images"] for o in planned_orders("dose") if o["series_key"] == wildcards.series]
    return [f"results/images/{wildcards.patient}/{uid}.nii.gz" for uid in (images[0] if images else [])]


def feature_files(wildcards):
    return [f"results/features/{p}/{s}.parquet" for p, s, _ in series_with_masks()]


def settings_file(wildcards):
    series, _ = index_tables()
    modality = series.loc[series["series_uid"] == wildcards.series, "modality"].iloc[0]
    return f"{config['pyradiomics_settings']}/{modality}.yaml"


def demo_cohort():
    """The demo cohort's truth file when the config asks for the demo cohort (so it is generated first)."""
    return [f"{config['demo_cohort']}/truth.json"] if config["demo_cohort"] else []


def attempt_mb(base):
    """Memory that grows with each retry (base, 2 x base, ...): a job killed for memory gets more next time."""

    def mem_mb(wildcards, attempt):
        return base * attempt

    return mem_mb


def attempt_minutes(base):
    """Run time that grows with each retry, like attempt_mb."""

    def runtime(wildcards, attempt):
        return base * attempt

    return runtime


def _features_resources(wildcards, input, attempt):
    """A features job's memory and time from its own masks (radflow.features.job_resources), times the attempt.
    Snakemake evaluates this when the job is ready, after its masks exist; when they do not yet (a SLURM group job
    submitted with its convert and masks jobs), the budget of the largest ROI max_roi_voxels allows is asked for."""
    import json

    from radflow.features import job_resources
    from radflow.roi_names import FeatureRois

    masks_json = Path(str(input.masks)) / "masks.json"
    sidecar = Path(str(input.sidecar))
    budget = config["max_roi_voxels"]
    rois = FeatureRois(config["feature_rois"], config["roi_names"])
    if masks_json.exists() and sidecar.exists():
        need = job_resources(
            json.loads(sidecar.read_text()), json.loads(masks_json.read_text()), input.settings, rois, budget
        )
    else:
        need = job_resources(
            dict(size=[512, 512, 200], spacing=[1.0, 1.0, 1.0]),
            [dict(roi="GTVp", roi_original="budget", voxel_count=budget or 4000000)],
            input.settings,
            None,
            None,
        )
    return dict(mem_mb=need["mem_mb"] * attempt, minutes=need["minutes"] * attempt)


def features_mem_mb(wildcards, input, attempt):
    return _features_resources(wildcards, input, attempt)["mem_mb"]


def features_minutes(wildcards, input, attempt):
    return _features_resources(wildcards, input, attempt)["minutes"]
