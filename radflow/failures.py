"""Which errors are the data's fault, and which the machine's.

A broken series or ROI is recorded as a failed row and the cohort goes on: rerunning would fail the same way.
A full disk, a file-size limit, a read-only or vanished folder, or too little memory is not the data's fault:
recording it as a failed row would keep a wrong result as if it were done. Those errors must fail the job, so
that Snakemake deletes its outputs, retries it (with more memory on a cluster), and a rerun redoes it.
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import struct
from contextlib import contextmanager
from pathlib import Path

MACHINE_ERRNOS = {
    errno.ENOSPC,  # no space left on device
    errno.EFBIG,  # file too large (ulimit -f, quotas on some file systems)
    errno.EDQUOT,  # disk quota exceeded
    errno.EROFS,  # read-only file system
    errno.EACCES,  # permission denied
    errno.EPERM,
    errno.EIO,  # I/O error
    errno.ENOMEM,
    errno.ESTALE,  # stale NFS handle
}


def is_machine_error(err: BaseException) -> bool:
    """True for errors of the machine rather than of the data (see the module's docstring)."""
    if isinstance(err, (MemoryError, KeyboardInterrupt, SystemExit, OutputError)):
        return True
    return isinstance(err, OSError) and err.errno in MACHINE_ERRNOS


PARTIAL = ".partial-"


@contextmanager
def atomic_outputs(*paths):
    """Temporary paths next to each output (files or folders; same name behind a ".partial-" prefix, so the
    extension stays); when the block ends without an error each is renamed onto its output, otherwise removed.

    A job killed half way (SIGKILL, a reboot, a node lost) leaves only .partial-* names behind, never a truncated
    file under the output's name. Snakemake's own incomplete markers are not enough: Snakemake 9.27.1 does not
    rerun a job downstream of the index checkpoint whose output a kill left half-written, even with
    --rerun-incomplete (a truncated features parquet was taken as done in tests/test_kill_resume.py)."""
    final = [Path(p) for p in paths]
    temporary = [p.with_name(PARTIAL + p.name) for p in final]

    def remove(p: Path):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()

    for t in temporary:
        t.parent.mkdir(parents=True, exist_ok=True)
        remove(t)  # left by a killed run
    try:
        yield [str(t) for t in temporary]
    except BaseException:
        for t in temporary:
            remove(t)
        raise
    for t, f in zip(temporary, final):
        if not t.exists():
            raise OutputError(errno.EIO, f"cannot write {f}: the job wrote nothing")
        remove(f)  # (Snakemake may have created an output folder)
        os.replace(t, f)


class OutputError(OSError):
    """An output file could not be written (SimpleITK reports a full disk as a RuntimeError; this says OSError)."""


def write_image(image, path, compress: bool = True) -> None:
    """sitk.WriteImage, checked: a failure to write raises OutputError (a machine error: the job must fail).

    SimpleITK's NIfTI writer only prints a full disk or a file-size limit ("NWAD: wrote only 0 of … bytes")
    and returns as if it had succeeded, so the file is checked afterwards: its length (or, gzipped, the
    uncompressed length in the gzip trailer) must be the header's vox_offset plus the voxel data."""
    import SimpleITK as sitk

    path = Path(path)
    try:
        sitk.WriteImage(image, str(path), useCompression=compress)
    except RuntimeError as err:
        raise OutputError(errno.EIO, f"cannot write {path}: {str(err).strip().splitlines()[-1]}") from err
    if path.name.endswith((".nii", ".nii.gz")):
        data = image.GetNumberOfPixels() * image.GetNumberOfComponentsPerPixel() * image.GetSizeOfPixelComponent()
        _check_nifti_length(path, data)


def _check_nifti_length(path: Path, data_bytes: int) -> None:
    def fail(why):
        raise OutputError(errno.EIO, f"cannot write {path}: {why} (disk full or a file-size limit?)")

    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        fail("nothing was written")
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as fp:
            header = fp.read(348)
    except (OSError, EOFError) as err:
        fail(f"the file cannot be read back: {err}")
    if len(header) < 348:
        fail("the header is incomplete")
    order = "<" if struct.unpack("<i", header[:4])[0] == 348 else ">"
    expected = int(struct.unpack(order + "f", header[108:112])[0]) + data_bytes
    if path.name.endswith(".gz"):
        with open(path, "rb") as fp:
            fp.seek(-4, os.SEEK_END)
            isize = struct.unpack("<I", fp.read(4))[0]
        if isize != expected % 2**32:
            fail(f"the gzip stream is incomplete ({size} bytes on disk)")
    elif size < expected:
        fail(f"{size} of {expected} bytes written")
