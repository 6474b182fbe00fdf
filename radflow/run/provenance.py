"""What produced a run's results, kept with them: a copy of every settings file behind the numbers, the config as
run (defaults filled in), the full SHA-256 of every table and picture, and every distribution the run imported, so
that a reviewer can check a table against the settings that made it (`radflow verify results/`)."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import yaml

from radflow import __version__
from radflow.tables import MANIFEST_COLUMNS

# results/provenance/: what the provenance rule writes (paths relative to the results folder)
FOLDER = "provenance"
RECORD = f"{FOLDER}/provenance.json"
MANIFEST = f"{FOLDER}/manifest.tsv"
CONFIG_COPY = f"{FOLDER}/config.yaml"
SETTINGS_COPIES = f"{FOLDER}/settings"

# what a manifest row is, by the file's ending
KINDS = {".csv": "table", ".tsv": "table", ".parquet": "table", ".json": "record", ".png": "picture"}
KINDS.update({".yaml": "settings", ".nii.gz": "image"})


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fp:
        for block in iter(lambda: fp.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_commit(folder) -> dict:
    """The commit of the radflow checkout that ran, and whether it had uncommitted changes."""
    if folder is None:
        return dict(commit="", uncommitted_changes=None)
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


def radflow_imports() -> set[str]:
    """The top-level names of every module radflow's code imports, at module level or inside a function (read
    from the source: pyradiomics, lifelines ... are imported where they are used)."""
    import ast

    import radflow

    names = set()
    for path in Path(radflow.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return names - {"radflow", "__future__"}


def imported_distributions() -> dict[str, str]:
    """{distribution: version} of every installed distribution the run's code imports: each module radflow's code
    imports (radflow_imports) is imported here with what it imports in turn, then every module loaded is mapped to
    the distribution that provides it (snakemake, which runs the jobs, is among them)."""
    for name in sorted(radflow_imports()):
        try:
            importlib.import_module(name)
        except Exception:  # an optional extra (idc-index-data) that is not installed: no job of this run imports it
            continue
    providers = metadata.packages_distributions()
    names = {d for m in list(sys.modules) for d in providers.get(m.split(".")[0], [])}
    out = {}
    for name in sorted(names, key=str.lower):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _kind(path: Path) -> str:
    name = path.name.lower()
    return next((kind for ext, kind in KINDS.items() if name.endswith(ext)), "other")


def files_of(paths, results: Path) -> list[Path]:
    """The files of the given outputs (folders walked), each once, sorted; only those under the results folder."""
    out = set()
    for p in map(Path, paths):
        if p.is_dir():  # (not Snakemake's marker of a folder output, whose time it sets)
            out.update(f for f in p.rglob("*") if f.is_file() and f.name != ".snakemake_timestamp")
        elif p.is_file():
            out.add(p)
    results = results.resolve()
    return sorted(f for f in out if f.resolve().is_relative_to(results))


def manifest(files, results: Path) -> list[dict]:
    """One row per file: its path relative to the results folder, kind, size and full SHA-256. A file written under
    its temporary name (radflow.failures.atomic_outputs) is listed under the name it is renamed to."""
    from radflow.failures import PARTIAL

    results = Path(results).resolve()
    rows = []
    for f in files:
        rel = f.resolve().relative_to(results)
        rel = rel.with_name(rel.name.removeprefix(PARTIAL))
        rows.append(dict(path=rel.as_posix(), kind=_kind(rel), bytes=f.stat().st_size, sha256=sha256(f)))
    return rows


def write_manifest(rows: list[dict], path) -> None:
    lines = ["\t".join(MANIFEST_COLUMNS)] + ["\t".join(str(r[c]) for c in MANIFEST_COLUMNS) for r in rows]
    Path(path).write_text("\n".join(lines) + "\n")


def read_manifest(path) -> list[dict]:
    lines = Path(path).read_text().splitlines()
    header = lines[0].split("\t")
    if header != MANIFEST_COLUMNS:
        raise ValueError(f"{path}: not a radflow manifest (columns {header}, expected {MANIFEST_COLUMNS})")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line]


def provenance(
    config: dict,
    outputs: list[str],
    settings: dict[str, str],
    inputs: dict[str, str],
    results,
    out: dict[str, str],
    defaulted: list[str] = (),
) -> dict:
    """Write results/provenance/: `settings` {name: file} copied (pyradiomics/CT.yaml, roi_names.yaml ...) to
    out["settings"][name], the config as run to out["config"], the manifest of every output file and copy to
    out["manifest"], and the record (versions, commit, machine, config, the copies' and inputs' SHA-256, the
    manifest's SHA-256) to out["record"]. `inputs` {name: file}: files read but not copied (the clinical files)."""
    from radflow.run.workflow_env import radflow_checkout

    results = Path(results)
    copied = {}
    for name, src in sorted(settings.items()):
        dest = Path(out["settings"][name])
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        copied[name] = dict(source=str(src), copy=f"{SETTINGS_COPIES}/{name}", sha256=sha256(dest))
    Path(out["config"]).write_text(
        "# The configuration this run used: the config file's values with every default filled in.\n"
        + yaml.safe_dump(json.loads(json.dumps(config, default=str)), sort_keys=False)
    )
    files = files_of(list(outputs) + [out["config"]] + list(out["settings"].values()), results)
    rows = manifest(files, results)
    write_manifest(rows, out["manifest"])
    checkout = radflow_checkout()
    record = dict(
        radflow_version=__version__,
        python=platform.python_version(),
        platform=platform.platform(),
        machine=dict(processor=_cpu_model(), cpus=os.cpu_count()),
        packages=imported_distributions(),
        git=git_commit(checkout),
        config=config,
        config_defaulted=list(defaulted),
        settings=copied,
        inputs={name: dict(path=str(p), sha256=sha256(p)) for name, p in sorted(inputs.items())},
        manifest=dict(path=MANIFEST, files=len(rows), sha256=sha256(out["manifest"])),
    )
    Path(out["record"]).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    return record


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def remove_stale(paths) -> list[str]:
    """Remove the outputs of analyses a config switched off (files or folders), saying which."""
    removed = []
    for p in map(Path, paths):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
        else:
            continue
        removed.append(str(p))
        print(f"removed {p}: its analysis is switched off in this config (an earlier run wrote it)")
    return removed


def verify(results) -> dict:
    """Re-hash a results folder against its manifest: {"changed": [(path, was, now)], "missing": [path],
    "unlisted": [path], "settings": [problems], "checked": n}. `unlisted`: tables and pictures in the folder that this
    run's manifest does not list (left from another run, or added by hand); `settings`: a features table whose
    settings hash is not the hash of the settings copy kept with it."""
    results = Path(results)
    record_path, manifest_path = results / RECORD, results / MANIFEST
    for p in (record_path, manifest_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} is missing: {results} is not the results folder of a radflow run")
    record = json.loads(record_path.read_text())
    report = dict(changed=[], missing=[], unlisted=[], settings=[], checked=0)
    now = sha256(manifest_path)
    if now != record["manifest"]["sha256"]:
        report["changed"].append((MANIFEST, record["manifest"]["sha256"], now))
    rows = read_manifest(manifest_path)
    for row in rows:
        path = results / row["path"]
        report["checked"] += 1
        if not path.is_file():
            report["missing"].append(row["path"])
            continue
        digest = sha256(path)
        if digest != row["sha256"]:
            report["changed"].append((row["path"], row["sha256"], digest))
    listed = {r["path"] for r in rows} | {RECORD, MANIFEST}
    for f in sorted(results.rglob("*")):
        rel = f.relative_to(results).as_posix()
        if f.is_file() and rel not in listed and _kind(f) in ("table", "picture") and not _intermediate(rel):
            report["unlisted"].append(rel)
    report["settings"] = _settings_agree(results, record)
    return report


# per-series files the merged tables are made of, the work orders and the index's cache: not results a reader is given
INTERMEDIATE = ("images/", "masks/", "features/", "perturbed/", "orders/", "index/cache")


def _intermediate(rel: str) -> bool:
    return rel.startswith(INTERMEDIATE)


def _settings_agree(results: Path, record: dict) -> list[str]:
    """The features table names its pyradiomics settings by file name and full SHA-256: each must be the copy's."""
    table = results / "features.parquet"
    if not table.is_file():
        return []
    import pandas as pd

    used = pd.read_parquet(table, columns=["settings", "settings_sha256"]).drop_duplicates()
    kept = {  # the copies as they are now (the record says what they were; the manifest check names a change)
        Path(name).name: sha256(results / c["copy"]) if (results / c["copy"]).is_file() else "(missing)"
        for name, c in record.get("settings", {}).items()
        if name.startswith("pyradiomics/")
    }
    out = []
    for row in used.itertuples():
        if not row.settings:
            continue
        if row.settings not in kept:
            out.append(
                f"features.parquet was made with settings {row.settings} ({row.settings_sha256}), of which "
                "results/provenance/ keeps no copy"
            )
        elif kept[row.settings] != row.settings_sha256:
            out.append(
                f"features.parquet was made with {row.settings} of SHA-256 {row.settings_sha256}; the copy "
                f"kept in {SETTINGS_COPIES}/pyradiomics/{row.settings} has {kept[row.settings]}"
            )
    return out
