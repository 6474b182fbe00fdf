"""Features through radflow's own extraction: known values, failures as rows, provenance, long tables, IBSI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import REFERENCE, REPO
from factory import sphere_contours, write_rtstruct

from radflow.dicom.masks import write_masks
from radflow.features import (
    FeatureValueError,
    extract_series,
    feature_value,
    feature_values,
    image_hash,
    long_table,
    mesh_shape,
)
from radflow.features.ibsi import conformance, feature_map
from radflow.roi_names import FeatureRois, load_aliases
from radflow.tables import CONFORMANCE_COLUMNS as COLUMNS

IBSI = REFERENCE / "ibsi"
DEFINITIONAL = {"stat_kurt", "morph_pca_maj_axis", "morph_pca_min_axis", "morph_pca_least_axis"}


def _series(tmp_path, image: sitk.Image, masks: dict[str, sitk.Image], modality="CT"):
    """An image with its sidecar and a masks folder, as the workflow writes them."""
    sitk.WriteImage(image, str(tmp_path / "image.nii.gz"))
    (tmp_path / "image.json").write_text(
        json.dumps(dict(patient_id="TCGA-00-9999", study_uid="1.2", series_uid="1.2.3", modality=modality))
    )
    folder = tmp_path / "masks"
    folder.mkdir()
    listing = []
    for name, mask in masks.items():
        sitk.WriteImage(mask, str(folder / f"{name}.nii.gz"))
        count = int(sitk.GetArrayViewFromImage(mask).sum())
        listing.append(
            dict(
                label=name,
                roi=name,
                roi_original=name,
                rtstruct_series_uid="1.2.4",
                voxel_count=count,
                volume_mm3=count * float(np.prod(mask.GetSpacing())),
            )
        )
    (folder / "masks.json").write_text(json.dumps(listing))
    return tmp_path / "image.nii.gz", folder


def test_digital_phantom_known_values(tmp_path):
    """IBSI digital phantom through extract_series: mean, voxel volume and a GLCM feature equal IBSI's values."""
    base = IBSI / "ibsi_1_digital_phantom" / "nifti"
    if not base.is_dir():
        pytest.skip(f"{base} is not on this machine")
    image = sitk.ReadImage(str(next((base / "image").glob("*.nii*"))))
    mask = sitk.ReadImage(str(next((base / "mask").glob("*.nii*"))))
    image_path, masks = _series(tmp_path, image, {"phantom": sitk.Cast(mask, sitk.sitkUInt8)})
    row = extract_series(image_path, masks, REPO / "config" / "pyradiomics" / "ibsi" / "digital_phantom.yaml").iloc[0]
    assert row["status"] == "ok"
    ref = (
        pd.read_csv(
            IBSI / "reference_values_zrad" / "ibsi_1_reference_values_digital_phantom.csv", encoding="utf-8-sig"
        )
        .set_index("tag")["reference value"]
        .astype(float, errors="ignore")
    )
    assert float(ref["stat_mean"]) == 2.15 and round(row["original_firstorder_Mean"], 2) == 2.15
    assert float(ref["morph_vol_approx"]) == 592 and abs(row["original_shape_VoxelVolume"] - 592) <= 4
    assert float(ref["cm_joint_max_3D_avg"]) == 0.503 and round(row["original_glcm_MaximumProbability"], 3) == 0.503


