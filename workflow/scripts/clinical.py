import sys

from radflow.cohort.clinical import clinical_table
from radflow.failures import atomic_outputs

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
with atomic_outputs(snakemake.output.table, snakemake.output.problems) as (table, problems):
    clinical_table(list(snakemake.params.entries), table, problems, project=snakemake.params.project)
