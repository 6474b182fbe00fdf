"""SUVbw by the IBSI SUV manual: its 17 digital reference objects, and each rule on its own."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import REFERENCE
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radflow.cli import main as radflow
from radflow.dicom.suv import SUVError, suv_bw_factor, suv_factors, suv_tags

DRO = REFERENCE / "ibsi-suv-dro" / "DRO"
ALL_DROS = [
    "DRO_0_0",
    "DRO_1_0",
    "DRO_2_0",
    "DRO_2_1",
    "DRO_2_2",
    "DRO_2_3",
    "DRO_2_4",
    "DRO_2_5",
    "DRO_3_0",
    "DRO_3_1",
    "DRO_3_2",
    "DRO_3_3",
    "DRO_3_4",
    "DRO_4_0",
    "DRO_4_1",
    "DRO_4_2",
    "DRO_5_0",
]
LAMBDA_F18 = math.log(2) / 6586.2


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


@pytest.mark.parametrize("name", ALL_DROS)
def test_ibsi_suv_dro(name, tmp_path):
    """`radflow convert DRO_x/PT out.nii.gz` gives SUVbw 0.20 / 1.00 / 4.00 inside DRO_mask.nii.gz. DRO_2_3 stores
    SUVbsa quantised to 0.01, so the Du Bois back-computation gives 0.189 / 0.985 / 3.977 there."""
    if not DRO.is_dir():
        pytest.skip(f"{DRO} is not on this machine")
    out = tmp_path / "out.nii.gz"
    assert radflow(["convert", str(DRO / name / "PT"), str(out)]) == 0
    image = sitk.ReadImage(str(out))
    mask = sitk.ReadImage(str(DRO / name / "mask" / "DRO_mask.nii.gz"))
    assert np.allclose(image.GetOrigin(), mask.GetOrigin(), atol=1e-3) and image.GetSize() == mask.GetSize()
    values = sitk.GetArrayFromImage(image)[sitk.GetArrayFromImage(mask) > 0]
    stats = (values.min(), np.median(values), values.max())
    if name == "DRO_2_3":
        assert [round(float(v), 3) for v in stats] == [0.189, 0.985, 3.977]
    else:
        assert [round(float(v), 2) for v in stats] == [0.20, 1.00, 4.00]


def test_factor_is_weight_over_decayed_dose():
    factor, info = suv_bw_factor([pet()])
    assert factor == pytest.approx(80000 / (400e6 * math.exp(-LAMBDA_F18 * 3600)), rel=1e-12)
    assert info["decay_s"] == 3600 and info["reference_time_source"] == "SeriesDate/SeriesTime"


def test_injection_before_midnight():
    ds = pet(SeriesTime="003000")
    ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartTime = "233000"
    _, info = suv_bw_factor([ds])
    assert info["decay_s"] == 3600 and "midnight" in info["injection_time_source"]


def test_start_datetime_wins_over_time():
    ds = pet()
    ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime = "20200101083000"
    _, info = suv_bw_factor([ds])
    assert info["decay_s"] == 5400


def test_ge_private_scan_datetime_wins():
    ds = pet(SeriesTime="103000", AcquisitionTime="100500")  # a post-processed series
    ds.add_new((0x0009, 0x0010), "LO", "GEMS_PETD_01")
    ds.add_new((0x0009, 0x100D), "DT", "20200101100000")
    _, info = suv_bw_factor([ds])
    assert info["decay_s"] == 3600 and "0009,100D" in info["reference_time_source"]
    # the same number under another vendor's private creator is not GE's scan datetime
    ds[0x0009, 0x0010].value = "SOMEONE_ELSE"
    assert suv_tags(ds)["ge_scan_datetime"] == ""


def test_reference_time_back_computed_when_series_time_is_late():
    # acquired 10:02:30, frame reference 450 s, duration 603 s -> corrected to 10:00:00 (as DRO_3_2)
    ds = pet(SeriesTime="103000", AcquisitionTime="100230", FrameReferenceTime="450000", ActualFrameDuration="603000")
    _, info = suv_bw_factor([ds])
    average = math.log(LAMBDA_F18 * 603 / (1 - math.exp(-LAMBDA_F18 * 603))) / LAMBDA_F18
    assert info["decay_s"] == pytest.approx(3600 + 150 + average - 450, abs=1e-6)
    assert "back-computed" in info["reference_time_source"]


def test_decay_correction_none_is_per_slice():
    slices = [
        suv_tags(pet(DecayCorrection="NONE", AcquisitionTime=t, ActualFrameDuration="120000"))
        for t in ("100000", "100200")
    ]
    factors, _ = suv_factors(slices)
    # a later slice has decayed longer: its factor is larger by exp(lambda * 120 s)
    assert factors[1] / factors[0] == pytest.approx(math.exp(LAMBDA_F18 * 120), rel=1e-12)
    frame = LAMBDA_F18 * 120 / (1 - math.exp(-LAMBDA_F18 * 120))
    assert factors[0] == pytest.approx(80000 / 400e6 * frame * math.exp(LAMBDA_F18 * 3600), rel=1e-12)


def test_units_and_body_size_rules():
    assert suv_bw_factor([pet(Units="GML")])[0] == 1.0
    ibw, info = suv_bw_factor([pet(Units="GML", SUVType="IBW", PatientSize="1.80", PatientSex="F")])
    assert ibw == pytest.approx(80 / (45.5 + 0.91 * 28))
    bsa, _ = suv_bw_factor([pet(Units="CM2ML", SUVType="BSA", PatientSize="1.80")])
    assert bsa == pytest.approx(80000 / (0.007184 * 180**0.725 * 80**0.425 * 1e4))
    with pytest.raises(SUVError, match="PatientSize"):
        suv_bw_factor([pet(Units="GML", SUVType="LBM")])


def test_dose_in_mbq_and_weight_in_grams_are_recognised_and_said():
    bq, _ = suv_bw_factor([pet()])
    mbq, info = suv_bw_factor([pet(PatientWeight="80000")])
    assert mbq == pytest.approx(bq) and "grams" in info["warnings"][0]
    ds = pet()
    ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose = "400"
    factor, info = suv_bw_factor([ds])
    assert factor == pytest.approx(bq) and "MBq" in info["warnings"][0]


@pytest.mark.parametrize(
    "change,named",
    [
        (dict(PatientWeight=None), "PatientWeight"),
        (dict(Units=None), "Units"),
        (dict(DecayCorrection=None), "DecayCorrection"),
        (dict(Units="PROPCNTS"), "PROPCNTS"),
        (dict(Units="CNTS"), "7053,1000"),
        (dict(RescaleIntercept="5"), "RescaleIntercept"),
        (dict(RadiopharmaceuticalInformationSequence=None), "RadiopharmaceuticalInformationSequence"),
    ],
)
def test_missing_or_unusable_tags_are_named(change, named):
    with pytest.raises(SUVError, match=named.replace("(", r"\(")):
        suv_bw_factor([pet(**change)])
    ds = pet()
    del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose
    with pytest.raises(SUVError, match="RadionuclideTotalDose"):
        suv_bw_factor([ds])
