# radflow: TCIA DICOM cohort -> pyradiomics features per patient x series x ROI -> joined with GDC outcomes.
import sys

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# Every configuration mistake, named by key, value and what was expected, before any job runs; a valid config gets
# the schema's defaults (the schema is validated here once, not again by snakemake.utils.validate).
from radflow.config_check import ConfigError, check_config

try:
    # the pyradiomics settings are loaded once, by the main snakemake process (not again in each cluster job)
    check_config(config, workflow.source_path("workflow/schemas/config.schema.yaml"), settings=workflow.is_main_process)
except ConfigError as err:
    sys.exit(str(err))


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/index.smk"
include: "workflow/rules/series.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/clinical.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/trust.smk"


# On a cluster, these cohort-level tables take seconds: they run where snakemake runs, not as cluster jobs.
localrules:
    clinical,
    delta_radiomics,
    merge_features,
    modelling_table,
    provenance,
    qc_summary,
    timeline,


rule all:
    input:
        "results/index/problems.tsv",
        "results/features.parquet",
        "results/features.csv",
        "results/cohort.tsv",
        # without clinical data (clinical: [] and no source.clinical): no clinical table, modelling table or survival
        list(if_clinical(clinical="results/clinical.csv", model="results/modelling_table.csv").values()),
        "results/survival/summary.json" if HAS_CLINICAL else [],
        "results/provenance.json",
        dose_files,
        overlay_dirs,
        "results/qc/counts.tsv",
        "results/timeline.tsv",
        "results/delta_radiomics.csv",
        trust_outputs(),
