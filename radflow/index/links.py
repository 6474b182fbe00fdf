"""Which structure sets, SEGs and dose grids go with which converted image series, and which series are selected."""

from __future__ import annotations

import numpy as np
import pandas as pd

from radflow.index.columns import LINK_COLUMNS, problem, split_uids
from radflow.modalities import STRUCTURE_MODALITIES


def _overlaps(lo, hi, image_lo, image_hi, margin) -> bool:
    if any(pd.isna(v) for v in (lo, hi, image_lo, image_hi)):
        return True  # unknown extent: do not refuse
    return hi >= image_lo - margin and lo <= image_hi + margin


def plan_references(dose: pd.Series, instances: pd.DataFrame) -> tuple[dict, str]:
    """(plan_sop_uid, plan_label, plan_structure_sop_uids of an RTDOSE instance row; a warning, or "" when the
    chain RTDOSE -> RTPLAN -> RTSTRUCT resolves within the cohort). Where it does not, the dose's DVHs take every
    structure set of its CTs, and the warning says why."""
    empty = dict(plan_sop_uid="", plan_label="", plan_structure_sop_uids="")
    if "referenced_sop_uids" not in instances.columns:
        return empty, ""
    plans = split_uids(dose["referenced_sop_uids"])
    if not plans:
        return empty, ""  # many exports name no plan: nothing to warn about, the frame of reference decides
    found = instances[(instances["modality"] == "RTPLAN") & instances["sop_instance_uid"].isin(plans)]
    found = found[found["patient_id"] == dose["patient_id"]]
    if not len(found):
        return dict(empty, plan_sop_uid=plans[0]), (
            f"RTDOSE references RTPLAN {plans[0]}, which is not in the cohort: its DVHs take every structure set "
            "of its CTs' frame of reference"
        )
    plan = found.iloc[0]
    structures = split_uids(plan["referenced_sop_uids"])
    known = set(instances.loc[instances["modality"] == "RTSTRUCT", "sop_instance_uid"])
    out = dict(plan_sop_uid=plan["sop_instance_uid"], plan_label=plan["rt_label"])
    present = [u for u in structures if u in known]
    if not present:
        return dict(out, plan_structure_sop_uids=""), (
            f"RTPLAN '{plan['rt_label']}' ({plan['sop_instance_uid']}) of this RTDOSE references "
            + (f"structure set {structures[0]}, which is not in the cohort" if structures else "no structure set")
            + ": its DVHs take every structure set of its CTs' frame of reference"
        )
    return dict(out, plan_structure_sop_uids="\\".join(present)), ""


def _structure_sources(rois: pd.DataFrame) -> list[dict]:
    """Each structure set (RTSTRUCT or SEG) as a source of links: what it references and its contours' extent."""
    sources = []
    for _, g in rois.groupby("rtstruct_sop_uid", sort=False) if len(rois) else []:
        rs = g.iloc[0]
        sources.append(
            dict(
                patient_id=rs["patient_id"],
                source_modality="SEG" if rs["contour_types"] == "SEG" else "RTSTRUCT",
                source_series_uid=rs["rtstruct_series_uid"],
                source_sop_uid=rs["rtstruct_sop_uid"],
                source_path=rs["rtstruct_path"],
                referenced=rs["referenced_series_uid"],
                frame_of_reference_uid=rs["frame_of_reference_uid"],
                z_min=g["z_min"].min(),
                z_max=g["z_max"].max(),
            )
        )
    return sources


def _dose_sources(instances: pd.DataFrame, problems: list) -> list[dict]:
    """Each RTDOSE as a source of links, with the plan it references (plan_references) and what is amiss there."""
    sources = []
    for _, d in instances[instances["modality"] == "RTDOSE"].iterrows():
        plan, why = plan_references(d, instances)
        if why:
            problems.append(
                problem("series", d["dicom_series_uid"], d["patient_id"], d["dicom_series_uid"], "warning", why)
            )
        sources.append(
            dict(
                plan,
                patient_id=d["patient_id"],
                source_modality="RTDOSE",
                source_series_uid=d["dicom_series_uid"],
                source_sop_uid=d["sop_instance_uid"],
                source_path=d["path"],
                referenced="",
                frame_of_reference_uid=d["frame_of_reference_uid"],
                z_min=np.nan,
                z_max=np.nan,
            )
        )
    return sources


