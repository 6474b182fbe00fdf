"""pyradiomics' 3D shape coefficients (mesh surface area, mesh volume, maximum 3D and 2D diameters) with the same
values, without comparing every pair of mesh vertices.

pyradiomics (radiomics.cShape.calculate_coefficients) runs marching cubes over the padded mask, with every vertex at
the midpoint of a cube edge whose two corners differ, and sums each triangle's area and signed volume; its diameters
compare every pair of vertices (O(n²): 5.6 s of a 381,405-voxel ball's 7.8 s). Here:

- the mesh vertices are the same midpoints, found with numpy, and the maximum distance over pairs is taken over the
  vertices of their convex hull (a farthest pair of a finite set is a pair of hull vertices: the squared distance is
  strictly convex along any segment), in 3D and, for the 2D diameters, per plane of equal z, y or x coordinate, as
  pyradiomics compares them; each distance is computed with pyradiomics' own arithmetic (the same coordinates, the
  same order of operations), so the maximum is the same number;
- surface area and volume are sums over cubes of per-configuration terms, and those terms are pyradiomics' own:
  its C function run on the single cube of each of the 256 corner configurations (2 x 2 x 2 masks) gives each
  configuration's triangle area at the ROI's spacing and its signed volume at the origin, and on the same cube
  shifted by one voxel along each axis the volume's dependence on position (pyradiomics sums volumes with absolute
  coordinates, and its mesh need not be closed). Summed in another order: equal to 1e-12 relative.

tests/test_mesh_shape.py compares every value with pyradiomics on generated shapes chosen to break it, the demo's and
the real data's ROIs and the IBSI phantoms. config: `radflowFastShape: false` in a settings file's `setting` keeps
pyradiomics' own."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from radflow.features.switch import Switch

# pyradiomics' cube corners (z, y, x offsets); corner a is bit a of a cube's configuration
CORNERS = ((0, 0, 0), (0, 0, 1), (0, 1, 1), (0, 1, 0), (1, 0, 0), (1, 0, 1), (1, 1, 1), (1, 1, 0))
# below this many points a hull does not pay (and Qhull needs a full-dimensional set)
BRUTE_FORCE = 64


def _cube_mask(config: int, shift: int | None = None) -> np.ndarray:
    """The 2 x 2 x 2 mask of one configuration; shift: the same cube one voxel along that axis (a 3-long axis whose
    first plane is empty)."""
    shape = [2, 2, 2]
    if shift is not None:
        shape[shift] = 3
    m = np.zeros(shape, bool)
    for bit, corner in enumerate(CORNERS):
        if config >> bit & 1:
            at = list(corner)
            if shift is not None:
                at[shift] += 1
            m[tuple(at)] = True
    return m


@lru_cache(maxsize=1)
def _volume_terms() -> tuple[np.ndarray, np.ndarray]:
    """(P, M): per configuration, pyradiomics' signed volume of its single cube at the origin (unit spacing), and
    the change of that volume per voxel of shift along z, y and x (what the shifted cube adds beyond its own volume
    and that of the cube between the empty plane and its first face)."""
    from radiomics import cShape

    def volume(mask):
        return cShape.calculate_coefficients(np.ascontiguousarray(mask), np.ones(3))[1]

    origin = np.array([volume(_cube_mask(c)) for c in range(256)])
    shifted = np.zeros((256, 3))
    for axis in range(3):
        for c in range(256):
            m = _cube_mask(c, axis)
            lower = np.take(m, [0, 1], axis=axis)  # the cube between the empty plane and the first face
            lower_config = _config_of(lower)
            shifted[c, axis] = volume(m) - origin[c] - origin[lower_config]
    return origin, shifted


def _config_of(cube: np.ndarray) -> int:
    return sum(1 << bit for bit, corner in enumerate(CORNERS) if cube[corner])


@lru_cache(maxsize=16)
def _areas(spacing: tuple[float, float, float]) -> np.ndarray:
    """Per configuration, pyradiomics' triangle area of its single cube at this spacing."""
    from radiomics import cShape

    s = np.asarray(spacing, float)
    return np.array([cShape.calculate_coefficients(_cube_mask(c), s)[0] for c in range(256)])


