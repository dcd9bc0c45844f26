"""Gating-ML 2.0 templates: ``engine`` is the public face; the private modules check, parse, compile,
cache and evaluate them."""
