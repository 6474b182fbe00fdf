import logging
import sys

from radflow.delta import write_delta_table

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
write_delta_table(snakemake.input.features, snakemake.input.series, snakemake.output[0],
                  snakemake.params.roi_instances)
