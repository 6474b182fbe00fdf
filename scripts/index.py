import sys
from pathlib import Path

from radflow.index import build_index

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
build_index(snakemake.params.root, Path(snakemake.output.series).parent, snakemake.input.roi_names,
            threads=snakemake.threads, pet_fallback=snakemake.params.pet_fallback)
