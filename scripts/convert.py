import sys

from radflow.convert import convert_series, write_failed_conversion
from radflow.failures import atomic_outputs, is_machine_error
from radflow.orders import read_order

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
order = read_order(snakemake.input.order)
files = [f["path"] for f in order["files"]]
with atomic_outputs(snakemake.output.image, snakemake.output.sidecar) as (image, sidecar):
    try:
        convert_series(
            files, image, sidecar, pet_fallback=snakemake.params.pet_fallback, series_key=order["series_key"]
        )
    except Exception as err:  # one broken series is recorded and skipped; the cohort goes on
        if is_machine_error(err):  # a full disk or too little memory: fail the job, so that a rerun redoes it
            raise
        reason = f"series {order['series_key']} cannot be converted: {type(err).__name__}: {err}"
        print(reason)
        write_failed_conversion(
            image,
            sidecar,
            reason,
            dict(
                patient_id=order["patient_id"],
                study_uid=order["study_uid"],
                series_uid=order["series_key"],
                modality=order["modality"],
            ),
        )
