"""Which study, series and ROI instance stand for a patient in the modelling table, and the delta-radiomics table:
on small tables whose right answer is known, and on masks of analytic spheres."""

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from factory import grid_image, sphere_contours, write_rtstruct

from radflow.cohort.delta import delta_table
from radflow.cohort.model import modelling_table
from radflow.dicom.masks import write_masks
from radflow.roi_names import load_aliases
from radflow.tables import ID_COLUMNS


def model(**changes):
    """The schema's model settings (CT, GTVp, baseline, largest) with these changed."""
    from dataclasses import replace

    from radflow.config.build import defaults

    return replace(defaults().model, **changes)


REPO = Path(__file__).resolve().parents[1]


def _feature(pid, study, series, label, volume, value, roi="GTVp", rtstruct=None, modality="CT"):
    row = {c: "" for c in ID_COLUMNS}
    row.update(
        patient_id=pid,
        study_uid=study,
        series_uid=series,
        modality=modality,
        roi=roi,
        roi_original=f"orig {label}",
        roi_label=label,
        rtstruct_series_uid=rtstruct or f"rs-{study}",
        status="ok",
        mask_voxels=int(volume),
        mask_volume_mm3=float(volume),
    )
    row["original_shape_MeshVolume"] = float(volume)
    row["original_firstorder_Mean"] = float(value)
    return row


def _series(pid, study, date, series, modality="CT", role="image", spacing=2.5, slices=72):
    image = role == "image"
    return dict(
        patient_id=pid,
        study_uid=study,
        study_date=date,
        study_description="",
        series_uid=series,
        modality=modality,
        role=role,
        convert=image,
        slice_spacing=spacing if image else np.nan,
        n_slices=slices if image else np.nan,
    )


CLINICAL = pd.DataFrame(
    dict(
        patient_id=["TCGA-AA-0001", "TCGA-AA-0002"],
        os_days=[400.0, 800.0],
        os_event=[1, 0],
        dss_days=np.nan,
        dss_event=np.nan,
        pfi_days=np.nan,
        pfi_event=np.nan,
        age=[60, 70],
        sex=["male", "female"],
        stage="",
        tumour_site="",
        hpv_status="",
        smoking="",
    )
)


@pytest.fixture
def cohort():
    """Patient 1: a diagnostic CT (day 0, its GTVp drawn by a radiologist, no plan), the planning study (day 21: CT,
    RTSTRUCT, RTPLAN) and a follow-up (day 140). Patient 2: one study with the GTV on two CT series (2.5 mm and
    1.25 mm), drawn as two instances on the 2.5 mm series."""
    p1, p2 = "TCGA-AA-0001", "TCGA-AA-0002"
    series = pd.DataFrame(
        [
            _series(p1, "diag", "20100101", "ct-diag"),
            _series(p1, "diag", "20100101", "rs-diag", "RTSTRUCT", "rtstruct"),
            _series(p1, "plan", "20100122", "ct-plan"),
            _series(p1, "plan", "20100122", "rs-plan", "RTSTRUCT", "rtstruct"),
            _series(p1, "plan", "20100122", "rp-plan", "RTPLAN", "rtplan"),
            _series(p1, "fu", "20100521", "ct-fu"),
            _series(p1, "fu", "20100521", "rs-fu", "RTSTRUCT", "rtstruct"),
            _series(p2, "only", "20110303", "ct-thick", spacing=2.5, slices=80),
            _series(p2, "only", "20110303", "ct-thin", spacing=1.25, slices=160),
            _series(p2, "only", "20110303", "rs-only", "RTSTRUCT", "rtstruct"),
        ]
    )
    features = pd.DataFrame(
        [
            _feature(p1, "diag", "ct-diag", "GTVp", 30000, 40),
            _feature(p1, "plan", "ct-plan", "GTVp", 32000, 42),
            _feature(p1, "fu", "ct-fu", "GTVp", 8000, 30),
            _feature(p2, "only", "ct-thick", "GTVp", 5000, 50, rtstruct="rs-only"),
            _feature(p2, "only", "ct-thick", "GTVp_2", 9000, 55, rtstruct="rs-only"),
            _feature(p2, "only", "ct-thin", "GTVp", 7000, 52, rtstruct="rs-only"),
        ]
    )
    return features, series


def _by_patient(table):
    return table.set_index("patient_id")


