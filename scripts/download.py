import shutil
import sys
from pathlib import Path

from radflow.download import fetch_source
from radflow.failures import atomic_outputs

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
source = dict(snakemake.config["source"])  # retries, requests_per_second, backoff, timeout
if snakemake.rule == "download_images":
    with atomic_outputs(snakemake.output[0]) as (report,):
        source.update(images=snakemake.params.images, clinical=None)
        got = fetch_source(source, snakemake.params.root, report, log=print)
    failed = got["images"][got["images"]["outcome"] == "failed"]
    print(f"{len(got['images'])} series, {len(failed)} failed (named in {snakemake.output[0]})")
else:
    folder = Path(snakemake.output.clinical).parent
    with atomic_outputs(*snakemake.output) as tmp:
        source.update(images=None, clinical=snakemake.params.clinical)
        paths = fetch_source(source, clinical_dir=folder / ".partial-gdc", log=print)["clinical"]
        for made, final in zip([*paths, folder / ".partial-gdc" / "clinical.json"], tmp):
            Path(made).replace(final)
    shutil.rmtree(folder / ".partial-gdc")
