import sys

import pandas as pd

from radflow.failures import atomic_outputs
from radflow.tables import PERTURBED_COLUMNS as COLUMNS

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
parts = [pd.read_parquet(path) for path in snakemake.input]
parts = [p for p in parts if len(p)]
table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
with atomic_outputs(snakemake.output[0]) as (path,):
    table.to_parquet(path, index=False)
print(f"{len(table)} rows from {len(snakemake.input)} series")
