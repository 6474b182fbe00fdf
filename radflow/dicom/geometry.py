"""Image grids: the geometry shared by DICOM slices, NIfTI volumes and RTSTRUCT contours.

A grid maps voxel index (i = column, j = row, k = slice) to patient coordinates (DICOM LPS, mm):
    p = origin + D @ (spacing * [i, j, k])
where the columns of D are the row direction, the column direction and the slice normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk


@dataclass(frozen=True)
class Grid:
    size: tuple[int, int, int]  # (columns, rows, slices) = SimpleITK order
    spacing: tuple[float, float, float]  # mm: (column step, row step, slice step)
    origin: tuple[float, float, float]  # centre of voxel (0, 0, 0) in patient coordinates
    direction: tuple[float, ...]  # 3x3 row-major, columns = row dir, column dir, normal

    @property
    def matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    def to_index(self, points: np.ndarray) -> np.ndarray:
        """Continuous voxel indices (N, 3) of patient points (N, 3)."""
        d = self.matrix * np.asarray(self.spacing)[None, :]
        return np.linalg.solve(d, (np.asarray(points, float) - np.asarray(self.origin)).T).T

    @classmethod
    def of_image(cls, image: sitk.Image) -> "Grid":
        return cls(
            tuple(image.GetSize()), tuple(image.GetSpacing()), tuple(image.GetOrigin()), tuple(image.GetDirection())
        )

    def apply_to(self, image: sitk.Image) -> sitk.Image:
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image


# The tolerances of slice geometry, in one place. The index excludes a series beyond the first group; the
# conversion of a series the index let through warns beyond the second (smaller deviations it corrects for).
POSITION_TOLERANCE_MM = 1e-3  # two slices closer than this along the normal are at the same position
MAX_GAP_FACTOR = 1.5  # a step over 1.5x the median step is a missing slice: excluded
MAX_OFF_GRID_FACTOR = 0.1  # a slice off the uniform grid by over 0.1 step: non-uniform spacing, excluded
MAX_TILT_PIXEL_FRACTION = 0.5  # slices shifting in-plane by over half a pixel across the stack: gantry tilt, excluded
WARN_SPACING_FRACTION = 0.01  # converted with the mean step, with a warning, when steps vary by over 1 %
WARN_DRIFT_MM = 0.01  # converted along the normal, with a warning, when positions drift over 0.01 mm off it


def position_keys(along) -> np.ndarray:
    """Positions along the slice normal rounded to POSITION_TOLERANCE_MM: slices with the same key are at one
    position."""
    return np.round(np.asarray(along, dtype=float), 3)


def slice_normal(orientation) -> np.ndarray:
    """The slice normal (row cosine x column cosine) from the six values of ImageOrientationPatient."""
    o = np.asarray([float(v) for v in orientation], dtype=float)
    return np.cross(o[:3], o[3:6])


def direction_from_orientation(orientation) -> np.ndarray:
    """3x3 direction matrix (columns: row cosine, column cosine, normal) from ImageOrientationPatient."""
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:6], dtype=float)
    return np.column_stack([row, col, slice_normal(orientation)])


def bounding_box(mask: np.ndarray) -> list[int]:
    """The mask's bounding box in voxels, as SimpleITK gives it: first index (x, y, z), then size (x, y, z);
    all zeros for an empty mask."""
    first, size = [], []
    for axis in (2, 1, 0):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        first.append(int(hit[0]) if hit.size else 0)
        size.append(int(hit[-1] - hit[0] + 1) if hit.size else 0)
    return first + size