def cube_configurations(mask: np.ndarray) -> np.ndarray:
    """Each cube's corner configuration (uint8 array of shape mask.shape - 1)."""
    m = mask.astype(np.uint8)
    z, y, x = (n - 1 for n in m.shape)
    out = np.zeros((z, y, x), np.uint8)
    for bit, (dz, dy, dx) in enumerate(CORNERS):
        out |= m[dz : dz + z, dy : dy + y, dx : dx + x] << bit
    return out


def surface_and_volume(mask: np.ndarray, spacing) -> tuple[float, float]:
    """pyradiomics' MeshSurface and MeshVolume of a padded mask (z, y, x; spacing in the same order)."""
    configs = cube_configurations(mask).ravel()
    counts = np.bincount(configs, minlength=256).astype(float)
    area = float(counts @ _areas(tuple(float(v) for v in spacing)))
    origin, shifted = _volume_terms()
    nz, ny, nx = (n - 1 for n in mask.shape)
    occupied = np.flatnonzero((configs != 0) & (configs != 255))
    iz, iy, ix = np.unravel_index(occupied, (nz, ny, nx))
    c = configs[occupied]
    positional = sum(
        np.bincount(c, weights=i.astype(float), minlength=256) @ shifted[:, k] for k, i in enumerate((iz, iy, ix))
    )
    volume = (counts @ origin + positional) * float(np.prod(np.asarray(spacing, float)))
    return area, volume


def mesh_vertices(mask: np.ndarray, spacing) -> np.ndarray:
    """pyradiomics' mesh vertices (n x 3, z y x, in mm): the midpoint of every edge between two 6-neighbours of which
    one is in the mask, computed as pyradiomics computes them: (index + offset) * spacing."""
    m = mask.astype(bool)
    s = np.asarray(spacing, float)
    out = []
    for axis in range(3):
        lo = np.take(m, range(m.shape[axis] - 1), axis=axis)
        hi = np.take(m, range(1, m.shape[axis]), axis=axis)
        idx = np.argwhere(lo != hi).astype(float)
        idx[:, axis] += 0.5
        out.append(idx)
    points = np.concatenate(out)
    return points * s


def _max_squared(points: np.ndarray) -> float:
    """The largest squared distance over pairs, computed as pyradiomics does ((a - b)², summed z + y + x)."""
    if len(points) < 2:
        return 0.0
    if len(points) > BRUTE_FORCE:
        spans = np.ptp(points, axis=0) > 0  # a flat set (one slice, one row) has its hull in fewer dimensions
        if spans.sum() == 1:  # collinear along an axis: the two ends
            k = int(np.argmax(spans))
            points = points[[int(np.argmin(points[:, k])), int(np.argmax(points[:, k]))]]
        elif spans.sum() >= 2:
            try:
                points = points[ConvexHull(points[:, spans]).vertices]
            except QhullError:  # flat at an angle: a joggled hull keeps every strictly extreme point
                points = points[ConvexHull(points[:, spans], qhull_options="QJ").vertices]
    if len(points) <= BRUTE_FORCE:
        return _exact_max_squared(points, points)
    return _farthest_pair(points)


def _exact_max_squared(a: np.ndarray, b: np.ndarray) -> float:
    """The largest of ((a_i - b_j)², summed z + y + x) over all i, j: pyradiomics' arithmetic, in chunks."""
    best = 0.0
    for start in range(0, len(a), 2048):
        d = a[start : start + 2048, None, :] - b[None, :, :]
        d = d * d
        best = max(best, float((d[..., 0] + d[..., 1] + d[..., 2]).max()))
    return best


