"""The records radflow writes next to its images and masks: where a sidecar lives, and what a mask's holds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


def image_sidecar(nifti_path) -> Path:
    """The JSON sidecar of an image or mask: `<name>.nii.gz` -> `<name>.json`."""
    p = Path(nifti_path)
    name = p.name[: -len(".nii.gz")] if p.name.endswith(".nii.gz") else p.stem
    return p.with_name(name + ".json")


@dataclass
class MaskRecord:
    """One entry of masks.json (and the sidecar `<label>.json` of a mask that was written): one ROI or SEG segment
    rasterised on one image, a union of instances, or what could not be rasterised (status failed, with the reason;
    the features table shows it as a failed row)."""

    label: str = ""  # file name of the mask: the standard name, _2, _3 … for more instances, <ROI>_union
    roi: str = ""  # standard name (roi_names.yaml) or "unmapped"
    roi_original: str = ""
    roi_pattern: str = ""  # the alias pattern that matched
    roi_number: int = 0
    rtstruct_sop_uid: str = ""
    rtstruct_series_uid: str = ""
    image_series_uid: str = ""
    relation: str = ""  # referenced, same_frame_of_reference …
    voxel_count: int = 0
    volume_mm3: float = 0.0
    status: str = "ok"  # ok or failed
    reason: str = ""
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    roi_type: str = ""  # RTROIInterpretedType
    contour_types: dict = field(default_factory=dict)  # ContourGeometricType: count
    point: str = ""  # why the ROI is a point, a marker or a line rather than a volume ("" for a volume)
    bounding_box: list = field(default_factory=list)  # [x0, y0, z0, nx, ny, nz] in voxels; [] when not computed
    polygon_volume_mm3: float = 0.0  # the contours' own volume (or the SEG segment's)
    n_contours: int = 0
    duplicate_contours: int = 0
    crossing_planes: int = 0
    crossing_area_mm2: float = 0.0
    contour_overlap: str = ""  # the rule the crossing contours were filled by

    def as_dict(self) -> dict:
        return asdict(self)
