"""RTSTRUCT ROIs rasterised on the grid of an image series.

Contour points are mapped to continuous voxel coordinates; all contours of one plane are filled together with
the even-odd rule (holes, rings and islands come out right); a voxel is inside when its centre is. Contours are
placed on slices by their position along the slice normal, never by ReferencedSOPInstanceUID, so the same ROI can
be rasterised directly on any grid of its frame of reference (the PET of a PET/CT).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset

from radflow.dicom.contours import OVERLAP_RULES, audit_roi, contour_data
from radflow.dicom.geometry import Grid, bounding_box, direction_from_orientation, position_keys
from radflow.failures import is_machine_error, write_image
from radflow.records import MaskRecord
from radflow.roi_names import UNMAPPED, standard_name


class MaskError(ValueError):
    """An ROI cannot be rasterised."""


def read_rtstruct(path) -> tuple[pydicom.Dataset, dict[int, dict]]:
    """(dataset, {roi_number: {name, contours: [(type, points (N, 3))]}})."""
    ds = pydicom.dcmread(path)
    if str(ds.get("Modality", "")).upper() != "RTSTRUCT":
        raise MaskError(f"{path}: Modality is {ds.get('Modality', '(none)')}, not RTSTRUCT")
    rois = {
        int(item.ROINumber): dict(name=str(item.get("ROIName", "")).strip(), contours=[], roi_type="")
        for item in ds.get("StructureSetROISequence", [])
    }
    for obs in ds.get("RTROIObservationsSequence", []):
        number = int(obs.get("ReferencedROINumber", -1))
        if number in rois:
            rois[number]["roi_type"] = str(obs.get("RTROIInterpretedType", "") or "").strip().upper()
    for rc in ds.get("ROIContourSequence", []):
        number = int(rc.ReferencedROINumber)
        if number not in rois:
            continue
        for c in rc.get("ContourSequence", []):
            try:
                data = contour_data(c)
            except ValueError as err:
                rois[number]["error"] = f"ContourData is not a list of numbers ({err})"
                break
            if data.size % 3:  # this ROI is broken; the file's other ROIs are not
                rois[number]["error"] = f"ContourData holds {data.size} values, not a multiple of 3"
                break
            rois[number]["contours"].append((str(c.get("ContourGeometricType", "")).upper(), data.reshape(-1, 3)))
    return ds, rois


def read_seg(path) -> tuple[pydicom.Dataset, dict[int, dict]]:
    """(dataset, {segment number: {name, image: SimpleITK uint8 image of the segment on the SEG's own grid}}).

    Frames are placed by their ImagePositionPatient (PlanePositionSequence), never by referenced instances; frames
    a segment does not cover stay empty."""
    ds = pydicom.dcmread(path)
    if str(ds.get("Modality", "")).upper() != "SEG":
        raise MaskError(f"{path}: Modality is {ds.get('Modality', '(none)')}, not SEG")
    shared = ds.SharedFunctionalGroupsSequence[0] if ds.get("SharedFunctionalGroupsSequence") else Dataset()
    frames = ds.PerFrameFunctionalGroupsSequence

    def group(frame, name):
        return frame.get(name) or shared.get(name)

    first = frames[0]
    orientation = [float(v) for v in group(first, "PlaneOrientationSequence")[0].ImageOrientationPatient]
    measures = group(first, "PixelMeasuresSequence")[0]
    spacing_rc = [float(v) for v in measures.PixelSpacing]
    direction = direction_from_orientation(orientation)
    positions = np.array(
        [[float(v) for v in group(f, "PlanePositionSequence")[0].ImagePositionPatient] for f in frames]
    )
    along = positions @ direction[:, 2]
    segment_of = np.array([int(group(f, "SegmentIdentificationSequence")[0].ReferencedSegmentNumber) for f in frames])
    pixels = ds.pixel_array.reshape(len(frames), int(ds.Rows), int(ds.Columns))
    planes = np.unique(position_keys(along))
    # The frames of a sparse SEG may skip planes: trust SpacingBetweenSlices, else the closest two planes.
    if measures.get("SpacingBetweenSlices"):
        step = float(measures.SpacingBetweenSlices)
    elif len(planes) > 1:
        step = float(np.min(np.diff(planes)))
    else:
        step = float(measures.get("SliceThickness") or 1.0)
    origin_plane = planes[0]
    n_slices = int(round((planes[-1] - origin_plane) / step)) + 1
    base = positions[int(np.argmin(along))]
    segments = {}
    for seg in ds.SegmentSequence:
        number = int(seg.SegmentNumber)
        volume = np.zeros((n_slices, int(ds.Rows), int(ds.Columns)), np.uint8)
        for k in np.where(segment_of == number)[0]:
            slot = int(round((along[k] - origin_plane) / step))
            volume[slot] |= (pixels[k] > 0).astype(np.uint8)
        image = sitk.GetImageFromArray(volume)
        image.SetSpacing((spacing_rc[1], spacing_rc[0], step))
        image.SetOrigin(tuple(base - (along.min() - origin_plane) * direction[:, 2]))
        image.SetDirection(tuple(direction.ravel()))
        segments[number] = dict(name=str(seg.get("SegmentLabel", "")).strip(), image=image)
    return ds, segments


def seg_on_grid(segment: sitk.Image, reference: sitk.Image) -> np.ndarray:
    """A SEG segment on another grid, nearest neighbour: exact where the grids coincide (the usual case)."""
    out = sitk.Resample(segment, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(out)


def fill_even_odd(polygons: list[np.ndarray], rows: int, cols: int) -> np.ndarray:
    """Boolean (rows, cols) image of pixel centres inside the polygons under the even-odd rule.

    polygons: arrays (n, 2) of continuous (i = column, j = row) coordinates. All scanlines at once: every edge
    yields its crossings with the pixel-centre rows it spans (half-open, so a vertex on a scanline counts once);
    sorted by row and x, consecutive crossings pair up into filled spans."""
    out = np.zeros((rows, cols), bool)
    edges = [np.column_stack([p, np.roll(p, -1, axis=0)]) for p in polygons if len(p) >= 3]
    if not edges:
        return out
    e = np.concatenate(edges)
    e = e[e[:, 1] != e[:, 3]]  # horizontal edges never cross a scanline
    if not len(e):
        return out
    x0, y0, x1, y1 = e.T
    first = np.maximum(np.ceil(np.minimum(y0, y1)), 0).astype(np.int64)  # first row with ylo <= j
    last = np.minimum(np.ceil(np.maximum(y0, y1)) - 1, rows - 1).astype(np.int64)  # last row with j < yhi
    counts = np.maximum(last - first + 1, 0)
    if not counts.sum():
        return out
    edge = np.repeat(np.arange(len(e)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    j = first[edge] + offsets
    x = x0[edge] + (j - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    order = np.lexsort((x, j))
    j, x = j[order], x[order]
    # crossings come in pairs per row (closed polygons): spans from the 1st to the 2nd, the 3rd to the 4th ...
    start, stop = x[0::2], x[1::2]
    row = j[0::2]
    c0 = np.clip(np.ceil(start), 0, cols).astype(np.int64)  # first centre >= start
    c1 = np.clip(np.ceil(stop), 0, cols).astype(np.int64)  # first centre >= stop (excluded)
    keep = c1 > c0
    diff = np.zeros((rows, cols + 1), np.int32)
    np.add.at(diff, (row[keep], c0[keep]), 1)
    np.add.at(diff, (row[keep], c1[keep]), -1)
    return np.cumsum(diff[:, :cols], axis=1) > 0


def fill_plane(polys: list[np.ndarray], clusters: list[list[int]], rows: int, cols: int) -> np.ndarray:
    """One plane's mask: polygons in the same cluster (crossing outlines under the union rule) are united first; the
    clusters then combine by the even-odd rule (nested outlines alternate). Single clusters fill together."""
    singles = [polys[g[0]] for g in clusters if len(g) == 1]
    plane = fill_even_odd(singles, rows, cols)
    for g in clusters:
        if len(g) > 1:
            plane ^= np.logical_or.reduce([fill_even_odd([polys[i]], rows, cols) for i in g])
    return plane


def _closed_planes(contours, grid: Grid, warnings: list, notes: list) -> list[tuple[float, np.ndarray]]:
    """(slice position, in-plane voxel coordinates) of each closed planar contour with 3 or more points, on the grid's
    index axes; the others are noted and ignored."""
    planes = []
    for kind, pts in contours:
        if kind != "CLOSED_PLANAR":
            notes.append(f"{kind or 'untyped'} contour ignored")
            continue
        if len(pts) < 3:
            notes.append(f"closed contour with {len(pts)} point(s) ignored")
            continue
        idx = grid.to_index(pts)
        if np.ptp(idx[:, 2]) > 0.01:
            warnings.append("a contour is not parallel to the image slices; its mean position is used")
        planes.append((float(idx[:, 2].mean()), idx[:, :2]))
    return planes


def _by_plane(planes: list[tuple[float, np.ndarray]]) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """The contours grouped by plane (tolerance: a thousandth of a slice), planes in order of position."""
    planes = sorted(planes, key=lambda p: p[0])
    positions, groups = [], []
    for k, poly in planes:
        if positions and abs(k - positions[-1]) < 1e-3:
            groups[-1].append(poly)
        else:
            positions.append(k)
            groups.append([poly])
    return np.asarray(positions), groups


def _outside_warnings(groups, positions: np.ndarray, size, name: str) -> list[str]:
    """What lies beyond the image: in-plane (clipped at the border) and contour planes beyond its slices."""
    cols, rows, slices = size
    out = []
    pts = np.concatenate([p for g in groups for p in g])
    if (
        (pts[:, 0] < -0.5).any()
        or (pts[:, 0] > cols - 0.5).any()
        or (pts[:, 1] < -0.5).any()
        or (pts[:, 1] > rows - 0.5).any()
    ):
        out.append(f"ROI '{name}' lies partly outside the image in-plane; clipped at the image border")
    beyond = int(((positions < -0.5) | (positions > slices - 0.5)).sum())
    if beyond:
        out.append(f"ROI '{name}': {beyond} contour plane(s) lie beyond the image's slices; clipped")
    return out


def rasterise_roi(contours, grid: Grid, name: str = "ROI", overlap: str = "even-odd") -> tuple[np.ndarray, dict]:
    """Mask (slices, rows, cols) uint8 of one ROI's contours on a grid, and an audit dict. A contour stored twice on
    a plane is used once; contours that cross follow the overlap rule (radflow.dicom.contours)."""
    if overlap not in OVERLAP_RULES:
        raise ValueError(f"contour overlap rule {overlap!r} is not one of {', '.join(OVERLAP_RULES)}")
    cols, rows, slices = grid.size
    warnings, notes = [], []
    planes = _closed_planes(contours, grid, warnings, notes)
    mask = np.zeros((slices, rows, cols), np.uint8)
    audit = dict(
        warnings=warnings,
        notes=sorted(set(notes)),
        polygon_volume_mm3=0.0,
        n_contours=len(planes),
        duplicate_contours=0,
        crossing_planes=0,
        crossing_area_mm2=0.0,
        contour_overlap=overlap,
    )
    if not planes:
        audit["warnings"].append(f"ROI '{name}' has no closed planar contours: empty mask")
        return mask, audit
    positions, groups = _by_plane(planes)
    pixel = np.asarray(grid.spacing[:2], float)
    found = audit_roi([[p * pixel for p in g] for g in groups])  # in-plane millimetres
    warnings.extend(found.warnings(name, overlap))
    audit.update(
        duplicate_contours=found.duplicates,
        crossing_planes=found.crossing_planes,
        crossing_area_mm2=round(found.crossing_area_mm2, 3),
    )
    # Each contour plane stands for a slab as thick as the spacing between contour planes.
    thickness = float(np.median(np.diff(positions))) if len(positions) > 1 else 1.0
    half = thickness / 2 + 1e-6
    warnings.extend(_outside_warnings(groups, positions, grid.size, name))
    for k in range(slices):
        nearest = int(np.argmin(np.abs(positions - k)))
        if abs(positions[nearest] - k) <= half:
            plane = found.planes[nearest]
            clusters = plane.clusters() if overlap == "union" else [[i] for i in plane.keep]
            mask[k] = fill_plane(groups[nearest], clusters, rows, cols)
    audit["polygon_volume_mm3"] = float(sum(p.area(overlap) for p in found.planes) * thickness * grid.spacing[2])
    return mask, audit


def empty_reason(name: str, audit: dict) -> str:
    """Why an ROI with closed contours covers no voxel centre, in words: what happened to its contours."""
    details = []
    if audit.get("duplicate_contours"):
        details.append(f"{audit['duplicate_contours']} duplicate contour(s) were dropped, the rest is too small")
    if audit.get("crossing_planes") and audit.get("contour_overlap") == "even-odd":
        details.append(
            f"its crossing contours cancel each other under contour_overlap: even-odd "
            f"({audit['crossing_area_mm2']:.1f} mm2 of overlap; union would keep it)"
        )
    if not details and audit.get("polygon_volume_mm3", 0) > 0:
        details.append(
            f"its polygons enclose {audit['polygon_volume_mm3']:.1f} mm3 but no voxel centre (smaller "
            "than a voxel, or outside the image)"
        )
    return f"ROI '{name}' covers no voxel centre of this image" + (": " + "; ".join(details) if details else "")


# RTROIInterpretedType values that name a point, not a volume (DICOM PS3.3 C.8.8.8).
POINT_TYPES = {"MARKER", "ISOCENTER"}


def contour_kinds(contours) -> dict[str, int]:
    """{ContourGeometricType: count} of an ROI's contours."""
    kinds: dict[str, int] = {}
    for kind, _ in contours:
        kinds[kind or "untyped"] = kinds.get(kind or "untyped", 0) + 1
    return dict(sorted(kinds.items()))


def point_reason(roi_type: str, kinds: dict[str, int]) -> str:
    """What an ROI is when it is a point, a marker or a line rather than a volume ("" when it is a volume): its
    RTROIInterpretedType is MARKER or ISOCENTER, or it has contours and none of them is CLOSED_PLANAR."""
    shapes = ", ".join(f"{n} {k} contour{'s' if n > 1 else ''}" for k, n in kinds.items()) or "no contours"
    if roi_type in POINT_TYPES:
        what = {"MARKER": "a marker", "ISOCENTER": "an isocentre"}[roi_type]
        return f"{what} (RTROIInterpretedType {roi_type}; {shapes})"
    if kinds and "CLOSED_PLANAR" not in kinds:
        return f"made of {shapes} and no CLOSED_PLANAR contour"
    return ""


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "roi"


def failed_entry(roi_original: str, reason: str, image_series_uid="") -> dict:
    """A masks.json entry for what could not be rasterised: the features table shows it as a failed row."""
    return MaskRecord(
        roi_original=roi_original, image_series_uid=image_series_uid, status="failed", reason=reason
    ).as_dict()


def _unions(sidecars: list[dict], out: Path, image: sitk.Image, voxel_mm3: float) -> list[dict]:
    """One union mask per standard ROI drawn more than once on this image (GTV_1 and GTV_2 -> GTVp_union)."""
    groups: dict[str, list[dict]] = {}
    for s in sidecars:
        if s["roi"] and s["roi"] != UNMAPPED:
            groups.setdefault(s["roi"], []).append(s)
    made = []
    for roi, members in groups.items():
        if len(members) < 2:
            continue
        usable = [m for m in members if m["status"] == "ok" and m["voxel_count"] > 0]
        mask = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
        for m in usable:
            mask |= sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"{m['label']}.nii.gz"))).astype(np.uint8)
        left_out = [f"'{m['roi_original']}' ({m['reason'] or 'empty'})" for m in members if m not in usable]
        label = f"{roi}_union"
        count = int(mask.sum())
        entry = MaskRecord(
            label=label,
            roi=roi,
            roi_original=" + ".join(m["roi_original"] for m in usable),
            rtstruct_sop_uid=",".join(m["rtstruct_sop_uid"] for m in usable),
            rtstruct_series_uid=usable[0]["rtstruct_series_uid"] if usable else "",
            image_series_uid=members[0]["image_series_uid"],
            relation=usable[0]["relation"] if usable else "",
            voxel_count=count,
            volume_mm3=count * voxel_mm3,
            bounding_box=bounding_box(mask),
            status="ok" if usable else "failed",
            reason="" if usable else f"no usable instance of {roi} to unite",
            warnings=[f"left out of the union: {', '.join(left_out)}"] if left_out else [],
            notes=[f"union of {len(usable)} instances of {roi}: {', '.join(m['label'] for m in usable)}"],
        ).as_dict()
        if usable:
            img = sitk.GetImageFromArray(mask)
            img.CopyInformation(image)
            write_image(img, out / f"{label}.nii.gz")
            (out / f"{label}.json").write_text(json.dumps(entry, indent=2, sort_keys=True))
        made.append(entry)
    return made


