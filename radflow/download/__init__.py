"""Getting the data: images from TCIA (NBIA API) or the Imaging Data Commons (s5cmd), clinical data from the GDC API;
resumable and verified (radflow.download.images), through one HTTP client with a rate limit and retries (.http).
`fetch_source` does what a config's `source:` block asks; the workflow's download rules and `radflow download` call
it."""

from __future__ import annotations

from pathlib import Path

from radflow.download.clinical import download_clinical
from radflow.download.http import Client, DownloadError
from radflow.download.images import download_images

__all__ = ["Client", "DownloadError", "client_for", "download_clinical", "download_images", "fetch_source"]


def client_for(source: dict, log=print) -> Client:
    """The HTTP client a `source:` block sets up (retries, requests_per_second, backoff, timeout)."""
    return Client(
        retries=source.get("retries", 4),
        requests_per_second=source.get("requests_per_second", 4.0),
        backoff=source.get("backoff", 2.0),
        timeout=source.get("timeout", 120.0),
        log=log,
    )


def fetch_source(source: dict, dicom_root=None, images_report=None, clinical_dir=None, log=print) -> dict:
    """The images (into dicom_root, report to images_report) and the clinical data (into clinical_dir) that the
    block's `images` and `clinical` name; returns dict(images=report table or None, clinical=paths or [])."""
    client = client_for(source, log)
    out = dict(images=None, clinical=[])
    if source.get("clinical"):
        out["clinical"] = download_clinical(source["clinical"], clinical_dir, client, log)
    if source.get("images"):
        out["images"] = download_images(
            source["images"], Path(dicom_root), images_report, client, log, workers=source.get("workers", 4)
        )
    return out
