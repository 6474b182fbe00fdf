import sys
import time

from radflow.failures import atomic_outputs
from radflow.trust.perturbed import perturbed_series

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i, p = snakemake.input, snakemake.params
started = time.perf_counter()
# an image and its masks folder, or (model.modality RTDOSE) the dose job's folder: the dose grid and its masks
image, masks = (
    (f"{i.dose_folder}/dose.nii.gz", f"{i.dose_folder}/masks") if "dose_folder" in i.keys() else (i.image, i.masks)
)
table = perturbed_series(image, masks, i.features, i.settings, p.settings)
with atomic_outputs(snakemake.output[0]) as (path,):
    table.to_parquet(path, index=False)
for r in table.itertuples():
    print(f"{r.roi_label} {r.perturbation}: {r.mask_voxels} voxels, {r.status} {r.reason} ({r.seconds:.2f} s)")
print(f"{len(table)} rows in {time.perf_counter() - started:.1f} s")
