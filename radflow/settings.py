"""The checked config as typed, frozen settings, one object per stage, handed on whole.

radflow.config.build.build_settings makes them from a config (the schema's defaults filled in: the schema is the one
place a default is written). The Snakefile builds them once (SETTINGS) and each rule passes its stage's object as one
param: a change of one of its values reruns that stage's jobs and no others. The scripts hand it to the stage's
function; the command line builds the same objects from the schema's defaults and its options.

Values are as the checked config has them (radflow.config.check.normalise): lists become tuples; mappings stay
mappings (model.dose, a harmonisation batch file) and are not to be changed by their readers.
"""

from __future__ import annotations

from dataclasses import dataclass


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
