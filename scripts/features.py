import sys

from radflow.failures import atomic_outputs
from radflow.features import extract_series
from radflow.roi_names import FeatureRois

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
with atomic_outputs(snakemake.output[0]) as (out,):
    extract_series(
        snakemake.input.image,
        snakemake.input.masks,
        snakemake.input.settings,
        FeatureRois(p.feature_rois, snakemake.input.roi_names),
        p.max_roi_voxels,
        progress=sys.stdout,
    ).to_parquet(out, index=False)
