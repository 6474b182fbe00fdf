import sys

from radflow.run.series_job import run_features

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i, p = snakemake.input, snakemake.params
run_features(
    i.image,
    i.masks,
    snakemake.output[0],
    settings_path=i.settings,
    roi_names_path=i.roi_names,
    feature_rois=p.feature_rois,
    max_roi_voxels=p.max_roi_voxels,
)
