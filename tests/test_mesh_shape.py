"""radflow.features.mesh_shape against pyradiomics' own C (radiomics.cShape): surface area, volume and the four
diameters of shapes chosen to break it, and whole extractions with the fast shape on and off. The demo's and the real
data's ROIs are compared in test_workflow.py and test_real_data.py; the IBSI phantoms' values are pinned in
test_features.py."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import REPO
from radiomics import cShape

from radflow.features import extract_roi, make_extractor, mesh_shape

RTOL = 1e-12


def _ball(r: float) -> np.ndarray:
    n = int(2 * r + 3)
    z, y, x = np.mgrid[:n, :n, :n]
    c = (n - 1) / 2
    return (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= r * r


def _shapes():
    rng = np.random.default_rng(5)
    yield "random, several components", rng.random((20, 30, 30)) > 0.6, (1.25, 0.9765625, 0.9765625)
    yield "ball, anisotropic", _ball(20), (2.5, 0.98, 0.98)
    m = np.zeros((30, 60, 60), bool)
    m[5:25, 10:50, 10:30] = m[5:25, 10:20, 10:50] = True
    m[12:18, 20:30, 12:16] = False
    yield "L with a cavity", m, (3.0, 0.7, 0.7)
    m = np.zeros((1, 40, 40), bool)
    m[0, 5:30, 8:33] = True
    yield "one slice", m, (5.0, 1.0, 1.0)
    m = np.zeros((10, 1, 40), bool)
    m[:, 0, 3:30] = True
    yield "one row thick", m, (2.0, 1.0, 0.5)
    m = np.zeros((1, 1, 40), bool)
    m[0, 0, 3:30] = True
    yield "a line", m, (2.0, 1.0, 0.5)
    yield "one voxel", np.ones((1, 1, 1), bool), (2.0, 1.0, 0.5)
    z, y, x = np.mgrid[:30, :30, :30]
    yield "oblique plane one voxel thick", np.abs(z + y - x - 10) < 0.5, (1.0, 1.0, 1.0)
    shell = _ball(14) & ~np.pad(_ball(11), 3)
    yield "hollow shell", shell, (1.5, 0.8, 0.8)
    m = np.zeros((40, 40, 40), bool)
    m[5, 5, 5] = m[34, 30, 36] = m[20, 6, 33] = True
    yield "three lone voxels", m, (0.6, 1.7, 2.9)
    yield "non-dyadic spacing", rng.random((12, 17, 23)) > 0.5, (1.1111, 0.3333333, 2.7182818)


@pytest.mark.parametrize("name,mask,spacing", list(_shapes()), ids=[s[0] for s in _shapes()])
def test_coefficients_equal_pyradiomics(name, mask, spacing):
    padded = np.ascontiguousarray(np.pad(mask, 1))
    spacing = np.asarray(spacing, float)
    area, volume, diameters = cShape.calculate_coefficients(padded, spacing)
    mine = mesh_shape.calculate_coefficients(padded, spacing)
    assert mine[0] == pytest.approx(area, rel=RTOL, abs=0)
    assert mine[1] == pytest.approx(volume, rel=RTOL, abs=1e-300)
    # the same pair of vertices with pyradiomics' own arithmetic: the same numbers
    assert np.array_equal(mine[2], np.asarray(diameters)), (mine[2], diameters)


def _image_and_mask(mask: np.ndarray, spacing) -> tuple[sitk.Image, sitk.Image]:
    rng = np.random.default_rng(3)
    image = sitk.GetImageFromArray(rng.normal(40, 30, mask.shape).round().astype(np.int16))
    label = sitk.GetImageFromArray(mask.astype(np.uint8))
    for im in (image, label):
        im.SetSpacing(tuple(float(v) for v in spacing[::-1]))
        im.SetOrigin((-12.5, 30.25, -101.0))
    return image, label


def test_an_extraction_with_and_without_the_fast_shape(tmp_path):
    """CT.yaml (1 mm B-spline resampling, all classes) on a ball in a noisy image: every shape feature equal to
    pyradiomics' to 1e-12 relative, every other feature identical; `radflow: {fast_shape: false}` is the switch."""
    settings = (REPO / "config" / "pyradiomics" / "CT.yaml").read_text()
    slow = tmp_path / "slow.yaml"
    slow.write_text(settings + "radflow:\n  fast_shape: false\n")
    mask = np.pad(_ball(12), 4)
    image, label = _image_and_mask(mask, (2.5, 0.9, 0.9))
    fast_extractor, slow_extractor = make_extractor(REPO / "config" / "pyradiomics" / "CT.yaml"), make_extractor(slow)
    assert fast_extractor.radflow_fast_shape and not slow_extractor.radflow_fast_shape
    fast, why = extract_roi(fast_extractor, image, label)
    assert not why
    reference, why = extract_roi(slow_extractor, image, label)
    assert not why and set(fast) == set(reference)
    for name, value in reference.items():
        if "_shape_" in name:
            assert fast[name] == pytest.approx(value, rel=RTOL, abs=1e-300), name
        else:
            assert fast[name] == value, name
