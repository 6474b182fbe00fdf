import sys

from radflow.cohort.model import write_modelling_table
from radflow.failures import atomic_outputs

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i, o, p = snakemake.input, snakemake.output, snakemake.params
clinical = i.get("clinical")  # absent in a run without clinical data: the cohort accounting only
outputs = [o.cohort] + ([o.table, o.columns] if clinical else [])
if not clinical:
    # (outcome tables of an earlier run with clinical data are removed by the provenance rule, with the other
    # outputs of what this config switched off)
    print("no clinical data in this run (clinical: [] and no source.clinical): no modelling table")
with atomic_outputs(*outputs) as written:
    write_modelling_table(
        i.features,
        clinical,
        i.series,
        p.settings,
        written[1] if clinical else None,
        written[0],
        i.timeline,
        written[2] if clinical else None,
        i.settings,
        i.get("dvh"),
    )
