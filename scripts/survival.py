import sys

import pandas as pd

from radflow.survival import survival_starter

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
table = pd.read_csv(snakemake.input[0])
summary = survival_starter(table, snakemake.output.summary.rsplit("/", 1)[0], **snakemake.params.survival)
print(summary)
