"""What the Snakemake workflow sets up for its jobs, and where radflow's own files are."""

from __future__ import annotations

import os
from pathlib import Path


def radflow_checkout() -> Path | None:
    """The radflow checkout this package runs from (the folder with workflow/Snakefile and config/), or None when
    the package was installed without one."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "workflow" / "Snakefile").is_file() and (root / "pyproject.toml").is_file() else None


def shipped_config(name: str) -> Path:
    """A file of radflow's shipped config/ folder (roi_names.yaml, pyradiomics/CT.yaml ...): the command line's
    defaults, wherever it is run from."""
    root = radflow_checkout()
    if root is None or not (root / "config" / name).exists():
        raise FileNotFoundError(
            f"radflow's shipped config/{name} is not next to this radflow package ({Path(__file__).parent}); "
            "install radflow from its checkout (pip install -e) or give the file explicitly"
        )
    return root / "config" / name


def export_checkout() -> str:
    """Put the radflow checkout first on PYTHONPATH, so that every job's script imports radflow from it (also in
    the conda environment of `--sdm conda`, where radflow is not installed, and when a study runs radflow as a
    Snakemake module). Returns the new PYTHONPATH."""
    basedir = radflow_checkout()
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(basedir)]
    if basedir:
        parts.insert(0, str(basedir))
    os.environ["PYTHONPATH"] = os.pathsep.join(parts)
    return os.environ["PYTHONPATH"]
