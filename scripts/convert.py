import sys

import pandas as pd

from radflow.convert import convert_series
from radflow.index import series_files

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
instances = pd.read_parquet(snakemake.input.instances, columns=["series_key", "path"])
convert_series(series_files(instances, snakemake.wildcards.series), snakemake.output.image, snakemake.output.sidecar,
               pet_fallback=snakemake.params.pet_fallback, series_key=snakemake.wildcards.series)
