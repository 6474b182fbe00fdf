import json
import sys
from pathlib import Path

import pandas as pd
import yaml

from radflow.failures import atomic_outputs
from radflow.index.orders import read_order
from radflow.paper.dicom_export import export_series

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i = snakemake.input
order = read_order(i.order)
settings = yaml.safe_load(Path(i.settings).read_text()) or {}
normalized = bool((settings.get("setting") or {}).get("normalize"))
with atomic_outputs(snakemake.output[0]) as (folder,):
    summary = export_series(
        [f["path"] for f in order["files"]], i.masks, pd.read_parquet(i.features), folder, normalized
    )
print(json.dumps(summary, indent=2))
