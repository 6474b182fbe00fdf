"""Negative-control images (radflow.trust.negative_controls) through real pyradiomics, and the volume adaptation of
masks (radflow.trust.robustness.adapt_volume) on spheres."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.trust.negative_controls import negative_control
from radflow.trust.robustness import adapt_volume


def sphere(shape=(30, 48, 48), spacing=(2.5, 0.8, 0.8), radius=12.0):
    """A ball of radius mm at the grid's centre, on an anisotropic grid (z, y, x as numpy sees it)."""
    z, y, x = np.indices(shape).astype(float)
    c = [(n - 1) / 2 for n in shape]
    r2 = ((z - c[0]) * spacing[0]) ** 2 + ((y - c[1]) * spacing[1]) ** 2 + ((x - c[2]) * spacing[2]) ** 2
    mask = sitk.GetImageFromArray((r2 <= radius**2).astype(np.uint8))
    mask.SetSpacing(spacing[::-1])
    return mask


def textured(mask):
    """A smooth pattern (stripes along x and a slow ramp in z) plus a little noise: strong grey-level correlation."""
    shape = sitk.GetArrayViewFromImage(mask).shape
    z, y, x = np.indices(shape).astype(float)
    values = 100 * np.sin(x / 3.0) + 5 * z + np.random.default_rng(3).normal(0, 2, shape)
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.CopyInformation(mask)
    return image


def features(image, mask) -> dict:
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor(binWidth=10)
    extractor.disableAllFeatures()
    extractor.enableFeatureClassByName("firstorder")
    extractor.enableFeatureClassByName("glcm")
    out = extractor.execute(image, mask)
    return {k: float(v) for k, v in out.items() if k.startswith("original_")}


def test_a_shuffled_roi_keeps_the_histogram_and_destroys_the_texture():
    mask = sphere()
    image = textured(mask)
    control = negative_control(image, mask, "shuffled", "roi", seed=11)
    original, shuffled = features(image, mask), features(control, mask)
    first = [k for k in original if "_firstorder_" in k]
    assert len(first) == 18
    for k in first:  # the same values in another order: the same histogram, every first-order feature equal
        assert shuffled[k] == pytest.approx(original[k], rel=1e-9, abs=1e-9), k
    assert original["original_glcm_Correlation"] > 0.8 and abs(shuffled["original_glcm_Correlation"]) < 0.1
    assert shuffled["original_glcm_Idm"] < 0.6 * original["original_glcm_Idm"]
    a, b = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(control)
    inside = sitk.GetArrayFromImage(mask) > 0
    assert np.array_equal(a[~inside], b[~inside]) and not np.array_equal(a[inside], b[inside])
    again = sitk.GetArrayFromImage(negative_control(image, mask, "shuffled", "roi", seed=11))
    assert np.array_equal(again, b)  # seeded: the same control on every machine


def test_randomized_sampled_and_the_other_regions():
    mask = sphere()
    image = textured(mask)
    a = sitk.GetArrayFromImage(image)
    inside = sitk.GetArrayFromImage(mask) > 0
    sampled = sitk.GetArrayFromImage(negative_control(image, mask, "randomized_sampled", "roi", seed=2))
    assert set(np.unique(sampled[inside])) <= set(np.unique(a[inside])) and np.array_equal(sampled[~inside], a[~inside])
    outside = sitk.GetArrayFromImage(negative_control(image, mask, "shuffled", "non_roi", seed=2))
    assert np.array_equal(outside[inside], a[inside]) and np.array_equal(np.sort(outside[~inside]), np.sort(a[~inside]))
    full = sitk.GetArrayFromImage(negative_control(image, mask, "shuffled", "full", seed=2))
    assert np.array_equal(np.sort(full, axis=None), np.sort(a, axis=None)) and not np.array_equal(full, a)
    with pytest.raises(ValueError, match="expected one of"):
        negative_control(image, mask, "mirrored", "roi")


@pytest.mark.parametrize("fraction", [-0.2, -0.1, 0.1, 0.2])
def test_volume_adaptation_gives_the_volume_asked(fraction):
    mask = sphere()
    before = sitk.GetArrayFromImage(mask) > 0
    adapted = adapt_volume(mask, fraction)
    after = sitk.GetArrayFromImage(adapted) > 0
    assert after.sum() == round(before.sum() * (1 + fraction))
    if fraction > 0:
        assert after[before].all()  # grown: the original lies inside
    else:
        assert before[after].all()  # shrunk: inside the original
    # a shell of even thickness in mm, not in voxels: on this 0.8 x 0.8 x 2.5 mm grid the ball stays a ball
    z, y, x = np.nonzero(after)
    extent = np.array([np.ptp(z) * 2.5, np.ptp(y) * 0.8, np.ptp(x) * 0.8])
    assert extent.max() - extent.min() < 2.5 + 1e-9
    assert adapted.GetSpacing() == mask.GetSpacing() and adapted.GetOrigin() == mask.GetOrigin()


