"""Benchmark: RTSTRUCT rasterisation, radflow against plastimatch and rt-utils, on the same RTSTRUCTs.

For each case: wall time and peak memory of each tool's whole process (read the image series and the RTSTRUCT,
write every ROI's mask), and the Dice of every ROI between the tools. plastimatch and rt-utils are not radflow
dependencies (rt-utils pulls opencv): they live in a separate virtual environment, made on first use:

    .venv/bin/python benchmarks/masks_vs_tools.py [--tools-venv /tmp/radflow-tools] [--demo data/demo]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("RADFLOW_REFERENCE", REPO.parent / "shared" / "reference"))
TOOLS = ["numpy==1.26.4", "plastimatch==1.10.0", "rt-utils==1.2.7", "opencv-python-headless==4.11.0.86"]
RT_UTILS = """
import sys, numpy as np
from pathlib import Path
from rt_utils import RTStructBuilder
rt = RTStructBuilder.create_from(dicom_series_path=sys.argv[1], rt_struct_path=sys.argv[2])
for name in rt.get_roi_names():
    np.save(Path(sys.argv[3]) / f"{name}.npy", rt.get_roi_mask_by_name(name))
"""


def timed(cmd) -> tuple[float, float, str]:
    """(wall s, peak RSS MiB, stderr) of a whole process, from /usr/bin/time."""
    t = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "PEAK %M", *map(str, cmd)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    peak = re.findall(r"PEAK (\d+)", proc.stderr)
    return wall, (int(peak[-1]) / 1024 if peak else float("nan")), proc.stderr if proc.returncode else ""


def dice(a, b) -> float:
    a, b = a > 0, b > 0
    return 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _scores(tool: str, ours: dict, out: dict) -> list[str]:
    """The Dice of each of a tool's masks against radflow's, by original ROI name ("failed" where it wrote none)."""
    if tool == "radflow":
        return []
    scores = []
    for roi, ref in sorted(ours.items()):
        try:
            if tool == "plastimatch":
                other = sitk.GetArrayFromImage(sitk.ReadImage(str(out[tool] / f"{safe(roi)}.nii.gz")))
            else:
                other = np.load(out[tool] / f"{roi}.npy").transpose(2, 0, 1)
            scores.append(f"{dice(sitk.GetArrayFromImage(ref), other):.3f}")
        except (FileNotFoundError, RuntimeError, ValueError):
            scores.append("failed")
    return scores


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tools-venv", default="/tmp/radflow-tools")
    parser.add_argument("--demo", default="data/demo")
    args = parser.parse_args()
    venv = Path(args.tools_venv)
    if not (venv / "bin" / "plastimatch").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *TOOLS], check=True)
    ibsi = REFERENCE / "ibsi"
    sts = ibsi / "ibsi_validation" / "dicom" / "STS_001"
    cases = {
        "IBSI CT phantom (GTV-1)": (
            ibsi / "ibsi_1_ct_radiomics_phantom/dicom/image",
            next((ibsi / "ibsi_1_ct_radiomics_phantom/dicom/mask").iterdir()),
        ),
        "STS_001 CT": (sts / "CT/image", sts / "CT/mask/RS.dcm"),
        "STS_001 MR T1": (sts / "MR_T1/image", sts / "MR_T1/mask/RS.dcm"),
        "STS_001 PET": (sts / "PET/image", sts / "PET/mask/RS.dcm"),
    }
    demo = Path(args.demo) / "TCGA-HNSC" / "TCGA-00-0001"
    if demo.is_dir():
        cases["demo CT, 5 ROIs"] = (
            next(demo.glob("*/2.000000-CT*")),
            next(next(demo.glob("*/100.000000-RT*")).iterdir()),
        )
    tmp = Path(tempfile.mkdtemp(prefix="radflow-masks-bench-"))
    print(f"{'case':26s} {'tool':12s} {'time':>7s} {'peak MiB':>9s}  Dice against radflow per ROI")
    for name, (image_dir, rtstruct) in cases.items():
        out = {tool: tmp / safe(name) / tool for tool in ("radflow", "plastimatch", "rt-utils")}
        for d in out.values():
            d.mkdir(parents=True)
        runs = {
            "radflow": [
                Path(sys.executable).parent / "radflow",
                "masks",
                rtstruct,
                image_dir,
                out["radflow"],
                "--roi-names",
                REPO / "config" / "roi_names.yaml",
            ],
            "plastimatch": [
                venv / "bin" / "plastimatch",
                "convert",
                "--input",
                rtstruct,
                "--referenced-ct",
                image_dir,
                "--output-prefix",
                out["plastimatch"],
                "--prefix-format",
                "nii.gz",
            ],
            "rt-utils": [venv / "bin" / "python", "-c", RT_UTILS, image_dir, rtstruct, out["rt-utils"]],
        }
        results = {tool: timed(cmd) for tool, cmd in runs.items()}
        # radflow in-process: the same work without interpreter start-up and imports
        from radflow.dicom.convert import image_headers_in, series_grid
        from radflow.dicom.masks import write_masks
        from radflow.roi_names import load_aliases

        t = time.perf_counter()
        write_masks(
            [rtstruct],
            series_grid(image_headers_in(image_dir)),
            tmp / "inproc" / safe(name),
            load_aliases(REPO / "config" / "roi_names.yaml"),
        )
        inproc = time.perf_counter() - t
        # radflow's masks, by original ROI name
        ours = {
            m["roi_original"]: sitk.ReadImage(str(out["radflow"] / f"{m['label']}.nii.gz"))
            for m in json.loads((out["radflow"] / "masks.json").read_text())
        }
        for tool, (wall, peak, err) in results.items():
            status = "FAILED: " + err.strip().splitlines()[-2][:60] if err else " ".join(_scores(tool, ours, out))
            if tool == "radflow":
                status = f"(in-process, without start-up: {inproc:.2f} s)"
            print(f"{name:26s} {tool:12s} {wall:6.2f}s {peak:9.0f}  {status}")


if __name__ == "__main__":
    main()
