import sys

from radflow.features import extract_series

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
extract_series(snakemake.input.image, snakemake.input.masks, snakemake.input.settings).to_parquet(
    snakemake.output[0], index=False)
