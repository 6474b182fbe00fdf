import sys

from radflow.model import write_modelling_table

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i, o = snakemake.input, snakemake.output
write_modelling_table(i.features, i.clinical, i.series, snakemake.params.modality, snakemake.params.roi, o.table,
                      o.cohort)
