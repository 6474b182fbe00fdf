import shutil
import sys
from pathlib import Path

from radflow.download import fetch_source
from radflow.failures import atomic_outputs

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
source = dict(snakemake.params.source)
if snakemake.rule == "download_images":
    with atomic_outputs(snakemake.output[0]) as (report,):
        got = fetch_source(dict(source, clinical=None), snakemake.params.root, report, log=print)
    failed = got["images"][got["images"]["outcome"] == "failed"]
    print(f"{len(got['images'])} series, {len(failed)} failed (named in {snakemake.output[0]})")
else:
    folder = Path(snakemake.output.clinical).parent
    with atomic_outputs(*snakemake.output) as tmp:
        paths = fetch_source(dict(source, images=None), clinical_dir=folder / ".partial-gdc", log=print)["clinical"]
        for made, final in zip([*paths, folder / ".partial-gdc" / "clinical.json"], tmp):
            Path(made).replace(final)
    shutil.rmtree(folder / ".partial-gdc")
