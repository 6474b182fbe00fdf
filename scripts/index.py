import sys
from pathlib import Path

from radflow.index import build_index

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
build_index(p.root, Path(snakemake.output.series).parent, snakemake.input.roi_names, threads=snakemake.threads,
            pet_fallback=p.pet_fallback, modalities=p.modalities, series_selection=p.series_selection,
            manifest=p.manifest, progress=False, load_instances=False)
