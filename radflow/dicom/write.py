"""Writing DICOM with pydicom: the one writer of the synthetic demo cohort (radflow.demo), the tests' objects
(tests/factory.py) and the benchmarks' cohorts. What radflow hands to others as results (DICOM SEG and SR) is
written with highdicom (radflow.paper.dicom_export), not here.

The pieces are the modules of the objects radflow reads: a new dataset with its file meta and SOP identity, the
structure set of an RTSTRUCT (ROIs, their contours, the images they lie on, their interpreted types), the dose
grid of an RTDOSE and its plan reference, and the pixels of an image. How numbers are written (the number of
decimals of a contour's coordinates, a DS formatter) is the caller's: the demo's files stay as they are."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
RTDOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RTPLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
STUDY_COMPONENT_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"  # the (retired) class RTSTRUCTs reference their study by


def new_dataset(sop_class: str, sop_uid: str | None = None, implementation_uid: str | None = None, charset=None):
    """A dataset with its file meta (explicit VR little endian) and SOP class and instance (a new UID if none)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid or generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if implementation_uid:
        meta.ImplementationClassUID = implementation_uid
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    if charset:
        ds.SpecificCharacterSet = charset
    return ds


def save(ds: Dataset, path) -> None:
    ds.save_as(path, enforce_file_format=True)


# ------------------------------------------------------------------------------------------------- RTSTRUCT
@dataclass
class Contour:
    points: np.ndarray  # (N, 3) patient coordinates, mm
    kind: str = "CLOSED_PLANAR"  # ContourGeometricType: CLOSED_PLANAR, OPEN_PLANAR, POINT …
    image: tuple[str, str] | None = None  # (SOP class, SOP instance UID) of the image slice it lies on


@dataclass
class Roi:
    name: str
    contours: list[Contour] | None = field(default_factory=list)  # None: an ROI without a ContourSequence
    roi_type: str | None = None  # RTROIInterpretedType (GTV, ORGAN, MARKER, ISOCENTER …)
    color: list[int] | None = None  # ROIDisplayColor
    algorithm: str | None = None  # ROIGenerationAlgorithm (MANUAL …)


def _contour_item(c: Contour, decimals: int) -> Dataset:
    item = Dataset()
    if c.image is not None:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = c.image
        item.ContourImageSequence = Sequence([ref])
    pts = np.asarray(c.points, float).reshape(-1, 3)
    item.ContourGeometricType = c.kind
    item.NumberOfContourPoints = len(pts)
    item.ContourData = [f"{v:.{decimals}f}" for v in pts.ravel()]
    return item


def _roi_items(roi: Roi, number: int, for_uid: str, decimals: int) -> tuple[Dataset, Dataset]:
    """The StructureSetROISequence and ROIContourSequence items of one ROI."""
    item = Dataset()
    item.ROINumber = number
    item.ReferencedFrameOfReferenceUID = for_uid
    item.ROIName = roi.name
    if roi.algorithm:
        item.ROIGenerationAlgorithm = roi.algorithm
    rc = Dataset()
    rc.ReferencedROINumber = number
    if roi.color is not None:
        rc.ROIDisplayColor = list(roi.color)
    if roi.contours is not None:
        rc.ContourSequence = Sequence([_contour_item(c, decimals) for c in roi.contours])
    return item, rc


def _observation(roi: Roi, number: int) -> Dataset:
    obs = Dataset()
    obs.ObservationNumber = number
    obs.ReferencedROINumber = number
    obs.RTROIInterpretedType = roi.roi_type or ""
    obs.ROIInterpreter = ""
    return obs


