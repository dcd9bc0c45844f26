"""A seeded fuzzer over the worklist parser (issue 12, item 11).

Invariant for every case: ``read_worklist`` either returns exactly the intended
rows (a re-formatted worklist: separator, quoting, line ends, BOM, header case,
column order, blank lines, trailing empty columns) or, for a damaged one, rows
that only name files inside the run folder and no output column; otherwise it
raises ``ConfigError`` with one printable line. Never any other exception.
"""

from __future__ import annotations

import csv
import io
import random
import string

import pytest
from robust_helpers import assert_one_clean_line, result_rows, run_cli

from hladr.batch.worklist import RESERVED_COLUMNS, inside, read_worklist
from hladr.errors import ConfigError

N_CASES = 300
FILES = ["beads.fcs", "P001_HLADR.fcs", "P002_HLADR.fcs", "P003_HLADR.fcs"]
HEADER = ["file", "role", "sample_id", "subject_id", "visit", "ferritin", "ferritin_unit"]
ALPHABET = string.ascii_letters + string.digits + ' ,;"\'\t=+-@|!%$<>./\\' + "µ患者éß\u200b\x1b\x07"


def _cell(rng: random.Random) -> str:
    s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
    return s.strip()  # the reader strips cells: the intended value is the stripped one


def _intended(rng: random.Random) -> tuple[list[str], list[list[str]]]:
    header = list(HEADER) + [f"x_{k}" for k in range(rng.randint(0, 2))]
    rows = []
    for k, f in enumerate(FILES):
        row = [f, "beads" if k == 0 else "sample"] + [_cell(rng) for _ in header[2:]]
        rows.append(row)
    order = list(range(len(header)))
    rng.shuffle(order)
    return [header[i] for i in order], [[r[i] for i in order] for r in rows]


def _serialise(rng: random.Random, header: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=rng.choice([",", ";", "\t"]),
                   quoting=rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
                   lineterminator=rng.choice(["\n", "\r\n"]))
    shown = [rng.choice([h, h.upper(), f" {h} "]) for h in header]
    trailing = [""] * rng.randint(0, 2)
    w.writerow(shown + trailing)
    for r in rows:
        if rng.random() < 0.2:
            w.writerow([])
        w.writerow(r + trailing)
    text = buf.getvalue()
    return (("\ufeff" if rng.random() < 0.3 else "") + text).encode("utf-8")


def _damage(rng: random.Random, data: bytes) -> bytes:
    kind = rng.randrange(12)
    b = bytearray(data)
    if kind == 0:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == 1:  # insert random bytes
        pos = rng.randrange(len(b))
        b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
    elif kind == 2:  # truncate
        b = b[: rng.randrange(len(b))]
    elif kind == 3:  # a path out of the run folder
        b = bytes(b).replace(b"P002_HLADR.fcs", rng.choice([b"../P002_HLADR.fcs", b"/etc/passwd",
                                                            b"sub/../../x.fcs", b"~/x.fcs"]))
    elif kind == 4:  # a huge cell
        b = bytes(b).replace(b"P003_HLADR.fcs", b"P003_HLADR.fcs" + b"Z" * 140_000)
    elif kind == 5:  # NUL
        b[rng.randrange(len(b)):0] = b"\x00"
    elif kind == 6:  # another encoding
        b = bytearray(bytes(b).decode("utf-8").encode(rng.choice(["utf-16", "utf-16-le", "latin-1", "cp1252"]),
                                                      errors="replace"))
    elif kind == 7:  # an unbalanced quote
        b[rng.randrange(len(b)):0] = b'"'
    elif kind == 8:  # a reserved or duplicate column name
        name = rng.choice([*RESERVED_COLUMNS, "file", "role", "ferritin"]).encode()
        first = bytes(b).split(b"\n", 1)
        b = bytearray(first[0].rstrip(b"\r") + b"," + name + b"\n" + (first[1] if len(first) > 1 else b""))
    elif kind == 9:  # control characters anywhere
        for _ in range(rng.randint(1, 5)):
            b[rng.randrange(len(b)):0] = bytes([rng.choice([1, 7, 8, 11, 12, 13, 27, 127])])
    elif kind == 10:  # the same tube twice
        b += b"P001_HLADR.fcs,sample,again,,,,\n"
    else:  # shuffle the lines
        lines = bytes(b).split(b"\n")
        rng.shuffle(lines)
        b = bytearray(b"\n".join(lines))
    return bytes(b)


def _check_accepted(rows: list[dict[str, str]], run_dir) -> None:
    for r in rows:
        assert r["role"] in ("beads", "sample") and r["file"]
        assert inside(run_dir, run_dir / r["file"]), r["file"]
        if r.get("gates"):
            assert inside(run_dir, run_dir / r["gates"])
        assert not set(r) & set(RESERVED_COLUMNS)
    files = [(run_dir / r["file"]).resolve() for r in rows]
    assert len(files) == len(set(files))


@pytest.mark.parametrize("seed", range(0, N_CASES, 50))
def test_fuzz_worklist_parser(sim_run, tmp_path, seed):
    """50 cases per seed block: half re-formatted (exact rows), half damaged (rows or one clean refusal)."""
    p = tmp_path / "wl.csv"
    for case in range(seed, seed + 50):
        rng = random.Random(case)
        header, rows = _intended(rng)
        data = _serialise(rng, header, rows)
        damaged = case % 2 == 1
        if damaged:
            data = _damage(rng, data)
        p.write_bytes(data)
        try:
            got = read_worklist(p, run_dir=sim_run)
        except ConfigError as exc:
            text = str(exc)
            assert "\n" not in text and "\r" not in text and "\x1b" not in text and len(text) < 600, (case, text)
            if not damaged:
                pytest.fail(f"case {case}: a valid, re-formatted worklist was refused: {text}")
            continue
        if damaged:
            _check_accepted(got, sim_run)
        else:
            want = [{h: v for h, v in zip(header, r, strict=True)} for r in rows]
            assert got == want, case


def test_fuzzed_worklists_end_to_end(sim_run, tmp_path, clean_rows):
    """Through ``hladr run``: a re-formatted worklist gives the clean results; a damaged one exit 2, one line."""
    rng = random.Random(12)
    header, rows = HEADER, [r.split(",") for r in [
        "beads.fcs,beads,BEADS-96597,,,,", "P001_HLADR.fcs,sample,P001,ISP-0170,D7,57.8,ng/mL",
        "P002_HLADR.fcs,sample,P002,ISP-0247,D1,273,ng/mL", "P003_HLADR.fcs,sample,P003,ISP-0147,D7,17474,ng/mL"]]
    wl = tmp_path / "wl.csv"
    wl.write_bytes(_serialise(rng, header, rows))
    rc, _, err = run_cli(["run", str(sim_run), "--out", str(tmp_path / "a"), "--worklist", str(wl), "--quiet"])
    assert rc == 0, err
    assert result_rows(tmp_path / "a") == clean_rows
    for damage in (b'"', b"\x00", b"../"):
        data = _serialise(rng, header, rows).replace(b"P002_HLADR", damage + b"P002_HLADR", 1)
        wl.write_bytes(data)
        rc, _, err = run_cli(["run", str(sim_run), "--out", str(tmp_path / "b"), "--worklist", str(wl), "--quiet"])
        assert rc == 2, (damage, err)
        assert_one_clean_line(err)
