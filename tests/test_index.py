"""The index: what is an image, what is not, and why."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pydicom.data
import SimpleITK as sitk
from conftest import REFERENCE, REPO
from factory import rewrite_dicom
from pydicom.fileset import FileSet

from radflow.dicom.header import read_header
from radflow.index import build_index, instance_row


def test_demo_series_roles(index_tables, truth):
    s = index_tables["series"].set_index("series_uid")
    for p in truth["patients"].values():
        assert s.loc[p["ct_series_uid"], "convert"] and s.loc[p["ct_series_uid"], "n_slices"] == 72
        assert s.loc[p["rtstruct_series_uid"], "role"] == "rtstruct"
    assert s.loc[truth["not_images"]["rtdose"], "role"] == "rtdose"
    assert s.loc[truth["not_images"]["rtplan"], "role"] == "rtplan"
    assert s.loc[truth["not_images"]["scout"], "role"] == "image"  # a CT ...
    assert not s.loc[truth["not_images"]["scout"], "convert"]  # ... that is a localizer


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
                p["mr_rtstruct_series_uid"]
            }


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
        tables = build_index(
            root, tmp_path / f"index-{fallback}", REPO / "config" / "roi_names.yaml", pet_fallback=fallback
        )
        row = tables["series"].set_index("series_uid").loc[pet]
        assert row["convert"] == convert and "PatientWeight" in row["reason"]
        problem = tables["problems"][tables["problems"]["series_uid"] == pet].iloc[0]
        assert problem["severity"] == severity and "PatientWeight" in problem["reason"]
    # and the conversion with the fallback keeps Bq/ml, flagged
    from radflow.dicom.convert import convert_series
    from radflow.index import series_files

    sidecar = convert_series(series_files(tables["instances"], pet), tmp_path / "pet.nii.gz", pet_fallback="bqml")
    assert sidecar["units"].startswith("Bq/ml") and "PatientWeight" in " ".join(sidecar["warnings"])


# ------------------------------------------------------------------ real odd DICOM, garbage, scale features

CORPUS = Path(pydicom.data.__file__).parent / "test_files"


def _all_files(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def _accounted(tables) -> set[str]:
    problems = tables["problems"]
    return set(tables["instances"]["path"]) | set(problems.loc[problems["level"] == "file", "item"])


def test_pydicom_corpus_every_file_accounted_for(tmp_path):
    """pydicom's own test files: big endian, no meta, DICOMDIRs, JPEG 2000, RT objects, deliberately broken ones."""
    root = tmp_path / "corpus"
    shutil.copytree(CORPUS, root)
    tables = build_index(
        root, tmp_path / "index", REPO / "config" / "roi_names.yaml", threads=2, series_selection="all"
    )
    assert _accounted(tables) == _all_files(root)
    reasons = " | ".join(tables["problems"]["reason"])
    for expected in (
        "DICOMDIR",
        "not a DICOM file",
        "truncated",
        "duplicate SOPInstanceUID",
        "LOCALIZER",
        "sub-series",
        "RTPLAN",
        "SEG",
    ):
        assert expected in reasons, expected
    # every problem says something a user can act on
    assert (tables["problems"]["reason"].str.len() > 10).all()