def test_baseline_is_the_earliest_study_and_the_rest_are_passed_over(cohort):
    features, series = cohort
    table, cohort_table = modelling_table(features, CLINICAL, series, model())
    assert table["patient_id"].is_unique and len(table) == 2
    c = _by_patient(cohort_table)
    assert c.loc["TCGA-AA-0001", "series_uid"] == "ct-diag" and c.loc["TCGA-AA-0001", "study_day"] == 0
    assert _by_patient(table).loc["TCGA-AA-0001", "original_firstorder_Mean"] == 40
    assert c.loc["TCGA-AA-0001", "selection"].startswith("baseline")
    passed = c.loc["TCGA-AA-0001", "passed_over"]
    assert "day 21 series ct-plan GTVp" in passed and "day 140 series ct-fu GTVp" in passed
    assert passed.count("later study") == 2


def test_planning_is_the_study_with_the_plan(cohort):
    features, series = cohort
    table, cohort_table = modelling_table(features, CLINICAL, series, model(time_point="planning"))
    c = _by_patient(cohort_table).loc["TCGA-AA-0001"]
    assert (c["series_uid"], c["study_day"]) == ("ct-plan", 21)
    assert "RT plan" in c["selection"] and c["passed_over"].count("not the planning study") == 2
    # without an RTPLAN anywhere: the earliest study whose own structure set holds the ROI
    no_plan = series[series["role"] != "rtplan"]
    features = features.assign(rtstruct_series_uid=features["rtstruct_series_uid"].replace("rs-diag", "rs-plan"))
    _, cohort_table = modelling_table(features, CLINICAL, no_plan, model(time_point="planning"))
    c = _by_patient(cohort_table).loc["TCGA-AA-0001"]
    assert c["series_uid"] == "ct-plan" and "own structure set" in c["selection"]


def test_listed_studies(cohort):
    features, series = cohort
    listed = pd.DataFrame(dict(patient_id=["TCGA-AA-0001"], study_uid=["fu"], series_uid=[""]))
    table, cohort_table = modelling_table(features, CLINICAL, series, model(time_point="listed"), listed=listed)
    assert list(table["patient_id"]) == ["TCGA-AA-0001"] and table["original_firstorder_Mean"].iloc[0] == 30
    c = _by_patient(cohort_table)
    assert c.loc["TCGA-AA-0001", "study_day"] == 140
    assert not c.loc["TCGA-AA-0002", "in_modelling_table"]
    assert c.loc["TCGA-AA-0002", "reason"] == "time point listed: not listed in model.studies"
    # a listed series picks the series within the study
    listed = pd.DataFrame(dict(patient_id=["TCGA-AA-0002"], study_uid=["only"], series_uid=["ct-thick"]))
    _, cohort_table = modelling_table(
        features, CLINICAL, series, model(time_point="listed", roi_instances="suffix"), listed
    )
    assert _by_patient(cohort_table).loc["TCGA-AA-0002", "series_uid"] == "ct-thick"


@pytest.mark.parametrize(
    "instances, series_uid, label",
    [
        ("largest", "ct-thick", "GTVp_2"),  # 9,000 mm3 beats 7,000 and 5,000 wherever it was drawn
        ("suffix", "ct-thin", "GTVp"),  # only GTVp itself; of its two series the thinner slices win
    ],
)
def test_instances_and_tie_breaks(cohort, instances, series_uid, label):
    features, series = cohort
    table, cohort_table = modelling_table(features, CLINICAL, series, model(roi_instances=instances))
    c = _by_patient(cohort_table).loc["TCGA-AA-0002"]
    assert (c["series_uid"], c["roi_label"]) == (series_uid, label)
    assert f"instances: {instances}" in c["selection"]
    assert c["passed_over"].count("not chosen within the study") == (2 if instances == "largest" else 1)


def test_union_rows_stand_for_their_series(cohort):
    features, series = cohort
    union = _feature("TCGA-AA-0002", "only", "ct-thick", "GTVp_union", 13000, 53, rtstruct="rs-only")
    features = pd.concat([features, pd.DataFrame([union])], ignore_index=True)
    _, cohort_table = modelling_table(features, CLINICAL, series, model(roi_instances="union"))
    c = _by_patient(cohort_table).loc["TCGA-AA-0002"]
    # the union (ct-thick) and the single instance on ct-thin compete by the tie-breaks: thinner slices win
    assert (c["series_uid"], c["roi_label"]) == ("ct-thin", "GTVp")
    assert "GTVp_union" in c["passed_over"] and "GTVp_2" not in c["passed_over"]
    # the same with equal slices: then the larger mask, the union
    series = series.assign(
        slice_spacing=series["slice_spacing"].where(series["slice_spacing"].isna(), 2.5),
        n_slices=series["n_slices"].where(series["n_slices"].isna(), 80),
    )
    _, cohort_table = modelling_table(features, CLINICAL, series, model(roi_instances="union"))
    assert _by_patient(cohort_table).loc["TCGA-AA-0002", "roi_label"] == "GTVp_union"