def _image_and_grid(image_path) -> tuple[sitk.Image, Grid]:
    """The image the masks go on and its grid, from a NIfTI path, the image read from it, or a Grid alone."""
    if isinstance(image_path, Grid):  # a grid alone (from DICOM headers) is enough to rasterise on
        return image_path.apply_to(sitk.Image([int(v) for v in image_path.size], sitk.sitkUInt8)), image_path
    if isinstance(image_path, sitk.Image):  # the image as read back from its NIfTI by the series job
        return image_path, Grid.of_image(image_path)
    image = sitk.ReadImage(str(image_path))
    return image, Grid.of_image(image)


def _read_structures(path, modalities: dict | None) -> tuple[bool, object, dict]:
    """(is a SEG, the dataset, its ROIs) of an RTSTRUCT or DICOM SEG; the index's modality, else the file's own."""
    known = (modalities or {}).get(str(path))
    if known is None:
        known = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality", "")
    is_seg = str(known).upper() == "SEG"
    ds, rois = read_seg(path) if is_seg else read_rtstruct(path)
    return is_seg, ds, rois


def _unique_label(name: str, aliases, used: set) -> tuple[str, str, str]:
    """(label, standard name, the alias pattern that matched): the standard name, or UNMAPPED__<name>, with _2, _3 …
    for a second and third ROI of that name."""
    standard, pattern = standard_name(name, aliases)
    base = standard if standard != UNMAPPED else f"{UNMAPPED}__{_safe(name)}"
    label, n = base, 1
    while label in used:
        n += 1
        label = f"{base}_{n}"
    used.add(label)
    return label, standard, pattern


