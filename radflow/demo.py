"""The embedded demo cohort: a small, synthetic, deterministic TCGA-HNSC-shaped TCIA download.

Everything here is synthetic. The barcodes use two made-up tissue source sites, "00" and "0Z", four imaged
patients each; each site has its own CT scanner model (ManufacturerModelName), and site 0Z's reconstructs with
more noise and a calibration offset (SCANNERS): a site effect for the harmonisation to remove.
The layout is the NBIA Data Retriever's: collection / patient / study / series / files. Next to the
collection folder the generator writes a GDC portal clinical.tsv (newer dotted column names) and
truth.json, which holds the analytic values the tests check against (ROI volumes, PET SUVmax, OS).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from radflow.dicom import write
from radflow.dicom.write import (
    CT_STORAGE,
    MR_STORAGE,
    PET_STORAGE,
    RTDOSE_STORAGE,
    RTPLAN_STORAGE,
    RTSTRUCT_STORAGE,
    Contour,
    Roi,
)

COLLECTION = "TCGA-HNSC"
SEED = 20261125

F18_HALF_LIFE_S = 6586.2

# Each site's CT scanner: its model name, a calibration offset of soft tissue (HU) and the noise's standard deviation.
SCANNERS = {
    "00": dict(model="Synthetic CT 1", hu_offset=0.0, noise_sd=8.0),
    "0Z": dict(model="Synthetic CT 2", hu_offset=12.0, noise_sd=13.0),
}


def site_of(patient_id: str) -> str:
    return patient_id.split("-")[1]


# How each demo patient's site spells its ROIs (the point: they differ) and which extra series it has.
PATIENTS = [
    dict(
        id="TCGA-00-0001",
        gtvp="GTV",
        gtvn="GTVn",
        parotid_l="Parotid_L",
        parotid_r="Parotid_R",
        cord="Cord",
        pet=True,
        rtdose=True,
        rtplan=True,
    ),
    dict(
        id="TCGA-00-0002",
        gtvp="GTVp",
        gtvn="GTV_Node",
        parotid_l="L Parotid",
        parotid_r="R Parotid",
        cord="SpinalCord",
        pet=True,
        scout=True,
    ),
    dict(
        id="TCGA-00-0003",
        gtvp="GTV_Primary",
        gtvn="GTV-N1",
        parotid_l="LT PAROTID",
        parotid_r="RT PAROTID",
        cord="Spinal Cord",
        mr=True,
        followup=dict(days=91, shrink=0.8, shift=(3.0, -4.0, 7.5)),
    ),
    dict(id="TCGA-00-0004", gtvp="GTV-1", gtvn="GTV_LN", parotid_l="Parotid Lt", parotid_r="Parotid Rt", cord="CORD"),
    dict(
        id="TCGA-0Z-0006",
        gtvp="GTV_P",
        gtvn="GTVnd",
        parotid_l="PAROTID_LT",
        parotid_r="PAROTID_RT",
        cord="Spinal_Cord",
    ),
    dict(
        id="TCGA-0Z-0007",
        gtvp="gtv primary",
        gtvn="gtv node",
        parotid_l="Lt Parotid",
        parotid_r="Rt Parotid",
        cord="cord",
    ),
    dict(
        id="TCGA-0Z-0008",
        gtvp="GTV-T",
        gtvn="GTV-N",
        parotid_l="Parotid L",
        parotid_r="Parotid R",
        cord="SpinalCord",
        followup=dict(days=182, shrink=0.7, shift=(-2.0, 5.0, -6.0)),
    ),
    dict(
        id="TCGA-0Z-0009", gtvp="GTV_1", gtvn="GTV_N2", parotid_l="L_Parotid", parotid_r="R_Parotid", cord="SPINAL CORD"
    ),
]
# One more patient is in the clinical file only: a case without images.
CLINICAL_ONLY = "TCGA-00-0005"


# ---------------------------------------------------------------------------------------------- shapes
@dataclass
class Ellipsoid:
    centre: tuple[float, float, float]
    axes: tuple[float, float, float]

    def section(self, z: float):
        """Semi-axes (a, b) of the cross-section at z, or None."""
        t = 1.0 - ((z - self.centre[2]) / self.axes[2]) ** 2
        if t <= 0:
            return None
        s = math.sqrt(t)
        return self.axes[0] * s, self.axes[1] * s

    def volume(self) -> float:
        return 4.0 / 3.0 * math.pi * self.axes[0] * self.axes[1] * self.axes[2]


@dataclass
class Cylinder:
    centre: tuple[float, float]
    radius: float
    z_range: tuple[float, float]

    def section(self, z: float):
        if self.z_range[0] <= z <= self.z_range[1]:
            return self.radius, self.radius
        return None

    def volume(self) -> float:
        return math.pi * self.radius**2 * (self.z_range[1] - self.z_range[0])


def _centre_xy(shape):
    return shape.centre[:2]


def inside(shape, x, y, z):
    """Boolean array: which points (x, y at one z) lie inside the shape's cross-section."""
    sec = shape.section(z)
    if sec is None:
        return np.zeros(np.broadcast(x, y).shape, bool)
    cx, cy = _centre_xy(shape)
    return ((x - cx) / sec[0]) ** 2 + ((y - cy) / sec[1]) ** 2 <= 1.0


