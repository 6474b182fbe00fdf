"""The unit of every feature column: sizes from pyradiomics' shape names, intensities from the image's unit."""

from __future__ import annotations

# Units of pyradiomics' shape features (3D and 2D), by feature name; the others are ratios ("1").
SHAPE_UNITS = {
    "MeshVolume": "mm³",
    "VoxelVolume": "mm³",
    "SurfaceArea": "mm²",
    "SurfaceVolumeRatio": "1/mm",
    "Maximum3DDiameter": "mm",
    "Maximum2DDiameterSlice": "mm",
    "Maximum2DDiameterColumn": "mm",
    "Maximum2DDiameterRow": "mm",
    "MajorAxisLength": "mm",
    "MinorAxisLength": "mm",
    "LeastAxisLength": "mm",
    "MeshSurface": "mm²",
    "PixelSurface": "mm²",
    "Perimeter": "mm",
    "PerimeterSurfaceRatio": "1/mm",
    "MaximumDiameter": "mm",
}


# first-order features in the square of the image's unit (TotalEnergy also times the voxel volume), or without one
FIRSTORDER_SQUARED = {"Energy", "Variance"}


FIRSTORDER_UNITLESS = {"Entropy", "Uniformity", "Skewness", "Kurtosis"}


# image types whose values keep the image's unit: the original, and linear filters normalised to it (pyradiomics'
# wavelet decomposition and its scale-normalised Laplacian of Gaussian)
SAME_UNIT_IMAGE_TYPES = ("wavelet-", "log-sigma-")


def intensity_unit(image_units: str, normalized: bool = False) -> str:
    """The unit of an image's intensities as the settings see them (what a bin width, a re-segmentation range or a
    first-order feature is in): HU, SUVbw, Gy, Bq/ml …; "1" after normalisation; "" where the values are as
    stored."""
    if normalized:
        return "1"
    return {"BQML": "Bq/ml", "as stored": ""}.get(image_units, str(image_units).split(" (")[0])


def feature_unit(name: str, image_units: str, normalized: bool = False) -> str:
    """The unit of a pyradiomics feature column for an image in image_units (HU, SUVbw (g/ml), …): mm, mm², mm³ or
    1/mm for sizes; the image's unit (or its square) for first-order statistics of intensity; "1" for ratios and
    for every texture feature (computed on discretised grey levels, not on the intensities); "" where radflow does
    not state one (first-order features of images of a non-linear filter: square, exponential, logarithm …, or of an
    image whose values are as stored). normalized: the settings' `normalize` (intensities become z-scores: "1")."""
    parts = name.split("_", 2)
    if len(parts) < 3:
        return ""
    image_type, cls, feature = parts
    if cls.startswith("shape"):
        return SHAPE_UNITS.get(feature, "1")
    if cls != "firstorder":
        return "1"
    if feature in FIRSTORDER_UNITLESS:
        return "1"
    if image_type != "original" and not image_type.startswith(SAME_UNIT_IMAGE_TYPES):
        return ""
    unit = intensity_unit(image_units, normalized)
    if not unit:
        return ""
    squared = "1" if unit == "1" else f"{unit}²"
    if feature == "TotalEnergy":
        return "mm³" if unit == "1" else f"{squared}·mm³"
    return squared if feature in FIRSTORDER_SQUARED else unit
