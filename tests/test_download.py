"""The download step against local servers (tests/servers.py): NBIA and GDC over HTTP on 127.0.0.1, IDC's buckets
in moto's S3 server through s5cmd. Nothing here touches the internet."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REFERENCE, REPO
from servers import FakeArchive, S3Server, dicom_catalog, gdc_cases

from radflow.cohort.clinical import clinical_table
from radflow.download import Client, DownloadError, download_clinical, download_images
from radflow.download.idc import list_objects

COLLECTION = "TCGA-HNSC"
THCA = REFERENCE / "tcga-clinical" / "new_format_ArjunCodess_TCGA-THCA"


@pytest.fixture(scope="module")
def catalog(demo_dir):
    return dicom_catalog(demo_dir / COLLECTION, COLLECTION)


def quick_client(**kw) -> Client:
    return Client(backoff=0.0, requests_per_second=0, **kw)


def md5s(folder: Path) -> set[str]:
    return {hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def served_md5s(entry) -> set[str]:
    return {hashlib.md5(d).hexdigest() for _, d in entry["files"]}


def patients_of(catalog, n):
    return sorted({s["meta"]["PatientID"] for s in catalog.values()})[:n]


def test_collection_download_is_complete_verified_and_laid_out_like_nbia(catalog, tmp_path):
    patients = patients_of(catalog, 2)
    wanted = {u: s for u, s in catalog.items() if s["meta"]["PatientID"] in patients}
    with FakeArchive(catalog) as server:
        source = {"from": "tcia", "collection": COLLECTION, "patients": patients, "url": server.url}
        report = download_images(source, tmp_path / "dicom", tmp_path / "images.tsv", quick_client(), log=lambda m: 0)
        assert server.requests("/getSeries") == len(patients)
        assert server.requests("/getImageWithMD5Hash") == len(wanted)
        assert set(report["outcome"]) == {"downloaded"} and set(report["series_uid"]) == set(wanted)
        for row in report.itertuples():
            meta = wanted[row.series_uid]["meta"]
            folder = tmp_path / "dicom" / row.path
            # NBIA's classic layout: Collection/PatientID/StudyInstanceUID/SeriesInstanceUID
            assert folder.relative_to(tmp_path / "dicom").parts == (
                COLLECTION,
                meta["PatientID"],
                meta["StudyInstanceUID"],
                row.series_uid,
            )
            assert md5s(folder) == served_md5s(wanted[row.series_uid]), row.series_uid
            assert row.files == meta["ImageCount"] and row.checksums == f"md5 of {row.files} files"
        written = pd.read_csv(tmp_path / "images.tsv", sep="\t", dtype=str)
        assert len(written) == len(wanted)
        # nothing is left but the series folders and the records (the index skips the hidden state folder)
        assert not (tmp_path / "dicom" / ".radflow-download" / "partial").exists()

        # a second run asks for the list only
        again = download_images(source, tmp_path / "dicom", None, quick_client(), log=lambda m: 0)
        assert set(again["outcome"]) == {"present"}
        assert server.requests("/getImageWithMD5Hash") == len(wanted)


def test_the_index_reads_a_download_like_the_original(catalog, demo_dir, tmp_path):
    from radflow.index import build_index

    patients = patients_of(catalog, 2)
    with FakeArchive(catalog) as server:
        source = {"from": "tcia", "collection": COLLECTION, "patients": patients, "url": server.url}
        download_images(source, tmp_path / "dicom", None, quick_client(), log=lambda m: 0)
    mine = build_index(tmp_path / "dicom", tmp_path / "index", REPO / "config" / "roi_names.yaml", threads=1)
    original = build_index(demo_dir / COLLECTION, tmp_path / "index0", REPO / "config" / "roi_names.yaml", threads=1)
    cols = ["series_uid", "modality", "n_files", "convert"]
    theirs = original["series"][original["series"]["patient_id"].isin(patients)]
    pd.testing.assert_frame_equal(
        mine["series"][cols].sort_values("series_uid").reset_index(drop=True),
        theirs[cols].sort_values("series_uid").reset_index(drop=True),
    )
    assert len(mine["links"]) == len(original["links"][original["links"]["patient_id"].isin(patients)])


def test_busy_server_and_dropped_connection_are_retried(catalog, tmp_path):
    patients = patients_of(catalog, 1)
    uids = sorted(u for u, s in catalog.items() if s["meta"]["PatientID"] in patients)
    with FakeArchive(catalog) as server:
        server.busy = 3  # 429 / 503 with Retry-After: 0
        server.drop[uids[0]] = 1  # the first download of this series stops half way
        source = {"from": "tcia", "collection": COLLECTION, "patients": patients, "url": server.url}
        report = download_images(source, tmp_path, None, quick_client(retries=3), log=lambda m: 0).set_index(
            "series_uid"
        )
        assert set(report["outcome"]) == {"downloaded"}
        assert report.loc[uids[0], "attempts"] == 2 and server.requests("/getImageWithMD5Hash", uids[0]) == 2
        assert (report.drop(uids[0])["attempts"] == 1).all()
        assert md5s(tmp_path / report.loc[uids[0], "path"]) == served_md5s(catalog[uids[0]])


def test_a_corrupt_series_is_retried_then_reported_and_the_rest_completes(catalog, tmp_path):
    patients = patients_of(catalog, 1)
    uids = sorted(u for u, s in catalog.items() if s["meta"]["PatientID"] in patients)
    bad = uids[1]
    with FakeArchive(catalog) as server:
        server.corrupt = {bad}
        source = {"from": "tcia", "collection": COLLECTION, "patients": patients, "url": server.url}
        report = download_images(source, tmp_path, tmp_path / "r.tsv", quick_client(retries=2), log=lambda m: 0)
        report = report.set_index("series_uid")
        assert server.requests("/getImageWithMD5Hash", bad) == 3  # retries + 1
        assert report.loc[bad, "outcome"] == "failed" and report.loc[bad, "attempts"] == 3
        assert "corrupt" in report.loc[bad, "reason"] or "MD5" in report.loc[bad, "reason"]
        assert bad in report.loc[bad, "reason"]
        assert (report.drop(bad)["outcome"] == "downloaded").all()
        assert not any(p.name == bad for p in tmp_path.rglob("*") if p.is_dir())


def test_an_unknown_collection_is_named(catalog, tmp_path):
    with FakeArchive(catalog) as server:
        with pytest.raises(DownloadError, match="no series for collection 'TCGA-XXXX'"):
            download_images(
                {"from": "tcia", "collection": "TCGA-XXXX", "url": server.url},
                tmp_path,
                None,
                quick_client(),
                log=lambda m: 0,
            )


def test_a_manifest_downloads_its_series(catalog, tmp_path):
    uids = sorted(catalog)[:3]
    manifest = tmp_path / "cohort.tcia"
    manifest.write_text(
        "downloadServerUrl=https://nbia.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet\n"
        "includeAnnotation=true\nnoOfrRetry=4\ndatabasedOn=2026/11/30\nmanifestVersion=3.0\n"
        "ListOfSeriesToDownload=\n" + "\n".join(uids) + "\n"
    )
    with FakeArchive(catalog) as server:
        source = {"from": "manifest", "manifest": str(manifest), "url": server.url}
        report = download_images(source, tmp_path / "dicom", None, quick_client(), log=lambda m: 0)
        assert sorted(report["series_uid"]) == uids and set(report["outcome"]) == {"downloaded"}
        assert set(report["collection"]) == {COLLECTION}
        assert server.requests("/getSeriesMetaData") == 3


def test_a_killed_download_resumes_without_fetching_finished_series_again(catalog, tmp_path):
    """radflow download (4 series at once) is killed while one series' answer is held back, after the others are
    done; the second run asks for the held-back series only."""
    patients = patients_of(catalog, 2)
    uids = sorted(
        (u for u, s in catalog.items() if s["meta"]["PatientID"] in patients),
        key=lambda u: (catalog[u]["meta"]["PatientID"], catalog[u]["meta"]["StudyInstanceUID"], u),
    )  # the listing's order
    stalled = uids[len(uids) // 2]
    done = tmp_path / "dicom" / ".radflow-download" / "done"
    cmd = [
        sys.executable,
        "-m",
        "radflow.cli",
        "download",
        "--tcia",
        COLLECTION,
        "--patients",
        *patients,
        "--dest",
        str(tmp_path / "dicom"),
        "--report",
        str(tmp_path / "r.tsv"),
        "--backoff",
        "0",
        "--workers",
        "4",
    ]
    with FakeArchive(catalog) as server:
        server.slow[stalled] = 60
        proc = subprocess.Popen([*cmd, "--url", server.url], stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline and not (
            server.requests("/getImageWithMD5Hash", stalled) and len(list(done.glob("*.json"))) == len(uids) - 1
        ):
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert len(list(done.glob("*.json"))) == len(uids) - 1 and not (tmp_path / "r.tsv").exists()
        server.slow.clear()
        finished = subprocess.run([*cmd, "--url", server.url], capture_output=True, text=True)
        assert finished.returncode == 0, finished.stderr
        report = pd.read_csv(tmp_path / "r.tsv", sep="\t").set_index("series_uid")
        assert list(report.index) == uids  # whatever order they finished in
        assert report.loc[stalled, "outcome"] == "downloaded"
        assert (report.drop(stalled)["outcome"] == "present").all()
        for uid in uids:  # each series asked for once, the held-back one twice (its first answer never came)
            assert server.requests("/getImageWithMD5Hash", uid) == (2 if uid == stalled else 1), uid
        assert f"{len(uids)} series: 1 downloaded, {len(uids) - 1} present" in finished.stdout
        assert md5s(tmp_path / "dicom" / report.loc[stalled, "path"]) == served_md5s(catalog[stalled])


def test_gdc_cases_give_the_same_clinical_table_as_the_portal_export(tmp_path):
    """The served cases are built from the real GDC portal export (TCGA-THCA, 507 cases, dotted names); the
    download, written back as the portal's clinical.tsv and follow_up.tsv, must give the same clinical table."""
    cases = gdc_cases(THCA / "clinical.tsv", THCA / "follow_up.tsv")
    assert len(cases) == 507
    with FakeArchive({}, cases, release="Data Release 44.0") as server:
        paths = download_clinical(
            {"from": "gdc", "project": "TCGA-THCA", "url": server.url}, tmp_path, quick_client(), log=lambda m: 0
        )
        assert server.requests("/cases") == 6  # 100 cases a page
    mine = clinical_table(paths)
    theirs = clinical_table([THCA / "clinical.tsv", THCA / "follow_up.tsv"])
    pd.testing.assert_frame_equal(mine, theirs)
    assert mine["os_event"].sum() == 16 and len(mine) == 507
    release = json.loads((tmp_path / "clinical.json").read_text())
    assert release["data_release"] == "Data Release 44.0" and release["cases"] == 507