def contour_polygon(shape, z, n_points=96):
    sec = shape.section(z)
    if sec is None or min(sec) < 0.5:
        return None
    cx, cy = _centre_xy(shape)
    t = np.linspace(0, 2 * np.pi, n_points, endpoint=False)
    return np.column_stack([cx + sec[0] * np.cos(t), cy + sec[1] * np.sin(t), np.full(n_points, z)])


@dataclass
class Anatomy:
    """A head-and-neck-like phantom in patient coordinates (mm, LPS)."""

    gtvp: Ellipsoid
    gtvn: Ellipsoid
    parotid_l: Ellipsoid
    parotid_r: Ellipsoid
    cord: Cylinder
    body_axes: tuple[float, float] = (75.0, 90.0)
    body_centre: tuple[float, float] = (0.0, 10.0)
    shift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rois: dict = field(default_factory=dict)

    def shifted(self, d):
        def mv(s):
            if isinstance(s, Cylinder):
                return Cylinder(
                    (s.centre[0] + d[0], s.centre[1] + d[1]), s.radius, (s.z_range[0] + d[2], s.z_range[1] + d[2])
                )
            return Ellipsoid(tuple(c + o for c, o in zip(s.centre, d)), s.axes)

        return Anatomy(
            mv(self.gtvp),
            mv(self.gtvn),
            mv(self.parotid_l),
            mv(self.parotid_r),
            mv(self.cord),
            self.body_axes,
            (self.body_centre[0] + d[0], self.body_centre[1] + d[1]),
            tuple(d),
        )

    def body(self, x, y):
        bx, by = self.body_centre
        return ((x - bx) / self.body_axes[0]) ** 2 + ((y - by) / self.body_axes[1]) ** 2 <= 1.0

    def inner_body(self, x, y):
        bx, by = self.body_centre
        return ((x - bx) / (self.body_axes[0] - 8)) ** 2 + ((y - by) / (self.body_axes[1] - 8)) ** 2 <= 1.0

    def disc(self, x, y, cx, cy, r):
        return (x - cx - self.shift[0]) ** 2 + (y - cy - self.shift[1]) ** 2 <= r * r


def make_anatomy(rng: np.random.Generator, z_range) -> Anatomy:
    rp = float(rng.uniform(12.0, 18.0))
    rn = float(rng.uniform(7.0, 10.0))
    gtvp = Ellipsoid(
        (float(rng.uniform(-18, -8)), float(rng.uniform(-34, -26)), float(rng.uniform(10, 20))), (rp, rp, rp)
    )
    gtvn = Ellipsoid(
        (float(rng.uniform(30, 38)), float(rng.uniform(-8, -2)), float(rng.uniform(-30, -20))), (rn, rn, rn)
    )
    parotid_l = Ellipsoid((50.0, 25.0, 40.0), (14.0, 18.0, 22.0))  # patient's left = +x in LPS
    parotid_r = Ellipsoid((-50.0, 25.0, 40.0), (14.0, 18.0, 22.0))
    cord = Cylinder((0.0, 60.0), 5.0, z_range)
    return Anatomy(gtvp, gtvn, parotid_l, parotid_r, cord)


# ------------------------------------------------------------------------------------------ grids, values
@dataclass
class SliceGrid:
    rows: int
    cols: int
    pixel: float
    thickness: float
    n_slices: int
    origin: tuple[float, float, float]

    def xy(self):
        x = self.origin[0] + np.arange(self.cols) * self.pixel
        y = self.origin[1] + np.arange(self.rows) * self.pixel
        return np.meshgrid(x, y)  # arrays (rows, cols)

    def z(self, k):
        return self.origin[2] + k * self.thickness


