"""Shared fixtures: the real FCS corpus location (skips cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def corpus_dir() -> Path | None:
    """``$HLADR_CORPUS`` or ``../shared/realdata`` beside the repository, if present."""
    env = os.environ.get("HLADR_CORPUS")
    p = Path(env) if env else REPO.parent / "shared" / "realdata"
    return p if p.is_dir() else None


@pytest.fixture(scope="session")
def corpus() -> Path:
    p = corpus_dir()
    if p is None:
        pytest.skip("real FCS corpus not found (set HLADR_CORPUS or provide ../shared/realdata)")
    return p


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Tests never write into the user's ~/.cache (parsed Gating-ML templates)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HLADR_CACHE", str(tmp_path_factory.mktemp("hladr_cache")))
        yield