def _mask_of(roi: dict, is_seg: bool, image: sitk.Image, grid: Grid, overlap: str) -> tuple[np.ndarray, dict]:
    """One ROI's mask on the image and its audit: a SEG segment resampled, or contours rasterised."""
    if roi.get("error"):
        raise MaskError(roi["error"])
    if not is_seg:
        return rasterise_roi(roi["contours"], grid, roi["name"], overlap)
    volume = float(sitk.GetArrayViewFromImage(roi["image"]).sum() * np.prod(roi["image"].GetSpacing()))
    audit = dict(
        warnings=[],
        notes=["DICOM SEG segment, resampled nearest-neighbour onto this grid"],
        polygon_volume_mm3=volume,
        n_contours=0,
    )
    return seg_on_grid(roi["image"], image), audit


def _unreadable(path, err: Exception, image_series_uid: str) -> dict:
    """A structure set that cannot be read: one failed entry for all its ROIs."""
    if is_machine_error(err):
        raise err
    name = Path(path).name
    return failed_entry(
        f"(every ROI of {name})", f"{name} cannot be read: {type(err).__name__}: {err}", image_series_uid
    )


def write_masks(
    rtstruct_paths,
    image_path,
    out_dir,
    aliases,
    image_series_uid="",
    relation="",
    union=False,
    overlap: str = "even-odd",
    modalities: dict | None = None,
) -> list[dict]:
    """Rasterise every ROI of the RTSTRUCTs (or segment of the SEGs) on the grid of image_path (a NIfTI path, the
    image read from it, or a Grid); writes {roi}.nii.gz + {roi}.json per ROI and
    masks.json (the list of sidecars). ROIs that map to the same standard name get _2, _3 … suffixes; with
    union=True such a standard ROI also gets the union of its instances, labelled {roi}_union. overlap: the rule for
    contours that cross (radflow.dicom.contours: even-odd or union). modalities: {path: RTSTRUCT or SEG} as the index
    found them (the work order); a file not in it is asked for its Modality."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    image, grid = _image_and_grid(image_path)
    voxel_mm3 = float(np.prod(np.asarray(grid.spacing)))
    used: set[str] = set()
    sidecars = []
    for rs_path in sorted(rtstruct_paths):
        try:
            is_seg, ds, rois = _read_structures(rs_path, modalities)
        except Exception as err:  # a broken structure set is recorded, and the others go on
            sidecars.append(_unreadable(rs_path, err, image_series_uid))
            continue
        series_uid = str(ds.SeriesInstanceUID)
        for number, roi in sorted(rois.items()):
            label, standard, pattern = _unique_label(roi["name"], aliases, used)
            try:
                mask, audit = _mask_of(roi, is_seg, image, grid, overlap)
            except Exception as err:  # one broken ROI is recorded, and the others go on
                if is_machine_error(err):
                    raise
                why = f"ROI '{roi['name']}' of {Path(rs_path).name} cannot be rasterised: {type(err).__name__}: {err}"
                entry = failed_entry(roi["name"], why, image_series_uid)
                entry.update(label=label, roi=standard, rtstruct_series_uid=series_uid)
                sidecars.append(entry)
                continue
            count = int(mask.sum())
            kinds = {"SEG": 1} if is_seg else contour_kinds(roi["contours"])
            point = "" if is_seg else point_reason(roi.get("roi_type", ""), kinds)
            if count == 0 and not point and audit.get("n_contours"):
                audit["warnings"].append(empty_reason(roi["name"], audit))
            elif count == 0 and not point and is_seg:
                audit["warnings"].append(f"ROI '{roi['name']}' covers no voxel centre of this image")
            img = sitk.GetImageFromArray(mask)
            img.CopyInformation(image)
            write_image(img, out / f"{label}.nii.gz")
            audit["bounding_box"] = bounding_box(mask)
            sidecar = MaskRecord(
                label=label,
                roi=standard,
                roi_original=roi["name"],
                roi_pattern=pattern,
                roi_number=number,
                rtstruct_sop_uid=str(ds.SOPInstanceUID),
                rtstruct_series_uid=series_uid,
                image_series_uid=image_series_uid,
                relation=relation.get(series_uid, "") if isinstance(relation, dict) else relation,
                voxel_count=count,
                volume_mm3=count * voxel_mm3,
                status="ok",
                reason="",
                roi_type=roi.get("roi_type", ""),
                contour_types=kinds,
                point=point,
                **audit,
            ).as_dict()
            (out / f"{label}.json").write_text(json.dumps(sidecar, indent=2, sort_keys=True))
            sidecars.append(sidecar)
    if union:
        sidecars += _unions(sidecars, out, image, voxel_mm3)
    (out / "masks.json").write_text(json.dumps(sidecars, indent=2, sort_keys=True))
    return sidecars
