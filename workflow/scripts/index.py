import sys
from dataclasses import replace
from pathlib import Path

from radflow.index import index_with, nothing_to_convert
from radflow.index.orders import write_index_orders

terminal = sys.stderr
sys.stdout = sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
s = p.settings  # radflow.settings.IndexSettings (threads: as many as snakemake gave the job)
out = Path(snakemake.output.series).parent
tables = index_with(
    replace(s, threads=snakemake.threads), out, snakemake.input.roi_names, progress=False, load_instances=False
)
empty = nothing_to_convert(tables, s.dicom_root)
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
