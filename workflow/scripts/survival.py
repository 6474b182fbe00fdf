import sys

import pandas as pd

from radflow.cohort.survival import survival_starter

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i = snakemake.input
settings = snakemake.params.settings  # radflow.settings.SurvivalSettings
record = dict(table=i.table, harmonised=bool(settings.harmonised), min_icc=settings.min_icc)
allowed = None
if settings.min_icc is not None:  # only features whose robustness ICC (point estimate) reaches min_icc
    icc = pd.read_csv(i.icc)
    allowed = icc.loc[icc["icc"] >= settings.min_icc, "feature"].tolist()
    record.update(features_robust=len(allowed), features_with_icc=len(icc))
table = pd.read_csv(i.table)
summary = survival_starter(table, snakemake.output.summary.rsplit("/", 1)[0], settings, allowed=allowed, record=record)
print(summary)
