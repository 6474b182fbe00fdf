import sys

from radflow.features import merge_features

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
o = snakemake.output
merge_features(snakemake.input, o.parquet, o.csv, o.long_parquet, o.long_csv)
