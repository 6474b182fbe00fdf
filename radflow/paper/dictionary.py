"""The feature dictionary (results/paper/features.tsv): every column of the features table, per modality for the
feature columns, with its IBSI name and code where IBSI defines the feature, its class, its unit (as written and as
UCUM, the code DICOM SR and FHIR take) and the settings it was computed with.

The IBSI names and codes are IBSI-1's (Zwanenburg et al., Radiology 2020;295:328; the permanent identifiers of the
IBSI reference manual), in ibsi_features.tsv; which pyradiomics feature is which IBSI feature is radflow.features.ibsi's
mapping, the one radflow's conformance run checks against the IBSI reference values."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import pandas as pd

from radflow.features import feature_unit, ibsi, intensity_unit
from radflow.paper.facts import CLASS_NAMES, fmt
from radflow.tables import FEATURE_DICTIONARY_COLUMNS, ID_COLUMNS, feature_class, pyradiomics_columns

# what each identifying column of the features table holds (radflow.features.ID_COLUMNS)
ID_MEANING = {
    "patient_id": "patient (DICOM PatientID; a TCGA sample barcode stands for its patient, radflow.ids)",
    "study_uid": "DICOM StudyInstanceUID of the image",
    "series_uid": "image series (SeriesInstanceUID, <UID>_<n> for a sub-series) or dose grid",
    "modality": "CT, PT, MR or RTDOSE",
    "image_units": "units of the image's values (HU, SUVbw (g/ml), Gy, as stored)",
    "roi": "standard ROI name (roi_names.yaml) or unmapped",
    "roi_original": "the ROI's name in its structure set or SEG",
    "roi_label": "mask file: the standard name, _2, _3 … for further instances, _union",
    "rtstruct_series_uid": "series of the structure set or SEG the ROI came from",
    "relation": "how the ROI's structure set relates to the image (referenced, same frame of reference …)",
    "status": "ok, or why no features (skipped, failed)",
    "reason": "the reason when status is not ok",
    "shared_with": "the label of an identical mask of the same image whose extraction the row shares",
    "mask_voxels": "voxels of the mask on the image's own grid",
    "mask_volume_mm3": "volume of the mask on the image's own grid (mm3)",
    "resampled_voxels": "voxels of the mask after pyradiomics' resampling",
    "settings": "pyradiomics settings file the row was computed with",
    "settings_sha256": "SHA-256 of that settings file",
    "image_sha256": "SHA-256 of the image pyradiomics read",
    "mask_sha256": "SHA-256 of the mask pyradiomics read",
    "radiomics_version": "pyradiomics version",
    "simpleitk_version": "SimpleITK version",
    "numpy_version": "numpy version",
    "seconds": "time of the extraction (features_cost.csv only)",
    "peak_rss_mb": "peak memory of the extraction (features_cost.csv only)",
}
# IBSI-1's texture aggregation, for pyradiomics' two ways: (3D, force2D) -> (name, code) per class
AGGREGATION = {
    ("glcm", False): ("3D, features averaged over 13 directions (3D:avg)", "ITBB"),
    ("glrlm", False): ("3D, features averaged over 13 directions (3D:avg)", "ITBB"),
    ("glszm", False): ("3D matrix (3D)", "KOBO"),
    ("gldm", False): ("3D matrix (3D)", "KOBO"),
    ("ngtdm", False): ("3D matrix (3D)", "KOBO"),
    ("glcm", True): ("2D directional matrices merged over slices, features averaged over directions (2.5D:avg)", ""),
    ("glrlm", True): ("2D directional matrices merged over slices, features averaged over directions (2.5D:avg)", ""),
    ("glszm", True): ("2D matrices merged over slices (2.5D)", "62GR"),
    ("gldm", True): ("2D matrices merged over slices (2.5D)", "62GR"),
    ("ngtdm", True): ("2D matrices merged over slices (2.5D)", "62GR"),
}
# UCUM codes of the units radflow.features.feature_unit writes
UCUM = {
    "1": "1",
    "mm": "mm",
    "mm²": "mm2",
    "mm³": "mm3",
    "1/mm": "/mm",
    "HU": "[hnsfld'U]",
    "HU²": "[hnsfld'U]2",
    "HU²·mm³": "[hnsfld'U]2.mm3",
    "SUVbw": "{SUVbw}g/ml",
    "SUVbw²": "{SUVbw}g2/ml2",
    "SUVbw²·mm³": "{SUVbw}g2/ml2.mm3",
    "Bq/ml": "Bq/mL",
    "Bq/ml²": "Bq2/mL2",
    "Bq/ml²·mm³": "Bq2/mL2.mm3",
    "Gy": "Gy",
    "Gy²": "Gy2",
    "Gy²·mm³": "Gy2.mm3",
}
# IBSI features whose pyradiomics value differs from IBSI's definition (radflow.features.ibsi_mode adds IBSI's as
# ibsi_*)
DEFINED_OTHERWISE = frozenset(ibsi.IBSI_DEFINED)
# IBSI's second name for a quantity pyradiomics computes once (the first name is the one a code stands for)
ALIASES = frozenset({"cm_sum_var", "cm_dissimilarity", "ngl_glnu_norm"})
NOTES = {
    "stat_kurt": "pyradiomics' kurtosis; IBSI's (excess) kurtosis is this minus 3 (column ibsi_stat_kurt in IBSI mode)",
    "morph_pca_maj_axis": "pyradiomics divides the covariance by N, IBSI by N - 1 (ibsi_morph_pca_* in IBSI mode)",
    "morph_pca_min_axis": "pyradiomics divides the covariance by N, IBSI by N - 1 (ibsi_morph_pca_* in IBSI mode)",
    "morph_pca_least_axis": "pyradiomics divides the covariance by N, IBSI by N - 1 (ibsi_morph_pca_* in IBSI mode)",
    "cm_sum_var": "IBSI's sum variance is pyradiomics' ClusterTendency",
    "cm_dissimilarity": "IBSI's dissimilarity is pyradiomics' DifferenceAverage",
    "ngl_glnu_norm": "IBSI's normalised NGLDM grey level non-uniformity is pyradiomics' first-order Uniformity",
}


@lru_cache(maxsize=1)
def ibsi_terms() -> dict[str, tuple[str, str]]:
    """IBSI tag stem -> (IBSI name, IBSI code)."""
    with open(Path(__file__).with_name("ibsi_features.tsv"), encoding="utf-8") as fp:
        return {r["tag"]: (r["name"], r["code"]) for r in csv.DictReader(fp, delimiter="\t")}


@lru_cache(maxsize=1)
def pyradiomics_to_ibsi() -> dict[str, list[str]]:
    """pyradiomics feature (class_Feature) -> the IBSI tag stems it computes (one, or two where IBSI has two names
    for one quantity: sum variance and cluster tendency; dissimilarity and difference average)."""
    out: dict[str, list[str]] = {}
    stems = [(ibsi.MORPHOLOGY, ""), (ibsi.STATISTICS, ""), (ibsi.GLCM, "glcm_"), (ibsi.GLRLM, "glrlm_")]
    stems += [(ibsi.GLSZM, "glszm_"), (ibsi.NGTDM, "ngtdm_"), (ibsi.NGLDM, "")]
    for table, prefix in stems:
        for tag, name in table.items():
            out.setdefault(prefix + name, []).append(tag)
    return out


def ucum(unit: str, image_units: str = "") -> str:
    """The UCUM code of a unit as radflow.features.feature_unit writes it ("" when radflow states none)."""
    if unit.startswith("SUV") and not unit.startswith("SUVbw"):  # SUVlbm, SUVbsa …: the annotation says which
        kind = unit.split("²")[0]
        return UCUM.get(unit.replace(kind, "SUVbw"), "").replace("SUVbw", kind)
    return UCUM.get(unit, "")


def settings_text(facts: dict | None, image_units: str = "") -> str:
    """One line of the settings that change a feature's value: discretisation, resampling, re-segmentation,
    normalisation, 2D/3D, and the settings file's name."""
    if not facts:
        return ""
    s = facts["setting"]
    unit = intensity_unit(image_units, bool(s.get("normalize")))
    width = f"bin width {fmt(s['binWidth'])} {unit if unit != '1' else ''}".strip()
    parts = [f"bin count {s['binCount']}" if s.get("binCount") else width]
    spacing = s.get("resampledPixelSpacing")
    parts.append(
        "resampled to " + "×".join(fmt(v) for v in spacing) + f" mm ({s['interpolator']})" if spacing else "native grid"
    )
    if s.get("resegmentRange"):
        parts.append("re-segmented to [" + ", ".join(fmt(v) for v in s["resegmentRange"]) + f"] {unit}".rstrip())
    if s.get("normalize"):
        parts.append(f"normalised (scale {fmt(s['normalizeScale'])}, shift {fmt(s['voxelArrayShift'])})")
    if s.get("force2D"):
        parts.append("2D (force2D)")
    if facts.get("ibsi") is not None:
        parts.append("IBSI mode")
    return f"{facts['file']}: " + "; ".join(parts)


