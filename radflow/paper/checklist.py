"""The reporting checklist (results/paper/reporting_checklist.tsv): every IBSI-1 reporting item, every CLEAR item
and every METRICS item, each with what the run established and where that comes from, or `author` where only the
authors can answer. Status: `run` (the run answers it), `partly` (the run answers part, the authors the rest),
`author`, or `n/a` (the item is about a modality or method this run has none of)."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from radflow.features import intensity_unit
from radflow.paper.facts import counted, fmt, fmt_range
from radflow.paper.methods import IBSI_CONFORMANCE, INTERPOLATORS, MODALITY_NAMES
from radflow.tables import CHECKLIST_COLUMNS

STANDARDS = {"IBSI-1": "ibsi.tsv", "CLEAR": "clear.tsv", "METRICS": "metrics.tsv"}
# the IBSI items' modality column -> the run's modalities it is about
ITEM_MODALITIES = {
    "PET": {"PT"},
    "PET, SPECT": {"PT"},
    "CT": {"CT"},
    "MRI": {"MR"},
    "MRI (brain)": {"MR"},
    "DWI-MRI": {"MR"},
}
FEATURES = "results/features.parquet"
SETTINGS = "results/provenance/settings/pyradiomics/"
SERIES = "results/index/series.parquet"
SIDECARS = "results/images/*/*.json (acquisition)"


def _items(standard: str) -> list[dict]:
    path = Path(__file__).with_name("checklists") / STANDARDS[standard]
    with open(path, encoding="utf-8") as fp:
        return list(csv.DictReader(fp, delimiter="\t"))


def _per_modality(facts: dict, describe) -> str:
    """describe(modality, settings facts) for each modality with features, joined."""
    out = []
    for m, st in facts["settings"].items():
        text = describe(m, st)
        if text:
            out.append(f"{MODALITY_NAMES.get(m, m)}: {text}")
    return "; ".join(out)


def _units(facts: dict, m: str, st: dict) -> str:
    units = (facts["features"].get(m) or {}).get("image_units") or [""]
    return intensity_unit(units[0], bool(st["setting"].get("normalize")))


def _acq(facts: dict, modality: str, key: str, unit: str = "") -> str:
    entry = facts["cohort"]["acquisition"].get(modality, {}).get(key)
    if not entry:
        return ""
    of = facts["cohort"]["acquisition"][modality]["series"]
    where = f" ({entry['series']} of {of} series)"
    if "range" in entry:
        return fmt_range(entry["range"], unit) + where
    return counted(entry["counts"], 6) + where


def _geometry(facts: dict, key: str) -> str:
    return "; ".join(
        f"{MODALITY_NAMES.get(m, m)} {fmt_range(g[key], 'mm')}" for m, g in facts["cohort"]["modalities"].items()
    )


def _interp(m, st):
    s = st["setting"]
    if not s.get("resampledPixelSpacing"):
        return "no resampling"
    return INTERPOLATORS.get(s["interpolator"], s["interpolator"]) + f" ({s['interpolator']})"


def _grid(m, st):
    if not st["setting"].get("resampledPixelSpacing"):
        return ""
    if st.get("ibsi") is not None:
        return "grid centred on the original grid (align grid centers), size rounded up"
    return "grid origin at the ROI's bounding box (pyradiomics), padded by padDistance " + str(
        st["setting"].get("padDistance")
    )


def _spacing(m, st):
    sp = st["setting"].get("resampledPixelSpacing")
    return "×".join(fmt(v) for v in sp) + " mm" if sp else "native voxels"


def _rounding(m, st):
    if not st["setting"].get("resampledPixelSpacing"):
        return ""
    return "rounded to integers (IBSI mode)" if st.get("ibsi") is not None else "not rounded (pyradiomics)"


def _mask_interp(m, st):
    if not st["setting"].get("resampledPixelSpacing"):
        return "no resampling"
    return "linear, threshold 0.5 (IBSI mode)" if st.get("ibsi") is not None else "nearest neighbour (pyradiomics)"


def _partial(m, st):
    if not st["setting"].get("resampledPixelSpacing"):
        return ""
    return "included at a linear value ≥ 0.5" if st.get("ibsi") is not None else "none (nearest-neighbour mask)"


def _reseg(facts):
    def describe(m, st):
        s = st["setting"]
        extra = " then 3 sigma (IBSI mode)" if (st.get("ibsi") or {}).get("outlier_sigma") else ""
        if not s.get("resegmentRange"):
            return "none" + extra
        return "range [" + ", ".join(fmt(v) for v in s["resegmentRange"]) + f"] {_units(facts, m, st)}".rstrip() + extra

    return describe


def _bins(facts):
    def describe(m, st):
        s = st["setting"]
        if s.get("binCount"):
            return f"fixed bin number (FBN), {s['binCount']} bins"
        return f"fixed bin size (FBS), {fmt(s['binWidth'])} {_units(facts, m, st)}".rstrip()

    return describe


def _first_bin(m, st):
    if st["setting"].get("binCount"):
        return "FBN (no first-bin setting)"
    if st.get("ibsi") is not None:
        return "the re-segmentation minimum (IBSI mode)"
    return "the largest multiple of the bin width at or below the ROI minimum (pyradiomics)"


def _classes(facts):
    def describe(m, st):
        f = facts["features"].get(m)
        if not f:
            return ""
        per = ", ".join(f"{k.split(' ', 1)[1]} {n}" for k, n in f["per_class"].items())
        return f"{f['columns']} features ({per})"

    return describe


def _compliance(facts) -> str:
    modes = {MODALITY_NAMES.get(m, m): st.get("ibsi") is not None for m, st in facts["settings"].items()}
    plain = [m for m, on in modes.items() if not on]
    ibsi = [m for m, on in modes.items() if on]
    out = []
    if plain:
        out.append(
            f"{', '.join(plain)}: plain pyradiomics, not IBSI-compliant in pre-processing and 4 definitions; IBSI-1 "
            "reference values matched: " + ", ".join(f"{k} {a}/{b}" for k, (a, b) in IBSI_CONFORMANCE.items())
        )
    if ibsi:
        out.append(f"{', '.join(ibsi)}: radflow IBSI mode, 105/105 on the IBSI-1 phantom and configurations A-E")
    return "; ".join(out)


def _scanners(facts) -> str:
    return "; ".join(
        f"{MODALITY_NAMES.get(m, m)}: " + counted(g["scanners"]) for m, g in facts["cohort"]["modalities"].items()
    )


def _software(facts) -> str:
    return ", ".join(f"{k} {v}" for k, v in facts["software"].items())


def _texture(facts, what):
    def describe(m, st):
        s = st["setting"]
        if what == "aggregation":
            if s.get("force2D"):
                return "GLCM/GLRLM 2.5D averaged over directions; GLSZM/NGLDM/NGTDM 2.5D merged"
            return "GLCM/GLRLM 3D, features averaged over 13 directions (3D:avg); GLSZM/NGLDM/NGTDM 3D"
        if what == "weighting":
            return "none" if not s.get("weightingNorm") else s["weightingNorm"]
        if what == "symmetry":
            return "symmetric" if s.get("symmetricalGLCM") else "asymmetric"
        if what == "distance":
            return "Chebyshev distance " + ", ".join(map(str, s.get("distances") or [1]))
        if what == "coarseness":
            return f"{fmt(s.get('gldm_a'))} (gldm_a)"
        return ""

    return describe


def _sources(facts) -> str:
    s = facts["sources"]
    if s.get("demo"):
        text = "radflow's generated demo cohort (synthetic)"
    elif s["images_from"] == "folder":
        text = "a local DICOM folder"
    else:
        text = f"{s['images_from']} collection {s['collection']}" + (f" (doi:{s['doi']})" if s.get("doi") else "")
    clinical = s.get("clinical") or {}
    if clinical.get("data_release"):
        text += f"; clinical: GDC {clinical.get('project')}, {clinical['data_release']}"
    return text


def _robustness(facts) -> tuple[str, str]:
    rob = facts["analyses"].get("robustness")
    if not rob:
        return "run", "not assessed by radflow in this run (config robustness: null)"
    ratings = ", ".join(f"{k} {n}" for k, n in (rob.get("ratings") or {}).items())
    return "run", (
        f"{len(rob.get('perturbations', []))} perturbation chains of the model ROI (seed {rob.get('seed')}); "
        f"{rob.get('form', 'ICC')} per feature: {ratings} (results/robustness/icc.csv)"
    )


def _ibsi_answers(facts: dict) -> dict:
    """IBSI-1 item -> (status, value, source) for the items the run answers (others: author)."""
    c = facts["cohort"]
    per = lambda describe: _per_modality(facts, describe)  # noqa: E731
    rois = counted(facts["rois"]["rois_with_features"])
    suv = c.get("suv") or {}
    a = {
        "1": ("partly", f"ROIs with features: {rois}", FEATURES),
        "3a": ("run", _acq(facts, "PT", "radiopharmaceutical"), SIDECARS),
        "4a": ("partly", "; ".join(x for x in (_acq(facts, m, "contrast_agent") for m in ("CT", "MR")) if x), SIDECARS),
        "7": ("run", _scanners(facts), SERIES),
        "8": ("run", ", ".join(MODALITY_NAMES.get(m, m) for m in c["modalities"]), SERIES),
        "14": ("run", _acq(facts, "CT", "kvp", "kVp"), SIDECARS),
        "15": ("run", _acq(facts, "CT", "tube_current_ma", "mA"), SIDECARS),
        "18a": ("run", _acq(facts, "MR", "scanning_sequence"), SIDECARS),
        "18b": ("run", _acq(facts, "MR", "sequence_variant"), SIDECARS),
        "19": ("run", _acq(facts, "MR", "repetition_time_ms", "ms"), SIDECARS),
        "20": ("run", _acq(facts, "MR", "echo_time_ms", "ms"), SIDECARS),
        "21": ("run", _acq(facts, "MR", "echo_train_length"), SIDECARS),
        "22": ("run", _acq(facts, "MR", "inversion_time_ms", "ms"), SIDECARS),
        "23": ("run", _acq(facts, "MR", "flip_angle_deg", "°"), SIDECARS),
        "24": ("run", _acq(facts, "MR", "acquisition_type"), SIDECARS),
        "27": ("run", _acq(facts, "MR", "field_strength_t", "T"), SIDECARS),
        "28": ("run", _geometry(facts, "pixel_spacing_mm"), SERIES),
        "29": ("run", _geometry(facts, "slice_thickness_mm"), SERIES),
        "30": ("run", _geometry(facts, "slice_spacing_mm"), SERIES),
        "31a": ("run", _acq(facts, "CT", "kernel"), SIDECARS),
        "31c": ("run", _acq(facts, "CT", "exposure_mas", "mAs"), SIDECARS),
        "32a": ("run", _acq(facts, "PT", "reconstruction"), SIDECARS),
        "34a": ("run", _acq(facts, "PT", "attenuation_correction"), SIDECARS),
        "34b": ("run", _acq(facts, "PT", "corrections"), SIDECARS),
        "37": (
            "run",
            "none: ROIs are rasterised onto images of the same DICOM frame of reference, no registration",
            "radflow.dicom.masks",
        ),
        "38": (
            "run",
            ("SUVbw (g/ml) from the DICOM headers, IBSI SUV rules: " + counted(suv.get("rules", {}))) if suv else "",
            SIDECARS.replace("acquisition", "suv"),
        ),
        "40": (
            "run",
            "CT: stored value × RescaleSlope + RescaleIntercept (HU); RTDOSE: × DoseGridScaling (Gy); MR: as stored",
            "radflow.dicom.convert",
        ),
        "41": ("run", "none (no anti-aliasing filter before resampling)", "pyradiomics resampling"),
        "42": ("run", "none", "radflow.dicom.convert"),
        "45": ("run", "none by radflow", "radflow.dicom.convert"),
        "46": (
            "run",
            per(lambda m, st: "z-score over the image (normalize)" if st["setting"].get("normalize") else "none"),
            SETTINGS,
        ),
        "47": ("run", "none", "radflow"),
        "48a": (
            "partly",
            f"{facts['rois']['structure_sets']} RTSTRUCT, {facts['rois']['segs']} SEG as archived; "
            "how they were drawn: authors",
            "results/index/rois.parquet",
        ),
        "48d": (
            "run",
            "the image the structure set references; rasterised also onto other image series of the same "
            "frame of reference (e.g. the PET of a PET/CT)",
            "results/index/links.parquet",
        ),
        "49": (
            "run",
            "radflow rasteriser: contours of a slice filled together on continuous voxel coordinates, "
            f"overlaps by the {facts['rois']['contour_overlap']} rule; instances: "
            f"{facts['rois']['roi_instances']}",
            "radflow.dicom.masks, config contour_overlap",
        ),
        "50a": ("run", per(_interp), SETTINGS),
        "50b": ("run", per(_grid), SETTINGS),
        "51": ("run", per(_spacing), SETTINGS),
        "52": ("run", per(_rounding) if "CT" in facts["settings"] else "", SETTINGS),
        "53": ("run", per(_mask_interp), SETTINGS),
        "54": ("run", per(_partial), SETTINGS),
        "55": ("run", per(_reseg(facts)), SETTINGS),
        "56a": ("run", per(lambda m, st: "FBN" if st["setting"].get("binCount") else "FBS"), SETTINGS),
        "56b": ("run", per(_bins(facts)), SETTINGS),
        "56c": ("run", per(_first_bin), SETTINGS),
        "57": ("run", per(lambda m, st: ", ".join(st["image_types"])), SETTINGS),
        "58": (
            "run",
            per(_classes(facts)) + "; definitions: results/paper/features.tsv (IBSI names and codes)",
            "results/paper/features.tsv",
        ),
        "59": ("run", _compliance(facts), "CONFORMANCE.md"),
        "60": _robustness(facts) + ("results/robustness/icc.csv",),
        "61": ("run", _software(facts), "results/provenance/provenance.json"),
        "62": ("run", per(_texture(facts, "aggregation")), SETTINGS),
        "63": ("run", per(_texture(facts, "weighting")), SETTINGS),
        "64": ("run", per(_texture(facts, "symmetry")), SETTINGS),
        "65": ("run", per(_texture(facts, "distance")), SETTINGS),
        "66": ("run", "Chebyshev distance 1 (26-connected zones, pyradiomics)", "pyradiomics GLSZM"),
        "67": ("n/a", "pyradiomics computes no distance zone matrix", "pyradiomics"),
        "68": ("n/a", "pyradiomics computes no distance zone matrix", "pyradiomics"),
        "69": ("run", per(_texture(facts, "distance")), SETTINGS),
        "70": ("run", per(_texture(facts, "distance")), SETTINGS),
        "71": ("run", per(_texture(facts, "coarseness")), SETTINGS),
        "76": ("partly", _sources(facts), "config source, results/download/"),
    }
    return a


def _clear_answers(facts: dict, ibsi: dict) -> dict:
    an = facts["analyses"]
    res = an.get("survival_result") or {}
    pre = "; ".join(v for k in ("38", "46", "40") for v in [ibsi[k][1]] if v)
    a = {
        "7": ("partly", "this file: IBSI-1, CLEAR and METRICS items as far as the run answers them", "results/paper/"),
        "12": (
            "partly",
            "the workflow's rule graph and the run's report: snakemake --report report.html",
            "Snakemake report",
        ),
        "13": ("partly", _sources(facts), "config"),
        "16": (
            "partly",
            "; ".join(
                x
                for x in (
                    _scanners(facts),
                    "pixel spacing " + ibsi["28"][1],
                    "slice thickness " + ibsi["29"][1],
                    ibsi["14"][1],
                )
                if x
            ),
            SERIES,
        ),
        "19": ("partly", ibsi["48a"][1] + "; " + ibsi["49"][1], "results/index/rois.parquet"),
        "21": ("run", pre, SETTINGS),
        "22": ("run", ibsi["50a"][1] + "; " + ibsi["51"][1], SETTINGS),
        "23": ("run", ibsi["56b"][1] + "; first bin: " + ibsi["56c"][1], SETTINGS),
        "24": ("run", ibsi["57"][1], SETTINGS),
        "25": (
            "run",
            f"pyradiomics {facts['software'].get('pyradiomics', '')} through radflow "
            f"{facts['software'].get('radflow', '')}, hand-crafted, 3D; {ibsi['59'][1]}",
            SETTINGS,
        ),
        "26": ("run", ibsi["58"][1], "results/paper/features.tsv"),
        "27": (
            "run",
            "; ".join(f"{MODALITY_NAMES.get(m, m)} {f['columns']}" for m, f in facts["features"].items()),
            FEATURES,
        ),
        "28": (
            "run",
            "every pyradiomics setting not in the settings files is pyradiomics' default; the files are "
            "kept with the results",
            SETTINGS,
        ),
        "29": (
            "partly",
            f"{facts['rois']['rows_not_ok']} ROI rows without features"
            + "".join(f", {k} ({n})" for k, n in facts["rois"]["not_ok_reasons"].items())
            + "; patients without images, ROI or outcome: results/cohort.tsv",
            "results/cohort.tsv",
        ),
        "31": ("partly", ibsi["60"][1], "results/robustness/icc.csv") if an.get("robustness") else None,
        "32": ("partly", f"ComBat harmonisation by {an['harmonisation'].get('batch')}", "results/harmonised/")
        if an.get("harmonisation")
        else None,
        "36": (
            "partly",
            f"ComBat by {an['harmonisation'].get('batch')}, covariates "
            f"{', '.join(an['harmonisation'].get('covariates') or []) or 'none'}",
            "results/harmonised/batches.tsv",
        )
        if an.get("harmonisation")
        else None,
        "46": ("partly", ibsi["60"][1], "results/robustness/icc.csv") if an.get("robustness") else None,
        "54": (
            "run",
            "results/features.csv (wide) and features_long.csv, with the dictionary results/paper/features.tsv",
            FEATURES,
        ),
        "55": (
            "run",
            "settings files, config and hashes in results/provenance/; radflow "
            f"{facts['software'].get('radflow', '')} (Apache-2.0)",
            "results/provenance/",
        ),
    }
    if res:
        a["34"] = (
            "partly",
            "radflow's survival starter: elastic-net Cox (lifelines), penalizer "
            f"{fmt(res.get('penalizer'))}, L1 ratio {fmt(res.get('l1_ratio'))}",
            "results/survival/summary.json",
        )
        a["39"] = (
            "partly",
            f"survival starter: out-of-fold C-index {fmt(res.get('cv_c_index'))} ({res.get('folds')} folds)",
            "results/survival/summary.json",
        )
    return {k: v for k, v in a.items() if v}


def _metrics_answers(facts: dict, ibsi: dict, clear: dict) -> dict:
    an = facts["analyses"]
    sites = facts["cohort"].get("sites", 0)
    rob = an.get("robustness")
    min_icc = (an.get("survival") or {}).get("min_icc")
    a = {
        "1": clear["7"],
        "4": ("run", f"yes: {sites} TCGA tissue source sites", FEATURES) if sites > 1 else None,
        "6": clear["16"],
        "8": clear["19"],
        "11": clear["21"],
        "12": ("run", clear["25"][1], "CONFORMANCE.md"),
        "13": (
            "run",
            "; ".join(x for x in (ibsi["56b"][1], ibsi["51"][1], ibsi["55"][1])) + "; " + clear["28"][1],
            SETTINGS,
        ),
        "14": (
            ("run", f"{ibsi['60'][1]}; survival starter keeps ICC ≥ {min_icc}", "results/robustness/icc.csv")
            if rob and min_icc
            else ("partly", ibsi["60"][1], "results/robustness/icc.csv")
            if rob
            else None
        ),
        "17": ("n/a", "no end-to-end deep learning", "radflow"),
        "19": clear.get("36"),
        "28": ibsi["76"],
        "29": ("run", clear["55"][1], "results/provenance/provenance.json"),
    }
    return {k: v for k, v in a.items() if v}


def _row(standard: str, item: dict, answer, run_modalities: set) -> dict:
    modality = item.get("modality", "")
    status, value, source = "author", "", ""
    wanted = ITEM_MODALITIES.get(modality)
    if wanted is not None and not wanted & run_modalities:
        status, value = "n/a", f"no {modality} in this run"
    elif answer:
        status, value, source = answer
        if not value:  # the run holds nothing for it (e.g. a tag no header carries)
            status, value, source = "author", "not in the DICOM headers of this run", source
    return dict(
        standard=standard,
        item=item["item"],
        section=item["section"],
        topic=item["topic"],
        modality=modality,
        status=status,
        value=value,
        source=source,
    )


def reporting_checklist(facts: dict) -> pd.DataFrame:
    """Every item of IBSI-1's reporting guidelines, CLEAR and METRICS, answered from the run's facts."""
    ibsi = _ibsi_answers(facts)
    clear = _clear_answers(facts, ibsi)
    metrics = _metrics_answers(facts, ibsi, clear)
    run_modalities = set(facts["cohort"]["modalities"])
    rows = []
    for standard, answers in (("IBSI-1", ibsi), ("CLEAR", clear), ("METRICS", metrics)):
        for item in _items(standard):
            rows.append(_row(standard, item, answers.get(item["item"]), run_modalities))
    return pd.DataFrame(rows, columns=CHECKLIST_COLUMNS)