def ct_slice_hu(anat: Anatomy, x, y, z, rng, hu_offset=0.0, noise_sd=8.0) -> np.ndarray:
    hu = np.full(x.shape, -1000.0)
    body = anat.body(x, y)
    hu[body] = -90.0  # subcutaneous fat
    hu[anat.inner_body(x, y)] = 40.0  # soft tissue
    for par in (anat.parotid_l, anat.parotid_r):
        hu[inside(par, x, y, z)] = 15.0
    hu[anat.disc(x, y, 0.0, 36.0, 14.0)] = 700.0  # vertebral body
    hu[anat.disc(x, y, 0.0, 60.0, 11.0)] = 600.0  # neural arch around the canal
    hu[inside(anat.cord, x, y, z)] = 30.0
    tumour = inside(anat.gtvp, x, y, z)
    hu[tumour] = 65.0 + rng.normal(0.0, 18.0, int(tumour.sum()))
    node = inside(anat.gtvn, x, y, z)
    hu[node] = 55.0 + rng.normal(0.0, 12.0, int(node.sum()))
    noise = rng.normal(0.0, noise_sd, x.shape)
    hu[body] += noise[body] + hu_offset
    return hu


def mr_slice(anat: Anatomy, x, y, z, rng) -> np.ndarray:
    v = np.zeros(x.shape)
    body = anat.body(x, y)
    v[body] = 800.0
    v[anat.inner_body(x, y)] = 320.0
    for par in (anat.parotid_l, anat.parotid_r):
        v[inside(par, x, y, z)] = 600.0
    v[anat.disc(x, y, 0.0, 36.0, 14.0)] = 120.0
    v[anat.disc(x, y, 0.0, 60.0, 11.0)] = 90.0
    v[inside(anat.cord, x, y, z)] = 420.0
    tumour = inside(anat.gtvp, x, y, z)
    v[tumour] = 480.0 + rng.normal(0.0, 40.0, int(tumour.sum()))
    node = inside(anat.gtvn, x, y, z)
    v[node] = 450.0
    v[body] *= rng.normal(1.0, 0.03, int(body.sum()))
    return np.clip(v, 0, 4095)


def pet_slice_suv(anat: Anatomy, x, y, z, rng, lesion_suv) -> np.ndarray:
    suv = np.zeros(x.shape)
    body = anat.body(x, y)
    suv[body] = np.clip(rng.normal(1.0, 0.1, int(body.sum())), 0.6, 1.4)
    for par in (anat.parotid_l, anat.parotid_r):
        suv[inside(par, x, y, z)] = 2.0
    suv[inside(anat.gtvn, x, y, z)] = 0.6 * lesion_suv
    suv[inside(anat.gtvp, x, y, z)] = lesion_suv  # uniform: SUVmax is known exactly
    return suv


# --------------------------------------------------------------------------------------------- DICOM
def uid(*parts) -> str:
    return generate_uid(entropy_srcs=[str(SEED), *map(str, parts)])


def _fmt_ds(v: float) -> str:
    s = f"{v:.10g}"
    return s if len(s) <= 16 else f"{v:.8g}"


def _dataset(sop_class: str, sop_uid: str) -> Dataset:
    return write.new_dataset(sop_class, sop_uid, uid("radflow-demo-implementation"), charset="ISO_IR 100")


@dataclass
class Study:
    patient: str
    uid: str
    date: datetime
    description: str
    folder: Path
    sex: str
    weight: float
    scanner: dict = field(default_factory=dict)

    def fill(self, ds: Dataset, series_uid, number, modality, description, for_uid=None):
        # TCIA de-identification keeps the barcode as name and ID and removes birth dates.
        ds.PatientName = self.patient
        ds.PatientID = self.patient
        ds.PatientBirthDate = ""  # type 2: present and empty, as TCIA leaves it
        ds.PatientSex = self.sex
        ds.PatientWeight = _fmt_ds(self.weight)
        ds.StudyInstanceUID = self.uid
        ds.StudyDate = self.date.strftime("%Y%m%d")
        ds.StudyTime = self.date.strftime("%H%M%S")
        ds.StudyDescription = self.description
        ds.StudyID = "1"
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = number
        ds.SeriesDescription = description
        ds.Modality = modality
        ds.Manufacturer = "radflow synthetic"
        ds.ManufacturerModelName = self.scanner.get("model", "")
        ds.SeriesDate = ds.StudyDate
        ds.SeriesTime = ds.StudyTime
        if for_uid:
            ds.FrameOfReferenceUID = for_uid
            ds.PositionReferenceIndicator = ""

    def series_folder(self, number, description, series_uid) -> Path:
        # NBIA Data Retriever: "<number>.000000-<description>-<last 5 digits of the UID>"
        path = self.folder / f"{number}.000000-{description}-{series_uid[-5:]}"
        path.mkdir(parents=True, exist_ok=True)
        return path


