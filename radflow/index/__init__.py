"""Index a DICOM tree: one row per file, per series, per RTSTRUCT ROI, per RTSTRUCT-to-image link, and
a problems table that says what was left out and why.

Only headers are read, except the pixel data of series whose slice positions repeat (phases are told from true
duplicates by it). The index is the one place that decides which series are images to convert; everything
downstream trusts it (through the per-series work orders of radflow.index.orders).

One module per concern:
- columns: the tables' columns and the DICOM constants;
- headers: the crawl and one row per file (radflow's fast header reader, else pydicom), ROI rows, pixel digests;
- cache: files unchanged since the last run are not read again;
- series: sub-series (orientation, matrix size, acquisition, phase) and the series table;
- checks: whether a (sub-)series is a volume radflow converts (slice geometry, scouts, the PET gate);
- links: which structure sets, SEGs and dose grids go with which image series; series selection;
- build: build_index runs the steps and writes the tables (index_with: with the index settings); load_index reads
  them back;
- orders: the per-series work orders written from the tables, which the series, features and dose jobs read.
"""

from radflow.index.build import build_index, index_with, load_index, nothing_to_convert, read_manifest, series_files
from radflow.index.checks import check_image_series, check_pet_series
from radflow.index.columns import (
    INDEX_FORMAT,
    INSTANCE_COLUMNS,
    LINK_COLUMNS,
    PROBLEM_COLUMNS,
    ROI_COLUMNS,
    SERIES_COLUMNS,
)
from radflow.index.headers import crawl, instance_row, pixel_digest, read_instance
from radflow.index.links import link_table, select_series
from radflow.index.series import Slices, series_table, split_phases, split_series

__all__ = [
    "INDEX_FORMAT",
    "INSTANCE_COLUMNS",
    "LINK_COLUMNS",
    "PROBLEM_COLUMNS",
    "ROI_COLUMNS",
    "SERIES_COLUMNS",
    "Slices",
    "build_index",
    "index_with",
    "check_image_series",
    "check_pet_series",
    "crawl",
    "instance_row",
    "link_table",
    "load_index",
    "nothing_to_convert",
    "pixel_digest",
    "read_instance",
    "read_manifest",
    "select_series",
    "series_files",
    "series_table",
    "split_phases",
    "split_series",
]
