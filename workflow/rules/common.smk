# Input functions over the index checkpoint: the DAG after the index is built from its tables.
import functools
import os
import sys
from pathlib import Path

import pandas as pd

from radflow.run.workflow_env import export_checkout

# `snakemake --sdm conda` runs every rule in this environment (pinned like pyproject.toml); the scripts import
# radflow from this checkout, so it need not be installed there.
CONDA_ENV = "../envs/radflow.yaml"
export_checkout()


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


# Per-series work orders (radflow.index.orders): a convert, masks or dose job reads its own order, never the index tables,
# so that re-indexing redoes only the series whose orders changed.
ORDERS = "results/orders"


def work_order(kind):
    """Input function: the job's work order. The index writes them all; one deleted since is written again here
    from the index tables (the others are left as they are)."""

    def order(wildcards):
        from radflow.index.orders import order_path, write_index_orders

        out = checkpoints.index.get().output
        path = order_path(ORDERS, kind, wildcards.patient, wildcards.series)
        if not path.exists():
            write_index_orders(Path(out.series).parent, ORDERS)
        return str(path)

    return order


@functools.lru_cache(maxsize=4)
def _planned(series_path, links_path, stamp):
    from radflow.index.orders import build_orders

    series, links = _read_index(series_path, links_path, stamp)
    return build_orders(dict(series=series, links=links), kinds=("masks", "dose"))


def _planned_now():
    """{(kind, patient, series): order} of the masks and dose orders the current index tables make."""
    out = checkpoints.index.get().output
    stamp = (os.stat(out.series).st_mtime_ns, os.stat(out.links).st_mtime_ns)
    return _planned(out.series, out.links, stamp)


def planned_orders(kind):
    """The masks or dose orders the index tables make (radflow.index.orders.build_orders: the one place that says which
    structure sets and dose grids go with which image series)."""
    return [order for (k, _, _), order in _planned_now().items() if k == kind]


def planned_order(kind, patient, series):
    """The masks or dose order of one series, or None."""
    return _planned_now().get((kind, patient, series))


def series_with_masks():
    """(patient, series key, modality) of every converted image series that has a structure set or SEG."""
    return [(o["patient_id"], o["series_key"], o["image_modality"]) for o in planned_orders("masks")]


def overlay_dirs(wildcards):
    """Overlay folders to draw (config qc_overlays): every masked series, the model's modality only, or none."""
    which = config["qc_overlays"]
    if which == "none":
        return []
    modality = SETTINGS.model.modality
    return [f"results/qc/overlays/{p}/{s}" for p, s, m in series_with_masks() if which == "all" or m == modality]


def dose_files(wildcards):
    """The dose folder of every RTDOSE that has an image series to go with."""
    return [f"results/dose/{o['patient_id']}/{o['series_key']}" for o in planned_orders("dose")]


def dose_images(wildcards):
    """The converted CT images an RTDOSE is resampled onto."""
    images = [o["images"] for o in planned_orders("dose") if o["series_key"] == wildcards.series]
    return [f"results/images/{wildcards.patient}/{uid}.nii.gz" for uid in (images[0] if images else [])]


def dose_structures(wildcards):
    """The masks work orders of the images an RTDOSE goes with: the structure sets whose ROIs get its DVHs."""
    from types import SimpleNamespace

    images = [o["images"] for o in planned_orders("dose") if o["series_key"] == wildcards.series]
    keys = [uid for uid in (images[0] if images else []) if planned_order("masks", wildcards.patient, uid)]
    return [work_order("masks")(SimpleNamespace(patient=wildcards.patient, series=uid)) for uid in keys]


def feature_files(wildcards):
    """The features of every masked image series, and the dose features of every dose grid (rule dose)."""
    dose = [f"results/features/{o['patient_id']}/dose_{o['series_key']}.parquet" for o in planned_orders("dose")]
    return [f"results/features/{p}/{s}.parquet" for p, s, _ in series_with_masks()] + dose


def settings_file(wildcards):
    series, _ = index_tables()
    modality = series.loc[series["series_uid"] == wildcards.series, "modality"].iloc[0]
    return f"{config['pyradiomics_settings']}/{modality}.yaml"


