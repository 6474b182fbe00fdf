rule convert:
    input:
        order=work_order("convert"),
    output:
        image="results/images/{patient}/{series}.nii.gz",
        sidecar="results/images/{patient}/{series}.json",
    log:
        "logs/convert/{patient}/{series}.log",
    conda:
        CONDA_ENV
    resources:
        # measured: 190-350 MiB for demo and STS series; a 512x512x600 CT needs about 1.5 GB
        mem_mb=attempt_mb(2000),
        runtime=attempt_minutes(3),
    params:
        pet_fallback=config["pet_fallback"],
    script:
        "../../scripts/convert.py"


rule masks:
    input:
        image="results/images/{patient}/{series}.nii.gz",
        order=work_order("masks"),
        roi_names=config["roi_names"],
    output:
        directory("results/masks/{patient}/{series}"),
    log:
        "logs/masks/{patient}/{series}.log",
    conda:
        CONDA_ENV
    resources:
        # measured: 186-199 MiB whole process (benchmarks/masks_vs_tools.py)
        mem_mb=attempt_mb(2000),
        runtime=attempt_minutes(3),
    params:
        roi_instances=config["roi_instances"],
        contour_overlap=config["contour_overlap"],
    script:
        "../../scripts/masks.py"


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
