"""Features per image series x ROI: pyradiomics extraction (extract), with radflow's shortcuts that keep its
numbers (mesh_shape; preparation; size_zones; the crop before resampling), the IBSI mode (ibsi_mode, ibsi: the phantom
conformance), the units of every feature (units), which ROIs a job extracts and what that costs (budget), the
merged tables (table), and dose-volume histograms per ROI from an RTDOSE and its contours (dvh).

Imports: radflow.dicom (masks), the shared vocabulary (radflow.tables, roi_names, records, failures)."""

from radflow.features.budget import job_resources, planned_resources, roi_limits, skip_reason
from radflow.features.extract import (
    FeatureValueError,
    crop_margin,
    extract_roi,
    extract_series,
    feature_value,
    feature_values,
    image_hash,
    job_peak_mb,
    make_extractor,
    resample_cropped,
)
from radflow.features.table import long_table, merge_features
from radflow.features.units import feature_unit, intensity_unit
from radflow.tables import COST_COLUMNS, ID_COLUMNS, RUNTIME_COLUMNS, feature_class, pyradiomics_columns

__all__ = [
    "COST_COLUMNS",
    "ID_COLUMNS",
    "RUNTIME_COLUMNS",
    "FeatureValueError",
    "crop_margin",
    "extract_roi",
    "extract_series",
    "feature_class",
    "feature_unit",
    "feature_value",
    "feature_values",
    "image_hash",
    "intensity_unit",
    "job_peak_mb",
    "job_resources",
    "long_table",
    "make_extractor",
    "merge_features",
    "planned_resources",
    "pyradiomics_columns",
    "resample_cropped",
    "roi_limits",
    "skip_reason",
]