def test_garbage_files(demo_dir, tmp_path):
    root = tmp_path / "dicom"
    ct_src = next(p for p in (demo_dir / "TCGA-HNSC" / "TCGA-00-0004").rglob("*CT HEAD NECK*") if p.is_dir())
    ct = root / "ct"
    shutil.copytree(ct_src, ct)
    good = sorted(ct.iterdir())
    data = good[40].read_bytes()
    (root / "zero.dcm").write_bytes(b"")
    (root / "random.dcm").write_bytes(np.random.default_rng(0).bytes(5000))
    (root / "header_cut.dcm").write_bytes(data[:700])  # ends inside the header
    good[40].write_bytes(data[: len(data) - 1000])  # ends inside the pixel data
    (root / "fake.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 300)
    tables = build_index(root, tmp_path / "index", REPO / "config" / "roi_names.yaml", series_selection="all")
    assert _accounted(tables) == _all_files(root)
    problems = tables["problems"].set_index("item")
    assert "empty file" in problems.loc[str(root / "zero.dcm"), "reason"]
    assert "not a DICOM" in problems.loc[str(root / "random.dcm"), "reason"]
    assert "truncated" in problems.loc[str(good[40]), "reason"]
    assert str(root / "header_cut.dcm") in problems.index and str(root / "fake.dcm") in problems.index
    # the series lost a slice in the middle: it is not converted, and says why
    series = tables["series"]
    ct_row = series[series["modality"] == "CT"].iloc[0]
    assert not ct_row["convert"] and "missing slice" in ct_row["reason"]


def _fast_equals_pydicom(files):
    compared = 0
    for f in files:
        fast = read_header(f)
        if fast is None:
            continue
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        st = os.stat(f)
        a, b = instance_row(fast.get, f, st), instance_row(ds.get, f, st)
        if not ds.get("SOPClassUID"):
            b["sop_class_uid"] = a["sop_class_uid"]
        diff = {k: (a[k], b[k]) for k in a if a[k] != b[k] and not (a[k] != a[k] and b[k] != b[k])}
        assert not diff, (f, diff)
        compared += 1
    return compared


def test_fast_reader_agrees_with_pydicom(demo_dir):
    files = [str(p) for p in CORPUS.rglob("*") if p.is_file()] + [str(p) for p in demo_dir.rglob("*.dcm")]
    files += [str(p) for p in (REFERENCE / "ibsi").rglob("*.dcm")]
    assert _fast_equals_pydicom(files) > 500


def test_incremental_index_reads_only_what_changed(demo_dir, tmp_path):
    root = tmp_path / "dicom"
    shutil.copytree(demo_dir / "TCGA-HNSC" / "TCGA-00-0002", root / "TCGA-00-0002")
    names = REPO / "config" / "roi_names.yaml"
    first = build_index(root, tmp_path / "index", names)
    n = first["stats"]["files"]
    assert first["stats"]["read"] == n
    second = build_index(root, tmp_path / "index", names)
    assert second["stats"] == dict(files=n, instances=n, read=0, reused=n)
    for name in ("series", "rois", "links"):
        pd.testing.assert_frame_equal(first[name], second[name])
    some = sorted(root.rglob("*.dcm"))[5]
    os.utime(some, ns=(some.stat().st_atime_ns, some.stat().st_mtime_ns + 10**9))
    (root / "notes.txt").write_text("added later")
    third = build_index(root, tmp_path / "index", names)
    assert third["stats"] == dict(files=n + 1, instances=n, read=2, reused=n - 1)
    pd.testing.assert_frame_equal(first["series"], third["series"])


def test_sub_series_split_by_orientation_and_acquisition(demo_dir, tmp_path):
    root = tmp_path / "dicom"
    shutil.copytree(demo_dir / "TCGA-HNSC" / "TCGA-00-0003", root / "TCGA-00-0003")
    mr = sorted(next(p for p in root.rglob("*T1 AX*") if p.is_dir()).iterdir())
    ct = sorted(next(p for p in root.rglob("*CT HEAD NECK*") if p.is_dir()).iterdir())

    # the last 10 MR files become a second, coronal stack inside the same SeriesInstanceUID
    def coronal(ds):
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        ds.ImagePositionPatient = [-100, -50 + 4 * int(ds.InstanceNumber), 100]

    rewrite_dicom(mr[-10:], coronal)
    # the CT is acquired twice at the same positions (acquisition 1 and 2)
    for f in ct:
        ds = pydicom.dcmread(f)
        ds.AcquisitionNumber = 1
        ds.save_as(f)
        ds.AcquisitionNumber = 2
        ds.PixelData = (ds.pixel_array + 1).astype(ds.pixel_array.dtype).tobytes()  # a second acquisition
        ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[ds.SOPInstanceUID, "acquisition 2"])
        ds.InstanceNumber = ds.InstanceNumber + 100
        ds.save_as(f.with_name("b" + f.name))
    tables = build_index(root, tmp_path / "index", REPO / "config" / "roi_names.yaml", series_selection="all")
    series = tables["series"]
    mr_parts = series[series["modality"] == "MR"].sort_values("series_uid")
    assert list(mr_parts["n_files"]) == [26, 10] and mr_parts["series_uid"].str.endswith(("_1", "_2")).all()
    assert mr_parts["convert"].all()
    ct_parts = series[(series["modality"] == "CT") & (series["n_files"] == 72)]  # (not the 60-slice follow-up)
    assert len(ct_parts) == 2 and ct_parts["convert"].all()
    split = tables["problems"][tables["problems"]["severity"] == "split"]
    assert len(split) == 2 and split["reason"].str.contains("acquisition").any()
    # the RTSTRUCT that referenced the CT goes with both acquisitions; the files of each part are its own
    links = tables["links"]
    assert set(ct_parts["series_uid"]) <= set(links["image_series_uid"])
    from radflow.index import series_files

    assert len(series_files(tables["instances"], mr_parts["series_uid"].iloc[1])) == 10


