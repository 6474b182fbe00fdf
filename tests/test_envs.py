"""The conda environment pins exactly what pyproject.toml pins."""

import tomllib

import yaml

from conftest import REPO


def test_conda_env_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "envs" / "radflow.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(p.lower() for p in pip) == sorted(p.lower() for p in project)
