"""hladr.beads."""