# Clinical files: those the config lists (paths, or tables with a column mapping) and the GDC download's. None at all
# is a run without clinical data: the features and the cohort accounting, no modelling table.
GDC_DIR = "results/download/gdc"
TABLE_DIR = "results/download/table"


def _downloaded_clinical():
    from radflow.download.clinical import table_entry

    source = config["source"]["clinical"]
    if not source:
        return []
    if source["from"] == "table":  # a collection's spreadsheet, read with its column mapping
        return [table_entry(source, TABLE_DIR)]
    return [f"{GDC_DIR}/clinical.tsv", f"{GDC_DIR}/follow_up.tsv"]


CLINICAL_ENTRIES = list(config["clinical"]) + _downloaded_clinical()
CLINICAL_FILES = [e["path"] if isinstance(e, dict) else e for e in CLINICAL_ENTRIES]
HAS_CLINICAL = bool(CLINICAL_FILES)


def downloaded_images():
    """The image download's report when the config asks radflow to download (the index runs after it)."""
    return ["results/download/images.tsv"] if config["source"]["images"] else []


def if_clinical(**paths):
    """Named inputs or outputs that exist only in a run with clinical data."""
    return paths if HAS_CLINICAL else {}


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


@functools.lru_cache(maxsize=4)
def _rois_by_structure(rois_path, stamp):
    """The index's ROI rows, grouped by the SOP instance UID of their structure set."""
    rois = pd.read_parquet(rois_path)
    return {sop: g.to_dict("records") for sop, g in rois.groupby("rtstruct_sop_uid", sort=False)}


@functools.lru_cache(maxsize=4)
def _feature_rois(rule, names_path):
    from radflow.roi_names import FeatureRois

    return FeatureRois(rule, names_path)


def masks_order(wildcards):
    """Input function: the series' masks work order, or nothing when no structure set goes with the series (the
    series job then converts it and writes an empty masks folder and feature table)."""
    if planned_order("masks", wildcards.patient, wildcards.series) is None:
        return []
    return work_order("masks")(wildcards)


# measured for conversion: 190-350 MiB on demo and STS series, about 1.5 GB for a 512x512x600 CT
CONVERT_MB = 2000
CONVERT_AND_MASKS_MINUTES = 6


def _features_resources(wildcards, attempt):
    """A features job's memory and time: the features of its largest ROI, planned from the index before the masks
    exist (radflow.features.planned_resources: each ROI as its contours' bounding box on the image's grid), times
    the attempt."""
    from radflow.features import planned_resources

    series, _ = index_tables()
    out = checkpoints.index.get().output
    by_structure = _rois_by_structure(out.rois, os.stat(out.rois).st_mtime_ns)
    row = series.loc[series["series_uid"] == wildcards.series].iloc[0]
    order = planned_order("masks", wildcards.patient, wildcards.series)
    rois = [r for s in (order["structures"] if order else []) for r in by_structure.get(s["sop_uid"], [])]
    need = planned_resources(
        row.to_dict(),
        rois,
        settings_file(wildcards),
        _feature_rois(SETTINGS.features.feature_rois, config["roi_names"]),
        SETTINGS.features.max_roi_voxels,
    )
    return dict(mem_mb=need["mem_mb"] * attempt, minutes=need["minutes"] * attempt)


def features_mem_mb(wildcards, attempt):
    return _features_resources(wildcards, attempt)["mem_mb"]


def features_minutes(wildcards, attempt):
    return _features_resources(wildcards, attempt)["minutes"]


# what a dose grid's features job asks: its ROIs on a coarse grid (2 mm after resampling), no shape class
DOSE_FEATURES_MB, DOSE_FEATURES_MINUTES = 2000, 10


def perturb_mem_mb(wildcards, attempt):
    """A perturb job's memory: its image's features job's (model.modality RTDOSE: a dose features job's)."""
    if SETTINGS.model.modality == "RTDOSE":
        return DOSE_FEATURES_MB * attempt
    return features_mem_mb(wildcards, attempt)


