checkpoint index:
    input:
        demo_cohort(),
        downloaded_images(),
        roi_names=config["roi_names"],
    output:
        instances="results/index/instances.parquet",
        series="results/index/series.parquet",
        rois="results/index/rois.parquet",
        links="results/index/links.parquet",
        problems=report("results/index/problems.tsv", caption="../report/problems.rst", category="Index"),
    log:
        "logs/index.log",
    conda:
        CONDA_ENV
    threads: SETTINGS.index.threads
    resources:
        # measured: 1.3 GB peak for a first index of 270,376 files (benchmarks/index_scale.py cohort)
        mem_mb=attempt_mb(4000),
        # measured: 33-41 s for 270,376 files on a local disk; network file systems are slower
        runtime=attempt_minutes(60),
    params:
        settings=SETTINGS.index,
        orders=ORDERS,
    script:
        "../scripts/index.py"
