"""hladr.fcs."""
