"""A provenance record per run: what produced the tables, so that a reviewer can rerun them and compare."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from . import __version__

PACKAGES = [
    "numpy",
    "SimpleITK",
    "pyradiomics-bhklab",
    "pydicom",
    "pandas",
    "pyarrow",
    "PyWavelets",
    "snakemake",
    "lifelines",
    "python-gdcm",
    "pylibjpeg-openjpeg",
]


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fp:
        for block in iter(lambda: fp.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_commit(folder) -> dict:
    """The commit of the radflow checkout that ran, and whether it had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        return dict(commit=commit, uncommitted_changes=dirty)
    except (OSError, subprocess.CalledProcessError):
        return dict(commit="", uncommitted_changes=None)


def provenance(config: dict, inputs: dict[str, str], workflow_dir, out_path) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    record = dict(
        radflow_version=__version__,
        python=platform.python_version(),
        platform=platform.platform(),
        packages=versions,
        git=git_commit(workflow_dir),
        config=config,
        sha256={name: sha256(path) for name, path in sorted(inputs.items())},
    )
    Path(out_path).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    return record
