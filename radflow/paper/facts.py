"""What a run established, gathered once for the methods, the checklists and the feature dictionary: the cohort
and its scanners (index tables and image sidecars), the ROIs (index and features tables), the pyradiomics settings
per modality (the settings files), the features computed (features table), the analyses switched on (config and
their outputs), the software (installed versions) and the data sources (config, download records).

Nothing here is written for a run that did not do it: every value comes from a file of the run, and a fact that no
file of the run holds is left out (the methods then say nothing of it; the checklist says `author`)."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from radflow import __version__
from radflow.tables import feature_class, pyradiomics_columns

# pyradiomics' own defaults for the settings a file leaves out (radiomics/imageoperations.py, featureextractor.py)
PYRADIOMICS_DEFAULTS = dict(
    binWidth=25,
    binCount=None,
    resampledPixelSpacing=None,
    interpolator="sitkBSpline",
    padDistance=5,
    normalize=False,
    normalizeScale=1,
    resegmentRange=None,
    resegmentMode="absolute",
    resegmentShape=False,
    force2D=False,
    distances=[1],
    symmetricalGLCM=True,
    gldm_a=0,
    weightingNorm=None,
    correctMask=False,
    voxelArrayShift=0,
)
# the DOIs of TCIA collections radflow is used with (the collection's own citation page gives the others)
TCIA_DOIS = {
    "TCGA-HNSC": "10.7937/K9/TCIA.2016.LXKQ47MS",
    "NSCLC-RADIOMICS": "10.7937/K9/TCIA.2015.PF0M9REI",
}
CLASS_NAMES = {
    "shape": "morphology (shape)",
    "firstorder": "intensity statistics and histogram (first order)",
    "glcm": "grey level co-occurrence matrix (GLCM)",
    "glrlm": "grey level run length matrix (GLRLM)",
    "glszm": "grey level size zone matrix (GLSZM)",
    "gldm": "neighbouring grey level dependence matrix (NGLDM; pyradiomics GLDM)",
    "ngtdm": "neighbourhood grey tone difference matrix (NGTDM)",
}
SOFTWARE = {
    "radflow": "radflow",
    "pyradiomics": "pyradiomics-bhklab",
    "SimpleITK": "SimpleITK",
    "numpy": "numpy",
    "pydicom": "pydicom",
    "Snakemake": "snakemake",
    "pandas": "pandas",
    "lifelines": "lifelines",
}


def settings_facts(path) -> dict:
    """The settings of one pyradiomics settings file that decide its numbers, pyradiomics' defaults filled in,
    with radflow's `ibsi:` block (radflow.features.ibsi_mode) when the file has one."""
    path = Path(path)
    params = yaml.safe_load(path.read_text()) or {}
    setting = dict(PYRADIOMICS_DEFAULTS, **(params.get("setting") or {}))
    if setting.get("binCount"):
        setting["binWidth"] = None
    classes = params.get("featureClass") or {c: None for c in CLASS_NAMES}
    return dict(
        file=path.name,
        setting=setting,
        image_types=sorted((params.get("imageType") or {"Original": {}}).keys()),
        image_type_settings={k: v or {} for k, v in (params.get("imageType") or {"Original": {}}).items()},
        classes=[c for c in CLASS_NAMES if c in classes] + [c for c in classes if c not in CLASS_NAMES],
        ibsi=params.get("ibsi"),
    )


def _range(values) -> list | None:
    v = pd.to_numeric(pd.Series(list(values)), errors="coerce").dropna()
    return [float(v.min()), float(v.max())] if len(v) else None


def _counts(values) -> dict:
    s = pd.Series(list(values), dtype=object).fillna("").astype(str).str.strip()
    s = s[s != ""]
    return {k: int(n) for k, n in s.value_counts().sort_index().sort_values(ascending=False, kind="stable").items()}


def _acquisition(sidecars: list[dict]) -> dict:
    """Per modality: the range of each numeric acquisition parameter and the counts of each text one, over the
    series the features came from (their sidecars' `acquisition`, radflow.dicom.convert.acquisition_parameters)."""
    out: dict = {}
    for modality in sorted({s.get("modality", "") for s in sidecars}):
        acq = [s.get("acquisition") or {} for s in sidecars if s.get("modality") == modality]
        keys = sorted({k for a in acq for k in a if not k.endswith("_range") and k != "model"})
        entry = dict(series=len(acq), recorded=sum(1 for a in acq if a))
        for k in keys:
            values = [a[k] for a in acq if k in a]
            if all(isinstance(v, (int, float)) for v in values):
                entry[k] = dict(range=_range(values), series=len(values))
            else:
                entry[k] = dict(counts=_counts(values), series=len(values))
        out[modality] = entry
    return out


