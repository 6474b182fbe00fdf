import sys

from radflow.provenance import provenance

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
provenance(dict(snakemake.params.config), dict(snakemake.input.items()), snakemake.params.workflow_dir,
           snakemake.output[0])
