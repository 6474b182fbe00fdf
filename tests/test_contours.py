"""Contours stored twice and contours that cross (issue 20, item 2): against analytic areas, through the rasteriser,
the masks step and the index."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from conftest import REPO
from factory import add_roi, grid_image, sphere_contours, write_rtstruct
from factory import circle as circle3d

from radflow.dicom.contours import audit_plane
from radflow.dicom.geometry import Grid
from radflow.dicom.masks import fill_even_odd, rasterise_roi, write_masks
from radflow.index import build_index
from radflow.roi_names import load_aliases

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
ALIASES = load_aliases(REPO / "config" / "roi_names.yaml")


def lens(r: float, d: float) -> float:
    """Area of the overlap of two discs of radius r whose centres are d apart."""
    return 2 * r * r * math.acos(d / (2 * r)) - d / 2 * math.sqrt(4 * r * r - d * d)


def disc(cx, cy, r, z, n=720):
    return circle3d((cx, cy, z), r, n)


def test_a_copy_with_another_start_point_direction_and_rounding_is_a_duplicate():
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    a = np.column_stack([10 * np.cos(t), 10 * np.sin(t)])
    copy = np.roll(a, 37, axis=0)[::-1] + 0.004  # same outline: other start, other direction, rounding noise
    shifted = a + [0.5, 0]  # a different outline that crosses the first
    found = audit_plane([a, copy, shifted])
    assert found.keep == [0, 2] and found.duplicates == [1]
    assert len(found.crossings) == 1 and found.crossings[0][2] == pytest.approx(lens(10, 0.5), rel=1e-3)
    # nested outlines are neither duplicates nor crossings: a ring stays a ring under both rules
    ring = audit_plane([a, a * 0.5])
    assert ring.keep == [0, 1] and not ring.duplicates and not ring.crossings
    assert ring.area("even-odd") == ring.area("union") == pytest.approx(0.75 * math.pi * 100, rel=1e-3)


def test_every_contour_stored_twice_gives_the_mask_without_copies(tmp_path):
    """A structure set that stores each contour of an ROI twice (as a real XiO export did) gives the mask of the
    contours stored once, with a warning naming the ROI, in the sidecar and in the index's problems."""
    r = 20.0
    once = sphere_contours((0.0, 0.0, 0.0), r, np.arange(-30, 30.1, 2.0))
    twice = [c for contour in once for c in (contour, np.roll(contour, 90, axis=0))]
    image = grid_image(tmp_path / "image.nii.gz", (80, 80, 31), (0.8, 0.8, 2.0), (-32, -32, -30))
    rs1 = write_rtstruct(tmp_path / "once.dcm", {"GTV": once})
    rs2 = write_rtstruct(tmp_path / "twice.dcm", {"GTV": twice})
    a = write_masks([rs1], image, tmp_path / "once", ALIASES)[0]
    b = write_masks([rs2], image, tmp_path / "twice", ALIASES)[0]
    mask_a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "once" / "GTVp.nii.gz")))
    mask_b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "twice" / "GTVp.nii.gz")))
    assert mask_a.sum() > 0 and np.array_equal(mask_a, mask_b)
    assert b["volume_mm3"] == pytest.approx(4 / 3 * math.pi * r**3, rel=0.02)
    assert b["polygon_volume_mm3"] == pytest.approx(a["polygon_volume_mm3"], rel=1e-9)
    assert a["warnings"] == [] and a["duplicate_contours"] == 0
    n = len(once)
    assert b["duplicate_contours"] == n == 19
    assert any(f"ROI 'GTV' stores {n} of its {2 * n} contours twice" in w for w in b["warnings"])
    # what the even-odd rule alone would have made of the pairs: nothing (the defect)
    grid = Grid((80, 80, 31), (0.8, 0.8, 2.0), (-32, -32, -30), AXIAL)
    pair = [grid.to_index(c)[:, :2] for c in twice[18:20]]
    assert fill_even_odd(pair, 80, 80).sum() == 0


