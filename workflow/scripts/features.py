import sys

from radflow.run.series_job import run_features

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i = snakemake.input
run_features(
    i.image,
    i.masks,
    snakemake.output[0],
    snakemake.params.settings,
    settings_path=i.settings,
    roi_names_path=i.roi_names,
)
