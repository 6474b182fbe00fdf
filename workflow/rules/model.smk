rule modelling_table:
    input:
        features="results/features.parquet",
        clinical="results/clinical.csv",
        series="results/index/series.parquet",
    output:
        table=report("results/modelling_table.csv", caption="../report/modelling_table.rst", category="Model"),
        cohort=report("results/cohort.tsv", caption="../report/cohort.rst", category="Model"),
    params:
        modality=config["model"]["modality"],
        roi=config["model"]["roi"],
    log:
        "logs/modelling_table.log",
    script:
        "../../scripts/modelling_table.py"
