"""hladr: monocyte HLA-DR (AB/C) from FCS files, and the ImmunoSep phenotype call."""

__version__ = "0.1.0"

__all__ = ["__version__"]
