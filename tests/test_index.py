"""The index: what is an image, what is not, and why."""

from __future__ import annotations

import shutil

import pandas as pd
import pydicom
from pydicom.fileset import FileSet

from conftest import REPO
from radflow.index import build_index


def test_demo_series_roles(index_tables, truth):
    s = index_tables["series"].set_index("series_uid")
    for p in truth["patients"].values():
        assert s.loc[p["ct_series_uid"], "convert"] and s.loc[p["ct_series_uid"], "n_slices"] == 72
        assert s.loc[p["rtstruct_series_uid"], "role"] == "rtstruct"
    assert s.loc[truth["not_images"]["rtdose"], "role"] == "rtdose"
    assert s.loc[truth["not_images"]["rtplan"], "role"] == "rtplan"
    assert s.loc[truth["not_images"]["scout"], "role"] == "image"  # a CT ...
    assert not s.loc[truth["not_images"]["scout"], "convert"]       # ... that is a localizer


def test_links_put_the_ct_rtstruct_on_the_pet(index_tables, truth):
    links = index_tables["links"]
    for p in truth["patients"].values():
        mine = links[links["source_series_uid"] == p["rtstruct_series_uid"]]
        expected = {p["ct_series_uid"]: "referenced"}
        if "pet_series_uid" in p:
            expected[p["pet_series_uid"]] = "same_frame_of_reference"
        assert dict(zip(mine["image_series_uid"], mine["relation"])) == expected
        if "mr_series_uid" in p:  # the MR has its own frame of reference: the CT's ROIs never land on it
            assert set(links.loc[links["image_series_uid"] == p["mr_series_uid"], "source_series_uid"]) == {
                p["mr_rtstruct_series_uid"]}


def test_odd_files_and_broken_series_are_reported(demo_dir, truth, tmp_path):
    root = tmp_path / "dicom"
    patient = "TCGA-00-0004"
    shutil.copytree(demo_dir / "TCGA-HNSC" / patient, root / patient)
    ct_dir = next(p for p in (root / patient).rglob("*CT HEAD NECK*") if p.is_dir())
    (root / "README.txt").write_text("downloaded with the NBIA Data Retriever\n")
    (ct_dir / "notes.dcm").write_bytes(b"this is not DICOM at all" * 10)
    (ct_dir / "1-030.dcm").unlink()  # a missing slice in the middle
    no_ext = ct_dir / "1-031"
    (ct_dir / "1-031.dcm").rename(no_ext)  # DICOM without an extension is still read
    fs = FileSet()
    fs.add(pydicom.dcmread(no_ext))
    fs.write(tmp_path / "media")
    shutil.copy(tmp_path / "media" / "DICOMDIR", root / "DICOMDIR")

    tables = build_index(root, tmp_path / "index", REPO / "config" / "roi_names.yaml")
    problems = tables["problems"]
    reasons = dict(zip(problems["item"].map(lambda s: s.rsplit("/", 1)[-1]), problems["reason"]))
    assert "not a DICOM" in reasons["README.txt"] and "not a DICOM" in reasons["notes.dcm"]
    assert "DICOMDIR" in reasons["DICOMDIR"]
    ct_uid = truth["patients"][patient]["ct_series_uid"]
    ct = tables["series"].set_index("series_uid").loc[ct_uid]
    assert ct["n_files"] == 71 and not ct["convert"] and "missing slice" in ct["reason"]
    assert "gap of 5.00 mm" in ct["reason"]
    assert str(no_ext) in set(tables["instances"]["path"])
    # the RTSTRUCT now has nowhere to go, and says so
    rs = problems[problems["series_uid"] == truth["patients"][patient]["rtstruct_series_uid"]]
    assert (rs["severity"] == "excluded").any()


def test_parallel_and_serial_index_agree(demo_dir, index_tables, tmp_path):
    serial = build_index(demo_dir / "TCGA-HNSC", tmp_path, REPO / "config" / "roi_names.yaml", threads=1)
    for name in ("series", "rois", "links"):
        pd.testing.assert_frame_equal(serial[name], index_tables[name])


def test_pet_without_weight_is_excluded_naming_the_tag(demo_dir, truth, tmp_path):
    patient = "TCGA-00-0002"
    root = tmp_path / "dicom"
    shutil.copytree(demo_dir / "TCGA-HNSC" / patient, root / patient)
    for f in next(p for p in root.rglob("*PET AC*") if p.is_dir()).iterdir():
        ds = pydicom.dcmread(f)
        del ds.PatientWeight
        ds.save_as(f)
    pet = truth["patients"][patient]["pet_series_uid"]
    for fallback, convert, severity in ((None, False, "excluded"), ("bqml", True, "warning")):
        tables = build_index(root, tmp_path / f"index-{fallback}", REPO / "config" / "roi_names.yaml",
                             pet_fallback=fallback)
        row = tables["series"].set_index("series_uid").loc[pet]
        assert row["convert"] == convert and "PatientWeight" in row["reason"]
        problem = tables["problems"][tables["problems"]["series_uid"] == pet].iloc[0]
        assert problem["severity"] == severity and "PatientWeight" in problem["reason"]
    # and the conversion with the fallback keeps Bq/ml, flagged
    from radflow.convert import convert_series
    from radflow.index import series_files

    sidecar = convert_series(series_files(tables["instances"], pet), tmp_path / "pet.nii.gz", pet_fallback="bqml")
    assert sidecar["units"].startswith("Bq/ml") and "PatientWeight" in " ".join(sidecar["warnings"])