def test_failures_are_rows(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.normal(40, 20, (20, 40, 40)).round().astype(np.int16)
    arr[2:6, 2:8, 2:8] = 100  # a flat region
    image = sitk.GetImageFromArray(arr)

    def mask(sl):
        m = np.zeros(arr.shape, np.uint8)
        m[sl] = 1
        return sitk.GetImageFromArray(m)

    masks = {
        "tumour": mask(np.s_[8:16, 10:30, 10:30]),
        "empty": mask(np.s_[0:0]),
        "tiny": mask(np.s_[10, 35, 35]),
        "flat": mask(np.s_[2:6, 2:8, 2:8]),
    }
    for m in masks.values():
        m.CopyInformation(image)
    image_path, folder = _series(tmp_path, image, masks)
    rows = extract_series(image_path, folder, REPO / "config" / "pyradiomics" / "CT.yaml").set_index("roi")
    assert rows.loc["tumour", "status"] == "ok" and np.isfinite(rows.loc["tumour", "original_glcm_Contrast"])
    assert rows.loc["empty", "status"] == "failed" and "empty mask" in rows.loc["empty", "reason"]
    assert (
        rows.loc["tiny", "status"] == "failed"
        and "spans 1 x 1 x 1 voxels" in rows.loc["tiny", "reason"]
        and "minimumROIDimensions 2" in rows.loc["tiny", "reason"]
    )
    assert rows.loc["flat", "status"] == "flat" and "same intensity" in rows.loc["flat", "reason"]
    # provenance on every row
    assert (rows["image_sha256"] == image_hash(image)).all()
    assert rows.loc["tumour", "mask_sha256"] == image_hash(masks["tumour"])
    assert rows["numpy_version"].eq(np.__version__).all() and rows["simpleitk_version"].str.len().gt(0).all()
    settings_sha = hashlib.sha256((REPO / "config" / "pyradiomics" / "CT.yaml").read_bytes()).hexdigest()
    assert rows["settings_sha256"].eq(settings_sha).all() and len(rows["image_sha256"].iloc[0]) == 64
    long = long_table(rows.reset_index())
    assert set(long.columns) >= {"patient_id", "roi", "feature", "value"}
    tumour = long[long["roi"] == "tumour"].set_index("feature")["value"]
    assert tumour["original_glcm_Contrast"] == rows.loc["tumour", "original_glcm_Contrast"]


def test_complex_values_at_rounding_level_become_real():
    """What pyradiomics returned on an AMD EPYC for a symmetric ROI (eigenvalues of numpy.linalg.eig as a conjugate
    pair), fed to the row builder directly so that the rule is tested on every CPU."""
    result = {
        "diagnostics_Versions_PyRadiomics": "v3.1.4",
        "original_shape_Elongation": np.complex128(1 - 1.8e-17j),
        "original_shape_Flatness": np.complex128(0.5 + 3e-18j),
        "original_shape_MajorAxisLength": np.float64(12.5),
        "original_shape_LeastAxisLength": np.array(6.25 - 1e-16j),
        "original_firstorder_Mean": np.array(40.0),
        "original_shape_VoxelVolume": np.int64(592),
    }
    values = feature_values(result)
    assert values == {
        "original_shape_Elongation": 1.0,
        "original_shape_Flatness": 0.5,
        "original_shape_MajorAxisLength": 12.5,
        "original_shape_LeastAxisLength": 6.25,
        "original_firstorder_Mean": 40.0,
        "original_shape_VoxelVolume": 592.0,
    }
    assert all(type(v) is float for v in values.values())
    # arrays too, and a large value keeps a relative tolerance
    assert feature_value("f", np.array([1 + 1e-17j, 2.0])) == "[1.0, 2.0]"
    assert feature_value("f", 1e6 + 1e-8j) == 1e6
    # a truly complex value or a non-number is an error naming the feature, never a silent real part
    with pytest.raises(FeatureValueError, match="original_shape_Elongation is complex"):
        feature_value("original_shape_Elongation", 1 + 0.25j)
    with pytest.raises(FeatureValueError, match="original_glcm_Contrast is not a number"):
        feature_value("original_glcm_Contrast", "n/a")


def test_one_broken_roi_does_not_take_its_series_down(tmp_path):
    """An ROI whose mask cannot be read (or whose values cannot be tabled) is a failed row; the others are ok."""
    rng = np.random.default_rng(1)
    image = sitk.GetImageFromArray(rng.normal(40, 20, (12, 30, 30)).round().astype(np.int16))

    def cube(lo, hi):
        m = np.zeros((12, 30, 30), np.uint8)
        m[lo:hi, lo : hi + 10, lo : hi + 10] = 1
        img = sitk.GetImageFromArray(m)
        img.CopyInformation(image)
        return img

    image_path, folder = _series(tmp_path, image, {"a": cube(2, 8), "broken": cube(3, 9), "b": cube(4, 10)})
    (folder / "broken.nii.gz").write_bytes(b"not a NIfTI file")
    rows = extract_series(image_path, folder, REPO / "config" / "pyradiomics" / "CT.yaml").set_index("roi")
    assert list(rows["status"]) == ["ok", "failed", "ok"]
    assert rows.loc["broken", "reason"].startswith("ROI 'broken': RuntimeError")
    assert rows.loc[["a", "b"], "original_firstorder_Mean"].notna().all()
    shape = [c for c in rows.columns if c.startswith("original_shape_")]
    assert rows.loc[["a", "b"], shape].map(lambda v: type(v) is float).all().all()


def _planning_ct(tmp_path):
    """A noisy 1 mm CT with a structure set as planning systems write it: a GTV, a body outline, an unmapped ROI, an
    isocentre (POINT contour, ISOCENTER), a marker drawn as a tiny closed contour (MARKER), a BB (POINT, no type) and a
    sliver one voxel wide."""
    rng = np.random.default_rng(3)
    image = sitk.GetImageFromArray(rng.normal(40, 20, (60, 80, 80)).round().astype(np.int16))
    image.SetOrigin((-40.0, -40.0, -30.0))
    image_path = tmp_path / "image.nii.gz"
    sitk.WriteImage(image, str(image_path))
    image_path.with_name("image.json").write_text(
        json.dumps(
            dict(
                patient_id="TCGA-00-9999",
                study_uid="1.2",
                series_uid="1.2.3",
                modality="CT",
                size=[80, 80, 60],
                spacing=[1.0, 1.0, 1.0],
            )
        )
    )
    square = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float)
    rois = {
        "GTV": sphere_contours((0.0, 0.0, 0.0), 7.5, np.arange(-10, 10.1, 1.0)),
        "BODY": sphere_contours((0.0, 0.0, 0.0), 25.0, np.arange(-26, 26.1, 1.0)),
        "Bolus": sphere_contours((10.0, 10.0, 0.0), 4.0, np.arange(-5, 5.1, 1.0)),
        "ISO": [np.array([[0.0, 0.0, 0.0]])],
        "Marker 1": [square + [15, 0, 5]],
        "BB1": [np.array([[5.0, 5, 5]])],
        "Chiasm": [np.array([[-3.2, -20.4, 2], [3.2, -20.4, 2], [3.2, -19.6, 2], [-3.2, -19.6, 2]])],
    }
    rs = write_rtstruct(
        tmp_path / "rs.dcm",
        rois,
        kinds={"ISO": "POINT", "BB1": "POINT"},
        roi_types={"GTV": "GTV", "BODY": "EXTERNAL", "ISO": "ISOCENTER", "Marker 1": "MARKER", "Chiasm": "ORGAN"},
    )
    write_masks([rs], image_path, tmp_path / "masks", load_aliases(REPO / "config" / "roi_names.yaml"))
    return image_path, tmp_path / "masks"


