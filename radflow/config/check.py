"""Check a run's configuration before any job starts: every mistake named by its key, its value and what was
expected, all at once. A run that cannot succeed should say so in seconds, not after hours of conversion."""

from __future__ import annotations

import copy
import os
import uuid
from pathlib import Path

import yaml

# The config schema: workflow/schemas/ of the checkout this package is installed from (the workflow validates against
# the same file; the command line takes its defaults from it).
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(Exception):
    """The configuration cannot run; the message lists every problem found."""


def _expected(error) -> str:
    """What the schema wanted, in words."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    v = error.validator
    if v == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        words = {
            "integer": "an integer",
            "number": "a number",
            "string": "a string",
            "array": "a list",
            "object": "a mapping",
            "boolean": "true or false",
            "null": "null",
        }
        text = " or ".join(words.get(t, t) for t in types)
    elif v == "enum":
        text = "one of " + ", ".join("null" if e is None else str(e) for e in error.validator_value)
    elif v == "minimum":
        text = f"a number >= {error.validator_value}"
    elif v == "maximum":
        text = f"a number <= {error.validator_value}"
    elif v == "minItems":
        text = f"a list of at least {error.validator_value} item(s)"
    elif v == "minLength":
        text = "a non-empty string"
    elif v == "required":
        return error.message.replace("is a required property", "is missing: it is required")
    elif v == "additionalProperties":
        return f"{error.message} (see config/README.md for the keys radflow knows)"
    else:
        text = error.message
    if schema.get("description"):
        text += f" ({schema['description']})"
    return text


def load_schema(schema_path) -> dict:
    """The config schema, with the image modalities (model.modality, modalities) from radflow.modalities and the
    image sources (source.images.from) from radflow.download.sources, the keys of a perturbation chain from
    radflow.trust.robustness.PERTURBATIONS, the kinds of batch from radflow.trust.harmonise.BATCH_SOURCES: the
    schema file leaves them open so that a new modality, source, perturbation or batch is one entry there.
    model.modality may also be RTDOSE (DOSE_MODALITY: the dose features of the dose grids)."""
    from radflow.modalities import DEFAULT_MODALITIES, DOSE_MODALITY, IMAGE_MODALITIES

    schema = yaml.safe_load(Path(schema_path).read_text())
    names = list(IMAGE_MODALITIES)
    schema["properties"]["model"]["properties"]["modality"]["enum"] = [*names, DOSE_MODALITY]
    schema["properties"]["modalities"]["items"]["enum"] = names
    schema["properties"]["modalities"]["default"] = list(DEFAULT_MODALITIES)
    from radflow.download.sources import IMAGE_SOURCES

    schema["properties"]["source"]["properties"]["images"]["properties"]["from"]["enum"] = list(IMAGE_SOURCES)
    from radflow.trust.robustness import perturbation_schema

    chain = schema["properties"]["robustness"]["properties"]["perturbations"]["items"]
    chain["properties"] = perturbation_schema()
    from radflow.trust.harmonise import BATCH_SOURCES

    schema["properties"]["harmonisation"]["properties"]["batch"]["oneOf"][0]["enum"] = list(BATCH_SOURCES)
    return schema


def schema_problems(config: dict, schema_path) -> list[str]:
    """Every schema violation as 'config key a.b = value: expected …'."""
    import jsonschema

    schema = load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    out = []
    for error in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]):
        key = ".".join(str(p) for p in error.absolute_path)
        if error.validator in ("required", "additionalProperties"):
            where = f"config{(' key ' + key) if key else ''}"
            out.append(f"{where}: {_expected(error)}")
        else:
            out.append(f"config key {key} = {error.instance!r}: expected {_expected(error)}")
    return out


def _writable(folder: Path) -> str:
    """'' when files can be created in folder (tried for real: root ignores permission bits), else why not."""
    probe = Path(os.path.abspath(folder))
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    test = probe / f".radflow-write-test-{uuid.uuid4().hex}"
    try:
        test.write_bytes(b"")
        test.unlink()
    except OSError as err:
        return f"cannot write in {probe}: {err.strerror}"
    return ""


def path_problems(config: dict, workdir=".") -> list[str]:
    """Folders and files the config names that do not exist or cannot be read, and an unwritable results/: one
    check per config section, in the order the config file has them."""
    demo = config.get("demo_cohort")

    def made_by_demo(path: str) -> bool:  # the demo_cohort rule writes these first
        return bool(demo) and Path(os.path.abspath(path)).is_relative_to(os.path.abspath(demo))

    out = []
    for check in (
        _dicom_root_problems,
        _clinical_problems,
        _source_problems,
        _roi_names_problems,
        _settings_folder_problems,
        _studies_problems,
        _trust_problems,
        _manifest_problems,
    ):
        out += check(config, made_by_demo)
    why = _writable(Path(workdir) / "results")
    if why:
        out.append(f"results folder {os.path.abspath(Path(workdir) / 'results')}: {why}")
    return out


def _section(config: dict, *keys) -> dict:
    """config[keys[0]][keys[1]]… when each is a mapping, else {} (the schema has said what is wrong)."""
    for key in keys:
        config = config.get(key) if isinstance(config, dict) and isinstance(config.get(key), dict) else {}
    return config


def _dicom_root_problems(config: dict, made_by_demo) -> list[str]:
    root = config.get("dicom_root")
    if not isinstance(root, str) or made_by_demo(root) or _section(config, "source", "images"):
        return []  # (the demo cohort or a download makes it)
    if not Path(root).exists():
        return [f"config key dicom_root = {root!r}: the folder does not exist"]
    if not Path(root).is_dir():
        return [f"config key dicom_root = {root!r}: not a folder"]
    return []


def _clinical_problems(config: dict, made_by_demo) -> list[str]:
    """Each clinical file exists and reads: a mapped table's columns are in it, a GDC/TCGA file's format is known."""
    from radflow.cohort.clinical import ClinicalError, detect_format, read_table, table_spec

    out = []
    for k, entry in enumerate(config.get("clinical") or []):
        path = entry.get("path") if isinstance(entry, dict) else entry
        if not isinstance(path, str) or made_by_demo(path):
            continue
        if not Path(path).is_file():
            out.append(f"config key clinical[{k}] = {path!r}: the file does not exist")
            continue
        try:
            if isinstance(entry, dict):
                read_table(table_spec(entry))  # the mapping's columns are in the file, the events readable
            else:
                detect_format(path)
        except ClinicalError as err:
            out.append(f"config key clinical[{k}]: {err}")
    return out


def _source_problems(config: dict, made_by_demo) -> list[str]:
    out = []
    clinical = _section(config, "source", "clinical")
    if clinical.get("from") == "gdc" and not clinical.get("project"):
        out.append("config key source.clinical.from = 'gdc' needs source.clinical.project (e.g. TCGA-HNSC)")
    if clinical.get("from") == "table" and not (clinical.get("url") and clinical.get("columns")):
        out.append(
            "config key source.clinical.from = 'table' needs source.clinical.url and source.clinical.columns "
            "(the column mapping, as under clinical)"
        )
    images = _section(config, "source", "images")
    return out + (_image_source_problems(images) if images else [])


def _roi_names_problems(config: dict, made_by_demo) -> list[str]:
    roi_names = config.get("roi_names")
    if not isinstance(roi_names, str):
        return []
    if not Path(roi_names).is_file():
        return [f"config key roi_names = {roi_names!r}: the file does not exist"]
    return _model_roi_problems(config, roi_names)


def _settings_folder_problems(config: dict, made_by_demo) -> list[str]:
    """The pyradiomics settings folder holds a file for every modality the run extracts."""
    settings = config.get("pyradiomics_settings")
    if not isinstance(settings, str):
        return []
    if not Path(settings).is_dir():
        return [f"config key pyradiomics_settings = {settings!r}: the folder does not exist"]
    out = []
    for modality in settings_modalities(config):
        if not (Path(settings) / f"{modality}.yaml").is_file():
            why = (
                "the dose features of each RTDOSE use it; radflow ships config/pyradiomics/RTDOSE.yaml"
                if modality == "RTDOSE"
                else f"modalities lists {modality}"
            )
            out.append(f"config key pyradiomics_settings = {settings!r}: no {modality}.yaml in it ({why})")
    return out


def _studies_problems(config: dict, made_by_demo) -> list[str]:
    """model.time_point listed: the studies file exists and has its columns."""
    model = _section(config, "model")
    if model.get("time_point") != "listed":
        return []
    studies = model.get("studies")
    if not isinstance(studies, str):
        return [
            "config key model.time_point = 'listed' needs model.studies: a CSV or TSV file with the "
            "columns patient_id and study_uid (series_uid optional)"
        ]
    if not Path(studies).is_file():
        return [f"config key model.studies = {studies!r}: the file does not exist"]
    from radflow.cohort.selection import read_listed

    try:
        read_listed(studies)
    except Exception as err:  # unreadable or without the columns
        return [f"config key model.studies: {err}"]
    return []


def _manifest_problems(config: dict, made_by_demo) -> list[str]:
    manifest = config.get("manifest")
    if isinstance(manifest, str) and not Path(manifest).is_file():
        return [f"config key manifest = {manifest!r}: the file does not exist"]
    return []


def _image_source_problems(images: dict) -> list[str]:
    """What source.images' source (radflow.download.sources) needs: the key that names what to fetch, a file that
    exists where that key names one."""
    from radflow.download.sources import IMAGE_SOURCES

    source = IMAGE_SOURCES.get(images.get("from"))
    if source is None:
        return []  # (the schema's enum said so)
    value = images.get(source.needs)
    if not isinstance(value, str) or not value:
        what = f": {source.metavar}" if source.needs_file else ""
        return [f"config key source.images.from = {source.name!r} needs source.images.{source.needs}{what}"]
    if source.needs_file and not Path(value).is_file():
        return [f"config key source.images.{source.needs} = {value!r}: the file does not exist"]
    return []


def _model_roi_problems(config: dict, roi_names: str) -> list[str]:
    """model.roi must be a standard name of roi_names.yaml (or its label GTVp_2 / GTVp_union): the modelling table
    holds standard names, and an original spelling would leave it empty hours later."""
    import re

    from radflow.roi_names import feature_names

    try:
        standard = sorted(set.union(*feature_names(roi_names)))
    except (ValueError, OSError) as err:
        return [f"config key roi_names = {roi_names!r}: {err}"]
    except Exception as err:  # not YAML
        return [f"config key roi_names = {roi_names!r}: cannot be read as YAML: {' '.join(str(err).split())}"]
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    out = _dose_problems(model.get("dose"), standard, roi_names)
    roi = model.get("roi")
    if not isinstance(roi, str) or roi in standard or re.sub(r"_(\d+|union)$", "", roi) in standard:
        return out
    close = [s for s in standard if s.lower().startswith(roi.lower()[:3])] or standard[:8]
    return out + [
        f"config key model.roi = {roi!r}: not a standard name of {roi_names} (the modelling table holds standard "
        f"names; an original spelling is mapped to one there): expected e.g. {', '.join(close)}"
    ]


def _dose_problems(dose, standard: list[str], roi_names: str) -> list[str]:
    """model.dose (after normalise: {ROI: [metric, ...]}): standard ROI names, and metrics the DVH table has."""
    from radflow.features.dvh import METRIC_COLUMNS

    if not isinstance(dose, dict):
        return []
    out = []
    for roi, metrics in dose.items():
        if roi not in standard:
            out.append(
                f"config key model.dose.{roi}: not a standard name of {roi_names} (the DVH table holds standard names)"
            )
        unknown = [m for m in metrics if m not in METRIC_COLUMNS]
        if unknown:
            out.append(
                f"config key model.dose.{roi} = {metrics}: {', '.join(map(repr, unknown))} not a DVH metric; "
                f"expected some of {', '.join(METRIC_COLUMNS)}"
            )
    return out


def _trust_problems(config: dict, made_by_demo=None) -> list[str]:
    """robustness, negative_controls, harmonisation and the survival options that use them: what each needs. (Without
    clinical data the negative controls and the harmonisation have no modelling table: the workflow skips them and
    says so when it starts.)"""
    out = []
    survival, harmonisation = _section(config, "survival"), _section(config, "harmonisation")
    if survival.get("min_icc") is not None and not config.get("robustness"):
        out.append("config key survival.min_icc needs robustness (the ICC of each feature comes from it)")
    if survival.get("harmonised") and not harmonisation:
        out.append("config key survival.harmonised = true needs harmonisation (the harmonised table comes from it)")
    return out + _covariate_problems(config, harmonisation) + _batch_file_problems(harmonisation.get("batch"))


def _covariate_problems(config: dict, harmonisation: dict) -> list[str]:
    """harmonisation.covariates are columns of the modelling table: the standard clinical ones or mapped ones."""
    from radflow.tables import CLINICAL_KEEP

    entries = [e for e in config.get("clinical") or [] if isinstance(e, dict)] + [
        _section(config, "source", "clinical")
    ]
    known = set(CLINICAL_KEEP) | {name for entry in entries for name in (entry.get("covariates") or {})}
    return [
        f"config key harmonisation.covariates: {name!r} is not a column of the modelling table (expected "
        f"one of {', '.join(CLINICAL_KEEP)}, or a covariate mapped under clinical)"
        for name in harmonisation.get("covariates") or []
        if name not in known
    ]


def _batch_file_problems(batch) -> list[str]:
    """A harmonisation batch file exists and has patient_id and its column."""
    if not isinstance(batch, dict) or not isinstance(batch.get("path"), str):
        return []
    if not Path(batch["path"]).is_file():
        return [f"config key harmonisation.batch.path = {batch['path']!r}: the file does not exist"]
    from radflow.trust.harmonise import read_batch_file

    try:
        read_batch_file(batch["path"], batch.get("column", ""))
    except ValueError as err:
        return [f"config key harmonisation.batch: {err}"]
    return []


def settings_modalities(config: dict) -> list[str]:
    """The modalities with a pyradiomics settings file: the config's image modalities, and RTDOSE (dose features)."""
    return [*(config.get("modalities") or []), "RTDOSE"]


