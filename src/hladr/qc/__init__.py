"""hladr.qc."""
