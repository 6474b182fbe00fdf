"""The rasteriser against analytic truths: rings with holes, non-square and anisotropic grids, other grids."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import REPO
from factory import circle as circle3d
from factory import grid_image, sphere_contours, write_rtstruct

from radflow.dicom.geometry import Grid
from radflow.dicom.masks import fill_even_odd, rasterise_roi, write_masks
from radflow.roi_names import load_aliases

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def square(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def circle(cx, cy, r, n=720):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([cx + r * np.cos(t), cy + r * np.sin(t)])


def planar(poly2d, z):
    return ("CLOSED_PLANAR", np.column_stack([poly2d, np.full(len(poly2d), z)]))


def test_voxel_centre_rule_on_a_square():
    # square from 1.5 to 5.5 holds the centres 2, 3, 4, 5 in each direction
    assert fill_even_odd([square(1.5, 1.5, 5.5, 5.5)], 10, 10).sum() == 16
    # a square from 1.2 to 1.8 holds no centre at all
    assert fill_even_odd([square(1.2, 1.2, 1.8, 1.8)], 10, 10).sum() == 0


def test_even_odd_hole_ring_and_island():
    outer, hole, island = square(-0.5, -0.5, 19.5, 19.5), square(4.5, 4.5, 14.5, 14.5), square(7.5, 7.5, 11.5, 11.5)
    mask = fill_even_odd([outer, hole, island], 20, 20)
    assert mask.sum() == 400 - 100 + 16
    assert not mask[5, 5] and mask[9, 9] and mask[0, 0]
    # the contour order and orientation do not matter
    assert (fill_even_odd([island[::-1], outer, hole[::-1]], 20, 20) == mask).all()


def test_disc_area_converges():
    mask = fill_even_odd([circle(100.3, 99.7, 60.0)], 200, 200)
    assert mask.sum() == pytest.approx(math.pi * 60.0**2, rel=2e-3)


def test_non_square_anisotropic_grid():
    # 40 rows x 120 columns, pixels 0.5 mm wide (x) and 2 mm high (y)
    grid = Grid((120, 40, 3), (0.5, 2.0, 3.0), (-30.0, -40.0, 0.0), AXIAL)
    contours = [planar(square(-10.0, -20.0, 20.0, 10.0), z) for z in (0.0, 3.0, 6.0)]
    mask, audit = rasterise_roi(contours, grid)
    assert mask.shape == (3, 40, 120)
    # x from -10 to 20 mm: centres -30 + 0.5 i in (-10, 20) -> i = 40..99 (60 columns)
    # y from -20 to 10 mm: centres -40 + 2 j in (-20, 10) -> j = 10..24 (15 rows)
    assert mask[1].sum() == 60 * 15
    cols = np.where(mask[1].any(axis=0))[0]
    rows = np.where(mask[1].any(axis=1))[0]
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (40, 99, 10, 24)
    assert audit["polygon_volume_mm3"] == pytest.approx(30 * 30 * 9.0)


def test_sphere_volume_on_a_coarser_grid_of_the_same_frame():
    """Contours drawn on 2 mm slices, rasterised directly on a 4 mm grid (as on a PET)."""
    r, centre = 20.0, (1.0, -2.0, 3.0)
    contours = []
    for z in np.arange(-30, 30.01, 2.0):
        rz2 = r * r - (z - centre[2]) ** 2
        if rz2 > 0.25:
            contours.append(planar(circle(centre[0], centre[1], math.sqrt(rz2), 256), z))
    fine = Grid((60, 60, 31), (1.0, 1.0, 2.0), (-30.0, -30.0, -30.0), AXIAL)
    coarse = Grid((30, 30, 16), (2.0, 2.0, 4.0), (-29.0, -29.0, -30.0), AXIAL)
    sphere = 4 / 3 * math.pi * r**3
    for grid, tol in ((fine, 0.01), (coarse, 0.05)):
        mask, _ = rasterise_roi(contours, grid)
        assert mask.sum() * np.prod(grid.spacing) == pytest.approx(sphere, rel=tol)


def test_contour_between_slices_goes_to_the_nearest_slice():
    grid = Grid((10, 10, 5), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), AXIAL)
    mask, _ = rasterise_roi([planar(square(1.5, 1.5, 5.5, 5.5), 4.6)], grid)  # nearest slice: z = 4 (k = 2)
    assert mask[2].sum() == 16 and mask.sum() == 16


def test_partly_outside_is_clipped_with_a_warning_and_open_contours_are_noted():
    grid = Grid((10, 10, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), AXIAL)
    contours = [
        planar(square(5.5, 5.5, 20.0, 20.0), 0.0),
        ("OPEN_PLANAR", np.zeros((4, 3))),
        ("POINT", np.zeros((1, 3))),
    ]
    mask, audit = rasterise_roi(contours, grid, "edge")
    assert mask.sum() == 16  # centres 6..9 in x and y
    assert any("outside" in w for w in audit["warnings"])
    assert any("OPEN_PLANAR" in n for n in audit["notes"]) and any("POINT" in n for n in audit["notes"])


def test_sagittal_grid():
    # a sagittal series: rows run along -z, columns along +y, slices along +x
    sagittal = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)  # columns of D: row dir (0,1,0), col dir (0,0,-1), normal
    d = np.array(sagittal).reshape(3, 3)
    grid = Grid((20, 20, 20), (1.0, 1.0, 1.0), (-10.0, -10.0, 10.0), tuple(d.ravel()))
    # axial contours are not parallel to sagittal slices: they are flagged, not silently misplaced
    _, audit = rasterise_roi([planar(square(-5, -5, 5, 5), 0.0)], grid)
    assert any("not parallel" in w for w in audit["warnings"])


# --------------------------------------------------------------- analytic shapes written as RTSTRUCT files

ALIASES = load_aliases(REPO / "config" / "roi_names.yaml")


def _volume(tmp_path, rois, size, spacing, origin, direction=AXIAL, kinds=None):
    rs = write_rtstruct(tmp_path / "rs.dcm", rois, kinds=kinds)
    image = grid_image(tmp_path / "image.nii.gz", size, spacing, origin, direction)
    sidecars = write_masks([rs], image, tmp_path / "masks", ALIASES)
    return {s["roi_original"]: s for s in sidecars}


def test_sphere_file(tmp_path):
    r = 20.0
    rois = {"sphere": sphere_contours((0.0, 0.0, 0.0), r, np.arange(-30, 30.1, 1.0))}
    got = _volume(tmp_path, rois, (80, 80, 61), (0.8, 0.8, 1.0), (-32, -32, -30))["sphere"]
    assert got["volume_mm3"] == pytest.approx(4 / 3 * math.pi * r**3, rel=0.01)
    assert got["polygon_volume_mm3"] == pytest.approx(4 / 3 * math.pi * r**3, rel=0.01)


def test_torus_hole(tmp_path):
    big, small = 20.0, 8.0  # a torus around the z axis: each slice is a ring (outer and inner circle)
    contours = []
    for z in np.arange(-10, 10.01, 0.25):
        if small**2 - z**2 > 0.01:
            h = math.sqrt(small**2 - z**2)
            contours += [circle3d((0, 0, z), big + h), circle3d((0, 0, z), big - h)]
    got = _volume(tmp_path, {"torus": contours}, (120, 120, 81), (0.5, 0.5, 0.25), (-30, -30, -10))["torus"]
    assert got["volume_mm3"] == pytest.approx(2 * math.pi**2 * big * small**2, rel=0.01)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "masks" / "unmapped__torus.nii.gz")))
    assert mask[40, 60, 60] == 0 and mask[40, 60, 60 + 40] == 1  # the hole is empty, the tube is full


def test_ring_outer_and_inner_contour(tmp_path):
    contours = []
    for z in np.arange(0, 10.01, 1.0):
        contours += [circle3d((0, 0, z), 15.0), circle3d((0, 0, z), 9.0)]
    got = _volume(tmp_path, {"ring": contours}, (80, 80, 11), (0.5, 0.5, 1.0), (-20, -20, 0))["ring"]
    assert got["volume_mm3"] == pytest.approx(math.pi * (15**2 - 9**2) * 11, rel=0.01)


def test_shape_crossing_the_image_edge(tmp_path):
    r = 15.0  # the image ends at x = 4.75 mm: a cap beyond it lies outside
    rois = {"edge": sphere_contours((0.0, 0.0, 0.0), r, np.arange(-20, 20.1, 0.5))}
    x0, n = -25.0, 60  # voxel centres -25 .. 4.5 (0.5 mm): the last centre inside is 4.5, the edge at 4.75
    got = _volume(tmp_path, rois, (n, 100, 81), (0.5, 0.5, 0.5), (x0, -25, -20))["edge"]
    edge = x0 + (n - 0.5) * 0.5
    h = r - edge
    assert got["volume_mm3"] == pytest.approx(4 / 3 * math.pi * r**3 - math.pi * h**2 * (3 * r - h) / 3, rel=0.01)
    assert any("outside the image" in w for w in got["warnings"])


def test_non_square_and_anisotropic_pixels(tmp_path):
    r = 12.0
    rois = {"sphere": sphere_contours((3.0, -2.0, 0.0), r, np.arange(-15, 15.1, 1.5))}
    # 200 columns of 0.3 mm, 40 rows of 1.2 mm: neither square nor isotropic
    got = _volume(tmp_path, rois, (200, 40, 21), (0.3, 1.2, 1.5), (-27, -25, -15))["sphere"]
    assert got["volume_mm3"] == pytest.approx(4 / 3 * math.pi * r**3, rel=0.01)


def test_sagittal_series_file(tmp_path):
    r = 14.0
    # a sagittal series: columns along +y, rows along -z, slices along the normal (-x); contours drawn on it
    direction = (0, 0, -1, 1, 0, 0, 0, -1, 0)
    d = np.array(direction, float).reshape(3, 3)
    assert np.allclose(np.cross(d[:, 0], d[:, 1]), d[:, 2])
    xs = 20 - np.arange(41) * 1.0  # slice positions along x: 20 .. -20
    rois = {"sphere": sphere_contours((0.0, 0.0, 0.0), r, xs, plane="sagittal")}
    got = _volume(tmp_path, rois, (80, 80, 41), (0.5, 0.5, 1.0), (20, -20, 20), direction)["sphere"]
    assert got["warnings"] == []
    assert got["volume_mm3"] == pytest.approx(4 / 3 * math.pi * r**3, rel=0.01)


# ------------------------------------------------------------------------- references written by others


def _ibsi_cases():
    from conftest import REFERENCE

    r = REFERENCE / "ibsi"
    sts = r / "ibsi_validation"
    return {
        "ct_phantom": (
            r / "ibsi_1_ct_radiomics_phantom/dicom/image",
            r / "ibsi_1_ct_radiomics_phantom/dicom/mask",
            r / "ibsi_1_ct_radiomics_phantom/nifti/mask/mask.nii.gz",
        ),
        "sts_ct": (sts / "dicom/STS_001/CT/image", sts / "dicom/STS_001/CT/mask", sts / "nifti/STS_001/CT_mask.nii.gz"),
        "sts_mr": (
            sts / "dicom/STS_001/MR_T1/image",
            sts / "dicom/STS_001/MR_T1/mask",
            sts / "nifti/STS_001/MR_T1_mask.nii.gz",
        ),
        "sts_pet": (
            sts / "dicom/STS_001/PET/image",
            sts / "dicom/STS_001/PET/mask",
            sts / "nifti/STS_001/PET_mask.nii.gz",
        ),
    }


@pytest.mark.parametrize("case", ["ct_phantom", "sts_ct", "sts_mr", "sts_pet"])
def test_ibsi_reference_masks(case, tmp_path):
    """IBSI's own masks (CT phantom GTV-1; STS_001 CT, MR T1 and PET, whose contour image references dangle)."""
    from radflow.dicom.convert import convert_series

    image_dir, mask_dir, reference = _ibsi_cases()[case]
    if not image_dir.is_dir():
        pytest.skip(f"{image_dir} is not on this machine")
    convert_series(sorted(str(p) for p in image_dir.iterdir()), tmp_path / "image.nii.gz")
    sidecars = write_masks(sorted(mask_dir.iterdir()), tmp_path / "image.nii.gz", tmp_path / "masks", ALIASES)
    assert len(sidecars) == 1
    ours = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "masks" / f"{sidecars[0]['label']}.nii.gz"))) > 0
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(reference))) > 0
    dice = 2 * (ours & ref).sum() / (ours.sum() + ref.sum())
    assert dice >= 0.999, dice


