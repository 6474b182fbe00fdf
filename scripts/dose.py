import json
import sys
from pathlib import Path

from radflow.convert import convert_rtdose
from radflow.dvh import dose_to_rois
from radflow.failures import atomic_outputs
from radflow.orders import read_order
from radflow.roi_names import load_aliases

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
order = read_order(snakemake.input.order)
with atomic_outputs(snakemake.output[0]) as (folder,):
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    on_images = {
        Path(image).name[: -len(".nii.gz")]: (image, out / f"on_{Path(image).name}") for image in snakemake.input.images
    }
    sidecar = convert_rtdose(order["dose"]["path"], out / "dose.nii.gz", on_images)
    # the DVH of every ROI of the structure sets of the dose's images, from their contours (radflow.dvh)
    structures = {
        s["path"]: s
        for masks_order in snakemake.input.structures
        for s in read_order(masks_order)["structures"]
        if s["modality"] == "RTSTRUCT"
    }
    table, curves = dose_to_rois(
        out / "dose.nii.gz",
        sidecar,
        [structures[p] for p in sorted(structures)],
        load_aliases(snakemake.input.roi_names),
        snakemake.params.contour_overlap,
    )
    table.to_parquet(out / "dvh.parquet", index=False)
    curves.to_parquet(out / "dvh_curves.parquet", index=False)
    for r in table.itertuples():
        detail = f"Dmean {r.dmean_gy:.2f} Gy, {r.volume_cc:.2f} cc" if r.status == "ok" else r.reason
        print(f"DVH {r.roi} ('{r.roi_original}'): {r.status}, {detail}")
    print(json.dumps(dict(dose_grid=sidecar["series_uid"], rois=len(table))))
