rule features:
    input:
        image="results/images/{patient}/{series}.nii.gz",
        sidecar="results/images/{patient}/{series}.json",
        masks="results/masks/{patient}/{series}",
        settings=settings_file,
    output:
        "results/features/{patient}/{series}.parquet",
    threads: 1
    resources:
        # measured: 352 MiB peak on the demo CTs, 1,064 MiB for a 512x512x200 CT with LoG and wavelet
        mem_mb=attempt_mb(1500),
        # measured: 14.9 s for 1,130 features of a 512x512x200 CT with LoG and wavelet
        runtime=attempt_minutes(10),
    log:
        "logs/features/{patient}/{series}.log",
    conda:
        CONDA_ENV
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
    log:
        "logs/merge_features.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/merge_features.py"
