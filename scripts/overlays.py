import sys

from radflow.qc import series_overlays

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
w = snakemake.wildcards
rois = series_overlays(snakemake.input.image, snakemake.input.masks, snakemake.output[0], w.patient, w.series,
                       only=snakemake.params.rois)
print(f"{len(rois)} overlays: {', '.join(rois)}")