def test_delta_table(cohort):
    features, series = cohort
    delta = delta_table(features, series)
    # patient 1: the first study against each later one; patient 2 has one study, no delta
    assert list(delta["patient_id"]) == ["TCGA-AA-0001"] * 2
    assert list(delta["interval_days"]) == [21, 140] and list(delta["day_1"]) == [21, 140]
    later = delta.set_index("series_uid_1").loc["ct-fu"]
    assert later["series_uid_0"] == "ct-diag"
    assert later["original_shape_MeshVolume_0"] == 30000 and later["original_shape_MeshVolume_1"] == 8000
    assert later["original_shape_MeshVolume_delta"] == -22000 and later["mask_volume_mm3_delta"] == -22000
    assert later["original_shape_MeshVolume_relative"] == pytest.approx(-22000 / 30000)
    assert later["original_firstorder_Mean_relative"] == pytest.approx(-10 / 40)


def test_union_mask_of_two_instances(tmp_path):
    """GTV_1 and GTV_2, two disjoint spheres that an alias file maps to one standard ROI: the union mask holds
    both, and its volume is the sum of the two analytic spheres."""
    aliases_file = tmp_path / "aliases.yaml"
    aliases_file.write_text("GTVp:\n  - 'gtv[ _-]?\\d'\n")
    r1, r2 = 12.0, 8.0
    z = np.arange(-30, 30.1, 1.0)
    rois = {"GTV_1": sphere_contours((-15.0, 0.0, 0.0), r1, z), "GTV_2": sphere_contours((18.0, 4.0, 5.0), r2, z)}
    rs = write_rtstruct(tmp_path / "rs.dcm", rois)
    image = grid_image(tmp_path / "image.nii.gz", (80, 60, 61), (0.8, 0.8, 1.0), (-32, -24, -30))
    sidecars = {
        s["label"]: s for s in write_masks([rs], image, tmp_path / "masks", load_aliases(aliases_file), union=True)
    }
    assert set(sidecars) == {"GTVp", "GTVp_2", "GTVp_union"}
    union = sidecars["GTVp_union"]
    assert union["roi"] == "GTVp" and union["roi_original"] == "GTV_1 + GTV_2"
    assert union["voxel_count"] == sidecars["GTVp"]["voxel_count"] + sidecars["GTVp_2"]["voxel_count"]
    assert union["volume_mm3"] == pytest.approx(4 / 3 * math.pi * (r1**3 + r2**3), rel=0.01)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "masks" / "GTVp_union.nii.gz")))
    assert mask.sum() == union["voxel_count"]
    # without union=True no union is written
    plain = write_masks([rs], image, tmp_path / "plain", load_aliases(aliases_file))
    assert not [s for s in plain if re.search("union", s["label"])]


def test_selection_config_is_checked_before_the_run(tmp_path):
    """(The Snakefile runs these checks before any job: tests/test_broken_corpus.py starts snakemake on them.)"""
    from radflow.config.check import path_problems, schema_problems

    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert schema_problems(config, schema) == []
    bad = dict(config, roi_instances="all", model=dict(config["model"], time_point="latest"))
    assert schema_problems(bad, schema) == [
        "config key model.time_point = 'latest': expected one of baseline, planning, listed (which study stands for "
        "a patient (see config/README.md))",
        "config key roi_instances = 'all': expected one of largest, union, suffix (one standard ROI drawn more than "
        "once on a patient's study; the largest, the union, or each its own ROI)",
    ]
    listed = dict(model=dict(modality="CT", roi="GTVp", time_point="listed"))
    assert [p for p in path_problems(listed, tmp_path) if "model." in p] == [
        "config key model.time_point = 'listed' needs model.studies: a CSV or TSV file with the columns patient_id "
        "and study_uid (series_uid optional)"
    ]

    def problems(studies):
        return [
            p
            for p in path_problems(
                dict(model=dict(modality="CT", roi="GTVp", time_point="listed", studies=studies)), tmp_path
            )
            if "model." in p
        ]

    assert problems(str(tmp_path / "none.csv")) == [
        f"config key model.studies = '{tmp_path / 'none.csv'}': the file does not exist"
    ]
    wrong = tmp_path / "studies.csv"
    wrong.write_text("patient_id,series\nTCGA-AA-0001,1.2.3\n")
    assert problems(str(wrong)) == [
        f"config key model.studies: {wrong}: model.studies needs the columns patient_id "
        "and study_uid; missing study_uid"
    ]
    wrong.write_text("patient_id,study_uid\nTCGA-AA-0001,1.2.3\n")
    assert problems(str(wrong)) == []


