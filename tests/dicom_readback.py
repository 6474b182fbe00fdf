"""What radflow writes as DICOM (config dicom_export), read back by tools written by others: dciodvfy (dicom3tools)
validates each object against its IOD, dcmqi's segimage2itkimage turns each SEG segment back into a mask and its
tid1500reader each SR into measurements. Shared by the demo's and the real data's workflow tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import SimpleITK as sitk
from conftest import debian_tool

DCMQI = Path(sys.executable).parent


def dciodvfy_errors(path) -> list[str]:
    tool = debian_tool("dciodvfy", "dicom3tools")
    check = subprocess.run([tool, str(path)], capture_output=True, text=True)
    return [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")]


def seg_masks(seg_path, out: Path) -> dict[str, sitk.Image]:
    """{segment label: mask} as dcmqi's segimage2itkimage reads a SEG."""
    out.mkdir(parents=True, exist_ok=True)
    args = [str(DCMQI / "segimage2itkimage"), "--inputDICOM", str(seg_path), "--outputDirectory", str(out)]
    proc = subprocess.run(args + ["--outputType", "nifti"], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    meta = json.loads((out / "meta.json").read_text())
    labels = [s[0]["SegmentLabel"] for s in meta["segmentAttributes"]]
    return {label: sitk.ReadImage(str(out / f"{n}.nii.gz")) for n, label in enumerate(labels, start=1)}


def on_grid_of(theirs: sitk.Image, mine: sitk.Image) -> np.ndarray:
    """A mask dcmqi read from a SEG (its volume spans the SEG's frames) placed on radflow's mask grid: the same
    spacing, direction and in-plane origin, its first slice on one of radflow's."""
    assert np.allclose(theirs.GetSpacing(), mine.GetSpacing(), atol=1e-6)
    assert np.allclose(theirs.GetDirection(), mine.GetDirection(), atol=1e-6)
    index = mine.TransformPhysicalPointToContinuousIndex(theirs.GetOrigin())
    assert np.allclose(index, np.round(index), atol=1e-3) and np.allclose(index[:2], 0, atol=1e-3), index
    k0 = int(round(index[2]))
    placed = np.zeros(sitk.GetArrayFromImage(mine).shape, bool)
    array = sitk.GetArrayFromImage(theirs) > 0
    placed[k0 : k0 + array.shape[0]] = array
    return placed


def sr_groups(path) -> dict[str, dict]:
    """{tracking identifier: measurement group} as dcmqi's tid1500reader reads a DICOM SR TID 1500."""
    out = Path(path).with_suffix(".readback.json")
    args = [str(DCMQI / "tid1500reader"), "--inputDICOM", str(path), "--outputMetadata", str(out)]
    proc = subprocess.run(args, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    report = json.loads(out.read_text())
    out.unlink()
    return {m["TrackingIdentifier"]: m for m in report["Measurements"]}


def floating_point_values(items) -> list[float]:
    """Every NUM content item's exact value (FD) of an SR content tree."""
    out = []
    for item in items:
        if item.get("ValueType") == "NUM":
            out.append(float(item.MeasuredValueSequence[0].FloatingPointValue))
        out += floating_point_values(item.get("ContentSequence", []))
    return out


def check_series_export(folder: Path, results: Path, rows: pd.DataFrame, dictionary: pd.DataFrame, tmp: Path):
    """One series' export against radflow's own masks and feature rows (rows: the series' ok rows)."""
    summary = json.loads((folder / "export.json").read_text())
    assert summary["status"] == "ok", (folder, summary)
    for name in ("seg.dcm", "sr.dcm"):
        assert not dciodvfy_errors(folder / name), (folder / name, dciodvfy_errors(folder / name))
    masks = results / "masks" / folder.parent.name / folder.name
    theirs = seg_masks(folder / "seg.dcm", tmp / folder.name)
    written = [r["label"] for r in json.loads((masks / "masks.json").read_text()) if r.get("voxel_count", 0) > 0]
    assert list(theirs) == written
    for label, image in theirs.items():
        mine = sitk.ReadImage(str(masks / f"{label}.nii.gz"))
        assert np.array_equal(on_grid_of(image, mine), sitk.GetArrayFromImage(mine) > 0), label

    seg = pydicom.dcmread(folder / "seg.dcm", stop_before_pixels=True)
    sr = pydicom.dcmread(folder / "sr.dcm")
    assert sr.PatientID == seg.PatientID == rows["patient_id"].iloc[0] and not str(sr.get("PatientBirthDate", ""))
    feature_columns = [c for c in dictionary.loc[dictionary["kind"] == "feature", "column"].unique() if c in rows]
    table = rows[feature_columns].to_numpy(dtype=float).ravel()
    assert sorted(floating_point_values(sr.ContentSequence)) == sorted(v for v in table if np.isfinite(v))
    groups = sr_groups(folder / "sr.dcm")
    assert len(groups) == len(rows) == summary["measurement_groups"]
    units = dictionary[dictionary["modality"] == rows["modality"].iloc[0]].set_index("column")
    for _, row in rows.iterrows():
        group = groups[f"{row['roi_label']} ({row['roi_original']})"[:64]]
        assert int(group["ReferencedSegment"]) == list(theirs).index(row["roi_label"]) + 1
        assert group["segmentationSOPInstanceUID"] == seg.SOPInstanceUID
        assert group["SourceSeriesForImageSegmentation"] == seg.ReferencedSeriesSequence[0].SeriesInstanceUID
        values = {c: float(row[c]) for c in units.index if c in row and pd.notna(row[c])}
        assert len(group["measurementItems"]) == len(values)
        for item in group["measurementItems"]:
            code, scheme = item["quantity"]["CodeValue"], item["quantity"]["CodingSchemeDesignator"]
            if scheme == "99PYRADIOMICS":
                columns = [code]
            else:
                assert scheme == "IBSI", scheme
                columns = [c for c in units.index if code in units.loc[c, "ibsi_code"].split(" = ")]
            # dcmqi reads the Numeric Value (DS: 16 characters); the Floating Point Value beside it is exact (above)
            value = float(item["value"])
            column = next(c for c in columns if np.isclose(values[c], value, rtol=1e-9, atol=1e-300))
            assert item["units"]["CodeValue"] == (units.loc[column, "ucum"] or "[arb'U]"), column
