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
        reporting_checklist_tsv=report(
            "results/paper/reporting_checklist.tsv", caption="../report/paper.rst", category="Paper"
        ),
        features_tsv=report("results/paper/features.tsv", caption="../report/paper.rst", category="Paper"),
        cite_md="results/paper/cite.md",
    log:
        "logs/paper.log",
    conda:
        CONDA_ENV
    params:
        config=config,
        settings=paper_settings(),
    script:
        "../../scripts/paper.py"
