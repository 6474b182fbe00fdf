"""The closed contours of one plane of an RTSTRUCT ROI: duplicates, nesting, crossing, and the rule that fills them.

Planning systems store an ROI as closed polygons per plane. Two polygons of one plane relate in one of four ways:
- apart (or touching): both are inside the ROI;
- nested, one wholly inside the other: the inner one is a hole (or an island in a hole), as the even-odd rule says;
- duplicate, the same outline stored twice (a real XiO export stores every contour of an ROI twice): it is one
  contour. Under the even-odd rule the pair would cancel and erase the ROI, so the copy is dropped, always;
- crossing, overlapping without one lying inside the other: what the overlap is depends on the rule
  (config `contour_overlap`): `even-odd`, the IBSI rule and the default, leaves it outside (the crossings of its
  edges pair up), `union` takes it inside (crossing polygons are merged into one outline first; nested outlines still
  alternate).

The index and the masks step both use these functions: the index to list what it finds in problems.tsv before
anything is rasterised (in patient millimetres), the masks step to rasterise (on the image grid, also in mm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce

import numpy as np
import shapely

CONTOUR_DATA = 0x30060050
DUPLICATE_TOLERANCE_MM = 0.01  # two outlines this close everywhere (Hausdorff distance) are the same outline
OVERLAP_RULES = ("even-odd", "union")
_AREA_EPS = 1e-6  # mm^2: overlaps below this are touching edges, not overlaps


def contour_data(item) -> np.ndarray:
    """ContourData of one ContourSequence item as floats, parsed from the raw bytes with numpy (pydicom's per-value
    DS objects are slow). ValueError when it is not a list of numbers."""
    raw = item.get_item(CONTOUR_DATA)
    if raw is None:
        return np.zeros(0)
    if isinstance(raw.value, (bytes, bytearray)):
        text = raw.value.decode("ascii", "replace").strip(" \x00")
        return np.array(text.replace("\\", " ").split(), dtype=float) if text else np.zeros(0)
    return np.asarray([float(v) for v in (item.ContourData or [])], float)


def _shape(poly: np.ndarray):
    """A shapely area for a polygon (n, 2); a self-intersecting one is made valid (a bow-tie becomes two lobes)."""
    shape = shapely.Polygon(poly)
    return shape if shape.is_valid else shapely.make_valid(shape)


@dataclass
class PlaneAudit:
    """What the contours of one plane are to each other. Indices refer to the plane's list of polygons."""

    keep: list[int]  # one of each outline, in the original order
    duplicates: list[int] = field(default_factory=list)  # dropped: the same outline as a kept one
    crossings: list[tuple[int, int, float]] = field(default_factory=list)  # kept pairs overlapping, area mm^2
    shapes: dict = field(default_factory=dict, repr=False)

    def clusters(self) -> list[list[int]]:
        """The kept polygons grouped by crossing (connected components); single polygons are their own cluster."""
        parent = {i: i for i in self.keep}

        def root(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for a, b, _ in self.crossings:
            parent[root(a)] = root(b)
        groups: dict[int, list[int]] = {}
        for i in self.keep:
            groups.setdefault(root(i), []).append(i)
        return list(groups.values())

    def area(self, rule: str = "even-odd") -> float:
        """Area (mm^2) of the plane under the rule: the symmetric difference of the outlines (even-odd), or of the
        unions of crossing outlines (union)."""
        groups = self.clusters() if rule == "union" else [[i] for i in self.keep]
        parts = [shapely.union_all([self.shapes[i] for i in g]) for g in groups if g]
        return float(reduce(shapely.symmetric_difference, parts).area) if parts else 0.0


def audit_plane(polys: list[np.ndarray], tolerance: float = DUPLICATE_TOLERANCE_MM) -> PlaneAudit:
    """Duplicates and crossings among the polygons (each (n, 2), in mm) of one plane."""
    shapes = {i: _shape(p) for i, p in enumerate(polys)}
    boxes = np.array([p.min(axis=0).tolist() + p.max(axis=0).tolist() for p in polys]) if polys else np.zeros((0, 4))
    audit = PlaneAudit(keep=[], shapes=shapes)
    for i, p in enumerate(polys):
        same = next(
            (
                k
                for k in audit.keep
                if np.abs(boxes[k] - boxes[i]).max() <= tolerance
                and shapely.hausdorff_distance(shapely.LinearRing(polys[k]), shapely.LinearRing(p)) <= tolerance
            ),
            None,
        )
        (audit.duplicates if same is not None else audit.keep).append(i)
    for n, a in enumerate(audit.keep):
        for b in audit.keep[n + 1 :]:
            if (boxes[a, :2] >= boxes[b, 2:]).any() or (boxes[b, :2] >= boxes[a, 2:]).any():
                continue  # boxes apart
            overlap = float(shapes[a].intersection(shapes[b]).area)
            smaller = min(shapes[a].area, shapes[b].area)
            if overlap > _AREA_EPS and overlap < smaller - max(_AREA_EPS, 1e-9 * smaller):
                audit.crossings.append((a, b, overlap))
    return audit


@dataclass
class RoiAudit:
    """The plane audits of one ROI and their totals."""

    planes: list[PlaneAudit]
    contours: int

    @property
    def duplicates(self) -> int:
        return sum(len(p.duplicates) for p in self.planes)

    @property
    def duplicate_planes(self) -> int:
        return sum(bool(p.duplicates) for p in self.planes)

    @property
    def crossing_planes(self) -> int:
        return sum(bool(p.crossings) for p in self.planes)

    @property
    def crossing_area_mm2(self) -> float:
        return float(sum(a for p in self.planes for _, _, a in p.crossings))

    def warnings(self, name: str, rule: str | None = None) -> list[str]:
        """What a user should know, in words; rule None when it is not known yet (the index)."""
        out = []
        if self.duplicates:
            out.append(
                f"ROI '{name}' stores {self.duplicates} of its {self.contours} contours twice (the same outline "
                f"on the same plane, within {DUPLICATE_TOLERANCE_MM} mm) on {self.duplicate_planes} plane(s); "
                "each outline is used once"
            )
        if self.crossing_planes:
            pairs = sum(len(p.crossings) for p in self.planes)
            what = {
                "even-odd": "the overlap is outside the ROI (contour_overlap: even-odd, the IBSI rule; "
                "union would take it in)",
                "union": "the overlap is inside the ROI (contour_overlap: union)",
                None: "contour_overlap decides whether the overlap is outside the ROI (even-odd, the default) or "
                "inside (union)",
            }[rule]
            out.append(
                f"ROI '{name}': {pairs} pair(s) of contours overlap without one lying inside the other, on "
                f"{self.crossing_planes} plane(s), {self.crossing_area_mm2:.1f} mm2 in all; {what}"
            )
        return out


def audit_roi(planes: list[list[np.ndarray]], contours: int | None = None) -> RoiAudit:
    """Audit each plane's polygons (lists of (n, 2) arrays in mm)."""
    return RoiAudit(
        [
            audit_plane(p)
            if len(p) > 1
            else PlaneAudit(keep=list(range(len(p))), shapes={0: _shape(p[0])} if p else {})
            for p in planes
        ],
        contours if contours is not None else sum(len(p) for p in planes),
    )


def patient_planes(contours: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Closed contours (n, 3) in patient mm grouped by plane, as (n, 2) in-plane mm: the plane axis is the one along
    which the contours are flattest (z for axial contours); positions within 0.01 mm are one plane."""
    contours = [c for c in contours if len(c) >= 3]
    if not contours:
        return []
    axis = int(np.argmin(np.median([np.ptp(c, axis=0) for c in contours], axis=0)))
    others = [a for a in range(3) if a != axis]
    planes: dict[float, list[np.ndarray]] = {}
    for c in contours:
        planes.setdefault(round(float(c[:, axis].mean()), 2), []).append(c[:, others])
    return [planes[k] for k in sorted(planes)]
