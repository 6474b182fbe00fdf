"""Real DICOM objects for tests (radflow.dicom.write, the one DICOM writer): RTSTRUCTs from analytic contours,
RTDOSEs, image grids, a cohort's bulk of tiny CT files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.uid import generate_uid

from radflow.dicom import write
from radflow.dicom.write import CT_STORAGE, RTDOSE_STORAGE, RTSTRUCT_STORAGE, Contour, Roi


def _rt_dataset(sop_class: str, modality: str, patient: str):
    """A new RT object's SOP, patient, study and series attributes (fresh UIDs)."""
    ds = write.new_dataset(sop_class)
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
    structures = [
        Roi(
            name,
            [Contour(pts, (kinds or {}).get(name, "CLOSED_PLANAR")) for pts in contours],
            roi_type=roi_types.get(name, "") if roi_types is not None else None,
        )
        for name, contours in rois.items()
    ]
    write.structure_set(ds, for_uid, structures, decimals=6)
    write.save(ds, path)
    return path


def add_roi(rs_path: Path, name: str, contours: list[tuple[str, np.ndarray]] | None):
    """Append an ROI to an RTSTRUCT: contours as (ContourGeometricType, (N, 3) points); None = no contours."""
    rs = pydicom.dcmread(rs_path)
    listed = None if contours is None else [Contour(pts, kind) for kind, pts in contours]
    write.append_roi(rs, Roi(name, listed, color=[255, 0, 0], algorithm="MANUAL"))
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
    width = 62 - len(series_uid)  # a UID of 63 characters, even (no padding byte that could move)
    uid_token, number_token, z_token = f"{series_uid}.{'9' * width}", "99999999", "999999.9"
    ds = write.new_dataset(CT_STORAGE, uid_token)
    ds.PatientID, ds.PatientName, ds.Modality = patient, patient, "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = f"{series_uid}.1", series_uid
    ds.FrameOfReferenceUID, ds.StudyDate, ds.SeriesNumber = f"{series_uid}.2", "20000101", 9
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelSpacing, ds.SliceThickness, ds.ImageOrientationPatient = [1, 1], 2.5, [1, 0, 0, 0, 1, 0]
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    write.pixel_module(ds, np.zeros((8, 8), np.int16))
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
    write.dose_grid(ds, values, dose.GetOrigin(), dose.GetSpacing(), scaling, summation, scaling_text=f"{scaling:.10e}")
    if plan_uid:
        write.plan_reference(ds, plan_uid, beams)
    write.save(ds, path)
    return path
