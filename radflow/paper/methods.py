"""The methods section's image processing and feature extraction paragraphs (results/paper/methods.md), written
from the run's facts (radflow.paper.facts): every number is the run's, every sentence says what the run did.
What only the authors know (eligibility, who drew the contours, the reference standard) is named at the end."""

from __future__ import annotations

from radflow.features import intensity_unit
from radflow.paper.facts import CLASS_NAMES, counted, fmt, fmt_range

# radflow's IBSI-1 conformance (CONFORMANCE.md, `radflow ibsi`): features within tolerance of 105, per dataset,
# in plain pyradiomics mode and in IBSI mode; tests/test_paper.py checks these against CONFORMANCE.md
IBSI_CONFORMANCE = {
    "digital_phantom": (102, 105),
    "A": (104, 105),
    "B": (46, 105),
    "C": (17, 105),
    "D": (17, 105),
    "E": (11, 105),
}
MODALITY_NAMES = {"CT": "CT", "PT": "PET", "MR": "MR", "RTDOSE": "dose"}
INTERPOLATORS = {
    "sitkBSpline": "third-order B-spline",
    "sitkLinear": "trilinear",
    "sitkNearestNeighbor": "nearest-neighbour",
    "sitkBSpline3": "third-order B-spline",
    "sitkLanczosWindowedSinc": "Lanczos windowed sinc",
}
ACQUISITION_WORDS = {
    "kvp": ("tube voltage", "kVp"),
    "tube_current_ma": ("tube current", "mA"),
    "exposure_mas": ("exposure", "mAs"),
    "kernel": ("reconstruction kernel", ""),
    "contrast_agent": ("contrast agent (ContrastBolusAgent)", ""),
    "reconstruction": ("reconstruction", ""),
    "attenuation_correction": ("attenuation correction", ""),
    "corrections": ("corrections applied (CorrectedImage)", ""),
    "radiopharmaceutical": ("radiopharmaceutical", ""),
    "field_strength_t": ("field strength", "T"),
    "repetition_time_ms": ("repetition time", "ms"),
    "echo_time_ms": ("echo time", "ms"),
    "inversion_time_ms": ("inversion time", "ms"),
    "flip_angle_deg": ("flip angle", "°"),
    "echo_train_length": ("echo train length", ""),
    "scanning_sequence": ("scanning sequence", ""),
    "sequence_variant": ("sequence variant", ""),
    "acquisition_type": ("acquisition type", ""),
}


def _plural(n: int, word: str) -> str:
    """'1 series', '3 series', '2 studies', '4 patients'."""
    if n == 1 or word.endswith("series"):
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def _acquisition_sentence(acq: dict) -> str:
    parts = []
    for key, (words, unit) in ACQUISITION_WORDS.items():
        if key not in acq:
            continue
        entry = acq[key]
        n = entry["series"]
        where = f" ({n} of {acq['series']} series)" if n < acq["series"] else ""
        if "range" in entry:
            parts.append(f"{words} {fmt_range(entry['range'], unit)}{where}")
        else:
            parts.append(f"{words} {counted(entry['counts'], 4)}{where}")
    return "; ".join(parts)


