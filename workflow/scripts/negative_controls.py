import sys

import pandas as pd

from radflow.failures import atomic_outputs
from radflow.trust.negative_controls import association_table

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i = snakemake.input
table = association_table(
    pd.read_parquet(i.perturbed),
    pd.read_csv(i.cohort, sep="\t", dtype=str),
    pd.read_csv(i.table, dtype={"series_uid": str}),
    snakemake.params.endpoint,
)
with atomic_outputs(snakemake.output[0]) as (path,):
    table.to_csv(path, index=False)
print(f"{len(table)} features; suspect: {int(table['suspect'].ne('').sum())}")
