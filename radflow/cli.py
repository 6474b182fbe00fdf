"""radflow's command line: single items, through the same functions the workflow's rules call."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace

from radflow.config.build import defaults
from radflow.download.sources import IMAGE_SOURCES
from radflow.modalities import IMAGE_MODALITIES


def _demo(args):
    from radflow.demo import generate_demo

    truth = generate_demo(args.out_dir)
    print(f"demo cohort ({len(truth['patients'])} patients with images, synthetic) written to {args.out_dir}")


def _index(args):
    from radflow.index import index_with, nothing_to_convert

    _shipped(args, "roi_names", "roi_names.yaml")
    settings = replace(
        defaults().index,
        dicom_root=args.dicom_root,
        threads=args.threads,
        pet_fallback=args.pet_fallback,
        modalities=tuple(args.modalities),
        series_selection=args.series_selection,
        manifest=args.manifest,
    )
    tables = index_with(settings, args.out_dir, args.roi_names, load_instances=False)
    s, st = tables["series"], tables["stats"]
    print(
        f"{st['files']} files ({st['read']} read, {st['reused']} unchanged since the last index), "
        f"{st['instances']} DICOM instances, {len(s)} series ({int(s['convert'].sum())} images to convert), "
        f"{len(tables['rois'])} ROIs, {len(tables['problems'])} problems -> {args.out_dir}"
    )
    empty = nothing_to_convert(tables, args.dicom_root)
    if empty:
        listed = os.path.join(args.out_dir, "problems.tsv")
        raise ValueError(
            f"nothing to convert. {empty}"
            + (f"\nEvery file and series with its reason: {listed}" if len(tables["problems"]) else "")
        )


def _convert(args):
    from radflow.dicom.convert import convert_series, image_files_in

    sidecar = convert_series(image_files_in(args.series_dir), args.out, pet_fallback=args.pet_fallback)
    print(json.dumps({k: sidecar[k] for k in ("modality", "units", "size", "spacing", "warnings")}))


def _masks(args):
    from radflow.dicom.convert import image_headers_in, series_grid
    from radflow.dicom.masks import write_masks
    from radflow.roi_names import load_aliases

    _shipped(args, "roi_names", "roi_names.yaml")
    aliases = load_aliases(args.roi_names)
    masks = write_masks(
        [args.rtstruct],
        series_grid(image_headers_in(args.image_series_dir)),
        args.out_dir,
        aliases,
        union=args.union,
        overlap=args.contour_overlap,
    )
    for m in masks:
        print(
            f"{m['label']}\t{m['roi_original']}\t{m['voxel_count']} voxels\t{m['volume_mm3']:.1f} mm3"
            + (f"\t{'; '.join(m['warnings'])}" if m["warnings"] else "")
        )


def _clinical(args):
    from radflow.cohort.clinical import clinical_table

    table = clinical_table(
        args.files,
        args.out,
        args.problems,
        project=args.project,
        formats=[args.format] * len(args.files) if args.format else None,
    )
    events = table["os_event"].eq(1).sum()
    print(f"{len(table)} patients, {events} deaths (OS events) -> {args.out}")


def _features(args):
    from radflow.features import extract_series
    from radflow.records import image_sidecar
    from radflow.roi_names import FeatureRois
    from radflow.tables import RUNTIME_COLUMNS

    _shipped(args, "roi_names", "roi_names.yaml")
    if args.settings is None:  # the shipped settings of the image's modality, as the workflow's default
        modality = json.loads(image_sidecar(args.image).read_text())["modality"]
        _shipped(args, "settings", f"pyradiomics/{modality}.yaml")
    rule = args.feature_rois if args.feature_rois in ("standard", "all") else tuple(args.feature_rois.split(","))
    settings = replace(defaults().features, feature_rois=rule, max_roi_voxels=args.max_roi_voxels or None)
    df = extract_series(
        args.image,
        args.masks_dir,
        args.settings,
        FeatureRois(settings.feature_rois, args.roi_names),
        settings.max_roi_voxels,
        progress=sys.stderr,
    )
    df.drop(columns=RUNTIME_COLUMNS).to_csv(args.out, index=False)
    print(f"{len(df)} rows ({int((df['status'] == 'ok').sum())} ok) -> {args.out}")


def _download_source(args) -> tuple[dict, str | None]:
    """The config's source: block (--config) with the command line's options over it, and the DICOM folder."""
    import yaml

    source, root = {}, args.dest
    if args.config:
        from radflow.config.check import SCHEMA_PATH, check_config

        config = yaml.safe_load(open(args.config))
        check_config(config, SCHEMA_PATH, settings=False)
        source, root = config["source"], root or config["dicom_root"]
    images = dict(source.get("images") or {})
    kind = next((k for k in IMAGE_SOURCES if getattr(args, k)), None)
    if kind:
        images.update({"from": kind, IMAGE_SOURCES[kind].needs: getattr(args, kind)})
    images.update({k: getattr(args, k) for k in ("patients", "modalities", "url", "index") if getattr(args, k)})
    source = dict(source, images=images or None)
    if args.gdc:
        source["clinical"] = {"from": "gdc", "project": args.gdc, "url": args.gdc_url}
    source.update(
        {k: v for k in ("retries", "requests_per_second", "backoff", "workers") if (v := getattr(args, k)) is not None}
    )
    if not source.get("images") and not source.get("clinical"):
        flags = ", ".join(f"--{k}" for k in IMAGE_SOURCES)
        raise ValueError(f"nothing to download: give {flags} or --gdc (or --config with source:)")
    if source.get("images") and not root:
        raise ValueError("--dest (the folder the DICOM goes into) is needed for images")
    return source, root


def _download(args):
    from radflow.download import fetch_source

    source, root = _download_source(args)
    got = fetch_source(source, root, args.report, args.clinical_dir, log=lambda m: print(m, file=sys.stderr))
    table = got["images"]
    failed = 0
    if table is not None:
        counts = table["outcome"].value_counts()
        failed = counts.get("failed", 0)
        print(
            f"{len(table)} series: {counts.get('downloaded', 0)} downloaded, {counts.get('present', 0)} present "
            f"from an earlier run, {failed} failed -> {root}" + (f" (report {args.report})" if args.report else "")
        )
        for row in table[table["outcome"] == "failed"].itertuples():
            print(f"  failed: {row.series_uid} ({row.patient_id} {row.modality}): {row.reason}")
    for path in got["clinical"]:
        print(f"clinical -> {path}")
    return 1 if failed else 0


def _ibsi(args):
    from radflow.features.ibsi import conformance, summary

    _shipped(args, "settings", "pyradiomics/ibsi")
    table = conformance(args.reference_dir, args.out_dir, args.settings)
    for row in summary(table).itertuples():
        print(f"{row.dataset} ({row.mode}): {row.within_tolerance}/{row.features} features within tolerance")
    print(f"-> {args.out_dir}/conformance.csv")


def _verify(args):
    from radflow.run.provenance import verify

    report = verify(args.results)
    for path, was, now in report["changed"]:
        print(f"changed: {path} (SHA-256 {was} when the run wrote it, {now} now)")
    for path in report["missing"]:
        print(f"missing: {path}")
    for problem in report["settings"]:
        print(f"settings: {problem}")
    for path in report["unlisted"]:
        print(f"not made by this run: {path} (not in its manifest)")
    bad = len(report["changed"]) + len(report["missing"]) + len(report["settings"])
    print(
        f"{args.results}: {report['checked']} files checked against {args.results}/provenance/manifest.tsv: "
        + ("all as the run wrote them" if not bad else f"{bad} problem(s)")
        + (f"; {len(report['unlisted'])} file(s) not made by this run" if report["unlisted"] else "")
    )
    return 1 if bad else 0


ROI_NAMES_HELP = "ROI name aliases (default: radflow's shipped config/roi_names.yaml)"


def _shipped(args, attr: str, name: str) -> None:
    """A default of the command line: radflow's shipped config file (not one in the working directory)."""
    if getattr(args, attr, None) is None:
        from radflow.run.workflow_env import shipped_config

        setattr(args, attr, str(shipped_config(name)))