def test_points_markers_and_feature_rois(tmp_path):
    """Points and markers are named as such and never reach pyradiomics; by default only ROIs with a standard name
    that is not an outline get features; every ROI keeps its row, mask and volume."""
    image_path, masks = _planning_ct(tmp_path)
    sidecars = {m["roi_original"]: m for m in json.loads((masks / "masks.json").read_text())}
    assert sidecars["ISO"]["roi_type"] == "ISOCENTER" and sidecars["ISO"]["contour_types"] == {"POINT": 1}
    assert sidecars["ISO"]["point"] == "an isocentre (RTROIInterpretedType ISOCENTER; 1 POINT contour)"
    assert sidecars["Marker 1"]["point"] == "a marker (RTROIInterpretedType MARKER; 1 CLOSED_PLANAR contour)"
    assert sidecars["BB1"]["point"] == "made of 1 POINT contour and no CLOSED_PLANAR contour"
    assert sidecars["GTV"]["point"] == "" and sidecars["GTV"]["bounding_box"][3:] == [15, 15, 15]
    names = REPO / "config" / "roi_names.yaml"
    progress = tmp_path / "progress.log"
    with progress.open("w") as log:
        rows = extract_series(
            image_path,
            masks,
            REPO / "config" / "pyradiomics" / "CT.yaml",
            FeatureRois("standard", names),
            max_roi_voxels=None,
            progress=log,
        ).set_index("roi_original")
    assert rows.loc["GTV", "status"] == "ok" and rows.loc["GTV", "resampled_voxels"] == rows.loc["GTV", "mask_voxels"]
    for point in ("ISO", "Marker 1", "BB1"):
        assert rows.loc[point, "status"] == "skipped" and rows.loc[point, "reason"].startswith(
            f"not a volume: ROI '{point}' is "
        ), point
    assert (
        rows.loc["BODY", "status"] == "skipped" and "External, marked `features: false`" in rows.loc["BODY", "reason"]
    )
    assert rows.loc["Bolus", "status"] == "skipped" and "unmapped" in rows.loc["Bolus", "reason"]
    # an organ drawn as a sliver one voxel wide on one slice: below pyradiomics' minimum dimensions, said in words
    assert rows.loc["Chiasm", "status"] == "failed" and "spans 7 x 1 x 1 voxels" in rows.loc["Chiasm", "reason"]
    assert rows.loc["BODY", "mask_volume_mm3"] == pytest.approx(4 / 3 * np.pi * 25**3, rel=0.02)
    assert not rows["reason"].str.contains("Error:|Traceback").any()
    # the log names every ROI as it goes, with its voxels, seconds and peak memory when it was extracted
    lines = progress.read_text().splitlines()
    assert len(lines) == len(rows) + 1 and any(
        line.startswith("ROI GTVp ('GTV'): 1,") and " s, peak " in line for line in lines
    )
    assert (
        lines[-1].startswith("7 ROIs (1 failed, 1 ok, 5 skipped) in ")
        and "peak resident memory of the job" in lines[-1]
    )
    assert rows.loc["GTV", "seconds"] > 0 and rows.loc["GTV", "peak_rss_mb"] > 50
    # feature_rois: all extracts the body; the voxel budget then skips it, naming its size and the key
    every = extract_series(
        image_path, masks, REPO / "config" / "pyradiomics" / "CT.yaml", FeatureRois("all"), max_roi_voxels=20000
    ).set_index("roi_original")
    assert every.loc["Bolus", "status"] == "ok" and every.loc["GTV", "status"] == "ok"
    assert every.loc["BODY", "status"] == "skipped" and "exceed max_roi_voxels = 20,000" in every.loc["BODY", "reason"]
    assert every.loc["ISO", "status"] == "skipped"


