"""The index as a whole: build_index runs the steps and writes the tables; load_index reads them back."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pandas as pd

from radflow import __version__
from radflow.index.cache import _read_with_cache, _unchanged
from radflow.index.columns import INDEX_FORMAT, PROBLEM_COLUMNS, ROI_COLUMNS, problem
from radflow.index.headers import crawl
from radflow.index.links import link_table, select_series
from radflow.index.series import series_table
from radflow.modalities import DEFAULT_MODALITIES
from radflow.roi_names import load_aliases, standard_name
from radflow.settings import IndexSettings


def read_manifest(path) -> list[str]:
    """SeriesInstanceUIDs of an NBIA .tcia manifest: a header block of key=value lines, then one UID per line."""
    uids = []
    for line in Path(path).read_text(errors="replace").splitlines():
        line = line.strip()
        if line and "=" not in line and line[0].isdigit() and all(c.isdigit() or c == "." for c in line):
            uids.append(line)
    if not uids:
        raise ValueError(f"{path}: no SeriesInstanceUID lines found (is it an NBIA .tcia manifest?)")
    return uids


def index_with(settings: IndexSettings, out_dir, roi_names, progress: bool | None = None, load_instances=True):
    """build_index with the index settings (radflow.settings.IndexSettings), as the workflow's index job and
    the command line call it."""
    return build_index(
        settings.dicom_root,
        out_dir,
        roi_names,
        threads=settings.threads,
        pet_fallback=settings.pet_fallback,
        modalities=list(settings.modalities),
        series_selection=settings.series_selection,
        manifest=settings.manifest,
        progress=progress,
        load_instances=load_instances,
    )


def build_index(
    root,
    out_dir,
    roi_names,
    threads: int = 1,
    pet_fallback: str | None = None,
    modalities=tuple(DEFAULT_MODALITIES),
    series_selection: str = "referenced",
    manifest=None,
    progress: bool | None = None,
    load_instances: bool = True,
) -> dict[str, pd.DataFrame]:
    """Index the DICOM tree under root into out_dir: instances, series, rois and links (parquet), problems.tsv,
    and manifest.tsv when a .tcia manifest is given. Incremental: unchanged files are not read again."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    aliases = load_aliases(roi_names)
    if progress is None:
        progress = sys.stderr.isatty()
    files = crawl(root)
    # Nothing changed on disk and the settings are the same: the tables of the last run stand as they are.
    signature = json.dumps(
        dict(
            version=__version__,
            index_format=INDEX_FORMAT,
            roi_names=hashlib.sha256(Path(roi_names).read_bytes()).hexdigest(),
            pet_fallback=pet_fallback,
            modalities=sorted(modalities),
            series_selection=series_selection,
            manifest=hashlib.sha256(Path(manifest).read_bytes()).hexdigest() if manifest else None,
        ),
        sort_keys=True,
    )
    outputs = [out / f"{n}.parquet" for n in ("instances", "series", "rois", "links")] + [
        out / "problems.tsv",
        out / "index_stats.json",
    ]
    stamp = out / "index_settings.json"
    if (
        stamp.exists()
        and stamp.read_text() == signature
        and all(p.exists() for p in outputs)
        and _unchanged(files, out / "cache.parquet")
    ):
        tables = load_index(out, instances=load_instances)
        if manifest:
            tables["manifest"] = pd.read_csv(out / "manifest.tsv", sep="\t")
        tables["stats"] = json.loads((out / "index_stats.json").read_text()) | dict(read=0, reused=len(files))
        return tables
    stamp.unlink(missing_ok=True)
    table, roi_rows, n_read = _read_with_cache(files, out / "cache.parquet", threads, progress)
    problems = [
        problem("file", r.path, "", "", "skipped", r.file_problem)
        for r in table[table["file_problem"] != ""].itertuples()
    ]
    instances = table[table["file_problem"] == ""].drop(columns="file_problem")
    broken = instances[instances["pixel_problem"] != ""]
    problems += [
        problem("file", r.path, r.patient_id, r.dicom_series_uid, "skipped", r.pixel_problem)
        for r in broken.itertuples()
    ]
    instances = instances[instances["pixel_problem"] == ""]
    instances = instances.sort_values(["patient_id", "dicom_series_uid", "instance_number", "path"], ignore_index=True)
    dup = instances[instances.duplicated("sop_instance_uid", keep="first")]
    problems += [
        problem(
            "file",
            r.path,
            r.patient_id,
            r.dicom_series_uid,
            "skipped",
            f"duplicate SOPInstanceUID {r.sop_instance_uid}: an earlier file has the same one",
        )
        for r in dup.itertuples()
    ]
    instances = instances.drop(index=dup.index).reset_index(drop=True)
    series, series_problems, keys = series_table(instances, pet_fallback, tuple(modalities))
    instances["series_key"] = keys
    problems.extend(series_problems)

    rois = roi_rows[roi_rows["rtstruct_sop_uid"].isin(set(instances["sop_instance_uid"]))].copy()
    mapped = [standard_name(n, aliases) for n in rois["roi_original"]]
    rois["roi"] = [m[0] for m in mapped]
    rois["roi_pattern"] = [m[1] for m in mapped]
    rois = rois.reindex(columns=ROI_COLUMNS).sort_values(
        ["patient_id", "rtstruct_series_uid", "roi_number"], ignore_index=True
    )
    for r in rois.itertuples():
        about = ("roi", f"{r.rtstruct_series_uid}/{r.roi_original}", r.patient_id, r.rtstruct_series_uid)
        if r.n_contours == 0:
            problems.append(problem(*about, "excluded", f"ROI '{r.roi_original}' has no contours"))
        problems += [problem(*about, "warning", text) for text in (r.contour_warnings or "").split(" | ") if text]
    links, link_problems = link_table(series, rois, instances)
    problems.extend(link_problems)
    series, selection_problems = select_series(series, links, series_selection)
    problems.extend(selection_problems)
    links = links[links["image_series_uid"].isin(set(series.loc[series["convert"], "series_uid"]))]

    tables = dict(instances=instances, series=series, rois=rois, links=links.reset_index(drop=True))
    if manifest:
        expected = read_manifest(manifest)
        present = set(instances["dicom_series_uid"])
        tables["manifest"] = pd.DataFrame(
            dict(series_uid=expected, status=["present" if u in present else "missing" for u in expected])
        )
        problems += [
            problem(
                "series", u, "", u, "missing", f"listed in the manifest {Path(manifest).name} but not in the download"
            )
            for u in expected
            if u not in present
        ]
        extra = sorted(present - set(expected))
        problems += [
            problem("series", u, "", u, "info", f"in the download but not in the manifest {Path(manifest).name}")
            for u in extra
        ]
    problems_df = pd.DataFrame(problems, columns=PROBLEM_COLUMNS)
    for name, t in tables.items():
        if name == "manifest":
            t.to_csv(out / "manifest.tsv", sep="\t", index=False)
        else:
            t.to_parquet(out / f"{name}.parquet", index=False)
    problems_df.to_csv(out / "problems.tsv", sep="\t", index=False)
    stamp.write_text(signature)
    tables["problems"] = problems_df
    tables["stats"] = dict(files=len(files), instances=len(instances), read=n_read, reused=len(files) - n_read)
    (out / "index_stats.json").write_text(json.dumps(dict(files=len(files), instances=len(instances))))
    return tables


