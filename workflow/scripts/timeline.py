import sys

import pandas as pd

from radflow.cohort.timeline import patient_timeline
from radflow.failures import atomic_outputs

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
with atomic_outputs(snakemake.output[0]) as (out,):
    patient_timeline(pd.read_parquet(snakemake.input[0])).to_csv(out, sep="\t", index=False)