def perturb_minutes(wildcards, attempt):
    """A perturb job's time: one extraction per perturbation and control besides the original."""
    if SETTINGS.model.modality == "RTDOSE":
        one = DOSE_FEATURES_MINUTES * attempt
    else:
        one = features_minutes(wildcards, attempt)
    chains = len(ROBUSTNESS.perturbations) if ROBUSTNESS else 0
    return one * (1 + chains + (len(CONTROLS.controls) if CONTROLS else 0))


# Which features a paper can trust (rules/trust.smk): each part off unless the config asks for it.
ROBUSTNESS = SETTINGS.perturb.robustness
CONTROLS = SETTINGS.perturb.controls
HARMONISATION = SETTINGS.harmonisation
PERTURBED = bool(ROBUSTNESS or CONTROLS)
if (CONTROLS or HARMONISATION) and not HAS_CLINICAL and workflow.is_main_process:
    print(
        "radflow: no clinical data in this run (clinical: [] and no source.clinical): negative_controls and "
        "harmonisation need the modelling table and are skipped",
        file=sys.stderr,
    )


def perturbed_files(wildcards):
    """One table per series of the model's modality with masks: its perturbed and negative-control features (with
    model.modality RTDOSE, one per dose grid)."""
    modality = SETTINGS.model.modality
    if modality == "RTDOSE":
        return [f"results/perturbed/{o['patient_id']}/{o['series_key']}.parquet" for o in planned_orders("dose")]
    return [f"results/perturbed/{p}/{s}.parquet" for p, s, m in series_with_masks() if m == modality]


def perturb_inputs(wildcards):
    """The image, masks and features a perturb job starts from: a converted image's, or (model.modality RTDOSE)
    the dose grid's as the dose job wrote them."""
    p, s = wildcards.patient, wildcards.series
    if SETTINGS.model.modality == "RTDOSE":  # (the dose job's output is its folder: dose.nii.gz and masks/)
        return dict(dose_folder=f"results/dose/{p}/{s}", features=f"results/features/{p}/dose_{s}.parquet")
    return dict(
        image=f"results/images/{p}/{s}.nii.gz",
        masks=f"results/masks/{p}/{s}",
        features=f"results/features/{p}/{s}.parquet",
    )


def trust_outputs(every=False):
    """The final tables of what the config switched on (inputs of the all target); every: with the tables made
    along with them (the provenance manifest's)."""
    out = ["results/perturbed.parquet"] if every and PERTURBED else []
    if ROBUSTNESS:
        out += ["results/robustness/icc.csv", "results/robustness/icc.png"]
        out += ["results/robustness/features.csv"] if every else []
    if CONTROLS and HAS_CLINICAL:
        out += ["results/negative_controls/association.csv"]
    if HARMONISATION and HAS_CLINICAL:
        out += ["results/harmonised/modelling_table.csv", "results/harmonised/before_after.png"]
        out += ["results/harmonised/batches.tsv"] if every else []
    return out


# Results that the rules files declare beside each step, wrapping an output in result(...). They join run_outputs,
# so that the all target asks for them and provenance hashes them, without an entry here.
DECLARED = []


def result(path):
    """An output declared a result of the run (see DECLARED); returns the path, or the report around it."""
    DECLARED.append(str(path))
    return path


def run_outputs():
    """Every table, picture and record this run writes under results/ as a result (the targets of `all`, each
    hashed by `provenance`), what the config switched on, nothing of what it switched off. Those that depend
    on the index's tables are in indexed_outputs."""
    out = downloaded_images() + _downloaded_clinical_outputs()
    out += [
        "results/index/instances.parquet",
        "results/index/series.parquet",
        "results/index/rois.parquet",
        "results/index/links.parquet",
        "results/index/problems.tsv",
        "results/features.parquet",
        "results/features.csv",
        "results/features_long.parquet",
        "results/features_long.csv",
        "results/features_cost.csv",
        "results/cohort.tsv",
        "results/delta_radiomics.csv",
        "results/qc/counts.tsv",
        "results/qc/feature_distributions",
        "results/dose/dvh.parquet",
        "results/dose/dvh.csv",
        "results/dose/dvh_curves.parquet",
        "results/qc/dvh",
        *PAPER_FILES,
    ]
    if HAS_CLINICAL:
        out += [
            "results/clinical.csv",
            "results/clinical_problems.tsv",
            "results/modelling_table.csv",
            "results/modelling_table_columns.tsv",
            "results/survival/summary.json",
            "results/survival/univariate_cox.csv",
            "results/survival/km.png",
        ]
    return out + DECLARED + trust_outputs(every=True)