def imaging_paragraph(facts: dict) -> str:
    c = facts["cohort"]
    mods = c["modalities"]
    if not mods:
        return "No image series gave features in this run."
    listing = ", ".join(
        f"{_plural(m['series'], MODALITY_NAMES.get(k, k) + ' series')} ({_plural(m['patients'], 'patient')})"
        for k, m in mods.items()
    )
    text = [f"Features were computed for {_plural(c['patients'], 'patient')} from {listing}"]
    text[-1] += f" in {_plural(c['studies'], 'imaging study')}."
    if c.get("sites", 0) > 1:
        text.append(f"The patients came from {c['sites']} TCGA tissue source sites.")
    for k, m in mods.items():
        name = MODALITY_NAMES.get(k, k)
        sentence = (
            f"{name}: {_plural(len(m['scanners']), 'scanner model')} ({counted(m['scanners'], 6)}); "
            f"in-plane pixel spacing {fmt_range(m['pixel_spacing_mm'], 'mm')}, slice thickness "
            f"{fmt_range(m['slice_thickness_mm'], 'mm')}, slice spacing {fmt_range(m['slice_spacing_mm'], 'mm')}"
        )
        acq = c["acquisition"].get(k, {})
        if acq.get("recorded"):
            words = _acquisition_sentence(acq)
            if words:
                sentence += f"; {words}"
        text.append(sentence + ".")
    suv = c.get("suv")
    if suv:
        rules = counted(suv["rules"])
        text.append(
            "PET intensities were converted to body-weight standardised uptake values (SUVbw, g/ml) slice by slice "
            f"from the DICOM headers, following the IBSI SUV rules ({rules}; decay correction "
            f"{', '.join(suv['decay_correction']) or 'not recorded'})"
            + (
                f"; {suv['kept_in_bqml']} series were kept in Bq/ml (config pet_fallback)"
                if suv["kept_in_bqml"]
                else ""
            )
            + "."
        )
    if c.get("dose_grids"):
        text.append(f"{_plural(c['dose_grids'], 'RTDOSE grid')} (in Gy) gave dose features.")
    return " ".join(text)


def roi_paragraph(facts: dict) -> str:
    r = facts["rois"]
    source = []
    if r["structure_sets"]:
        source.append(_plural(r["structure_sets"], "DICOM RTSTRUCT structure set"))
    if r["segs"]:
        source.append(_plural(r["segs"], "DICOM SEG segmentation"))
    overlap = {
        "even-odd": "with the even-odd rule (the overlap of two crossing contours is outside the ROI, as IBSI-1 "
        "prescribes, and a contour inside another is a hole)",
        "union": "as a union (the overlap of two crossing contours is inside the ROI; a contour nested in another "
        "is a hole)",
    }.get(r["contour_overlap"], f"(contour_overlap: {r['contour_overlap']})")
    instances = {
        "largest": "the largest instance stood for the patient",
        "all": "every instance was kept, each as its own row",
        "union": "the instances were joined into one mask",
    }.get(r["roi_instances"], f"roi_instances: {r['roi_instances']}")
    which = {
        "standard": "every ROI with a standard name except those marked as not for features (body outline, couch, "
        "markers, planning volumes)",
        "all": "every ROI, unmapped names included",
    }.get(r["feature_rois"] if isinstance(r["feature_rois"], str) else "", "")
    if not which:
        which = "the ROIs " + ", ".join(map(str, r["feature_rois"] or []))
    rows = counted(r["rois_with_features"])
    text = [
        f"Regions of interest (ROIs) were taken from {' and '.join(source) or 'no segmentation'} "
        f"({_plural(r['rois_indexed'], 'ROI')} indexed), and their names mapped to standard names with the alias "
        "list roi_names.yaml (kept in results/provenance/settings/)."
    ]
    if r["structure_sets"]:
        text.append(
            "Contours were rasterised by radflow on each image's own grid: all contours of an ROI on a slice were "
            f"filled together on continuous voxel coordinates {overlap}. Where a structure set held several "
            f"instances of one standard ROI, {instances}."
        )
    text.append(f"Features were computed for {which}: {rows or 'none'}.")
    if r.get("shared"):
        text.append(
            f"{_plural(r['shared'], 'ROI')} identical voxel for voxel to another ROI of the same image (the same "
            "contour in several structure sets of one frame of reference) shared that ROI's extraction."
        )
    if r["rows_not_ok"]:
        reasons = counted(r["not_ok_reasons"])
        text.append(f"{_plural(r['rows_not_ok'], 'ROI')} gave no features ({reasons}).")
    if facts.get("max_roi_voxels"):
        text.append(f"ROIs of more than {facts['max_roi_voxels']:,} voxels were left out (max_roi_voxels).")
    return " ".join(text)


