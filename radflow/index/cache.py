"""The index's cache: files whose path, size and modification time are unchanged are not read again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from radflow.index.columns import CACHE_COLUMNS, ROI_COLUMNS
from radflow.index.headers import _read_many


def _unchanged(files, cache_path: Path) -> bool:
    """True when the cache holds exactly these (path, size, mtime) triples."""
    if not cache_path.exists():
        return False
    cached = pd.read_parquet(cache_path, columns=["path", "size", "mtime"])
    if len(cached) != len(files):
        return False
    # the cache is written in crawl order, so equal trees give equal arrays
    paths, sizes, mtimes = zip(*files) if files else ((), (), ())
    return bool(
        np.array_equal(cached["path"].to_numpy(), np.asarray(paths, dtype=object))
        and np.array_equal(cached["size"].to_numpy(np.int64), np.asarray(sizes, np.int64))
        and np.array_equal(cached["mtime"].to_numpy(np.int64), np.asarray(mtimes, np.int64))
    )


def _read_with_cache(files, cache_path: Path, threads: int, progress: bool):
    """Instance rows, ROI rows and file problems for every file; files whose path, size and mtime match the
    cache of the previous run are not read again."""
    cached = pd.read_parquet(cache_path) if cache_path.exists() else pd.DataFrame(columns=CACHE_COLUMNS)
    cached_rois = (
        pd.read_parquet(cache_path.with_name("cache_rois.parquet"))
        if cache_path.with_name("cache_rois.parquet").exists()
        else pd.DataFrame()
    )
    roi_base = [c for c in ROI_COLUMNS if c not in ("roi", "roi_pattern")]
    if list(cached.columns) != CACHE_COLUMNS or (len(cached_rois) and list(cached_rois.columns) != roi_base):
        # a cache written by an older radflow lacks columns: every file is read again
        cached, cached_rois = pd.DataFrame(columns=CACHE_COLUMNS), pd.DataFrame()
    current = pd.DataFrame(files, columns=["path", "size", "mtime"])
    merged = current.merge(
        cached[["path", "size", "mtime"]].astype({"size": "int64", "mtime": "int64"}).assign(_hit=True),
        on=["path", "size", "mtime"],
        how="left",
    )
    hit = merged["_hit"].eq(True).to_numpy()
    todo = current.loc[~hit, "path"].tolist()
    reused = cached[cached["path"].isin(set(current.loc[hit, "path"]))]
    rows, roi_rows = _read_many(todo, threads, progress)
    fresh = pd.DataFrame.from_records(rows, columns=CACHE_COLUMNS)
    for c in ("rows", "columns", "instance_number", "number_of_frames"):
        fresh[c] = pd.to_numeric(fresh[c], errors="coerce").fillna(0).astype("int64")
    for c in ("pixel_spacing_row", "pixel_spacing_col", "slice_thickness", "position_x", "position_y", "position_z"):
        fresh[c] = pd.to_numeric(fresh[c], errors="coerce")
    parts = [f for f in (reused, fresh) if len(f)]
    table = pd.concat(parts, ignore_index=True) if parts else fresh
    table = table.astype({"size": "int64", "mtime": "int64"})
    order = pd.Series(np.arange(len(current)), index=current["path"].to_numpy())
    table = table.iloc[np.argsort(order.loc[table["path"]].to_numpy(), kind="stable")].reset_index(drop=True)
    old_rois = (
        cached_rois[cached_rois["rtstruct_path"].isin(set(reused["path"]))]
        if len(cached_rois)
        else pd.DataFrame(columns=roi_base)
    )
    new_rois = pd.DataFrame(roi_rows, columns=roi_base)
    all_rois = pd.concat([f for f in (old_rois, new_rois) if len(f)] or [new_rois], ignore_index=True)
    table.to_parquet(cache_path, index=False)
    all_rois.to_parquet(cache_path.with_name("cache_rois.parquet"), index=False)
    return table, all_rois, len(todo)
