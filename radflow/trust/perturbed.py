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

from radflow.tables import PERTURBED_COLUMNS, PERTURBED_IDS


def _default_seed(section: str) -> int:
    """The config schema's seed of robustness or negative_controls (a caller's config without one gets it)."""
    from radflow.config.check import SCHEMA_PATH, load_schema

    return int(load_schema(SCHEMA_PATH)["properties"][section]["properties"]["seed"]["default"])


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


def perturbed_series(
    image_path,
    masks_dir,
    features_path,
    settings_path,
    roi: str,
    robustness=None,
    controls=None,
    instances: str = "largest",
):
    """The rows (PERTURBED_COLUMNS + features) of one series: the original's from its feature table, then each
    perturbation's and each negative control's, for the mask that stands for `roi` on it (chosen_label: the modelling
    table's rule); none when the series has no such mask with features."""
    import SimpleITK as sitk

    from radflow.features import extract_roi, make_extractor
    from radflow.tables import pyradiomics_columns
    from radflow.trust.negative_controls import negative_control, parse_control
    from radflow.trust.robustness import crop_for_perturbation, paste, perturb, perturbation_name

    masks = json.loads((Path(masks_dir) / "masks.json").read_text())
    features = pd.read_parquet(features_path)
    label = chosen_label(features, roi, instances)
    rows = []
    m = next((m for m in masks if m["label"] == label), None)
    if m is not None:
        original = features[(features["roi_label"] == label) & (features["status"] == "ok")].iloc[0].to_dict()
        ids = {k: original[k] for k in PERTURBED_IDS}
        voxels = int(m["voxel_count"])
        rows.append(
            ids
            | dict(kind="original", perturbation="original", parameters="{}", mask_voxels=voxels)
            | dict(volume_change_asked=0.0, volume_change=0.0, noise_sd=0.0, status="ok", reason="", seconds=0.0)
            | {k: original[k] for k in pyradiomics_columns(features)}
        )
        image = sitk.ReadImage(str(image_path))
        mask = sitk.ReadImage(str(Path(masks_dir) / f"{label}.nii.gz"))
        extractor = make_extractor(settings_path)
        # the perturbations work on the ROI's surroundings (the features are those of the whole image, perturbed);
        # the controls on the whole image (non_roi and full draw from all of it)
        chains = (robustness or {}).get("perturbations") or []
        near_image, near_mask, start = crop_for_perturbation(image, mask, chains, extractor.settings)
        tolerance = (robustness or {}).get("volume_tolerance", 0.05)
        series_uid = m["image_series_uid"]
        seeds = dict(
            perturbation=robustness["seed"] if "seed" in (robustness or {}) else _default_seed("robustness"),
            negative_control=controls["seed"] if "seed" in (controls or {}) else _default_seed("negative_controls"),
        )
        jobs = [
            (
                "perturbation",
                perturbation_name(spec),
                spec,
                _seed(seeds["perturbation"], series_uid, label, k),
            )
            for k, spec in enumerate(chains)
        ] + [
            (
                "negative_control",
                name,
                {"control": name},
                _seed(seeds["negative_control"], series_uid, label, name),
            )
            for name in ((controls or {}).get("controls") or [])
        ]
        for kind, name, spec, seed in jobs:
            started = time.perf_counter()
            row = ids | dict(kind=kind, perturbation=name, parameters=json.dumps(spec, sort_keys=True))
            asked, sd = float(spec.get("volume_change", 0.0)), 0.0
            try:
                if kind == "perturbation":
                    img, msk, sd = perturb(near_image, near_mask, spec, np.random.default_rng(seed), voxels)
                    img, msk = paste(image, mask, img, msk, start)
                else:
                    img, msk = negative_control(image, mask, *parse_control(name), seed=seed), mask
                n = int((sitk.GetArrayViewFromImage(msk) > 0).sum())
                change = n / voxels - 1.0
                row.update(mask_voxels=n, volume_change_asked=asked, volume_change=change, noise_sd=sd)
                if kind == "perturbation" and abs(change - asked) > tolerance:
                    row.update(
                        status="failed",
                        reason=f"perturbed mask of ROI '{m['roi_original']}' ({name}): volume change {change:+.1%}, "
                        f"asked {asked:+.1%} (tolerance {tolerance:.0%})",
                    )
                else:
                    values, failure = extract_roi(extractor, img, msk)
                    row.update(status="failed" if failure else "ok", reason=failure, **values)
            except ValueError as err:  # e.g. a volume change that asks more voxels than the image has
                row.update(status="failed", reason=f"ROI '{m['roi_original']}' ({name}): {err}")
            row["seconds"] = round(time.perf_counter() - started, 3)
            rows.append(row)
    table = pd.DataFrame(rows)
    for c in PERTURBED_COLUMNS:
        if c not in table.columns:
            table[c] = pd.Series(dtype=object)
    return table[PERTURBED_COLUMNS + [c for c in table.columns if c not in PERTURBED_COLUMNS]]
