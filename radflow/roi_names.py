"""ROI names: original names from many sites mapped to TG-263-style standard names."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

UNMAPPED = "unmapped"


def load_aliases(path) -> list[tuple[str, str, re.Pattern]]:
    """(standard name, pattern text, compiled pattern) in the order of the file."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of standard name -> list of patterns")
    aliases = []
    for standard, patterns in data.items():
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list):
            raise ValueError(f"{path}: {standard}: expected a list of patterns, got {type(patterns).__name__}")
        for text in patterns:
            try:
                aliases.append((str(standard), str(text), re.compile(str(text), re.IGNORECASE)))
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