def feature_row(column: str, modality: str, image_units: str, settings: dict | None) -> dict:
    """One dictionary row of a pyradiomics feature column for one modality."""
    image_type, cls, feature = (column.split("_", 2) + ["", ""])[:3]
    s = (settings or {}).get("setting", {})
    unit = feature_unit(column, image_units, bool(s.get("normalize")))
    tags = pyradiomics_to_ibsi().get(f"{cls}_{feature}", [])
    terms = [ibsi_terms()[t] for t in tags]
    aggregation = AGGREGATION.get((cls, bool(s.get("force2D"))), ("", "")) if terms else ("", "")
    note = "; ".join(NOTES[t] for t in tags if t in NOTES)
    if image_type != "original":
        note = "; ".join(x for x in (note, f"computed on the {image_type} filtered image") if x)
        terms = [(f"{name} ({image_type} image)", code) for name, code in terms]
    if not terms and cls:
        note = "; ".join(x for x in (note, "not an IBSI-1 feature (pyradiomics' own)") if x)
    return dict(
        column=column,
        kind="feature",
        modality=modality,
        image_units=image_units,
        image_type=image_type,
        feature_class=CLASS_NAMES.get(feature_class(column), feature_class(column)),
        feature=feature,
        ibsi_name=" = ".join(n for n, _ in terms),
        ibsi_code=" = ".join(c for _, c in terms),
        ibsi_aggregation=aggregation[0],
        ibsi_aggregation_code=aggregation[1],
        unit=unit,
        ucum=ucum(unit),
        settings=settings_text(settings, image_units),
        note=note,
        meaning="",
    )


