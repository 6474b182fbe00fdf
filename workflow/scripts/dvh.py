import sys

from radflow.features.dvh import merge_dose_tables

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
o = snakemake.output
table = merge_dose_tables(snakemake.input, o.table, o.csv, o.curves, o.plots)
print(f"{len(table)} DVH rows from {len(snakemake.input)} dose grids")
