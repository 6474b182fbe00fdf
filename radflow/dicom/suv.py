"""PET voxel values to body-weight SUV, following the IBSI SUV manual (../shared/reference/ibsi-suv-dro/docs).

SUVbw = value * weight [g] / dose [Bq] decayed to the time the image was decay-corrected to.
The factor is computed per slice (DecayCorrection NONE differs per acquisition time) from a flat dict of the
tags that matter (`suv_tags`), so that the index can check a series from its headers alone and the conversion
applies exactly the same rule. A required tag that is missing raises SUVError naming the tags: never a silent
factor of 1.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np


class SUVError(ValueError):
    """The SUV factor cannot be computed from this series' headers."""


# Above this a dose is in Bq; below it, in MBq (FDG doses are ~1e8 Bq; the manual's histogram has peaks at
# 4e2 and 4e8). A dose between 1e5 and 1e6 Bq fits neither and is refused.
MBQ_LIMIT = 1e5
BQ_MINIMUM = 1e6


def _get(ds, keyword, default=""):
    v = ds.get(keyword, default) if ds is not None else default
    return default if v is None else v


def _private(ds, group, element, creator):
    """A private tag in block 0x10, trusted only when the block's creator is the expected one (or absent,
    as after some anonymisers); another vendor's tag at the same number is ignored."""
    try:
        owner = ds.get((group, 0x0010))
        if owner is not None and creator not in str(owner.value).upper():
            return ""
        value = ds[group, element].value
    except (KeyError, TypeError, AttributeError):
        return ""
    return "" if value is None else str(value).strip()


def suv_tags(ds) -> dict:
    """The tags of one PET slice that decide its SUV factor, as plain strings (empty when absent)."""
    seq = _get(ds, "RadiopharmaceuticalInformationSequence", None)
    radio = seq[0] if seq else None
    tags = dict(
        units=str(_get(ds, "Units")).strip().upper(),
        suv_type=str(_get(ds, "SUVType")).strip().upper(),
        decay_correction=str(_get(ds, "DecayCorrection")).strip().upper(),
        series_date=str(_get(ds, "SeriesDate")).strip(),
        series_time=str(_get(ds, "SeriesTime")).strip(),
        acquisition_date=str(_get(ds, "AcquisitionDate")).strip(),
        acquisition_time=str(_get(ds, "AcquisitionTime")).strip(),
        frame_reference_time=str(_get(ds, "FrameReferenceTime")).strip(),
        actual_frame_duration=str(_get(ds, "ActualFrameDuration")).strip(),
        patient_weight=str(_get(ds, "PatientWeight")).strip(),
        patient_size=str(_get(ds, "PatientSize")).strip(),
        patient_sex=str(_get(ds, "PatientSex")).strip().upper(),
        rescale_intercept=str(_get(ds, "RescaleIntercept")).strip(),
        radiopharmaceutical_sequence="yes" if radio is not None else "",
        dose=str(_get(radio, "RadionuclideTotalDose")).strip(),
        half_life=str(_get(radio, "RadionuclideHalfLife")).strip(),
        injection_time=str(_get(radio, "RadiopharmaceuticalStartTime")).strip(),
        injection_datetime=str(_get(radio, "RadiopharmaceuticalStartDateTime")).strip(),
        ge_scan_datetime=_private(ds, 0x0009, 0x100D, "GEMS_PETD"),
        philips_suv_scale=_private(ds, 0x7053, 0x1000, "PHILIPS"),
        philips_activity_scale=_private(ds, 0x7053, 0x1009, "PHILIPS"),
    )
    return tags


def _dicom_datetime(date: str, time: str) -> datetime:
    date, time = str(date).strip(), str(time).strip().replace(":", "")
    hh = int(time[0:2])
    mm = int(time[2:4]) if len(time) >= 4 else 0
    ss = float(time[4:]) if len(time) > 4 else 0.0
    return datetime.strptime(date[:8], "%Y%m%d") + timedelta(hours=hh, minutes=mm, seconds=ss)


def _dt(value: str) -> datetime:
    value = str(value).strip()
    value = value.split("+")[0].split("-")[0] if len(value) > 8 else value  # drop a UTC offset
    return _dicom_datetime(value[:8], value[8:] or "000000")


def _number(tags: dict, key: str) -> float:
    try:
        return float(tags[key])
    except (KeyError, TypeError, ValueError):
        return math.nan


def _decay_constant(tags) -> float:
    return math.log(2) / _number(tags, "half_life")


