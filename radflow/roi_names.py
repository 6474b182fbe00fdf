"""ROI names: original names from many sites mapped to TG-263-style standard names, and which ROIs get features.

roi_names.yaml maps each standard name to regular expressions, either as a list of patterns or as a mapping
{patterns: [...], features: false}; `features: false` marks outlines, equipment and points (External, Couch,
Marker, PTV) that keep their mask and volume but get no pyradiomics features under `feature_rois: standard`.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

UNMAPPED = "unmapped"


def _entries(path) -> dict[str, tuple[list, bool]]:
    """{standard name: (pattern texts, features)} in the order of the file."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of standard name -> list of patterns")
    out = {}
    for standard, spec in data.items():
        features = True
        if isinstance(spec, dict):
            unknown = set(spec) - {"patterns", "features"}
            if unknown or "patterns" not in spec:
                raise ValueError(
                    f"{path}: {standard}: expected 'patterns' (a list) and optionally 'features' "
                    f"(true or false), got {sorted(spec)}"
                )
            features = spec.get("features", True)
            if not isinstance(features, bool):
                raise ValueError(f"{path}: {standard}: features must be true or false, got {features!r}")
            spec = spec["patterns"]
        if isinstance(spec, str):
            spec = [spec]
        if not isinstance(spec, list):
            raise ValueError(f"{path}: {standard}: expected a list of patterns, got {type(spec).__name__}")
        out[str(standard)] = ([str(t) for t in spec], features)
    return out


def load_aliases(path) -> list[tuple[str, str, re.Pattern]]:
    """(standard name, pattern text, compiled pattern) in the order of the file."""
    aliases = []
    for standard, (patterns, _) in _entries(path).items():
        for text in patterns:
            try:
                aliases.append((standard, text, re.compile(text, re.IGNORECASE)))
            except re.error as err:
                raise ValueError(f"{path}: {standard}: pattern {text!r} is not a valid regular expression: {err}")
    return aliases


def standard_name(original: str, aliases) -> tuple[str, str]:
    """(standard name, matching pattern) of an original ROI name, or ("unmapped", "")."""
    name = original.strip()
    for standard, text, pattern in aliases:
        if pattern.fullmatch(name):
            return standard, text
    return UNMAPPED, ""


def feature_names(path) -> tuple[set[str], set[str]]:
    """(standard names that get features by default, standard names marked `features: false`)."""
    entries = _entries(path)
    return ({s for s, (_, f) in entries.items() if f}, {s for s, (_, f) in entries.items() if not f})


class FeatureRois:
    """Which ROIs get pyradiomics features (config key feature_rois).

    "standard": every ROI with a standard name in roi_names.yaml, except those marked `features: false`
    (outlines, couches, markers, PTVs); unmapped ROIs get none. "all": every ROI. A list: the ROIs whose standard
    name, label (GTVp_2, GTVp_union) or original name is listed."""

    def __init__(self, rule="standard", roi_names=None):
        self.rule = rule
        self.chosen, self.excluded = feature_names(roi_names) if rule == "standard" else (set(), set())
        self.listed = {str(n).strip().lower() for n in rule} if isinstance(rule, (list, tuple)) else set()

    def why_not(self, entry: dict) -> str:
        """ "" when the ROI of a masks.json entry gets features, else the reason in words."""
        roi, original = entry.get("roi") or UNMAPPED, entry.get("roi_original", "")
        if self.rule == "all":
            return ""
        if self.listed:
            names = {str(entry.get(k, "")).strip().lower() for k in ("roi", "label", "roi_original")}
            if names & self.listed:
                return ""
            return f"ROI '{original}' is not in the config's feature_rois list"
        if roi == UNMAPPED:
            return (
                f"ROI '{original}' has no standard name in roi_names.yaml (unmapped): no features with "
                "feature_rois: standard (add its spelling to roi_names.yaml, or set feature_rois: all)"
            )
        if roi in self.excluded:
            return (
                f"ROI '{original}' is {roi}, marked `features: false` in roi_names.yaml (outlines, equipment "
                "and planning margins get a mask and volume, no features; feature_rois: all extracts it)"
            )
        if roi not in self.chosen:  # a standard name from an older roi_names.yaml than the masks
            return f"ROI '{original}' ({roi}) is not a standard name of the current roi_names.yaml"
        return ""