_save = write.save


def write_image_series(
    study: Study,
    modality,
    sop_class,
    number,
    description,
    grid: SliceGrid,
    slices: list[np.ndarray],
    for_uid,
    extra=None,
    per_slice=None,
) -> dict:
    """Write one axial image series. `slices` hold stored values; `per_slice(k, ds)` adds slice tags."""
    series_uid = uid(study.patient, study.uid, "series", number)
    folder = study.series_folder(number, description, series_uid)
    sops = []
    for k, pixels in enumerate(slices):
        sop_uid = uid(series_uid, "sop", k)
        ds = _dataset(sop_class, sop_uid)
        study.fill(ds, series_uid, number, modality, description, for_uid)
        ds.InstanceNumber = k + 1
        z = grid.z(k)
        ds.ImagePositionPatient = [_fmt_ds(grid.origin[0]), _fmt_ds(grid.origin[1]), _fmt_ds(z)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [_fmt_ds(grid.pixel), _fmt_ds(grid.pixel)]
        ds.SliceThickness = _fmt_ds(grid.thickness)
        ds.SliceLocation = _fmt_ds(z)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        write.pixel_module(ds, pixels)
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        if per_slice:
            per_slice(k, ds)
        _save(ds, folder / f"1-{k + 1:03d}.dcm")
        sops.append((sop_uid, z))
    return dict(series_uid=series_uid, sop_class=sop_class, sops=sops, for_uid=for_uid, folder=str(folder))


def write_rtstruct(study: Study, number, image: dict, rois: list[tuple[str, object]]) -> dict:
    """An RTSTRUCT with one closed planar contour per ROI and image slice, placed exactly on the slices."""
    series_uid = uid(study.patient, study.uid, "rtstruct", number)
    sop_uid = uid(series_uid, "sop")
    ds = _dataset(RTSTRUCT_STORAGE, sop_uid)
    study.fill(ds, series_uid, number, "RTSTRUCT", "RTSTRUCT")
    ds.InstanceNumber = 1
    ds.StructureSetLabel = "RS"
    ds.StructureSetDate = ds.StudyDate
    ds.StructureSetTime = ds.StudyTime
    structures = []
    for n, (name, shape) in enumerate(rois, start=1):
        contours = [
            Contour(poly, image=(image["sop_class"], sop))
            for sop, z in image["sops"]
            if (poly := contour_polygon(shape, z)) is not None
        ]
        roi_type = "GTV" if name.upper().startswith("GTV") else "ORGAN"
        structures.append(Roi(name, contours, roi_type, color=[255, (60 * n) % 256, 0], algorithm="MANUAL"))
    images = dict(
        study_uid=study.uid,
        series_uid=image["series_uid"],
        sop_class=image["sop_class"],
        sop_uids=[sop for sop, _ in image["sops"]],
    )
    write.structure_set(ds, image["for_uid"], structures, images, decimals=4)
    folder = study.series_folder(number, "RTSTRUCT", series_uid)
    _save(ds, folder / "1-1.dcm")
    return dict(series_uid=series_uid, sop_uid=sop_uid)


# ----------------------------------------------------------------------------------------- the cohort
def _study(root: Path, patient: str, label: str, date: datetime, sex, weight) -> Study:
    study_uid = uid(patient, "study", label)
    folder = root / COLLECTION / patient / f"{date.strftime('%m-%d-%Y')}-NA-{label}-{study_uid[-5:]}"
    return Study(patient, study_uid, date, label, folder, sex, weight, SCANNERS[site_of(patient)])


def _ct(study, anat, grid, rng, for_uid, number=2, description="CT HEAD NECK"):
    slices = []
    x, y = grid.xy()
    for k in range(grid.n_slices):
        hu = ct_slice_hu(anat, x, y, grid.z(k), rng, study.scanner["hu_offset"], study.scanner["noise_sd"])
        slices.append(np.round(hu + 1024.0).astype(np.int16))
    extra = dict(RescaleIntercept="-1024", RescaleSlope="1", RescaleType="HU", KVP="120", ConvolutionKernel="STANDARD")
    return write_image_series(study, "CT", CT_STORAGE, number, description, grid, slices, for_uid, extra)


def _pet(study, anat, grid, rng, for_uid, truth, number=4):
    weight_kg = study.weight
    dose_bq = float(rng.uniform(300e6, 420e6))
    delay_s = float(np.round(rng.uniform(55, 75) * 60.0))  # whole seconds: DICOM times hold them exactly
    lesion_suv = float(np.round(rng.uniform(6.0, 11.0), 3))
    injection = study.date.replace(hour=9, minute=12, second=0)
    series_time = injection + timedelta(seconds=delay_s)
    decay = math.exp(-math.log(2) * delay_s / F18_HALF_LIFE_S)
    bqml_per_suv = dose_bq * decay / (weight_kg * 1000.0)
    x, y = grid.xy()
    stored, slopes = [], []
    for k in range(grid.n_slices):
        conc = pet_slice_suv(anat, x, y, grid.z(k), rng, lesion_suv) * bqml_per_suv
        # Vendors scale each slice to its own maximum: the rescale slope varies from slice to slice.
        slope = max(float(conc.max()) / 32000.0, 1e-3)
        slope = float(_fmt_ds(slope))
        slopes.append(slope)
        stored.append(np.round(conc / slope).astype(np.int16))

    radio = Dataset()
    radio.Radiopharmaceutical = "Fluorodeoxyglucose"
    radio.RadiopharmaceuticalStartTime = injection.strftime("%H%M%S.00")
    radio.RadiopharmaceuticalStartDateTime = injection.strftime("%Y%m%d%H%M%S.00")
    radio.RadionuclideTotalDose = _fmt_ds(dose_bq)
    radio.RadionuclideHalfLife = _fmt_ds(F18_HALF_LIFE_S)
    radio.RadionuclidePositronFraction = "0.9673"
    code = Dataset()
    code.CodeValue = "C-111A1"
    code.CodingSchemeDesignator = "SRT"
    code.CodeMeaning = "^18^Fluorine"
    radio.RadionuclideCodeSequence = Sequence([code])

    def per_slice(k, ds):
        ds.RescaleSlope = _fmt_ds(slopes[k])
        ds.RescaleIntercept = "0"
        ds.SeriesTime = series_time.strftime("%H%M%S.00")
        ds.SeriesDate = series_time.strftime("%Y%m%d")
        # Acquisition time moves with the bed position; SUV decay correction uses the series time.
        bed = k // 27
        ds.AcquisitionTime = (series_time + timedelta(seconds=150 * bed)).strftime("%H%M%S.00")
        ds.AcquisitionDate = ds.SeriesDate
        ds.ImageType = ["ORIGINAL", "PRIMARY"]

    extra = dict(
        Units="BQML",
        DecayCorrection="START",
        CorrectedImage=["DECY", "ATTN", "SCAT"],
        CountsSource="EMISSION",
        SeriesType=["WHOLE BODY", "IMAGE"],
        RadiopharmaceuticalInformationSequence=Sequence([radio]),
        NumberOfSlices=grid.n_slices,
    )
    info = write_image_series(study, "PT", PET_STORAGE, number, "PET AC", grid, stored, for_uid, extra, per_slice)
    truth.update(
        pet_series_uid=info["series_uid"],
        pet_lesion_suvmax=lesion_suv,
        pet_suv_per_bqml=1.0 / bqml_per_suv,
        pet_injected_dose_bq=dose_bq,
        pet_delay_s=delay_s,
    )
    return info


def _mr(study, anat, rng, truth, number=3):
    grid = SliceGrid(256, 256, 0.9375, 4.0, 36, (-119.53125, -109.53125, -68.0))
    x, y = grid.xy()
    slices = [np.round(mr_slice(anat, x, y, grid.z(k), rng)).astype(np.uint16) for k in range(grid.n_slices)]
    for_uid = uid(study.patient, "for", "mr")
    extra = dict(
        ScanningSequence="SE",
        SequenceVariant="NONE",
        MRAcquisitionType="2D",
        RepetitionTime="500",
        EchoTime="12",
        MagneticFieldStrength="1.5",
    )
    info = write_image_series(study, "MR", MR_STORAGE, number, "T1 AX", grid, slices, for_uid, extra)
    rt = write_rtstruct(study, number + 100, info, [("GTV", anat.gtvp)])
    truth.update(
        mr_series_uid=info["series_uid"], mr_rtstruct_series_uid=rt["series_uid"], mr_gtv_volume_mm3=anat.gtvp.volume()
    )
    return info


def _followup(root: Path, spec: dict, baseline: Study, anat: Anatomy, rng) -> dict:
    """A follow-up CT some days after the baseline study, in a study of its own: its own frame of reference (the
    patient lies a little differently), its own RTSTRUCT with the GTV only, and the GTV shrunk by a known factor in
    every semi-axis (volume factor shrink**3)."""
    f = spec["followup"]
    date = baseline.date + timedelta(days=f["days"], hours=2)
    study = _study(root, spec["id"], "FOLLOW UP", date, baseline.sex, baseline.weight)
    moved = anat.shifted(f["shift"])
    moved.gtvp = Ellipsoid(moved.gtvp.centre, tuple(a * f["shrink"] for a in moved.gtvp.axes))
    grid = SliceGrid(256, 256, 0.9765625, 3.0, 60, (-124.51171875, -114.51171875, -87.0))
    ct = _ct(study, moved, grid, rng, uid(spec["id"], "for", "ct-followup"), description="CT FOLLOW UP")
    rs = write_rtstruct(study, 100, ct, [(spec["gtvp"], moved.gtvp)])
    return dict(
        study_uid=study.uid,
        ct_series_uid=ct["series_uid"],
        rtstruct_series_uid=rs["series_uid"],
        day=f["days"],
        gtvp_original=spec["gtvp"],
        gtvp_volume_mm3=moved.gtvp.volume(),
        gtvp_volume_ratio=f["shrink"] ** 3,
    )


def _scout(study, for_uid, rng, number=1):
    series_uid = uid(study.patient, study.uid, "series", number)
    folder = study.series_folder(number, "Topogram", series_uid)
    ds = _dataset(CT_STORAGE, uid(series_uid, "sop", 0))
    study.fill(ds, series_uid, number, "CT", "Topogram 0.6 T20f", for_uid)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = ["-256", "0", "120"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]  # coronal
    ds.PixelSpacing = ["1", "1"]
    ds.SliceThickness = "1"
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    write.pixel_module(ds, rng.integers(0, 2000, (320, 512)).astype(np.uint16))
    _save(ds, folder / "1-1.dcm")
    return series_uid


DEMO_DOSE = dict(base_gy=60.0, gradient_gy_per_mm=0.25, axis="z")  # at the GTV's centre, and along z


def demo_dose(x, y, z, centre):
    """The demo's dose in Gy at patient points: DEMO_DOSE's base at the GTV's centre plus its gradient along z."""
    return DEMO_DOSE["base_gy"] + DEMO_DOSE["gradient_gy_per_mm"] * (np.asarray(z, float) - centre[2])


def _rtdose(study, ct: dict, anat, rtplan_uid, number=6):
    series_uid = uid(study.patient, study.uid, "rtdose", number)
    folder = study.series_folder(number, "RTDOSE", series_uid)
    ds = _dataset(RTDOSE_STORAGE, uid(series_uid, "sop"))
    study.fill(ds, series_uid, number, "RTDOSE", "RTDOSE", ct["for_uid"])
    nx, ny, nz, step = 48, 48, 30, 4.0
    origin = (-96.0, -86.0, -60.0)
    x = origin[0] + np.arange(nx) * step
    y = origin[1] + np.arange(ny) * step
    z = origin[2] + np.arange(nz) * step
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    # a known analytic dose: linear along z through the GTV's centre (DEMO_DOSE), which every interpolation between
    # voxel centres keeps exactly, so that each ROI's DVH has a closed form from its contours
    dose = demo_dose(xx, yy, zz, anat.gtvp.centre)
    scaling = float(dose.max()) / 60000.0
    write.dose_grid(ds, dose, origin, (step, step, step), scaling, "PLAN", fmt=_fmt_ds)
    write.plan_reference(ds, rtplan_uid)
    ds.InstanceNumber = 1
    _save(ds, folder / "1-1.dcm")
    return series_uid


def _rtplan(study, ct: dict, rtstruct: dict, number=5):
    series_uid = uid(study.patient, study.uid, "rtplan", number)
    folder = study.series_folder(number, "RTPLAN", series_uid)
    sop = uid(series_uid, "sop")
    ds = _dataset(RTPLAN_STORAGE, sop)
    study.fill(ds, series_uid, number, "RTPLAN", "RTPLAN", ct["for_uid"])
    ds.RTPlanLabel = "HN 70/35"
    ds.RTPlanDate = ds.StudyDate
    ds.RTPlanTime = ds.StudyTime
    ds.RTPlanGeometry = "PATIENT"
    ref = Dataset()
    ref.ReferencedSOPClassUID = RTSTRUCT_STORAGE
    ref.ReferencedSOPInstanceUID = rtstruct["sop_uid"]
    ds.ReferencedStructureSetSequence = Sequence([ref])
    fg = Dataset()
    fg.FractionGroupNumber = 1
    fg.NumberOfFractionsPlanned = 35
    fg.NumberOfBeams = 0
    fg.NumberOfBrachyApplicationSetups = 0
    ds.FractionGroupSequence = Sequence([fg])
    ds.InstanceNumber = 1
    _save(ds, folder / "1-1.dcm")
    return series_uid, sop


# ------------------------------------------------------------------------------------------ clinical
CLINICAL_COLUMNS = [
    "project.project_id",
    "cases.case_id",
    "cases.submitter_id",
    "cases.primary_site",
    "cases.disease_type",
    "demographic.age_at_index",
    "demographic.days_to_death",
    "demographic.gender",
    "demographic.vital_status",
    "demographic.race",
    "diagnoses.age_at_diagnosis",
    "diagnoses.ajcc_clinical_stage",
    "diagnoses.ajcc_pathologic_stage",
    "diagnoses.days_to_last_follow_up",
    "diagnoses.diagnosis_is_primary_disease",
    "diagnoses.primary_diagnosis",
    "diagnoses.submitter_id",
    "diagnoses.tissue_or_organ_of_origin",
    "treatments.submitter_id",
    "treatments.treatment_type",
]
# (vital status, days to death, follow-up per diagnosis row, age, sex, stage, site)
CLINICAL = {
    "TCGA-00-0001": ("Dead", 812.0, [503.0, None], 61, "male", "Stage IVA", "Tonsil, NOS"),
    "TCGA-00-0002": ("Alive", None, [1430.0, 1522.0], 55, "male", "Stage III", "Base of tongue, NOS"),
    "TCGA-00-0003": ("Dead", 365.0, [None], 68, "female", "Stage IVA", "Larynx, NOS"),
    "TCGA-00-0004": ("Alive", None, [2001.0], 49, "male", "Stage II", "Oropharynx, NOS"),
    "TCGA-00-0005": ("Alive", None, [900.0, 455.0], 72, "female", "Stage I", "Floor of mouth, NOS"),
    "TCGA-0Z-0006": ("Dead", 640.0, [200.0, None], 58, "male", "Stage IVB", "Hypopharynx, NOS"),
    "TCGA-0Z-0007": ("Alive", None, [1100.0, 1310.5], 63, "male", "Stage III", "Tonsil, NOS"),
    "TCGA-0Z-0008": ("Dead", 1210.0, [900.0], 70, "female", "Stage IVA", "Larynx, NOS"),
    "TCGA-0Z-0009": ("Alive", None, [540.0], 52, "male", "Stage II", "Oropharynx, NOS"),
}
TREATMENTS = ["Radiation Therapy, NOS", "Pharmaceutical Therapy, NOS"]


def _days(v):
    return "'--" if v is None else f"{v:.1f}"


def write_clinical(path: Path) -> dict:
    """A GDC portal clinical.tsv (newer dotted names): one row per diagnosis x treatment, '-- for missing."""
    lines = ["\t".join(CLINICAL_COLUMNS)]
    truth = {}
    for pid, (vital, dtd, followups, age, sex, stage, site) in CLINICAL.items():
        case_uuid = uid("case", pid)[-12:]
        for d, fu in enumerate(followups):
            primary = "true" if d == 0 else "false"
            for t, treatment in enumerate(TREATMENTS):
                row = {
                    "project.project_id": "TCGA-HNSC",
                    "cases.case_id": f"00000000-0000-4000-8000-{case_uuid}",
                    "cases.submitter_id": pid,
                    "cases.primary_site": "Other and ill-defined sites in lip, oral cavity and pharynx",
                    "cases.disease_type": "Squamous Cell Neoplasms",
                    "demographic.age_at_index": str(age),
                    "demographic.days_to_death": _days(dtd),
                    "demographic.gender": sex,
                    "demographic.vital_status": vital,
                    "demographic.race": "not reported",
                    "diagnoses.age_at_diagnosis": str(age * 365 + 100),
                    "diagnoses.ajcc_clinical_stage": "'--",
                    "diagnoses.ajcc_pathologic_stage": stage if d == 0 else "'--",
                    "diagnoses.days_to_last_follow_up": _days(fu),
                    "diagnoses.diagnosis_is_primary_disease": primary,
                    "diagnoses.primary_diagnosis": "Squamous cell carcinoma, NOS",
                    "diagnoses.submitter_id": f"{pid}_diagnosis{d + 1}",
                    "diagnoses.tissue_or_organ_of_origin": site,
                    "treatments.submitter_id": f"{pid}_treatment{t + 1}",
                    "treatments.treatment_type": treatment,
                }
                lines.append("\t".join(row[c] for c in CLINICAL_COLUMNS))
        known = [f for f in followups if f is not None]
        os_days = dtd if vital == "Dead" else max(known)
        truth[pid] = dict(os_days=os_days, os_event=int(vital == "Dead"), age=age, sex=sex, stage=stage)
    path.write_text("\n".join(lines) + "\n")
    return truth


# --------------------------------------------------------------------------------------------- entry
def generate_demo(out_dir) -> dict:
    """Write the demo cohort into out_dir; returns (and writes) the truth the tests check against."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth: dict = {"collection": COLLECTION, "seed": SEED, "patients": {}, "not_images": {}}
    ct_grid = SliceGrid(256, 256, 0.9765625, 2.5, 72, (-124.51171875, -114.51171875, -90.0))
    pet_grid = SliceGrid(128, 128, 2.5, 3.27, 54, (-158.75, -148.75, -88.0))
    for n, spec in enumerate(PATIENTS):
        pid = spec["id"]
        prng = np.random.default_rng([SEED, n])
        sex = CLINICAL[pid][4][0].upper()
        weight = float(np.round(prng.uniform(55, 95), 1))
        study = _study(out, pid, "RT PLANNING", datetime(2001 + n, 3 + n, 10 + n, 9, 0, 0), sex, weight)
        z0, z1 = ct_grid.z(0), ct_grid.z(ct_grid.n_slices - 1)
        anat = make_anatomy(prng, (z0, z1))
        for_uid = uid(pid, "for", "ct")
        ptruth = dict(study_uid=study.uid, site=site_of(pid), scanner_model=study.scanner["model"])
        ct = _ct(study, anat, ct_grid, prng, for_uid)
        rois = [
            (spec["gtvp"], anat.gtvp),
            (spec["gtvn"], anat.gtvn),
            (spec["parotid_l"], anat.parotid_l),
            (spec["parotid_r"], anat.parotid_r),
            (spec["cord"], anat.cord),
        ]
        rs = write_rtstruct(study, 100, ct, rois)
        standard = ["GTVp", "GTVn", "Parotid_L", "Parotid_R", "SpinalCord"]
        # The cord is contoured on every slice: its analytic volume is the slab stack it fills.
        thick = ct_grid.thickness
        vols = [
            anat.gtvp.volume(),
            anat.gtvn.volume(),
            anat.parotid_l.volume(),
            anat.parotid_r.volume(),
            math.pi * anat.cord.radius**2 * ct_grid.n_slices * thick,
        ]
        ptruth.update(
            ct_series_uid=ct["series_uid"],
            rtstruct_series_uid=rs["series_uid"],
            rois={orig: dict(standard=std, volume_mm3=v) for (orig, _), std, v in zip(rois, standard, vols)},
        )
        if spec.get("pet"):
            _pet(study, anat, pet_grid, prng, for_uid, ptruth)
        if spec.get("mr"):
            mr_anat = anat.shifted((4.0, -6.0, 12.0))  # an MR has its own frame of reference
            _mr(study, mr_anat, prng, ptruth)
        if spec.get("scout"):
            truth["not_images"]["scout"] = _scout(study, for_uid, prng)
        if spec.get("rtplan"):
            plan_series, plan_sop = _rtplan(study, ct, rs)
            truth["not_images"]["rtplan"] = plan_series
            if spec.get("rtdose"):
                truth["not_images"]["rtdose"] = _rtdose(study, ct, anat, plan_sop)
                ptruth["rtdose"] = dict(
                    series_uid=truth["not_images"]["rtdose"], centre=list(anat.gtvp.centre), **DEMO_DOSE
                )
        if spec.get("followup"):  # its own random stream: the baseline series stay as they were
            ptruth["followup"] = _followup(out, spec, study, anat, np.random.default_rng([SEED, n, 1]))
        truth["patients"][pid] = ptruth
    clinical = write_clinical(out / "clinical.tsv")
    truth["clinical"] = clinical
    truth["clinical_only"] = [CLINICAL_ONLY]
    (out / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True))
    return truth
