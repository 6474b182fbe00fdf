"""The checked config as typed, frozen settings, one object per stage, built once and handed on whole.

`Settings.from_config(config)` fills the schema's defaults (radflow.config.check.fill_defaults: the schema is the one
place a default is written) and builds every stage's object. The Snakefile builds it once (SETTINGS) and each rule
passes its stage's object as one param: a change of one of its values reruns that stage's jobs and no others. The
scripts hand it to the stage's function; the command line builds the same objects from its options.

Values are as the checked config has them (radflow.config.check.normalise): lists become tuples; mappings stay
mappings (model.dose, a harmonisation batch file) and are not to be changed by their readers.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass


def _tuple(value):
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class IndexSettings:
    """The index (radflow.index.build_index): what to read and which series to keep."""

    dicom_root: str | None
    modalities: tuple[str, ...]
    series_selection: str
    manifest: str | None
    pet_fallback: str | None
    threads: int


@dataclass(frozen=True)
class SeriesSettings:
    """The series job (convert and masks, radflow.run.series_job.run_series) and the dose job."""

    pet_fallback: str | None
    roi_instances: str
    contour_overlap: str


@dataclass(frozen=True)
class FeatureSettings:
    """A features job (radflow.run.series_job.run_features): which ROIs, and the voxel budget."""

    feature_rois: str | tuple[str, ...]
    max_roi_voxels: int | None


@dataclass(frozen=True)
class ModelSettings:
    """The modelling table (radflow.cohort.model) and what reads its choices (delta table, overlays, trust)."""

    modality: str
    roi: str
    time_point: str
    studies: str | None
    dose: dict | None
    roi_instances: str


@dataclass(frozen=True)
class SurvivalSettings:
    """The survival starter (radflow.cohort.survival.survival_starter)."""

    endpoint: str
    min_events: int
    penalizer: float
    l1_ratio: float
    folds: int
    min_icc: float | None
    harmonised: bool


@dataclass(frozen=True)
class RobustnessSettings:
    """Perturbation chains of image and mask (radflow.trust.robustness); seeded per series, ROI and chain."""

    perturbations: tuple[dict, ...]
    seed: int
    volume_tolerance: float


@dataclass(frozen=True)
class ControlSettings:
    """Negative-control images (radflow.trust.negative_controls); seeded per series, ROI and control."""

    controls: tuple[str, ...]
    seed: int


@dataclass(frozen=True)
class PerturbSettings:
    """A perturb job (radflow.trust.perturbed.perturbed_series): the model's ROI under robustness' chains and the
    negative controls (either may be off: None)."""

    roi: str
    roi_instances: str
    robustness: RobustnessSettings | None
    controls: ControlSettings | None


@dataclass(frozen=True)
class HarmonisationSettings:
    """ComBat over the modelling table (radflow.trust.harmonise)."""

    batch: str | dict
    covariates: tuple[str, ...]
    min_batch: int
    leave_classes: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    index: IndexSettings
    series: SeriesSettings
    features: FeatureSettings
    model: ModelSettings
    survival: SurvivalSettings
    perturb: PerturbSettings
    harmonisation: HarmonisationSettings | None

    @classmethod
    def from_config(cls, config: dict) -> Settings:
        """Every stage's settings from a config (a copy is filled with the schema's defaults first: a key the config
        leaves out takes the schema's value, never one written here)."""
        from radflow.config.check import SCHEMA_PATH, fill_defaults, load_schema, normalise

        c = normalise(fill_defaults(copy.deepcopy(config), load_schema(SCHEMA_PATH)))
        model, survival = c["model"], c["survival"]
        robustness, controls, harmonisation = c["robustness"], c["negative_controls"], c["harmonisation"]
        return cls(
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
                controls=ControlSettings(controls=tuple(controls["controls"]), seed=controls["seed"])
                if controls
                else None,
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
    return Settings.from_config({})