def _suv(sidecars: list[dict]) -> dict:
    pet = [s.get("suv") or {} for s in sidecars if s.get("modality") == "PT"]
    if not pet:
        return {}
    return dict(
        series=len(pet),
        rules=_counts(p.get("rule", "") for p in pet),
        decay_correction=_counts(p.get("decay_correction", "") for p in pet),
        kept_in_bqml=sum(1 for p in pet if p.get("fallback")),
    )


def cohort_facts(features: pd.DataFrame, series: pd.DataFrame, sidecars: list[dict]) -> dict:
    """Patients, series per modality, scanners and geometry of the image series the features table holds rows
    for (dose grids are counted apart)."""
    ok = features[features["status"] == "ok"]
    images = ok[ok["modality"] != "RTDOSE"]
    used = series[series["series_uid"].isin(set(images["series_uid"]))]
    modalities = {}
    for modality, g in used.groupby("modality", sort=True):
        modalities[modality] = dict(
            series=int(len(g)),
            patients=int(g["patient_id"].nunique()),
            studies=int(g["study_uid"].nunique()),
            scanners=_counts((g["manufacturer"].fillna("") + " " + g["manufacturer_model"].fillna("")).str.strip()),
            manufacturers=_counts(g["manufacturer"]),
            pixel_spacing_mm=_range(pd.concat([g["pixel_spacing_row"], g["pixel_spacing_col"]])),
            slice_thickness_mm=_range(g["slice_thickness"]),
            slice_spacing_mm=_range(g["slice_spacing"]),
            matrix=_counts(g["rows"].astype(str) + "x" + g["columns"].astype(str)),
        )
    dose = ok[ok["modality"] == "RTDOSE"]
    return dict(
        patients=int(ok["patient_id"].nunique()),
        patients_indexed=int(series["patient_id"].nunique()),
        studies=int(used["study_uid"].nunique()),
        modalities=modalities,
        sites=len({str(p)[5:7] for p in ok["patient_id"] if str(p).startswith("TCGA-")}),
        dose_grids=int(dose["series_uid"].nunique()),
        acquisition=_acquisition(sidecars),
        suv=_suv(sidecars),
    )


def roi_facts(features: pd.DataFrame, rois: pd.DataFrame, config: dict) -> dict:
    """Where the ROIs came from and which got features: structure sets and SEGs, the standard names, how the
    contours were rasterised (config contour_overlap, roi_instances), the ROIs with features per modality."""
    ok = features[features["status"] == "ok"]
    failed = features[features["status"] != "ok"]
    is_seg = rois["contour_types"].fillna("").astype(str).eq("SEG")
    return dict(
        structure_sets=int(rois.loc[~is_seg, "rtstruct_sop_uid"].nunique()),
        segs=int(rois.loc[is_seg, "rtstruct_sop_uid"].nunique()),
        rois_indexed=int(len(rois)),
        rois_with_features=_counts(ok.drop_duplicates(["patient_id", "series_uid", "roi_label"])["roi"]),
        by_modality={
            m: _counts(g.drop_duplicates(["patient_id", "series_uid", "roi_label"])["roi"])
            for m, g in ok.groupby("modality", sort=True)
        },
        rows_ok=int(len(ok)),
        shared=int(ok["shared_with"].fillna("").astype(str).ne("").sum()) if "shared_with" in ok else 0,
        rows_not_ok=int(len(failed)),
        not_ok_reasons=_counts(
            failed["reason"].astype(str).str.replace(r"^ROI '[^']*' ", "", regex=True).str.split(":").str[0]
        )
        if len(failed)
        else {},
        contour_overlap=config.get("contour_overlap"),
        roi_instances=config.get("roi_instances"),
        feature_rois=config.get("feature_rois"),
        unmapped=int((rois["roi"] == "unmapped").sum()) if len(rois) else 0,
    )


def feature_facts(features: pd.DataFrame) -> dict:
    """The feature columns per modality: counts per image type and class (columns with a value in any ok row)."""
    ok = features[features["status"] == "ok"]
    out = {}
    for modality, g in ok.groupby("modality", sort=True):
        columns = [c for c in pyradiomics_columns(g) if g[c].notna().any()]
        per_class: dict = {}
        for c in columns:
            key = f"{c.split('_')[0]} {feature_class(c)}"
            per_class[key] = per_class.get(key, 0) + 1
        ibsi_extra = [c for c in g.columns if c.startswith("ibsi_") and g[c].notna().any()]
        out[modality] = dict(
            columns=len(columns),
            per_class=per_class,
            ibsi_columns=ibsi_extra,
            image_units=sorted(g["image_units"].dropna().astype(str).unique()),
            rows=int(len(g)),
        )
    return out


def software_facts() -> dict:
    """The versions of the software behind the numbers, as installed where this runs (the run's own)."""
    out = {}
    for name, dist in SOFTWARE.items():
        try:
            out[name] = __version__ if name == "radflow" else metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    out["Python"] = platform.python_version()
    return out


