# One job per image series converts it and rasterises its structure sets in one process (radflow.run.series_job), so that
# the cost of starting Python and importing the libraries (about a second of CPU) is paid once for both; its features
# are their own job (rules/features.smk), which a pyradiomics settings change redoes alone.
rule series:
    input:
        order=work_order("convert"),
        masks_order=masks_order,
        roi_names=config["roi_names"],
    output:
        image="results/images/{patient}/{series}.nii.gz",
        sidecar="results/images/{patient}/{series}.json",
        masks=directory("results/masks/{patient}/{series}"),
    log:
        "logs/series/{patient}/{series}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        # measured 190-350 MiB on demo and STS series, about 1.5 GB for a 512x512x600 CT
        mem_mb=attempt_mb(CONVERT_MB),
        runtime=attempt_minutes(CONVERT_AND_MASKS_MINUTES),
    params:
        settings=SETTINGS.series,
    script:
        "../scripts/series.py"


rule dose:
    input:
        order=work_order("dose"),
        images=dose_images,
        # the structure sets of those images (their masks orders): every ROI gets a DVH and dose features
        structures=dose_structures,
        roi_names=config["roi_names"],
    output:
        # dose.nii.gz (Gy), on_<CT>.nii.gz, dose.json; dvh.parquet and dvh_curves.parquet: each ROI of the
        # structure sets of its CTs (radflow.features.dvh, from the contours); masks/: those ROIs on the dose grid
        folder=directory("results/dose/{patient}/{series}"),
    log:
        "logs/dose/{patient}/{series}.log",
    conda:
        CONDA_ENV
    resources:
        # the DVH samples at most 20 million points per ROI, 2 million at a time
        mem_mb=attempt_mb(3000),
        runtime=attempt_minutes(15),
    params:
        settings=SETTINGS.series,
    script:
        "../scripts/dose.py"


# The dose features of a dose grid's ROI masks: rows of the features table with modality RTDOSE. Its own job, as an
# image's features are: a change of RTDOSE.yaml redoes these and their readers, not the dose grids or the DVHs.
rule dose_features:
    input:
        folder="results/dose/{patient}/{series}",
        roi_names=config["roi_names"],
        settings=f"{config['pyradiomics_settings']}/RTDOSE.yaml",
    output:
        "results/features/{patient}/dose_{series}.parquet",
    log:
        "logs/dose_features/{patient}/{series}.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=attempt_mb(DOSE_FEATURES_MB),
        runtime=attempt_minutes(DOSE_FEATURES_MINUTES),
    params:
        settings=SETTINGS.features,
    script:
        "../scripts/dose_features.py"


# Every dose grid's DVHs in one table, and their curves as pictures for the report.
rule dvh:
    input:
        dose_files,
    output:
        table="results/dose/dvh.parquet",
        csv=report("results/dose/dvh.csv", caption="../report/dvh.rst", category="Dose"),
        curves="results/dose/dvh_curves.parquet",
        plots=report(
            directory("results/qc/dvh"),
            patterns=["{name}.png"],
            caption="../report/dvh.rst",
            category="Dose",
            labels={"patient and dose grid": "{name}"},
        ),
    log:
        "logs/dvh.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/dvh.py"
