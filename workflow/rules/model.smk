rule modelling_table:
    input:
        **if_clinical(clinical="results/clinical.csv"),
        # with model.dose: the DVH metrics of the chosen study's dose grid become columns
        **({"dvh": "results/dose/dvh.parquet"} if SETTINGS.model.dose else {}),
        features="results/features.parquet",
        series="results/index/series.parquet",
        timeline="results/timeline.tsv",
        settings=f"{config['pyradiomics_settings']}/{SETTINGS.model.modality}.yaml",
    output:
        **if_clinical(
            table=report("results/modelling_table.csv", caption="../report/modelling_table.rst", category="Model"),
            columns="results/modelling_table_columns.tsv",
        ),
        # without clinical data (clinical: [] and no source.clinical) only the cohort accounting
        cohort=report("results/cohort.tsv", caption="../report/cohort.rst", category="Model"),
    log:
        "logs/modelling_table.log",
    conda:
        CONDA_ENV
    params:
        settings=SETTINGS.model,
    script:
        "../scripts/modelling_table.py"


rule delta_radiomics:
    input:
        features="results/features.parquet",
        series="results/index/series.parquet",
        timeline="results/timeline.tsv",
    output:
        report("results/delta_radiomics.csv", caption="../report/delta_radiomics.rst", category="Model"),
    log:
        "logs/delta_radiomics.log",
    conda:
        CONDA_ENV
    params:
        roi_instances=SETTINGS.model.roi_instances,
    script:
        "../scripts/delta_radiomics.py"


rule survival:
    input:
        **({"icc": "results/robustness/icc.csv"} if SETTINGS.survival.min_icc is not None else {}),
        # survival.harmonised: the harmonised copy; survival.min_icc: only the features robust enough
        table=(
            "results/harmonised/modelling_table.csv" if SETTINGS.survival.harmonised else "results/modelling_table.csv"
        ),
    output:
        summary="results/survival/summary.json",
        univariate="results/survival/univariate_cox.csv",
        km=report("results/survival/km.png", caption="../report/survival.rst", category="Model"),
    log:
        "logs/survival.log",
    conda:
        CONDA_ENV
    params:
        settings=SETTINGS.survival,
    script:
        "../scripts/survival.py"


# One patient's studies in time (radflow.cohort.timeline): a rule that calls one function, declaring its result.
rule timeline:
    input:
        series="results/index/series.parquet",
    output:
        timeline=result(report("results/timeline.tsv", caption="../report/timeline.rst", category="Cohort")),
    log:
        "logs/timeline.log",
    conda:
        CONDA_ENV
    params:
        call="radflow.cohort.timeline:write_timeline",
    script:
        "../scripts/call.py"
