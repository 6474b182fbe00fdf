"""Real DICOM objects written with pydicom for tests: RTSTRUCTs from analytic contours, image grids."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RTDOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"


def _rt_dataset(sop_class: str, modality: str, patient: str) -> Dataset:
    """A new RT object's file meta, SOP, patient, study and series attributes (fresh UIDs)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.PatientName = modality, patient, patient
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    return ds


def write_rtstruct(
    path,
    rois: dict[str, list[np.ndarray]],
    for_uid="1.2.3.4",
    patient="TCGA-00-9999",
    kinds: dict[str, str] | None = None,
    roi_types: dict[str, str] | None = None,
):
    """An RTSTRUCT file with one ROI per name; each contour an (N, 3) array of patient coordinates (mm).
    kinds: ContourGeometricType per ROI (default CLOSED_PLANAR); roi_types: RTROIInterpretedType per ROI."""
    ds = _rt_dataset(RTSTRUCT_STORAGE, "RTSTRUCT", patient)
    ref_for = Dataset()
    ref_for.FrameOfReferenceUID = for_uid
    ds.ReferencedFrameOfReferenceSequence = Sequence([ref_for])
    ssroi, roic = Sequence(), Sequence()
    for n, (name, contours) in enumerate(rois.items(), start=1):
        item = Dataset()
        item.ROINumber, item.ROIName, item.ReferencedFrameOfReferenceUID = n, name, for_uid
        ssroi.append(item)
        seq = Sequence()
        for pts in contours:
            c = Dataset()
            c.ContourGeometricType = (kinds or {}).get(name, "CLOSED_PLANAR")
            c.NumberOfContourPoints = len(pts)
            c.ContourData = [f"{v:.6f}" for v in np.asarray(pts, float).ravel()]
            seq.append(c)
        rc = Dataset()
        rc.ReferencedROINumber, rc.ContourSequence = n, seq
        roic.append(rc)
    ds.StructureSetROISequence, ds.ROIContourSequence = ssroi, roic
    if roi_types:
        observations = Sequence()
        for n, name in enumerate(rois, start=1):
            obs = Dataset()
            obs.ObservationNumber, obs.ReferencedROINumber = n, n
            obs.RTROIInterpretedType, obs.ROIInterpreter = roi_types.get(name, ""), ""
            observations.append(obs)
        ds.RTROIObservationsSequence = observations
    ds.save_as(path, enforce_file_format=True)
    return path


def add_roi(rs_path: Path, name: str, contours: list[tuple[str, np.ndarray]] | None):
    """Append an ROI to an RTSTRUCT: contours as (ContourGeometricType, (N, 3) points); None = no contours."""
    rs = pydicom.dcmread(rs_path)
    number = max(int(r.ROINumber) for r in rs.StructureSetROISequence) + 1
    item = Dataset()
    item.ROINumber, item.ROIName = number, name
    item.ReferencedFrameOfReferenceUID = rs.StructureSetROISequence[0].ReferencedFrameOfReferenceUID
    item.ROIGenerationAlgorithm = "MANUAL"
    rs.StructureSetROISequence.append(item)
    rc = Dataset()
    rc.ReferencedROINumber = number
    rc.ROIDisplayColor = [255, 0, 0]
    if contours is not None:
        seq = Sequence()
        for kind, pts in contours:
            c = Dataset()
            c.ContourGeometricType = kind
            c.NumberOfContourPoints = len(pts)
            c.ContourData = [f"{v:.4f}" for v in np.asarray(pts, float).ravel()]
            seq.append(c)
        rc.ContourSequence = seq
    rs.ROIContourSequence.append(rc)
    rs.save_as(rs_path)


def grid_image(path, size, spacing, origin, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)):
    """An empty image (NIfTI) that only carries a grid for masks to be rasterised on."""
    img = sitk.Image([int(v) for v in size], sitk.sitkInt16)
    img.SetSpacing([float(v) for v in spacing])
    img.SetOrigin([float(v) for v in origin])
    img.SetDirection([float(v) for v in direction])
    sitk.WriteImage(img, str(path))
    return path