def test_dicom_seg_gives_the_same_masks(index_tables, truth, tmp_path, monkeypatch):
    """A DICOM SEG written with highdicom from radflow's own CT mask: read back, it is that mask on the CT, and
    on the PET of the same frame of reference it agrees with the RTSTRUCT rasterised there."""
    hd = pytest.importorskip("highdicom")
    import pydicom
    from pydicom.sr.codedict import codes

    from radflow.dicom.convert import convert_series
    from radflow.index import series_files

    p = truth["patients"]["TCGA-00-0001"]
    inst = index_tables["instances"]
    rs = index_tables["links"]
    rs_path = rs[(rs["source_series_uid"] == p["rtstruct_series_uid"])]["source_path"].iloc[0]
    ct_files = series_files(inst, p["ct_series_uid"])
    convert_series(ct_files, tmp_path / "ct.nii.gz")
    convert_series(series_files(inst, p["pet_series_uid"]), tmp_path / "pet.nii.gz")
    write_masks([rs_path], tmp_path / "ct.nii.gz", tmp_path / "rs_ct", ALIASES)
    write_masks([rs_path], tmp_path / "pet.nii.gz", tmp_path / "rs_pet", ALIASES)
    gtv = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "rs_ct" / "GTVp.nii.gz"))).astype(bool)

    sources = sorted((pydicom.dcmread(f) for f in ct_files), key=lambda d: float(d.ImagePositionPatient[2]))
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="GTVp",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=gtv,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=300,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="radflow tests",
        manufacturer_model_name="test",
        software_versions="0",
        device_serial_number="0",
        omit_empty_frames=True,
    )
    seg.save_as(tmp_path / "seg.dcm")

    on_ct = write_masks([tmp_path / "seg.dcm"], tmp_path / "ct.nii.gz", tmp_path / "seg_ct", ALIASES)
    assert [s["label"] for s in on_ct] == ["GTVp"] and on_ct[0]["roi_original"] == "GTVp"
    back = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "seg_ct" / "GTVp.nii.gz"))).astype(bool)
    assert np.array_equal(back, gtv)
    write_masks([tmp_path / "seg.dcm"], tmp_path / "pet.nii.gz", tmp_path / "seg_pet", ALIASES)
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "seg_pet" / "GTVp.nii.gz"))).astype(bool)
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "rs_pet" / "GTVp.nii.gz"))).astype(bool)
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.9

    # and the index takes the SEG as a structure source linked to the CT it was drawn on
    from radflow.index import build_index

    root = tmp_path / "dicom"
    shutil.copytree(Path(ct_files[0]).parent, root / "ct")
    shutil.copy(tmp_path / "seg.dcm", root / "seg.dcm")
    tables = build_index(root, tmp_path / "index", REPO / "config" / "roi_names.yaml")
    assert list(tables["rois"]["roi"]) == ["GTVp"]
    assert list(tables["links"]["source_modality"]) == ["SEG"]
    assert list(tables["links"]["image_series_uid"]) == [p["ct_series_uid"]]

    # the masks step takes each file's modality from its work order and reads each file once (no Modality probe)
    from radflow.index.orders import build_orders

    order = build_orders(tables, kinds=("masks",))[("masks", "TCGA-00-0001", p["ct_series_uid"])]
    assert [(Path(s["path"]).name, s["modality"]) for s in order["structures"]] == [("seg.dcm", "SEG")]
    reads = []
    real_read = pydicom.dcmread

    def counting_read(path, *args, **kwargs):
        reads.append((Path(path).name, kwargs.get("specific_tags")))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counting_read)
    from_order = write_masks(
        [s["path"] for s in order["structures"]],
        tmp_path / "ct.nii.gz",
        tmp_path / "seg_order",
        ALIASES,
        modalities={s["path"]: s["modality"] for s in order["structures"]},
    )
    assert reads == [("seg.dcm", None)]
    assert [s["voxel_count"] for s in from_order] == [s["voxel_count"] for s in on_ct]


def test_oblique_series(tmp_path):
    """An oblique series (tilted 20 degrees about x and 10 about z) with a sphere contoured on its own planes."""
    a, b = np.radians(20), np.radians(10)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    d = rz @ rx  # columns: row direction, column direction, normal
    r, centre = 13.0, np.array([5.0, -3.0, 2.0])
    spacing = (0.6, 0.6, 1.0)
    n = (70, 70, 41)
    origin = centre - d @ (np.array(spacing) * (np.array(n) - 1) / 2)
    t = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    contours = []
    for k in range(n[2]):
        offset = (k - (n[2] - 1) / 2) * spacing[2]
        if r * r - offset * offset > 0.01:
            rr = math.sqrt(r * r - offset * offset)
            pts = centre + np.outer(rr * np.cos(t), d[:, 0]) + np.outer(rr * np.sin(t), d[:, 1]) + offset * d[:, 2]
            contours.append(pts)
    got = _volume(tmp_path, {"sphere": contours}, n, spacing, origin, tuple(d.ravel()))["sphere"]
    assert got["warnings"] == []
    assert got["volume_mm3"] == pytest.approx(4 / 3 * math.pi * r**3, rel=0.01)
