"""From files to series: sub-series by orientation, matrix size, acquisition or phase, and the series table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from radflow.dicom.geometry import position_keys, slice_normal
from radflow.index.checks import check_image_series, check_pet_series
from radflow.index.columns import SERIES_COLUMNS, SERIES_FIELDS
from radflow.index.columns import problem as problem_row
from radflow.index.headers import pixel_digest
from radflow.modalities import DEFAULT_MODALITIES, IMAGE_MODALITIES, ROLES


class Slices:
    """The instances of one (sub-)series as numpy arrays: per-series checks without pandas overhead."""

    def __init__(self, columns: dict, idx: np.ndarray, along: np.ndarray, geometry_key: np.ndarray):
        self.columns, self.idx, self.along_all, self.key_all = columns, idx, along, geometry_key

    def __len__(self):
        return len(self.idx)

    def __getitem__(self, name):
        return self.columns[name][self.idx]

    def subset(self, mask) -> "Slices":
        return Slices(self.columns, self.idx[mask], self.along_all, self.key_all)

    @property
    def along(self):
        return self.along_all[self.idx]

    @property
    def geometry_key(self):
        return self.key_all[self.idx]

    def first(self, name):
        return self[name][int(np.argmin(self["instance_number"]))]


def _normals(orientations: np.ndarray) -> np.ndarray:
    """Slice normal per row, parsing each distinct ImageOrientationPatient once (NaN where absent)."""
    out = np.full((len(orientations), 3), np.nan)
    values, inverse = np.unique(orientations.astype(str), return_inverse=True)
    for k, text in enumerate(values):
        try:
            out[inverse == k] = slice_normal(text.split("\\"))
        except ValueError:
            pass
    return out


# What tells the images at one slice position apart, in the order tried: (instances column, DICOM keyword).
PHASE_KEYS = (
    ("temporal_position", "TemporalPositionIdentifier"),
    ("trigger_time", "TriggerTime"),
    ("content_time", "ContentTime"),
    ("acquisition_number", "AcquisitionNumber"),
)


def _value_order(v: str):
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def split_phases(sl: Slices, digest=pixel_digest) -> tuple[list[Slices], str, str]:
    """(phases, how, refusal) of a (sub-)series whose slice positions repeat: several acquisitions or the phases of
    a dynamic series. Phases are told apart by the first of PHASE_KEYS that gives as many groups as the most images
    at one position, each group with one image per position; else, when every position holds the same number of
    images, by InstanceNumber order within each position. Images with identical pixel data at one position are
    true duplicates: nothing is split, and the refusal says so (the series is then excluded)."""
    z = position_keys(sl.along)
    _, position, counts = np.unique(z, return_inverse=True, return_counts=True)
    n = int(counts.max())
    paths = sl["path"]
    repeated = np.flatnonzero(counts[position] > 1)
    digests = {i: digest(paths[i]) for i in repeated}
    same = sum(
        len({digests[i] for i in repeated[position[repeated] == p]}) < counts[p] for p in np.unique(position[repeated])
    )
    if same:
        return [sl], "", f"{same} slice position(s) hold images with identical pixel data: true duplicates, not phases"
    for column, keyword in PHASE_KEYS:
        values = sl[column].astype(str)
        labels = sorted(set(values), key=_value_order)
        if (values == "").any() or len(labels) != n:
            continue
        groups = [sl.subset(values == label) for label in labels]
        if all(len(np.unique(position_keys(g.along))) == len(g) for g in groups):
            what = "acquisitions" if keyword == "AcquisitionNumber" else "phases"
            return groups, f"{n} {what} at the same slice positions, told apart by {keyword}", ""
    if (counts != n).any():
        return (
            [sl],
            "",
            (
                f"slice positions hold from {int(counts.min())} to {n} images each, and no "
                "TemporalPositionIdentifier, TriggerTime, ContentTime or AcquisitionNumber tells them apart"
            ),
        )
    order = np.lexsort((sl["instance_number"], position))
    rank = np.empty(len(z), int)
    rank[order] = np.arange(len(z)) % n  # sorted by position, then InstanceNumber: n per position
    return (
        [sl.subset(rank == p) for p in range(n)],
        (
            f"{n} images at each of {len(counts)} slice positions, in InstanceNumber order (no "
            "TemporalPositionIdentifier, TriggerTime, ContentTime or AcquisitionNumber tells them apart)"
        ),
        "",
    )


def split_series(sl: Slices, digest=pixel_digest) -> tuple[list[Slices], str, str]:
    """Sub-series of one SeriesInstanceUID: one per orientation and matrix size, and one per acquisition or phase
    when the slice positions repeat (split_phases). Returns ([sl], "", refusal) when nothing needs splitting;
    refusal says why repeated positions were not split."""
    keys = sl.geometry_key
    distinct = list(dict.fromkeys(keys))  # first-seen order
    parts = [sl.subset(keys == k) for k in distinct] if len(distinct) > 1 else [sl]
    why = ["orientation or matrix size"] if len(parts) > 1 else []
    out, refusals = [], []
    for part in parts:
        z = position_keys(part.along)
        if np.isfinite(z).all() and len(np.unique(z)) < len(z):
            phases, how, refusal = split_phases(part, digest)
            if len(phases) > 1:
                out.extend(phases)
                why.append(how)
                continue
            refusals.append(refusal)
        out.append(part)
    out.sort(key=lambda g: (g["instance_number"].min(), g["path"].min()))
    return out, " and ".join(dict.fromkeys(why)), "; ".join(r for r in refusals if r)


def _series_row(key, uid, sl: Slices, geometry, role, convert, reason) -> dict:
    f = sl.first
    return dict(
        patient_id=f("patient_id"),
        study_uid=f("study_uid"),
        study_date=f("study_date"),
        study_description=f("study_description"),
        series_uid=key,
        dicom_series_uid=uid,
        series_number=f("series_number"),
        series_description=f("series_description"),
        modality=f("modality"),
        role=role,
        frame_of_reference_uid=f("frame_of_reference_uid"),
        manufacturer=f("manufacturer"),
        manufacturer_model=f("manufacturer_model"),
        n_files=len(sl),
        rows=int(f("rows")),
        columns=int(f("columns")),
        n_slices=int(sl["number_of_frames"].sum()),
        pixel_spacing_row=f("pixel_spacing_row"),
        pixel_spacing_col=f("pixel_spacing_col"),
        slice_spacing=geometry.get("slice_spacing", np.nan),
        slice_thickness=f("slice_thickness"),
        orientation=f("orientation"),
        z_min=geometry.get("z_min", np.nan),
        z_max=geometry.get("z_max", np.nan),
        convert=bool(convert),
        reason=reason,
    )


def _image_verdict(part, modality: str, refusal: str, modalities, pet_fallback) -> tuple[bool, str, str, dict]:
    """(convert, reason, severity, geometry) of an image (sub-)series: its slices (check_image_series), whether the
    config asks for its modality, and for a PET whether SUVbw can be had (check_pet_series)."""
    convert, reason, geometry = check_image_series(part)
    if refusal and "duplicate slice position" in reason:
        reason = f"{reason}: {refusal}"
    severity = "excluded"
    if convert and modality not in modalities:
        convert, reason, severity = False, f"modality {modality} is not in the config's modalities", "info"
    if convert and IMAGE_MODALITIES[modality].header_gate == "suv":
        convert, reason, pet_severity = check_pet_series(part, pet_fallback)
        severity = pet_severity or severity
    return convert, reason, severity, geometry


def series_table(
    instances: pd.DataFrame, pet_fallback: str | None = None, modalities=tuple(DEFAULT_MODALITIES)
) -> tuple[pd.DataFrame, list[dict], np.ndarray]:
    """(series table, problems, series key per instance). An image SeriesInstanceUID that mixes orientations,
    matrix sizes or acquisitions becomes sub-series with keys <UID>_1, <UID>_2 …"""
    rows, problems = [], []
    columns = {c: instances[c].to_numpy() for c in SERIES_FIELDS}
    normals = _normals(columns["orientation"])
    positions = np.column_stack([columns["position_x"], columns["position_y"], columns["position_z"]]).astype(float)
    along = (positions * normals).sum(axis=1)
    geometry_key = (
        instances["orientation"].astype(str)
        + "|"
        + instances["rows"].astype(str)
        + "|"
        + instances["columns"].astype(str)
    ).to_numpy()
    keys = columns["dicom_series_uid"].astype(object).copy()

    def problem(key, patient, severity, reason):
        problems.append(problem_row("series", key, patient, key, severity, reason))

    groups = instances.groupby("dicom_series_uid", sort=True).indices
    for uid in sorted(groups):
        sl = Slices(columns, np.asarray(groups[uid]), along, geometry_key)
        modality = sl["modality"][0]
        role = "image" if modality in IMAGE_MODALITIES else ROLES.get(modality, "other")
        patient = sl["patient_id"][0]
        if role != "image":
            reason = {
                "rtdose": "RTDOSE: a dose grid, converted to Gy under results/dose, not as an image",
                "rtplan": "RTPLAN: a treatment plan, holds no image",
                "rtstruct": "",
                "seg": "",
            }.get(role, f"modality {modality or '(none)'}: not an image series radflow converts")
            if reason:
                problem(uid, patient, "info", reason)
            rows.append(_series_row(uid, uid, sl, {}, role, False, reason))
            continue
        parts, why, refusal = split_series(sl)
        if len(parts) > 1:
            problem(
                uid,
                patient,
                "split",
                f"one SeriesInstanceUID holds {len(parts)} sub-series (by {why}); "
                f"indexed as {uid}_1 … {uid}_{len(parts)}",
            )
        for n, part in enumerate(parts, start=1):
            key = f"{uid}_{n}" if len(parts) > 1 else uid
            keys[part.idx] = key
            convert, reason, severity, geometry = _image_verdict(part, modality, refusal, modalities, pet_fallback)
            if reason:
                problem(key, patient, severity, reason)
            rows.append(_series_row(key, uid, part, geometry, role, convert, reason))
    df = pd.DataFrame(rows, columns=SERIES_COLUMNS).astype({"convert": bool})
    order = pd.to_numeric(df["series_number"], errors="coerce")
    df = df.assign(_n=order).sort_values(["patient_id", "study_date", "study_uid", "_n", "series_uid"])
    return df.drop(columns="_n").reset_index(drop=True), problems, keys
