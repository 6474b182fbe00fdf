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
else:  # the clinical download: every output is a file of one folder, made in a partial folder first
    folder = Path(snakemake.output.release).parent
    partial = folder / ".partial-download"
    shutil.rmtree(partial, ignore_errors=True)
    with atomic_outputs(*snakemake.output) as tmp:
        source.update(images=None, clinical=snakemake.params.clinical)
        fetch_source(source, clinical_dir=partial, log=print)
        for final, temporary in zip(snakemake.output, tmp):
            (partial / Path(final).name).replace(temporary)
    shutil.rmtree(partial)
