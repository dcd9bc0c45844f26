"""hladr.gating."""