def _acquisition(tags, date_fallback) -> datetime | None:
    if not tags["acquisition_time"]:
        return None
    return _dicom_datetime(tags["acquisition_date"] or date_fallback, tags["acquisition_time"])


def _average_count_time(lam: float, duration_s: float) -> float:
    """Seconds after the frame start at which the decaying count rate equals its frame average."""
    return math.log(lam * duration_s / (1.0 - math.exp(-lam * duration_s))) / lam


def reference_time(slices: list[dict]) -> tuple[datetime, str, list[str]]:
    """The time a DecayCorrection START series was corrected to (IBSI SUV manual, after QIBA):
    1. GE's private PET scan datetime (0009,100D) when present (GE derives SeriesTime from it);
    2. SeriesDate/SeriesTime, unless it is later than the earliest acquisition (a post-processed series);
    3. back-computed from AcquisitionTime, FrameReferenceTime and ActualFrameDuration."""
    first = slices[0]
    warnings: list[str] = []
    if first["ge_scan_datetime"]:
        # GE writes SeriesDate/SeriesTime from this scan datetime; it survives post-processing, so it wins.
        return _dt(first["ge_scan_datetime"]), "GE private PET scan datetime (0009,100D)", warnings
    series = _dicom_datetime(first["series_date"], first["series_time"])
    acquisitions = [a for a in (_acquisition(t, first["series_date"]) for t in slices) if a is not None]
    if not acquisitions or series <= min(acquisitions):
        return series, "SeriesDate/SeriesTime", warnings
    lam = _decay_constant(first)
    refs = []
    for t in slices:
        acq = _acquisition(t, first["series_date"])
        frame_ref, duration = _number(t, "frame_reference_time"), _number(t, "actual_frame_duration")
        if acq is None or math.isnan(frame_ref) or math.isnan(duration) or duration <= 0:
            raise SUVError(
                "SeriesTime is later than AcquisitionTime (a post-processed series) and the reference "
                "time cannot be back-computed: AcquisitionTime, FrameReferenceTime or "
                "ActualFrameDuration missing"
            )
        refs.append(acq + timedelta(seconds=_average_count_time(lam, duration / 1000.0) - frame_ref / 1000.0))
    refs.sort()
    spread = (refs[-1] - refs[0]).total_seconds()
    if spread > 1.0:
        warnings.append(f"back-computed reference times differ by {spread:.1f} s between slices; the earliest is used")
    return refs[0], "back-computed from AcquisitionTime + average count time - FrameReferenceTime", warnings


def _injection(tags, scan: datetime) -> tuple[datetime, str]:
    if tags["injection_datetime"]:
        return _dt(tags["injection_datetime"]), "RadiopharmaceuticalStartDateTime"
    injection = _dicom_datetime(scan.strftime("%Y%m%d"), tags["injection_time"])
    source = "RadiopharmaceuticalStartTime on the scan date"
    if injection > scan:  # injected before midnight, scanned after it
        injection -= timedelta(days=1)
        source += " (the day before: injection before midnight)"
    return injection, source


def _body_factor(kind: str, weight: float, height_cm: float, sex: str) -> float:
    """LBM, IBW (kg) or BSA (m2) by the formulas the IBSI SUV manual lists; sex O takes the mean of M and F."""

    def one(s):
        if kind == "LBM":
            return (
                1.10 * weight - 120 * (weight / height_cm) ** 2
                if s == "M"
                else 1.07 * weight - 148 * (weight / height_cm) ** 2
            )
        if kind == "LBMJAMES128":
            return (
                1.10 * weight - 128 * (weight / height_cm) ** 2
                if s == "M"
                else 1.07 * weight - 148 * (weight / height_cm) ** 2
            )
        if kind == "LBMJANMA":
            bmi = weight / (height_cm / 100.0) ** 2
            return 9270 * weight / (6680 + 216 * bmi) if s == "M" else 9270 * weight / (8780 + 244 * bmi)
        if kind == "IBW":
            return 48.0 + 1.06 * (height_cm - 152) if s == "M" else 45.5 + 0.91 * (height_cm - 152)
        if kind == "BSA":
            return 0.007184 * height_cm**0.725 * weight**0.425
        raise SUVError(f"unknown SUVType {kind!r}")

    if kind == "BSA" or sex in ("M", "F"):
        return one(sex)
    return (one("M") + one("F")) / 2.0


