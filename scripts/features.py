import sys

from radflow.failures import atomic_outputs
from radflow.features import extract_series

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
with atomic_outputs(snakemake.output[0]) as (out,):
    extract_series(snakemake.input.image, snakemake.input.masks, snakemake.input.settings).to_parquet(out, index=False)
