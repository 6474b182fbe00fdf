import sys
from pathlib import Path

from radflow.demo import generate_demo

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
generate_demo(Path(snakemake.output.truth).parent)
