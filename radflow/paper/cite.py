"""What to cite for a run (results/paper/cite.md): radflow and the software and data behind its numbers, each
when the run used it."""

from __future__ import annotations

REFERENCES = {
    "radflow": "radflow {version}, the radflow developers (CITATION.cff in the repository).",
    "pyradiomics": "van Griethuysen JJM, Fedorov A, Parmar C, et al. Computational radiomics system to decode the "
    "radiographic phenotype. Cancer Res. 2017;77(21):e104–e107. doi:10.1158/0008-5472.CAN-17-0339",
    "IBSI": "Zwanenburg A, Vallières M, Abdalah MA, et al. The Image Biomarker Standardization Initiative: "
    "standardized quantitative radiomics for high-throughput image-based phenotyping. Radiology. "
    "2020;295(2):328–338. doi:10.1148/radiol.2020191145",
    "Snakemake": "Mölder F, Jablonski KP, Letcher B, et al. Sustainable data analysis with Snakemake. F1000Research. "
    "2021;10:33. doi:10.12688/f1000research.29032.2",
    "SimpleITK": "Lowekamp BC, Chen DT, Ibáñez L, Blezek D. The design of SimpleITK. Front Neuroinform. 2013;7:45. "
    "doi:10.3389/fninf.2013.00045",
    "TCIA": "Clark K, Vendt B, Smith K, et al. The Cancer Imaging Archive (TCIA): maintaining and operating a public "
    "information repository. J Digit Imaging. 2013;26(6):1045–1057. doi:10.1007/s10278-013-9622-7",
    "GDC": "Grossman RL, Heath AP, Ferretti V, et al. Toward a shared vision for cancer genomic data. N Engl J Med. "
    "2016;375(12):1109–1112. doi:10.1056/NEJMp1607591",
    "TCGA-CDR": "Liu J, Lichtenberg T, Hoadley KA, et al. An integrated TCGA pan-cancer clinical data resource to "
    "drive high-quality survival outcome analytics. Cell. 2018;173(2):400–416. doi:10.1016/j.cell.2018.02.052",
    "ComBat": "Johnson WE, Li C, Rabinovic A. Adjusting batch effects in microarray expression data using empirical "
    "Bayes methods. Biostatistics. 2007;8(1):118–127. doi:10.1093/biostatistics/kxj037 (radflow's ComBat equals R's "
    "sva::ComBat and neuroCombat to 1e-14; Fortin J-P, et al. NeuroImage. 2018;167:104–120. "
    "doi:10.1016/j.neuroimage.2017.11.024)",
    "perturbation": "Zwanenburg A, Leger S, Agolli L, et al. Assessing robustness of radiomic features by image "
    "perturbation. Sci Rep. 2019;9:614. doi:10.1038/s41598-018-36938-4",
    "READII": "READII, negative-control ROIs for radiomics (BHKLab, https://github.com/bhklab/readii): radflow's "
    "shuffled and randomised-sampled ROIs follow its definitions",
    "lifelines": "Davidson-Pilon C. lifelines: survival analysis in Python. J Open Source Softw. 2019;4(40):1317. "
    "doi:10.21105/joss.01317",
    "CLEAR": "Kocak B, Baessler B, Bakas S, et al. CheckList for EvaluAtion of Radiomics research (CLEAR). Insights "
    "Imaging. 2023;14:75. doi:10.1186/s13244-023-01415-8",
    "METRICS": "Kocak B, Akinci D'Antonoli T, Mercaldo N, et al. METhodological RadiomICs Score (METRICS). Insights "
    "Imaging. 2024;15:8. doi:10.1186/s13244-023-01572-w",
}


def cite_markdown(facts: dict) -> str:
    """cite.md: the references this run's methods rest on, each with why it is there."""
    sources = facts["sources"]
    analyses = facts["analyses"]
    endpoint = str((analyses.get("survival") or {}).get("endpoint", "")).lower()
    entries = [
        (
            "radflow",
            "the workflow that made every table",
            REFERENCES["radflow"].format(version=facts["software"].get("radflow", "")),
        ),
        ("pyradiomics", f"feature extraction, pyradiomics {facts['software'].get('pyradiomics', '')}", None),
        ("IBSI", "feature definitions, the names and codes of features.tsv, the reporting items", None),
        ("SimpleITK", "image resampling and I/O", None),
        ("Snakemake", "the workflow engine", None),
    ]
    if not sources.get("demo"):
        collection = sources.get("collection") or "the TCIA collection(s) the images came from"
        doi = f" (doi:{sources['doi']})" if sources.get("doi") else " (its DOI is on the collection's TCIA page)"
        entries.append(("TCIA", f"image archive; also cite {collection}{doi}", None))
    if (sources.get("clinical") or {}).get("data_release") or (sources.get("clinical") or {}).get("project"):
        entries.append(("GDC", "clinical data (Genomic Data Commons)", None))
    kinds = (sources.get("clinical") or {}).get("kinds") or []
    if endpoint in ("dss", "pfi") or "the TCGA-CDR table" in kinds:
        entries.append(("TCGA-CDR", "clinical endpoints (TCGA Pan-Cancer Clinical Data Resource)", None))
    if analyses.get("robustness"):
        entries.append(("perturbation", "robustness by image and ROI perturbation", None))
    if analyses.get("negative_controls"):
        entries.append(("READII", "negative-control ROIs", None))
    if analyses.get("harmonisation"):
        entries.append(("ComBat", "harmonisation", None))
    if analyses.get("survival_result"):
        entries.append(("lifelines", "the survival starter's Cox models", None))
    entries += [("CLEAR", "reporting checklist", None), ("METRICS", "quality score items", None)]
    lines = [
        "# What to cite for this run",
        "",
        "_Written by radflow from the run's config and outputs: each reference is here because the run used it._",
        "",
    ]
    for key, why, text in entries:
        lines.append(f"- **{key}** ({why}): {text or REFERENCES[key]}")
    return "\n".join(lines) + "\n"