def test_job_resources_count_only_the_rois_that_will_be_extracted(tmp_path):
    """What a features job asks for follows the ROIs it will extract: the body outline costs nothing by default,
    and everything with feature_rois: all; the ROI count is the count of rows that come out ok."""
    from radflow.features import job_resources

    image_path, masks = _planning_ct(tmp_path)
    sidecar = json.loads(image_path.with_name("image.json").read_text())
    entries = json.loads((masks / "masks.json").read_text())
    settings = REPO / "config" / "pyradiomics" / "CT.yaml"
    names = REPO / "config" / "roi_names.yaml"
    default = job_resources(sidecar, entries, settings, FeatureRois("standard", names), 4_000_000)
    every = job_resources(sidecar, entries, settings, FeatureRois("all"), None)
    rows = extract_series(image_path, masks, settings, FeatureRois("standard", names), 4_000_000)
    assert default["rois"] == (rows["status"] == "ok").sum() == 1  # the GTV (the sliver fails before pyradiomics)
    assert every["rois"] == 3 and every["largest_roi_voxels"] > 30 * default["largest_roi_voxels"]
    assert every["seconds"] > default["seconds"] and every["mem_mb"] >= default["mem_mb"]
    budget = job_resources(sidecar, entries, settings, FeatureRois("all"), 20_000)
    assert budget["rois"] == 2 and budget["largest_roi_voxels"] < every["largest_roi_voxels"]  # the body is over it
    assert default["mem_mb"] % 100 == 0 and default["minutes"] >= 2


def test_cropped_resampling_equals_pyradiomics(tmp_path):
    """radflow resamples only the image around each ROI, on the grid pyradiomics computes from the whole mask: every
    value equals pyradiomics' own extraction on the whole image, bit for bit (a 0.98 mm image, resampled to 1 mm
    by the CT settings, kept as acquired by the PET settings)."""
    from radflow.features import extract_roi, make_extractor, resample_cropped

    rng = np.random.default_rng(5)
    arr = rng.normal(40, 30, (40, 200, 200)).round().astype(np.int16)
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.977, 0.977, 3.0))
    image.SetOrigin((-97.3, -101.1, -60.0))
    m = np.zeros(arr.shape, np.uint8)
    m[12:20, 60:90, 100:140] = 1
    m[14:18, 70:80, 110:150] = 1
    mask = sitk.GetImageFromArray(m)
    mask.CopyInformation(image)
    for settings, voxel_mm3 in (("CT.yaml", 1.0), ("PT.yaml", 0.977 * 0.977 * 3.0)):  # resampled; as acquired
        extractor = make_extractor(REPO / "config" / "pyradiomics" / settings)
        assert resample_cropped(image, mask, extractor.settings) is not None
        info = {}
        ours, failure = extract_roi(extractor, image, mask, info=info)
        theirs = feature_values(extractor.execute(image, mask))
        assert failure == "" and len(ours) == len(theirs) > 100
        assert {k: v for k, v in ours.items() if not same_as_pyradiomics(k, v, theirs[k])} == {}, settings
        assert info["resampled_voxels"] == round(theirs["original_shape_VoxelVolume"] / voxel_mm3)


def test_mapping_has_105_features_per_aggregation():
    for two_d in (False, True):
        mapping = feature_map(two_d)
        assert len(mapping) == 105 and all(
            v.split("_")[0] in {"shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"}
            for v in mapping.values()
        )


@pytest.fixture(scope="module")
def ibsi_table(tmp_path_factory):
    if not (IBSI / "reference_values_zrad").is_dir():
        pytest.skip("IBSI reference data not on this machine")
    return conformance(IBSI, tmp_path_factory.mktemp("ibsi"), REPO / "config" / "pyradiomics" / "ibsi")


