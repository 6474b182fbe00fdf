import sys
from pathlib import Path

from radflow.convert import convert_rtdose
from radflow.failures import atomic_outputs
from radflow.orders import read_order

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
order = read_order(snakemake.input.order)
with atomic_outputs(snakemake.output[0]) as (folder,):
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    on_images = {
        Path(image).name[: -len(".nii.gz")]: (image, out / f"on_{Path(image).name}") for image in snakemake.input.images
    }
    convert_rtdose(order["dose"]["path"], out / "dose.nii.gz", on_images)
