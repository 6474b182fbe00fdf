"""ROI name aliases: many sites' spellings, one standard name; nothing mapped by accident."""

from __future__ import annotations

import pytest
from conftest import REPO

from radflow.demo import PATIENTS
from radflow.roi_names import FeatureRois, feature_names, load_aliases, standard_name

ALIASES = load_aliases(REPO / "config" / "roi_names.yaml")


@pytest.mark.parametrize(
    "key,standard",
    [
        ("gtvp", "GTVp"),
        ("gtvn", "GTVn"),
        ("parotid_l", "Parotid_L"),
        ("parotid_r", "Parotid_R"),
        ("cord", "SpinalCord"),
    ],
)
def test_every_demo_spelling(key, standard):
    for spec in PATIENTS:
        assert standard_name(spec[key], ALIASES)[0] == standard, spec[key]


@pytest.mark.parametrize(
    "name,standard",
    [
        (" gtv ", "GTVp"),
        ("GTV_Primary", "GTVp"),
        ("GTV-1", "GTVp"),
        ("GTVnd", "GTVn"),
        ("GTV_N_L", "GTVn"),
        ("LT PAROTID", "Parotid_L"),
        ("Parotid Rt", "Parotid_R"),
        ("Brain Stem", "Brainstem"),
        ("Cord_PRV", "SpinalCord_PRV05"),
        ("PTV70", "PTV"),
        ("GTV+5mm", "unmapped"),
        ("Parotids", "unmapped"),
        ("CTV_High", "CTV"),
        # what real exports bring (LUNG1-001's Varian structure set, an XiO body "Patient", the IBSI sarcoma RTSTRUCTs,
        # a DICOM SEG's segment labels), and names that must stay apart
        ("Lung-Left", "Lung_L"),
        ("Lung-Right", "Lung_R"),
        ("Spinal-Cord", "SpinalCord"),
        ("Patient", "External"),
        ("BODY", "External"),
        ("External", "External"),
        ("Couch Surface", "Couch"),
        ("CouchInterior", "Couch"),
        ("ISO", "Marker"),
        ("Isocenter 1", "Marker"),
        ("REF PT", "Marker"),
        ("BB1", "Marker"),
        ("Isodose 95%", "unmapped"),
        ("GTV_Mass_CT", "GTVp"),
        ("GTV_Mass_MR_T1", "GTVp"),
        ("Neoplasm, Primary", "GTVp"),
        ("Neoplasm, Secondary", "unmapped"),
        ("Esophagus", "Esophagus"),
        ("Oesophagus", "Esophagus"),
        ("Heart", "Heart"),
        ("Brain", "Brain"),
        ("Brainstem", "Brainstem"),
        ("Lungs", "Lungs"),
        ("Lung_Total", "Lungs"),
        ("L Submandibular", "Submandibular_L"),
        ("Optic Nerve R", "OpticNrv_R"),
        ("Chiasm", "OpticChiasm"),
        ("PTV_7000", "PTV"),
        ("ITV", "ITV"),
        ("Bolus", "unmapped"),
    ],
)
def test_names(name, standard):
    assert standard_name(name, ALIASES)[0] == standard


def test_bad_pattern_is_named(tmp_path):
    f = tmp_path / "aliases.yaml"
    f.write_text("GTVp:\n  - 'gtv[('\n")
    with pytest.raises(ValueError, match=r"GTVp.*gtv\["):
        load_aliases(f)


def test_features_false_entries(tmp_path):
    """{patterns, features: false} entries map like lists and are left out of feature_rois: standard."""
    chosen, excluded = feature_names(REPO / "config" / "roi_names.yaml")
    assert {"GTVp", "GTVn", "Parotid_L", "SpinalCord", "Lung_L", "Heart", "Esophagus"} <= chosen
    assert excluded == {"External", "Couch", "Marker", "CTV", "ITV", "PTV"}
    f = tmp_path / "aliases.yaml"
    f.write_text("Body:\n  features: maybe\n  patterns: ['body']\n")
    with pytest.raises(ValueError, match="Body: features must be true or false"):
        load_aliases(f)
    f.write_text("Body:\n  pattern: ['body']\n")
    with pytest.raises(ValueError, match="Body: expected 'patterns'"):
        load_aliases(f)


def test_feature_rois_rule():
    names = REPO / "config" / "roi_names.yaml"

    def entry(original):
        return dict(roi=standard_name(original, ALIASES)[0], label="x", roi_original=original)

    standard = FeatureRois("standard", names)
    assert standard.why_not(entry("GTV-1")) == "" and standard.why_not(entry("Lung-Left")) == ""
    assert "unmapped" in standard.why_not(entry("Neoplasm, Secondary"))
    assert "External, marked `features: false`" in standard.why_not(entry("BODY"))
    assert "feature_rois: all" in standard.why_not(entry("PTV70"))
    assert FeatureRois("all", names).why_not(entry("BODY")) == ""
    listed = FeatureRois(["GTVp", "Neoplasm, Secondary"], names)
    assert listed.why_not(entry("GTV-1")) == "" and listed.why_not(entry("neoplasm, secondary")) == ""
    assert "not in the config's feature_rois list" in listed.why_not(entry("Parotid L"))