def _bins(s: dict, unit: str) -> str:
    if s.get("binCount"):
        return f"a fixed bin number of {s['binCount']}"
    u = f" {unit}" if unit and unit != "1" else ""
    return f"a fixed bin width of {fmt(s['binWidth'])}{u}"


def extraction_paragraph(facts: dict, modality: str) -> str:
    st = facts["settings"].get(modality)
    feats = facts["features"].get(modality)
    if not st or not feats:
        return ""
    s = st["setting"]
    name = MODALITY_NAMES.get(modality, modality)
    units = feats["image_units"][0] if feats["image_units"] else ""
    unit = intensity_unit(units, bool(s.get("normalize")))
    ibsi = st.get("ibsi") is not None
    values = f"intensities in {units}" if units and units != "as stored" else "intensities as stored (no absolute unit)"
    text = [f"**{name}** (settings file {st['file']}; {values})."]
    if s.get("normalize"):
        text.append(
            f"Intensities were normalised to z-scores over the image (scaled by {fmt(s['normalizeScale'])}, "
            f"shifted by {fmt(s['voxelArrayShift'])})."
        )
    spacing = s.get("resampledPixelSpacing")
    if spacing:
        grid = "centred on the original grid (IBSI)" if ibsi else "anchored at the ROI's bounding box (pyradiomics)"
        mask = "linear interpolation thresholded at 0.5" if ibsi else "nearest-neighbour interpolation"
        rounding = "rounded to whole numbers" if ibsi and (st["ibsi"] or {}).get("round", True) else "not rounded"
        text.append(
            f"Images were resampled to {'×'.join(fmt(v) for v in spacing)} mm voxels with "
            f"{INTERPOLATORS.get(s['interpolator'], s['interpolator'])} interpolation, the grid {grid}; intensities "
            f"were {rounding} after interpolation; masks were resampled by {mask}."
        )
    else:
        text.append("Images were not resampled (features on the native voxel grid).")
    if s.get("resegmentRange"):
        lo, hi = (list(s["resegmentRange"]) + [None])[:2]
        text.append(
            f"The ROI was re-segmented to intensities in [{fmt(lo)}, {fmt(hi) if hi is not None else '∞'}]"
            f"{' ' + unit if unit and unit != '1' else ''}"
            + (" (morphological features on the mask before re-segmentation)" if not s.get("resegmentShape") else "")
            + "."
        )
    bins = _bins(s, unit)
    start = (
        "the first bin starting at the re-segmentation minimum (IBSI)"
        if ibsi
        else "bin edges at multiples of the width (pyradiomics)"
    )
    text.append(f"Intensities were discretised with {bins}" + ("" if s.get("binCount") else f", {start}") + ".")
    if st["image_types"] != ["Original"]:
        text.append("Image types: " + ", ".join(st["image_types"]) + ".")
    per_class = ", ".join(
        f"{CLASS_NAMES.get(k.split(' ', 1)[1], k.split(' ', 1)[1])}"
        f"{'' if k.startswith('original ') else ' of the ' + k.split(' ')[0] + ' image'} ({n})"
        for k, n in feats["per_class"].items()
    )
    dims = "in 2D per slice (force2D)" if s.get("force2D") else "in 3D"
    text.append(
        f"{feats['columns']} features per ROI were computed {dims}: {per_class}. Texture matrices: co-occurrence "
        f"at distance {', '.join(map(str, s['distances']))}, {'symmetric' if s['symmetricalGLCM'] else 'asymmetric'}, "
        "features averaged over the 13 directions (GLCM and GLRLM); size zone, dependence (α = "
        f"{fmt(s['gldm_a'])}) and neighbourhood grey tone matrices over the volume; "
        f"{'no distance weighting' if not s.get('weightingNorm') else 'distance weighting ' + s['weightingNorm']}."
    )
    return " ".join(text)


