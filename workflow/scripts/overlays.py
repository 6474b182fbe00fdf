import sys

from radflow.failures import atomic_outputs
from radflow.qc import series_overlays

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
w = snakemake.wildcards
with atomic_outputs(snakemake.output[0]) as (out,):
    p = snakemake.params
    rois = series_overlays(
        snakemake.input.image, snakemake.input.masks, out, w.patient, w.series, p.model_roi, p.roi_instances
    )
print(f"{len(rois)} overlays: {', '.join(rois)}")
