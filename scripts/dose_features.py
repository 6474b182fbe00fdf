import sys
from pathlib import Path

from radflow.series_job import run_features

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i, p = snakemake.input, snakemake.params
# the dose grid and its ROIs' masks, as the dose job wrote them; extracted as a features job extracts an image's
run_features(
    Path(i.folder) / "dose.nii.gz",
    Path(i.folder) / "masks",
    snakemake.output[0],
    settings_path=i.settings,
    roi_names_path=i.roi_names,
    feature_rois=p.feature_rois,
    max_roi_voxels=p.max_roi_voxels,
)
