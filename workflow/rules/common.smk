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
    structs = links[links["source_modality"] == "RTSTRUCT"]
    images = series[series["convert"] & series["series_uid"].isin(set(structs["image_series_uid"]))]
    return list(images[["patient_id", "series_uid", "modality"]].itertuples(index=False, name=None))


def dose_files(wildcards):
    """The dose folder of every RTDOSE that has an image series to go with."""
    _, links = index_tables()
    doses = links[links["source_modality"] == "RTDOSE"].drop_duplicates("source_series_uid")
    return [f"results/dose/{p}/{s}" for p, s in zip(doses["patient_id"], doses["source_series_uid"])]


def dose_images(wildcards):
    """The converted CT images an RTDOSE is resampled onto."""
    _, links = index_tables()
    mine = links[(links["source_series_uid"] == wildcards.series) & (links["source_modality"] == "RTDOSE")]
    return [f"results/images/{wildcards.patient}/{uid}.nii.gz" for uid in sorted(mine["image_series_uid"])]


def feature_files(wildcards):
    return [f"results/features/{p}/{s}.parquet" for p, s, _ in series_with_masks()]


def settings_file(wildcards):
    series, _ = index_tables()
    modality = series.loc[series["series_uid"] == wildcards.series, "modality"].iloc[0]
    return f"{config['pyradiomics_settings']}/{modality}.yaml"


def demo_cohort():
    """The demo cohort's truth file when the config asks for the demo cohort (so it is generated first)."""
    return [f"{config['demo_cohort']}/truth.json"] if config.get("demo_cohort") else []