IBSI_COLUMNS = {
    "ibsi_stat_kurt": ("stat_kurt", "1", "IBSI's excess kurtosis (IBSI mode)"),
    "ibsi_morph_pca_maj_axis": ("morph_pca_maj_axis", "mm", "IBSI's definition, covariance over N - 1 (IBSI mode)"),
    "ibsi_morph_pca_min_axis": ("morph_pca_min_axis", "mm", "IBSI's definition, covariance over N - 1 (IBSI mode)"),
    "ibsi_morph_pca_least_axis": ("morph_pca_least_axis", "mm", "IBSI's definition, covariance over N - 1 (IBSI mode)"),
}


def features_dictionary(features: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """The dictionary of a features table: its identifying columns, then every feature column with a value for a
    modality, one row per modality and image units. settings: {modality: radflow.paper.facts.settings_facts}."""
    rows = [
        dict({c: "" for c in FEATURE_DICTIONARY_COLUMNS}, column=c, kind="identifier", meaning=ID_MEANING.get(c, ""))
        for c in ID_COLUMNS
        if c in features.columns
    ]
    ok = features[features["status"] == "ok"]
    for (modality, units), g in ok.groupby(["modality", "image_units"], sort=True):
        for column in pyradiomics_columns(g):
            if g[column].notna().any():
                rows.append(feature_row(column, modality, units, settings.get(modality)))
        for column, (tag, unit, note) in IBSI_COLUMNS.items():
            if column in g and g[column].notna().any():
                name, code = ibsi_terms()[tag]
                rows.append(
                    dict(
                        {c: "" for c in FEATURE_DICTIONARY_COLUMNS},
                        column=column,
                        kind="feature",
                        modality=modality,
                        image_units=units,
                        image_type="original",
                        feature=column,
                        ibsi_name=name,
                        ibsi_code=code,
                        unit=unit,
                        ucum=ucum(unit),
                        settings=settings_text(settings.get(modality), units),
                        note=note,
                    )
                )
    return pd.DataFrame(rows, columns=FEATURE_DICTIONARY_COLUMNS)
