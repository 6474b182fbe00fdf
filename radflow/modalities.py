"""The one table of DICOM modalities radflow knows: what each image modality's voxels mean after conversion, how
its values are made, how it is shown, and which headers the index must read in full to decide whether it can be
converted. The index, convert, the QC pictures, the command line and the config schema all read it, so a new image
modality is one entry here (and, when its values need a rule of their own, one function in radflow.dicom.convert).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageModality:
    """One image modality; a field left out takes the plain case: values as stored (rescaled), float32, the display
    window from the image's 1st to 99th percentile, no check of the full headers."""

    name: str  # DICOM Modality (0008,0060)
    description: str
    units: str  # of the converted NIfTI's voxels
    values: str = "rescaled"  # how voxel values are made: "rescaled" (stored * slope + intercept) or "suv"
    whole_numbers_as_int16: bool = False  # stored as int16 when every value is a whole number in range (CT in HU)
    window: tuple[float, float] | None = None  # fixed display window (low, high), or None: percentiles of the image
    window_percentiles: tuple[float, float] = (1.0, 99.0)  # (low, high) percentiles when there is no fixed window
    window_from_zero: bool = False  # the percentile window starts at 0 (PET: no negative uptake)
    window_to_roi_max: bool = False  # the window reaches the ROI's highest value (PET: a hot lesion is not saturated)
    header_gate: str | None = None  # the index's check on the full headers before conversion ("suv": SUVbw computable)


IMAGE_MODALITIES: dict[str, ImageModality] = {
    m.name: m
    for m in (
        ImageModality(
            "CT",
            "computed tomography",
            units="HU",
            whole_numbers_as_int16=True,
            window=(-160.0, 240.0),  # soft tissue: W 400, L 40
        ),
        ImageModality(
            "PT",
            "positron emission tomography, in body-weight SUV",
            units="SUVbw (g/ml)",
            values="suv",
            window_percentiles=(0.0, 99.5),
            window_from_zero=True,
            window_to_roi_max=True,
            header_gate="suv",
        ),
        ImageModality("MR", "magnetic resonance, values as stored (arbitrary units)", units="as stored"),
    )
}
DEFAULT_MODALITIES = list(IMAGE_MODALITIES)  # the config's `modalities` default: every image modality
# model.modality may name an image modality or RTDOSE: the dose features of the dose grids (their rows of the
# features table have modality RTDOSE, and the trust analyses perturb the dose grid and its masks)
DOSE_MODALITY = "RTDOSE"

# the other DICOM modalities of a cohort and the role the index gives their series
ROLES = {"RTSTRUCT": "rtstruct", "RTDOSE": "rtdose", "RTPLAN": "rtplan", "SEG": "seg", "REG": "registration"}
STRUCTURE_MODALITIES = ("RTSTRUCT", "SEG")  # turned into masks on an image's grid
# a dose grid names its plan, a plan its structure set (referenced_sop_uids in the index): which ROIs get the DVHs
PLAN_MODALITIES = ("RTDOSE", "RTPLAN")
# read with pydicom by the index (not its fast header reader): structure sets for their ROIs, dose grids and plans
# for their references, and image modalities whose header gate needs tags the fast reader does not read
FULL_HEADER_MODALITIES = frozenset(
    {*STRUCTURE_MODALITIES, *PLAN_MODALITIES, *(m for m, t in IMAGE_MODALITIES.items() if t.header_gate)}
)


def image_modality(name: str) -> ImageModality | None:
    return IMAGE_MODALITIES.get(str(name).upper())


def units(name: str) -> str:
    m = image_modality(name)
    return m.units if m else "as stored"