def test_crossing_contours_under_each_rule():
    """Two discs of radius 10 mm, 8 mm apart, on each of 5 planes: even-odd leaves their lens out, union takes it in;
    the warning gives the overlapping area."""
    r, d = 10.0, 8.0
    contours = [("CLOSED_PLANAR", disc(cx, 0.0, r, z)) for z in range(5) for cx in (-d / 2, d / 2)]
    grid = Grid((400, 300, 5), (0.1, 0.1, 1.0), (-20.0, -15.0, 0.0), AXIAL)
    overlap = lens(r, d)
    pixel = 0.01  # mm^2
    for rule, area in (("even-odd", 2 * math.pi * r * r - 2 * overlap), ("union", 2 * math.pi * r * r - overlap)):
        mask, audit = rasterise_roi(contours, grid, "GTV", rule)
        assert mask[2].sum() * pixel == pytest.approx(area, rel=2e-3), rule
        assert audit["polygon_volume_mm3"] == pytest.approx(5 * area, rel=1e-4)
        assert audit["crossing_planes"] == 5 and audit["crossing_area_mm2"] == pytest.approx(5 * overlap, rel=1e-4)
        (warning,) = [w for w in audit["warnings"] if "overlap without one lying inside the other" in w]
        assert f"{5 * overlap:.1f} mm2" in warning and f"contour_overlap: {rule}" in warning
    even, _ = rasterise_roi(contours, grid, "GTV", "even-odd")
    assert not even[2, 150, 200] and mask[2, 150, 200]  # the centre of the lens: out, then in
    with pytest.raises(ValueError, match="not one of even-odd, union"):
        rasterise_roi(contours, grid, "GTV", "nonzero")


def test_an_roi_emptied_by_crossing_contours_says_so(tmp_path):
    """Two copies of a small square, a third of a voxel apart (not duplicates, they cross): under even-odd they cancel
    on every voxel centre, and the empty ROI's reason says why; under union it keeps its voxels."""
    sq = np.array([[0.5, 0.5], [4.5, 0.5], [4.5, 4.5], [0.5, 4.5]])
    rois = {"GTV": [np.column_stack([sq + off, np.full(4, z)]) for z in (0.0, 1.0, 2.0) for off in (0.0, 0.3)]}
    rs = write_rtstruct(tmp_path / "rs.dcm", rois)
    image = grid_image(tmp_path / "image.nii.gz", (10, 10, 3), (1.0, 1.0, 1.0), (0, 0, 0))
    even = write_masks([rs], image, tmp_path / "even", ALIASES)[0]
    union = write_masks([rs], image, tmp_path / "union", ALIASES, overlap="union")[0]
    assert even["voxel_count"] == 0 and union["voxel_count"] == 3 * 16
    assert any(
        "covers no voxel centre of this image: its crossing contours cancel each other under contour_overlap: "
        "even-odd" in w
        for w in even["warnings"]
    )


