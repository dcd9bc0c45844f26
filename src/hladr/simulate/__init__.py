"""hladr.simulate."""
