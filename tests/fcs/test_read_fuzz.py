"""Fuzz the reader with mutated real files: only a clean read or a ReadError may come out.

Real corpus files are mutated deterministically (HEADER bytes and offset fields,
TEXT values of $TOT/$PAR/$PnB/$PnR/$PnE/$BEGINDATA/$DATATYPE/$BYTEORD/...,
deleted keywords, flipped TEXT and DATA bytes, truncation, inserted bytes). Each
case must end within a few seconds in either

- ``Events`` with one column per channel and exactly $TOT rows, or
- a ``ReadError`` whose message is one line starting with the file name and that
  is not the reader's "unexpected error" safety net.

Anything else (another exception, a warning, a hang) fails the test with the
seed file, the case number and the mutations, so it can be replayed.
"""

from __future__ import annotations

import json
import random
import re
import signal
from collections.abc import Callable

import numpy as np
import pytest

from hladr.errors import ReadError
from hladr.fcs.describe import describe_file
from hladr.fcs.read import parse_spillover, read_fcs

pytestmark = pytest.mark.corpus

# (corpus file, number of cases): small files of varied layout, 5000 cases in all
SEEDS = [
    ("FlowIO/variable_int_example.fcs", 800),  # mixed 16/32-bit, SPILL, $TIMESTEP
    ("FlowKit/simple_line_example/data_set_simple_line_100.fcs", 800),  # FCS 3.1 float
    ("FlowKit/index_sorted_example.fcs", 700),  # BD FACSDiva float, big-endian, SPILL
    ("fcsparser/cyflow_cube_8.fcs", 600),  # 8/16/32-bit mix, ZIP in STEXT
    ("cytoflow/instruments/System II listmode with extra info in bits D10-D15.LMD", 550),
    ("cytoflow/instruments/Beckman Coulter - Cyan.fcs", 550),  # HEADER/TEXT disagree
    ("FlowIO/B01 KC-A-W---91-US.fcs", 550),  # Accuri, 32-bit big-endian, $SPILLOVER
    ("FlowIO/coulter.lmd", 450),  # two datasets, $DFCiTOj
]
KEYS = [
    "$TOT", "$PAR", "$BEGINDATA", "$ENDDATA", "$DATATYPE", "$BYTEORD", "$NEXTDATA", "$MODE",
    "$TIMESTEP", "SPILL", "$SPILLOVER", "$BEGINSTEXT", "$ENDSTEXT", "$BEGINANALYSIS",
    "$ENDANALYSIS", "$P1B", "$P2B", "$P3B", "$P1R", "$P2R", "$P1E", "$P3E", "$P1G", "$P2N",
    "$DFC1TO2", "$COMP",
]  # fmt: skip
VALUES = [
    "", " ", "0", "-1", "1", "2", "3", "abc", "1e400", "nan", "inf", "99999999999999999999",
    "4294967296", "*", "4,0", "0,0", "-2,0", "40,1", "4", "1,2,3,4", "4,3,2,1", "3,4,1,2",
    "1,2", "2,1", "9,9", "I", "F", "D", "A", "X", "C", "L", "U", "10", "12", "24", "64", "65",
    "7", "2,A,B,1,0,0,1", "3,1,2", "2,1,2,1,0.1,0.2,1", "1,0", "00000000000000000000",
]  # fmt: skip
TIMEOUT_S = 5.0


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):  # noqa: ARG001
    raise _Timeout


def _text_span(buf: bytes) -> tuple[int, int] | None:
    try:
        return int(buf[10:18]), int(buf[18:26])
    except ValueError:
        return None


def _mutate_header_bytes(buf: bytes, rng: random.Random) -> tuple[bytes, str]:
    b = bytearray(buf)
    for _ in range(rng.randint(1, 3)):
        if len(b) > 0:
            b[rng.randrange(min(58, len(b)))] = rng.choice(b"0123456789 -\x00xF.")
    return bytes(b), "header-bytes"


def _mutate_header_field(buf: bytes, rng: random.Random) -> tuple[bytes, str]:
    field = rng.randrange(6)
    start = 10 + 8 * field
    old = buf[start : start + 8].strip()
    old_v = int(old) if old.isdigit() else 0
    new = rng.choice(
        [
            str(rng.randrange(0, 2 * len(buf) + 1)), str(len(buf)), str(len(buf) - 1),
            str(len(buf) + 1), str(old_v + 1), str(max(0, old_v - 1)), "", "-1", "99999999",
            "0", "58",
        ]
    )  # fmt: skip
    return buf[:start] + new.rjust(8)[:8].encode() + buf[start + 8 :], f"header-field{field}={new}"


def _keyword_spans(buf: bytes) -> list[tuple[str, int, int]]:
    span = _text_span(buf)
    if span is None or span[1] >= len(buf) or span[0] >= span[1]:
        return []
    t0, t1 = span
    text = buf[t0 : t1 + 1]
    if not text:
        return []
    d = re.escape(text[:1])
    out = []
    for m in re.finditer(rb"(?<=" + d + rb")([^" + d + rb"]+)" + d + rb"([^" + d + rb"]*)", text):
        key = m.group(1).decode("latin-1").strip()
        out.append((key.upper(), t0 + m.start(2), t0 + m.end(2)))
    return out


