"""Conversion keeps the DICOM geometry exactly; values are HU, SUVbw, or as stored."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from radflow.convert import ConversionError, convert_series, read_series
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
