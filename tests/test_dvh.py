"""DVHs from contours against closed-form truth, in the manner of Nelms et al. (Med Phys 2015;42:4435): spheres,
cylinders and cones drawn as contours every 1 to 3 mm, in dose grids of 1 to 3 mm carrying a linear gradient (along
the slices and across them) or a spherical fall-off; every metric within 1 % or 0.1 Gy of the value computed here
from the shape and the dose formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.integrate import quad
from scipy.optimize import brentq

from radflow.dvh import cumulative_dvh, dvh_metrics, roi_doses

CENTRE = np.array([1.3, -0.7, 0.4])  # off the grids' voxel centres
D0, GRADIENT = 40.0, 1.0  # Gy at the centre, Gy per mm
PEAK, SIGMA = 70.0, 15.0  # the spherical fall-off: PEAK exp(-r² / 2 SIGMA²)


def dose_grid(spacing: float, formula, half_width: float = 40.0) -> sitk.Image:
    """A dose grid (Gy) around CENTRE with voxel centres every `spacing` mm, values formula(x, y, z)."""
    n = int(math.ceil(2 * half_width / spacing)) + 1
    axis = np.arange(n) * spacing - (n - 1) * spacing / 2
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    image = sitk.GetImageFromArray(formula(x, y, z).astype(np.float64))
    image.SetSpacing((spacing,) * 3)
    image.SetOrigin(tuple(float(v) for v in CENTRE + axis[0]))
    return image


def linear(axis: int):
    return lambda x, y, z: D0 + GRADIENT * (x, y, z)[axis]


def falloff(x, y, z):
    return PEAK * np.exp(-(x**2 + y**2 + z**2) / (2 * SIGMA**2))


def circle(radius: float, z: float, n: int = 720) -> np.ndarray:
    """A contour of `n` points around CENTRE's axis at height z above CENTRE."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return CENTRE + np.column_stack([radius * np.cos(t), radius * np.sin(t), np.full(n, z)])


def planes(bottom: float, top: float, step: float) -> np.ndarray:
    """Contour planes (relative to CENTRE) at the middle of each slab of `step` that tiles [bottom, top]."""
    count = int(round((top - bottom) / step))
    return bottom + step * (np.arange(count) + 0.5)


# The shapes, contoured every `step` mm: (contour planes z relative to CENTRE, each plane's circle radius, the
# shape's own volume). Lengths are multiples of 6 mm, so that slabs of 1, 2 and 3 mm tile them.
R_SPHERE, R_CYL, L_CYL, R_CONE, H_CONE = 21.0, 15.0, 42.0, 21.0, 42.0


def sphere(step):
    zs = planes(-R_SPHERE, R_SPHERE, step)
    return zs, np.sqrt(R_SPHERE**2 - zs**2), 4 / 3 * math.pi * R_SPHERE**3


def cylinder(step):
    zs = planes(-L_CYL / 2, L_CYL / 2, step)
    return zs, np.full(len(zs), R_CYL), math.pi * R_CYL**2 * L_CYL


def cone(step):
    """Base (radius R_CONE) at z = -H/2, apex at z = +H/2."""
    zs = planes(-H_CONE / 2, H_CONE / 2, step)
    return zs, R_CONE * (H_CONE / 2 - zs) / H_CONE, math.pi / 3 * R_CONE**2 * H_CONE


SHAPES = {"sphere": sphere, "cylinder": cylinder, "cone": cone}


def contours_of(zs, radii):
    return [("CLOSED_PLANAR", circle(r, z)) for z, r in zip(zs, radii)]


# The contoured object is what the DICOM says the ROI is: each contour plane's polygon stands for a slab as thick as
# the contour spacing. Its DVH in closed form, slab by slab:
def segment(r: float, x0: float) -> float:
    """The area of a disc of radius r beyond the chord at x0."""
    x0 = min(max(x0, -r), r)
    return r * r * math.acos(x0 / r) - x0 * math.sqrt(max(r * r - x0 * x0, 0.0))


def above_linear(zs, radii, step, axis, s0) -> float:
    """mm³ of the contoured object at s >= s0, s the coordinate along the gradient (relative to CENTRE)."""
    if axis == 2:
        return sum(math.pi * r * r * min(max(z + step / 2 - s0, 0.0), step) for z, r in zip(zs, radii))
    return sum(segment(r, s0) * step for r in radii)


def above_falloff(zs, radii, step, d) -> float:
    """mm³ of the contoured object where PEAK exp(-ρ² / 2 SIGMA²) >= d: the ball of that ρ, slab by slab."""
    rho2 = 2 * SIGMA**2 * math.log(PEAK / d) if d < PEAK else 0.0

    def area(z, r):
        return math.pi * min(r * r, max(rho2 - z * z, 0.0))

    return sum(quad(area, z - step / 2, z + step / 2, args=(r,))[0] for z, r in zip(zs, radii))


