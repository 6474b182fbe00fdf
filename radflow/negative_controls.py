"""Negative-control images (READII, bhklab; Kazmierski et al.): the image's values rearranged so that whatever a
feature measures of texture or shape is destroyed while the values themselves (or their distribution) stay. A feature
whose association with the outcome survives its negative control measures something other than what it claims.

Controls (READII's names): `shuffled` (the region's voxel values permuted among its voxels: the same histogram),
`randomized_sampled` (each voxel of the region drawn with replacement from the region's values: the same
distribution), over a `region`: `roi` (inside the mask), `non_roi` (outside it) or `full` (the whole image). Seeded:
the same control on every machine."""

from __future__ import annotations

import numpy as np

CONTROLS = ("shuffled", "randomized_sampled")
REGIONS = ("roi", "non_roi", "full")


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
    values[where] = rng.permutation(chosen) if control == "shuffled" else rng.choice(chosen, size=chosen.size)
    out = sitk.GetImageFromArray(values)
    out.CopyInformation(image)
    return out
