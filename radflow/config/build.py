"""The settings of every stage (radflow.settings) from a config: build_settings, once per run (the Snakefile's
SETTINGS); defaults(), the schema's, for the command line and a library user."""

from __future__ import annotations

import copy
import functools

from radflow.config.check import SCHEMA_PATH, fill_defaults, load_schema, normalise
from radflow.settings import (
    ControlSettings,
    FeatureSettings,
    HarmonisationSettings,
    IndexSettings,
    ModelSettings,
    PerturbSettings,
    RobustnessSettings,
    SeriesSettings,
    Settings,
    SurvivalSettings,
)


def _tuple(value):
    return tuple(value) if isinstance(value, list) else value


def build_settings(config: dict) -> Settings:
    """Every stage's settings from a config (a copy is filled with the schema's defaults first: a key the config
    leaves out takes the schema's value, never one written here)."""
    c = normalise(fill_defaults(copy.deepcopy(config), load_schema(SCHEMA_PATH)))
    model, survival = c["model"], c["survival"]
    robustness, controls, harmonisation = c["robustness"], c["negative_controls"], c["harmonisation"]
    return Settings(
        index=IndexSettings(
            dicom_root=c.get("dicom_root"),
            modalities=_tuple(c["modalities"]),
            series_selection=c["series_selection"],
            manifest=c["manifest"],
            pet_fallback=c["pet_fallback"],
            threads=c["index_threads"],
        ),
        series=SeriesSettings(
            pet_fallback=c["pet_fallback"], roi_instances=c["roi_instances"], contour_overlap=c["contour_overlap"]
        ),
        features=FeatureSettings(feature_rois=_tuple(c["feature_rois"]), max_roi_voxels=c["max_roi_voxels"]),
        model=ModelSettings(
            modality=model["modality"],
            roi=model["roi"],
            time_point=model["time_point"],
            studies=model["studies"],
            dose=model["dose"],
            roi_instances=c["roi_instances"],
        ),
        survival=SurvivalSettings(**{k: survival[k] for k in SurvivalSettings.__dataclass_fields__}),
        perturb=PerturbSettings(
            roi=model["roi"],
            roi_instances=c["roi_instances"],
            robustness=RobustnessSettings(
                perturbations=tuple(robustness["perturbations"]),
                seed=robustness["seed"],
                volume_tolerance=robustness["volume_tolerance"],
            )
            if robustness
            else None,
            controls=ControlSettings(controls=tuple(controls["controls"]), seed=controls["seed"]) if controls else None,
        ),
        harmonisation=HarmonisationSettings(
            batch=harmonisation["batch"],
            covariates=tuple(harmonisation["covariates"]),
            min_batch=harmonisation["min_batch"],
            leave_classes=tuple(harmonisation["leave_classes"]),
        )
        if harmonisation
        else None,
    )


@functools.cache
def defaults() -> Settings:
    """Every stage's settings as the schema's defaults make them: for a caller without a config (the command line,
    a library user, the tests), who changes what it needs with dataclasses.replace."""
    return build_settings({})
