import sys

from radflow.failures import atomic_outputs
from radflow.features import merge_features

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
o = snakemake.output
with atomic_outputs(o.parquet, o.csv, o.long_parquet, o.long_csv, o.cost) as paths:
    merge_features(snakemake.input, *paths)