def test_gdc_project_without_cases_is_named(tmp_path):
    with FakeArchive({}, []) as server:
        with pytest.raises(DownloadError, match="no cases in project 'TCGA-HNSC'"):
            download_clinical(
                {"from": "gdc", "project": "HNSC", "url": server.url}, tmp_path, quick_client(), log=lambda m: 0
            )


def test_idc_series_through_s5cmd_from_a_local_s3(catalog, tmp_path):
    patients = patients_of(catalog, 1)
    mine = {u: s for u, s in catalog.items() if s["meta"]["PatientID"] in patients}
    with S3Server() as s3:
        rows = s3.publish("idc-open-data", mine)
        index = tmp_path / "idc_index.parquet"
        short = dict(rows[0], SeriesInstanceUID="1.2.3.4.5", instanceCount=rows[0]["instanceCount"] + 1)
        pd.DataFrame(rows + [short]).to_parquet(index)
        source = {"from": "idc", "collection": "tcga_hnsc", "index": str(index), "url": s3.url}
        report = download_images(source, tmp_path / "dicom", None, quick_client(retries=1), log=lambda m: 0)
        # the listing (S3's ListObjectsV2 over HTTP) page by page: a 72-file CT in pages of 5
        ct = next(r for r in rows if r["instanceCount"] > 10)
        listed = list_objects(quick_client(), source, ct["series_aws_url"], page=5)
        assert len(listed) == ct["instanceCount"] and all(len(o["etag"].strip('"')) == 32 for o in listed.values())
    report = report.set_index("series_uid")
    assert report.loc["1.2.3.4.5", "outcome"] == "failed"  # the index announces one file more than the bucket has
    assert "the source lists" in report.loc["1.2.3.4.5", "reason"]
    ok = report.drop("1.2.3.4.5")
    assert set(ok["outcome"]) == {"downloaded"} and set(ok.index) == set(mine)
    for uid, row in ok.iterrows():
        assert md5s(tmp_path / "dicom" / row["path"]) == served_md5s(mine[uid])
        assert row["checksums"] == f"md5 of {row['files']} files (S3 ETag)"


