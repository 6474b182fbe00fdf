"""How much a feature moves under small perturbations of image and mask (Zwanenburg et al., Sci Rep 2019): the
intraclass correlation of each feature over patients x perturbations.

ICC(1,1) (Shrout & Fleiss 1979, case 1; McGraw & Wong 1996, "ICC(1)"): one-way random effects, absolute agreement,
a single measurement. The perturbations of one patient are random draws (a rotation, a translation, a grown mask),
not fixed raters shared by every patient, so the one-way model is the one that fits; it is also the form Zwanenburg
et al. report. The 95 % interval is the F-distribution one of McGraw & Wong."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def icc1(values, alpha: float = 0.05) -> dict:
    """ICC(1,1) of an n patients x k perturbations array (k >= 2), its (1 - alpha) interval, F and the counts. A
    feature that does not vary at all has no ICC (NaN); one that varies between patients only has ICC 1."""
    from scipy import stats

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
def adapt_volume(mask, fraction: float, reference_voxels: int | None = None):
    """The mask grown (fraction > 0) or shrunk (fraction < 0) by that fraction of its volume (Zwanenburg et al.'s
    volume adaptation): the voxels nearest to the ROI by signed distance (mm, negative inside) are taken until the
    volume is round(V x (1 + fraction)) voxels, ties in index order, so the result is the same on every machine. A
    grown mask holds the original, a shrunk one lies inside it. reference_voxels: the volume the fraction is of
    (default: this mask's; a perturbation chain gives the original ROI's, so the change is of the original)."""
    import SimpleITK as sitk

    voxels = sitk.GetArrayViewFromImage(mask) > 0
    reference = int(voxels.sum()) if reference_voxels is None else int(reference_voxels)
    target = int(round(reference * (1.0 + fraction)))
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
    mask by linear interpolation of its 0/1 values (a partial-volume mask, as in MIRP), of which the voxels with the
    highest values are kept, as many as the ROI has: a rigid move does not change the volume, and a cut at 0.5
    would grow it by a layer of voxels at every half-voxel shift. Returns (image, mask)."""
    import SimpleITK as sitk

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    transform = sitk.Euler3DTransform()
    transform.SetCenter(stats.GetCentroid(1))
    transform.SetRotation(0.0, 0.0, np.deg2rad(rotation_deg))
    # resampling maps output points to input points: the inverse of moving the patient by the translation
    transform.SetTranslation([-float(t) for t in translation_mm])
    moved = sitk.Resample(image, image, transform, sitk.sitkLinear, float(np.min(sitk.GetArrayViewFromImage(image))))
    soft = sitk.GetArrayFromImage(
        sitk.Resample(sitk.Cast(mask > 0, sitk.sitkFloat64), mask, transform, sitk.sitkLinear, 0.0)
    ).ravel()
    # a rigid move keeps the volume: the ROI's voxel count of the highest interpolated values (ties in index order),
    # where a plain cut at 0.5 would add a layer of voxels at every half-voxel shift (both sides of an edge are 0.5)
    count = int((sitk.GetArrayViewFromImage(mask) > 0).sum())
    order = np.argsort(-np.round(soft, 12), kind="stable")[:count]
    binary = np.zeros(soft.size, dtype=np.uint8)
    binary[order[soft[order] > 0]] = 1
    out = sitk.GetImageFromArray(binary.reshape(sitk.GetArrayViewFromImage(mask).shape))
    out.CopyInformation(mask)
    return moved, out


def noise_sd(image, mask, margin_mm: float = 20.0) -> float:
    """The image noise's standard deviation by Chang et al.'s wavelet estimator (IEEE TIP 2000; MIRP's default):
    the median absolute diagonal (HH) Haar detail coefficient of each axial slice / 0.6745, over the ROI's
    bounding box grown by margin_mm in-plane (the noise where the features are measured, not in the air around
    the patient, which a CT reconstructs flat)."""
    import pywt
    import SimpleITK as sitk

    values = sitk.GetArrayViewFromImage(image)
    inside = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)
    lo, hi = inside.min(axis=0), inside.max(axis=0)
    grow = [0] + [int(np.ceil(margin_mm / s)) for s in image.GetSpacing()[1::-1]]  # (z, y, x) voxels
    box = tuple(slice(max(a - g, 0), b + g + 1) for a, b, g in zip(lo, hi, grow))
    _, (_, _, hh) = pywt.dwt2(np.asarray(values[box], dtype=float), "haar", axes=(1, 2))
    return float(np.median(np.abs(hh)) / 0.6745)