def truth(volume_above_dose, total: float, d_lo: float, d_hi: float) -> dict:
    """The metrics of a DVH given as V(D >= d) in mm³ on [d_lo, d_hi]."""

    def dose_at(v):
        return brentq(lambda d: volume_above_dose(d) - v, d_lo, d_hi, xtol=1e-9)

    # Dmean = d_lo + the integral of V(D >= d) over d, over the volume (dense trapezoids: V has kinks at slab faces)
    levels = np.linspace(d_lo, d_hi, 2001)
    volumes = np.array([volume_above_dose(d) for d in levels])
    integral = float(np.sum((volumes[1:] + volumes[:-1]) / 2 * np.diff(levels)))
    out = dict(volume_cc=total / 1000, dmean_gy=d_lo + integral / total)
    for x in (98, 95, 50, 2):
        out[f"d{x}_pct_gy"] = dose_at(total * x / 100)
    out["d0_03cc_gy"] = dose_at(30.0)
    out["dmin_gy"], out["dmax_gy"] = d_lo, d_hi
    for x in (20, 30, 40, 50, 60):
        out[f"v{x}gy_pct"] = 100 * volume_above_dose(x) / total
    return out


CASES = [
    (shape, axis, grid, step)
    for shape in ("sphere", "cylinder", "cone")
    for axis in (0, 2)
    for grid, step in ((1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (2.5, 1.0))
]


def _close(got: dict, want: dict):
    """Every metric within 1 % of its value or 0.1 Gy (V x Gy: 1 % of the volume)."""
    off = {
        k: (got[k], v)
        for k, v in want.items()
        if not abs(got[k] - v) <= (1.0 if k.startswith("v") else max(0.1, 0.01 * abs(v)))
    }
    assert not off, off


@pytest.mark.parametrize("shape, axis, grid, step", CASES)
def test_linear_gradient(shape, axis, grid, step):
    zs, radii, shape_volume = SHAPES[shape](step)
    doses, sample, info = roi_doses(contours_of(zs, radii), dose_grid(grid, linear(axis)))
    got = dvh_metrics(doses, sample, v_gy=(20, 30, 40, 50, 60))
    total = above_linear(zs, radii, step, axis, -1e9)
    # the extremes of the contoured object: its outermost slab faces (z) or its widest contour (x)
    lo, hi = (zs[0] - step / 2, zs[-1] + step / 2) if axis == 2 else (-radii.max(), radii.max())
    want = truth(lambda d: above_linear(zs, radii, step, axis, (d - D0) / GRADIENT), total, D0 + lo, D0 + hi)
    _close(got, want)
    assert info["outside_dose_grid"] == 0 and info["spacing_mm"] == 0.25
    # and the contours stand for the shape: the same volume within 1 %
    assert total == pytest.approx(shape_volume, rel=0.01)


@pytest.mark.parametrize("grid, step", [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)])
def test_spherical_falloff_in_a_sphere(grid, step):
    """A concentric Gaussian fall-off (trilinear interpolation of it on the dose grid is no longer exact)."""
    zs, radii, _ = sphere(step)
    doses, sample, _ = roi_doses(contours_of(zs, radii), dose_grid(grid, falloff))
    total = above_linear(zs, radii, step, 2, -1e9)
    outermost = max(math.hypot(zs[0] - step / 2, radii[0]), max(radii))
    edge = PEAK * math.exp(-(outermost**2) / (2 * SIGMA**2))
    want = truth(lambda d: above_falloff(zs, radii, step, d), total, edge, PEAK)
    # the extremes are where the dose grid's interpolation of a Gaussian is furthest from it (the peak between voxel
    # centres, 70 Gy only on a 1 mm grid) and a cap's rim: D2 % and D0.03cc stand for them here
    want.pop("dmin_gy"), want.pop("dmax_gy")
    _close(dvh_metrics(doses, sample, v_gy=(20, 30, 40, 50, 60)), want)


def test_cumulative_curve_and_an_roi_outside_the_dose():
    zs, radii, _ = sphere(2.0)
    contours = contours_of(zs, radii)
    doses, sample, _ = roi_doses(contours, dose_grid(2.0, linear(2)))
    curve = cumulative_dvh(doses, sample, step_gy=1.0)
    total = above_linear(zs, radii, 2.0, 2, -1e9)
    assert curve["volume_pct"].iloc[0] == 100.0 and curve["volume_cc"].iloc[0] == pytest.approx(total / 1000, rel=0.01)
    at = curve.set_index("dose_gy")
    for d in (25.0, 40.0, 55.0):
        want = above_linear(zs, radii, 2.0, 2, d - D0) / 1000
        assert at.loc[d, "volume_cc"] == pytest.approx(want, rel=0.01, abs=0.01)
    assert (np.diff(curve["volume_cc"]) <= 0).all()
    # the same sphere half outside a small dose grid: dose 0 there, and the share is said
    small = dose_grid(2.0, linear(2), half_width=10.0)
    doses, sample, info = roi_doses(contours, small)
    assert 0.5 < info["outside_dose_grid"] < 1.0 and (doses == 0).mean() == pytest.approx(info["outside_dose_grid"])