def _three_phase_mr(demo_dir, root, temporal_tags: bool, same_pixels: bool = False):
    """TCGA-00-0003's 36-slice MR made a dynamic series of 3 phases (phase p = baseline + 100 p), 108 files in one
    SeriesInstanceUID; with temporal tags (TemporalPositionIdentifier, TriggerTime) and InstanceNumbers running
    position by position, or without any (no AcquisitionNumber either) and InstanceNumbers phase by phase."""
    shutil.copytree(demo_dir / "TCGA-HNSC" / "TCGA-00-0003", root / "TCGA-00-0003")
    folder = next(p for p in root.rglob("*T1 AX*") if p.is_dir())
    files = sorted(folder.iterdir())
    baseline = {}
    for f in files:
        ds = pydicom.dcmread(f)
        k = int(ds.InstanceNumber) - 1
        baseline[round(float(ds.ImagePositionPatient[2]), 3)] = ds.pixel_array.copy()
        f.unlink()
        for phase in range(3):
            ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[str(f), str(phase)])
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            add = 0 if same_pixels else 100 * phase
            ds.PixelData = (baseline[round(float(ds.ImagePositionPatient[2]), 3)] + add).astype(np.uint16).tobytes()
            if "AcquisitionNumber" in ds:
                del ds.AcquisitionNumber
            if temporal_tags:
                ds.TemporalPositionIdentifier, ds.TriggerTime = phase + 1, f"{60000 * phase:.1f}"
                ds.InstanceNumber = 3 * k + phase + 1
            else:
                ds.InstanceNumber = 36 * phase + k + 1
            ds.save_as(folder / f"p{phase}_{f.name}")
    return baseline


def test_a_three_phase_mr_becomes_three_sub_series(demo_dir, tmp_path):
    """Issue 20, item 3: a DCE MR with 3 images per slice position, with and without temporal tags: three
    sub-series, each converted with the right pixels and each linked to the MR's structure set."""
    from radflow.dicom.convert import convert_series
    from radflow.index import series_files

    for tags in (True, False):
        root = tmp_path / f"tags_{tags}"
        baseline = _three_phase_mr(demo_dir, root / "dicom", tags)
        tables = build_index(root / "dicom", root / "index", REPO / "config" / "roi_names.yaml")
        series = tables["series"]
        mr = series[series["modality"] == "MR"].sort_values("series_uid")
        assert len(mr) == 3 and mr["convert"].all() and (mr["n_files"] == 36).all(), mr
        assert mr["series_uid"].str.endswith(("_1", "_2", "_3")).all()
        (split,) = tables["problems"].loc[tables["problems"]["severity"] == "split", "reason"]
        assert "3 sub-series" in split
        assert (
            ("TemporalPositionIdentifier" in split.split("told apart by")[1])
            if tags
            else ("3 images at each of 36 slice positions, in InstanceNumber order" in split)
        )
        rtstruct = tables["rois"].loc[tables["rois"]["roi_original"] == "GTV", "rtstruct_series_uid"]
        links = tables["links"][tables["links"]["source_series_uid"].isin(set(rtstruct))]
        assert set(mr["series_uid"]) <= set(links["image_series_uid"])
        for phase, key in enumerate(mr["series_uid"]):
            meta = convert_series(series_files(tables["instances"], key), root / f"{phase}.nii.gz")
            image = sitk.ReadImage(str(root / f"{phase}.nii.gz"))
            got = sitk.GetArrayFromImage(image)
            z0, dz = image.GetOrigin()[2], image.GetSpacing()[2]
            want = np.stack([baseline[round(z0 + k * dz, 3)] for k in range(got.shape[0])]).astype(float)
            assert meta["status"] == "ok" and np.array_equal(got, want + 100 * phase), (tags, phase)


def test_true_duplicate_positions_stay_excluded(demo_dir, tmp_path):
    _three_phase_mr(demo_dir, tmp_path / "dicom", temporal_tags=False, same_pixels=True)
    tables = build_index(tmp_path / "dicom", tmp_path / "index", REPO / "config" / "roi_names.yaml")
    mr = tables["series"][tables["series"]["modality"] == "MR"]
    assert len(mr) == 1 and not mr["convert"].any()
    (reason,) = mr["reason"]
    assert reason == (
        "72 duplicate slice position(s): 36 slice position(s) hold images with identical pixel data: "
        "true duplicates, not phases"
    )


