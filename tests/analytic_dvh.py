"""Analytic DVH cases in the manner of Nelms et al. (Med Phys 2015;42:4435): spheres, cylinders and cones drawn as
contours every 1 to 3 mm, dose grids of 1 to 3 mm carrying a linear gradient (along the slices and across them) or a
spherical fall-off, and the closed-form DVH metrics of each contoured object. Used by tests/test_dvh.py and
benchmarks/dvh_vs_dicompyler.py."""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk
from scipy.integrate import quad
from scipy.optimize import brentq


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
