"""Benchmark: the modelling table's selection and the delta-radiomics table at TCGA-HNSC's scale.

A synthetic features table of 227 patients x 2 dated CT studies x 30 standard ROIs x 1,130 features (13,620 rows,
the size of a CT run with LoG and wavelet), with its series table; prints the wall time and peak memory of
radflow.cohort.model.modelling_table (one ROI, every patient's choice and what was passed over) and of
radflow.cohort.delta.delta_table (every ROI at two time points: 6,810 rows x 4,520 feature columns), for each instance
rule. Run: .venv/bin/python benchmarks/selection_scale.py
"""

from __future__ import annotations

import platform
import resource
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from radflow.cohort.delta import delta_table
from radflow.cohort.model import modelling_table
from radflow.config.build import defaults
from radflow.tables import CLINICAL_KEEP, ID_COLUMNS

PATIENTS, STUDIES, ROIS, FEATURES = 227, 2, 30, 1130


def cohort(seed=0):
    rng = np.random.default_rng(seed)
    rows, series = [], []
    for p in range(PATIENTS):
        pid = f"TCGA-XX-{p:04d}"
        for k in range(STUDIES):
            study, uid = f"study-{p}-{k}", f"series-{p}-{k}"
            series.append(
                dict(
                    patient_id=pid,
                    study_uid=study,
                    study_date=f"{2010 + k}0101",
                    study_description="",
                    series_uid=uid,
                    modality="CT",
                    role="image",
                    convert=True,
                    slice_spacing=2.5,
                    n_slices=100,
                )
            )
            for r in range(ROIS):
                row = {c: "" for c in ID_COLUMNS}
                row.update(
                    patient_id=pid,
                    study_uid=study,
                    series_uid=uid,
                    modality="CT",
                    roi=f"ROI{r}",
                    roi_label=f"ROI{r}",
                    roi_original=f"ROI {r}",
                    rtstruct_series_uid=f"rs-{p}-{k}",
                    status="ok",
                    mask_voxels=1000,
                    mask_volume_mm3=float(rng.uniform(1e3, 1e5)),
                )
                rows.append(row)
    features = pd.DataFrame(rows)
    values = pd.DataFrame(
        rng.normal(size=(len(features), FEATURES)), columns=[f"original_feature{i}" for i in range(FEATURES)]
    )
    return pd.concat([features, values], axis=1), pd.DataFrame(series)


def main():
    features, series = cohort()
    clinical = pd.DataFrame({"patient_id": series["patient_id"].unique()})
    for c in CLINICAL_KEEP:
        clinical[c] = 1.0 if c in ("os_days", "os_event") else np.nan
    print(
        f"{platform.machine()}, Python {platform.python_version()}; features table {features.shape[0]:,} rows x "
        f"{features.shape[1]:,} columns"
    )
    for instances in ("largest", "union", "suffix"):
        t = time.perf_counter()
        table, _ = modelling_table(
            features, clinical, series, replace(defaults().model, roi="ROI0", roi_instances=instances)
        )
        t_model = time.perf_counter() - t
        t = time.perf_counter()
        delta = delta_table(features, series, instances)
        t_delta = time.perf_counter() - t
        print(
            f"{instances:8s} modelling table {table.shape[0]} rows in {t_model:.1f} s; delta table "
            f"{delta.shape[0]:,} rows x {delta.shape[1]:,} columns in {t_delta:.1f} s"
        )
    print(f"peak memory (this process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
