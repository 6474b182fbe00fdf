"""Overlay pictures are drawn through the ROI's centre whatever the storage orientation; distributions and counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk
from matplotlib.image import imread
from PIL import Image

from radflow.qc import cohort_counts, feature_distributions, roi_overlay


def _sphere(centre_mm, radius_mm, size=(60, 50, 40), spacing=(1.0, 1.2, 2.0)):
    image = sitk.Image(list(size), sitk.sitkFloat32)
    image.SetSpacing(spacing)
    image.SetOrigin((-30.0, -25.0, -40.0))
    k, j, i = np.meshgrid(*(np.arange(n) for n in reversed(size)), indexing="ij")
    pts = np.stack([i, j, k], -1) * np.asarray(spacing) + np.asarray(image.GetOrigin())
    inside = ((pts - np.asarray(centre_mm)) ** 2).sum(-1) <= radius_mm**2
    arr = np.where(inside, 60.0, -50.0).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(image)
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(image)
    return img, mask


def _as_sagittal(image: sitk.Image) -> sitk.Image:
    """The same voxels stored as a sagittal acquisition: axes permuted, direction says so."""
    arr = sitk.GetArrayFromImage(image)  # z, y, x
    sag = np.ascontiguousarray(np.transpose(arr, (2, 0, 1)))  # stored slices run along x; rows z, columns y
    out = sitk.GetImageFromArray(sag)  # sitk axes (y, z, x)
    sx, sy, sz = image.GetSpacing()
    out.SetSpacing((sy, sz, sx))
    out.SetOrigin(image.GetOrigin())
    out.SetDirection((0, 0, 1, 1, 0, 0, 0, 1, 0))  # index axis 0 runs along +y, 1 along +z, 2 along +x
    return out


def test_overlay_goes_through_the_sphere_centre(tmp_path):
    centre = (4.0, -3.6, -10.0)
    img, mask = _sphere(centre, 9.0)
    got = roi_overlay(img, mask, tmp_path / "axial.png", "CT", "sphere")
    index = img.TransformPhysicalPointToIndex(centre)
    assert got["centre_lps_index"] == list(index)
    assert got["voxels"] == int(sitk.GetArrayViewFromImage(mask).sum())
    picture = imread(tmp_path / "axial.png")
    red = (picture[..., 0] > 0.8) & (picture[..., 1] < 0.3) & (picture[..., 2] < 0.3)
    assert red.sum() > 300  # the outline is drawn in all three panels
    thirds = np.array_split(red, 3, axis=1)
    assert all(t.sum() > 50 for t in thirds)


def test_overlay_is_the_same_for_a_sagittal_acquisition(tmp_path):
    centre = (4.0, -3.6, -10.0)
    img, mask = _sphere(centre, 9.0)
    sag_img, sag_mask = _as_sagittal(img), _as_sagittal(mask)
    # the permuted image holds the same voxel at the same physical point
    p = img.TransformIndexToPhysicalPoint((10, 20, 30))
    assert sag_img.GetPixel(sag_img.TransformPhysicalPointToIndex(p)) == img.GetPixel((10, 20, 30))
    a = roi_overlay(img, mask, tmp_path / "a.png", "CT", "sphere")
    s = roi_overlay(sag_img, sag_mask, tmp_path / "s.png", "CT", "sphere")
    assert a == s
    assert np.array_equal(imread(tmp_path / "a.png"), imread(tmp_path / "s.png"))


def test_a_hot_pet_lesion_is_not_saturated(tmp_path):
    """A PET lesion of SUV 90 in a body of SUV 1 (as QIN's): 99.5 % of the image is body or air, so the percentile
    window would end near 1 and the lesion be one white blot; the window reaches the ROI's highest value."""
    img, mask = _sphere((4.0, -3.6, -10.0), 6.0)
    arr = sitk.GetArrayFromImage(img)
    lesion = sitk.GetArrayViewFromImage(mask) > 0
    suv = np.ones(arr.shape, np.float32)
    suv[lesion] = np.linspace(20.0, 90.0, int(lesion.sum()))
    assert np.percentile(suv, 99.5) < 2.0  # the lesion is under 0.5 % of the voxels
    pet = sitk.GetImageFromArray(suv)
    pet.CopyInformation(img)
    got = roi_overlay(pet, mask, tmp_path / "pet.png", "PT", "lesion")
    assert got["window"][0] == 0.0 and got["window"][1] == float(suv[lesion].max()) > 80
    # CT keeps its fixed soft-tissue window; MR its percentiles
    assert roi_overlay(img, mask, tmp_path / "ct.png", "CT", "sphere")["window"] == [-160.0, 240.0]
    # each picture states its window, in the image's units and how it was chosen (in the title and the PNG's text)
    assert Image.open(tmp_path / "ct.png").text["Title"] == "sphere\nwindow -160 to 240 HU (fixed, W 400 L 40)"
    assert Image.open(tmp_path / "pet.png").text["Title"] == (
        f"lesion\nwindow 0 to {suv[lesion].max():.4g} SUVbw (g/ml) (0 to percentile 99.5 of the image or the "
        "ROI's maximum)"
    )
    roi_overlay(pet, mask, tmp_path / "bqml.png", "PT", "lesion", units="BQML")
    assert " Bq/ml (0 to percentile 99.5" in Image.open(tmp_path / "bqml.png").text["Title"]


def test_distributions_and_counts(tmp_path):
    rng = np.random.default_rng(0)
    features = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(10)] * 2,
            "modality": ["CT"] * 20,
            "image_units": ["HU"] * 20,
            "roi": ["GTVp"] * 10 + ["GTVn"] * 10,
            "status": ["ok"] * 19 + ["failed"],
            "settings": ["CT.yaml"] * 20,
            "original_shape_MeshVolume": rng.uniform(1e3, 5e4, 20),
            "original_firstorder_Mean": rng.normal(40, 5, 20),
            "original_glcm_Contrast": rng.uniform(1, 5, 20),
        }
    )
    # PET in SUV and PET kept in Bq/ml (pet_fallback: bqml) are never one histogram
    pet = features.iloc[:6].assign(modality="PT", roi="GTVp", settings="PT.yaml", status="ok")
    pet["image_units"] = ["SUVbw (g/ml)"] * 5 + ["BQML"]
    names = feature_distributions(pd.concat([features, pet], ignore_index=True), tmp_path)
    assert names == ["CT_GTVn", "CT_GTVp", "PT_BQML_GTVp", "PT_SUVbw_GTVp"]
    assert (tmp_path / "CT_GTVp.png").stat().st_size > 5000
    ct = Image.open(tmp_path / "CT_GTVp.png").text
    assert ct["Title"] == "CT (HU) GTVp: 10 patients, 10 rows; settings CT.yaml"
    assert ct["Description"] == (
        "original_shape_MeshVolume [mm³]; original_firstorder_Mean [HU]; original_glcm_Contrast [dimensionless]"
    )
    bqml = Image.open(tmp_path / "PT_BQML_GTVp.png").text
    assert "original_firstorder_Mean [Bq/ml]" in bqml["Description"]
    assert bqml["Title"] == "PT (BQML) GTVp: 1 patient, 1 row; settings PT.yaml"
    assert "original_firstorder_Mean [SUVbw]" in Image.open(tmp_path / "PT_SUVbw_GTVp.png").text["Description"]
    series = pd.DataFrame(
        {
            "patient_id": ["P0", "P0", "P1"],
            "study_uid": ["s0", "s0", "s1"],
            "modality": ["CT", "RTSTRUCT", "CT"],
            "convert": [True, False, False],
        }
    )
    problems = pd.DataFrame({"severity": ["excluded", "warning", "excluded"]})
    cohort = pd.DataFrame(
        {
            "patient_id": ["P0", "P1", "P2"],
            "in_modelling_table": [True, False, False],
            "reason": [None, "no converted image series", "no converted image series"],
        }
    )
    clinical = pd.DataFrame({"patient_id": ["P0", "P1", "P2"], "os_days": [10, 20, None], "os_event": [1, 0, None]})
    modelling = pd.DataFrame({"patient_id": ["P0"], "os_event": [1]})
    counts = cohort_counts(series, problems, features, cohort, clinical, modelling)
    n = dict(zip(counts["count"], counts["n"]))
    assert n["patients with DICOM"] == 2 and n["image series converted"] == 1
    assert n["problems.tsv rows: excluded"] == 2 and n["feature rows failed"] == 1 and n["ok rows CT GTVn"] == 9
    assert n["patients with OS time and status"] == 2 and n["OS events in the modelling table"] == 1
    assert n["left out: no converted image series"] == 2


