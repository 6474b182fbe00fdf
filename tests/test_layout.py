"""The package's layout (ARCHITECTURE.md, "What each package owns and may import"): every import of radflow by
radflow, at the top of a module or inside a function, goes to its own layer or a layer below, so that the tree reads
as the pipeline and no stage reaches up into a later one."""

from __future__ import annotations

import ast
import re

from conftest import REPO

LAYERS = {
    "ids": 0,
    "modalities": 0,
    "roi_names": 0,
    "tables": 0,
    "settings": 0,
    "failures": 0,
    "records": 0,
    "dicom": 1,
    "index": 2,
    "features": 2,
    "cohort": 3,
    "qc": 4,
    "trust": 4,
    "paper": 4,
    "download": 5,
    "config": 6,
    "run": 7,
    "cli": 8,
    "demo": 8,
}
PACKAGE = REPO / "radflow"


def _unit(dotted: str) -> str | None:
    """The layer unit of a dotted radflow name: its package (radflow.dicom.masks -> dicom) or top-level module."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "radflow" and parts[1] != "__version__" else None


def _imports(path) -> list[tuple[int, str]]:
    """(line, imported radflow name) of every import statement in a file, wherever it stands."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "radflow":
            names = [f"radflow.{a.name}" for a in node.names] if node.module == "radflow" else [node.module]
            out += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "radflow"]
    return out


def test_every_package_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    units -= {"__init__", "__pycache__"}
    assert units == set(LAYERS), f"give {sorted(units - set(LAYERS))} a layer here and in ARCHITECTURE.md"


def test_imports_go_one_way():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if me == "__init__.py" or me == "__init__":
            continue
        for line, name in _imports(path):
            other = _unit(name)
            if other is not None and other != me and LAYERS[other] > LAYERS[me]:
                upward.append(
                    f"{path.relative_to(REPO)}:{line} ({me}, layer {LAYERS[me]}) imports {name} (layer {LAYERS[other]})"
                )
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_the_architecture_table_is_this_one():
    """ARCHITECTURE.md's table of layers names the same packages in the same layers."""
    text = (REPO / "ARCHITECTURE.md").read_text()
    written = {}
    for layer, cell in re.findall(r"^\| (\d) \| ([^|]+) \|", text, re.M):
        for name in re.findall(r"`(\w+)`", cell):
            written[name] = int(layer)
    assert written == LAYERS
