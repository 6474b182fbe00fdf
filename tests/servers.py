"""Local servers the download tests talk to (CI has no network): one HTTP server on 127.0.0.1 that answers like TCIA's
NBIA API (getSeries, getSeriesMetaData, getImageWithMD5Hash) and like the GDC API (/cases paged JSON, /status), with
faults on demand; and moto's S3 server for the s5cmd path. The DICOM they serve is the demo generator's; the GDC
cases are built from real GDC portal exports (../shared/reference/tcga-clinical) or the demo's clinical.tsv."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pydicom


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dicom_catalog(root: Path, collection: str) -> dict:
    """series UID -> dict(meta for getSeries, files [(name, bytes)]) of every DICOM file under root."""
    series = defaultdict(list)
    for p in sorted(Path(root).rglob("*.dcm")):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        series[str(ds.SeriesInstanceUID)].append((ds, p.read_bytes()))
    out = {}
    for uid, items in series.items():
        ds = items[0][0]
        files = [(f"1-{k:03d}.dcm", data) for k, (_, data) in enumerate(items, 1)]
        out[uid] = dict(
            meta=dict(
                SeriesInstanceUID=uid,
                StudyInstanceUID=str(ds.StudyInstanceUID),
                PatientID=str(ds.PatientID),
                Modality=str(ds.Modality),
                Collection=collection,
                ImageCount=len(files),
                FileSize=sum(len(d) for _, d in files),
                SeriesNumber=str(getattr(ds, "SeriesNumber", "")),
            ),
            files=files,
        )
    return out


def series_zip(files, md5=True, corrupt=False, compress=False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, data in files:
            z.writestr(name, data)
        if md5:
            z.writestr(
                "md5hashes.csv",
                "Filename,MD5Hash\n" + "".join(f"{n},{hashlib.md5(d).hexdigest()}\n" for n, d in files),
            )
    data = buf.getvalue()
    if corrupt:  # flip bytes inside the first member's data: the CRC check (or the inflation) fails
        data = bytearray(data)
        for k in range(200, 260):
            data[k] ^= 0xFF
        data = bytes(data)
    return data


def _value(text: str):
    if text in ("'--", ""):
        return None
    try:
        number = float(text)
    except ValueError:
        return {"true": True, "false": False}.get(text, text)
    return int(number) if number.is_integer() and "." not in text else number


def _part(row: dict, prefix: str) -> dict:
    """The fields of one entity (cases, demographic, diagnoses …) of a portal export's row, with their values."""
    return {
        k.split(".", 1)[1]: _value(v) for k, v in row.items() if k.startswith(prefix + ".") and _value(v) is not None
    }


def _add_case_row(cases: dict, r: dict) -> None:
    """One clinical.tsv row into its case: the case itself, its diagnosis and that diagnosis' treatment."""
    case = cases.setdefault(
        r["cases.case_id"],
        dict(
            _part(r, "cases"),
            project=dict(project_id=r["project.project_id"]),
            demographic=_part(r, "demographic"),
            diagnoses={},
            follow_ups={},
        ),
    )
    d = _part(r, "diagnoses")
    if not d:
        return
    diagnosis = case["diagnoses"].setdefault(d.get("diagnosis_id") or d.get("submitter_id"), dict(d, treatments={}))
    t = _part(r, "treatments")
    if t:
        diagnosis["treatments"][t.get("treatment_id") or t.get("submitter_id")] = t


