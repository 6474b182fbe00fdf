rule clinical:
    input:
        config["clinical"],
    output:
        table="results/clinical.csv",
        problems="results/clinical_problems.tsv",
    log:
        "logs/clinical.log",
    conda:
        CONDA_ENV
    params:
        project=config["clinical_project"],
    script:
        "../../scripts/clinical.py"