def _farthest_pair(points: np.ndarray) -> float:
    """The largest squared distance over pairs, with pyradiomics' arithmetic for the pairs that can be it: the
    squared distances of all pairs as |a|² + |b|² - 2 a.b (a matrix product, on coordinates centred on their mean)
    are within 1e-12 of the exact ones relative to the largest |a|²; every pair within 1e-9 of that of the largest
    is computed again as pyradiomics does, and the largest of those is the answer (the true farthest pair is among
    them: its estimate is at most two rounding errors below the largest estimate)."""
    centred = points - points.mean(axis=0)
    norms = (centred * centred).sum(axis=1)
    tolerance = 1e-9 * float(norms.max()) + 1e-300

    def estimate(s: int) -> np.ndarray:  # rows s to s + 1023 against all (1024 x n floats at a time)
        return norms[s : s + 1024, None] + norms[None, :] - 2.0 * (centred[s : s + 1024] @ centred.T)

    chunks = range(0, len(points), 1024)
    tops = [float(estimate(s).max()) for s in chunks]
    top = max(tops)
    best = 0.0
    for s, chunk_top in zip(chunks, tops):
        if chunk_top < top - tolerance:
            continue
        rows, cols = np.nonzero(estimate(s) >= top - tolerance)
        if len(rows):
            d = points[s + rows] - points[cols]
            d = d * d
            best = max(best, float((d[:, 0] + d[:, 1] + d[:, 2]).max()))
    return best


def diameters(vertices: np.ndarray) -> np.ndarray:
    """pyradiomics' diameters: the largest distance between two vertices with the same z, the same y, the same x
    (Maximum2DDiameterSlice, Column, Row) and over all pairs (Maximum3DDiameter)."""
    out = np.zeros(4)
    out[3] = _max_squared(vertices)
    for axis in range(3):
        values, inverse = np.unique(vertices[:, axis], return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(values) + 1))
        sorted_points = vertices[order]
        # twice a plane's largest distance from its bounding box's centre bounds its diameter: planes are measured
        # from the widest down, until no plane left can beat the best (a disk's bound is its diameter)
        lo = np.minimum.reduceat(sorted_points, bounds[:-1], axis=0)
        hi = np.maximum.reduceat(sorted_points, bounds[:-1], axis=0)
        centre = np.repeat((lo + hi) / 2, np.diff(bounds), axis=0)
        radius = np.maximum.reduceat(((sorted_points - centre) ** 2).sum(axis=1), bounds[:-1])
        reach = 4 * radius * (1 + 1e-9)  # (2 r)², widened past rounding
        best = 0.0
        for i in np.argsort(-reach, kind="stable"):
            if reach[i] <= best:
                break
            plane = sorted_points[bounds[i] : bounds[i + 1]]
            if len(plane) > 1:
                best = max(best, _max_squared(plane))
        out[axis] = best
    return np.sqrt(out)


def calculate_coefficients(mask: np.ndarray, spacing) -> tuple[float, float, np.ndarray]:
    """A drop-in for radiomics.cShape.calculate_coefficients(mask, spacing): (surface area, volume, diameters)."""
    area, volume = surface_and_volume(mask, spacing)
    return area, volume, diameters(mesh_vertices(mask, spacing))


_STATE = {"enabled": True}


class _CShape:
    """Stands in for radiomics.shape's cShape: radflow's coefficients while enabled, pyradiomics' own otherwise."""

    def __init__(self, original):
        self.original = original

    def __getattr__(self, name):
        return getattr(self.original, name)

    def calculate_coefficients(self, mask, spacing):
        if _STATE["enabled"]:
            return calculate_coefficients(mask, spacing)
        return self.original.calculate_coefficients(mask, spacing)


class enabled(Switch):
    """`with enabled(True):` pyradiomics' shape class computes its coefficients here; `enabled(False)`: in its own C
    (the reference; settings `radflow: {fast_shape: false}`)."""

    def __init__(self, on: bool = True):
        import radiomics.shape

        if not isinstance(radiomics.shape.cShape, _CShape):
            radiomics.shape.cShape = _CShape(radiomics.shape.cShape)
        super().__init__(_STATE, on)
