"""Where a dataset's TEXT and DATA are, proven, or a refusal: the first step of :mod:`hladr.fcs.read`.

Private to :mod:`hladr.fcs.read`. :func:`locate` returns the dataset (re-read when
its TEXT overran HEADER's TEXT end, see :mod:`hladr.fcs._verify`), its keywords
(an LMD's FCS 3.0 dataset completed from its FCS 2.0 one) and the DATA layout
(:mod:`hladr.fcs._layout`). A repair of the offsets is accepted only when it is
the one reading the bytes allow (:func:`check_shifted_layout`).
:func:`check_unchained` refuses a default read of the last dataset of a
$NEXTDATA chain when another dataset follows it in the file: the chain was cut
(a Beckman LMD whose $NEXTDATA was zeroed would otherwise be read from its FCS
2.0 dataset, other channels than the FCS 3.0 one read by default).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from ..errors import ReadError
from . import _align as fa
from . import _layout as fl
from . import _parse as fp
from . import _verify as fv

__all__ = ["locate", "check_shifted_layout", "check_unchained"]

_HEADER_START = re.compile(rb"FCS\d\.\d    ")
# bytes after the last dataset searched for another HEADER (the loaded buffer holds the declared
# extent and at most 1 MiB more, see hladr.fcs._load)
_CHAIN_SEARCH = 4 << 20


def _layout_of(
    buf: fp.Buffer, first: fp.RawDataset, ds: fp.RawDataset, name: str, allow: bool, companion: bool
) -> tuple[dict[str, str], fl.Layout, list[str]]:
    kw, quirks = ds.keywords, list(ds.quirks)
    if companion:  # an LMD's FCS 3.0 dataset read by default: completed from its FCS 2.0 one
        kw, q = fp.lmd_companion_keywords(first, ds)
        quirks += q
    return kw, fl.resolve_layout(len(buf), ds, kw, name, allow_tot_mismatch=allow, buf=buf), quirks


def locate(
    buf: fp.Buffer, datasets: Sequence[fp.RawDataset], index: int, name: str, allow: bool, companion: bool
) -> tuple[fp.RawDataset, dict[str, str], fl.Layout, list[str]]:
    """The dataset (re-read if its TEXT overran HEADER's end), its keywords, DATA layout and quirks.

    Two signs that TEXT was edited in place (see :mod:`hladr.fcs._verify`): text
    continuing past HEADER's TEXT end, or padding that runs from the end of TEXT
    into DATA that starts right after it (the TEXT's trailing padding pushed out).
    Either way the offsets are moved by the overrun and must then fit exactly.
    """
    ds = datasets[index - 1]
    shift = fv.text_overrun(buf, ds, name)
    if not shift:
        kw, layout, quirks = _layout_of(buf, datasets[0], ds, name, allow, companion)
        shift = fv.padding_overrun(buf, ds, layout.start)
        if not shift:
            return ds, kw, layout, quirks
    original = ds
    ds = fv.shifted_dataset(buf, ds, shift, name)
    kw, layout, quirks = _layout_of(buf, datasets[0], ds, name, allow, companion)
    check_shifted_layout(buf, ds, layout, shift, name)
    nxt = datasets[index].offset if index < len(datasets) else None
    _check_unmoved_impossible(buf, original, ds, layout, shift, nxt, name)
    return ds, kw, layout, quirks


def check_shifted_layout(buf: fp.Buffer, ds: fp.RawDataset, layout: fl.Layout, shift: int, name: str) -> None:
    """Accept offsets moved by a TEXT overrun only when that is the one reading the bytes allow.

    The moved segment must start right after the real TEXT end (padding
    between allowed) and hold exactly $TOT events (no off-by-one, no spare
    bytes, no HEADER/TEXT disagreement). Otherwise the file is refused.
    """
    text_end = ds.text_span[1]
    gap = bytes(buf[text_end + 1 : layout.start])
    loose = {"offset_off_by_one", "data_segment_longer_than_tot", "header_text_offset_mismatch"}
    if layout.start <= text_end or gap.strip(b" \x00") or loose & set(layout.quirks):
        raise ReadError(
            f"{name}: TEXT runs {shift} bytes past the end HEADER gives (edited in place without "
            "updating the offsets?) and DATA moved by as much does not hold exactly $TOT events; "
            "re-export the file"
        )


def _check_unmoved_impossible(
    buf: fp.Buffer, original: fp.RawDataset, ds: fp.RawDataset, layout: fl.Layout, shift: int,
    next_offset: int | None, name: str,
) -> None:
    """Refuse a repair when DATA where the offsets put it before the move is a reading as good.

    HEADER's TEXT end may simply be wrong (edited) with DATA unmoved: B01 with
    its TEXT end moved back one byte and 4 NULs appended was read one byte late.
    The unmoved DATA is ruled out when it overlaps the real TEXT, starts after
    bytes that are not padding, or leaves after it a tail no writer leaves
    (:func:`hladr.fcs._align.check_tail`: the last bytes of the moved DATA).
    """
    text_end = ds.text_span[1]
    start = layout.start - shift
    if start <= text_end or bytes(buf[text_end + 1 : start]).strip(b" \x00"):
        return
    try:
        fa.check_tail(buf, original, replace(layout, start=start), next_offset, name)
    except ReadError:
        return
    raise ReadError(
        f"{name}: TEXT runs {shift} bytes past the end HEADER gives, but DATA fits where the offsets say as "
        f"well as {shift} bytes later (TEXT lengthened in place, or HEADER's TEXT end wrong?): which is "
        "right cannot be proven; re-export the file"
    )


def check_unchained(buf: fp.Buffer, ds: fp.RawDataset, data_end: int, name: str) -> None:
    """Refuse the default read of the last dataset of a $NEXTDATA chain when another dataset follows it.

    ``data_end`` is the first byte after the dataset's DATA. A HEADER and TEXT
    that parse there (within the bytes loaded) mean $NEXTDATA was zeroed or
    its keyword damaged: which dataset is meant cannot be known.
    """
    start = max(data_end, ds.text_span[1] + 1)
    h0, h1 = ds.header_analysis
    if h0 is not None and h1 is not None and h1 > h0 > ds.offset:
        start = max(start, h1 + 1)
    stop = min(len(buf), start + _CHAIN_SEARCH)
    if stop - start < fp.HEADER_LEN:
        return
    tail = bytes(buf[start:stop])
    for m in _HEADER_START.finditer(tail):
        found = fp.dataset_at(buf, start + m.start(), name)
        if found is not None:
            raise ReadError(
                f"{name}: another dataset ({found.version}) starts at byte {start + m.start()} but $NEXTDATA "
                "of the dataset before it does not point there ($NEXTDATA damaged?): which dataset is meant "
                "cannot be known; ask for one explicitly (--dataset N) or re-export the file"
            )
