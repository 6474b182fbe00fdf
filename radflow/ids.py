"""The patient ID every table of a run carries: a TCGA sample, portion or aliquot barcode (TCGA-CV-7238-01A-11R…)
stands for its patient (TCGA-CV-7238), any other ID (LUNG1-001, STS_004, HN-CHUM-001) is kept as written, without
surrounding spaces. The index applies it once, to the DICOM PatientID (and keeps the PatientID beside it as
dicom_patient_id); clinical files and a studies file get it when they are read, so that every join is on one ID."""

from __future__ import annotations

import re

BARCODE = re.compile(r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})", re.IGNORECASE)


def normalise_barcode(value: str) -> str:
    """The 12-character patient barcode of any TCGA sample/portion/aliquot barcode; other IDs as they are."""
    value = str(value).strip()
    m = BARCODE.match(value)
    return m.group(1).upper() if m else value
