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


# Real contours (any polygons a planning system wrote) in a linear dose, in closed form. The ROI is what radflow's
# masks say a structure set's ROI is: each contour plane stands for the sampling planes nearest to it within half the
# median plane spacing; on a plane, contours count by the even-odd rule (a contour inside another is a hole, one
# inside that an island again); a contour stored twice counts once. Contours that cross each other are not covered.
def signed_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def centroid_x(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    return float(np.sum((x + xn) * cross) / (3 * np.sum(cross)))


def clip_at(p: np.ndarray, x0: float) -> np.ndarray:
    """The polygon's part at x >= x0 (Sutherland-Hodgman against one half-plane: exact area for any simple
    polygon, convex or not): each vertex inside, and where an edge crosses x0 the crossing, in order."""
    b = np.roll(p, -1, axis=0)
    a_in, b_in = p[:, 0] >= x0, b[:, 0] >= x0
    cross = a_in != b_in
    t = np.where(cross, (x0 - p[:, 0]) / np.where(cross, b[:, 0] - p[:, 0], 1.0), 0.0)
    points = np.stack([p, p + t[:, None] * (b - p)], axis=1)
    out = points[np.stack([a_in, cross], axis=1)]
    return out if len(out) >= 3 else np.zeros((0, 2))


class ContouredRoi:
    """A real ROI's contours (from radflow.dicom.masks.read_rtstruct: [(type, (N, 3) points)]) on axial planes."""

    def __init__(self, contours):
        from matplotlib.path import Path as Polygon

        by_plane: dict[float, list[np.ndarray]] = {}
        for kind, pts in contours:
            if kind == "CLOSED_PLANAR" and len(pts) >= 3:
                by_plane.setdefault(round(float(pts[:, 2].mean()), 3), []).append(np.asarray(pts[:, :2], float))
        self.z = np.array(sorted(by_plane))
        half = float(np.median(np.diff(self.z))) / 2 if len(self.z) > 1 else 0.5
        mids = (self.z[1:] + self.z[:-1]) / 2
        self.lo = np.maximum(self.z - half, np.r_[-np.inf, mids])
        self.hi = np.minimum(self.z + half, np.r_[mids, np.inf])
        self.polygons = []  # per plane: [(sign, polygon)]
        for z in self.z:
            unique = []
            for p in by_plane[z]:
                if not any(len(q) == len(p) and np.allclose(q, p) for q in unique):
                    unique.append(p)
            signed = []
            for i, p in enumerate(unique):
                depth = sum(Polygon(q).contains_point(p[0]) for j, q in enumerate(unique) if j != i)
                signed.append((-1.0 if depth % 2 else 1.0, p))
            self.polygons.append(signed)
        self.areas = np.array([sum(s * abs(signed_area(p)) for s, p in plane) for plane in self.polygons])
        self.thickness = self.hi - self.lo
        self.volume = float(np.sum(self.areas * self.thickness))
        self.x_range = (
            min(p[:, 0].min() for plane in self.polygons for _, p in plane),
            max(p[:, 0].max() for plane in self.polygons for _, p in plane),
        )

    def mean(self, axis: int) -> float:
        """The ROI's centroid along x (axis 0) or z (axis 2)."""
        if axis == 2:
            return float(np.sum(self.areas * self.thickness * (self.lo + self.hi) / 2) / self.volume)
        moments = [sum(s * abs(signed_area(p)) * centroid_x(p) for s, p in plane) for plane in self.polygons]
        return float(np.sum(np.asarray(moments) * self.thickness) / self.volume)

    def above(self, axis: int, s0: float) -> float:
        """mm³ of the ROI at coordinate >= s0 along x (axis 0) or z (axis 2)."""
        if axis == 2:
            return float(np.sum(self.areas * np.clip(self.hi - np.maximum(self.lo, s0), 0, None)))
        areas = [sum(s * abs(signed_area(c)) for s, p in plane if len(c := clip_at(p, s0))) for plane in self.polygons]
        return float(np.sum(np.asarray(areas) * self.thickness))

    def range(self, axis: int) -> tuple[float, float]:
        return (float(self.lo[0]), float(self.hi[-1])) if axis == 2 else self.x_range

    def metrics(self, axis: int, d0: float, gradient: float, s0: float) -> dict:
        """Dmean and D98/D95/D50/D2 % of the ROI in the dose d0 + gradient (s - s0) along the axis (gradient > 0)."""
        lo, hi = self.range(axis)

        def level(d):
            return s0 + (d - d0) / gradient

        def dose_at(v):
            return brentq(
                lambda d: self.above(axis, level(d)) - v, d0 + gradient * (lo - s0), d0 + gradient * (hi - s0)
            )

        out = dict(dmean_gy=d0 + gradient * (self.mean(axis) - s0), volume_cc=self.volume / 1000)
        for x in (98, 95, 50, 2):
            out[f"d{x}_pct_gy"] = dose_at(self.volume * x / 100)
        return out