def _mutate_keyword(buf: bytes, rng: random.Random) -> tuple[bytes, str]:
    spans = _keyword_spans(buf)
    wanted = [s for s in spans if s[0] in KEYS or re.match(r"\$P\d+[BREGN]$", s[0])]
    if not wanted:
        return _mutate_text_bytes(buf, rng)
    key, v0, v1 = rng.choice(wanted)
    old = buf[v0:v1].decode("latin-1")
    choices = list(VALUES)
    if old.strip().lstrip("-").isdigit():
        n = int(old)
        choices += [str(n + 1), str(n - 1), str(n * 2), str(n // 2), str(n + 1000)]
    new = rng.choice(choices)
    if rng.random() < 0.5 and len(new) < len(old):
        new = new.rjust(len(old), "0" if new.isdigit() else " ")  # keep offsets valid
    return buf[:v0] + new.encode("latin-1") + buf[v1:], f"{key}={new!r}"


def _delete_keyword(buf: bytes, rng: random.Random) -> tuple[bytes, str]:
    spans = _keyword_spans(buf)
    if not spans:
        return _mutate_text_bytes(buf, rng)
    key, v0, v1 = rng.choice(spans)
    k0 = buf.rfind(buf[v0 - 1 : v0], 0, v0 - 1)  # the delimiter before the key
    if k0 < 0:
        return buf, "delete-none"
    return buf[: k0 + 1] + buf[v1 + 1 :], f"delete {key}"


def _mutate_text_bytes(buf: bytes, rng: random.Random) -> tuple[bytes, str]:
    span = _text_span(buf)
    lo, hi = (58, min(len(buf), 4000)) if span is None else span
    hi = min(hi, len(buf) - 1)
    if hi <= lo:
        return _mutate_header_bytes(buf, rng)
    b = bytearray(buf)
    delim = b[lo]
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(lo, hi + 1)] = rng.choice([delim, rng.randrange(256), ord(" "), 0])
    return bytes(b), "text-bytes"


def _flip_data_bytes(buf: bytes, rng: random.Random) -> tuple[bytes, str]:
    b = bytearray(buf)
    for _ in range(rng.randint(1, 20) if b else 0):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b), "data-bytes"


def _truncate(buf: bytes, rng: random.Random) -> tuple[bytes, str]:
    span = _text_span(buf)
    marks = [0, 10, 57, 58, len(buf) - 1, len(buf) // 2]
    if span:
        marks += [span[0] + 1, span[1], span[1] + 2]
    cut = max(0, min(len(buf), rng.choice(marks) + rng.randint(-3, 3)))
    if rng.random() < 0.3:
        cut = rng.randrange(len(buf) + 1)
    return buf[:cut], f"truncate {cut}"


def _insert_bytes(buf: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(buf) + 1)
    junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return buf[:at] + junk + buf[at:], f"insert {len(junk)} at {at}"


MUTATIONS: list[tuple[Callable, int]] = [
    (_mutate_keyword, 8),
    (_mutate_header_field, 3),
    (_mutate_header_bytes, 2),
    (_delete_keyword, 2),
    (_mutate_text_bytes, 2),
    (_truncate, 2),
    (_flip_data_bytes, 1),
    (_insert_bytes, 1),
]


def _check_case(path, rel: str, case: int, steps: list[str]) -> str:
    where = f"{rel} case {case} [{'; '.join(steps)}]"
    try:
        ev, report = read_fcs(path)
    except ReadError as exc:
        msg = str(exc)
        assert not getattr(exc, "internal", False), f"{where}: reader bug: {msg}"
        assert "\n" not in msg and msg.startswith(path.name), f"{where}: bad message {msg!r}"
        return "rejected"
    assert ev.data.ndim == 2 and ev.data.dtype == np.float32, where
    assert ev.data.shape[1] == len(ev.pnn) == len(ev.pnr), where
    tot = ev.keyword("$TOT")
    if tot is not None and tot.isdigit() and "tot_missing_inferred" not in ev.quirks:
        assert ev.n_events == int(tot), f"{where}: {ev.n_events} events but $TOT={tot}"
    if report.reader == "flowio":  # differential check: our decoder agrees with flowio
        own = read_fcs(path, dataset=ev.dataset, engine="hladr")[0]
        np.testing.assert_array_equal(own.data, ev.data, err_msg=where)
    try:
        parse_spillover(ev)
    except ReadError as exc:
        assert "\n" not in str(exc), where
    if case % 9 == 0:
        json.dumps(describe_file(path, dataset=ev.dataset))
    return "read"


def test_fuzz_mutated_real_files(corpus, tmp_path):
    old = signal.signal(signal.SIGALRM, _on_alarm)
    outcomes = {"read": 0, "rejected": 0}
    try:
        for s, (rel, n_cases) in enumerate(SEEDS):
            original = (corpus / rel).read_bytes()
            path = tmp_path / f"fuzz{s}{(corpus / rel).suffix}"
            funcs = [f for f, w in MUTATIONS for _ in range(w)]
            for case in range(n_cases):
                rng = random.Random(1000 * s + case)
                buf, steps = original, []
                for _ in range(rng.choice([1, 1, 1, 2, 3])):
                    buf, step = rng.choice(funcs)(buf, rng)
                    steps.append(step)
                path.write_bytes(buf)
                signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
                try:
                    outcomes[_check_case(path, rel, case, steps)] += 1
                except _Timeout:
                    pytest.fail(f"{rel} case {case} [{'; '.join(steps)}]: no answer in {TIMEOUT_S}s")
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, old)
    total = sum(outcomes.values())
    assert total == sum(n for _, n in SEEDS) == 5000
    # the mutations must exercise both outcomes, not only one
    assert outcomes["read"] > total // 10 and outcomes["rejected"] > total // 10, outcomes