def test_conformance_table(ibsi_table):
    assert list(ibsi_table.columns) == COLUMNS
    assert (ibsi_table.groupby(["dataset", "mode"]).size() == 105).all()
    plain = ibsi_table[ibsi_table["mode"] == "pyradiomics"].groupby("dataset")["within_tolerance"].sum().to_dict()
    assert plain["digital_phantom"] == 102 and plain["A"] == 104
    # every deviation carries a note
    assert (ibsi_table.loc[~ibsi_table["within_tolerance"], "note"].str.len() > 0).all()


def test_ibsi_mode_pins(ibsi_table, tmp_path_factory):
    """IBSI mode: all 105 mapped features within tolerance on the digital phantom and on configuration D (and, as
    measured, on A-E); the interpolated ROI holds IBSI's 45,985 voxels."""
    ibsi = ibsi_table[ibsi_table["mode"] == "ibsi"].groupby("dataset")["within_tolerance"].sum().to_dict()
    assert ibsi["digital_phantom"] == 105 and ibsi["D"] == 105
    assert all(ibsi[d] >= 104 for d in ("A", "B", "C", "E"))
    voxels = pd.read_csv(next(tmp_path_factory.getbasetemp().glob("ibsi*/roi_voxels.csv")))
    roi = voxels[voxels["mode"] == "ibsi"].set_index("dataset")["roi_voxels"]
    assert (roi[["C", "D", "E"]] == 45985).all()
    # IBSI-defined values sit in their own columns
    assert set(
        ibsi_table.loc[
            (ibsi_table["mode"] == "ibsi") & ibsi_table["ibsi_feature"].eq("stat_kurt"), "pyradiomics_feature"
        ]
    ) == {"ibsi_stat_kurt"}


def test_ibsi_columns_leave_pyradiomics_columns_alone():
    from radflow.features.ibsi_mode import ibsi_columns

    values = {"original_firstorder_Kurtosis": 5.0, "original_shape_MajorAxisLength": 10.0}
    extra = ibsi_columns(values, morph_voxels=5)
    assert extra["ibsi_stat_kurt"] == 2.0
    assert extra["ibsi_morph_pca_maj_axis"] == pytest.approx(10.0 * (5 / 4) ** 0.5)
    assert values == {"original_firstorder_Kurtosis": 5.0, "original_shape_MajorAxisLength": 10.0}


def test_every_digital_phantom_feature_defined_the_ibsi_way_is_within_tolerance(ibsi_table):
    dp = ibsi_table[(ibsi_table["dataset"] == "digital_phantom") & (ibsi_table["mode"] == "pyradiomics")]
    misses = set(dp.loc[~dp["within_tolerance"], "ibsi_feature"])
    assert misses <= DEFINITIONAL, misses
    # and the definitional ones are off by exactly their documented difference
    kurt = dp.set_index("ibsi_feature").loc["stat_kurt"]
    assert abs((kurt["value"] - 3) - kurt["reference"]) <= max(kurt["tolerance"], 0.001)


def test_a_features_job_plans_at_least_what_its_masks_need(index_tables, tmp_path):
    """A features job is planned before its series job converts and masks: each ROI as its contours' bounding box on
    the image's grid, from the index. That box holds every voxel of the ROI's mask, so the plan asks at least the
    memory and time job_resources computes from the masks afterwards (and, for these ellipsoids, within 2.5 times
    their voxels)."""
    from radflow.dicom.convert import convert_series
    from radflow.features import job_resources, planned_resources
    from radflow.index import series_files

    series, rois, links = index_tables["series"], index_tables["rois"], index_tables["links"]
    settings = REPO / "config" / "pyradiomics" / "CT.yaml"
    names = REPO / "config" / "roi_names.yaml"
    cts = series[series["convert"] & (series["modality"] == "CT")].head(3)
    for row in cts.itertuples():
        mine = links[(links["image_series_uid"] == row.series_uid) & (links["source_modality"] == "RTSTRUCT")]
        structure = rois[rois["rtstruct_sop_uid"].isin(set(mine["source_sop_uid"]))]
        image = tmp_path / f"{row.series_uid}.nii.gz"
        sidecar = convert_series(series_files(index_tables["instances"], row.series_uid), image)
        masks = write_masks(sorted(set(mine["source_path"])), image, tmp_path / row.series_uid, load_aliases(names))
        for rule, budget in ((FeatureRois("standard", names), 4_000_000), (FeatureRois("all"), None)):
            plan = planned_resources(row._asdict(), structure.to_dict("records"), settings, rule, budget)
            actual = job_resources(sidecar, masks, settings, rule, budget)
            assert plan["rois"] == actual["rois"] >= 4
            assert actual["largest_roi_voxels"] <= plan["largest_roi_voxels"] <= 2.5 * actual["largest_roi_voxels"]
            assert plan["mem_mb"] >= actual["mem_mb"] and plan["minutes"] >= actual["minutes"]


