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