def build_parser() -> argparse.ArgumentParser:
    """The command line: each subcommand and its options (those a config key also sets default to the schema's)."""
    from radflow import __version__

    parser = argparse.ArgumentParser(prog="radflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"radflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    d = defaults()  # the config schema's, as settings: a command's option means what the config key means

    p = sub.add_parser("demo", help="write the synthetic demo cohort")
    p.add_argument("out_dir")
    p.set_defaults(func=_demo)

    p = sub.add_parser("index", help="index a DICOM tree")
    p.add_argument("dicom_root")
    p.add_argument("out_dir")
    p.add_argument("--roi-names", default=None, help=ROI_NAMES_HELP)
    p.add_argument(
        "--threads",
        type=int,
        default=d.index.threads,
        help=f"processes that read DICOM headers (config key index_threads; default {d.index.threads})",
    )
    p.add_argument(
        "--pet-fallback",
        choices=["bqml"],
        default=d.index.pet_fallback,
        help="keep BQML PET in Bq/ml when SUVbw cannot be computed (default: exclude it)",
    )
    p.add_argument("--modalities", nargs="+", default=list(d.index.modalities), choices=list(IMAGE_MODALITIES))
    p.add_argument("--series-selection", choices=["referenced", "all"], default=d.index.series_selection)
    p.add_argument("--manifest", default=None, help="an NBIA .tcia manifest to check the download against")
    p.set_defaults(func=_index)

    p = sub.add_parser("convert", help="one image series (a folder) to NIfTI + JSON sidecar")
    p.add_argument("series_dir")
    p.add_argument("out", help="OUT.nii.gz (the sidecar is written next to it as OUT.json)")
    p.add_argument(
        "--pet-fallback",
        choices=["bqml"],
        default=None,
        help="keep BQML PET in Bq/ml when SUVbw cannot be computed (default: refuse)",
    )
    p.set_defaults(func=_convert)

    p = sub.add_parser("masks", help="rasterise an RTSTRUCT's ROIs on an image series")
    p.add_argument("rtstruct")
    p.add_argument("image_series_dir")
    p.add_argument("out_dir")
    p.add_argument("--roi-names", default=None, help=ROI_NAMES_HELP)
    p.add_argument(
        "--union",
        action="store_true",
        help="also write the union of the instances of a standard ROI drawn more than once (<ROI>_union)",
    )
    p.add_argument(
        "--contour-overlap",
        choices=["even-odd", "union"],
        default=d.series.contour_overlap,
        help="contours of one plane that overlap without nesting: the overlap is outside the ROI (even-odd, "
        "the IBSI rule) or inside (union)",
    )
    p.set_defaults(func=_masks)

    p = sub.add_parser("clinical", help="GDC clinical files to one row per patient")
    p.add_argument("files", nargs="+", help="GDC clinical.tsv / follow_up.tsv, BCR Biotab, TCGA-CDR .xlsx")
    p.add_argument("--out", required=True)
    p.add_argument("--problems", default=None, help="write the problems found (TSV)")
    p.add_argument("--project", default=None, help="keep one TCGA project's patients (e.g. HNSC)")
    p.add_argument(
        "--format",
        choices=["gdc", "gdc_follow_up", "biotab", "cdr"],
        default=None,
        help="the files' format (default: detected from each file)",
    )
    p.set_defaults(func=_clinical)

    p = sub.add_parser("features", help="pyradiomics features of one image and a masks folder")
    p.add_argument("image", help="an image written by radflow convert (IMAGE.nii.gz with its IMAGE.json sidecar)")
    p.add_argument("masks_dir", help="a masks folder written by radflow masks (with its masks.json)")
    p.add_argument(
        "--settings",
        default=None,
        help="pyradiomics settings file (default: radflow's config/pyradiomics/<the image's modality>.yaml)",
    )
    p.add_argument("--out", required=True, help="the features table to write (CSV), one row per ROI")
    p.add_argument(
        "--feature-rois",
        default=d.features.feature_rois,
        help=f"standard, all or a comma-separated list of ROI names (config key feature_rois; default "
        f"{d.features.feature_rois}, as the workflow's)",
    )
    p.add_argument("--roi-names", default=None, help=ROI_NAMES_HELP)
    p.add_argument(
        "--max-roi-voxels",
        type=int,
        default=d.features.max_roi_voxels or 0,
        help=f"skip ROIs with more voxels than this after resampling (config key max_roi_voxels; default "
        f"{d.features.max_roi_voxels}, as the workflow's; 0: no limit)",
    )
    p.set_defaults(func=_features)

    p = sub.add_parser(
        "download",
        help="images from TCIA (NBIA API) or IDC, clinical data from the GDC API: resumable and verified",
    )
    p.add_argument("--config", default=None, help="take the source: block and dicom_root of this config")
    what = p.add_mutually_exclusive_group()
    for source in IMAGE_SOURCES.values():  # radflow.download.sources: --tcia, --manifest, --idc
        what.add_argument(f"--{source.name}", metavar=source.metavar, help=source.help)
    p.add_argument("--patients", nargs="+", default=None)
    p.add_argument("--modalities", nargs="+", default=None, help="e.g. CT RTSTRUCT (default: every series)")
    p.add_argument("--url", default=None, help="the NBIA API (or, for --idc, the S3 endpoint) instead of TCIA's")
    p.add_argument("--index", default=None, help="--idc: a parquet of IDC's series index (default: idc-index-data)")
    p.add_argument("--dest", default=None, help="the DICOM folder (dicom_root)")
    p.add_argument("--report", default=None, help="write the download report here (TSV)")
    p.add_argument("--gdc", metavar="PROJECT", default=None, help="clinical data of a GDC project (e.g. TCGA-HNSC)")
    p.add_argument("--gdc-url", default=None)
    p.add_argument("--clinical-dir", default="results/download/gdc")
    p.add_argument("--retries", type=int, default=None)
    p.add_argument("--requests-per-second", type=float, default=None)
    p.add_argument("--backoff", type=float, default=None, help="seconds before the first retry (doubles after)")
    p.add_argument("--workers", type=int, default=None, help="series fetched at once (default 4)")
    p.set_defaults(func=_download)

    p = sub.add_parser("ibsi", help="IBSI-1 conformance of radflow's extraction (digital phantom, CT phantom A-E)")
    p.add_argument(
        "reference_dir",
        help="the IBSI reference data (ibsi_1_digital_phantom, ibsi_1_ct_radiomics_phantom, reference_values_zrad)",
    )
    p.add_argument("out_dir")
    p.add_argument(
        "--settings",
        default=None,
        help="folder of the settings per dataset (default: radflow's config/pyradiomics/ibsi)",
    )
    p.set_defaults(func=_ibsi)

    p = sub.add_parser(
        "verify",
        help="check a results folder against the manifest of the run that wrote it (results/provenance/)",
        description="Re-hash every table, picture and settings copy a run listed in results/provenance/manifest.tsv "
        "and name each that changed or is missing; check that the features table's settings hash is the settings "
        "copy's. Exit 0 when all agree, 1 otherwise.",
    )
    p.add_argument("results", help="the results folder (results/)")
    p.set_defaults(func=_verify)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from radflow.config.check import ConfigError
    from radflow.download import DownloadError

    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, KeyError, DownloadError, ConfigError) as err:
        print(f"radflow {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
