# Pictures and counts for `snakemake --report report.html`: ROI outlines on every image, feature distributions,
# cohort counts.
rule overlays:
    input:
        image="results/images/{patient}/{series}.nii.gz",
        sidecar="results/images/{patient}/{series}.json",
        masks="results/masks/{patient}/{series}",
    output:
        report(
            directory("results/qc/overlays/{patient}/{series}"),
            patterns=["{roi}.png"],
            caption="../report/overlays.rst",
            category="Mask overlays",
            subcategory="{patient}",
            labels={"patient": "{patient}", "series": "{series}", "ROI": "{roi}"},
        ),
    params:
        # qc_overlays: model draws only the modelling table's ROI
        rois=[config["model"]["roi"]] if config["qc_overlays"] == "model" else None,
    resources:
        mem_mb=attempt_mb(1000),
        runtime=attempt_minutes(3),
    log:
        "logs/overlays/{patient}/{series}.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/overlays.py"


def overlay_dirs(wildcards):
    """Overlay folders to draw (config qc_overlays): every masked series, the model's modality only, or none."""
    which = config["qc_overlays"]
    if which == "none":
        return []
    modality = config["model"]["modality"]
    return [f"results/qc/overlays/{p}/{s}" for p, s, m in series_with_masks() if which == "all" or m == modality]


rule qc_summary:
    input:
        series="results/index/series.parquet",
        problems="results/index/problems.tsv",
        features="results/features.parquet",
        clinical="results/clinical.csv",
        cohort="results/cohort.tsv",
        modelling_table="results/modelling_table.csv",
    output:
        counts=report("results/qc/counts.tsv", caption="../report/counts.rst", category="Cohort"),
        distributions=report(
            directory("results/qc/feature_distributions"),
            patterns=["{name}.png"],
            caption="../report/distributions.rst",
            category="Feature distributions",
            labels={"modality and ROI": "{name}"},
        ),
    params:
        endpoint=config["survival"]["endpoint"],
    log:
        "logs/qc_summary.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/qc_summary.py"
