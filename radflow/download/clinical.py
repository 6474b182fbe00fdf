"""Clinical data of a TCGA project from the GDC API (/cases, paged JSON), written as the GDC portal's own export:
clinical.tsv (one row per case x diagnosis x treatment, dotted column names, `'--` for empty) and follow_up.tsv (one
row per follow-up), which radflow.cohort.clinical reads like a download from the portal. The GDC data release is
recorded next to them (clinical.json): the portal's data change between releases, and a paper should say which it
used."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from radflow.download.http import Client, DownloadError, safe_name

DEFAULT_URL = "https://api.gdc.cancer.gov"
EXPAND = "demographic,diagnoses,diagnoses.treatments,follow_ups,project"
EMPTY = "'--"
CASE_KEYS = ("case_id", "submitter_id")


def fetch_cases(client: Client, url: str, project: str, page_size: int = 100) -> list[dict]:
    """Every case of the project with its demographic, diagnoses (with treatments) and follow-ups."""
    url = url.rstrip("/")
    project = project if project.upper().startswith(("TCGA-", "CPTAC-", "TARGET-")) else f"TCGA-{project}"
    filters = json.dumps({"op": "in", "content": {"field": "project.project_id", "value": [project]}})
    cases, start = [], 0
    while True:
        what = f"GDC cases of {project} from {start}"
        answer = client.get_json(
            f"{url}/cases",
            params={"filters": filters, "expand": EXPAND, "size": page_size, "from": start, "format": "json"},
            what=what,
        )
        try:
            hits, pages = answer["data"]["hits"], answer["data"]["pagination"]
        except (KeyError, TypeError):
            raise DownloadError(f"{what}: not a GDC cases answer: {str(answer)[:200]}") from None
        cases += hits
        start += len(hits)
        if not hits or start >= int(pages["total"]):
            break
    if not cases:
        raise DownloadError(f"GDC at {url}: no cases in project {project!r}", permanent=True)
    return cases


def _flat(prefix: str, obj: dict | None) -> dict:
    return {f"{prefix}.{k}": v for k, v in (obj or {}).items() if not isinstance(v, (list, dict))}


def portal_tables(cases: list[dict]):
    """The GDC portal's clinical.tsv and follow_up.tsv of these cases (two DataFrames)."""
    import pandas as pd

    clinical, follow = [], []
    for case in cases:
        base = {
            "project.project_id": (case.get("project") or {}).get("project_id", ""),
            **{f"cases.{k}": case.get(k, "") for k in CASE_KEYS},
            **_flat("cases", {k: v for k, v in case.items() if k not in CASE_KEYS}),
            **_flat("demographic", case.get("demographic")),
        }
        for diagnosis in case.get("diagnoses") or [{}]:
            for treatment in diagnosis.get("treatments") or [{}]:
                clinical.append({**base, **_flat("diagnoses", diagnosis), **_flat("treatments", treatment)})
        for f in case.get("follow_ups") or []:
            follow.append(
                {
                    "project.project_id": base["project.project_id"],
                    **{f"cases.{k}": case.get(k, "") for k in CASE_KEYS},
                    **_flat("follow_ups", f),
                }
            )

    def table(rows, columns=None):
        df = pd.DataFrame(rows, columns=columns)
        return df.astype(object).where(df.notna() & (df.astype(str) != ""), EMPTY).map(_text)

    # without follow-ups the reader still needs follow_up.tsv's columns
    no_follow = ["project.project_id", "cases.case_id", "cases.submitter_id", "follow_ups.days_to_follow_up"]
    return table(clinical), table(follow, None if follow else no_follow)


def _text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


MAPPING_KEYS = ("columns", "covariates", "time_unit", "event_values", "sheet")


def table_name(source: dict) -> str:
    """The file name a `from: table` download is saved under: the URL's own (e.g. NSCLC-Radiomics' CSV)."""
    name = safe_name(Path(unquote(urlparse(source.get("url") or "").path)).name, "")
    return (
        name
        if Path(name).suffix.lower() in (".csv", ".tsv", ".txt", ".xlsx", ".xls")
        else (name or "clinical") + ".csv"
    )


def table_entry(source: dict, folder) -> dict:
    """The `clinical:` entry (path and column mapping) a `from: table` download is read as."""
    return dict(
        {k: source[k] for k in MAPPING_KEYS if source.get(k) is not None}, path=str(Path(folder) / table_name(source))
    )


def download_table(source: dict, out_dir, client: Client, log=print) -> list[Path]:
    """A collection's clinical spreadsheet from its URL, checked with its column mapping (the columns named are in
    it, the events readable); clinical.json records the URL, the file's SHA-256 and when."""
    from radflow.cohort.clinical import ClinicalError, read_table, table_spec

    if not source.get("url") or not source.get("columns"):
        raise DownloadError("source.clinical.from: table needs url and columns (the column mapping)", permanent=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entry = table_entry(source, out)
    size = client.save(source["url"], Path(entry["path"]), what=f"clinical table {source['url']}")
    try:
        rows = read_table(table_spec(entry))
    except ClinicalError as err:
        raise DownloadError(f"the clinical table from {source['url']}: {err}", permanent=True) from None
    digest = hashlib.sha256(Path(entry["path"]).read_bytes()).hexdigest()
    (out / "clinical.json").write_text(
        json.dumps(
            dict(
                source="table",
                url=source["url"],
                file=Path(entry["path"]).name,
                bytes=size,
                sha256=digest,
                rows=len(rows),
                downloaded=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            ),
            indent=1,
        )
    )
    log(f"clinical table {source['url']}: {size:,} bytes, {len(rows)} rows")
    return [Path(entry["path"])]


def download_clinical(source: dict, out_dir, client: Client | None = None, log=print) -> list[Path]:
    """source: a `source.clinical` block: {from: gdc, project, url} writes clinical.tsv, follow_up.tsv and
    clinical.json (URL, project, GDC data release, case count, time) into out_dir; {from: table, url, columns, ...}
    the spreadsheet and clinical.json (download_table). The paths of the tables."""
    client = client or Client(log=log)
    if source.get("from") == "table":
        return download_table(source, out_dir, client, log)
    if source.get("from") != "gdc":
        raise DownloadError(f"source.clinical.from: {source.get('from')!r}; expected gdc or table", permanent=True)
    if not source.get("project"):
        raise DownloadError("source.clinical.from: gdc needs source.clinical.project (e.g. TCGA-HNSC)", permanent=True)
    url = source.get("url") or DEFAULT_URL
    cases = fetch_cases(client, url, source["project"])
    try:
        release = client.get_json(f"{url.rstrip('/')}/status", what="GDC status").get("data_release", "")
    except DownloadError as err:
        release = f"unknown ({err})"
    clinical, follow = portal_tables(cases)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "clinical.tsv", out / "follow_up.tsv"]
    clinical.to_csv(paths[0], sep="\t", index=False)
    follow.to_csv(paths[1], sep="\t", index=False)
    (out / "clinical.json").write_text(
        json.dumps(
            dict(
                source="GDC API",
                url=url,
                project=source["project"],
                data_release=release,
                cases=len(cases),
                downloaded=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            ),
            indent=1,
        )
    )
    log(
        f"GDC {source['project']}: {len(cases)} cases, {len(clinical)} clinical rows, {len(follow)} follow-ups "
        f"({release})"
    )
    return paths