# ------------------------------------------------------------------------------------------------ the workflow
@pytest.mark.workflow
def test_from_an_empty_folder_to_the_modelling_table_through_the_local_servers(catalog, demo_dir, demo_run, tmp_path):
    """source: images from the NBIA server (two of the demo's patients, CT and RTSTRUCT), clinical from the GDC
    server (cases built from the demo's clinical.tsv): the modelling table's rows equal the demo run's for them.
    Then the same project with a collection's clinical spreadsheet from the server and a local covariate table, both
    read through column mappings, then without clinical data (the cohort accounting only; the outcome tables of
    before removed)."""
    from conftest import make_project, run_snakemake

    reference = pd.read_csv(demo_run / "results" / "modelling_table.csv").set_index("patient_id")
    patients = sorted(reference.index)[:2]
    with FakeArchive(catalog, gdc_cases(demo_dir / "clinical.tsv")) as server:
        source = dict(
            images={
                "from": "tcia",
                "collection": COLLECTION,
                "patients": patients,
                "modalities": ["CT", "RTSTRUCT"],
                "url": server.url,
            },
            clinical={"from": "gdc", "project": "TCGA-HNSC", "url": server.url},
            retries=2,
            requests_per_second=20,
            backoff=0,
        )
        project = make_project(
            tmp_path / "project",
            demo_dir,
            demo_cohort=None,
            dicom_root="data/dicom",
            clinical=[],
            source=source,
            qc_overlays="none",
        )
        proc = run_snakemake(project)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert server.requests("/getImageWithMD5Hash") == sum(
            1
            for s in catalog.values()
            if s["meta"]["PatientID"] in patients and s["meta"]["Modality"] in ("CT", "RTSTRUCT")
        )
        results = project / "results"
        report = pd.read_csv(results / "download" / "images.tsv", sep="\t")
        assert set(report["outcome"]) == {"downloaded"} and set(report["patient_id"]) == set(patients)
        table = pd.read_csv(results / "modelling_table.csv").set_index("patient_id")
        assert sorted(table.index) == patients
        # CT and RTSTRUCT were downloaded, no RTDOSE: the dose columns (model.dose) are empty here
        dose = [c for c in table.columns if c.startswith("dose_")]
        assert dose and table[dose].isna().all().all()
        expected = reference.loc[patients, table.columns].drop(columns=dose)
        pd.testing.assert_frame_equal(table.drop(columns=dose), expected)
        assert json.loads((results / "download" / "gdc" / "clinical.json").read_text())["cases"] == 9
        listed = set(pd.read_csv(results / "provenance" / "manifest.tsv", sep="\t")["path"])
        assert {"download/images.tsv", "download/gdc/clinical.json", "download/gdc/clinical.tsv"} <= listed

        # a collection's own clinical spreadsheet, downloaded (source.clinical from: table) and read with its column
        # mapping (months, words for events), and a local table of one covariate of its own (clinical: entry)
        clinical = pd.read_csv(demo_run / "results" / "clinical.csv").set_index("patient_id").loc[patients]
        sheet = pd.DataFrame(
            {
                "Case": patients,
                "Survival.months": clinical["os_days"] / (365.25 / 12),
                "Status": clinical["os_event"].map({1: "Dead", 0: "Alive"}),
            }
        )
        server.files["Outcomes%20v3.csv"] = sheet.to_csv(index=False).encode()
        pd.DataFrame({"Case": patients, "Arm": ["A", "B"]}).to_csv(project / "arms.csv", index=False)
        config = yaml.safe_load((project / "config" / "config.yaml").read_text())
        config["source"]["clinical"] = {
            "from": "table",
            "url": f"{server.url}/files/Outcomes%20v3.csv",
            "columns": {"patient_id": "Case", "os_days": "Survival.months", "os_event": "Status"},
            "time_unit": "months",
        }
        config["clinical"] = [{"path": "arms.csv", "columns": {"patient_id": "Case"}, "covariates": {"arm": "Arm"}}]
        (project / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        proc = run_snakemake(project, "results/modelling_table.csv")
        assert proc.returncode == 0, proc.stderr[-4000:]
    assert "rule series" not in proc.stdout + proc.stderr  # the images and features stand
    assert (results / "download" / "table" / "Outcomes_v3.csv").read_bytes() == server.files["Outcomes%20v3.csv"]
    mapped = pd.read_csv(results / "modelling_table.csv").set_index("patient_id")
    assert list(mapped["arm"]) == ["A", "B"]
    assert (mapped["os_event"] == reference.loc[patients, "os_event"]).all()
    assert mapped["os_days"].to_numpy() == pytest.approx(reference.loc[patients, "os_days"].to_numpy(), abs=1e-6)
    features = [c for c in reference.columns if c.startswith("original_")]
    pd.testing.assert_frame_equal(mapped[features], reference.loc[patients, features])

    # no clinical data at all
    config["clinical"], config["source"]["clinical"] = [], None
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = run_snakemake(project)
    assert proc.returncode == 0, proc.stderr[-4000:]
    cohort = pd.read_csv(results / "cohort.tsv", sep="\t")
    assert set(cohort["patient_id"]) == set(patients) and not cohort["in_modelling_table"].any()
    assert set(cohort["reason"]) == {"no clinical data in this run (clinical: [] and no source.clinical)"}
    assert not (results / "modelling_table.csv").exists() and not (results / "survival").exists()
    assert (results / "features.parquet").is_file()


def test_real_dicom_from_scanners_and_planning_systems_comes_through_unchanged(tmp_path):
    """The real DICOM of ../shared/reference/real (a Varian planning CT and RTSTRUCT, sarcoma CT/MR/PET with their
    structure sets, a QIN PET with a DICOM SEG), served as three collections: every file arrives byte for byte, and
    the index of the download equals the index of the original (series, files, conversion, links, ROIs)."""
    from radflow.index import build_index

    real = REFERENCE / "real"
    if not real.is_dir():
        pytest.skip(f"{real} is not on this machine")
    collections = {
        "mirp_nsclc_lung1_001": "NSCLC-Radiomics",
        "ibsi_validation_sts": "Soft-tissue-Sarcoma",
        "mirp_qin_headneck_0139_pet_seg": "QIN-HEADNECK",
    }
    catalog = {}
    for folder, name in collections.items():
        catalog.update(dicom_catalog(real / folder, name))
    with FakeArchive(catalog) as server:
        for name in collections.values():
            report = download_images(
                {"from": "tcia", "collection": name, "url": server.url},
                tmp_path / "dicom",
                None,
                quick_client(),
                log=lambda m: 0,
            )
            assert set(report["outcome"]) == {"downloaded"}, report["reason"].tolist()
            for row in report.itertuples():
                assert md5s(tmp_path / "dicom" / row.path) == served_md5s(catalog[row.series_uid])
    roi_names = REPO / "config" / "roi_names.yaml"
    mine = build_index(tmp_path / "dicom", tmp_path / "index", roi_names, threads=2)
    theirs = build_index(real, tmp_path / "index0", roi_names, threads=2)
    cols = ["series_uid", "patient_id", "modality", "n_files", "convert"]
    assert len(mine["series"]) == len(catalog)
    pd.testing.assert_frame_equal(
        mine["series"][cols].sort_values("series_uid").reset_index(drop=True),
        theirs["series"][cols].sort_values("series_uid").reset_index(drop=True),
    )
    for table, keys in (
        ("links", ["source_series_uid", "image_series_uid", "relation"]),
        ("rois", ["rtstruct_series_uid", "roi_original", "roi", "n_contours", "z_min", "z_max"]),
    ):
        a, b = mine[table], theirs[table]
        assert len(a) and sorted(map(tuple, a[keys].to_numpy())) == sorted(map(tuple, b[keys].to_numpy())), table


def test_radflow_download_reads_the_configs_source_block(catalog, tmp_path):
    """`radflow download --config` takes source: and dicom_root from the config the workflow runs with; the config
    check names a source block that cannot work."""
    from radflow.cli import main
    from radflow.config.check import ConfigError, check_config

    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    patient = patients_of(catalog, 1)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(demo_cohort=None, dicom_root=str(tmp_path / "dicom"), clinical=[])
    config["roi_names"] = str(REPO / "config" / "roi_names.yaml")
    config["pyradiomics_settings"] = str(REPO / "config" / "pyradiomics")
    config["source"]["images"] = {"from": "tcia", "patients": patient}
    with pytest.raises(ConfigError, match="source.images.from = 'tcia' needs source.images.collection"):
        check_config(dict(config, source=dict(config["source"])), schema, workdir=tmp_path, settings=False)
    with FakeArchive(catalog) as server:
        config["source"]["images"].update(collection=COLLECTION, url=server.url)
        config["source"].update(backoff=0, requests_per_second=100)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        assert main(["download", "--config", str(tmp_path / "config.yaml"), "--report", str(tmp_path / "r.tsv")]) == 0
        server.corrupt = {sorted(u for u, s in catalog.items() if s["meta"]["PatientID"] == patient[0])[0]}
        (tmp_path / "dicom2").mkdir()
        failed = main(
            [
                "download",
                "--config",
                str(tmp_path / "config.yaml"),
                "--dest",
                str(tmp_path / "dicom2"),
                "--retries",
                "0",
            ]
        )
    report = pd.read_csv(tmp_path / "r.tsv", sep="\t")
    assert set(report["patient_id"]) == set(patient) and set(report["outcome"]) == {"downloaded"}
    assert all((tmp_path / "dicom" / p).is_dir() for p in report["path"])
    assert failed == 1  # a failed series: the command says so in its exit status


def test_a_clinical_table_whose_mapping_does_not_fit_is_named(tmp_path):
    with FakeArchive({}) as server:
        server.files["lung1.csv"] = b"PatientID,Survival.time,deadstatus.event\nLUNG1-001,2165,1\nLUNG1-002,155,maybe\n"
        source = {"from": "table", "url": f"{server.url}/files/lung1.csv"}
        mapping = {"patient_id": "PatientID", "os_days": "Survival.time", "os_event": "deadstatus.event"}
        with pytest.raises(DownloadError, match=r"lung1.csv: column 'deadstatus.event' holds 'maybe', not an event"):
            download_clinical(dict(source, columns=mapping), tmp_path, quick_client(), log=lambda m: 0)
        paths = download_clinical(
            dict(source, columns=mapping, event_values={"maybe": 0}), tmp_path, quick_client(), log=lambda m: 0
        )
    table = clinical_table([{"path": str(paths[0]), "columns": mapping, "event_values": {"maybe": 0}}])
    assert list(table["os_event"]) == [1, 0] and list(table["os_days"]) == [2165, 155]
    record = json.loads((tmp_path / "clinical.json").read_text())
    assert record["sha256"] == hashlib.sha256(paths[0].read_bytes()).hexdigest() and record["rows"] == 2
