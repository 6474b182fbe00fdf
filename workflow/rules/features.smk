# The features of one series' masks (radflow.run.series_job.run_features): pyradiomics with the settings of the series'
# modality. Its inputs are the image, the masks and the settings, so a settings change redoes these jobs and the
# tables made from them, and nothing upstream.
rule features:
    input:
        image="results/images/{patient}/{series}.nii.gz",
        sidecar="results/images/{patient}/{series}.json",
        masks="results/masks/{patient}/{series}",
        roi_names=config["roi_names"],
        settings=settings_file,
    output:
        "results/features/{patient}/{series}.parquet",
    log:
        "logs/features/{patient}/{series}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        # the features of the series' largest ROI, planned from the index before the masks exist
        # (radflow.features.planned_resources, config/README.md)
        mem_mb=features_mem_mb,
        runtime=features_minutes,
    params:
        settings=SETTINGS.features,
    script:
        "../scripts/features.py"


rule merge_features:
    input:
        feature_files,
    output:
        parquet="results/features.parquet",
        csv=report("results/features.csv", caption="../report/features.rst", category="Features"),
        long_parquet="results/features_long.parquet",
        long_csv="results/features_long.csv",
        cost="results/features_cost.csv",
    log:
        "logs/merge_features.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/merge_features.py"
