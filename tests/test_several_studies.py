"""The several-studies scenario (.test/several_studies/): a real snakemake run with the non-default selection rules
and a cohort that mixes collections. Three demo patients: one with a follow-up study that a studies file names as
its time point, whose files carry a TCGA sample barcode as PatientID (TCGA-00-0003-01A, as some exports do); one
whose planning RTSTRUCT holds the primary GTV twice (two lesions, roi_instances: union), with the PatientID of
another collection (STS_004); one more of another collection (LUNG1-001) with a follow-up. Checked against the
generator's analytic volumes; every patient is found under its one ID in the modelling, ICC and delta tables."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_snakemake, scenario
from factory import add_roi, rewrite_dicom, sphere_contours

pytestmark = pytest.mark.workflow

FOLLOWED, DOUBLED, OTHER = "TCGA-00-0003", "TCGA-00-0004", "TCGA-0Z-0008"  # the demo's patients
SAMPLE_BARCODE = "TCGA-00-0003-01A"  # FOLLOWED's PatientID in its files
IDS = {FOLLOWED: FOLLOWED, DOUBLED: "STS_004", OTHER: "LUNG1-001"}  # each patient's ID in the tables
SECOND = dict(centre=(30.0, -40.0, 15.0), radius=8.0)  # inside the body, clear of the other ROIs


def write_cohort(demo_dir, root):
    """The scenario's DICOM (data/several_studies in .test/several_studies/config.yaml) from the demo's files."""
    for pid in (FOLLOWED, DOUBLED, OTHER):
        shutil.copytree(demo_dir / "TCGA-HNSC" / pid, root / pid)
    written = {FOLLOWED: SAMPLE_BARCODE, DOUBLED: IDS[DOUBLED], OTHER: IDS[OTHER]}
    for pid, patient_id in written.items():
        rewrite_dicom(sorted((root / pid).rglob("*.dcm")), lambda ds, v=patient_id: setattr(ds, "PatientID", v))
    # a second lesion drawn as another GTV in the planning RTSTRUCT: "GTV-T" maps to GTVp like "GTV-1"
    rs_folder = next(p for p in (root / DOUBLED).rglob("*RTSTRUCT*") if p.is_dir())
    slices = -90.0 + 2.5 * np.arange(72)  # the demo CT's slice positions
    add_roi(
        next(rs_folder.iterdir()),
        "GTV-T",
        [("CLOSED_PLANAR", c) for c in sphere_contours(SECOND["centre"], SECOND["radius"], slices, n=96)],
    )


@pytest.fixture(scope="module")
def run(demo_dir, truth, tmp_path_factory):
    base = tmp_path_factory.mktemp("several-studies")
    write_cohort(demo_dir, base / "dicom")
    workdir = scenario("several_studies", base / "project", demo_dir, dicom_root=str(base / "dicom"))
    proc = run_snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir / "results"


def test_the_studies_file_lists_the_demos_studies(truth):
    """The scenario's studies.csv names the demo's studies (its UIDs are the generator's, fixed by its seed)."""
    listed = pd.read_csv(REPO / ".test" / "several_studies" / "studies.csv").set_index("patient_id")["study_uid"]
    p = truth["patients"]
    assert listed.to_dict() == {
        FOLLOWED: p[FOLLOWED]["followup"]["study_uid"],
        IDS[DOUBLED]: p[DOUBLED]["study_uid"],
        IDS[OTHER]: p[OTHER]["study_uid"],
    }


def test_union_of_two_gtv_instances(run, truth):
    f = pd.read_parquet(run / "features.parquet")
    gtv = f[(f["patient_id"] == IDS[DOUBLED]) & (f["roi"] == "GTVp")].set_index("roi_label")
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
    assert sorted(table.index) == sorted(IDS.values())
    fu = truth["patients"][FOLLOWED]["followup"]
    row = cohort.loc[FOLLOWED]  # the listed follow-up, not the earlier planning study
    assert (row["series_uid"], row["study_uid"], row["study_day"]) == (fu["ct_series_uid"], fu["study_uid"], "91")
    assert row["time_point"] == "listed" and row["selection"].startswith("listed in model.studies (day 91)")
    assert f"day 0 series {truth['patients'][FOLLOWED]['ct_series_uid']} GTVp" in row["passed_over"]
    assert row["passed_over"].endswith("not listed")
    assert table.loc[FOLLOWED, "series_uid"] == fu["ct_series_uid"]
    row = cohort.loc[IDS[DOUBLED]]  # the union stands for the two lesions
    assert (row["roi_label"], row["roi_original"]) == ("GTVp_union", "GTV-1 + GTV-T")
    assert "instances: union" in row["selection"] and row["passed_over"] == ""
    assert table.loc[IDS[DOUBLED], "roi_original"] == "GTV-1 + GTV-T"
    # patients of the clinical files without images are accounted for, not modelled (the demo's TCGA-00-0004 and
    # TCGA-0Z-0008 among them: their images are STS_004's and LUNG1-001's here)
    others = cohort.loc[~cohort.index.isin(IDS.values())]
    assert {DOUBLED, OTHER} <= set(others.index) and others["reason"].eq("no converted image series").all()
    # LUNG1-001's own outcome, from the mapped table of its collection
    assert (table.loc[IDS[OTHER], "os_days"], table.loc[IDS[OTHER], "os_event"]) == (2165, 0)


def test_delta_table_under_the_union_rule(run, truth):
    delta = pd.read_csv(run / "delta_radiomics.csv").set_index("patient_id")
    assert sorted(delta.index) == sorted([FOLLOWED, IDS[OTHER]]) and set(delta["roi"]) == {"GTVp"}
    for pid in (FOLLOWED, OTHER):
        fu = truth["patients"][pid]["followup"]
        row = delta.loc[IDS[pid]]
        assert row["interval_days"] == fu["day"]
        assert row["mask_volume_mm3_relative"] == pytest.approx(fu["gtvp_volume_ratio"] - 1, rel=0.02)


def test_every_patient_id_reaches_every_table(run):
    """The IDs as the files write them: TCGA-00-0003-01A (a sample barcode) is kept as dicom_patient_id and the
    patient is TCGA-00-0003 everywhere; STS_004 and LUNG1-001 (other collections, not TCGA barcodes) stay as they are.
    Each reaches the features, the perturbed features, the ICC's patients, and the modelling and delta tables."""
    instances = pd.read_parquet(run / "index" / "instances.parquet")
    assert dict(zip(instances["dicom_patient_id"], instances["patient_id"])) == {
        SAMPLE_BARCODE: FOLLOWED,
        IDS[DOUBLED]: IDS[DOUBLED],
        IDS[OTHER]: IDS[OTHER],
    }
    everyone = set(IDS.values())
    assert set(pd.read_parquet(run / "features.parquet")["patient_id"]) == everyone
    assert set(pd.read_parquet(run / "perturbed.parquet")["patient_id"]) == everyone
    cohort = pd.read_csv(run / "cohort.tsv", sep="\t", keep_default_na=False)
    assert set(cohort.loc[cohort["in_modelling_table"].astype(str) == "True", "patient_id"]) == everyone
    icc = pd.read_csv(run / "robustness" / "icc.csv")
    assert len(icc) > 100 and (icc["n_patients"] == 3).all()  # the robustness join found all three
    assert set(pd.read_csv(run / "modelling_table.csv")["patient_id"]) == everyone
    assert set(pd.read_csv(run / "delta_radiomics.csv")["patient_id"]) == {FOLLOWED, IDS[OTHER]}
