import sys

import pandas as pd

from radflow.masks import write_masks
from radflow.roi_names import load_aliases

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
links = pd.read_parquet(snakemake.input.links)
links = links[(links["image_series_uid"] == snakemake.wildcards.series) & links["source_modality"].isin(["RTSTRUCT", "SEG"])]
relation = dict(zip(links["source_series_uid"], links["relation"]))
write_masks(sorted(set(links["source_path"])), snakemake.input.image, snakemake.output[0],
            load_aliases(snakemake.input.roi_names), snakemake.wildcards.series, relation)
