import logging
import sys

from radflow.cohort.delta import write_delta_table
from radflow.failures import atomic_outputs

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
with atomic_outputs(snakemake.output[0]) as (out,):
    write_delta_table(
        snakemake.input.features, snakemake.input.series, out, snakemake.params.roi_instances, snakemake.input.timeline
    )
