"""Images from TCIA (NBIA API, a collection or a .tcia manifest) or the Imaging Data Commons (s5cmd), one series at a
time, resumable and verified.

Each series is fetched into <root>/.radflow-download/partial/<uid> (the index skips hidden folders), verified (the
source's checksums, the file count the source announced, every file a DICOM file of this series), recorded in
.radflow-download/done/<uid>.json and renamed into the NBIA Data Retriever's classic layout
<root>/<Collection>/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/. A series with a record and its folder is
not asked for again; an interrupted download starts again with the series it had not finished. A series that still
fails after its attempts is named in the report with its reason, and the others go on.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom

from radflow.download.http import Client, DownloadError, safe_name
from radflow.download.sources import IMAGE_SOURCES
from radflow.tables import DOWNLOAD_COLUMNS

STATE = ".radflow-download"


def verify_folder(folder: Path, row: dict) -> dict:
    """Every file a readable DICOM file of this series, as many as the source announced; the patient and study
    they name (the layout uses them)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DownloadError(f"series {row['series_uid']}: no files came")
    expected = row.get("expected_files")
    if expected is not None and len(files) != expected:
        raise DownloadError(f"series {row['series_uid']}: {len(files)} files came, the source lists {expected}")
    patients, studies, modalities = set(), set(), set()
    for p in files:
        try:
            ds = pydicom.dcmread(
                p,
                stop_before_pixels=True,
                specific_tags=["PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality"],
            )
        except Exception as err:  # pydicom raises several kinds for a damaged file
            raise DownloadError(f"series {row['series_uid']}: {p.name} is not a readable DICOM file: {err}") from None
        if str(getattr(ds, "SeriesInstanceUID", "")) != row["series_uid"]:
            raise DownloadError(
                f"series {row['series_uid']}: {p.name} belongs to series {getattr(ds, 'SeriesInstanceUID', '?')}",
                permanent=True,
            )
        patients.add(str(getattr(ds, "PatientID", "")))
        studies.add(str(getattr(ds, "StudyInstanceUID", "")))
        modalities.add(str(getattr(ds, "Modality", "")))
    return dict(
        files=len(files),
        patient_id=row.get("patient_id") or sorted(patients)[0],
        study_uid=row.get("study_uid") or sorted(studies)[0],
        modality=row.get("modality") or sorted(modalities)[0],
    )


def plan(source: dict, client: Client) -> list[dict]:
    """The series a `source.images` block asks for (see config/README.md), from its source
    (radflow.download.sources)."""
    kind = source["from"]
    if kind not in IMAGE_SOURCES:
        raise DownloadError(f"source.images.from: {kind!r}; expected {', '.join(IMAGE_SOURCES)}", permanent=True)
    needs = IMAGE_SOURCES[kind].needs
    if not source.get(needs):
        raise DownloadError(f"source.images.from: {kind} needs source.images.{needs}", permanent=True)
    rows = IMAGE_SOURCES[kind].list_series(source, client)
    for r in rows:
        r["source"] = kind
    return rows


def _one_series(source, client, root, state, row, k, n, attempts, log) -> dict:
    """Fetch, verify, record and place one series (or say it is there from an earlier run); its report row."""
    uid = row["series_uid"]
    record_path = state / "done" / f"{safe_name(uid)}.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if (root / record["path"]).is_dir():
            return {**record, "outcome": "present", "attempts": 0, "seconds": 0.0, "reason": ""}
    start, reason, attempt = time.monotonic(), "", 0
    entry = dict(row, outcome="failed", files=0, bytes=0, checksums="", path="")
    partial = state / "partial" / safe_name(uid)
    for attempt in range(1, attempts + 1):
        shutil.rmtree(partial, ignore_errors=True)
        try:
            got = IMAGE_SOURCES[row["source"]].fetch_series(source, client, row, partial)
            facts = verify_folder(partial, row)
        except DownloadError as err:
            reason = str(err)
            log(f"[{k}/{n}] {uid}: attempt {attempt} of {attempts} failed: {reason}")
            if err.permanent or attempt == attempts:
                break
            client.wait(client.backoff * 2 ** (attempt - 1))
            continue
        collection = row.get("collection") or source.get("collection") or "unknown"
        rel = Path(safe_name(collection), safe_name(facts["patient_id"]), safe_name(facts["study_uid"]), safe_name(uid))
        entry.update(facts, **got, outcome="downloaded", path=str(rel), collection=collection)
        final = root / rel
        if final.exists():  # files there without a record of ours: replaced by the verified series
            log(f"{uid}: {final} existed without a download record; replaced")
            shutil.rmtree(final)
        done = ("outcome", "attempts", "seconds", "reason")
        record = {c: entry.get(c, "") for c in DOWNLOAD_COLUMNS if c not in done}
        tmp = record_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, record_path)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)
        reason = ""
        break
    shutil.rmtree(partial, ignore_errors=True)
    entry.update(attempts=attempt, seconds=round(time.monotonic() - start, 3), reason=reason)
    log(f"[{k}/{n}] {uid}: {entry['outcome']}" + (f" ({entry['files']} files)" if not reason else ""))
    return entry


def download_images(
    source: dict,
    root,
    report_path=None,
    client: Client | None = None,
    log=print,
    attempts: int | None = None,
    workers: int = 1,
):
    """Download what source (a `source.images` block) names into root; write and return the report (a DataFrame, one
    row per series in the listing's order: downloaded, present from an earlier run, or failed with the reason). A series
    is tried `attempts` times (default: the client's retries + 1); `workers` series are fetched at once (the client's
    rate limit holds for all)."""
    client = client or Client(log=log)
    attempts = attempts or client.retries + 1
    root = Path(root)
    state = root / STATE
    (state / "done").mkdir(parents=True, exist_ok=True)
    rows = plan(source, client)
    log(f"{len(rows)} series from {source['from']}")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        report = list(
            pool.map(
                lambda item: _one_series(source, client, root, state, item[1], item[0], len(rows), attempts, log),
                enumerate(rows, 1),
            )
        )
    shutil.rmtree(state / "partial", ignore_errors=True)
    import pandas as pd  # (imported here: a download starts in a fraction of a second)

    table = pd.DataFrame(report, columns=DOWNLOAD_COLUMNS)
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(report_path, sep="\t", index=False)
    return table
