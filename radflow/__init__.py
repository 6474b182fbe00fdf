"""radflow: radiomics from TCIA DICOM cohorts, joined with GDC clinical outcomes."""

__version__ = "0.1.0"
