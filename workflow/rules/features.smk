rule features:
    input:
        image="results/images/{patient}/{series}.nii.gz",
        sidecar="results/images/{patient}/{series}.json",
        masks="results/masks/{patient}/{series}",
        settings=settings_file,
    output:
        "results/features/{patient}/{series}.parquet",
    resources:
        mem_mb=3000,
    log:
        "logs/features/{patient}/{series}.log",
    script:
        "../../scripts/features.py"


rule merge_features:
    input:
        feature_files,
    output:
        parquet="results/features.parquet",
        csv=report("results/features.csv", caption="../report/features.rst", category="Features"),
    log:
        "logs/merge_features.log",
    script:
        "../../scripts/merge_features.py"
