# Input functions over the index checkpoint: the DAG after the index is built from its tables.
import pandas as pd


wildcard_constraints:
    patient="[^/]+",
    series="[0-9.]+(_[0-9]+)?",


def index_tables():
    out = checkpoints.index.get().output
    return pd.read_parquet(out.series), pd.read_parquet(out.links)


def series_with_masks():
    """(patient, series UID, modality) of every converted image series that has an RTSTRUCT to rasterise."""
    series, links = index_tables()
    images = series[series["convert"] & series["series_uid"].isin(set(links["image_series_uid"]))]
    return list(images[["patient_id", "series_uid", "modality"]].itertuples(index=False, name=None))


def feature_files(wildcards):
    return [f"results/features/{p}/{s}.parquet" for p, s, _ in series_with_masks()]


def settings_file(wildcards):
    series, _ = index_tables()
    modality = series.loc[series["series_uid"] == wildcards.series, "modality"].iloc[0]
    return f"{config['pyradiomics_settings']}/{modality}.yaml"


def demo_cohort():
    """The demo cohort's truth file when the config asks for the demo cohort (so it is generated first)."""
    return [f"{config['demo_cohort']}/truth.json"] if config.get("demo_cohort") else []
