import json
import sys
from pathlib import Path

from radflow.failures import atomic_outputs
from radflow.masks import failed_entry, write_masks
from radflow.orders import read_order
from radflow.records import image_sidecar
from radflow.roi_names import load_aliases

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
order = read_order(snakemake.input.order)
series = order["series_key"]
structures = order["structures"]
relation = {s["series_uid"]: s["relation"] for s in structures}
image = Path(snakemake.input.image)
sidecar = json.loads(image_sidecar(image).read_text())
with atomic_outputs(snakemake.output[0]) as (out,):
    if sidecar.get("status") == "failed":  # nothing to rasterise on: every ROI fails with the image's reason
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "masks.json").write_text(
            json.dumps([failed_entry("(every ROI)", sidecar["reason"], series)], indent=2)
        )
    else:
        write_masks(
            sorted({s["path"] for s in structures}),
            image,
            out,
            load_aliases(snakemake.input.roi_names),
            series,
            relation,
            union=snakemake.params.roi_instances == "union",
            overlap=snakemake.params.contour_overlap,
            modalities={s["path"]: s["modality"] for s in structures},
        )