def _missing(slices, keys) -> list[str]:
    names = dict(
        units="Units",
        decay_correction="DecayCorrection",
        patient_weight="PatientWeight",
        series_date="SeriesDate",
        series_time="SeriesTime",
        patient_size="PatientSize",
        radiopharmaceutical_sequence="RadiopharmaceuticalInformationSequence",
        dose="RadiopharmaceuticalInformationSequence/RadionuclideTotalDose",
        half_life="RadiopharmaceuticalInformationSequence/RadionuclideHalfLife",
        acquisition_time="AcquisitionTime",
        actual_frame_duration="ActualFrameDuration",
    )
    return [names.get(k, k) for k in keys if not slices[0].get(k)]


def _weight(tags, info, warnings) -> float:
    weight = _number(tags, "patient_weight")
    if not weight > 0:
        raise SUVError(f"PatientWeight is {tags['patient_weight'] or 'missing'}: SUVbw needs a weight")
    if weight > 1000:  # entered in grams
        warnings.append(f"PatientWeight {weight:g} read as grams (> 1000)")
        weight /= 1000.0
    info["weight_kg"] = weight
    return weight


def _dose(tags, info, warnings) -> float:
    dose = _number(tags, "dose")
    if not dose > 0:
        raise SUVError(f"RadionuclideTotalDose is {tags['dose'] or 'missing'}")
    if dose < MBQ_LIMIT:
        warnings.append(f"RadionuclideTotalDose {dose:g} read as MBq (below {MBQ_LIMIT:g})")
        dose *= 1e6
    elif dose < BQ_MINIMUM:
        raise SUVError(f"RadionuclideTotalDose {dose:g} is neither a dose in Bq nor in MBq")
    info["injected_dose_bq"] = dose
    return dose


def _decayed_fraction(slices, info, warnings) -> np.ndarray:
    """Per slice: the fraction of the injected dose left at the time each slice's values refer to."""
    first = slices[0]
    correction = first["decay_correction"]
    info["decay_correction"] = correction
    half_life = _number(first, "half_life")
    if not half_life > 0:
        raise SUVError(f"RadionuclideHalfLife is {first['half_life'] or 'missing'}")
    info["half_life_s"] = half_life
    lam = math.log(2) / half_life
    if not (first["injection_datetime"] or first["injection_time"]) and correction != "ADMIN":
        raise SUVError(
            "cannot compute SUVbw, missing: RadiopharmaceuticalInformationSequence/"
            "RadiopharmaceuticalStartDateTime or RadiopharmaceuticalStartTime"
        )
    if correction == "ADMIN":
        return np.ones(len(slices))
    if correction == "START":
        missing = _missing(slices, ["series_date", "series_time"])
        if missing:
            raise SUVError(f"cannot compute SUVbw, missing: {', '.join(missing)}")
        ref, source, more = reference_time(slices)
        warnings.extend(more)
        injection, inj_source = _injection(first, ref)
        delay = (ref - injection).total_seconds()
        if delay < 0:
            raise SUVError(f"the injection ({injection}) is after the decay-correction reference time ({ref})")
        info.update(
            reference_time=ref.isoformat(),
            reference_time_source=source,
            injection_time=injection.isoformat(),
            injection_time_source=inj_source,
            decay_s=delay,
        )
        return np.full(len(slices), math.exp(-lam * delay))
    if correction == "NONE":
        # Values are not decay corrected: each slice holds the average activity over its own frame.
        fractions = []
        date = first["series_date"] or first["acquisition_date"]
        for t in slices:
            acq, duration = _acquisition(t, date), _number(t, "actual_frame_duration") / 1000.0
            if acq is None or not duration > 0:
                raise SUVError("DecayCorrection NONE needs AcquisitionTime and ActualFrameDuration on every slice")
            injection, inj_source = _injection(t, acq)
            delay = (acq - injection).total_seconds()
            # the mean of exp(-lam t) over the frame [delay, delay + duration]
            fractions.append(math.exp(-lam * delay) * (1 - math.exp(-lam * duration)) / (lam * duration))
        info.update(injection_time_source=inj_source, decay_s="per slice (DecayCorrection NONE)")
        return np.asarray(fractions)
    raise SUVError(f"DecayCorrection is {correction or 'missing'}: expected START, ADMIN or NONE")


