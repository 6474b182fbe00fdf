"""The perturbed and negative-control features of one image series (one job per series of the model's modality):
for each mask of the model's ROI, the features of every robustness perturbation (radflow.trust.robustness.perturb) and
every negative-control image (radflow.trust.negative_controls), with the same extractor and settings as the series' own
features, whose row is taken as the original.

Seeded by (seed, series, ROI label, perturbation): the same draws on every machine and in every rerun. Each
perturbed mask is checked: its volume change against the one asked (the chain's volume_change, 0 for a rigid move);
one that misses by more than volume_tolerance gets status failed and the numbers in its reason, not features."""

from __future__ import annotations

import json
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from radflow.settings import PerturbSettings
from radflow.tables import PERTURBED_COLUMNS, PERTURBED_IDS, pyradiomics_columns


def _seed(seed: int, *parts) -> list[int]:
    return [int(seed)] + [zlib.crc32(str(p).encode()) for p in parts]


def chosen_label(features: pd.DataFrame, roi: str, instances: str = "largest") -> str | None:
    """The label of the mask that stands for `roi` on this series under the instance rule (radflow.cohort.selection: the
    largest instance, the union, or the label itself), among the rows with features; None when there is none."""
    from radflow.cohort.selection import order_within_study, roi_candidates

    rows = roi_candidates(features[features["status"] == "ok"], roi, instances)
    if rows.empty:
        return None
    within = rows.assign(slice_spacing=0.0, n_slices=0)  # one series: only volume and label order its instances
    return str(order_within_study(within, instances)["roi_label"].iloc[0])


def perturbed_series(image_path, masks_dir, features_path, settings_path, settings: PerturbSettings):
    """The rows (PERTURBED_COLUMNS + features) of one series: the original's from its feature table, then each
    perturbation's and each negative control's (settings: the model's ROI and instance rule, robustness' chains and
    the controls, each with its seed), for the mask that stands for the ROI on it (chosen_label: the modelling
    table's rule); none when the series has no such mask with features."""
    import SimpleITK as sitk

    from radflow.features import make_extractor
    from radflow.trust.robustness import crop_for_perturbation

    masks = json.loads((Path(masks_dir) / "masks.json").read_text())
    features = pd.read_parquet(features_path)
    label = chosen_label(features, settings.roi, settings.roi_instances)
    m = next((m for m in masks if m["label"] == label), None)
    if m is None:
        return _ordered(pd.DataFrame([]))
    original = features[(features["roi_label"] == label) & (features["status"] == "ok")].iloc[0].to_dict()
    ids = {k: original[k] for k in PERTURBED_IDS}
    rows = [
        ids
        | dict(kind="original", perturbation="original", parameters="{}", mask_voxels=int(m["voxel_count"]))
        | dict(volume_change_asked=0.0, volume_change=0.0, noise_sd=0.0, status="ok", reason="", seconds=0.0)
        | {k: original[k] for k in pyradiomics_columns(features)}
    ]
    image = sitk.ReadImage(str(image_path))
    mask = sitk.ReadImage(str(Path(masks_dir) / f"{label}.nii.gz"))
    extractor = make_extractor(settings_path)
    # the perturbations work on the ROI's surroundings (the features are those of the whole image, perturbed);
    # the controls on the whole image (non_roi and full draw from all of it)
    robustness = settings.robustness
    chains = list(robustness.perturbations) if robustness else []
    near = crop_for_perturbation(image, mask, chains, extractor.settings)
    job = _Job(image, mask, near, extractor, m, robustness.volume_tolerance if robustness else 0.05)
    for kind, name, spec, seed in _jobs(settings, m["image_series_uid"], label):
        started = time.perf_counter()
        row = ids | dict(kind=kind, perturbation=name, parameters=json.dumps(spec, sort_keys=True))
        row.update(job.run(kind, name, spec, seed))
        row["seconds"] = round(time.perf_counter() - started, 3)
        rows.append(row)
    return _ordered(pd.DataFrame(rows))


def _jobs(settings: PerturbSettings, series_uid: str, label: str) -> list[tuple]:
    """(kind, name, spec, seed) of every perturbation chain and negative control, each seeded by its own seed,
    the series, the ROI and the chain's place or the control's name."""
    from radflow.trust.robustness import perturbation_name

    robustness, controls = settings.robustness, settings.controls
    jobs = []
    if robustness:
        for k, spec in enumerate(robustness.perturbations):
            jobs.append(("perturbation", perturbation_name(spec), spec, _seed(robustness.seed, series_uid, label, k)))
    if controls:
        for name in controls.controls:
            jobs.append(("negative_control", name, {"control": name}, _seed(controls.seed, series_uid, label, name)))
    return jobs


class _Job:
    """One series' ROI, perturbed or replaced by a negative control, and extracted."""

    def __init__(self, image, mask, near, extractor, m: dict, tolerance: float):
        self.image, self.mask, self.extractor, self.m, self.tolerance = image, mask, extractor, m, tolerance
        self.near_image, self.near_mask, self.start = near
        self.voxels = int(m["voxel_count"])

    def run(self, kind: str, name: str, spec: dict, seed) -> dict:
        import SimpleITK as sitk

        from radflow.features import extract_roi
        from radflow.trust.negative_controls import negative_control, parse_control
        from radflow.trust.robustness import paste, perturb

        asked, sd = float(spec.get("volume_change", 0.0)), 0.0
        roi, row = self.m["roi_original"], {}
        try:
            if kind == "perturbation":
                rng = np.random.default_rng(seed)
                img, msk, sd = perturb(self.near_image, self.near_mask, spec, rng, self.voxels)
                img, msk = paste(self.image, self.mask, img, msk, self.start)
            else:
                img, msk = negative_control(self.image, self.mask, *parse_control(name), seed=seed), self.mask
            n = int((sitk.GetArrayViewFromImage(msk) > 0).sum())
            change = n / self.voxels - 1.0
            row = dict(mask_voxels=n, volume_change_asked=asked, volume_change=change, noise_sd=sd)
            if kind == "perturbation" and abs(change - asked) > self.tolerance:
                return row | dict(
                    status="failed",
                    reason=f"perturbed mask of ROI '{roi}' ({name}): volume change {change:+.1%}, "
                    f"asked {asked:+.1%} (tolerance {self.tolerance:.0%})",
                )
            values, failure = extract_roi(self.extractor, img, msk)
            return row | dict(status="failed" if failure else "ok", reason=failure, **values)
        except ValueError as err:  # e.g. a volume change that asks more voxels than the image has
            return row | dict(status="failed", reason=f"ROI '{roi}' ({name}): {err}")


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    for c in PERTURBED_COLUMNS:
        if c not in table.columns:
            table[c] = pd.Series(dtype=object)
    return table[PERTURBED_COLUMNS + [c for c in table.columns if c not in PERTURBED_COLUMNS]]
