import json
import sys
from pathlib import Path

from radflow.dicom.convert import convert_rtdose
from radflow.failures import atomic_outputs
from radflow.features.dvh import dose_to_rois, plan_structure_sets
from radflow.index.orders import read_order
from radflow.roi_names import load_aliases
from radflow.run.series_job import masks_step

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i, o, p = snakemake.input, snakemake.output, snakemake.params
order = read_order(i.order)
with atomic_outputs(o.folder) as (folder,):
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    on_images = {Path(image).name[: -len(".nii.gz")]: (image, out / f"on_{Path(image).name}") for image in i.images}
    sidecar = convert_rtdose(order["dose"]["path"], out / "dose.nii.gz", on_images)
    structures = {
        s["path"]: s
        for masks_order in i.structures
        for s in read_order(masks_order)["structures"]
        if s["modality"] == "RTSTRUCT"
    }
    # the structure sets of the dose's images; those its plan references where they are among them
    # (radflow.features.dvh)
    structures, chosen_by = plan_structure_sets([structures[path] for path in sorted(structures)], order.get("plan"))
    print(f"structure sets: {chosen_by}")
    aliases = load_aliases(i.roi_names)
    # the DVH of every ROI of those structure sets, from their contours (radflow.features.dvh)
    table, curves = dose_to_rois(
        out / "dose.nii.gz",
        sidecar,
        structures,
        aliases,
        p.settings.contour_overlap,
        plan_label=(order.get("plan") or {}).get("label", ""),
        structure_sets_by=chosen_by,
    )
    table.to_parquet(out / "dvh.parquet", index=False)
    curves.to_parquet(out / "dvh_curves.parquet", index=False)
    for r in table.itertuples():
        detail = f"Dmean {r.dmean_gy:.2f} Gy, {r.volume_cc:.2f} cc" if r.status == "ok" else r.reason
        print(f"DVH {r.roi} ('{r.roi_original}'): {r.status}, {detail}")
    # the same ROIs rasterised on the dose grid, for their dose features (rule dose_features)
    masks = masks_step(
        dict(series_key=sidecar["series_uid"], structures=structures) if structures else None,
        out / "dose.nii.gz",
        sidecar,
        out / "masks",
        aliases,
        p.settings.roi_instances,
        p.settings.contour_overlap,
    )
    print(json.dumps(dict(dose_grid=sidecar["series_uid"], dvh_rows=len(table), masks=len(masks))))