def test_spacing_tilt_and_multiframe_are_excluded(demo_dir, tmp_path):
    root = tmp_path / "dicom"
    shutil.copytree(demo_dir / "TCGA-HNSC" / "TCGA-00-0001", root / "TCGA-00-0001")
    ct = sorted(next(p for p in root.rglob("*CT HEAD NECK*") if p.is_dir()).iterdir())
    pet = sorted(next(p for p in root.rglob("*PET AC*") if p.is_dir()).iterdir())

    def tilt(ds):  # y shifts with z: a 10 degree gantry tilt
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + np.tan(np.radians(10)) * (z + 90), z]

    rewrite_dicom(ct, tilt)

    def uneven(ds):  # 3.27 mm steps, then 2.90 mm from the 28th slice on: no gap, but no uniform grid either
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z - 0.37 * max(0, int(ds.InstanceNumber) - 28)]

    rewrite_dicom(pet, uneven)
    mf = pydicom.dcmread(ct[0])
    mf.NumberOfFrames = 2
    mf.PixelData = mf.PixelData * 2
    mf.SeriesInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["multiframe series"])
    mf.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["multiframe sop"])
    mf.save_as(root / "multiframe.dcm")
    tables = build_index(root, tmp_path / "index", REPO / "config" / "roi_names.yaml", series_selection="all")
    reasons = dict(zip(tables["series"]["series_uid"], tables["series"]["reason"]))
    assert "gantry tilt (about 10.0 degrees)" in reasons[str(pydicom.dcmread(ct[0]).SeriesInstanceUID)]
    assert "non-uniform slice spacing" in reasons[str(pydicom.dcmread(pet[0]).SeriesInstanceUID)]
    assert "multi-frame" in reasons[str(mf.SeriesInstanceUID)]


def test_series_selection_and_manifest(demo_dir, truth, tmp_path):
    root = tmp_path / "dicom"
    shutil.copytree(demo_dir / "TCGA-HNSC" / "TCGA-00-0001", root / "TCGA-00-0001")
    p = truth["patients"]["TCGA-00-0001"]
    # drop the RTSTRUCT: with "referenced" nothing is left to convert, with "all" the CT and PET are
    shutil.rmtree(next(p for p in root.rglob("*RTSTRUCT*") if p.is_dir()))
    manifest = tmp_path / "download.tcia"
    manifest.write_text(
        "downloadServerUrl=https://nbia.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet\n"
        "includeAnnotation=true\nnoOfrRetry=4\ndatabasevarsion=\nmanifestVersion=3.0\nListOfSeriesToDownload=\n"
        f"{p['ct_series_uid']}\n{p['rtstruct_series_uid']}\n"
    )
    names = REPO / "config" / "roi_names.yaml"
    referenced = build_index(root, tmp_path / "a", names, manifest=manifest)
    assert not referenced["series"]["convert"].any()
    assert "series_selection: referenced" in " ".join(referenced["problems"]["reason"])
    status = dict(zip(referenced["manifest"]["series_uid"], referenced["manifest"]["status"]))
    assert status == {p["ct_series_uid"]: "present", p["rtstruct_series_uid"]: "missing"}
    assert (tmp_path / "a" / "manifest.tsv").exists()
    missing = referenced["problems"][referenced["problems"]["severity"] == "missing"]
    assert list(missing["series_uid"]) == [p["rtstruct_series_uid"]]
    everything = build_index(root, tmp_path / "b", names, series_selection="all")
    converted = set(everything["series"].loc[everything["series"]["convert"], "series_uid"])
    assert converted == {p["ct_series_uid"], p["pet_series_uid"]}


def _real_three_phase_mr(root: Path, content_times: bool) -> tuple[Path, Path]:
    """The real STS_008 MR T1 (28 slices from a clinical scanner; InstanceNumbers from 0, one AcquisitionNumber and
    one ContentTime for the whole series) and its RTSTRUCT, with the series stored as 3 phases (phase p = stored
    value + 100 p), optionally with a ContentTime per phase. Returns (the original image folder, the copy's root)."""
    study = next((REFERENCE / "real" / "ibsi_validation_sts" / "STS_008").glob("*MR_T1*"))
    original = next(p for p in study.iterdir() if "image" in p.name)
    copy = root / "STS_008" / study.name
    shutil.copytree(study, copy)
    folder = copy / original.name
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        f.unlink()
        stored = ds.pixel_array.copy()
        for phase in range(3):
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid(
                entropy_srcs=[f.name, str(phase)]
            )
            ds.PixelData = (stored + 100 * phase).astype(stored.dtype).tobytes()
            if content_times:
                ds.ContentTime = f"0912{14 + 10 * phase:02d}"
            ds.save_as(folder / f"p{phase}_{f.name}")
    return original, root


