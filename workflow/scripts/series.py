import sys

from radflow.index.orders import read_order
from radflow.run.series_job import SeriesOutputs, run_series

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i, o, p = snakemake.input, snakemake.output, snakemake.params
run_series(
    read_order(i.order),
    read_order(i.masks_order) if i.masks_order else None,
    SeriesOutputs(o.image, o.sidecar, o.masks),
    p.settings,
    roi_names_path=i.roi_names,
)