def gdc_cases(clinical_tsv: Path, follow_up_tsv: Path | None = None) -> list[dict]:
    """The GDC API's nested cases (demographic, diagnoses with treatments, follow_ups) of a portal export."""
    cases = {}
    with open(clinical_tsv, newline="") as fp:
        for r in csv.DictReader(fp, delimiter="\t"):
            _add_case_row(cases, r)
    if follow_up_tsv:
        with open(follow_up_tsv, newline="") as fp:
            for r in csv.DictReader(fp, delimiter="\t"):
                f = _part(r, "follow_ups")
                if r["cases.case_id"] in cases and f:
                    cases[r["cases.case_id"]]["follow_ups"][f.get("follow_up_id") or f.get("submitter_id")] = f
    out = []
    for case in cases.values():
        case["diagnoses"] = [dict(d, treatments=list(d["treatments"].values())) for d in case["diagnoses"].values()]
        case["follow_ups"] = list(case["follow_ups"].values())
        out.append(case)
    return out


class FakeArchive:
    """NBIA + GDC on 127.0.0.1. Faults: drop[uid] = n (the first n downloads of the series stop half way),
    corrupt = {uids} (always a damaged zip), busy = n (the first n requests of any kind get 429 / 503),
    slow[uid] = seconds (the series' answer waits: a test kills the client meanwhile)."""

    def __init__(
        self,
        catalog: dict,
        cases: list[dict] | None = None,
        release: str = "Data Release 44.0",
        port: int | None = None,
        compress: bool = False,
        link: float | None = None,
    ):
        self.catalog, self.cases, self.release = catalog, cases or [], release
        self.drop, self.corrupt, self.slow, self.busy = Counter(), set(), {}, 0
        self.log: list[tuple[str, dict]] = []
        self.zips: dict = {}
        self.files: dict[str, bytes] = {}  # /files/<name>: a collection's clinical spreadsheet
        self.compress = compress  # deflated zips (the benchmark); stored ones are quicker to make for the tests
        self.link, self._link_free = link, 0.0  # bytes/s of a link all connections share (the benchmark's network)
        self.lock = threading.Lock()
        self.port = port or free_port()
        archive = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                archive.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def requests(self, path: str, uid: str | None = None) -> int:
        return sum(1 for p, q in self.log if p.endswith(path) and (uid is None or q.get("SeriesInstanceUID") == uid))

    # ------------------------------------------------------------------------------------------------ answers
    def _send(self, h, status, body: bytes, kind="application/json", headers=None):
        h.send_response(status)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if not self.link:
            h.wfile.write(body)
            return
        for k in range(0, len(body), 1 << 18):
            piece = body[k : k + (1 << 18)]
            with self.lock:
                now = time.monotonic()
                self._link_free = max(now, self._link_free) + len(piece) / self.link
                until = self._link_free
            time.sleep(max(0.0, until - now))
            h.wfile.write(piece)

    def _get_series(self, h, path, query):
        rows = [
            s["meta"]
            for s in self.catalog.values()
            if s["meta"]["Collection"] == query.get("Collection")
            and query.get("PatientID", s["meta"]["PatientID"]) == s["meta"]["PatientID"]
        ]
        return self._send(h, 200, json.dumps(rows).encode())

    def _series_metadata(self, h, path, query):
        s = self.catalog.get(query.get("SeriesInstanceUID"))
        rows = (
            []
            if s is None
            else [
                {
                    "Collection": s["meta"]["Collection"],
                    "Subject ID": s["meta"]["PatientID"],
                    "Study UID": s["meta"]["StudyInstanceUID"],
                    "Series UID": s["meta"]["SeriesInstanceUID"],
                    "Modality": s["meta"]["Modality"],
                    "Number of images": str(s["meta"]["ImageCount"]),
                }
            ]
        )
        return self._send(h, 200, json.dumps(rows).encode())

    def _get_image(self, h, path, query):
        uid = query.get("SeriesInstanceUID")
        if uid not in self.catalog:
            return self._send(h, 404, b"no such series", kind="text/plain")
        time.sleep(self.slow.get(uid, 0))
        key = (uid, path.endswith("MD5Hash"), uid in self.corrupt)
        if key not in self.zips:  # made once per series (the benchmark times the clients, not the zipping)
            self.zips[key] = series_zip(self.catalog[uid]["files"], key[1], key[2], self.compress)
        body = self.zips[key]
        with self.lock:
            drop = self.drop[uid] > 0
            self.drop[uid] -= drop
        if drop:  # announce the whole zip, send half, hang up
            h.send_response(200)
            h.send_header("Content-Type", "application/zip")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        return self._send(h, 200, body, kind="application/zip")

    def _cases(self, h, path, query):
        project = json.loads(query["filters"])["content"]["value"][0]
        hits = [c for c in self.cases if c["project"]["project_id"] == project]
        start, size = int(query.get("from", 0)), int(query.get("size", 10))
        page = hits[start : start + size]
        body = dict(
            data=dict(
                hits=page,
                pagination=dict(
                    count=len(page),
                    total=len(hits),
                    size=size,
                    **{"from": start},
                    page=start // size + 1,
                    pages=-(-len(hits) // size),
                ),
            ),
            warnings={},
        )
        return self._send(h, 200, json.dumps(body).encode())

    def handle(self, h):
        url = urlparse(h.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.lock:
            self.log.append((url.path, query))
            busy = self.busy > 0
            self.busy -= busy
        if busy:
            status = 429 if len(self.log) % 2 else 503
            return self._send(h, status, b'{"error": "busy"}', headers={"Retry-After": "0"})
        path = url.path.rstrip("/")
        for suffix, route in (
            ("/getSeries", self._get_series),
            ("/getSeriesMetaData", self._series_metadata),
            ("/getImageWithMD5Hash", self._get_image),
            ("/getImage", self._get_image),
            ("/cases", self._cases),
        ):
            if path.endswith(suffix):
                return route(h, path, query)
        if path.startswith("/files/") and path[len("/files/") :] in self.files:
            return self._send(h, 200, self.files[path[len("/files/") :]], kind="application/octet-stream")
        if path.endswith("/status"):
            return self._send(h, 200, json.dumps(dict(status="OK", data_release=self.release)).encode())
        return self._send(h, 404, b"unknown endpoint", kind="text/plain")


class S3Server:
    """moto's S3 server on 127.0.0.1 with a public-read bucket laid out like IDC's (<bucket>/<uuid>/<SOP UID>.dcm)."""

    def __init__(self):
        self.port = free_port()
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        moto = Path(sys.executable).parent / "moto_server"
        self.proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.url, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
        )

    def publish(self, bucket: str, catalog: dict) -> list[dict]:
        """Each series of the catalog under <bucket>/<uuid>/; rows of an IDC index for them."""
        import uuid

        s3 = self.client()
        s3.create_bucket(Bucket=bucket, ACL="public-read")
        rows = []
        for uid, s in sorted(catalog.items()):
            folder = str(uuid.uuid5(uuid.NAMESPACE_OID, uid))
            for name, data in s["files"]:
                sop = str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)
                s3.put_object(Bucket=bucket, Key=f"{folder}/{sop}.dcm", Body=data, ACL="public-read")
            m = s["meta"]
            rows.append(
                dict(
                    collection_id=m["Collection"].lower().replace("-", "_"),
                    PatientID=m["PatientID"],
                    StudyInstanceUID=m["StudyInstanceUID"],
                    SeriesInstanceUID=uid,
                    Modality=m["Modality"],
                    instanceCount=len(s["files"]),
                    series_aws_url=f"s3://{bucket}/{folder}/*",
                )
            )
        return rows


if __name__ == "__main__":  # python tests/servers.py DICOM_ROOT COLLECTION PORT [MB/s]: serve a folder (benchmarks)
    link = float(sys.argv[4]) * 1e6 if len(sys.argv) > 4 else None  # MB/s
    catalog = dicom_catalog(Path(sys.argv[1]), sys.argv[2])
    with FakeArchive(catalog, port=int(sys.argv[3]), compress=True, link=link) as served:
        print(f"serving {len(served.catalog)} series on {served.url}", flush=True)
        served.thread.join()
