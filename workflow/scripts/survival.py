import sys

import pandas as pd

from radflow.cohort.survival import survival_starter

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i = snakemake.input
options = dict(snakemake.params.survival)
harmonised, min_icc = options.pop("harmonised"), options.pop("min_icc")
record = dict(table=i.table, harmonised=bool(harmonised), min_icc=min_icc)
allowed = None
if min_icc is not None:  # only features whose robustness ICC (point estimate) reaches min_icc
    icc = pd.read_csv(i.icc)
    allowed = icc.loc[icc["icc"] >= min_icc, "feature"].tolist()
    record.update(features_robust=len(allowed), features_with_icc=len(icc))
table = pd.read_csv(i.table)
summary = survival_starter(table, snakemake.output.summary.rsplit("/", 1)[0], allowed=allowed, record=record, **options)
print(summary)
