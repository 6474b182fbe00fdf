# The paper folder (radflow.paper): the methods paragraphs, the IBSI-1/CLEAR/METRICS checklist and the feature
# dictionary, written from this run's tables, sidecars, settings and config; what to cite for it.
rule paper:
    input:
        unpack(paper_inputs),
        features="results/features.parquet",
        series="results/index/series.parquet",
        rois="results/index/rois.parquet",
        dvh="results/dose/dvh.parquet",
        settings=list(settings_files().values()),
    output:
        methods_md="results/paper/methods.md",
        methods_html=report("results/paper/methods.html", caption="../report/paper.rst", category="Paper"),
        reporting_checklist_tsv="results/paper/reporting_checklist.tsv",
        reporting_checklist_html=report(
            "results/paper/reporting_checklist.html", caption="../report/paper.rst", category="Paper"
        ),
        features_tsv="results/paper/features.tsv",
        features_html=report("results/paper/features.html", caption="../report/paper.rst", category="Paper"),
        cite_md="results/paper/cite.md",
    log:
        "logs/paper.log",
    conda:
        CONDA_ENV
    params:
        config=config,
        settings=paper_settings(),
    script:
        "../scripts/paper.py"


# Results as DICOM (config dicom_export): per masked image series, its masks as a DICOM SEG and its features as a
# DICOM SR TID 1500 (radflow.paper.dicom_export), referencing the source images.
rule dicom_export:
    input:
        order=work_order("convert"),
        masks="results/masks/{patient}/{series}",
        features="results/features/{patient}/{series}.parquet",
        settings=settings_file,
    output:
        directory("results/dicom/{patient}/{series}"),
    log:
        "logs/dicom_export/{patient}/{series}.log",
    conda:
        CONDA_ENV
    resources:
        # the SEG's frames: every mask of the series at once (a planning CT's 28 ROIs, body outline included)
        mem_mb=attempt_mb(4000),
        runtime=attempt_minutes(10),
    script:
        "../scripts/dicom_export.py"
