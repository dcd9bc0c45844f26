"""hladr.gating.gatingml."""
