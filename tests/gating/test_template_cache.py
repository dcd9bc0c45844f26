"""The Gating-ML template cache: the shell chooses its folder; the core keeps nothing on disk without one.

``load_template(path, cache_dir=...)`` keeps the parsed template (``<key>.json``) and the compiled
arrays of its gates (``<key>.static.npz``) directly in the folder given; with ``cache_dir=None``
it reads and writes nothing but the template. The ``hladr`` command passes
``$HLADR_CACHE/templates``, else ``~/.cache/hladr/templates`` (as before the core stopped choosing).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hladr.cli import main
from hladr.events import Events
from hladr.fcs.write import write_fcs
from hladr.gating.gatingml import _parse, _static, _static_cache
from hladr.gating.gatingml._cache import cache_key
from hladr.gating.gatingml.engine import apply_monocyte_template, load_template

pytestmark = pytest.mark.filterwarnings("error")

_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
<gating:RectangleGate gating:id="Cells">
  <gating:dimension gating:compensation-ref="uncompensated" gating:min="30000">
    <data-type:fcs-dimension data-type:name="FSC-A"/></gating:dimension>
</gating:RectangleGate>
<gating:PolygonGate gating:id="Monocytes" gating:parent_id="Cells">
  <gating:dimension gating:compensation-ref="uncompensated"><data-type:fcs-dimension data-type:name="FL2-A"/>
  </gating:dimension>
  <gating:dimension gating:compensation-ref="uncompensated"><data-type:fcs-dimension data-type:name="SSC-A"/>
  </gating:dimension>
  <gating:vertex><gating:coordinate data-type:value="5000"/>
    <gating:coordinate data-type:value="20000"/></gating:vertex>
  <gating:vertex><gating:coordinate data-type:value="90000"/>
    <gating:coordinate data-type:value="20000"/></gating:vertex>
  <gating:vertex><gating:coordinate data-type:value="90000"/>
    <gating:coordinate data-type:value="120000"/></gating:vertex>
  <gating:vertex><gating:coordinate data-type:value="5000"/>
    <gating:coordinate data-type:value="120000"/></gating:vertex>
</gating:PolygonGate>
</gating:Gating-ML>
"""

#        FSC-A    FSC-H    SSC-A    CD45    CD14    HLA-DR PE
_ROWS = [
    [80000, 70000, 60000, 10000, 20000, 500],   # monocyte
    [85000, 74000, 50000, 10000, 30000, 800],   # monocyte
    [10000, 9000, 60000, 10000, 20000, 500],    # debris: not a cell
    [80000, 70000, 60000, 10000, 1000, 500],    # CD14-negative
    [80000, 70000, 150000, 10000, 20000, 500],  # granulocyte SSC
]
_PNN = ("FSC-A", "FSC-H", "SSC-A", "FL1-A", "FL2-A", "FL3-A")
_PNS = ("", "", "", "CD45", "CD14", "HLA-DR PE")


@pytest.fixture
def template(tmp_path) -> Path:
    p = tmp_path / "lab_gates.xml"
    p.write_text(_TEMPLATE, encoding="utf-8")
    return p


@pytest.fixture
def places(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(home, $HLADR_CACHE), both empty, and the in-process caches of compiled gates cleared before and after."""
    home, env = tmp_path / "home", tmp_path / "env"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HLADR_CACHE", str(env))
    _static.static_arrays.cache_clear()
    _static_cache._stored_statics.cache_clear()
    yield home, env
    _static.static_arrays.cache_clear()
    _static_cache._stored_statics.cache_clear()


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _events() -> Events:
    return Events(np.array(_ROWS, dtype=np.float32), _PNN, _PNS, (262144.0,) * 6, {}, path="tube.fcs")


def _kept(sha: str) -> list[str]:
    return [f"{cache_key(sha)}.json", f"{cache_key(sha)}.static.npz"]


# --------------------------------------------------------------------------- the core
def test_without_a_folder_nothing_is_written(tmp_path, template, places):
    tpl = load_template(template)
    assert tpl.cache_dir is None
    res = apply_monocyte_template(tpl, _events())
    assert res.indices.tolist() == [0, 1] and res.counts == {"Cells": 4, "Monocytes": 2}
    assert _files(tmp_path) == ["lab_gates.xml"]  # neither under $HOME nor under $HLADR_CACHE: the core reads no env


def test_with_a_folder_the_parse_and_the_compiled_gates_are_kept_in_it(tmp_path, template, places, monkeypatch):
    folder = tmp_path / "chosen"
    tpl = load_template(template, cache_dir=folder)
    assert tpl.cache_dir == str(folder)
    assert _files(folder) == [f"{cache_key(tpl.sha256)}.json"]  # in the folder itself, no subfolder
    res = apply_monocyte_template(tpl, _events())
    assert res.indices.tolist() == [0, 1]
    assert _files(folder) == _kept(tpl.sha256)
    assert _files(places[0]) == _files(places[1]) == []
    # a later load is served from the folder: flowkit's parse is not called again
    monkeypatch.setattr(_parse, "_parse_bytes", lambda *a: pytest.fail("parsed again"))
    again = load_template(template, cache_dir=folder)
    assert again == tpl and again.cache_dir == str(folder)


def test_the_folder_is_not_part_of_the_template(tmp_path, template, places):
    kept = load_template(template, cache_dir=tmp_path / "c")
    plain = load_template(template)
    assert kept == plain and hash(kept) == hash(plain)
    assert kept.gates == plain.gates and kept.sha256 == plain.sha256


def test_compiled_gates_are_kept_per_folder(tmp_path, template, places):
    # the in-process memo of compiled gates is per folder: a second folder gets its own file
    for name in ("one", "two"):
        tpl = load_template(template, cache_dir=tmp_path / name)
        apply_monocyte_template(tpl, _events())
        assert _files(tmp_path / name) == _kept(tpl.sha256), name


# --------------------------------------------------------------------------- the shell chooses
@pytest.fixture
def tube(tmp_path) -> Path:
    p = tmp_path / "tube.fcs"
    write_fcs(p, np.array(_ROWS, dtype=np.float32), _PNN, pns=_PNS, pnr=(262144.0,) * 6)
    return p


def _gate_json(tube: Path, template: Path, capsys) -> dict:
    assert main(["gate", str(tube), "--json", "--gates", str(template)]) == 0
    return json.loads(capsys.readouterr().out)


def test_hladr_gate_keeps_templates_under_hladr_cache(tube, template, places, capsys):
    home, env = places
    doc = _gate_json(tube, template, capsys)
    assert doc["gates"]["monocytes"] == 2 and doc["template_gates"] == {"Cells": 4, "Monocytes": 2}
    sha = load_template(template).sha256
    assert _files(env) == [f"templates/{f}" for f in _kept(sha)]
    assert _files(home) == []


def test_hladr_gate_default_is_the_users_cache_folder(tube, template, places, capsys, monkeypatch):
    home, env = places
    monkeypatch.delenv("HLADR_CACHE")
    assert _gate_json(tube, template, capsys)["gates"]["monocytes"] == 2
    sha = load_template(template).sha256
    assert _files(home) == [f".cache/hladr/templates/{f}" for f in _kept(sha)]
    assert _files(env) == []
