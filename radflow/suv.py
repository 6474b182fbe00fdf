"""PET activity concentration (Bq/ml) to body-weight SUV.

SUVbw = C [Bq/ml] * weight [g] / (injected dose [Bq] decayed to the scan start).
A required tag that is missing raises SUVError naming the tags: never a silent factor of 1.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta


class SUVError(ValueError):
    """The SUV factor cannot be computed from this series' headers."""


def _dicom_datetime(date: str, time: str) -> datetime:
    date, time = str(date).strip(), str(time).strip()
    hh, mm = int(time[0:2]), int(time[2:4]) if len(time) >= 4 else 0
    ss = float(time[4:]) if len(time) > 4 else 0.0
    return datetime.strptime(date[:8], "%Y%m%d") + timedelta(hours=hh, minutes=mm, seconds=ss)


def _dt(value: str) -> datetime:
    value = str(value).strip()
    return _dicom_datetime(value[:8], value[8:] or "000000")


def scan_start(datasets) -> tuple[datetime, str]:
    """The time the decay correction refers to: the series time, unless the series was written after the
    acquisition began (a post-processed series), in which case the earliest acquisition time."""
    first = datasets[0]
    series = _dicom_datetime(first.SeriesDate, first.SeriesTime)
    acquisitions = [_dicom_datetime(ds.get("AcquisitionDate", first.SeriesDate), ds.AcquisitionTime)
                    for ds in datasets if ds.get("AcquisitionTime")]
    if acquisitions and series > min(acquisitions):
        return min(acquisitions), "AcquisitionDate/AcquisitionTime (earliest; SeriesTime is later)"
    return series, "SeriesDate/SeriesTime"


def suv_bw_factor(datasets) -> tuple[float, dict]:
    """(factor, provenance) such that SUVbw = factor * Bq/ml, from the headers of one PET series."""
    first = datasets[0]
    missing = [t for t in ("Units", "PatientWeight", "DecayCorrection", "SeriesDate", "SeriesTime",
                           "RadiopharmaceuticalInformationSequence") if not first.get(t)]
    radio = first.RadiopharmaceuticalInformationSequence[0] if first.get(
        "RadiopharmaceuticalInformationSequence") else {}
    for tag in ("RadionuclideTotalDose", "RadionuclideHalfLife"):
        if not radio or not radio.get(tag):
            missing.append(f"RadiopharmaceuticalInformationSequence/{tag}")
    if radio and not (radio.get("RadiopharmaceuticalStartDateTime") or radio.get("RadiopharmaceuticalStartTime")):
        missing.append("RadiopharmaceuticalInformationSequence/RadiopharmaceuticalStartTime")
    if missing:
        raise SUVError(f"cannot compute SUVbw, missing or empty: {', '.join(missing)}")
    units = str(first.Units).upper()
    if units != "BQML":
        raise SUVError(f"cannot compute SUVbw from Units {units!r}: only BQML is supported so far")
    weight_kg = float(first.PatientWeight)
    if weight_kg <= 0:
        raise SUVError(f"cannot compute SUVbw: PatientWeight is {weight_kg}")
    dose = float(radio.RadionuclideTotalDose)
    half_life = float(radio.RadionuclideHalfLife)
    if dose <= 0 or half_life <= 0:
        raise SUVError(f"cannot compute SUVbw: RadionuclideTotalDose {dose}, RadionuclideHalfLife {half_life}")
    correction = str(first.DecayCorrection).upper()
    info = dict(units="BQML", weight_kg=weight_kg, injected_dose_bq=dose, half_life_s=half_life,
                decay_correction=correction)
    if correction == "ADMIN":
        decay = 1.0
        info.update(decay_s=0.0, scan_time_source="", injection_time_source="")
    elif correction == "START":
        scan, scan_source = scan_start(datasets)
        if radio.get("RadiopharmaceuticalStartDateTime"):
            injection = _dt(radio.RadiopharmaceuticalStartDateTime)
            injection_source = "RadiopharmaceuticalStartDateTime"
        else:
            injection = _dicom_datetime(scan.strftime("%Y%m%d"), radio.RadiopharmaceuticalStartTime)
            injection_source = "RadiopharmaceuticalStartTime on the scan date"
            if injection > scan:  # injected before midnight, scanned after it
                injection -= timedelta(days=1)
                injection_source += " (previous day: injection before midnight)"
        delay = (scan - injection).total_seconds()
        if delay < 0:
            raise SUVError(f"cannot compute SUVbw: the injection ({injection}) is after the scan start ({scan})")
        decay = math.exp(-math.log(2) * delay / half_life)
        info.update(decay_s=delay, scan_time_source=scan_source, injection_time_source=injection_source)
    else:
        raise SUVError(f"cannot compute SUVbw with DecayCorrection {correction!r}: START and ADMIN are supported")
    factor = weight_kg * 1000.0 / (dose * decay)
    info["suv_factor"] = factor
    return factor, info
