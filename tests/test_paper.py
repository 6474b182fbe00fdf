"""The paper folder (radflow.paper): the feature dictionary's IBSI codes and units, the checklists' items, the methods
following the settings, the acquisition parameters of real DICOM; the demo run's and the real data's folders are
checked in test_workflow.py and test_real_data.py."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pydicom
import pytest
from conftest import REFERENCE, REPO

from radflow.dicom.convert import acquisition_parameters
from radflow.features import ibsi
from radflow.paper.checklist import reporting_checklist
from radflow.paper.dictionary import features_dictionary, ibsi_terms, pyradiomics_to_ibsi, ucum
from radflow.paper.facts import run_facts, settings_facts
from radflow.paper.methods import IBSI_CONFORMANCE, methods_markdown
from radflow.tables import ID_COLUMNS

REAL = REFERENCE / "real"


def test_every_ibsi_feature_radflow_maps_has_its_ibsi_name_and_code():
    tags = {**ibsi.MORPHOLOGY, **ibsi.STATISTICS, **ibsi.GLCM, **ibsi.GLRLM, **ibsi.GLSZM, **ibsi.NGTDM, **ibsi.NGLDM}
    terms = ibsi_terms()
    assert set(terms) == set(tags) and len(terms) == 105
    codes = [code for _, code in terms.values()]
    assert len(set(codes)) == 105 and all(re.fullmatch(r"[0-9A-Z]{4}", c) for c in codes)
    # spot checks against the IBSI-1 reference manual
    assert terms["stat_mean"] == ("Mean", "Q4LE")
    assert terms["morph_volume"] == ("Volume", "RNU0")
    assert terms["cm_joint_entr"] == ("Joint entropy", "TU9B")
    assert terms["ngl_dcnu_norm"][1] == "OKJI"
    # one pyradiomics feature, two IBSI names: IBSI's sum variance is pyradiomics' cluster tendency
    assert sorted(pyradiomics_to_ibsi()["glcm_ClusterTendency"]) == ["cm_clust_tend", "cm_sum_var"]


def _features(rows: list[dict]) -> pd.DataFrame:
    base = {c: "" for c in ID_COLUMNS}
    return pd.DataFrame([dict(base, status="ok", **r) for r in rows])


COLUMNS = {
    "original_firstorder_Mean": 1.0,
    "original_firstorder_Variance": 2.0,
    "original_firstorder_TotalEnergy": 3.0,
    "original_firstorder_Kurtosis": 3.1,
    "original_firstorder_Uniformity": 0.1,
    "original_shape_MeshVolume": 4.0,
    "original_shape_Maximum2DDiameterSlice": 5.0,
    "original_glcm_JointEntropy": 6.0,
    "original_glszm_ZonePercentage": 0.5,
    "wavelet-LLH_firstorder_Mean": 7.0,
}


def test_the_dictionary_gives_each_column_its_ibsi_code_unit_and_settings(tmp_path):
    features = _features(
        [
            dict(modality="CT", image_units="HU", **COLUMNS),
            dict(modality="PT", image_units="SUVbw (g/ml)", **COLUMNS),
            dict(modality="RTDOSE", image_units="Gy", **COLUMNS),
        ]
    )
    settings = {m: settings_facts(REPO / "config" / "pyradiomics" / f"{m}.yaml") for m in ("CT", "PT", "RTDOSE")}
    d = features_dictionary(features, settings)
    ids = d[d["kind"] == "identifier"]
    assert list(ids["column"]) == [c for c in ID_COLUMNS if c in features.columns] and ids["meaning"].ne("").all()
    rows = d[d["kind"] == "feature"].set_index(["modality", "column"])
    assert len(rows) == 3 * len(COLUMNS)
    mean = rows.loc[("CT", "original_firstorder_Mean")]
    assert (mean["ibsi_code"], mean["unit"], mean["ucum"]) == ("Q4LE", "HU", "[hnsfld'U]")
    assert rows.loc[("PT", "original_firstorder_Mean"), "ucum"] == "{SUVbw}g/ml"
    assert rows.loc[("RTDOSE", "original_firstorder_Variance"), "ucum"] == "Gy2"
    assert rows.loc[("CT", "original_firstorder_TotalEnergy"), "ucum"] == "[hnsfld'U]2.mm3"
    assert rows.loc[("CT", "original_shape_MeshVolume"), ["ibsi_code", "ucum"]].tolist() == ["RNU0", "mm3"]
    # not an IBSI feature: no code, said so
    diameter = rows.loc[("CT", "original_shape_Maximum2DDiameterSlice")]
    assert diameter["ibsi_code"] == "" and "not an IBSI-1 feature" in diameter["note"] and diameter["ucum"] == "mm"
    assert rows.loc[("CT", "original_firstorder_Kurtosis"), "note"].startswith("pyradiomics' kurtosis")
    assert rows.loc[("CT", "original_firstorder_Uniformity"), "ibsi_code"] == "BJ5W = 5SPA"
    glcm = rows.loc[("CT", "original_glcm_JointEntropy")]
    assert (glcm["ibsi_code"], glcm["ibsi_aggregation_code"], glcm["unit"]) == ("TU9B", "ITBB", "1")
    assert rows.loc[("CT", "original_glszm_ZonePercentage"), "ibsi_aggregation_code"] == "KOBO"
    assert "filtered image" in rows.loc[("CT", "wavelet-LLH_firstorder_Mean"), "note"]
    # the settings: each modality its own file and units
    assert rows.loc[("CT", "original_glcm_JointEntropy"), "settings"] == (
        "CT.yaml: bin width 25 HU; resampled to 1×1×1 mm (sitkBSpline); re-segmented to [-1000, 3000] HU"
    )
    assert rows.loc[("PT", "original_glcm_JointEntropy"), "settings"] == "PT.yaml: bin width 0.25 SUVbw; native grid"
    assert rows.loc[("RTDOSE", "original_glcm_JointEntropy"), "settings"].startswith("RTDOSE.yaml: bin width 0.5 Gy")


def test_ucum_codes_of_the_units_radflow_writes():
    assert ucum("mm³") == "mm3" and ucum("1/mm") == "/mm" and ucum("1") == "1" and ucum("") == ""
    assert ucum("HU²") == "[hnsfld'U]2" and ucum("Bq/ml") == "Bq/mL" and ucum("Gy²·mm³") == "Gy2.mm3"


def test_the_conformance_the_methods_quote_is_conformance_md():
    table = {}
    for line in (REPO / "CONFORMANCE.md").read_text().splitlines():
        m = re.match(r"\| (digital_phantom|[A-E]) \|[^|]*\| (\d+) / (\d+) \| (\d+) / (\d+) \|", line)
        if m:
            table[m.group(1)] = (int(m.group(2)), int(m.group(3)))
            assert (int(m.group(4)), int(m.group(5))) == (105, 105)
    assert table == IBSI_CONFORMANCE


def _facts(tmp_path, ct_settings: str, modalities=("CT",)):
    tmp_path.mkdir(parents=True, exist_ok=True)
    settings = {}
    for m in modalities:
        text = (REPO / "config" / "pyradiomics" / f"{m}.yaml").read_text()
        path = tmp_path / f"{m}.yaml"
        path.write_text(ct_settings if m == "CT" else text)
        settings[m] = path
    features = _features(
        [
            dict(
                patient_id=f"TCGA-AA-000{i}",
                series_uid=f"1.{i}",
                study_uid=f"2.{i}",
                modality=m,
                roi="GTVp",
                roi_label="GTVp",
                image_units={"CT": "HU", "PT": "SUVbw (g/ml)"}[m],
                **COLUMNS,
            )
            for i in range(3)
            for m in modalities
        ]
    )
    series = pd.DataFrame(
        [
            dict(
                patient_id=f"TCGA-AA-000{i}",
                study_uid=f"2.{i}",
                series_uid=f"1.{i}",
                modality=m,
                manufacturer="ACME",
                manufacturer_model=f"Scanner {i % 2}",
                pixel_spacing_row=0.9,
                pixel_spacing_col=0.9,
                slice_thickness=2.0 + i,
                slice_spacing=2.0 + i,
                rows=512,
                columns=512,
            )
            for i in range(3)
            for m in modalities
        ]
    )
    rois = pd.DataFrame([dict(rtstruct_sop_uid="9.1", contour_types="CLOSED_PLANAR", roi="GTVp")])
    config = dict(contour_overlap="even-odd", roi_instances="largest", feature_rois="standard", max_roi_voxels=4000000)
    return run_facts(features, series, rois, [], settings, config)


def test_the_methods_and_the_checklist_follow_the_settings(tmp_path):
    ct = (REPO / "config" / "pyradiomics" / "CT.yaml").read_text()
    before = _facts(tmp_path / "a", ct)
    after = _facts(tmp_path / "b", ct.replace("binWidth: 25", "binWidth: 10").replace("[1, 1, 1]", "[2, 2, 0.5]"))
    m0, m1 = methods_markdown(before), methods_markdown(after)
    assert "a fixed bin width of 25 HU" in m0 and "resampled to 1×1×1 mm voxels" in m0
    assert "a fixed bin width of 10 HU" in m1 and "resampled to 2×2×0.5 mm voxels" in m1
    assert "slice thickness 2–4 mm" in m0 and "Scanner 0 (n = 2), ACME Scanner 1 (n = 1)" in m0
    c0 = reporting_checklist(before).set_index(["standard", "item"])
    c1 = reporting_checklist(after).set_index(["standard", "item"])
    assert c0.loc[("IBSI-1", "56b"), "value"] == "CT: fixed bin size (FBS), 25 HU"
    assert c1.loc[("IBSI-1", "56b"), "value"] == "CT: fixed bin size (FBS), 10 HU"
    assert c1.loc[("IBSI-1", "51"), "value"] == "CT: 2×2×0.5 mm"


def test_the_checklist_holds_every_item_of_the_three_standards_once(tmp_path):
    facts = _facts(tmp_path, (REPO / "config" / "pyradiomics" / "CT.yaml").read_text())
    c = reporting_checklist(facts)
    assert c.groupby("standard").size().to_dict() == {"IBSI-1": 104, "CLEAR": 58, "METRICS": 30}
    assert not c.duplicated(["standard", "item"]).any()
    assert set(c["status"]) <= {"run", "partly", "author", "n/a"}
    assert c.loc[c["status"].isin(["run", "partly"]), "value"].ne("").all()
    by = c.set_index(["standard", "item"])
    # a CT-only run: the PET and MR items do not apply, the CT ones do
    assert by.loc[("IBSI-1", "3a"), "status"] == "n/a" and by.loc[("IBSI-1", "27"), "status"] == "n/a"
    assert by.loc[("IBSI-1", "7"), "value"] == "CT: ACME Scanner 0 (n = 2), ACME Scanner 1 (n = 1)"
    # no acquisition sidecars: the kVp is the authors' to give, said so
    assert by.loc[("IBSI-1", "14"), ["status", "value"]].tolist() == ["author", "not in the DICOM headers of this run"]
    assert by.loc[("CLEAR", "9"), "status"] == "author"  # sample size: only the authors know


@pytest.mark.skipif(not REAL.is_dir(), reason="reference/real is not on this machine")
def test_acquisition_parameters_of_real_ct_and_pet():
    def series(folder, modality):
        files = [pydicom.dcmread(p, stop_before_pixels=True) for p in Path(folder).rglob("*.dcm")]
        files = [ds for ds in files if ds.Modality == modality]
        assert files, folder
        return acquisition_parameters(files, modality)

    lung = series(REAL / "mirp_nsclc_lung1_001", "CT")
    assert (lung["kvp"], lung["kernel"], lung["model"]) == (120.0, "B19f", "Biograph 40")
    pet = series(REAL / "mirp_qin_headneck_0139_pet_seg", "PT")
    assert pet["reconstruction"] == "OSEM2D 4i8s" and "ATTN" in pet["corrections"]
    assert pet["radionuclide"] and "kvp" not in pet
