"""How much a feature moves under small perturbations of image and mask (Zwanenburg et al., Sci Rep 2019): the
intraclass correlation of each feature over patients x perturbations.

ICC(1,1) (Shrout & Fleiss 1979, case 1; McGraw & Wong 1996, "ICC(1)"): one-way random effects, absolute agreement,
a single measurement. The perturbations of one patient are random draws (a rotation, a translation, a grown mask),
not fixed raters shared by every patient, so the one-way model is the one that fits; it is also the form Zwanenburg
et al. report. The 95 % interval is the F-distribution one of McGraw & Wong."""

from __future__ import annotations

import numpy as np
from scipy import stats


def icc1(values, alpha: float = 0.05) -> dict:
    """ICC(1,1) of an n patients x k perturbations array (k >= 2), its (1 - alpha) interval, F and the counts. A
    feature that does not vary at all has no ICC (NaN); one that varies between patients only has ICC 1."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2 or x.shape[0] < 2:
        raise ValueError(f"ICC needs 2 or more patients and 2 or more measurements each, got shape {x.shape}")
    n, k = x.shape
    means = x.mean(axis=1)
    msb = k * ((means - x.mean()) ** 2).sum() / (n - 1)
    msw = ((x - means[:, None]) ** 2).sum() / (n * (k - 1))
    out = dict(
        form="ICC(1,1)", n=n, k=k, icc=np.nan, ci_low=np.nan, ci_high=np.nan, F=np.nan, ms_between=msb, ms_within=msw
    )
    if msw == 0:
        if msb > 0:
            out.update(icc=1.0, ci_low=1.0, ci_high=1.0, F=np.inf)
        return out
    f = msb / msw
    df1, df2 = n - 1, n * (k - 1)
    f_low = f / stats.f.ppf(1 - alpha / 2, df1, df2)
    f_high = f * stats.f.ppf(1 - alpha / 2, df2, df1)
    out.update(
        icc=(msb - msw) / (msb + (k - 1) * msw),
        ci_low=(f_low - 1) / (f_low + k - 1),
        ci_high=(f_high - 1) / (f_high + k - 1),
        F=f,
    )
    return out


# ------------------------------------------------------------------------------------------------- perturbations
def adapt_volume(mask, fraction: float):
    """The mask grown (fraction > 0) or shrunk (fraction < 0) by that fraction of its volume (Zwanenburg et al.'s
    volume adaptation): the voxels nearest to the ROI by signed distance (mm, negative inside) are taken until the
    volume is round(V x (1 + fraction)) voxels, ties in index order, so the result is the same on every machine. A
    grown mask holds the original, a shrunk one lies inside it."""
    import SimpleITK as sitk

    voxels = sitk.GetArrayViewFromImage(mask) > 0
    target = int(round(voxels.sum() * (1.0 + fraction)))
    if target < 1 or target > voxels.size:
        raise ValueError(f"volume adaptation by {fraction:+.0%} asks {target} voxels of {voxels.size}")
    distance = sitk.GetArrayFromImage(
        sitk.SignedMaurerDistanceMap(
            sitk.Cast(mask > 0, sitk.sitkUInt8), insideIsPositive=False, squaredDistance=False, useImageSpacing=True
        )
    ).ravel()
    order = np.argsort(distance, kind="stable")[:target]
    out = np.zeros(voxels.size, dtype=np.uint8)
    out[order] = 1
    image = sitk.GetImageFromArray(out.reshape(voxels.shape))
    image.CopyInformation(mask)
    return image


def rigid_perturbation(image, mask, rotation_deg: float = 0.0, translation_mm=(0.0, 0.0, 0.0)):
    """Image and mask rotated about the ROI's centroid (around the patient's z axis, as Zwanenburg et al. rotate in
    plane) and translated by translation_mm (x, y, z), on the original grid: the image by linear interpolation, the
    mask by linear interpolation of its 0/1 values kept at 0.5 and above (a partial-volume mask, then cut, as in
    MIRP). Returns (image, mask)."""
    import SimpleITK as sitk

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    transform = sitk.Euler3DTransform()
    transform.SetCenter(stats.GetCentroid(1))
    transform.SetRotation(0.0, 0.0, np.deg2rad(rotation_deg))
    # resampling maps output points to input points: the inverse of moving the patient by the translation
    transform.SetTranslation([-float(t) for t in translation_mm])
    moved = sitk.Resample(image, image, transform, sitk.sitkLinear, float(np.min(sitk.GetArrayViewFromImage(image))))
    soft = sitk.Resample(sitk.Cast(mask > 0, sitk.sitkFloat32), mask, transform, sitk.sitkLinear, 0.0)
    return moved, sitk.Cast(soft >= 0.5, sitk.sitkUInt8)


def icc_table(long, feature_columns, patient="patient_id", perturbation="perturbation"):
    """Per feature, ICC(1,1) over the patients that have every perturbation: one row per feature with the ICC, its
    95 % interval, the form and why it is that form, n patients and k perturbations."""
    import pandas as pd

    rows = []
    for feature in feature_columns:
        wide = long.pivot_table(index=patient, columns=perturbation, values=feature, aggfunc="first").dropna()
        r = icc1(wide.to_numpy()) if len(wide) >= 2 and wide.shape[1] >= 2 else dict(icc=np.nan, n=len(wide), k=0)
        rows.append(
            dict(
                feature=feature,
                icc=r.get("icc"),
                ci_low=r.get("ci_low", np.nan),
                ci_high=r.get("ci_high", np.nan),
                form="ICC(1,1)",
                why="one-way random: each patient's perturbations are random draws, not raters shared by all",
                n_patients=r.get("n"),
                n_perturbations=r.get("k"),
            )
        )
    return pd.DataFrame(rows)
