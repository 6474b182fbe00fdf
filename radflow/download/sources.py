"""Where images come from (config source.images.from): one entry per source, read by the config schema and check,
the download step and the command line. A new source is its module (the series it lists, one series fetched into a
folder) and one entry in IMAGE_SOURCES."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from radflow.download import idc, nbia
from radflow.download.http import Client


@dataclass(frozen=True)
class ImageSource:
    name: str  # source.images.from
    needs: str  # the source.images key that says what to fetch (collection, manifest)
    needs_file: bool  # that key names a file, which must exist
    help: str  # the command line's --<name> option
    metavar: str
    list_series: Callable[[dict, Client], list[dict]]  # the series source.images asks for, one dict each
    fetch_series: Callable[[dict, Client, dict, Path], dict]  # one series' files into a folder (and checksums)


def _nbia_url(source: dict) -> str:
    return source.get("url") or nbia.DEFAULT_URL


def _tcia_series(source: dict, client: Client) -> list[dict]:
    return nbia.list_series(
        client, _nbia_url(source), source["collection"], source.get("patients"), source.get("modalities")
    )


def _manifest_series(source: dict, client: Client) -> list[dict]:
    from radflow.index.build import read_manifest

    rows = nbia.manifest_series(client, _nbia_url(source), read_manifest(source["manifest"]))
    if source.get("modalities"):
        rows = [r for r in rows if r.get("modality") in set(source["modalities"])]
    return rows


def _nbia_fetch(source: dict, client: Client, row: dict, folder: Path) -> dict:
    return nbia.fetch_series(client, _nbia_url(source), row, folder)


def _idc_series(source: dict, client: Client) -> list[dict]:
    return idc.list_series(source)


def _idc_fetch(source: dict, client: Client, row: dict, folder: Path) -> dict:
    return idc.fetch_series(source, row, folder, client)


IMAGE_SOURCES = {
    s.name: s
    for s in (
        ImageSource(
            "tcia",
            "collection",
            False,
            "a TCIA collection through the NBIA API (e.g. TCGA-HNSC)",
            "COLLECTION",
            _tcia_series,
            _nbia_fetch,
        ),
        ImageSource(
            "manifest",
            "manifest",
            True,
            "the series of an NBIA .tcia manifest",
            "FILE.tcia",
            _manifest_series,
            _nbia_fetch,
        ),
        ImageSource(
            "idc",
            "collection",
            False,
            "an IDC collection (e.g. nsclc_radiomics) with s5cmd",
            "COLLECTION",
            _idc_series,
            _idc_fetch,
        ),
    )
}
