# Getting the data (config key source:, off by default): images into dicom_root, clinical data from the GDC API.
# Both need the internet: on a cluster they run where snakemake runs (localrules in the Snakefile).
if config["source"]["images"]:

    localrules:
        download_images,

    rule download_images:
        output:
            report("results/download/images.tsv", caption="../report/download.rst", category="Index"),
        log:
            "logs/download_images.log",
        conda:
            CONDA_ENV
        params:
            # what is downloaded (a change downloads again: what is there already is kept); how (retries, rate) is
            # read from the config by the script, so that changing it redoes nothing
            images=config["source"]["images"],
            root=config["dicom_root"],
        script:
            "../scripts/download.py"


if config["source"]["clinical"]:

    localrules:
        download_clinical,

    rule download_clinical:
        output:
            # from: gdc, the portal's export and the GDC data release; from: table, the spreadsheet and its SHA-256
            **(
                dict(
                    clinical=f"{GDC_DIR}/clinical.tsv",
                    follow_up=f"{GDC_DIR}/follow_up.tsv",
                    release=f"{GDC_DIR}/clinical.json",
                )
                if config["source"]["clinical"]["from"] == "gdc"
                else dict(table=CLINICAL_ENTRIES[-1]["path"], release=f"{TABLE_DIR}/clinical.json")
            ),
        log:
            "logs/download_clinical.log",
        conda:
            CONDA_ENV
        params:
            clinical=config["source"]["clinical"],
        script:
            "../scripts/download.py"