def compliance_paragraph(facts: dict) -> str:
    modes = {m: st.get("ibsi") is not None for m, st in facts["settings"].items()}
    ibsi = sorted(m for m, on in modes.items() if on)
    plain = sorted(m for m, on in modes.items() if not on)
    text = []
    if plain:
        text.append(
            f"{', '.join(MODALITY_NAMES.get(m, m) for m in plain)}: pyradiomics' own definitions and pre-processing "
            "(not IBSI-1 compliant: pyradiomics anchors the resampling grid at the ROI, resamples masks "
            "nearest-neighbour, does not round intensities, starts fixed-width bins at a multiple of the width, "
            "reports kurtosis rather than excess kurtosis and divides the PCA covariance by N). On the IBSI-1 "
            "reference data this extraction matched "
            + ", ".join(f"{k.replace('_', ' ')} {v[0]}/{v[1]}" for k, v in IBSI_CONFORMANCE.items())
            + " features (radflow's conformance run, CONFORMANCE.md)."
        )
    if ibsi:
        text.append(
            f"{', '.join(MODALITY_NAMES.get(m, m) for m in ibsi)}: radflow's IBSI mode, which matched 105/105 IBSI-1 "
            "reference features on the digital phantom and configurations A–E (CONFORMANCE.md); IBSI's excess "
            "kurtosis and PCA axis lengths are in the ibsi_* columns."
        )
    return " ".join(text)


def dose_paragraph(facts: dict, dvh_method: str | None) -> str:
    if not facts["cohort"].get("dose_grids"):
        return ""
    text = [
        "Dose-volume histograms were computed per ROI from the contours themselves (not from a mask on the dose "
        f"grid): {dvh_method or 'see results/dose/dvh.parquet, column method'}."
    ]
    dose = (facts["analyses"].get("model") or {}).get("dose")
    if dose:
        cols = "; ".join(f"{roi}: {', '.join(metrics)}" for roi, metrics in dose.items())
        text.append(f"The modelling table took the DVH metrics {cols}.")
    return " ".join(text)


def trust_paragraph(facts: dict) -> str:
    a = facts["analyses"]
    model = a.get("model") or {}
    text = []
    rob = a.get("robustness")
    if rob:
        chains = "; ".join(", ".join(f"{k} {v}" for k, v in p.items()) for p in rob.get("perturbations", []))
        sentence = (
            f"Robustness: the {model.get('modality')} {model.get('roi')} of each patient was perturbed in "
            f"{len(rob.get('perturbations', []))} chains ({chains}; seed {rob.get('seed')}) and features re-extracted "
            "with the same settings; each feature's intraclass correlation"
        )
        if rob.get("form"):
            sentence += f" {rob['form']} over {rob.get('n_images')} images per patient"
        if rob.get("ratings"):
            sentence += " was rated " + counted(rob["ratings"])
        text.append(sentence + ".")
    neg = a.get("negative_controls")
    if neg:
        text.append(
            "Negative controls: features of "
            + ", ".join(neg.get("controls", []))
            + f" versions of the ROI (seed {neg.get('seed')}) were tested for association with the outcome like the "
            "real features."
        )
    harm = a.get("harmonisation")
    if harm:
        text.append(
            f"Harmonisation: ComBat with batch {harm.get('batch')}"
            + (f" ({harm['batches']} batches)" if harm.get("batches") else "")
            + (f", covariates {', '.join(harm['covariates'])}" if harm.get("covariates") else "")
            + (f", classes left as they are: {', '.join(harm['leave_classes'])}" if harm.get("leave_classes") else "")
            + "."
        )
    return " ".join(text)


