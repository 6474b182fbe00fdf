rule convert:
    input:
        instances="results/index/instances.parquet",
    output:
        image="results/images/{patient}/{series}.nii.gz",
        sidecar="results/images/{patient}/{series}.json",
    params:
        pet_fallback=config.get("pet_fallback"),
    resources:
        mem_mb=2000,
    log:
        "logs/convert/{patient}/{series}.log",
    script:
        "../../scripts/convert.py"


rule masks:
    input:
        image="results/images/{patient}/{series}.nii.gz",
        links="results/index/links.parquet",
        roi_names=config["roi_names"],
    output:
        directory("results/masks/{patient}/{series}"),
    resources:
        mem_mb=2000,
    log:
        "logs/masks/{patient}/{series}.log",
    script:
        "../../scripts/masks.py"


rule dose:
    input:
        links="results/index/links.parquet",
        images=dose_images,
    output:
        directory("results/dose/{patient}/{series}"),
    resources:
        mem_mb=2000,
    log:
        "logs/dose/{patient}/{series}.log",
    script:
        "../../scripts/dose.py"
