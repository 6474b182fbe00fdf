if config["demo_cohort"]:

    localrules:
        demo_cohort,

    rule demo_cohort:
        output:
            truth=f"{config['demo_cohort']}/truth.json",
            clinical=f"{config['demo_cohort']}/clinical.tsv",
        log:
            "logs/demo_cohort.log",
        conda:
            CONDA_ENV
        script:
            "../scripts/demo_cohort.py"