def test_feature_units_follow_the_image_and_the_feature_class():
    """Sizes in mm, mm², mm³ (IBSI: volume, area, diameters); first-order intensity statistics in the image's unit
    or its square (energy, variance); ratios and every texture feature (on discretised grey levels) without unit;
    nothing stated where radflow does not know (a non-linear filter, values as stored)."""
    from radflow.features import feature_unit

    expected = {
        ("original_shape_MeshVolume", "HU"): "mm³",
        ("original_shape_SurfaceArea", "HU"): "mm²",
        ("original_shape_SurfaceVolumeRatio", "HU"): "1/mm",
        ("original_shape_Maximum3DDiameter", "SUVbw (g/ml)"): "mm",
        ("original_shape_Sphericity", "HU"): "1",
        ("original_shape2D_Perimeter", "HU"): "mm",
        ("original_firstorder_Mean", "HU"): "HU",
        ("original_firstorder_90Percentile", "SUVbw (g/ml)"): "SUVbw",
        ("original_firstorder_Maximum", "BQML"): "Bq/ml",
        ("original_firstorder_Variance", "HU"): "HU²",
        ("original_firstorder_Energy", "SUVbw (g/ml)"): "SUVbw²",
        ("original_firstorder_TotalEnergy", "HU"): "HU²·mm³",
        ("original_firstorder_Entropy", "HU"): "1",
        ("original_firstorder_Skewness", "HU"): "1",
        ("wavelet-LLH_firstorder_Mean", "HU"): "HU",
        ("log-sigma-3-0-mm-3D_firstorder_Median", "HU"): "HU",
        ("logarithm_firstorder_Mean", "HU"): "",
        ("square_firstorder_Mean", "HU"): "",
        ("original_firstorder_Mean", "as stored"): "",
        ("original_glcm_Contrast", "HU"): "1",
        ("original_glszm_LargeAreaEmphasis", "HU"): "1",
        ("wavelet-HHH_ngtdm_Busyness", "as stored"): "1",
    }
    got = {key: feature_unit(*key) for key in expected}
    assert got == expected
    # MR settings normalise (z-scores times normalizeScale): first-order features have no unit
    assert feature_unit("original_firstorder_Mean", "as stored", normalized=True) == "1"
    assert feature_unit("original_firstorder_TotalEnergy", "as stored", normalized=True) == "mm³"


def test_an_identical_mask_of_the_same_image_is_extracted_once(tmp_path, monkeypatch):
    """The same GTV from three structure sets of one frame of reference (as the IBSI sarcoma patients have it): the
    three rows carry the same values, the second and third name the first in shared_with and took no extraction;
    a mask one voxel different is extracted on its own."""
    rng = np.random.default_rng(4)
    arr = rng.normal(40, 20, (20, 40, 40)).round().astype(np.int16)
    image = sitk.GetImageFromArray(arr)
    m = np.zeros(arr.shape, np.uint8)
    m[6:14, 10:28, 12:30] = 1
    other = m.copy()
    other[6, 10, 12] = 0
    masks = {}
    for name, a in (("GTV_CT", m), ("GTV_MR", m), ("GTV_PET", m), ("GTV_other", other)):
        masks[name] = sitk.GetImageFromArray(a)
        masks[name].CopyInformation(image)
    image_path, folder = _series(tmp_path, image, masks)
    import radflow.features.extract

    calls = []
    real = radflow.features.extract.extract_roi
    monkeypatch.setattr(radflow.features.extract, "extract_roi", lambda *a, **k: calls.append(1) or real(*a, **k))
    rows = extract_series(image_path, folder, REPO / "config" / "pyradiomics" / "CT.yaml").set_index("roi")
    features = [c for c in rows.columns if c.startswith("original_")]
    assert (rows["status"] == "ok").all() and len(calls) == 2
    assert rows["shared_with"].to_dict() == {"GTV_CT": "", "GTV_MR": "GTV_CT", "GTV_PET": "GTV_CT", "GTV_other": ""}
    for name in ("GTV_MR", "GTV_PET"):
        assert rows.loc[name, features].equals(rows.loc["GTV_CT", features])
    assert rows.loc["GTV_other", "original_shape_VoxelVolume"] != rows.loc["GTV_CT", "original_shape_VoxelVolume"]


