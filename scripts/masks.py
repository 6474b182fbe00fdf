import json
import sys
from pathlib import Path

import pandas as pd

from radflow.failures import atomic_outputs
from radflow.masks import failed_entry, write_masks
from radflow.roi_names import load_aliases

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
series = snakemake.wildcards.series
links = pd.read_parquet(snakemake.input.links)
links = links[(links["image_series_uid"] == series) & links["source_modality"].isin(["RTSTRUCT", "SEG"])]
relation = dict(zip(links["source_series_uid"], links["relation"]))
image = Path(snakemake.input.image)
sidecar = json.loads(image.with_name(image.name[: -len(".nii.gz")] + ".json").read_text())
with atomic_outputs(snakemake.output[0]) as (out,):
    if sidecar.get("status") == "failed":  # nothing to rasterise on: every ROI fails with the image's reason
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "masks.json").write_text(json.dumps([failed_entry("(every ROI)", sidecar["reason"], series)],
                                                         indent=2))
    else:
        write_masks(sorted(set(links["source_path"])), image, out, load_aliases(snakemake.input.roi_names), series,
                    relation, union=snakemake.params.roi_instances == "union",
                    overlap=snakemake.params.contour_overlap)
