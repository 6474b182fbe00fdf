"""SUVbw: analytic factors, named missing tags, and the IBSI SUV digital reference objects."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from conftest import REFERENCE
from radflow.convert import convert_series
from radflow.suv import SUVError, suv_bw_factor

DRO = REFERENCE / "ibsi-suv-dro" / "DRO"


def pet(**overrides):
    ds = Dataset()
    ds.Units, ds.DecayCorrection, ds.PatientWeight = "BQML", "START", "80"
    ds.SeriesDate, ds.SeriesTime = "20200101", "100000"
    radio = Dataset()
    radio.RadionuclideTotalDose, radio.RadionuclideHalfLife = "400000000", "6586.2"
    radio.RadiopharmaceuticalStartTime = "090000"
    ds.RadiopharmaceuticalInformationSequence = Sequence([radio])
    for k, v in overrides.items():
        if v is None:
            delattr(ds, k)
        else:
            setattr(ds, k, v)
    return ds


def test_factor_is_weight_over_decayed_dose():
    factor, info = suv_bw_factor([pet()])
    assert factor == pytest.approx(80000 / (400e6 * math.exp(-math.log(2) * 3600 / 6586.2)), rel=1e-12)
    assert info["decay_s"] == 3600


def test_injection_before_midnight():
    ds = pet(SeriesTime="003000")
    ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartTime = "233000"
    _, info = suv_bw_factor([ds])
    assert info["decay_s"] == 3600 and "midnight" in info["injection_time_source"]


def test_missing_tags_are_named():
    with pytest.raises(SUVError, match="PatientWeight"):
        suv_bw_factor([pet(PatientWeight=None)])
    ds = pet()
    del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose
    with pytest.raises(SUVError, match="RadionuclideTotalDose"):
        suv_bw_factor([ds])


@pytest.mark.parametrize("name", ["DRO_0_0", "DRO_1_0", "DRO_3_1", "DRO_3_3", "DRO_4_0", "DRO_4_1", "DRO_4_2",
                                  "DRO_5_0"])
def test_ibsi_suv_dro(name, tmp_path):
    """IBSI SUV manual DROs: SUVbw inside the reference mask has min 0.20, median 1.00, max 4.00."""
    if not DRO.is_dir():
        pytest.skip(f"{DRO} is not on this machine")
    out = tmp_path / "pet.nii.gz"
    convert_series(sorted(str(p) for p in (DRO / name / "PT").iterdir()), out)
    image = sitk.ReadImage(str(out))
    mask = sitk.ReadImage(str(next((DRO / name / "mask").glob("*.nii*"))))
    assert np.allclose(image.GetOrigin(), mask.GetOrigin(), atol=1e-3)
    values = sitk.GetArrayFromImage(image)[sitk.GetArrayFromImage(mask) > 0]
    assert [round(float(v), 2) for v in (values.min(), np.median(values), values.max())] == [0.20, 1.00, 4.00]
