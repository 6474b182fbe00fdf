import sys

import pandas as pd

from radflow.failures import atomic_outputs
from radflow.trust.harmonise import harmonise_step

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i, o = snakemake.input, snakemake.output
with atomic_outputs(o.table, o.batches, o.plot) as (table, batches, plot):
    report = harmonise_step(
        pd.read_csv(i.table, dtype={"series_uid": str, "study_uid": str}),
        pd.read_parquet(i.series),
        snakemake.params.settings,
        table,
        batches,
        plot,
    )
print(report.to_string())