def settings_problems(config: dict) -> list[str]:
    """Each pyradiomics settings file of the config's modalities, loaded by pyradiomics itself: its schema check
    names a misspelled setting, a value of the wrong type, an unknown image type or feature class."""
    import logging

    from radflow.features import make_extractor

    folder = config.get("pyradiomics_settings")
    if not isinstance(folder, str) or not Path(folder).is_dir():
        return []  # path_problems says so
    logging.getLogger("pykwalify").setLevel(logging.CRITICAL)
    out = []
    for modality in settings_modalities(config):
        path = Path(folder) / f"{modality}.yaml"
        if not path.is_file():
            continue
        try:
            make_extractor(path)
        except Exception as err:  # yaml, pykwalify and pyradiomics each raise their own kind
            lines = [" ".join(line.split()) for line in str(getattr(err, "msg", "") or err).splitlines()]
            words = "; ".join(line.lstrip("- ") for line in lines if line and line != "Schema validation failed:")
            out.append(f"config key pyradiomics_settings: {path} is refused by pyradiomics: {words}")
    return out


def fill_defaults(config: dict, schema: dict, filled: list | None = None, _prefix: str = "") -> dict:
    """Set every absent key that has a default in the schema, in place, nested mappings included (the schema is the
    one place the defaults live). The keys set, with their values, are appended to `filled` ("survival.folds")."""
    for key, sub in (schema.get("properties") or {}).items():
        nested = sub.get("properties")
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
            if filled is not None and not (nested and isinstance(config[key], dict)):
                filled.append(f"{_prefix}{key}")
        if isinstance(config.get(key), dict) and nested:
            fill_defaults(config[key], sub, filled, f"{_prefix}{key}.")
    return config