def outcome_paragraph(facts: dict) -> str:
    a = facts["analyses"]
    res = a.get("survival_result")
    if not res:
        return ""
    sv = a.get("survival") or {}
    model = a.get("model") or {}
    text = (
        f"The modelling table joined the {model.get('modality')} {model.get('roi')} features of "
        f"{_plural(res.get('patients') or 0, 'patient')} with their clinical outcome ({str(res.get('endpoint'))}, "
        f"{_plural(res.get('events') or 0, 'event')})."
    )
    if res.get("status") == "fitted":
        text += (
            f" The survival starter fitted an elastic-net Cox model (penalizer {fmt(res.get('penalizer'))}, L1 ratio "
            f"{fmt(res.get('l1_ratio'))}) in {res.get('folds')} stratified folds (out-of-fold C-index "
            f"{fmt(res.get('cv_c_index'))})."
        )
    else:
        text += f" The survival starter did not fit a model: {res.get('status')} (min_events {sv.get('min_events')})."
    return text


def sources_paragraph(facts: dict) -> str:
    s = facts["sources"]
    if s.get("demo"):
        text = ["Images: radflow's generated demo cohort (synthetic DICOM, not patient data)."]
    elif s["images_from"] == "folder":
        text = ["Images: a local DICOM folder (the config's dicom_root)."]
    else:
        doi = f", doi:{s['doi']}" if s.get("doi") else ""
        text = [f"Images: downloaded with radflow from {s['images_from'].upper()} (collection {s['collection']}{doi})."]
    clinical = s.get("clinical") or {}
    if clinical.get("data_release"):
        text.append(
            f"Clinical data: the Genomic Data Commons, project {clinical.get('project')}, {clinical['data_release']}."
        )
    elif clinical.get("files"):
        kinds = ", ".join(clinical.get("kinds") or []) or _plural(clinical["files"], "clinical file")
        text.append(f"Clinical data: {kinds} (the config's clinical files).")
    return " ".join(text)


def software_paragraph(facts: dict) -> str:
    sw = facts["software"]
    return "Software: " + ", ".join(f"{k} {v}" for k, v in sw.items()) + "."


AUTHORS_PART = [
    "how patients were selected (eligibility, inclusion and exclusion) and how many were excluded, and why",
    "who drew the contours (number of readers, experience, consensus, software) when the structure sets were not "
    "drawn for this study",
    "the imaging protocols as intended (patient preparation, contrast timing, tracer uptake time) beyond what the "
    "headers record",
    "the reference standard and its definition, and the clinical question",
    "the statistical analysis beyond radflow's survival starter, and any external validation",
]


def methods_markdown(facts: dict, dvh_method: str | None = None) -> str:
    """The whole methods.md."""
    sections = [
        "# Methods: image processing and feature extraction",
        "_Written by radflow from this run's tables, settings and config (results/paper/methods.md); every number is "
        "the run's. Edit it into your paper; the settings behind it are in results/provenance/._",
        "## Imaging data",
        imaging_paragraph(facts),
        sources_paragraph(facts),
        "## Regions of interest",
        roi_paragraph(facts),
        "## Image processing and feature extraction",
        "Features were extracted with pyradiomics through radflow, per modality with its own settings file.",
    ]
    for modality in facts["settings"]:
        paragraph = extraction_paragraph(facts, modality)
        if paragraph:
            sections.append(paragraph)
    sections += ["### IBSI compliance", compliance_paragraph(facts)]
    dose = dose_paragraph(facts, dvh_method)
    if dose:
        sections += ["## Dose", dose]
    trust = trust_paragraph(facts)
    if trust:
        sections += ["## Robustness, negative controls and harmonisation", trust]
    outcome = outcome_paragraph(facts)
    if outcome:
        sections += ["## Outcome", outcome]
    sections += ["## Software", software_paragraph(facts)]
    sections += ["## What radflow cannot know (the authors' part)", "\n".join(f"- {x}" for x in AUTHORS_PART)]
    return "\n\n".join(sections) + "\n"
