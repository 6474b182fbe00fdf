rule clinical:
    input:
        CLINICAL_FILES,
    output:
        table="results/clinical.csv",
        problems="results/clinical_problems.tsv",
    log:
        "logs/clinical.log",
    conda:
        CONDA_ENV
    params:
        project=config["clinical_project"],
        # each file as the config gives it: a path, or a table with its column mapping (radflow.cohort.clinical.table_spec)
        entries=CLINICAL_ENTRIES,
    script:
        "../scripts/clinical.py"
