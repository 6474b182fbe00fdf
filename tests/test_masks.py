"""The rasteriser against analytic truths: rings with holes, non-square and anisotropic grids, other grids."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radflow.geometry import Grid
from radflow.masks import fill_even_odd, rasterise_roi

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def square(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def circle(cx, cy, r, n=720):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([cx + r * np.cos(t), cy + r * np.sin(t)])


def planar(poly2d, z):
    return ("CLOSED_PLANAR", np.column_stack([poly2d, np.full(len(poly2d), z)]))


def test_voxel_centre_rule_on_a_square():
    # square from 1.5 to 5.5 holds the centres 2, 3, 4, 5 in each direction
    assert fill_even_odd([square(1.5, 1.5, 5.5, 5.5)], 10, 10).sum() == 16
    # a square from 1.2 to 1.8 holds no centre at all
    assert fill_even_odd([square(1.2, 1.2, 1.8, 1.8)], 10, 10).sum() == 0


def test_even_odd_hole_ring_and_island():
    outer, hole, island = square(-0.5, -0.5, 19.5, 19.5), square(4.5, 4.5, 14.5, 14.5), square(7.5, 7.5, 11.5, 11.5)
    mask = fill_even_odd([outer, hole, island], 20, 20)
    assert mask.sum() == 400 - 100 + 16
    assert not mask[5, 5] and mask[9, 9] and mask[0, 0]
    # the contour order and orientation do not matter
    assert (fill_even_odd([island[::-1], outer, hole[::-1]], 20, 20) == mask).all()


def test_disc_area_converges():
    mask = fill_even_odd([circle(100.3, 99.7, 60.0)], 200, 200)
    assert mask.sum() == pytest.approx(math.pi * 60.0**2, rel=2e-3)


def test_non_square_anisotropic_grid():
    # 40 rows x 120 columns, pixels 0.5 mm wide (x) and 2 mm high (y)
    grid = Grid((120, 40, 3), (0.5, 2.0, 3.0), (-30.0, -40.0, 0.0), AXIAL)
    contours = [planar(square(-10.0, -20.0, 20.0, 10.0), z) for z in (0.0, 3.0, 6.0)]
    mask, audit = rasterise_roi(contours, grid)
    assert mask.shape == (3, 40, 120)
    # x from -10 to 20 mm: centres -30 + 0.5 i in (-10, 20) -> i = 40..99 (60 columns)
    # y from -20 to 10 mm: centres -40 + 2 j in (-20, 10) -> j = 10..24 (15 rows)
    assert mask[1].sum() == 60 * 15
    cols = np.where(mask[1].any(axis=0))[0]
    rows = np.where(mask[1].any(axis=1))[0]
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (40, 99, 10, 24)
    assert audit["polygon_volume_mm3"] == pytest.approx(30 * 30 * 9.0)


def test_sphere_volume_on_a_coarser_grid_of_the_same_frame():
    """Contours drawn on 2 mm slices, rasterised directly on a 4 mm grid (as on a PET)."""
    r, centre = 20.0, (1.0, -2.0, 3.0)
    contours = []
    for z in np.arange(-30, 30.01, 2.0):
        rz2 = r * r - (z - centre[2]) ** 2
        if rz2 > 0.25:
            contours.append(planar(circle(centre[0], centre[1], math.sqrt(rz2), 256), z))
    fine = Grid((60, 60, 31), (1.0, 1.0, 2.0), (-30.0, -30.0, -30.0), AXIAL)
    coarse = Grid((30, 30, 16), (2.0, 2.0, 4.0), (-29.0, -29.0, -30.0), AXIAL)
    sphere = 4 / 3 * math.pi * r**3
    for grid, tol in ((fine, 0.01), (coarse, 0.05)):
        mask, _ = rasterise_roi(contours, grid)
        assert mask.sum() * np.prod(grid.spacing) == pytest.approx(sphere, rel=tol)


def test_contour_between_slices_goes_to_the_nearest_slice():
    grid = Grid((10, 10, 5), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), AXIAL)
    mask, _ = rasterise_roi([planar(square(1.5, 1.5, 5.5, 5.5), 4.6)], grid)  # nearest slice: z = 4 (k = 2)
    assert mask[2].sum() == 16 and mask.sum() == 16


def test_partly_outside_is_clipped_with_a_warning_and_open_contours_are_noted():
    grid = Grid((10, 10, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), AXIAL)
    contours = [planar(square(5.5, 5.5, 20.0, 20.0), 0.0), ("OPEN_PLANAR", np.zeros((4, 3))), ("POINT", np.zeros((1, 3)))]
    mask, audit = rasterise_roi(contours, grid, "edge")
    assert mask.sum() == 16  # centres 6..9 in x and y
    assert any("outside" in w for w in audit["warnings"])
    assert any("OPEN_PLANAR" in n for n in audit["notes"]) and any("POINT" in n for n in audit["notes"])


def test_sagittal_grid():
    # a sagittal series: rows run along -z, columns along +y, slices along +x
    sagittal = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)  # columns of D: row dir (0,1,0), col dir (0,0,-1), normal
    d = np.array(sagittal).reshape(3, 3)
    grid = Grid((20, 20, 20), (1.0, 1.0, 1.0), (-10.0, -10.0, 10.0), tuple(d.ravel()))
    # axial contours are not parallel to sagittal slices: they are flagged, not silently misplaced
    _, audit = rasterise_roi([planar(square(-5, -5, 5, 5), 0.0)], grid)
    assert any("not parallel" in w for w in audit["warnings"])
