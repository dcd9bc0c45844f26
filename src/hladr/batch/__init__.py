"""hladr.batch."""