def randomise_contour(image, mask, rng: np.random.Generator, supervoxels: int = 100):
    """Zwanenburg et al.'s contour randomisation: the image around the ROI is cut into supervoxels (SimpleITK's
    SLIC, one thread: the same on every machine; on the image smoothed by a 1 mm Gaussian and scaled to 0-1 between
    its 1st and 99th percentile there, spatial weight 0.2; a grid giving about `supervoxels` of them over the ROI's
    volume), and each supervoxel that overlaps the ROI is taken whole with the probability of its overlap fraction.
    A contour a second reader could have drawn along the image's own edges: on the demo's CTs its Dice with the
    original is 0.92-0.96, on the real sarcoma and lung CTs (soft edges) 0.78-0.85. Its volume is the original's in
    expectation; the caller brings it to the volume asked."""
    import SimpleITK as sitk

    inside = sitk.GetArrayViewFromImage(mask) > 0
    count = int(inside.sum())
    voxel_mm3 = float(np.prod(image.GetSpacing()))
    edge_mm = (count * voxel_mm3 / supervoxels) ** (1 / 3)
    grid = [max(2, int(round(edge_mm / s))) for s in image.GetSpacing()]
    # SLIC over the ROI's bounding box and two grid cells around it (not the whole image: the same supervoxels near
    # the ROI at a fraction of the cost)
    from radflow.dicom.geometry import bounding_box

    box = bounding_box(inside)
    start = [max(box[k] - 2 * grid[k], 0) for k in range(3)]
    stop = [min(box[k] + box[3 + k] + 2 * grid[k], image.GetSize()[k]) for k in range(3)]
    extent = [b - a for a, b in zip(start, stop)]
    slic = sitk.SLICImageFilter()
    slic.SetSuperGridSize(grid)
    slic.SetNumberOfThreads(1)
    slic.SetNumberOfWorkUnits(1)
    slic.SetEnforceConnectivity(True)
    region = sitk.SmoothingRecursiveGaussian(
        sitk.Cast(sitk.RegionOfInterest(image, extent, start), sitk.sitkFloat32), 1.0
    )
    low, high = np.percentile(sitk.GetArrayViewFromImage(region), [1, 99])
    region = sitk.Cast((region - float(low)) / max(float(high - low), 1e-9), sitk.sitkFloat32)
    slic.SetSpatialProximityWeight(0.2)
    labels = sitk.GetArrayFromImage(slic.Execute(region)).ravel().astype(np.int64)
    where = tuple(slice(a, b) for a, b in zip(start[::-1], stop[::-1]))
    flat = inside[where].ravel()
    touched = np.unique(labels[flat])
    size = np.bincount(labels, minlength=int(labels.max()) + 1)
    overlap = np.bincount(labels[flat], minlength=size.size)
    fraction = overlap[touched] / size[touched]
    taken = touched[rng.uniform(size=touched.size) < fraction]
    values = np.zeros(inside.shape, dtype=np.uint8)
    values[where] = np.isin(labels, taken).reshape(values[where].shape)
    out = sitk.GetImageFromArray(values)
    out.CopyInformation(mask)
    return out


def perturbation_name(spec: dict) -> str:
    """A perturbation's name from what it does: rotation+5deg, translation(0.5,0.5,0)mm, volume-10%, noise."""
    return "+".join(part for step in PERTURBATIONS for part in step.name(spec)) or "identity"


def crop_for_perturbation(image, mask, chains, settings: dict):
    """Image and mask cropped around the ROI, with room for what the chains do and for what the extraction needs,
    so that a perturbation resamples a few hundred thousand voxels instead of a whole CT. The margin per axis is the
    one radflow.features.resample_cropped keeps around an ROI (pyradiomics' padding, the B-spline's support and the
    48 voxels over which its prefilter's edge effect fades), plus how far the chains can move the ROI's edge (the
    largest rotation over the ROI and that margin, the largest translation, the growth of the largest volume
    change) and 2 voxels. Returns (image, mask, start index (x, y, z)): radflow.trust.robustness.paste puts the
    perturbed crop back into the whole image, so that pyradiomics resamples onto the grid it uses for the original (its
    grid is anchored at the image's origin), and the features are those of the whole image, perturbed."""
    import SimpleITK as sitk

    from radflow.dicom.geometry import bounding_box
    from radflow.features import crop_margin

    box = bounding_box(sitk.GetArrayViewFromImage(mask) > 0)
    if not all(box[3:]):
        return image, mask, (0, 0, 0)
    spacing, size = image.GetSpacing(), image.GetSize()
    half = 0.5 * float(np.linalg.norm([n * s for n, s in zip(box[3:], spacing)]))
    angle = max([abs(np.deg2rad(c.get("rotation_deg", 0.0))) for c in chains] + [0.0])
    shift = max([float(np.linalg.norm(c.get("translation_mm") or [0, 0, 0])) for c in chains] + [0.0])
    grow = max([c.get("volume_change", 0.0) for c in chains] + [0.0])
    if any(c.get("contour_randomisation") for c in chains):  # whole supervoxels at the edge: a third of the ROI's size
        grow += 0.7
    start, extent = [], []
    for k in range(3):
        keep = crop_margin(settings, spacing, k)
        reach = angle * (half + keep * max(spacing)) + shift + grow * half
        margin = keep + int(np.ceil(reach / spacing[k])) + 2
        a, b = max(box[k] - margin, 0), min(box[k] + box[3 + k] - 1 + margin, size[k] - 1)
        start.append(a)
        extent.append(b - a + 1)
    return sitk.RegionOfInterest(image, extent, start), sitk.RegionOfInterest(mask, extent, start), tuple(start)


