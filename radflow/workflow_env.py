"""What the Snakemake workflow sets up for its jobs."""

from __future__ import annotations

import os


def export_checkout(basedir) -> str:
    """Put the workflow's checkout first on PYTHONPATH, so that every job's script imports radflow from it (also in
    the conda environment of `--sdm conda`, where radflow is not installed). Returns the new PYTHONPATH."""
    parts = [str(basedir)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(basedir)]
    os.environ["PYTHONPATH"] = os.pathsep.join(parts)
    return os.environ["PYTHONPATH"]
