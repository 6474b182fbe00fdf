"""Work orders: what one series' convert, masks or dose job needs from the index, one small JSON file each.

The index tables change whenever any file of the cohort does. A job that took them as its input would be older than
its input after every re-index and be redone, for every series (Snakemake compares the content of inputs only below
1 MB, which a real cohort's tables are not). Each per-series job takes its own order instead: the index writes
`results/orders/<patient>/<series>.<kind>.json` after it has built its tables, and rewrites an order only when its
content changes, so that the file's time tells Snakemake exactly which series have something new. Adding a patient
redoes that patient's jobs; re-indexing an unchanged cohort redoes none.

Each order names the series twice, under distinct keys: `series_key`, the key of results files and wildcards (the
DICOM SeriesInstanceUID, or `<UID>_<n>` for a sub-series), and `dicom_series_uid`. Files are listed with their
size and modification time: a file replaced on disk changes its series' order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from radflow.index.columns import split_uids
from radflow.modalities import STRUCTURE_MODALITIES

KINDS = ("convert", "masks", "dose")


def order_path(root, kind: str, patient: str, series: str) -> Path:
    return Path(root) / patient / f"{series}.{kind}.json"


def read_order(path) -> dict:
    return json.loads(Path(path).read_text())


def _file(path: str, sizes: dict) -> dict:
    size, mtime = sizes.get(path, (None, None))
    return dict(path=path, size=size, mtime_ns=mtime)


def build_orders(tables: dict[str, pd.DataFrame], kinds=KINDS) -> dict[tuple[str, str, str], dict]:
    """{(kind, patient, series): order} for every series the workflow will work on, from the index tables
    (instances, series, links; without instances, the files carry no size or time, and no convert order is made).
    The one place that says which structure sets and dose grids go with which image series."""
    series, links = tables["series"], tables["links"]
    instances = tables.get("instances")
    if instances is None:
        instances = pd.DataFrame(columns=["path", "size", "mtime", "series_key"])
        kinds = [k for k in kinds if k != "convert"]
    sizes = dict(
        zip(
            instances["path"],
            zip(instances["size"].astype("int64").tolist(), instances["mtime"].astype("int64").tolist()),
        )
    )
    files_of = instances.groupby("series_key")["path"].agg(lambda p: sorted(p)).to_dict()
    orders = {}
    images = series[series["convert"]] if "convert" in kinds else series.iloc[:0]
    for r in images.itertuples():
        orders[("convert", r.patient_id, r.series_uid)] = dict(
            kind="convert",
            patient_id=r.patient_id,
            study_uid=r.study_uid,
            series_key=r.series_uid,
            dicom_series_uid=r.dicom_series_uid,
            modality=r.modality,
            files=[_file(p, sizes) for p in files_of.get(r.series_uid, [])],
        )
    structures = links[links["source_modality"].isin(STRUCTURE_MODALITIES) & ("masks" in kinds)]
    for (patient, key), mine in structures.groupby(["patient_id", "image_series_uid"], sort=True):
        mine = mine.drop_duplicates("source_path").sort_values("source_path")
        orders[("masks", patient, key)] = dict(
            kind="masks",
            patient_id=patient,
            series_key=key,
            image_modality=str(mine["image_modality"].iloc[0]),
            structures=[
                dict(
                    _file(r.source_path, sizes),
                    modality=r.source_modality,
                    series_uid=r.source_series_uid,
                    sop_uid=r.source_sop_uid,
                    relation=r.relation,
                )
                for r in mine.itertuples()
            ],
        )
    doses = links[links["source_modality"].eq("RTDOSE") & ("dose" in kinds)]
    for (patient, uid), mine in doses.groupby(["patient_id", "source_series_uid"], sort=True):
        first = mine.sort_values("source_path").iloc[0]
        orders[("dose", patient, uid)] = dict(
            kind="dose",
            patient_id=patient,
            series_key=uid,
            dicom_series_uid=uid,
            dose=_file(str(first["source_path"]), sizes),
            images=sorted(mine["image_series_uid"].unique().tolist()),
            # the plan the RTDOSE references and the structure sets that plan references (radflow.index.links)
            plan=dict(
                sop_uid=str(first.get("plan_sop_uid", "") or ""),
                label=str(first.get("plan_label", "") or ""),
                structure_sop_uids=split_uids(first.get("plan_structure_sop_uids", "")),
            ),
        )
    return orders


def _text(order: dict) -> str:
    return json.dumps(order, indent=1, sort_keys=True) + "\n"


def write_order(path: Path, order: dict) -> bool:
    """Write the order unless the file already holds it (its time then stays); True when written."""
    text = _text(order)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


def write_index_orders(index_dir, root) -> dict[str, int]:
    """Every order of the index in index_dir (its series, links and instances tables) under root: what the index
    step does after the index, and what the workflow does when an order was deleted since."""
    index_dir = Path(index_dir)
    tables = dict(
        instances=pd.read_parquet(index_dir / "instances.parquet", columns=["path", "size", "mtime", "series_key"]),
        series=pd.read_parquet(index_dir / "series.parquet"),
        links=pd.read_parquet(index_dir / "links.parquet"),
    )
    return write_orders(tables, root)


def write_orders(tables: dict[str, pd.DataFrame], root) -> dict[str, int]:
    """Every order of the index tables under root; orders of series no longer worked on are removed.
    Returns counts: written, unchanged, removed."""
    root = Path(root)
    orders = build_orders(tables)
    wanted = {order_path(root, *key) for key in orders}
    written = sum(write_order(order_path(root, *key), order) for key, order in orders.items())
    removed = 0
    if root.exists():
        for old in root.rglob("*.json"):
            if old not in wanted:
                old.unlink()
                removed += 1
    return dict(written=written, unchanged=len(orders) - written, removed=removed)
