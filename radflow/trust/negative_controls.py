"""Negative-control images (READII, bhklab; Kazmierski et al.): the image's values rearranged so that whatever a
feature measures of texture or shape is destroyed while the values themselves (or their distribution) stay. A feature
whose association with the outcome survives its negative control measures something other than what it claims.

Controls (READII's names): `shuffled` (the region's voxel values permuted among its voxels: the same histogram),
`randomized` (each voxel of the region drawn uniformly between the region's minimum and maximum: only the range
kept), `randomized_sampled` (each voxel of the region drawn with replacement from the region's values: the same
distribution), over a `region`: `roi` (inside the mask), `non_roi` (outside it) or `full` (the whole image). Seeded:
the same control on every machine."""

from __future__ import annotations

import numpy as np

CONTROLS = ("shuffled", "randomized", "randomized_sampled")
REGIONS = ("roi", "non_roi", "full")


def parse_control(name: str) -> tuple[str, str]:
    """A config's control name (shuffled_roi, randomized_sampled_non_roi, ...) as (control, region)."""
    for region in sorted(REGIONS, key=len, reverse=True):  # non_roi before roi
        if name.endswith("_" + region) and name[: -len(region) - 1] in CONTROLS:
            return name[: -len(region) - 1], region
    raise ValueError(f"negative control {name!r}: expected <control>_<region>, control one of {CONTROLS}")


def negative_control(image, mask, control: str, region: str = "roi", seed: int = 0):
    """A SimpleITK image with the region's values rearranged (see the module); the mask is unchanged."""
    import SimpleITK as sitk

    if control not in CONTROLS or region not in REGIONS:
        raise ValueError(f"negative control {control!r} over {region!r}: expected one of {CONTROLS} over {REGIONS}")
    values = sitk.GetArrayFromImage(image)
    inside = sitk.GetArrayViewFromImage(mask) > 0
    where = {"roi": inside, "non_roi": ~inside, "full": np.ones_like(inside)}[region]
    rng = np.random.default_rng(seed)
    chosen = values[where]
    if control == "shuffled":
        values[where] = rng.permutation(chosen)
    elif control == "randomized":
        drawn = rng.uniform(float(chosen.min()), float(chosen.max()), chosen.size)
        values[where] = np.rint(drawn) if values.dtype.kind in "iu" else drawn
    else:
        values[where] = rng.choice(chosen, size=chosen.size)
    out = sitk.GetImageFromArray(values)
    out.CopyInformation(image)
    return out


def association_table(perturbed, cohort, table, endpoint: str = "os"):
    """Each feature's univariate Cox association with the outcome (hazard ratio per SD, p, Harrell's C) for the
    original image and for each negative control, side by side, over the modelling table's patients (each one's
    image and ROI as results/cohort.tsv chose them). `<control>_same` says the control left the feature's values as they
    were for every patient (to 1e-9: e.g. first-order features under a shuffle, shape features under any control):
    such a feature's control says nothing. `suspect` names the controls whose association is as strong as the
    original's (p < 0.05 for both): a feature whose signal survives the destruction of what it measures."""
    import pandas as pd
    from lifelines.utils import concordance_index

    from radflow.cohort.survival import _univariate
    from radflow.tables import pyradiomics_columns
    from radflow.trust.robustness import model_rows

    time_col, event_col = f"{endpoint}_days", f"{endpoint}_event"
    outcome = table[["patient_id", time_col, event_col]].dropna()
    outcome = outcome[pd.to_numeric(outcome[time_col], errors="coerce") > 0]
    rows = model_rows(perturbed, cohort)
    rows = rows[rows["kind"].isin(["original", "negative_control"]) & rows["status"].eq("ok")]
    rows = rows.merge(outcome, on="patient_id")
    features = pyradiomics_columns(rows)
    names = ["original"] + [n for n in dict.fromkeys(rows["perturbation"]) if n != "original"]
    original = rows[rows["perturbation"] == "original"].set_index("patient_id")
    out = pd.DataFrame({"feature": features})
    suspect = [[] for _ in features]
    for name in names:
        part = rows[rows["perturbation"] == name].set_index("patient_id").sort_index()
        times, events = part[time_col].to_numpy(float), part[event_col].to_numpy(int)
        usable = [f for f in features if part[f].notna().all() and part[f].std() > 0]
        z = (part[usable] - part[usable].mean()) / part[usable].std()
        uni = _univariate(z, times, events, usable).set_index("feature").reindex(features)
        c = {f: concordance_index(times, -part[f].to_numpy(float), events) for f in usable}
        out[f"{name}_n"] = len(part)
        out[f"{name}_hr_per_sd"] = uni["hazard_ratio_per_sd"].to_numpy()
        out[f"{name}_p"] = uni["p"].to_numpy()
        out[f"{name}_c_index"] = [c.get(f, np.nan) for f in features]
        if name != "original":
            base = original.reindex(part.index)
            same = [
                bool(np.allclose(part[f].to_numpy(float), base[f].to_numpy(float), rtol=1e-9, atol=0, equal_nan=True))
                for f in features
            ]
            out[f"{name}_same"] = same
            for i, f in enumerate(features):
                if not same[i] and out.loc[i, "original_p"] < 0.05 and out.loc[i, f"{name}_p"] < 0.05:
                    suspect[i].append(name)
    out["suspect"] = [";".join(s) for s in suspect]
    return out
