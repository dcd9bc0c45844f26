"""Monocyte gating: the automated gate and its self-check (``automated``), and Gating-ML 2.0 templates
(``gatingml.engine``)."""
