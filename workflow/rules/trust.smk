# Which features a paper can trust (README "Robustness, negative controls and harmonisation"): the features of the
# model's modality and ROI under perturbations of image and mask (an ICC per feature), on negative-control images
# (their association with the outcome next to the original's), and the modelling table harmonised across batches.
# Each is off unless the config asks for it (ROBUSTNESS, CONTROLS, HARMONISATION: rules/common.smk).
if PERTURBED:

    localrules:
        perturbed_table,

    rule perturb:
        input:
            # image, masks, features: a converted image's, or with model.modality RTDOSE a dose grid's
            unpack(perturb_inputs),
            settings=settings_file,
        output:
            "results/perturbed/{patient}/{series}.parquet",
        log:
            "logs/perturbed/{patient}/{series}.log",
        conda:
            CONDA_ENV
        threads: 1
        resources:
            # one extraction of the ROI per perturbation and control, one at a time (like the features job)
            mem_mb=perturb_mem_mb,
            runtime=perturb_minutes,
        params:
            settings=SETTINGS.perturb,
        script:
            "../scripts/perturb.py"

    rule perturbed_table:
        input:
            perturbed_files,
        output:
            "results/perturbed.parquet",
        log:
            "logs/perturbed_table.log",
        conda:
            CONDA_ENV
        script:
            "../scripts/perturbed_table.py"


if ROBUSTNESS:

    localrules:
        robustness,

    rule robustness:
        input:
            perturbed="results/perturbed.parquet",
            cohort="results/cohort.tsv",
        output:
            icc=report("results/robustness/icc.csv", caption="../report/robustness.rst", category="Robustness"),
            plot=report("results/robustness/icc.png", caption="../report/robustness.rst", category="Robustness"),
            features="results/robustness/features.csv",
        log:
            "logs/robustness.log",
        conda:
            CONDA_ENV
        script:
            "../scripts/robustness.py"


if CONTROLS and HAS_CLINICAL:

    localrules:
        negative_controls,

    rule negative_controls:
        input:
            perturbed="results/perturbed.parquet",
            cohort="results/cohort.tsv",
            table="results/modelling_table.csv",
        output:
            report(
                "results/negative_controls/association.csv",
                caption="../report/negative_controls.rst",
                category="Robustness",
            ),
        log:
            "logs/negative_controls.log",
        conda:
            CONDA_ENV
        params:
            endpoint=SETTINGS.survival.endpoint,
        script:
            "../scripts/negative_controls.py"


if HARMONISATION and HAS_CLINICAL:

    localrules:
        harmonise,

    rule harmonise:
        input:
            **(
                {"batch": SETTINGS.harmonisation.batch["path"]}
                if isinstance(SETTINGS.harmonisation.batch, dict)
                else {}
            ),
            table="results/modelling_table.csv",
            series="results/index/series.parquet",
        output:
            table="results/harmonised/modelling_table.csv",
            batches=report("results/harmonised/batches.tsv", caption="../report/harmonised.rst", category="Model"),
            plot=report("results/harmonised/before_after.png", caption="../report/harmonised.rst", category="Model"),
        log:
            "logs/harmonise.log",
        conda:
            CONDA_ENV
        params:
            settings=SETTINGS.harmonisation,
        script:
            "../scripts/harmonise.py"
