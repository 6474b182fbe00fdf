# The run's provenance, kept with its results: a copy of every settings file, the config as run, the full SHA-256 of
# every table and picture (radflow.run.provenance; `radflow verify results/` checks a folder against it). It reads every
# other output, so it runs last and reruns whenever any of them, a settings file or the config changes.
rule provenance:
    input:
        outputs=run_outputs(),
        indexed=indexed_outputs,
        settings=list(settings_files().values()),
        # the user's clinical files: hashed, not copied
        clinical=[f for f in CLINICAL_FILES if not f.startswith("results/")],
    output:
        record="results/provenance/provenance.json",
        manifest="results/provenance/manifest.tsv",
        config="results/provenance/config.yaml",
        settings=[f"results/provenance/settings/{name}" for name in settings_files()],
    log:
        "logs/provenance.log",
    conda:
        CONDA_ENV
    params:
        config=config,
        defaulted=DEFAULTED,
        settings=settings_files(),
        # what an analysis switched off left from an earlier run: removed, so that nothing stale looks current
        stale=switched_off_outputs(),
    script:
        "../scripts/provenance.py"