def structure_set(
    ds: Dataset, for_uid: str, rois: list[Roi], images: dict | None = None, decimals: int = 4, observations=None
) -> Dataset:
    """An RTSTRUCT's structure set on ds: its frame of reference (with images: {study_uid, series_uid, sop_class,
    sop_uids}, the image series its contours lie on, referenced down to each slice), one numbered ROI per entry
    with its contours, and the RT ROI observations (each ROI's interpreted type) when observations is True, or,
    when None, when any ROI has a type."""
    ref_for = Dataset()
    ref_for.FrameOfReferenceUID = for_uid
    if images is not None:
        rt_series = Dataset()
        rt_series.SeriesInstanceUID = images["series_uid"]
        slices = []
        for sop in images.get("sop_uids", []):
            item = Dataset()
            item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = images["sop_class"], sop
            slices.append(item)
        rt_series.ContourImageSequence = Sequence(slices)
        rt_study = Dataset()
        rt_study.ReferencedSOPClassUID = STUDY_COMPONENT_MANAGEMENT
        rt_study.ReferencedSOPInstanceUID = images["study_uid"]
        rt_study.RTReferencedSeriesSequence = Sequence([rt_series])
        ref_for.RTReferencedStudySequence = Sequence([rt_study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([ref_for])
    items = [_roi_items(roi, n, for_uid, decimals) for n, roi in enumerate(rois, start=1)]
    ds.StructureSetROISequence = Sequence([a for a, _ in items])
    ds.ROIContourSequence = Sequence([b for _, b in items])
    if observations or (observations is None and any(r.roi_type is not None for r in rois)):
        ds.RTROIObservationsSequence = Sequence([_observation(roi, n) for n, roi in enumerate(rois, start=1)])
    return ds


def append_roi(ds: Dataset, roi: Roi, decimals: int = 4) -> int:
    """One more ROI in an RTSTRUCT's structure set (numbered after the last; its observation when it has a type);
    returns its number."""
    number = max((int(r.ROINumber) for r in ds.StructureSetROISequence), default=0) + 1
    for_uid = ds.StructureSetROISequence[0].ReferencedFrameOfReferenceUID
    item, rc = _roi_items(roi, number, for_uid, decimals)
    ds.StructureSetROISequence.append(item)
    ds.ROIContourSequence.append(rc)
    if roi.roi_type is not None:
        if "RTROIObservationsSequence" not in ds:
            ds.RTROIObservationsSequence = Sequence()
        ds.RTROIObservationsSequence.append(_observation(roi, number))
    return number


# ------------------------------------------------------------------------------------------------- RTDOSE
def dose_grid(
    ds: Dataset,
    gy: np.ndarray,
    origin,
    spacing,
    scaling: float,
    summation: str = "PLAN",
    fmt: Callable[[float], str] = lambda v: f"{v:.6f}",
    scaling_text: str | None = None,
) -> Dataset:
    """An RTDOSE's dose grid on ds: gy (frames, rows, columns) in Gy on an axial grid at origin (x, y, z of the first
    voxel) with spacing (x, y, z), stored as unsigned 32-bit values times DoseGridScaling (scaling; written as
    scaling_text or with fmt), frames at GridFrameOffsetVector from the first; physical dose of summation type
    summation."""
    frames, rows, columns = gy.shape
    sx, sy, sz = spacing
    ds.DoseGridScaling = scaling_text or fmt(scaling)
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", "PHYSICAL", summation
    ds.ImagePositionPatient = [fmt(v) for v in origin]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [fmt(sy), fmt(sx)]
    ds.SliceThickness = fmt(sz)
    ds.GridFrameOffsetVector = [fmt(k * sz) for k in range(frames)]
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = 0x3004000C
    pixel_module(ds, np.round(np.asarray(gy, np.float64) / scaling).astype(np.uint32))
    return ds


def plan_reference(ds: Dataset, plan_uid: str, beams=()) -> None:
    """The RTPLAN an RTDOSE belongs to (with beams: the beam numbers of a per-beam dose, fraction group 1)."""
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = RTPLAN_STORAGE, plan_uid
    if beams:
        group = Dataset()
        group.ReferencedFractionGroupNumber = 1
        group.ReferencedBeamSequence = Sequence([Dataset() for _ in beams])
        for item, number in zip(group.ReferencedBeamSequence, beams):
            item.ReferencedBeamNumber = number
        ref.ReferencedFractionGroupSequence = Sequence([group])
    ds.ReferencedRTPlanSequence = Sequence([ref])


# ------------------------------------------------------------------------------------------------- images
def pixel_module(ds: Dataset, pixels: np.ndarray) -> None:
    """The image pixel module of grey-level pixels (rows, columns), or frames of them: size, bits of the array's
    integer type, signedness, and the data."""
    pixels = np.asarray(pixels)
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = pixels.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if np.issubdtype(pixels.dtype, np.signedinteger) else 0
    ds.PixelData = pixels.tobytes()
