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
    log:
        "logs/overlays/{patient}/{series}.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=attempt_mb(1000),
        runtime=attempt_minutes(3),
    params:
        # qc_overlays: model draws only the masks that can stand for the modelling table's ROI (radflow.cohort.selection)
        model_roi=SETTINGS.model.roi if config["qc_overlays"] == "model" else None,
        roi_instances=SETTINGS.model.roi_instances,
    script:
        "../scripts/overlays.py"


rule qc_summary:
    input:
        **if_clinical(clinical="results/clinical.csv", modelling_table="results/modelling_table.csv"),
        series="results/index/series.parquet",
        problems="results/index/problems.tsv",
        features="results/features.parquet",
        cohort="results/cohort.tsv",
    output:
        counts=report("results/qc/counts.tsv", caption="../report/counts.rst", category="Cohort"),
        distributions=report(
            directory("results/qc/feature_distributions"),
            patterns=["{name}.png"],
            caption="../report/distributions.rst",
            category="Feature distributions",
            labels={"modality and ROI": "{name}"},
        ),
    log:
        "logs/qc_summary.log",
    conda:
        CONDA_ENV
    params:
        endpoint=SETTINGS.survival.endpoint,
    script:
        "../scripts/qc_summary.py"