@pytest.mark.parametrize("whole_image", [False, True])
def test_a_failed_baseline_is_not_replaced_by_a_later_study(cohort, whole_image):
    """The diagnostic study's GTVp failed (or its whole CT did): the patient is left out of the modelling table with
    that reason, and has no delta rows; the planning study and the follow-up never stand in for the baseline."""
    features, series = cohort
    diag = features["series_uid"] == "ct-diag"
    reason = "ct-diag cannot be converted: broken pixel data" if whole_image else "empty mask: ROI covers no voxel"
    features.loc[diag, ["status", "reason"]] = ["failed", reason]
    if whole_image:
        features.loc[diag, ["roi", "roi_label", "roi_original"]] = ""
    table, cohort_table = modelling_table(features, CLINICAL, series, model())
    assert list(table["patient_id"]) == ["TCGA-AA-0002"]
    c = _by_patient(cohort_table).loc["TCGA-AA-0001"]
    assert not c["in_modelling_table"] and c["series_uid"] == ""
    assert c["reason"] == (
        f"baseline: the earliest study with the modality and ROI (day 0): "
        f"its ROI failed ({reason}); no other time point is used in its place"
    )
    assert "day 21 series ct-plan" in c["passed_over"] and "day 140 series ct-fu" in c["passed_over"]
    assert delta_table(features, series).empty
    # the planning rule is not concerned: its study is fine
    table, _ = modelling_table(features, CLINICAL, series, model(time_point="planning"))
    assert _by_patient(table).loc["TCGA-AA-0001", "series_uid"] == "ct-plan"


def test_dose_columns_come_from_the_chosen_studys_plan_sum():
    """model.dose: the chosen study's dose grid by DoseSummationType (PLAN before BEAM, whatever the UIDs), the ROI
    from the structure set of the chosen image's ROI where it has one, NaN where the study has no dose grid."""
    from radflow.cohort.model import dose_columns, dose_values

    def row(grid, kind, study, rs, roi, dmean, volume=10.0, status="ok"):
        return dict(
            patient_id="TCGA-00-0001",
            study_uid=study,
            dose_series_uid=grid,
            dose_summation_type=kind,
            rtstruct_series_uid=rs,
            roi=roi,
            status=status,
            dmean_gy=dmean,
            d95_pct_gy=dmean - 5,
            volume_cc=volume,
        )

    dvh = pd.DataFrame(
        [
            row("1.1", "BEAM", "s1", "rs1", "GTVp", 20.0),
            row("1.9", "PLAN", "s1", "rs1", "GTVp", 66.0),
            row("1.9", "PLAN", "s1", "rs2", "GTVp", 64.0, volume=50.0),  # larger, but another structure set
            row("1.9", "PLAN", "s1", "rs2", "Parotid_L", 24.0),
            row("2.1", "PLAN", "s2", "rs3", "GTVp", 70.0),  # another study
        ]
    )
    dose = {"GTVp": ["Dmean", "D95"], "Parotid_L": ["Dmean"], "SpinalCord": ["Dmean"]}
    assert dose_columns(dose) == [
        "dose_series_uid",
        "dose_GTVp_Dmean",
        "dose_GTVp_D95",
        "dose_Parotid_L_Dmean",
        "dose_SpinalCord_Dmean",
    ]
    got = dose_values(dvh, "TCGA-00-0001", "s1", "rs1", dose)
    assert got["dose_series_uid"] == "1.9" and got["dose_GTVp_Dmean"] == 66.0 and got["dose_GTVp_D95"] == 61.0
    assert got["dose_Parotid_L_Dmean"] == 24.0 and math.isnan(got["dose_SpinalCord_Dmean"])
    # an image whose ROI came from a structure set without a DVH: the largest instance
    assert dose_values(dvh, "TCGA-00-0001", "s1", "rs9", dose)["dose_GTVp_Dmean"] == 64.0
    none = dose_values(dvh, "TCGA-00-0001", "s3", "rs1", dose)
    assert none["dose_series_uid"] == "" and math.isnan(none["dose_GTVp_Dmean"])
