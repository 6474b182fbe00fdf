import sys

from radflow.failures import atomic_outputs
from radflow.paper.folder import FILES, write_paper_folder

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i = snakemake.input
inputs = dict(
    features=i.features,
    series=i.series,
    rois=i.rois,
    sidecars=list(i.sidecars),
    dvh=i.dvh,
    icc=i.get("icc"),
    batches=i.get("batches"),
    survival=i.get("survival"),
    clinical_record=i.get("clinical_record"),
)
paths = [getattr(snakemake.output, name.replace(".", "_")) for name in FILES]
with atomic_outputs(*paths) as temporary:
    facts = write_paper_folder(
        inputs, dict(snakemake.params.settings), dict(snakemake.params.config), dict(zip(FILES, temporary))
    )
print(f"paper folder: {facts['cohort']['patients']} patients, modalities {sorted(facts['settings'])}")