def test_a_real_mr_stored_as_three_phases_splits_and_keeps_its_rtstruct(tmp_path):
    """Issue 20, item 3, on real headers: the real MR's phases are told apart by InstanceNumber order (no temporal
    tag tells them apart) or by ContentTime when each phase has its own; each phase converts to the real series'
    image + 100 p, and the real RTSTRUCT lands on every phase with the mask it has on the original series."""
    from radflow.dicom.convert import convert_series
    from radflow.dicom.masks import write_masks
    from radflow.index import series_files
    from radflow.roi_names import load_aliases

    names = REPO / "config" / "roi_names.yaml"
    for content_times, how in ((False, "in InstanceNumber order"), (True, "told apart by ContentTime")):
        work = tmp_path / f"content_times_{content_times}"
        original, root = _real_three_phase_mr(work / "dicom", content_times)
        convert_series(sorted(str(p) for p in original.iterdir()), work / "original.nii.gz")
        rs = next(original.parent.glob("*mask*/*.dcm"))
        write_masks([rs], work / "original.nii.gz", work / "masks_original", load_aliases(names))
        base = sitk.GetArrayFromImage(sitk.ReadImage(str(work / "original.nii.gz")))
        base_mask = sitk.GetArrayFromImage(sitk.ReadImage(str(work / "masks_original" / "GTVp.nii.gz")))
        tables = build_index(root, work / "index", names)
        mr = tables["series"][tables["series"]["modality"] == "MR"].sort_values("series_uid")
        assert len(mr) == 3 and mr["convert"].all() and (mr["n_files"] == 28).all()
        (split,) = tables["problems"].loc[tables["problems"]["severity"] == "split", "reason"]
        assert how in split, split
        links = tables["links"]
        assert set(links.loc[links["source_modality"] == "RTSTRUCT", "image_series_uid"]) == set(mr["series_uid"])
        for phase, key in enumerate(mr["series_uid"]):
            convert_series(series_files(tables["instances"], key), work / f"{phase}.nii.gz")
            got = sitk.GetArrayFromImage(sitk.ReadImage(str(work / f"{phase}.nii.gz")))
            assert np.array_equal(got, base + 100 * phase), (content_times, phase)
            write_masks([rs], work / f"{phase}.nii.gz", work / f"masks_{phase}", load_aliases(names))
            mask = sitk.GetArrayFromImage(sitk.ReadImage(str(work / f"masks_{phase}" / "GTVp.nii.gz")))
            assert base_mask.sum() > 100 and np.array_equal(mask, base_mask)


def test_a_tree_with_nothing_to_convert_says_why(demo_dir, tmp_path):
    """No files, no DICOM among the files, or DICOM without an image: the tables are written (empty) and
    nothing_to_convert says which, with the reasons counted and the files or series named."""
    from radflow.index import nothing_to_convert

    names = REPO / "config" / "roi_names.yaml"
    (tmp_path / "empty").mkdir()
    tables = build_index(tmp_path / "empty", tmp_path / "i0", names)
    assert nothing_to_convert(tables, "empty") == (
        "empty: no files under this folder (is dicom_root the folder of the downloaded DICOM?)"
    )

    text = tmp_path / "text"
    (text / "sub").mkdir(parents=True)
    (text / "a.txt").write_text("not DICOM\n")
    (text / "sub" / "b.dcm").write_bytes(bytes(300))
    tables = build_index(text, tmp_path / "i1", names)
    assert len(tables["series"]) == len(tables["links"]) == 0
    assert len(pd.read_csv(tmp_path / "i1" / "problems.tsv", sep="\t")) == 2
    message = nothing_to_convert(tables, text)
    assert message.startswith(f"{text}: none of its 2 files is a DICOM instance radflow can read")
    assert f"2 × not a DICOM file (no 'DICM' prefix after the 128-byte preamble): {text}/a.txt, {text}/sub/b.dcm" in (
        message
    )

    structures = tmp_path / "structures"
    rs = next(p for p in (demo_dir / "TCGA-HNSC" / "TCGA-00-0001").rglob("*RTSTRUCT*") if p.is_dir())
    plan = next(p for p in (demo_dir / "TCGA-HNSC").rglob("*RTPLAN*") if p.is_dir())
    shutil.copytree(rs, structures / "rs")
    shutil.copytree(plan, structures / "plan")
    tables = build_index(structures, tmp_path / "i2", names)
    message = nothing_to_convert(tables, structures)
    assert message.startswith(f"{structures}: 2 DICOM instances in 2 series, none of them an image series to convert")
    assert "1 × RTPLAN: a treatment plan, holds no image" in message and "1 × RTSTRUCT: not an image" in message

    assert nothing_to_convert(build_index(demo_dir / "TCGA-HNSC", tmp_path / "i3", names), "demo") is None


