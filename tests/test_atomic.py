"""Atomic writes: the new content or the old one, never a partial file or a stray temporary."""

from __future__ import annotations

import os
import stat

import pytest

from hladr._atomic import write_atomic


def test_text_and_bytes_with_modes(tmp_path):
    out = tmp_path / "sub" / "results.csv"  # the folder is created
    write_atomic(out, "a,b\r\n1,2\n")
    assert out.read_bytes() == b"a,b\r\n1,2\n"  # newlines exactly as given
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    write_atomic(out, b"\x89PNG", mode=0o644)
    assert out.read_bytes() == b"\x89PNG" and stat.S_IMODE(out.stat().st_mode) == 0o644
    assert [p.name for p in out.parent.iterdir()] == ["results.csv"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    out = tmp_path / "report.html"
    out.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(out, 12345)  # type: ignore[arg-type]  # not str or bytes: fails while writing
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # the temporary is gone
