"""One HTTP client for every download: a rate limit, retries with back-off (Retry-After honoured) on 429/5xx and
dropped connections, a request count (the tests count what a resumed download asks for)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import requests

RETRY_STATUS = {429, 500, 502, 503, 504}


def safe_name(text, default: str = "unknown") -> str:
    """A file or folder name from any text (a UID, a patient ID, a URL's file name): never hidden, never a path."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or default


class DownloadError(RuntimeError):
    """A request or a download that failed; permanent when retrying cannot help (404, 400)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class Client:
    """requests_per_second: at most this many requests start per second (TCIA and GDC ask their users to be
    gentle); retries: how many times a request is tried again after a 429/5xx or a connection error, waiting
    backoff x 2^k seconds (or the server's Retry-After)."""

    def __init__(self, retries=4, requests_per_second=4.0, timeout=120.0, backoff=2.0, log=print):
        self.retries, self.timeout, self.backoff, self.log = retries, timeout, backoff, log
        self.interval = 1.0 / requests_per_second if requests_per_second else 0.0
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "radflow (https://github.com/radflow)"
        self.requests = 0
        self._next = 0.0
        self._lock = threading.Lock()  # series are fetched by several threads (source.workers)

    def wait(self, seconds: float):
        time.sleep(seconds)

    def _pace(self):
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
            self.requests += 1
        if start > now:
            time.sleep(start - now)

    def _delay(self, attempt: int, response=None) -> float:
        after = response.headers.get("Retry-After") if response is not None else None
        if after:
            try:
                return min(float(after), 300.0)
            except ValueError:
                pass
        return self.backoff * 2**attempt

    def request(self, url: str, params=None, stream=False, what="") -> requests.Response:
        """GET url; retried on 429/5xx and connection errors; a 4xx other than 429 is permanent."""
        last = ""
        for attempt in range(self.retries + 1):
            self._pace()
            response = None
            try:
                response = self.session.get(url, params=params, stream=stream, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as err:
                last = f"{type(err).__name__}: {err}"
            else:
                if response.status_code < 400:
                    return response
                last = f"HTTP {response.status_code} {response.reason}: {response.text[:200].strip()}"
                if response.status_code not in RETRY_STATUS:
                    raise DownloadError(f"{what or url}: {last}", permanent=True)
                response.close()
            if attempt < self.retries:
                delay = self._delay(attempt, response)
                self.log(f"{what or url}: {last}; trying again in {delay:g} s")
                self.wait(delay)
        raise DownloadError(f"{what or url}: {last} ({self.retries + 1} attempts)")

    def get_json(self, url: str, params=None, what=""):
        response = self.request(url, params=params, what=what)
        try:
            return response.json()
        except ValueError:
            raise DownloadError(f"{what or url}: the answer is not JSON: {response.text[:200]!r}") from None

    def save(self, url: str, path: Path, params=None, what="") -> int:
        """Stream the answer into path; the bytes written. A connection dropped half way raises DownloadError."""
        response = self.request(url, params=params, stream=True, what=what)
        written = 0
        try:
            with open(path, "wb") as fp:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    fp.write(chunk)
                    written += len(chunk)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as err:
            raise DownloadError(f"{what or url}: the connection dropped after {written:,} bytes: {err}") from None
        finally:
            response.close()
        return written