def paste(image, mask, part_image, part_mask, start):
    """The whole image with the (perturbed) crop part_image put back at start, and the whole mask with part_mask (0
    outside it: the crop holds the ROI with its margin)."""
    import SimpleITK as sitk

    values = sitk.GetArrayFromImage(image)
    labels = np.zeros(values.shape, dtype=sitk.GetArrayViewFromImage(part_mask).dtype)
    region = tuple(slice(a, a + n) for a, n in zip(start[::-1], part_image.GetSize()[::-1]))
    values[region] = sitk.GetArrayViewFromImage(part_image)
    labels[region] = sitk.GetArrayViewFromImage(part_mask)
    out_image, out_mask = sitk.GetImageFromArray(values), sitk.GetImageFromArray(labels)
    out_image.CopyInformation(image)
    out_mask.CopyInformation(mask)
    return out_image, out_mask


def as_stored(image, like):
    """A perturbed (float) image in the original's pixel type: rounded to the nearest value and kept in the type's
    range for integer images (a CT in HU, as the scanner stores it), so that a perturbation that moves nothing gives
    the original's features exactly (pyradiomics resamples in the image's own type)."""
    import SimpleITK as sitk

    if image.GetPixelID() == like.GetPixelID():
        return image
    values = sitk.GetArrayFromImage(image)
    kind = sitk.GetArrayViewFromImage(like).dtype
    if kind.kind in "iu":
        info = np.iinfo(kind)
        values = np.clip(np.rint(values), info.min, info.max)
    out = sitk.GetImageFromArray(values.astype(kind))
    out.CopyInformation(image)
    return out


@dataclass(frozen=True)
class PerturbationStep:
    """One step of a perturbation chain (config robustness.perturbations): the chain's keys it reads with their
    JSON schema (the config schema takes them from here), whether a chain asks for it, its part of the chain's name,
    and what it does: (image, mask, spec, rng, the original ROI's voxels) -> (image, mask, noise sd added)."""

    schema: dict
    asked: Callable[[dict], bool]
    name: Callable[[dict], list[str]]
    apply: Callable


def _rigid(image, mask, spec, rng, voxels):
    moved = rigid_perturbation(image, mask, spec.get("rotation_deg", 0.0), spec.get("translation_mm") or (0, 0, 0))
    return (*moved, 0.0)


def _rigid_name(spec: dict) -> list[str]:
    parts = [f"rotation{spec['rotation_deg']:+g}deg"] if spec.get("rotation_deg") else []
    if any(spec.get("translation_mm") or []):
        parts.append("translation({:g},{:g},{:g})mm".format(*spec["translation_mm"]))
    return parts


def _volume(image, mask, spec, rng, voxels):
    return image, adapt_volume(mask, spec.get("volume_change", 0.0), reference_voxels=voxels), 0.0


def _noise(image, mask, spec, rng, voxels):
    import SimpleITK as sitk

    sd = noise_sd(image, mask)
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    noisy = sitk.GetImageFromArray(values + rng.normal(0.0, sd, values.shape))
    noisy.CopyInformation(image)
    return noisy, mask, sd


# The steps of a chain, in the order they are applied (Zwanenburg et al.'s): rotation and translation of image and
# mask together, the contour randomised by supervoxels, the mask's volume adapted to (1 + volume_change) x the
# original ROI's voxels (a randomised contour too, at the volume asked), Gaussian noise of the image's own level.
PERTURBATIONS = (
    PerturbationStep(
        schema={
            "rotation_deg": {"type": "number", "minimum": -45, "maximum": 45},
            "translation_mm": {
                "type": "array",
                "items": {"type": "number", "minimum": -20, "maximum": 20},
                "minItems": 3,
                "maxItems": 3,
            },
        },
        asked=lambda spec: bool(spec.get("rotation_deg") or any(spec.get("translation_mm") or [])),
        name=_rigid_name,
        apply=_rigid,
    ),
    PerturbationStep(
        schema={"contour_randomisation": {"type": "boolean"}},
        asked=lambda spec: bool(spec.get("contour_randomisation")),
        name=lambda spec: ["contour"] if spec.get("contour_randomisation") else [],
        apply=lambda image, mask, spec, rng, voxels: (image, randomise_contour(image, mask, rng), 0.0),
    ),
    PerturbationStep(
        schema={"volume_change": {"type": "number", "minimum": -0.5, "maximum": 1}},
        asked=lambda spec: bool(spec.get("volume_change") or spec.get("contour_randomisation")),
        name=lambda spec: [f"volume{spec['volume_change'] * 100:+g}%"] if spec.get("volume_change") else [],
        apply=_volume,
    ),
    PerturbationStep(
        schema={"noise": {"type": "boolean"}},
        asked=lambda spec: bool(spec.get("noise")),
        name=lambda spec: ["noise"] if spec.get("noise") else [],
        apply=_noise,
    ),
)


