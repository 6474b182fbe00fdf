"""radflow: radiomics from TCIA DICOM cohorts, joined with GDC clinical outcomes."""

__version__ = "0.1.0"


def _arrow_without_thread_pools() -> None:
    """pyarrow's thread pools can abort the process as it exits, after its work is done ("terminate called without
    an active exception", apache/arrow#34314): measured here in 3 of 60 runs of a script reading three index
    parquets, and in a CI run where it failed the index job. With one CPU and one I/O thread, 0 of 260 runs aborted.
    radflow's parquet tables are small (the index of 270,376 files is read in about a second either way)."""
    try:
        import pyarrow
    except ImportError:  # pragma: no cover (a dependency)
        return
    pyarrow.set_cpu_count(1)
    pyarrow.set_io_thread_count(1)


_arrow_without_thread_pools()