def nothing_to_convert(tables: dict, root, examples: int = 5) -> str | None:
    """None when the index has at least one image series to convert; else a sentence naming the DICOM root and
    why nothing is left (no files, no DICOM among them, or no series that passed), with the reasons counted and a
    few examples of each: the message a run stops with instead of computing empty tables."""
    st, series, problems = tables["stats"], tables["series"], tables["problems"]
    if series["convert"].any():
        return None
    if st["files"] == 0:
        return f"{root}: no files under this folder (is dicom_root the folder of the downloaded DICOM?)"

    def reasons(rows: pd.DataFrame, item: str) -> str:
        lines = []
        for reason, g in rows.groupby("reason", sort=False):
            names = ", ".join(str(v) for v in g[item].head(examples))
            more = f" … ({len(g) - examples} more)" if len(g) > examples else ""
            lines.append(f"  {len(g)} × {reason}: {names}{more}")
        return "\n".join(lines)

    if st["instances"] == 0:
        skipped = problems[problems["level"] == "file"]
        return f"{root}: none of its {st['files']} files is a DICOM instance radflow can read; by reason:\n" + reasons(
            skipped, "item"
        )
    # structure sets and SEGs carry no reason of their own: they are not images
    refused = series.assign(reason=series["reason"].mask(series["reason"] == "", series["modality"] + ": not an image"))
    return (
        f"{root}: {st['instances']} DICOM instances in {len(series)} series, none of them an image series to "
        "convert; by reason:\n" + reasons(refused, "series_uid")
    )


def load_index(index_dir, instances: bool = True) -> dict[str, pd.DataFrame]:
    d = Path(index_dir)
    names = ("instances", "series", "rois", "links") if instances else ("series", "rois", "links")
    tables = {name: pd.read_parquet(d / f"{name}.parquet") for name in names}
    tables["problems"] = pd.read_csv(d / "problems.tsv", sep="\t", dtype=str, keep_default_na=False)
    return tables


def series_files(instances: pd.DataFrame, series_uid: str) -> list[str]:
    """The files of one image series or sub-series (key <UID> or <UID>_<n>)."""
    files = instances.loc[instances["series_key"] == series_uid, "path"].tolist()
    if not files:
        raise KeyError(f"series {series_uid} is not in the index")
    return files
