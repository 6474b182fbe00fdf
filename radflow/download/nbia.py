"""TCIA's NBIA REST API (services.cancerimagingarchive.net/nbia-api): the series of a collection, or of a .tcia
manifest, and each series as a zip (getImageWithMD5Hash: the DICOM files and md5hashes.csv, the publisher's MD5 of
every file)."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from radflow.download.http import Client, DownloadError

DEFAULT_URL = "https://services.cancerimagingarchive.net/nbia-api/services/v1"


def _row(item: dict, collection: str = "") -> dict:
    def first(*keys):
        return next((item[k] for k in keys if item.get(k) not in (None, "")), "")

    count = first("ImageCount", "Number of images")
    size = first("FileSize", "File Size")
    return dict(
        collection=first("Collection") or collection,
        patient_id=first("PatientID", "Subject ID"),
        study_uid=first("StudyInstanceUID", "Study UID"),
        series_uid=first("SeriesInstanceUID", "Series UID"),
        modality=first("Modality"),
        expected_files=int(float(count)) if count != "" else None,
        expected_bytes=int(float(size)) if size != "" else None,
    )


def list_series(client: Client, url: str, collection: str, patients=None, modalities=None) -> list[dict]:
    """Every series of the collection (of the listed patients, of the listed modalities), one getSeries per
    patient or one for the whole collection."""
    url = url.rstrip("/")
    queries = (
        [dict(Collection=collection, PatientID=p) for p in patients] if patients else [dict(Collection=collection)]
    )
    out = []
    for q in queries:
        what = f"NBIA getSeries {q}"
        items = client.get_json(f"{url}/getSeries", params=q, what=what)
        if not isinstance(items, list):
            raise DownloadError(f"{what}: expected a JSON list of series, got {type(items).__name__}")
        out += [_row(i, collection) for i in items]
    if modalities:
        out = [r for r in out if r["modality"] in set(modalities)]
    if not out:
        raise DownloadError(
            f"NBIA at {url}: no series for collection {collection!r}"
            + (f", patients {list(patients)}" if patients else "")
            + (f", modalities {list(modalities)}" if modalities else "")
            + " (is the collection name spelled as TCIA spells it, e.g. TCGA-HNSC?)",
            permanent=True,
        )
    return sorted(out, key=lambda r: (r["patient_id"], r["study_uid"], r["series_uid"]))


def manifest_series(client: Client, url: str, uids: list[str]) -> list[dict]:
    """The series of a .tcia manifest, each described by getSeriesMetaData (collection, patient, expected count)."""
    url = url.rstrip("/")
    out = []
    for uid in uids:
        what = f"NBIA getSeriesMetaData {uid}"
        items = client.get_json(f"{url}/getSeriesMetaData", params=dict(SeriesInstanceUID=uid), what=what)
        row = _row(items[0]) if items else dict(series_uid=uid)
        row["series_uid"] = uid
        out.append(row)
    return out


def fetch_series(client: Client, url: str, row: dict, folder: Path) -> dict:
    """Download one series' zip into folder, check every file against the zip's CRC and md5hashes.csv, and unpack
    the DICOM files there. Returns dict(bytes, checksums)."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / ".series.zip"
    uid = row["series_uid"]
    size = client.save(
        f"{url.rstrip('/')}/getImageWithMD5Hash",
        archive,
        params=dict(SeriesInstanceUID=uid),
        what=f"series {uid}",
    )
    try:
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            hashes = {}
            if "md5hashes.csv" in names:
                text = z.read("md5hashes.csv").decode("utf-8-sig")
                hashes = {r["Filename"]: r["MD5Hash"].lower() for r in csv.DictReader(io.StringIO(text))}
            files = [n for n in names if n != "md5hashes.csv" and PurePosixPath(n).name.upper() != "LICENSE"]
            for name in files:
                if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
                    raise DownloadError(f"series {uid}: unsafe file name {name!r} in the zip", permanent=True)
                data = z.read(name)  # the zip's CRC is checked here
                if hashes:
                    if name not in hashes:
                        raise DownloadError(f"series {uid}: {name} is not in md5hashes.csv")
                    if hashlib.md5(data).hexdigest() != hashes[name]:
                        raise DownloadError(f"series {uid}: {name} does not match its MD5 in md5hashes.csv")
                (folder / PurePosixPath(name).name).write_bytes(data)
            if hashes and set(hashes) - set(files):
                raise DownloadError(
                    f"series {uid}: md5hashes.csv lists {len(set(hashes) - set(files))} files not in the zip"
                )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as err:
        raise DownloadError(f"series {uid}: the zip ({size:,} bytes) is corrupt: {err}") from None
    finally:
        archive.unlink(missing_ok=True)
    return dict(bytes=size, checksums=f"md5 of {len(hashes)} files" if hashes else "none given (zip CRC only)")
