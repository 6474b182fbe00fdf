import sys

from radflow.failures import atomic_outputs
from radflow.run.provenance import provenance, remove_stale

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
remove_stale(snakemake.params.stale)
o = snakemake.output
names = list(snakemake.params.settings)
with atomic_outputs(o.record, o.manifest, o.config, *o.settings) as (record, manifest, config, *copies):
    provenance(
        dict(snakemake.params.config),
        list(snakemake.input.outputs) + list(snakemake.input.indexed),
        dict(snakemake.params.settings),
        {f"clinical[{k}]": path for k, path in enumerate(snakemake.input.clinical)},
        "results",
        dict(record=record, manifest=manifest, config=config, settings=dict(zip(names, copies))),
        snakemake.params.defaulted,
    )