def perturbation_schema() -> dict:
    """The JSON schema of one chain's keys (config robustness.perturbations' items)."""
    return {key: schema for step in PERTURBATIONS for key, schema in step.schema.items()}


def perturb(image, mask, spec: dict, rng: np.random.Generator, original_voxels: int):
    """One perturbation chain: each step of PERTURBATIONS the chain asks for, in order, on the image in double
    precision; the image back in its own pixel type (as_stored). Returns (image, mask, noise sd added)."""
    import SimpleITK as sitk

    stored = image
    image = sitk.Cast(image, sitk.sitkFloat64)  # interpolated in double precision, then stored as the original
    sd = 0.0
    for step in PERTURBATIONS:
        if step.asked(spec):
            image, mask, added = step.apply(image, mask, spec, rng, original_voxels)
            sd = added or sd
    return as_stored(image, stored), mask, sd


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
                # images per patient: the original and each perturbation
                n_images=r.get("k"),
                n_perturbations=max(int(r.get("k") or 0) - 1, 0),
            )
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------- the cohort's tables
def koo_li(icc: float) -> str:
    """Koo & Li (J Chiropr Med 2016)'s words for an ICC's point estimate."""
    if icc != icc:
        return ""
    return "poor" if icc < 0.5 else "moderate" if icc < 0.75 else "good" if icc < 0.9 else "excellent"


def model_rows(perturbed, cohort):
    """The rows of the series and ROI the cohort accounting chose for each patient (results/cohort.tsv's
    series_uid and roi_label): the modelling table's image, perturbed."""
    chosen = cohort.dropna(subset=["series_uid"])[["patient_id", "series_uid", "roi_label"]].astype(str)
    keys = perturbed[["patient_id", "series_uid", "roi_label"]].astype(str)
    return perturbed[keys.merge(chosen, how="left", indicator=True)["_merge"].eq("both").to_numpy()]


def robustness_icc(perturbed, cohort):
    """(icc table, rows used): ICC(1,1) per feature over the chosen image of each patient x (original and every
    perturbation), rows with status ok; with Koo & Li's rating and the feature class."""
    rows = model_rows(perturbed, cohort)
    rows = rows[rows["kind"].isin(["original", "perturbation"]) & rows["status"].eq("ok")]
    from radflow.tables import feature_class, pyradiomics_columns

    table = icc_table(rows, pyradiomics_columns(rows))
    table.insert(1, "feature_class", [feature_class(f) for f in table["feature"]])
    table["rating"] = [koo_li(v) for v in table["icc"]]
    return table, rows


def icc_plot(table, out_png) -> None:
    """ICC and 95 % interval of every feature, one panel per feature class, sorted; Koo & Li's 0.5 / 0.75 / 0.9."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = [c for c in dict.fromkeys(table["feature_class"]) if c]
    fig, axes = plt.subplots(
        1, max(len(classes), 1), figsize=(2.6 * max(len(classes), 1), 5), sharey=True, squeeze=False
    )
    for ax, name in zip(axes[0], classes):
        part = table[table["feature_class"] == name].sort_values("icc").reset_index(drop=True)
        x = np.arange(len(part))
        ax.errorbar(
            x,
            part["icc"],
            yerr=[part["icc"] - part["ci_low"], part["ci_high"] - part["icc"]],
            fmt="o",
            ms=3,
            lw=0.8,
        )
        for level in (0.5, 0.75, 0.9):
            ax.axhline(level, color="grey", lw=0.6, ls="--")
        good = int((part["icc"] >= 0.75).sum())
        ax.set_title(f"{name}: {good}/{len(part)} >= 0.75", fontsize=9)
        ax.set_xticks([])
        ax.set_ylim(-0.5, 1.02)
    axes[0][0].set_ylabel("ICC(1,1) with 95 % CI")
    n = table["n_patients"].max() if len(table) else 0
    k = table["n_images"].max() if len(table) else 0
    fig.suptitle(f"Feature robustness under perturbation: {n} patients x {k} images (original + perturbations)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
