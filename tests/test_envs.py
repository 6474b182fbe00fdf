"""The conda environment pins exactly what pyproject.toml pins."""

import tomllib

import yaml
from conftest import REPO


def test_conda_env_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "workflow" / "envs" / "radflow.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(p.lower() for p in pip) == sorted(p.lower() for p in project)


def test_every_rule_that_runs_code_names_the_conda_env():
    """`--sdm conda` users get envs/radflow.yaml for every rule with a script, and the path resolves."""
    rules = sorted((REPO / "workflow" / "rules").glob("*.smk"))
    scripts = conda = 0
    for smk in rules:
        text = smk.read_text()
        scripts += text.count("    script:\n")
        conda += text.count("    conda:\n")
        assert text.count("    script:\n") == text.count("conda:\n"), smk.name
    assert scripts >= 11 and conda == scripts
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    rel = common.split('CONDA_ENV = "')[1].split('"')[0]
    assert (REPO / "workflow" / "rules" / rel).resolve() == REPO / "workflow" / "envs" / "radflow.yaml"