def test_the_index_lists_duplicated_and_crossing_rois(demo_dir, tmp_path):
    root = tmp_path / "dicom"
    shutil.copytree(demo_dir / "TCGA-HNSC" / "TCGA-00-0002", root / "TCGA-00-0002")
    rs = next(
        p
        for p in root.rglob("*")
        if p.is_file() and pydicom.dcmread(p, stop_before_pixels=True).get("Modality") == "RTSTRUCT"
    )
    ds = pydicom.dcmread(rs)
    z = [float(c.ContourData[2]) for c in ds.ROIContourSequence[0].ContourSequence][:4]
    add_roi(rs, "Nodes_twice", [("CLOSED_PLANAR", disc(0, 0, 10, zz)) for zz in z for _ in (0, 1)])
    add_roi(rs, "Nodes_crossing", [("CLOSED_PLANAR", disc(cx, 0, 10, zz)) for zz in z for cx in (-4, 4)])
    tables = build_index(root, tmp_path / "index", REPO / "config" / "roi_names.yaml")
    rois = tables["rois"].set_index("roi_original")
    assert rois.loc["Nodes_twice", "duplicate_contours"] == 4 and rois.loc["Nodes_twice", "crossing_planes"] == 0
    assert rois.loc["Nodes_crossing", "crossing_planes"] == 4
    assert rois.loc["Nodes_crossing", "crossing_area_mm2"] == pytest.approx(4 * lens(10, 8), rel=1e-3)
    assert (rois.drop(index=["Nodes_twice", "Nodes_crossing"])["contour_warnings"] == "").all()
    warnings = tables["problems"][tables["problems"]["severity"] == "warning"]
    by_item = dict(zip(warnings["item"].str.rsplit("/", n=1).str[-1], warnings["reason"]))
    assert "stores 4 of its 8 contours twice" in by_item["Nodes_twice"]
    assert f"{4 * lens(10, 8):.1f} mm2 in all" in by_item["Nodes_crossing"]
    on_disk = pd.read_csv(tmp_path / "index" / "problems.tsv", sep="\t")
    assert set(on_disk.loc[on_disk["severity"] == "warning", "reason"]) >= set(by_item.values())


def test_a_real_structure_set_with_every_lung_contour_stored_twice(tmp_path):
    """The real LUNG1-001 structure set (Varian) with its left lung added twice: once as stored, once with every one of
    its 139 contours stored twice, as the XiO export did. Both give the left lung's own mask on the real CT's grid;
    only the second is reported, in the sidecar and in the index."""
    from conftest import REFERENCE

    from radflow.dicom.convert import image_headers_in, series_grid

    study = next((REFERENCE / "real" / "mirp_nsclc_lung1_001" / "LUNG1-001").iterdir())
    ct = next(p for p in study.iterdir() if "RTSTRUCT" not in p.name)
    source = next(next(p for p in study.iterdir() if "RTSTRUCT" in p.name).iterdir())
    root = tmp_path / "dicom" / "LUNG1-001" / study.name
    shutil.copytree(study, root)
    rs = next(next(p for p in root.iterdir() if "RTSTRUCT" in p.name).iterdir())
    ds = pydicom.dcmread(source)
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == "Lung-Left")
    seq = next(rc for rc in ds.ROIContourSequence if int(rc.ReferencedROINumber) == number).ContourSequence
    lung = [np.asarray([float(v) for v in c.ContourData]).reshape(-1, 3) for c in seq]
    add_roi(rs, "Lung_once", [("CLOSED_PLANAR", p) for p in lung])
    add_roi(rs, "Lung_twice", [("CLOSED_PLANAR", p) for p in lung for _ in (0, 1)])
    grid = series_grid(image_headers_in(ct))
    sidecars = {s["roi_original"]: s for s in write_masks([rs], grid, tmp_path / "masks", ALIASES)}
    masks = {
        name: sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "masks" / f"{s['label']}.nii.gz")))
        for name, s in sidecars.items()
    }
    assert masks["Lung-Left"].sum() > 700_000
    assert np.array_equal(masks["Lung_twice"], masks["Lung_once"])
    assert np.array_equal(masks["Lung_once"], masks["Lung-Left"])  # the 4-decimal copy of the real contours
    assert sidecars["Lung_twice"]["duplicate_contours"] == len(lung) == 139
    assert any("stores 139 of its 278 contours twice" in w for w in sidecars["Lung_twice"]["warnings"])
    assert sidecars["Lung_once"]["warnings"] == [] and sidecars["Lung-Left"]["duplicate_contours"] == 0
    tables = build_index(tmp_path / "dicom", tmp_path / "index", REPO / "config" / "roi_names.yaml")
    warned = tables["problems"].loc[tables["problems"]["severity"] == "warning", "item"]
    assert list(warned.str.rsplit("/", n=1).str[-1]) == ["Lung_twice"]
