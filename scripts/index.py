import sys
from pathlib import Path

from radflow.index import build_index
from radflow.orders import write_index_orders

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
out = Path(snakemake.output.series).parent
build_index(
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
counts = write_index_orders(out, p.orders)
print(
    f"work orders under {p.orders}: {counts['written']} written, {counts['unchanged']} unchanged, "
    f"{counts['removed']} removed"
)
