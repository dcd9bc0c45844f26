"""Shared fixtures: the real FCS corpus location (skips cleanly when absent)."""

from __future__ import annotations

import os
import shutil
import tempfile
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


# Every `hladr run` keeps its results in a store ($HLADR_DB, else ~/.local/share/hladr): tests never write into
# the user's, and each test and each fixture wider than a test (a module's or the session's run) has its own, so
# that two runs of different tubes under the same sample ids (P001, ...) never meet as two versions of one sample.
@pytest.fixture(autouse=True)
def _private_store(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HLADR_DB", str(tmp_path_factory.mktemp("hladr_store") / "hladr.sqlite"))


def _new_store(config) -> str:
    folder = tempfile.mkdtemp(prefix="hladr_store_")
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    return os.path.join(folder, "hladr.sqlite")


class _StorePerFixture:
    """A plugin, not a conftest hook: a conftest's hooks do not see the session's fixtures."""

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        """A fixture of a module, class or the session is made with a results store of its own."""
        if fixturedef.scope == "function":
            return (yield)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HLADR_DB", _new_store(request.config))
            return (yield)


def pytest_configure(config):
    mp = pytest.MonkeyPatch()
    mp.setenv("HLADR_DB", _new_store(config))  # outside any fixture too, never the user's store
    config.add_cleanup(mp.undo)
    config.pluginmanager.register(_StorePerFixture(), "hladr-store-per-fixture")
