import sys

from radflow.features import merge_features

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
merge_features(snakemake.input, snakemake.output.parquet, snakemake.output.csv)
