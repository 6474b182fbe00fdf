import sys

from radflow.clinical import clinical_table

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
clinical_table(list(snakemake.input), snakemake.output.table, snakemake.output.problems,
               project=snakemake.params.project)
