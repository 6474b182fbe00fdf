import sys

import pandas as pd

from radflow.convert import convert_series, write_failed_conversion
from radflow.failures import atomic_outputs, is_machine_error
from radflow.index import series_files

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
instances = pd.read_parquet(snakemake.input.instances,
                            columns=["series_key", "path", "patient_id", "study_uid", "modality"])
files = series_files(instances, snakemake.wildcards.series)
with atomic_outputs(snakemake.output.image, snakemake.output.sidecar) as (image, sidecar):
    try:
        convert_series(files, image, sidecar, pet_fallback=snakemake.params.pet_fallback,
                       series_key=snakemake.wildcards.series)
    except Exception as err:  # one broken series is recorded and skipped; the cohort goes on
        if is_machine_error(err):  # a full disk or too little memory: fail the job, so that a rerun redoes it
            raise
        first = instances[instances["series_key"] == snakemake.wildcards.series].iloc[0]
        reason = f"series {snakemake.wildcards.series} cannot be converted: {type(err).__name__}: {err}"
        print(reason)
        write_failed_conversion(image, sidecar, reason,
                                dict(patient_id=first["patient_id"], study_uid=first["study_uid"],
                                     series_uid=snakemake.wildcards.series, modality=first["modality"]))