def test_dose_plan_structure_set_references(demo_dir, tmp_path):
    """RTDOSE -> RTPLAN -> RTSTRUCT: the demo's dose grid names its plan, the plan its structure set. With a second
    structure set on the same CT, the dose order still names only the plan's, and radflow.features.dvh takes only its
    ROIs; a dose whose plan is not in the cohort warns and takes every structure set of its CTs. A real Eclipse plan's
    label and reference are read as Eclipse wrote them."""
    from radflow.features.dvh import plan_structure_sets
    from radflow.index.headers import read_instance
    from radflow.index.orders import build_orders

    names = REPO / "config" / "roi_names.yaml"
    root = tmp_path / "dicom"
    shutil.copytree(demo_dir / "TCGA-HNSC" / "TCGA-00-0001", root / "TCGA-00-0001")
    rs = next(p for p in root.rglob("*RTSTRUCT*") if p.is_dir())
    original = pydicom.dcmread(next(rs.iterdir()))
    second = root / "TCGA-00-0001" / "second-rs"
    second.mkdir()
    copy = pydicom.dcmread(next(rs.iterdir()))
    copy.SOPInstanceUID = copy.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    copy.SeriesInstanceUID = pydicom.uid.generate_uid()
    copy.save_as(second / "rs.dcm")
    tables = build_index(root, tmp_path / "index", names)
    links = tables["links"]
    dose = links[links["source_modality"] == "RTDOSE"]
    assert len(dose) and set(dose["plan_structure_sop_uids"]) == {str(original.SOPInstanceUID)}
    assert set(dose["plan_label"]) == {str(pydicom.dcmread(next(next(root.rglob("*RTPLAN*")).iterdir())).RTPlanLabel)}
    orders = build_orders(tables)
    (key,) = [k for k in orders if k[0] == "dose"]
    plan = orders[key]["plan"]
    assert plan["structure_sop_uids"] == [str(original.SOPInstanceUID)]
    # the structure sets of the dose's CT (on every image they go with, once each, as the dose job gathers them)
    structures = {s["path"]: s for k, o in orders.items() if k[0] == "masks" for s in o["structures"]}
    rtstructs = [s for s in structures.values() if s["modality"] == "RTSTRUCT"]
    assert {s["sop_uid"] for s in rtstructs} == {str(original.SOPInstanceUID), str(copy.SOPInstanceUID)}
    chosen, by = plan_structure_sets(rtstructs, plan)
    assert [s["sop_uid"] for s in chosen] == [str(original.SOPInstanceUID)] and by.startswith("plan:")
    # without the plan in the cohort: a warning naming it, and every structure set of the CT
    shutil.rmtree(next(p for p in root.rglob("*RTPLAN*") if p.is_dir()))
    tables = build_index(root, tmp_path / "index2", names)
    problems = pd.read_csv(tmp_path / "index2" / "problems.tsv", sep="\t")
    warned = problems[problems["reason"].str.contains("references RTPLAN", na=False)]
    assert len(warned) == 1 and "not in the cohort" in warned["reason"].iloc[0]
    plan = next(o for k, o in build_orders(tables).items() if k[0] == "dose")["plan"]
    assert plan["sop_uid"] and plan["structure_sop_uids"] == []
    chosen, by = plan_structure_sets(rtstructs, plan)
    assert len(chosen) == 2 and by.startswith("frame of reference") and "not in the cohort" in by
    # a real plan, as Varian Eclipse wrote it
    real = Path(__file__).parent / "data" / "slicerrt_eclipse_prostate_phantom"
    row, _, problem = read_instance(next(real.glob("RP.*.dcm")))
    assert problem == "" and row["modality"] == "RTPLAN" and row["rt_label"] == "PROS"
    assert row["referenced_sop_uids"] == "1.2.246.352.71.4.2088656855.2404649.20110920153449"
