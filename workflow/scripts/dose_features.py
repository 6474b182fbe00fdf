import sys
from pathlib import Path

import pandas as pd

from radflow.run.series_job import run_features

sys.stdout = sys.stderr = open(snakemake.log[0], "w")
i, p = snakemake.input, snakemake.params
# the dose grid and its ROIs' masks, as the dose job wrote them; extracted as a features job extracts an image's.
# An ROI partly outside the dose grid: its DVH counts the outside as 0 Gy, its features describe the part inside.
dvh = pd.read_parquet(Path(i.folder) / "dvh.parquet")
clipped = dvh[(dvh["status"] == "ok") & (dvh["outside_dose_grid_pct"] > 0)]
notes = {
    (r.rtstruct_series_uid, r.roi_original): (
        f"{r.outside_dose_grid_pct:.1f} % of the ROI lies outside the dose grid: these features describe the part "
        "inside it (its DVH counts the outside as 0 Gy)"
    )
    for r in clipped.itertuples()
}
run_features(
    Path(i.folder) / "dose.nii.gz",
    Path(i.folder) / "masks",
    snakemake.output[0],
    p.settings,
    settings_path=i.settings,
    roi_names_path=i.roi_names,
    notes=notes,
)
