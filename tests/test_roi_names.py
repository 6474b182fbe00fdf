"""ROI name aliases: many sites' spellings, one standard name; nothing mapped by accident."""

from __future__ import annotations

import pytest

from conftest import REPO
from radflow.demo import PATIENTS
from radflow.roi_names import load_aliases, standard_name

ALIASES = load_aliases(REPO / "config" / "roi_names.yaml")


@pytest.mark.parametrize("key,standard", [("gtvp", "GTVp"), ("gtvn", "GTVn"), ("parotid_l", "Parotid_L"),
                                          ("parotid_r", "Parotid_R"), ("cord", "SpinalCord")])
def test_every_demo_spelling(key, standard):
    for spec in PATIENTS:
        assert standard_name(spec[key], ALIASES)[0] == standard, spec[key]


@pytest.mark.parametrize("name,standard", [
    (" gtv ", "GTVp"), ("GTV_Primary", "GTVp"), ("GTV-1", "GTVp"), ("GTVnd", "GTVn"), ("GTV_N_L", "GTVn"),
    ("LT PAROTID", "Parotid_L"), ("Parotid Rt", "Parotid_R"), ("Brain Stem", "Brainstem"),
    ("Cord_PRV", "SpinalCord_PRV05"), ("PTV70", "unmapped"), ("GTV+5mm", "unmapped"), ("Parotids", "unmapped"), ("CTV_High", "unmapped"),
])
def test_names(name, standard):
    assert standard_name(name, ALIASES)[0] == standard


def test_bad_pattern_is_named(tmp_path):
    f = tmp_path / "aliases.yaml"
    f.write_text("GTVp:\n  - 'gtv[('\n")
    with pytest.raises(ValueError, match=r"GTVp.*gtv\["):
        load_aliases(f)
