rule clinical:
    input:
        config["clinical"],
    output:
        table="results/clinical.csv",
        problems="results/clinical_problems.tsv",
    log:
        "logs/clinical.log",
    script:
        "../../scripts/clinical.py"
