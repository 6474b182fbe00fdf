"""The paper folder a run writes (results/paper/): methods.md (and methods.html for the report),
reporting_checklist.tsv, features.tsv and cite.md, from the run's outputs."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd

from radflow.paper.checklist import reporting_checklist
from radflow.paper.cite import cite_markdown
from radflow.paper.dictionary import features_dictionary
from radflow.paper.facts import read_sidecars, run_facts
from radflow.paper.methods import methods_markdown

FILES = (
    "methods.md",
    "methods.html",
    "reporting_checklist.tsv",
    "reporting_checklist.html",
    "features.tsv",
    "features.html",
    "cite.md",
)
STYLE = (
    "body{font-family:sans-serif;margin:1.5em;line-height:1.4}table{border-collapse:collapse;font-size:0.85em}"
    "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}th{background:#eee}"
    "tr.run td.status{background:#d7f5dd}tr.partly td.status{background:#fff2c6}tr.author td.status{background:#f6d6d6}"
)


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"(?<![\w/])_(.+?)_(?![\w/])", r"<em>\1</em>", text)


def markdown_html(markdown: str, title: str) -> str:
    """The few markdown forms methods.md uses (headings, paragraphs, bullet lists, bold, italics) as a standalone
    HTML page for the Snakemake report."""
    body = []
    for block in markdown.strip().split("\n\n"):
        if block.startswith("#"):
            level = len(block) - len(block.lstrip("#"))
            body.append(f"<h{level}>{_inline(block[level:].strip())}</h{level}>")
        elif block.startswith("- "):
            items = "".join(f"<li>{_inline(line[2:])}</li>" for line in block.splitlines())
            body.append(f"<ul>{items}</ul>")
        else:
            body.append(f"<p>{_inline(block)}</p>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.5}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def table_html(table: pd.DataFrame, title: str, intro: str, row_class: str | None = None) -> str:
    """A table as a standalone HTML page for the Snakemake report (which shows HTML, not TSV); row_class: the column
    whose value classes each row (the checklist's status, coloured)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = []
    for _, row in table.iterrows():
        cls = f' class="{html.escape(str(row[row_class]).replace("/", ""))}"' if row_class else ""
        cells = "".join(
            f'<td class="{html.escape(str(c))}">{html.escape("" if pd.isna(v) else str(v))}</td>'
            for c, v in row.items()
        )
        rows.append(f"<tr{cls}>{cells}</tr>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></body></html>\n"
    )


def _table(path, **kw):
    return pd.read_csv(path, **kw) if path and Path(path).exists() else None


def _json(path):
    return json.loads(Path(path).read_text()) if path and Path(path).exists() else None


def write_paper_folder(inputs: dict, settings: dict, config: dict, outputs: dict) -> dict:
    """Write the paper folder's files (outputs: {name in FILES: path}) from the run's tables. inputs: features,
    series, rois (parquet), sidecars (list), dvh (parquet, optional), icc, batches, survival, clinical_record
    (optional); settings: {modality: settings file}. Returns the facts."""
    features = pd.read_parquet(inputs["features"])
    dvh = pd.read_parquet(inputs["dvh"]) if inputs.get("dvh") and Path(inputs["dvh"]).exists() else None
    analysis_outputs = dict(
        icc=_table(inputs.get("icc")),
        batches=_table(inputs.get("batches"), sep="\t"),
        survival=_json(inputs.get("survival")),
    )
    facts = run_facts(
        features,
        pd.read_parquet(inputs["series"]),
        pd.read_parquet(inputs["rois"]),
        read_sidecars(inputs.get("sidecars") or []),
        settings,
        config,
        analysis_outputs,
        _json(inputs.get("clinical_record")),
    )
    method = str(dvh["method"].iloc[0]) if dvh is not None and len(dvh) and "method" in dvh else None
    if method and "structure_sets_by" in dvh:
        by = dvh.drop_duplicates("dose_series_uid")["structure_sets_by"].astype(str).str.split(":").str[0]
        plan, other = int((by == "plan").sum()), int((by != "plan").sum())
        method += (
            f"; the ROIs of the structure set each dose grid's RTPLAN references (RTDOSE → RTPLAN → RTSTRUCT) for "
            f"{plan} dose grid{'' if plan == 1 else 's'}"
            + (f", every structure set of the dose's CTs' frame of reference for {other}" if other else "")
        )
    methods = methods_markdown(facts, method)
    Path(outputs["methods.md"]).write_text(methods, encoding="utf-8")
    Path(outputs["methods.html"]).write_text(markdown_html(methods, "Methods (radflow)"), encoding="utf-8")
    checklist = reporting_checklist(facts)
    checklist.to_csv(outputs["reporting_checklist.tsv"], sep="\t", index=False)
    counts = checklist.groupby(["standard", "status"]).size()
    summary = "; ".join(
        f"{std}: " + ", ".join(f"{n} {status}" for status, n in counts[std].items())
        for std in checklist["standard"].unique()
    )
    Path(outputs["reporting_checklist.html"]).write_text(
        table_html(checklist, "Reporting checklist (radflow)", f"Answered from this run. {summary}.", "status"),
        encoding="utf-8",
    )
    dictionary = features_dictionary(features, facts["settings"])
    dictionary.to_csv(outputs["features.tsv"], sep="\t", index=False)
    Path(outputs["features.html"]).write_text(
        table_html(dictionary, "Feature dictionary (radflow)", "Every column of the features table."),
        encoding="utf-8",
    )
    Path(outputs["cite.md"]).write_text(cite_markdown(facts), encoding="utf-8")
    return facts