def _value_at(config: dict, key: str):
    for part in key.split("."):
        config = config[part]
    return config


def defaults_note(filled: list[str], config: dict | None = None) -> str:
    """What a run's start-up says about the keys its config left out: each took the schema's default."""
    import json

    values = [f"{k} = {json.dumps(_value_at(config, k), default=str)}" if config is not None else k for k in filled]
    return (
        f"radflow: {len(filled)} config key(s) not set in the config file took their default (config/README.md): "
        + ", ".join(values)
    )


def normalise(config: dict) -> dict:
    """One form of each value that has several in the config file, made once here and used everywhere:
    feature_rois is "standard", "all" or a tuple of names (a list, as YAML gives it, cannot key a cache)."""
    if isinstance(config.get("feature_rois"), list):
        config["feature_rois"] = tuple(str(name).strip() for name in config["feature_rois"])
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    if isinstance(model.get("dose"), list):  # [{GTVp: [Dmean]}, {Parotid_L: [Dmean]}]: one mapping
        merged: dict = {}
        for item in model["dose"]:
            for roi, metrics in (item or {}).items():
                merged.setdefault(str(roi), []).extend(metrics)
        model["dose"] = merged
    if isinstance(model.get("dose"), dict):
        model["dose"] = {str(roi): [str(m).strip() for m in metrics] for roi, metrics in model["dose"].items()}
    return config


def check_config(config: dict, schema_path, workdir=".", settings: bool = True) -> list[str]:
    """Raise ConfigError listing every problem: schema problems first, then missing or unusable paths, then
    pyradiomics settings files that pyradiomics refuses (settings=False skips loading them). A valid config gets the
    schema's defaults for the keys it does not set; returns those keys ("survival.min_events", ...)."""
    filled: list[str] = []
    problems = schema_problems(config, schema_path)
    if not problems:
        fill_defaults(config, load_schema(schema_path), filled)
        normalise(config)
    problems += path_problems(config, workdir)
    if settings:
        problems += settings_problems(config)
    if problems:
        raise ConfigError(
            "radflow cannot start; fix the configuration first:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return filled