def _targets(src: dict, images: pd.DataFrame, problems: list) -> dict[str, str]:
    """{image series: relation} of one source: the series it references, and the series of its patient and frame of
    reference whose slices cover it (an RTDOSE: CTs only); a dangling reference and no target at all are problems."""
    targets = {}
    ref = src["referenced"]
    referenced = images[images["dicom_series_uid"] == ref] if ref else images.iloc[0:0]
    for uid in referenced["series_uid"]:
        targets[uid] = "referenced"
    about = ("series", src["source_series_uid"], src["patient_id"], src["source_series_uid"])
    if ref and not len(referenced):
        problems.append(
            problem(
                *about,
                "warning",
                f"{src['source_modality']} references image series {ref}, which is not among "
                "the converted image series; linked by frame of reference and slice "
                "coverage instead",
            )
        )
    same_for = images[
        (images["frame_of_reference_uid"] == src["frame_of_reference_uid"])
        & (images["patient_id"] == src["patient_id"])
    ]
    if src["source_modality"] == "RTDOSE":
        same_for = same_for[same_for["modality"] == "CT"]
    for _, im in same_for.iterrows():
        margin = im["slice_spacing"] / 2 if pd.notna(im["slice_spacing"]) else 0.0
        if _overlaps(src["z_min"], src["z_max"], im["z_min"], im["z_max"], margin):
            targets.setdefault(im["series_uid"], "same_frame_of_reference")
    if not targets:
        problems.append(
            problem(
                *about,
                "excluded",
                f"{src['source_modality']} has no converted image series to go with "
                f"(referenced series {ref or '(none)'} absent; no image of frame of reference "
                f"{src['frame_of_reference_uid'] or '(none)'} covers it)",
            )
        )
    return targets


def link_table(series: pd.DataFrame, rois: pd.DataFrame, instances: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """RTSTRUCT and RTDOSE -> every converted image series they belong to.

    An RTSTRUCT goes to the series it references (ReferencedSeriesInstanceUID, all its converted sub-series);
    also, and when that reference dangles instead, to every converted image series of the same patient and frame
    of reference whose slices cover its contours (the PET of a PET/CT), on which its ROIs are rasterised directly.
    An RTDOSE goes to the converted CT series of its frame of reference; its rows also name the plan it references
    and the structure sets that plan references (plan_references), whose ROIs then get its DVHs."""
    images = series[series["convert"]]
    modality = dict(zip(images["series_uid"], images["modality"]))
    links, problems = [], []
    sources = _structure_sources(rois) + _dose_sources(instances, problems)
    for src in sources:
        for uid, relation in _targets(src, images, problems).items():
            links.append(
                dict(
                    {k: src[k] for k in LINK_COLUMNS if k in src},
                    image_series_uid=uid,
                    image_modality=modality[uid],
                    relation=relation,
                )
            )
    table = pd.DataFrame(links, columns=LINK_COLUMNS)
    plan_columns = ["plan_sop_uid", "plan_label", "plan_structure_sop_uids"]
    table[plan_columns] = table[plan_columns].fillna("").astype(str)  # a structure set's links name no plan
    return table, problems


def select_series(series: pd.DataFrame, links: pd.DataFrame, selection: str) -> tuple[pd.DataFrame, list[dict]]:
    """With selection "referenced", only image series that a structure set goes with are converted (the
    referenced series and the series on its frame of reference); with "all", every usable image series."""
    if selection == "all":
        return series, []
    if selection != "referenced":
        raise ValueError(f"series_selection must be 'referenced' or 'all', not {selection!r}")
    linked = set(links.loc[links["source_modality"].isin(STRUCTURE_MODALITIES), "image_series_uid"])
    drop = series["convert"] & ~series["series_uid"].isin(linked)
    series = series.copy()
    series.loc[drop, "convert"] = False
    series.loc[drop, "reason"] = "no structure set goes with this series (series_selection: referenced)"
    problems = [
        problem("series", r.series_uid, r.patient_id, r.series_uid, "info", r.reason) for r in series[drop].itertuples()
    ]
    return series, problems
