import sys
from pathlib import Path

from radflow.index import build_index, nothing_to_convert
from radflow.index.orders import write_index_orders

terminal = sys.stderr
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
empty = nothing_to_convert(tables, p.root)
if empty:
    # Snakemake deletes the outputs of a failed job: the problems table is kept next to the log
    kept = Path(snakemake.log[0]).with_name("index_problems.tsv")
    tables["problems"].to_csv(kept, sep="\t", index=False)
    message = f"radflow index: nothing to convert. {empty}\nEvery file and series with its reason: {kept}"
    print(message)
    print(message, file=terminal)
    sys.exit(1)
counts = write_index_orders(out, p.orders)
print(
    f"work orders under {p.orders}: {counts['written']} written, {counts['unchanged']} unchanged, "
    f"{counts['removed']} removed"
)
