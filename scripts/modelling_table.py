import sys

from radflow.failures import atomic_outputs
from radflow.model import write_modelling_table

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i, o, p = snakemake.input, snakemake.output, snakemake.params
with atomic_outputs(o.table, o.cohort) as (table, cohort):
    write_modelling_table(
        i.features,
        i.clinical,
        i.series,
        p.modality,
        p.roi,
        table,
        cohort,
        p.time_point,
        p.roi_instances,
        p.studies,
        i.timeline,
    )
