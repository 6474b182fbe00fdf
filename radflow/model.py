"""The modelling table (features of one modality and ROI joined with outcomes, one row per patient) and the
cohort accounting (every patient, and why they are or are not in the modelling table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .clinical import normalise_barcode
from .features import ID_COLUMNS

COHORT_COLUMNS = ["patient_id", "has_images", "has_modality", "has_roi", "has_clinical", "has_outcome",
                  "in_modelling_table", "reason", "series_uid", "roi_original", "selection"]
CLINICAL_KEEP = ["os_days", "os_event", "dss_days", "dss_event", "pfi_days", "pfi_event", "age", "sex", "stage",
                 "tumour_site", "hpv_status", "smoking"]


def _choose(candidates: pd.DataFrame, roi: str) -> tuple[pd.Series, str]:
    """One feature row per patient. Rule: the ROI named exactly (not a _2 duplicate), then the earliest study,
    then the series with the thinnest slices, then the most voxels in the mask, then the series UID."""
    c = candidates.assign(_exact=(candidates["roi_label"] != roi).astype(int),
                          _date=candidates["study_date"].fillna("99999999"),
                          _spacing=candidates["slice_spacing"].fillna(np.inf),
                          _voxels=-candidates["mask_voxels"].fillna(0))
    c = c.sort_values(["_exact", "_date", "_spacing", "_voxels", "series_uid", "roi_label"])
    chosen = c.iloc[0]
    if len(c) == 1:
        return chosen, "only candidate"
    passed = ", ".join(f"{r.series_uid}/{r.roi_label}" for r in c.iloc[1:].itertuples())
    return chosen, (f"chosen of {len(c)} by: exact ROI name, earliest study, thinnest slices, largest mask; "
                    f"passed over: {passed}")


def modelling_table(features: pd.DataFrame, clinical: pd.DataFrame, series: pd.DataFrame, modality: str,
                    roi: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    features = features.assign(patient_id=features["patient_id"].map(normalise_barcode))
    series = series.assign(patient_id=series["patient_id"].map(normalise_barcode))
    clinical = clinical.assign(patient_id=clinical["patient_id"].map(normalise_barcode))
    images = series[series["convert"]]
    geometry = series[["series_uid", "study_date", "slice_spacing"]]
    ok = features[(features["modality"] == modality) & (features["roi"] == roi) & (features["status"] == "ok")]
    ok = ok.merge(geometry, on="series_uid", how="left")
    clin = clinical.set_index("patient_id")
    patients = sorted(set(series["patient_id"]) | set(clinical["patient_id"]))
    feature_cols = [c for c in features.columns if c not in ID_COLUMNS]
    rows, cohort = [], []
    for pid in patients:
        entry = dict(patient_id=pid, has_images=pid in set(images["patient_id"]),
                     has_modality=bool(((images["patient_id"] == pid) & (images["modality"] == modality)).any()),
                     has_roi=pid in set(ok["patient_id"]), has_clinical=pid in clin.index)
        entry["has_outcome"] = bool(entry["has_clinical"] and pd.notna(clin.loc[pid, "os_days"])
                                    and pd.notna(clin.loc[pid, "os_event"]))
        reason, selection, chosen = "", "", None
        if not entry["has_images"]:
            reason = "no converted image series"
        elif not entry["has_modality"]:
            reason = f"no {modality} image series"
        elif not entry["has_roi"]:  # (a failed image conversion counts as no usable ROI, with its reason)
            # the ROI's own failure, or its image's (a failed conversion fails every ROI: roi "")
            failed = features[(features["patient_id"] == pid) & (features["modality"] == modality)
                              & features["roi"].isin([roi, ""]) & (features["status"] != "ok")]
            reason = (f"{roi} on {modality} failed: {failed['reason'].iloc[0]}" if len(failed)
                      else f"no ROI mapped to {roi} on a {modality} series")
        elif not entry["has_clinical"]:
            reason = "no clinical record"
        elif not entry["has_outcome"]:
            reason = "clinical record without an OS time and event"
        if entry["has_roi"]:
            chosen, selection = _choose(ok[ok["patient_id"] == pid], roi)
        entry.update(in_modelling_table=not reason, reason=reason,
                     series_uid=chosen["series_uid"] if chosen is not None else "",
                     roi_original=chosen["roi_original"] if chosen is not None else "", selection=selection)
        cohort.append(entry)
        if not reason:
            row = dict(patient_id=pid, study_uid=chosen["study_uid"], series_uid=chosen["series_uid"],
                       modality=modality, roi=roi, roi_original=chosen["roi_original"])
            row.update({c: clin.loc[pid, c] for c in CLINICAL_KEEP})
            row.update({c: chosen[c] for c in feature_cols})
            rows.append(row)
    table = pd.DataFrame(rows, columns=["patient_id", "study_uid", "series_uid", "modality", "roi", "roi_original",
                                        *CLINICAL_KEEP, *feature_cols])
    for c in ("os_event", "dss_event", "pfi_event"):
        table[c] = table[c].astype("Int64")
    return table, pd.DataFrame(cohort, columns=COHORT_COLUMNS)


def write_modelling_table(features_path, clinical_path, series_path, modality, roi, out_csv, cohort_tsv):
    features = pd.read_parquet(features_path)
    clinical = pd.read_csv(clinical_path, dtype={c: str for c in ("patient_id", "sex", "stage", "tumour_site",
                                                                  "hpv_status", "smoking", "project")},
                           keep_default_na=False, na_values=[""])
    series = pd.read_parquet(series_path)
    table, cohort = modelling_table(features, clinical, series, modality, roi)
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    cohort.to_csv(cohort_tsv, sep="\t", index=False)
    return table, cohort
