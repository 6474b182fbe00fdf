import sys

import pandas as pd

from radflow.timeline import patient_timeline

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
patient_timeline(pd.read_parquet(snakemake.input[0])).to_csv(snakemake.output[0], sep="\t", index=False)