def source_facts(config: dict, clinical_record: dict | None) -> dict:
    """Where the images and the clinical data came from: the config's download source (collection, DOI where
    radflow knows it) or the folder, and the GDC data release the clinical download recorded."""
    images = (config.get("source") or {}).get("images") or {}
    collection = str(images.get("collection") or "")
    out = dict(
        images_from=images.get("from") or "folder",
        collection=collection,
        doi=TCIA_DOIS.get(collection.upper(), ""),
        demo=bool(config.get("demo_cohort")),
    )
    if clinical_record:
        out["clinical"] = {
            k: clinical_record.get(k)
            for k in ("from", "project", "data_release", "url", "cases")
            if clinical_record.get(k) not in (None, "")
        }
    elif config.get("clinical"):
        out["clinical"] = dict(files=len(config["clinical"]), kinds=clinical_kinds(config["clinical"]))
    return out


CLINICAL_KINDS = {
    "gdc": "a GDC portal clinical.tsv",
    "gdc_follow_up": "a GDC portal follow_up.tsv",
    "biotab": "the BCR Biotab clinical patient file",
    "cdr": "the TCGA-CDR table",
}


def clinical_kinds(entries) -> list[str]:
    """What each clinical file of the config is (radflow.cohort.clinical.detect_format), in words."""
    from radflow.cohort.clinical import ClinicalError, detect_format

    out = []
    for entry in entries:
        if isinstance(entry, dict):
            out.append("a table read with its column mapping")
            continue
        try:
            out.append(CLINICAL_KINDS.get(detect_format(entry), "a clinical file"))
        except ClinicalError:
            out.append("a clinical file")
    return out


def analysis_facts(config: dict, outputs: dict) -> dict:
    """The trust analyses and the survival starter as configured, with what their outputs say (the number of
    robust features, the harmonisation batches, the survival model's status)."""
    out: dict = dict(model=dict(config.get("model") or {}), survival=dict(config.get("survival") or {}))
    if config.get("robustness"):
        rob = dict(config["robustness"])
        icc = outputs.get("icc")
        if icc is not None and len(icc):
            rob["features"] = int(len(icc))
            rob["ratings"] = _counts(icc["rating"])
            rob["form"] = str(icc["form"].iloc[0])
            rob["n_images"] = int(icc["n_images"].max())
        out["robustness"] = rob
    if config.get("negative_controls"):
        out["negative_controls"] = dict(config["negative_controls"])
    if config.get("harmonisation"):
        harm = dict(config["harmonisation"])
        batches = outputs.get("batches")
        if batches is not None and len(batches):
            harm["batches"] = int(batches["batch"].nunique()) if "batch" in batches else len(batches)
        out["harmonisation"] = harm
    summary = outputs.get("survival")
    if summary:
        out["survival_result"] = {
            k: summary.get(k)
            for k in (
                "endpoint",
                "patients",
                "events",
                "features",
                "status",
                "folds",
                "cv_c_index",
                "penalizer",
                "l1_ratio",
            )
        }
    return out


def run_facts(
    features: pd.DataFrame,
    series: pd.DataFrame,
    rois: pd.DataFrame,
    sidecars: list[dict],
    settings: dict,
    config: dict,
    outputs: dict | None = None,
    clinical_record: dict | None = None,
) -> dict:
    """Everything the paper folder says about a run. settings: {modality: settings file}."""
    outputs = outputs or {}
    used = sorted(set(features.loc[features["status"] == "ok", "modality"]) | set(features["modality"]))
    return dict(
        cohort=cohort_facts(features, series, sidecars),
        rois=roi_facts(features, rois, config),
        settings={m: settings_facts(settings[m]) for m in used if m in settings and Path(settings[m]).exists()},
        features=feature_facts(features),
        analyses=analysis_facts(config, outputs),
        software=software_facts(),
        sources=source_facts(config, clinical_record),
        max_roi_voxels=config.get("max_roi_voxels"),
    )


def read_sidecars(paths) -> list[dict]:
    out = []
    for p in paths:
        try:
            out.append(json.loads(Path(p).read_text()))
        except (OSError, ValueError):
            continue
    return out


def fmt(x, digits: int = 3) -> str:
    """A number as a paper writes it: no trailing zeros, at most `digits` significant digits after rounding."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    if float(x) == int(float(x)):
        return str(int(float(x)))
    return f"{float(x):.{digits}g}"


def counted(counts: dict, limit: int | None = None) -> str:
    """'a (n = 5), b (n = 2)', the first `limit` of them and how many more."""
    items = list(counts.items())
    shown = ", ".join(f"{k} (n = {n})" for k, n in items[:limit])
    more = len(items) - len(items[:limit])
    return shown + (f" and {more} more" if more > 0 else "")


def fmt_range(r, unit: str = "") -> str:
    if not r:
        return "not recorded"
    lo, hi = fmt(r[0]), fmt(r[1])
    text = lo if lo == hi else f"{lo}–{hi}"
    return f"{text} {unit}".strip()
