import sys
from pathlib import Path

import pandas as pd

from radflow.convert import convert_rtdose
from radflow.failures import atomic_outputs

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
links = pd.read_parquet(snakemake.input.links)
mine = links[(links["source_series_uid"] == snakemake.wildcards.series) & (links["source_modality"] == "RTDOSE")]
with atomic_outputs(snakemake.output[0]) as (folder,):
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    on_images = {Path(image).name[: -len(".nii.gz")]: (image, out / f"on_{Path(image).name}")
                 for image in snakemake.input.images}
    convert_rtdose(mine["source_path"].iloc[0], out / "dose.nii.gz", on_images)
