"""The features tables of a run: every series' rows merged (wide and long), the run-time cost apart."""

from __future__ import annotations

import pandas as pd

from radflow.tables import COST_COLUMNS, ID_COLUMNS, RUNTIME_COLUMNS, feature_columns, ordered_features


def long_table(wide: pd.DataFrame) -> pd.DataFrame:
    """One row per patient x series x ROI x feature: the wide table's identifiers, feature name and value."""
    keys = ["patient_id", "study_uid", "series_uid", "modality", "roi", "roi_original", "roi_label", "status"]
    features = feature_columns(wide)
    long = wide[keys + features].melt(id_vars=keys, var_name="feature", value_name="value")
    return long.dropna(subset=["value"]).sort_values(keys[:3] + ["roi_label", "feature"], ignore_index=True)


def merge_features(paths, out_parquet, out_csv, long_parquet=None, long_csv=None, cost_csv=None) -> pd.DataFrame:
    """The wide (and long) features tables of every series file; the run's own cost per ROI (seconds, peak memory)
    goes to cost_csv only, so that a rerun of the same input writes the same features tables."""
    frames = [pd.read_parquet(p) for p in paths]
    frames = [f for f in frames if len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ID_COLUMNS)
    df = ordered_features(df).sort_values(
        ["patient_id", "study_uid", "modality", "series_uid", "roi_label"], ignore_index=True
    )
    if cost_csv:
        df[COST_COLUMNS].to_csv(cost_csv, index=False)
    df = df.drop(columns=RUNTIME_COLUMNS)
    df.to_parquet(out_parquet, index=False)
    df.to_csv(out_csv, index=False)
    if long_parquet or long_csv:
        long = long_table(df)
        if long_parquet:
            long.to_parquet(long_parquet, index=False)
        if long_csv:
            long.to_csv(long_csv, index=False)
    return df
