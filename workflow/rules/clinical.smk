rule clinical:
    input:
        config["clinical"],
    output:
        table="results/clinical.csv",
        problems="results/clinical_problems.tsv",
    params:
        project=config["clinical_project"],
    log:
        "logs/clinical.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/clinical.py"
