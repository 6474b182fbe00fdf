import sys

import pandas as pd

from radflow.failures import atomic_outputs
from radflow.trust.robustness import icc_plot, robustness_icc

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i, o = snakemake.input, snakemake.output
perturbed = pd.read_parquet(i.perturbed)
table, rows = robustness_icc(perturbed, pd.read_csv(i.cohort, sep="\t", dtype=str))
failed = perturbed[perturbed["status"] != "ok"]
for r in failed.itertuples():
    print(f"left out: {r.patient_id} {r.series_uid} {r.roi_label} {r.perturbation}: {r.reason}")
with atomic_outputs(o.icc, o.plot, o.features) as (icc, plot, features):
    table.to_csv(icc, index=False)
    icc_plot(table, plot)
    rows.to_csv(features, index=False)
print(table["rating"].value_counts().to_string())
