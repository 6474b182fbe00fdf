import sys

import pandas as pd

from radflow.failures import atomic_outputs
from radflow.qc import cohort_counts, feature_distributions

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i = snakemake.input
features = pd.read_parquet(i.features)
counts = cohort_counts(
    pd.read_parquet(i.series),
    pd.read_csv(i.problems, sep="\t"),
    features,
    pd.read_csv(i.cohort, sep="\t"),
    # a run without clinical data has neither: counted as none
    pd.read_csv(i.clinical) if i.get("clinical") else pd.DataFrame(columns=["patient_id"]),
    pd.read_csv(i.modelling_table) if i.get("modelling_table") else pd.DataFrame(),
    snakemake.params.endpoint,
)
with atomic_outputs(snakemake.output.counts, snakemake.output.distributions) as (counts_tsv, distributions):
    counts.to_csv(counts_tsv, sep="\t", index=False)
    print(counts.to_string(index=False))
    feature_distributions(features, distributions)
