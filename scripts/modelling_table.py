import sys

from radflow.model import write_modelling_table

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i, o, p = snakemake.input, snakemake.output, snakemake.params
write_modelling_table(i.features, i.clinical, i.series, p.modality, p.roi, o.table, o.cohort, p.time_point,
                      p.roi_instances, p.studies)