def test_rigid_perturbations_move_image_and_mask_together():
    from radflow.trust.robustness import rigid_perturbation

    mask = sphere(shape=(20, 40, 40), spacing=(1.0, 1.0, 1.0), radius=8.0)
    image = textured(mask)
    same_image, same_mask = rigid_perturbation(image, mask)
    assert np.array_equal(sitk.GetArrayFromImage(same_mask), sitk.GetArrayFromImage(mask))
    np.testing.assert_allclose(sitk.GetArrayFromImage(same_image), sitk.GetArrayFromImage(image), atol=1e-4)
    # a whole-voxel translation is an exact shift (x by 2 mm = 2 voxels; numpy's last axis)
    moved_image, moved_mask = rigid_perturbation(image, mask, translation_mm=(2.0, 0.0, 0.0))
    a, b = sitk.GetArrayFromImage(mask), sitk.GetArrayFromImage(moved_mask)
    assert np.array_equal(b[:, :, 2:], a[:, :, :-2])
    np.testing.assert_allclose(
        sitk.GetArrayFromImage(moved_image)[:, :, 2:], sitk.GetArrayFromImage(image)[:, :, :-2], atol=1e-3
    )
    # a ball rotated about its centre is the same ball, its volume within 2 %
    _, turned = rigid_perturbation(image, mask, rotation_deg=15.0)
    assert abs(sitk.GetArrayFromImage(turned).sum() / a.sum() - 1) < 0.02


def test_icc_table_per_feature():
    import pandas as pd

    from radflow.trust.robustness import icc_table

    rng = np.random.default_rng(5)
    rows = []
    for p in range(40):
        level = rng.normal(0, 5)
        for k in range(4):
            rows.append(
                dict(
                    patient_id=f"P{p}",
                    perturbation=f"r{k}",
                    stable=level + rng.normal(0, 0.5),
                    noise=rng.normal(0, 1),
                    same=level,
                )
            )
    table = icc_table(pd.DataFrame(rows), ["stable", "noise", "same"]).set_index("feature")
    assert (
        table.loc["stable", "icc"] > 0.95 and table.loc["same", "icc"] == 1.0 and abs(table.loc["noise", "icc"]) < 0.15
    )
    assert (table["n_patients"] == 40).all() and (table["n_images"] == 4).all()
    assert (table["n_perturbations"] == 3).all()
    assert (table["ci_low"] <= table["icc"]).all() and (table["icc"] <= table["ci_high"]).all()


def test_a_randomized_roi_keeps_only_the_range_and_the_rest_of_the_image():
    mask = sphere()
    image = textured(mask)
    control = negative_control(image, mask, "randomized", "roi", seed=5)
    a, b = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(control)
    inside = sitk.GetArrayFromImage(mask) > 0
    assert np.array_equal(a[~inside], b[~inside])  # outside the ROI nothing moved
    assert a[inside].min() <= b[inside].min() and b[inside].max() <= a[inside].max()
    # uniform over the range: its mean is the range's middle (to 3 standard errors), whatever the original's shape
    mid, half = (a[inside].min() + a[inside].max()) / 2, (a[inside].max() - a[inside].min()) / 2
    assert abs(b[inside].mean() - mid) < 3 * half / np.sqrt(3 * inside.sum())
    again = sitk.GetArrayFromImage(negative_control(image, mask, "randomized", "roi", seed=5))
    assert np.array_equal(b, again)  # seeded


def test_a_randomised_contour_follows_the_image_and_keeps_the_volume_asked():
    """Supervoxel contour randomisation: where the ROI has a sharp edge in the image (a bright ball), the supervoxels
    follow it and the randomised contour stays close (Dice > 0.9); on an image without that edge the contour
    wanders more. Seeded; the chain brings it to the volume asked, exactly."""
    from radflow.trust.robustness import perturb, randomise_contour

    mask = sphere()
    inside = sitk.GetArrayFromImage(mask) > 0
    noise = np.random.default_rng(4).normal(0, 5, inside.shape)
    edged = sitk.GetImageFromArray((np.where(inside, 200.0, 0.0) + noise).astype(np.float32))
    flat = sitk.GetImageFromArray(noise.astype(np.float32))
    for image in (edged, flat):
        image.CopyInformation(mask)

    def dice(a):
        b = sitk.GetArrayFromImage(a) > 0
        return 2 * (inside & b).sum() / (inside.sum() + b.sum())

    along_edge = [dice(randomise_contour(edged, mask, np.random.default_rng(s))) for s in range(3)]
    no_edge = [dice(randomise_contour(flat, mask, np.random.default_rng(s))) for s in range(3)]
    assert min(along_edge) > 0.9 and np.mean(no_edge) < np.mean(along_edge) - 0.05, (along_edge, no_edge)
    again = randomise_contour(flat, mask, np.random.default_rng(1))
    assert np.array_equal(
        sitk.GetArrayFromImage(again), sitk.GetArrayFromImage(randomise_contour(flat, mask, np.random.default_rng(1)))
    )
    n = int(inside.sum())
    for change in (0.0, 0.1):
        _, moved, _ = perturb(
            flat, mask, dict(contour_randomisation=True, volume_change=change), np.random.default_rng(2), n
        )
        assert int(sitk.GetArrayViewFromImage(moved).sum()) == round(n * (1 + change))


def test_control_names_of_the_config():
    from radflow.trust.negative_controls import parse_control

    assert parse_control("shuffled_roi") == ("shuffled", "roi")
    assert parse_control("randomized_sampled_non_roi") == ("randomized_sampled", "non_roi")
    assert parse_control("randomized_full") == ("randomized", "full")
    with pytest.raises(ValueError, match="'blurred_roi'"):
        parse_control("blurred_roi")
