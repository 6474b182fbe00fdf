import sys

from radflow.failures import atomic_outputs
from radflow.provenance import provenance

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
with atomic_outputs(snakemake.output[0]) as (out,):
    provenance(dict(snakemake.params.config), dict(snakemake.input.items()), snakemake.params.workflow_dir, out)