def _from_gml(slices: list[dict], info: dict, warnings: list) -> np.ndarray:
    """Units GML: SUV already; SUVbw itself, or back from SUVlbm/SUVbsa/SUVibw by the body factor."""
    first = slices[0]
    kind = first["suv_type"] or "BW"
    info["rule"] = f"Units GML, SUVType {kind}"
    if kind == "BW":
        return np.ones(len(slices))
    weight = _weight(first, info, warnings)
    height = _number(first, "patient_size") * 100.0
    if not height > 0:
        raise SUVError(f"SUVType {kind} needs PatientSize (height in m) to back-compute SUVbw: missing")
    body = _body_factor(kind, weight, height, first["patient_sex"] or "O")
    info.update(height_cm=height, body_factor=body, patient_sex_used=first["patient_sex"] or "O")
    return np.full(len(slices), weight / body)


def _from_cm2ml(slices: list[dict], info: dict, warnings: list) -> np.ndarray:
    """Units CM2ML: SUVbsa, back to SUVbw by the body surface area (Du Bois)."""
    first = slices[0]
    weight = _weight(first, info, warnings)
    height = _number(first, "patient_size") * 100.0
    if not height > 0:
        raise SUVError("Units CM2ML (SUVbsa) needs PatientSize (height in m) to back-compute SUVbw: missing")
    bsa = _body_factor("BSA", weight, height, "")
    info.update(rule="Units CM2ML (SUVbsa, Du Bois)", height_cm=height, bsa_m2=bsa)
    return np.full(len(slices), weight * 1000.0 / (bsa * 1e4))


def _to_bqml(first: dict, units: str, info: dict) -> float:
    """Bq/ml per stored-and-rescaled value: 1 for BQML, Philips' activity concentration scale for CNTS."""
    if units == "BQML":
        info["rule"] = "Units BQML"
        return 1.0
    if units != "CNTS":
        raise SUVError(f"Units {units!r} cannot be converted to SUVbw (BQML, GML, CM2ML and CNTS can)")
    activity_scale = _number(first, "philips_activity_scale")
    if not activity_scale > 0:
        raise SUVError(
            "Units CNTS without a Philips SUV scale factor (7053,1000) or activity concentration "
            "scale factor (7053,1009): counts cannot be converted to SUV"
        )
    info.update(
        rule="Units CNTS, Philips activity concentration scale factor (7053,1009)",
        philips_activity_scale=activity_scale,
    )
    return activity_scale


def suv_factors(slices: list[dict]) -> tuple[np.ndarray, dict]:
    """(factor per slice, provenance): SUVbw = factor * (stored value * RescaleSlope + RescaleIntercept).

    slices: suv_tags() of each slice, in slice order."""
    if not slices:
        raise SUVError("no slices")
    first = slices[0]
    warnings: list[str] = []
    units = first["units"]
    info: dict = dict(units=units, suv_type=first["suv_type"], warnings=warnings)
    missing = _missing(slices, ["units"])
    if missing:
        raise SUVError(f"cannot compute SUVbw, missing: {', '.join(missing)}")
    intercepts = {_number(t, "rescale_intercept") for t in slices if t["rescale_intercept"]}
    if units != "CNTS" and any(abs(i) > 0 for i in intercepts):
        raise SUVError(
            f"RescaleIntercept {sorted(intercepts)} is not 0: a PET series with an offset is excluded (IBSI SUV manual)"
        )
    if units in ("GML", "CM2ML"):
        return (_from_gml if units == "GML" else _from_cm2ml)(slices, info, warnings), info
    suv_scale = _number(first, "philips_suv_scale") if units == "CNTS" else 0.0
    if suv_scale > 0:
        info.update(rule="Units CNTS, Philips SUV scale factor (7053,1000)", philips_suv_scale=suv_scale)
        return np.full(len(slices), suv_scale), info
    to_bqml = _to_bqml(first, units, info)
    missing = _missing(
        slices, ["patient_weight", "radiopharmaceutical_sequence", "dose", "half_life", "decay_correction"]
    )
    if missing:
        raise SUVError(f"cannot compute SUVbw, missing: {', '.join(missing)}")
    weight = _weight(first, info, warnings)
    dose = _dose(first, info, warnings)
    fractions = _decayed_fraction(slices, info, warnings)
    factors = to_bqml * weight * 1000.0 / (dose * fractions)
    return factors, info


def suv_bw_factor(datasets) -> tuple[float, dict]:
    """(factor, provenance) for a series whose slices share one factor (not DecayCorrection NONE)."""
    factors, info = suv_factors([suv_tags(ds) for ds in datasets])
    if np.ptp(factors) > 1e-12 * factors.max():
        raise SUVError("the SUV factor differs between slices; use suv_factors")
    info["suv_factor"] = float(factors[0])
    return float(factors[0]), info
