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


def direction_from_orientation(orientation) -> np.ndarray:
    """3x3 direction matrix (columns: row cosine, column cosine, normal) from ImageOrientationPatient."""
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:6], dtype=float)
    normal = np.cross(row, col)
    return np.column_stack([row, col, normal])
