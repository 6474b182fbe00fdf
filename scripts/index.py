import sys
from pathlib import Path

import pandas as pd

from radflow.index import build_index
from radflow.orders import write_orders

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
out = Path(snakemake.output.series).parent
tables = build_index(
    p.root,
    out,
    snakemake.input.roi_names,
    threads=snakemake.threads,
    pet_fallback=p.pet_fallback,
    modalities=p.modalities,
    series_selection=p.series_selection,
    manifest=p.manifest,
    progress=False,
    load_instances=False,
)
tables["instances"] = pd.read_parquet(out / "instances.parquet", columns=["path", "size", "mtime", "series_key"])
counts = write_orders(tables, p.orders)
print(
    f"work orders under {p.orders}: {counts['written']} written, {counts['unchanged']} unchanged, "
    f"{counts['removed']} removed"
)