def _flat_cases():
    """Images whose ROI holds whole-number flat regions (where a truncating cast turns 1e-13 into 1 HU), an ROI at
    the image's edge, non-dyadic spacings."""
    rng = np.random.default_rng(11)

    def case(name, arr, spacing, box, settings="CT.yaml"):
        image = sitk.GetImageFromArray(arr)
        image.SetSpacing(spacing)
        image.SetOrigin((-97.3, -101.1, -60.0))
        m = np.zeros(arr.shape, np.uint8)
        m[box] = 1
        mask = sitk.GetImageFromArray(m)
        mask.CopyInformation(image)
        return pytest.param(image, mask, settings, id=name)

    tissue = rng.normal(40, 30, (36, 160, 160)).round().astype(np.int16)
    air = tissue.copy()
    air[:, :, :110] = -1000  # half the ROI's box is air at exactly -1000 HU, inside the re-segmentation range
    yield case("air at -1000 HU inside the ROI", air, (0.977, 0.977, 3.0), np.s_[10:20, 50:90, 80:140])
    yield case("air, another grid", air, (1.17, 1.17, 2.0), np.s_[10:20, 50:90, 80:140])
    padded = tissue.copy()
    padded[:, :, :30] = -1024  # clipped padding, out of the field of view
    yield case("ROI at the edge by -1024 padding", padded, (0.977, 0.977, 3.0), np.s_[4:30, 20:80, 0:40])
    yield case("ROI at the image's corner", tissue, (0.977, 0.977, 3.0), np.s_[0:6, 0:30, 0:30])
    yield case("non-dyadic spacing", tissue, (1.1111, 0.8333, 2.7182818), np.s_[8:20, 40:100, 40:100])
    mr = np.where(rng.random((36, 160, 160)) < 0.5, 0, rng.normal(300, 50, (36, 160, 160))).astype(np.float32)
    mr[:, :, :80] = 0  # zero background
    yield case("float image, zero background", mr, (0.9375, 0.9375, 4.0), np.s_[10:25, 50:90, 60:110])


@pytest.mark.parametrize("image,mask,settings", list(_flat_cases()))
def test_cropped_resampling_equals_pyradiomics_on_flat_regions(image, mask, settings):
    """Where pyradiomics' B-spline result lands within rounding of a whole number (flat regions, which its cast back
    to the image's integer type truncates), the cropped resampling would differ by 1 HU; radflow then resamples the
    whole image as pyradiomics does: every value equal, bit for bit."""
    from radflow.features import extract_roi, make_extractor

    extractor = make_extractor(REPO / "config" / "pyradiomics" / settings)
    ours, failure = extract_roi(extractor, image, mask)
    with mesh_shape.enabled(True):  # the same shape coefficients on both sides; only the crop is compared
        theirs = feature_values(extractor.execute(image, mask))
    assert failure == "" and len(ours) == len(theirs) > 100
    assert {k: (v, theirs[k]) for k, v in ours.items() if not same_as_pyradiomics(k, v, theirs[k])} == {}


def _with(settings: Path, tmp_path, name: str, **changes) -> Path:
    """A copy of a settings file with some top-level blocks replaced (None removes one)."""
    import yaml

    params = yaml.safe_load(settings.read_text()) or {}
    for key, value in changes.items():
        params.pop(key, None) if value is None else params.__setitem__(key, value)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


PYRADIOMICS_OWN = {"fast_preparation": False, "fast_size_zones": False}  # (the shape coefficients: test_mesh_shape)


def same_as_pyradiomics(name: str, ours: float, theirs: float) -> bool:
    """Bit for bit, but for the GLSZM features that sum over the whole matrix (radflow.features.size_zones: numpy
    may add them in another order), within 1e-12 relative."""
    if any(f"_glszm_{word}" in name for word in ("ZoneEntropy", "AreaLowGray", "AreaHighGray")):
        return abs(ours - theirs) <= 1e-12 * abs(theirs)
    return ours == theirs


