# One job per image series: convert, masks and features in one process (radflow.series_job), so that the cost of
# starting Python and importing the libraries (about a second of CPU) is paid once per series, not three times.
rule series:
    input:
        order=work_order("convert"),
        masks_order=masks_order,
        roi_names=config["roi_names"],
        settings=settings_file,
    output:
        image="results/images/{patient}/{series}.nii.gz",
        sidecar="results/images/{patient}/{series}.json",
        masks=directory("results/masks/{patient}/{series}"),
        features="results/features/{patient}/{series}.parquet",
    log:
        "logs/series/{patient}/{series}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        # conversion (measured 190-350 MiB on demo and STS series, about 1.5 GB for a 512x512x600 CT) or the features
        # of the series' largest ROI, whichever needs more (radflow.features.job_resources, config/README.md)
        mem_mb=series_mem_mb,
        runtime=series_minutes,
    params:
        pet_fallback=config["pet_fallback"],
        roi_instances=config["roi_instances"],
        contour_overlap=config["contour_overlap"],
        feature_rois=config["feature_rois"],
        max_roi_voxels=config["max_roi_voxels"],
    script:
        "../../scripts/series.py"


rule dose:
    input:
        order=work_order("dose"),
        images=dose_images,
    output:
        directory("results/dose/{patient}/{series}"),
    log:
        "logs/dose/{patient}/{series}.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=attempt_mb(2000),
        runtime=attempt_minutes(3),
    script:
        "../../scripts/dose.py"
