rule features:
    input:
        image="results/images/{patient}/{series}.nii.gz",
        sidecar="results/images/{patient}/{series}.json",
        masks="results/masks/{patient}/{series}",
        settings=settings_file,
        roi_names=config["roi_names"],
    output:
        "results/features/{patient}/{series}.parquet",
    log:
        "logs/features/{patient}/{series}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        # from the job's own masks (radflow.features.job_resources; the cost model is in config/README.md)
        mem_mb=features_mem_mb,
        runtime=features_minutes,
    params:
        feature_rois=config["feature_rois"],
        max_roi_voxels=config["max_roi_voxels"],
    script:
        "../../scripts/features.py"


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
        "../../scripts/merge_features.py"