def test_model_overlays_draw_every_instance_of_the_model_roi(tmp_path):
    """qc_overlays: model draws the modelling table's ROI whichever instance was chosen (GTVp_2, GTVp_union)."""
    from conftest import REPO
    from factory import sphere_contours, write_rtstruct

    from radflow.dicom.masks import write_masks
    from radflow.qc import series_overlays
    from radflow.roi_names import load_aliases

    image, _ = _sphere((0.0, 0.0, -5.0), 8.0)
    sitk.WriteImage(image, str(tmp_path / "ct.nii.gz"))
    (tmp_path / "ct.json").write_text('{"modality": "CT", "status": "ok"}')
    zs = np.arange(-38.0, 38.1, 2.0)
    rois = {
        "GTV": sphere_contours((0.0, 0.0, -5.0), 8.0, zs),
        "GTV_1": sphere_contours((5.0, 0.0, -5.0), 6.0, zs),
        "Parotid_L": sphere_contours((-15.0, 0.0, -5.0), 5.0, zs),
    }
    rs = write_rtstruct(tmp_path / "rs.dcm", rois)
    labels = {
        m["label"]: m["roi"]
        for m in write_masks(
            [rs],
            tmp_path / "ct.nii.gz",
            tmp_path / "masks",
            load_aliases(REPO / "config" / "roi_names.yaml"),
            union=True,
        )
    }
    assert labels == {"GTVp": "GTVp", "GTVp_2": "GTVp", "GTVp_union": "GTVp", "Parotid_L": "Parotid_L"}
    drawn = series_overlays(tmp_path / "ct.nii.gz", tmp_path / "masks", tmp_path / "qc", "P", "1.2.3", "GTVp")
    assert sorted(drawn) == ["GTVp", "GTVp_2", "GTVp_union"]
    assert sorted(p.name for p in (tmp_path / "qc").iterdir()) == ["GTVp.png", "GTVp_2.png", "GTVp_union.png"]
    # the title names the patient, modality, series, ROI and its name in the structure set, and the window
    assert Image.open(tmp_path / "qc" / "GTVp_2.png").text["Title"] == (
        "P · CT series …1.2.3 · GTVp_2 ('GTV_1')\nwindow -160 to 240 HU (fixed, W 400 L 40)"
    )
    # roi_instances: suffix models the label named (GTVp_2), and only that one is drawn
    drawn = series_overlays(
        tmp_path / "ct.nii.gz", tmp_path / "masks", tmp_path / "qc2", "P", "1.2.3", "GTVp_2", "suffix"
    )
    assert drawn == ["GTVp_2"]
