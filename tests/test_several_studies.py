"""A real snakemake run with the non-default selection rules: two demo patients, one with a follow-up study that a
studies file names as its time point, one whose planning RTSTRUCT holds the primary GTV twice (two lesions) and
roi_instances: union. Checked against the generator's analytic volumes. The first patient's files carry a TCGA
sample barcode as PatientID (TCGA-00-0003-01A, as some exports do): the patient's ID in every table is the
patient barcode, so the modelling, ICC and delta tables all find the patient."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import make_project, run_snakemake
from factory import add_roi, rewrite_dicom, sphere_contours

pytestmark = pytest.mark.workflow

FOLLOWED, DOUBLED = "TCGA-00-0003", "TCGA-00-0004"
SAMPLE_BARCODE = "TCGA-00-0003-01A"  # FOLLOWED's PatientID in its files
SECOND = dict(centre=(30.0, -40.0, 15.0), radius=8.0)  # inside the body, clear of the other ROIs


@pytest.fixture(scope="module")
def run(demo_dir, truth, tmp_path_factory):
    base = tmp_path_factory.mktemp("several-studies")
    root = base / "dicom"
    for pid in (FOLLOWED, DOUBLED):
        shutil.copytree(demo_dir / "TCGA-HNSC" / pid, root / pid)
    rewrite_dicom(sorted((root / FOLLOWED).rglob("*.dcm")), lambda ds: setattr(ds, "PatientID", SAMPLE_BARCODE))
    # a second lesion drawn as another GTV in the planning RTSTRUCT: "GTV-T" maps to GTVp like "GTV-1"
    rs_folder = next(p for p in (root / DOUBLED).rglob("*RTSTRUCT*") if p.is_dir())
    slices = -90.0 + 2.5 * np.arange(72)  # the demo CT's slice positions
    add_roi(
        next(rs_folder.iterdir()),
        "GTV-T",
        [("CLOSED_PLANAR", c) for c in sphere_contours(SECOND["centre"], SECOND["radius"], slices, n=96)],
    )
    studies = base / "studies.csv"
    pd.DataFrame(
        dict(
            patient_id=[FOLLOWED, DOUBLED],
            study_uid=[truth["patients"][FOLLOWED]["followup"]["study_uid"], truth["patients"][DOUBLED]["study_uid"]],
        )
    ).to_csv(studies, index=False)
    workdir = make_project(
        base / "project",
        demo_dir,
        demo_cohort=None,
        dicom_root=str(root),
        model=dict(modality="CT", roi="GTVp", time_point="listed", studies=str(studies)),
        roi_instances="union",
        qc_overlays="none",
        robustness=dict(perturbations=[dict(volume_change=-0.1)]),
    )
    proc = run_snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir / "results"


def test_union_of_two_gtv_instances(run, truth):
    f = pd.read_parquet(run / "features.parquet")
    gtv = f[(f["patient_id"] == DOUBLED) & (f["roi"] == "GTVp")].set_index("roi_label")
    assert list(gtv.index) == ["GTVp", "GTVp_2", "GTVp_union"] and (gtv["status"] == "ok").all()
    union = gtv.loc["GTVp_union"]
    assert union["roi_original"] == "GTV-1 + GTV-T"
    assert union["mask_voxels"] == gtv.loc["GTVp", "mask_voxels"] + gtv.loc["GTVp_2", "mask_voxels"]
    analytic = truth["patients"][DOUBLED]["rois"]["GTV-1"]["volume_mm3"] + 4 / 3 * math.pi * SECOND["radius"] ** 3
    assert union["mask_volume_mm3"] == pytest.approx(analytic, rel=0.02)
    assert union["original_shape_MeshVolume"] > gtv.loc["GTVp", "original_shape_MeshVolume"]


def test_listed_studies_and_union_in_the_modelling_table(run, truth):
    table = pd.read_csv(run / "modelling_table.csv").set_index("patient_id")
    cohort = pd.read_csv(run / "cohort.tsv", sep="\t", keep_default_na=False).set_index("patient_id")
    assert sorted(table.index) == [FOLLOWED, DOUBLED]
    fu = truth["patients"][FOLLOWED]["followup"]
    row = cohort.loc[FOLLOWED]  # the listed follow-up, not the earlier planning study
    assert (row["series_uid"], row["study_uid"], row["study_day"]) == (fu["ct_series_uid"], fu["study_uid"], "91")
    assert row["time_point"] == "listed" and row["selection"].startswith("listed in model.studies (day 91)")
    assert f"day 0 series {truth['patients'][FOLLOWED]['ct_series_uid']} GTVp" in row["passed_over"]
    assert row["passed_over"].endswith("not listed")
    assert table.loc[FOLLOWED, "series_uid"] == fu["ct_series_uid"]
    row = cohort.loc[DOUBLED]  # the union stands for the two lesions
    assert (row["roi_label"], row["roi_original"]) == ("GTVp_union", "GTV-1 + GTV-T")
    assert "instances: union" in row["selection"] and row["passed_over"] == ""
    assert table.loc[DOUBLED, "roi_original"] == "GTV-1 + GTV-T"
    # patients of the clinical file without images are accounted for, not modelled
    assert cohort.loc[~cohort.index.isin([FOLLOWED, DOUBLED]), "reason"].eq("no converted image series").all()


def test_delta_table_under_the_union_rule(run, truth):
    delta = pd.read_csv(run / "delta_radiomics.csv")
    assert list(delta["patient_id"]) == [FOLLOWED] and list(delta["roi"]) == ["GTVp"]
    fu = truth["patients"][FOLLOWED]["followup"]
    assert delta["interval_days"].iloc[0] == fu["day"]
    assert delta["mask_volume_mm3_relative"].iloc[0] == pytest.approx(fu["gtvp_volume_ratio"] - 1, rel=0.02)


def test_a_sample_barcode_is_its_patient_in_every_table(run):
    """FOLLOWED's files say TCGA-00-0003-01A: the index keeps that as dicom_patient_id and calls the patient
    TCGA-00-0003 everywhere (features, perturbed features, the ICC's patients, modelling and delta tables)."""
    instances = pd.read_parquet(run / "index" / "instances.parquet")
    mine = instances[instances["dicom_patient_id"] == SAMPLE_BARCODE]
    assert len(mine) and set(mine["patient_id"]) == {FOLLOWED}
    assert set(pd.read_parquet(run / "features.parquet")["patient_id"]) == {FOLLOWED, DOUBLED}
    assert set(pd.read_parquet(run / "perturbed.parquet")["patient_id"]) == {FOLLOWED, DOUBLED}
    icc = pd.read_csv(run / "robustness" / "icc.csv")
    assert (icc["n_patients"] == 2).all()
    assert FOLLOWED in set(pd.read_csv(run / "modelling_table.csv")["patient_id"])
    assert list(pd.read_csv(run / "delta_radiomics.csv")["patient_id"]) == [FOLLOWED]
