"""Conversion keeps the DICOM geometry exactly; values are HU, SUVbw, or as stored."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from conftest import REFERENCE
from pydicom.uid import JPEG2000Lossless, RLELossless

from radflow.dicom.convert import ConversionError, convert_series, read_series
from radflow.index import series_files


def _files(index_tables, uid):
    return series_files(index_tables["instances"], uid)


def test_ct_geometry_and_values_match_simpleitk_reader(index_tables, truth, tmp_path):
    uid = truth["patients"]["TCGA-00-0002"]["ct_series_uid"]
    files = _files(index_tables, uid)
    convert_series(files, tmp_path / "ct.nii.gz")
    ours = sitk.ReadImage(str(tmp_path / "ct.nii.gz"))
    # SimpleITK's own DICOM series reader is an independent reference for geometry and HU
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader().GetGDCMSeriesFileNames(str(files[0].rsplit("/", 1)[0])))
    ref = reader.Execute()
    assert ours.GetSize() == ref.GetSize() == (256, 256, 72)
    assert np.allclose(ours.GetOrigin(), ref.GetOrigin(), atol=1e-4)
    assert np.allclose(ours.GetSpacing(), ref.GetSpacing(), atol=1e-5)
    assert np.allclose(ours.GetDirection(), ref.GetDirection(), atol=1e-6)
    assert np.array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(ref).astype(np.int16))


def test_pet_is_suv_with_per_slice_slopes(index_tables, truth, tmp_path):
    p = truth["patients"]["TCGA-00-0001"]
    files = _files(index_tables, p["pet_series_uid"])
    slopes = {float(pydicom.dcmread(f, stop_before_pixels=True).RescaleSlope) for f in files}
    assert len(slopes) > 10  # the demo PET really varies its slope per slice
    sidecar = convert_series(files, tmp_path / "pet.nii.gz")
    suv = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "pet.nii.gz")))
    assert suv.dtype == np.float32
    assert suv.max() == pytest.approx(p["pet_lesion_suvmax"], rel=1e-4)
    assert sidecar["suv"]["weight_kg"] > 0 and sidecar["suv"]["decay_correction"] == "START"
    assert json.loads((tmp_path / "pet.json").read_text())["series_uid"] == p["pet_series_uid"]


def test_slice_order_does_not_depend_on_file_order(index_tables, truth, tmp_path):
    files = _files(index_tables, truth["patients"]["TCGA-00-0003"]["mr_series_uid"])
    _, a, grid_a, _ = read_series(files)
    _, b, grid_b, _ = read_series(list(reversed(files)))
    assert grid_a == grid_b and np.array_equal(a, b)


def test_two_series_are_refused(index_tables, truth):
    p = truth["patients"]["TCGA-00-0001"]
    mixed = _files(index_tables, p["ct_series_uid"])[:2] + _files(index_tables, p["pet_series_uid"])[:2]
    with pytest.raises(ConversionError, match="2 series"):
        read_series(mixed)


# ----------------------------------------------------------------------- geometry against references

IBSI = REFERENCE / "ibsi"
IBSI_CASES = {
    "ct_phantom": ("ibsi_1_ct_radiomics_phantom/dicom/image", "ibsi_1_ct_radiomics_phantom/nifti/image"),
    "sts_ct": ("ibsi_validation/dicom/STS_001/CT/image", "ibsi_validation/nifti/STS_001/CT_image.nii.gz"),
    "sts_mr": ("ibsi_validation/dicom/STS_001/MR_T1/image", "ibsi_validation/nifti/STS_001/MR_T1_image.nii.gz"),
    "sts_pet": ("ibsi_validation/dicom/STS_001/PET/image", "ibsi_validation/nifti/STS_001/PET_image.nii.gz"),
}


def _nifti(path: Path) -> Path:
    return path if path.is_file() else next(path.glob("*.nii*"))


def _assert_same_image(ours: sitk.Image, ref: sitk.Image, scale=1.0, atol=1e-4, vtol=0.0):
    # compare in one orientation: tools store rows in different orders, the patient space must agree
    a, b = sitk.DICOMOrient(ours, "LPS"), sitk.DICOMOrient(ref, "LPS")
    assert a.GetSize() == b.GetSize()
    assert np.allclose(a.GetOrigin(), b.GetOrigin(), atol=atol)
    assert np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-6)
    assert np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
    va = sitk.GetArrayFromImage(a).astype(np.float64) / scale
    vb = sitk.GetArrayFromImage(b).astype(np.float64)
    assert np.abs(va - vb).max() <= vtol * max(1.0, np.abs(vb).max())


@pytest.mark.parametrize("case", sorted(IBSI_CASES))
def test_geometry_and_values_equal_ibsi_nifti(case, tmp_path):
    dicom, nifti = (IBSI / p for p in IBSI_CASES[case])
    if not dicom.is_dir():
        pytest.skip(f"{dicom} is not on this machine")
    convert_series(sorted(str(p) for p in dicom.iterdir()), tmp_path / "ours.nii.gz")
    _assert_same_image(sitk.ReadImage(str(tmp_path / "ours.nii.gz")), sitk.ReadImage(str(_nifti(nifti))), vtol=1e-6)


def _dcm2niix(folder: Path, out: Path) -> sitk.Image:
    exe = shutil.which("dcm2niix", path=str(Path(sys.executable).parent)) or shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix (PyPI package dcm2niix) is not installed")
    out.mkdir()
    subprocess.run([exe, "-z", "y", "-f", "img", "-o", str(out), str(folder)], check=True, capture_output=True)
    return sitk.ReadImage(str(out / "img.nii.gz"))


@pytest.mark.parametrize("case", sorted(IBSI_CASES) + ["demo_ct", "demo_pet", "demo_mr"])
def test_geometry_and_values_equal_dcm2niix(case, index_tables, truth, tmp_path):
    if case.startswith("demo"):
        key = {
            "demo_ct": ("TCGA-00-0001", "ct"),
            "demo_pet": ("TCGA-00-0001", "pet"),
            "demo_mr": ("TCGA-00-0003", "mr"),
        }[case]
        files = series_files(index_tables["instances"], truth["patients"][key[0]][f"{key[1]}_series_uid"])
        folder = Path(files[0]).parent
    else:
        folder = IBSI / IBSI_CASES[case][0]
        if not folder.is_dir():
            pytest.skip(f"{folder} is not on this machine")
    sidecar = convert_series(sorted(str(p) for p in folder.iterdir()), tmp_path / "ours.nii.gz")
    ref = _dcm2niix(folder, tmp_path / "dcm2niix")
    # dcm2niix keeps PET in Bq/ml (one float32 scale); ours is SUVbw: divide by the SUV factor
    scale = (sidecar.get("suv") or {}).get("suv_factor") or 1.0
    _assert_same_image(sitk.ReadImage(str(tmp_path / "ours.nii.gz")), ref, scale=scale, atol=1e-4, vtol=1e-6)


def _gdcm_jpeg_lossless(src: str, dst: str):
    import gdcm

    reader = gdcm.ImageReader()
    reader.SetFileName(src)
    assert reader.Read()
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
    change.SetInput(reader.GetImage())
    assert change.Change()
    writer = gdcm.ImageWriter()
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    writer.SetFileName(dst)
    assert writer.Write()


@pytest.mark.parametrize("syntax", ["RLE Lossless", "JPEG 2000 Lossless", "JPEG Lossless SV1"])
@pytest.mark.parametrize("series", ["ct", "pet", "mr"])
def test_compressed_copies_give_the_same_volume(syntax, series, index_tables, truth, tmp_path):
    patient = "TCGA-00-0003" if series == "mr" else "TCGA-00-0001"
    files = series_files(index_tables["instances"], truth["patients"][patient][f"{series}_series_uid"])
    copies = []
    for n, f in enumerate(files):
        dst = str(tmp_path / f"{n:03d}.dcm")
        if syntax == "JPEG Lossless SV1":
            _gdcm_jpeg_lossless(f, dst)
        else:
            ds = pydicom.dcmread(f)
            ds.compress(RLELossless if syntax.startswith("RLE") else JPEG2000Lossless)
            ds.save_as(dst)
        copies.append(dst)
    plain = convert_series(files, tmp_path / "plain.nii.gz")
    packed = convert_series(copies, tmp_path / "packed.nii.gz")
    assert packed["transfer_syntax"] != plain["transfer_syntax"]
    a = sitk.ReadImage(str(tmp_path / "plain.nii.gz"))
    b = sitk.ReadImage(str(tmp_path / "packed.nii.gz"))
    assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    assert a.GetOrigin() == b.GetOrigin() and a.GetSpacing() == b.GetSpacing()
