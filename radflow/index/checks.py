"""Whether a (sub-)series is a volume radflow converts: slice geometry, scouts, multi-frame objects, the PET gate."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from radflow.dicom.geometry import (
    MAX_GAP_FACTOR,
    MAX_OFF_GRID_FACTOR,
    MAX_TILT_PIXEL_FRACTION,
    POSITION_TOLERANCE_MM,
    slice_normal,
)
from radflow.dicom.suv import SUVError, suv_factors

if TYPE_CHECKING:
    from radflow.index.series import Slices


def check_image_series(sl: Slices) -> tuple[bool, str, dict]:
    """(convert?, reason, geometry) for the instances of one CT/MR/PT (sub-)series."""
    geometry = {}
    if any("LOCALIZER" in t for t in sl["image_type"]):
        return False, "localizer/scout image (ImageType LOCALIZER): not a volume", geometry
    along = sl.along
    if (sl["orientation"] == "").any() or not np.isfinite(along).all():
        return False, "slices without ImageOrientationPatient/ImagePositionPatient", geometry
    if sl["number_of_frames"].max() > 1:
        return (
            False,
            (
                "multi-frame (enhanced) image objects are not supported yet: "
                f"{int(sl['number_of_frames'].max())} frames in one file"
            ),
            geometry,
        )
    if len(sl) < 2:
        return False, "a single slice: not a volume", geometry
    order = np.argsort(along, kind="stable")
    z = along[order]
    geometry.update(z_min=float(z[0]), z_max=float(z[-1]))
    steps = np.diff(z)
    if (steps < POSITION_TOLERANCE_MM).any():
        return False, f"{int((steps < POSITION_TOLERANCE_MM).sum())} duplicate slice position(s)", geometry
    median = float(np.median(steps))
    geometry["slice_spacing"] = median
    if (steps > MAX_GAP_FACTOR * median).any():
        return (
            False,
            (f"missing slice(s): a gap of {float(steps.max()):.2f} mm where the spacing is {median:.2f} mm"),
            geometry,
        )
    mean = (z[-1] - z[0]) / (len(z) - 1)
    off_grid = np.abs(z - (z[0] + mean * np.arange(len(z)))).max()
    if off_grid > MAX_OFF_GRID_FACTOR * mean:
        return (
            False,
            (
                f"non-uniform slice spacing: steps from {steps.min():.2f} to {steps.max():.2f} mm, a slice "
                f"lies {off_grid:.2f} mm off a uniform grid"
            ),
            geometry,
        )
    # Gantry tilt: slices stacked along a direction that is not the slice normal.
    normal = slice_normal(sl["orientation"][0].split("\\"))
    pos = np.column_stack([sl["position_x"], sl["position_y"], sl["position_z"]]).astype(float)[order]
    drift = pos - pos[0] - np.outer(z - z[0], normal)
    spacing = np.concatenate([sl["pixel_spacing_row"], sl["pixel_spacing_col"]]).astype(float)
    pixel = float(np.nanmin(spacing)) if np.isfinite(spacing).any() else 1.0
    shift = float(np.abs(drift).max())
    if shift > MAX_TILT_PIXEL_FRACTION * pixel:
        angle = float(np.degrees(np.arctan2(np.linalg.norm(drift[-1]), z[-1] - z[0])))
        return (
            False,
            (
                f"gantry tilt (about {angle:.1f} degrees): slices shift {shift:.1f} mm in-plane across the "
                "stack; not converted"
            ),
            geometry,
        )
    return True, "", geometry


def check_pet_series(sl: Slices, pet_fallback: str | None = None) -> tuple[bool, str, str]:
    """(convert?, reason, severity): whether SUVbw can be computed from the slices' headers."""
    tags = sl["suv_tags"][np.argsort(sl.along, kind="stable")]
    try:
        suv_factors([json.loads(t) for t in tags])
    except SUVError as err:
        units = json.loads(tags[0])["units"]
        if pet_fallback == "bqml" and units == "BQML":
            return True, f"SUVbw not computable ({err}); kept in Bq/ml (pet_fallback: bqml)", "warning"
        return False, f"PET without SUVbw: {err}", "excluded"
    return True, "", ""