def circle(centre, radius, n=360, plane="axial"):
    """(n, 3) points of a circle; axial circles lie at z = centre[2], sagittal ones at x = centre[0]."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    a, b = radius * np.cos(t), radius * np.sin(t)
    cx, cy, cz = centre
    if plane == "axial":
        return np.column_stack([cx + a, cy + b, np.full(n, cz)])
    return np.column_stack([np.full(n, cx), cy + a, cz + b])  # sagittal


def sphere_contours(centre, radius, positions, plane="axial", n=360):
    axis = 2 if plane == "axial" else 0
    out = []
    for p in positions:
        d = p - centre[axis]
        if radius**2 - d**2 > 0.01:
            c = list(centre)
            c[axis] = p
            out.append(circle(c, math.sqrt(radius**2 - d**2), n, plane))
    return out


def rewrite_dicom(files, change):
    """Read each DICOM file, apply change(dataset), write it back in place."""
    import pydicom

    for f in files:
        ds = pydicom.dcmread(f)
        change(ds)
        ds.save_as(f)


def write_tiny_ct_series(folder: Path, patient: str, series_uid: str, n_files: int, seed: int = 0):
    """n_files real CT files of 8 x 8 pixels in one series (a cohort's bulk at little cost): one file written by
    pydicom, the others its bytes with the SOP instance UID (random digits, as real ones look), InstanceNumber and
    slice position replaced by fixed-width values, so that every length stays right."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds = Dataset()
    ds.file_meta = meta
    ds.PatientID, ds.PatientName, ds.Modality = patient, patient, "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = f"{series_uid}.1", series_uid
    ds.FrameOfReferenceUID, ds.StudyDate, ds.SeriesNumber = f"{series_uid}.2", "20000101", 9
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Rows = ds.Columns = 8
    ds.PixelSpacing, ds.SliceThickness, ds.ImageOrientationPatient = [1, 1], 2.5, [1, 0, 0, 0, 1, 0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.PixelData = np.zeros((8, 8), np.int16).tobytes()
    width = 62 - len(series_uid)  # a UID of 63 characters, even (no padding byte that could move)
    uid_token, number_token, z_token = f"{series_uid}.{'9' * width}", "99999999", "999999.9"
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID = uid_token
    ds.InstanceNumber, ds.ImagePositionPatient = number_token, ["0", "0", z_token]
    template = folder / "template.dcm"
    ds.save_as(template, enforce_file_format=True)
    data = template.read_bytes()
    template.unlink()
    rng = np.random.default_rng(seed)
    digits = rng.integers(0, 10, (n_files, width))
    digits[:, 0] = rng.integers(1, 10, n_files)  # no leading zero in a UID component
    for i in range(n_files):
        uid = f"{series_uid}.{''.join(map(str, digits[i]))}"
        out = data.replace(uid_token.encode(), uid.encode()).replace(number_token.encode(), f"{i + 1:08d}".encode())
        (folder / f"1-{i + 1:05d}.dcm").write_bytes(out.replace(z_token.encode(), f"{2.5 * i:08.1f}".encode()))


def write_rtdose(
    path, dose: sitk.Image, for_uid="1.2.3.4", patient="TCGA-00-9999", summation="PLAN", plan_uid=None, beams=()
):
    """A multi-frame RTDOSE (Gy, axial, unsigned 32-bit with DoseGridScaling) of a dose image on an axis-aligned
    grid: frames at GridFrameOffsetVector from the first; plan_uid: the RTPLAN it references (with beams: the beam
    numbers of a per-beam dose, fraction group 1)."""
    values = sitk.GetArrayFromImage(dose).astype(np.float64)  # (frames, rows, columns)
    scaling = max(float(values.max()), 1e-6) / 4_000_000_000
    ds = _rt_dataset(RTDOSE_STORAGE, "RTDOSE", patient)
    ds.FrameOfReferenceUID = for_uid
    sx, sy, sz = dose.GetSpacing()
    ds.ImagePositionPatient = [f"{v:.6f}" for v in dose.GetOrigin()]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [f"{sy:.6f}", f"{sx:.6f}"]
    ds.SliceThickness = f"{sz:.6f}"
    ds.GridFrameOffsetVector = [f"{k * sz:.6f}" for k in range(values.shape[0])]
    ds.NumberOfFrames = values.shape[0]
    ds.FrameIncrementPointer = 0x3004000C
    ds.Rows, ds.Columns = values.shape[1], values.shape[2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit, ds.PixelRepresentation = 31, 0
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", "PHYSICAL", summation
    ds.DoseGridScaling = f"{scaling:.10e}"
    ds.PixelData = np.round(values / scaling).astype(np.uint32).tobytes()
    if plan_uid:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.481.5", plan_uid
        if beams:
            group = Dataset()
            group.ReferencedFractionGroupNumber = 1
            group.ReferencedBeamSequence = Sequence([Dataset() for _ in beams])
            for item, number in zip(group.ReferencedBeamSequence, beams):
                item.ReferencedBeamNumber = number
            ref.ReferencedFractionGroupSequence = Sequence([group])
        ds.ReferencedRTPlanSequence = Sequence([ref])
    ds.save_as(path, enforce_file_format=True)
    return path
