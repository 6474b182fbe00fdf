"""Delta-radiomics: the change of each feature of one ROI between a patient's first study (time point 0) and each
later study (time point 1), for every standard ROI drawn at two or more time points on the same modality.

Each time point stands for one study; within it the image and ROI instance are chosen as for the modelling table
(radflow.model: the instance rule, then thinner slices, more slices, larger mask, series UID). Days count from the
patient's first study (TCIA shifts the dates of a patient together, so intervals are true). Studies without a
StudyDate cannot be placed in time and are left out, and the log says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .clinical import normalise_barcode
from .features import ID_COLUMNS
from .model import order_within_study, roi_candidates, with_context
from .roi_names import UNMAPPED

log = logging.getLogger(__name__)

KEY_COLUMNS = ["patient_id", "modality", "roi", "study_uid_0", "series_uid_0", "roi_label_0", "roi_original_0",
               "day_0", "study_uid_1", "series_uid_1", "roi_label_1", "roi_original_1", "day_1", "interval_days"]
SUFFIXES = ("_0", "_1", "_delta", "_relative")


def delta_table(features: pd.DataFrame, series: pd.DataFrame, instances: str = "largest") -> pd.DataFrame:
    """One row per patient x modality x standard ROI x later study: for the mask volume (mask_volume_mm3) and every
    numeric feature f, f_0 (first study),
    f_1 (the later study), f_delta = f_1 - f_0 and f_relative = f_delta / |f_0| (empty when f_0 is 0)."""
    features = features.assign(patient_id=features["patient_id"].map(normalise_barcode))
    series = series.assign(patient_id=series["patient_id"].map(normalise_barcode))
    ok = features[(features["status"] == "ok") & (features["roi"].astype(str) != "")
                  & ~features["roi"].astype(str).str.startswith(UNMAPPED)]
    # radflow's mask volume on the image's own grid first (the GTV volume), then every numeric pyradiomics feature
    names = ["mask_volume_mm3"] + [c for c in features.columns
                                   if c not in ID_COLUMNS and pd.api.types.is_numeric_dtype(features[c])]
    key = "roi_label" if instances == "suffix" else "roi"
    rows = []
    for (pid, modality, roi), group in ok.groupby(["patient_id", "modality", key], sort=True):
        cands = with_context(roi_candidates(group, roi, instances), series)
        undated = cands[cands["study_day"].isna()]
        if len(undated):
            log.warning("%s %s %s: studies without a date left out of the delta table: %s", pid, modality, roi,
                        ", ".join(sorted(set(undated["study_uid"]))))
        cands = cands[cands["study_day"].notna()]
        points = [order_within_study(g, instances).iloc[0]
                  for _, g in sorted(cands.groupby("study_uid"), key=lambda kv: (kv[1]["study_day"].iloc[0], kv[0]))]
        if len(points) < 2:
            continue
        first = points[0]
        for later in points[1:]:
            row = dict(patient_id=pid, modality=modality, roi=roi, interval_days=int(later["study_day"])
                       - int(first["study_day"]))
            for suffix, p in (("_0", first), ("_1", later)):
                row.update({f"study_uid{suffix}": p["study_uid"], f"series_uid{suffix}": p["series_uid"],
                            f"roi_label{suffix}": p["roi_label"], f"roi_original{suffix}": p["roi_original"],
                            f"day{suffix}": int(p["study_day"])})
            for f in names:
                v0, v1 = float(first[f]), float(later[f])
                delta = v1 - v0
                row.update({f"{f}_0": v0, f"{f}_1": v1, f"{f}_delta": delta,
                            f"{f}_relative": delta / abs(v0) if v0 != 0 and np.isfinite(v0) else np.nan})
            rows.append(row)
    columns = KEY_COLUMNS + [f"{f}{s}" for f in names for s in SUFFIXES]
    return pd.DataFrame(rows, columns=columns)


def write_delta_table(features_path, series_path, out_csv, instances="largest") -> pd.DataFrame:
    table = delta_table(pd.read_parquet(features_path), pd.read_parquet(series_path), instances)
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    log.info("delta table: %d rows (patient x modality x ROI x later study), %d patients", len(table),
             table["patient_id"].nunique())
    return table