def _preparation_cases():
    rng = np.random.default_rng(11)
    ct = rng.normal(40, 60, (30, 90, 90)).round().astype(np.int16)
    ct[:, :, :20] = -1000  # air at the edge of the ROI, inside the resegmentation range
    ct_image = sitk.GetImageFromArray(ct)
    ct_image.SetSpacing((0.98, 0.98, 2.5))
    m = np.zeros(ct.shape, np.uint8)
    m[8:22, 25:70, 10:60] = 1
    m[10:20, 30:60, 30:80] = 2  # a second label: the first's voxels there are not the first's
    mask = sitk.GetImageFromArray(m)
    mask.CopyInformation(ct_image)
    pet = sitk.GetImageFromArray(rng.lognormal(0.5, 0.6, (30, 60, 60)).astype(np.float32))
    pet.SetSpacing((4.0, 4.0, 3.0))
    pm = np.zeros((30, 60, 60), np.uint8)
    pm[10:20, 15:45, 20:40] = 1
    pet_mask = sitk.GetImageFromArray(pm)
    pet_mask.CopyInformation(pet)
    whole = sitk.GetImageFromArray(np.ones((6, 12, 12), np.uint8))  # the ROI is the whole image: nothing cropped
    whole.CopyInformation(sitk.RegionOfInterest(ct_image, (12, 12, 6), (20, 30, 10)))
    small_ct = sitk.RegionOfInterest(ct_image, (12, 12, 6), (20, 30, 10))
    return ct_image, mask, pet, pet_mask, small_ct, whole


def test_the_fast_preparation_and_size_zones_keep_pyradiomics_values(tmp_path):
    """radflow.features.preparation (the mask's label check and bounding box read from the mask, the bin edges'
    minimum and maximum by numpy, one discretisation per ROI for all classes) and radflow.features.size_zones (the
    GLSZM from connected components, without pyradiomics' dense matrix) against pyradiomics' own (`radflow:
    {fast_preparation: false, fast_size_zones: false}`), value for value: CT settings (fixed bin width,
    resegmentation; noise with a flat air region, one zone of thousands of voxels) on two labels of one mask, a fixed
    bin count, LoG and wavelet images beside the original (a discretisation of each), a float PET image, an ROI that
    is the whole image, and the IBSI mode's bin start; a label the mask lacks and an empty mask get pyradiomics' own
    message."""
    from radflow.features import extract_roi, make_extractor

    ct_image, mask, pet, pet_mask, small_ct, whole = _preparation_cases()
    ct = REPO / "config" / "pyradiomics" / "CT.yaml"
    filters = {"Original": {}, "LoG": {"sigma": [2.0]}, "Wavelet": {}}
    cases = [
        (ct, ct_image, mask, 1),
        (ct, ct_image, mask, 2),
        (
            _with(ct, tmp_path, "bincount", setting=dict(label=1, binCount=16, resampledPixelSpacing=None)),
            ct_image,
            mask,
            1,
        ),
        (_with(ct, tmp_path, "filters", imageType=filters), ct_image, mask, 1),
        (REPO / "config" / "pyradiomics" / "PT.yaml", pet, pet_mask, 1),
        (ct, small_ct, whole, 1),
        (REPO / "config" / "pyradiomics" / "ibsi" / "C_ibsi.yaml", ct_image, mask, 1),
    ]
    compared = 0
    for settings, image, roi, label in cases:
        slow = make_extractor(_with(settings, tmp_path, "slow", radflow=PYRADIOMICS_OWN))
        fast = make_extractor(settings)
        assert fast.radflow_fast_preparation and fast.radflow_fast_size_zones
        assert not slow.radflow_fast_preparation and not slow.radflow_fast_size_zones
        theirs, why_not = extract_roi(slow, image, roi, label)
        ours, why = extract_roi(fast, image, roi, label)
        assert why == why_not == "" and len(ours) == len(theirs) > 90, (settings.name, why, why_not)
        assert {k: (v, theirs[k]) for k, v in ours.items() if not same_as_pyradiomics(k, v, theirs[k])} == {}, (
            settings.name,
            label,
        )
        compared += len(ours)
    assert compared > 1000
    # the errors are pyradiomics' own, word for word
    empty = sitk.Image(mask.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(mask)
    for roi, label in ((mask, 3), (empty, 1)):
        slow = make_extractor(_with(ct, tmp_path, "slow", radflow=PYRADIOMICS_OWN))
        theirs = extract_roi(slow, ct_image, roi, label)
        ours = extract_roi(make_extractor(ct), ct_image, roi, label)
        assert ours == theirs and ours[0] == {} and "pyradiomics: ValueError" in ours[1], (ours, theirs)


def test_radflow_settings_block_names_what_it_does_not_know(tmp_path):
    """A misspelled key in a settings file's `radflow:` block is refused by name, with the keys there are."""
    from radflow.features import make_extractor

    path = _with(REPO / "config" / "pyradiomics" / "CT.yaml", tmp_path, "typo", radflow={"fast_shapes": False})
    with pytest.raises(ValueError, match=r"typo\.yaml: radflow: fast_shapes is not one of radflow's settings"):
        make_extractor(path)