def switched_off_outputs():
    """Outputs of the analyses this config switches off: an earlier run's would stay and look current, so the
    provenance rule (which reruns on every config change) removes them."""
    out = [] if PERTURBED else ["results/perturbed", "results/perturbed.parquet"]
    out += [] if ROBUSTNESS else ["results/robustness"]
    out += [] if CONTROLS and HAS_CLINICAL else ["results/negative_controls"]
    out += [] if HARMONISATION and HAS_CLINICAL else ["results/harmonised"]
    out += [] if config["dicom_export"] else ["results/dicom"]
    if not HAS_CLINICAL:
        out += ["results/clinical.csv", "results/clinical_problems.tsv", "results/modelling_table.csv"]
        out += ["results/modelling_table_columns.tsv"]
        out += ["results/survival"]
    return out


def dicom_exports(wildcards):
    """With dicom_export: the DICOM SEG and SR folder of every masked image series."""
    if not config["dicom_export"]:
        return []
    return [f"results/dicom/{p}/{s}" for p, s, _ in series_with_masks()]


def indexed_outputs(wildcards):
    """The dose folders, ROI outline pictures and DICOM exports: one per dose grid and per masked image series."""
    return dose_files(wildcards) + overlay_dirs(wildcards) + dicom_exports(wildcards)


def _downloaded_clinical_outputs():
    source = config["source"]["clinical"]
    if not source:
        return []
    if source["from"] == "table":
        return [CLINICAL_ENTRIES[-1]["path"], f"{TABLE_DIR}/clinical.json"]
    return [f"{GDC_DIR}/clinical.tsv", f"{GDC_DIR}/follow_up.tsv", f"{GDC_DIR}/clinical.json"]


def settings_files():
    """{name in results/provenance/settings: file} of every settings file behind the numbers: the pyradiomics
    settings of each configured modality and the ROI name aliases."""
    from radflow.config.check import settings_modalities

    files = {f"pyradiomics/{m}.yaml": f"{config['pyradiomics_settings']}/{m}.yaml" for m in settings_modalities(config)}
    return dict(files, **{"roi_names.yaml": config["roi_names"]})


# The paper folder (rules/paper.smk): what it reads besides the tables every run has.
PAPER_FILES = [
    "results/paper/methods.md",
    "results/paper/methods.html",
    "results/paper/reporting_checklist.tsv",
    "results/paper/reporting_checklist.html",
    "results/paper/features.tsv",
    "results/paper/features.html",
    "results/paper/cite.md",
]


def paper_inputs(wildcards):
    """The image sidecars (acquisition parameters, SUV) of every masked series, and the outputs of the analyses
    switched on: what the methods and the checklist say of them."""
    out = dict(sidecars=[f"results/images/{p}/{s}.json" for p, s, _ in series_with_masks()])
    if ROBUSTNESS:
        out["icc"] = "results/robustness/icc.csv"
    if HARMONISATION and HAS_CLINICAL:
        out["batches"] = "results/harmonised/batches.tsv"
    if HAS_CLINICAL:
        out["survival"] = "results/survival/summary.json"
    record = [f for f in _downloaded_clinical_outputs() if f.endswith("clinical.json")]
    if record:
        out["clinical_record"] = record[0]
    return out


def paper_settings():
    """{modality: pyradiomics settings file}: the pyradiomics part of settings_files(), by modality."""
    prefix, suffix = "pyradiomics/", ".yaml"
    return {k[len(prefix) : -len(suffix)]: v for k, v in settings_files().items() if k.startswith(prefix)}
