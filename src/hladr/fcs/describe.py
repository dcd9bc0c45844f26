"""What ``hladr inspect`` shows: one FCS dataset described as a plain record.

:func:`describe_file` reads the file through the same reader every stage uses
(:func:`hladr.fcs.read.read_fcs`) and returns a JSON-ready dict; the keys of SPEC.md
section 5 (``fcs_version``, ``events``, ``channels``, ``datasets``, ``dataset``,
``instrument``) are always present. :func:`format_description` turns that dict
into a text table. Neither prints; the CLI does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ReadError
from ._spillover import parse_spillover_keywords
from .read import read_fcs

__all__ = ["describe_file", "format_description", "QUIRK_TEXT"]

#: One-line explanation of each quirk code the reader can report.
QUIRK_TEXT: dict[str, str] = {
    "offset_off_by_one": "DATA end offset points one byte past the data (common export bug)",
    "header_text_offset_mismatch": "HEADER and TEXT disagree on the DATA offsets; "
    "the ones matching $TOT and the layout were used",
    "header_data_offsets_blank": "HEADER DATA offsets are blank; TEXT offsets used",
    "data_segment_longer_than_tot": "DATA holds more bytes than $TOT events need; extra ignored",
    "data_end_beyond_file": "declared DATA end lies past the end of the file (read on request)",
    "no_datatype_assumed_I": "$DATATYPE missing; integer data assumed",
    "byteord_missing_assumed_little": "$BYTEORD missing; little-endian assumed",
    "byteord_mixed": "mixed byte order ($BYTEORD is not 1,2,.. or ..,2,1)",
    "pnb_in_wider_words": "$PnB is not a whole number of bytes; values sit in wider words",
    "pnb_bit_packed": "$PnB is not a whole number of bytes; values are bit-packed",
    "pnr_bitmask_applied": "integer words had bits above $PnR set (flags); they were masked",
    "lmd_fcs3_dataset_chosen": "Beckman LMD: the FCS 3.0 dataset was read",
    "lmd_dfc_from_fcs2_dataset": "Beckman LMD: $DFCiTOj compensation taken from the FCS 2.0 dataset",
    "text_overran_header_offsets": "TEXT runs past the end HEADER gives (edited in place); "
    "DATA found moved by as much, with exactly $TOT plausible events: review the result",
    "nextdata_invalid_ignored": "$NEXTDATA points nowhere; no further datasets",
    "text_odd_token_count": "TEXT has a keyword without a value",
    "text_empty_values": "TEXT has empty values (FCS 2.0 style)",
    "text_keyword_whitespace": "TEXT keywords padded with blanks",
    "stext_ignored": "supplemental TEXT is not readable text; ignored",
    "timestep_malformed_ignored": "$TIMESTEP is not a positive number; time channel not scaled",
    "tot_missing_inferred": "$TOT missing; event count derived from DATA",
    "pnn_missing": "a $PnN is missing; channel named Pn",
    "duplicate_channel_names": "some $PnN names repeat",
    "events_fewer_than_tot": "DATA holds fewer events than $TOT (read on request)",
    "flowio_error_fallback": "flowio failed on this file; hladr's decoder read it",
    "spillover_malformed": "a spillover keyword is malformed; no spillover used",
}


def _number(text: str) -> float | int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _kw(keywords: Any, key: str) -> str | None:
    value = keywords.get(key)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def describe_file(path: str | os.PathLike, *, dataset: int | None = None) -> dict:
    """Describe one dataset of an FCS/LMD file as a JSON-ready dict.

    Parameters
    ----------
    path : path-like
        The FCS or LMD file.
    dataset : int, optional
        1-based dataset to describe; default as :func:`hladr.fcs.read.read_events`
        (the first, or the FCS 3.0 dataset of a Beckman LMD pair).

    Returns
    -------
    dict
        ``file``, ``sha256``, ``fcs_version``, ``dataset``, ``datasets``,
        ``dataset_list`` (every dataset: index, fcs_version, events, channels,
        datatype, instrument, offset), ``instrument`` ($CYT), ``serial``
        ($CYTSN), ``date``, ``btim``, ``etim``, ``events``, ``channels`` (per
        channel: index, pnn, pns, pnb, pnr, pne, png, pnv, upper_limit),
        ``datatype``, ``byteorder``, ``reader`` (``flowio`` or ``hladr``) and
        ``reader_reason`` (why),
        ``spillover`` (``{"source", "channels", "matrix"}`` or None),
        ``quirks`` (codes) and ``quirk_text`` (their explanations).

    Raises
    ------
    ReadError
        The file cannot be read; the message is one line.
    """
    events, report = read_fcs(path, dataset=dataset)
    kw = events.keywords
    quirks = list(events.quirks)
    channels = []
    for j, (pnn, pns) in enumerate(zip(events.pnn, events.pns, strict=True)):
        n = j + 1
        png = _kw(kw, f"p{n}g")
        channels.append(
            {
                "index": n,
                "pnn": pnn,
                "pns": pns,
                "pnb": _kw(kw, f"p{n}b"),
                "pnr": _number(_kw(kw, f"p{n}r") or ""),
                "pne": _kw(kw, f"p{n}e"),
                "png": None if png is None else _number(png),
                "pnv": _kw(kw, f"p{n}v"),
                "upper_limit": events.pnr[j],
            }
        )
    spillover = None
    try:
        found = parse_spillover_keywords(kw, events.pnn, events.pns, Path(events.path).name)
    except ReadError:
        quirks.append("spillover_malformed")
        found = None
    if found is not None:
        source, names, matrix = found
        spillover = {"source": source, "channels": names, "matrix": matrix.tolist()}
    return {
        "file": str(path),
        "sha256": events.sha256,
        "fcs_version": report.fcs_version,
        "dataset": events.dataset,
        "datasets": events.n_datasets,
        "dataset_list": [
            {
                "index": d.index,
                "fcs_version": d.fcs_version,
                "events": d.events,
                "channels": d.channels,
                "datatype": d.datatype,
                "instrument": d.instrument,
                "offset": d.offset,
            }
            for d in report.datasets
        ],
        "instrument": _kw(kw, "cyt"),
        "serial": _kw(kw, "cytsn"),
        "date": _kw(kw, "date"),
        "btim": _kw(kw, "btim"),
        "etim": _kw(kw, "etim"),
        "events": events.n_events,
        "channels": channels,
        "datatype": report.datatype,
        "byteorder": report.byteorder,
        "reader": report.reader,
        "reader_reason": report.reader_reason,
        "spillover": spillover,
        "quirks": quirks,
        "quirk_text": [QUIRK_TEXT.get(q, q) for q in quirks],
    }


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return lines


def format_description(record: dict) -> str:
    """Readable text of a :func:`describe_file` record (what ``hladr inspect`` prints)."""
    when = " ".join(x for x in (record.get("date"), record.get("btim")) if x) or "-"
    lines = [
        f"File          {record['file']}",
        f"SHA-256       {record.get('sha256', '-')}",
        f"FCS version   {record['fcs_version']}  (dataset {record['dataset']} of "
        f"{record['datasets']})",
        f"Read by       {record.get('reader', '-')} ({record.get('reader_reason', '-')})",
        f"Instrument    {_fmt(record.get('instrument'))}  serial {_fmt(record.get('serial'))}",
        f"Acquired      {when}",
        f"Events        {record['events']}",
        f"Data          $DATATYPE {_fmt(record.get('datatype'))}, "
        f"{_fmt(record.get('byteorder'))}-endian",
        "",
        f"Channels ({len(record['channels'])})",
    ]
    rows = [
        [
            str(c.get("index", i + 1)), c["pnn"], c["pns"] or "-", _fmt(c.get("pnb")),
            _fmt(c.get("pnr")), _fmt(c.get("pne")), _fmt(c.get("png")), _fmt(c.get("pnv")),
            _fmt(c.get("upper_limit")),
        ]
        for i, c in enumerate(record["channels"])
    ]  # fmt: skip
    lines += _table(["#", "$PnN", "$PnS", "$PnB", "$PnR", "$PnE", "$PnG", "$PnV", "limit"], rows)
    datasets = record.get("dataset_list") or []
    if len(datasets) > 1:
        lines += ["", f"Datasets ({len(datasets)}; * = read, choose with --dataset N)"]
        rows = [
            [
                f"{d['index']}{'*' if d['index'] == record['dataset'] else ''}",
                f"FCS{d['fcs_version']}", f"{_fmt(d['events'])} events",
                f"{_fmt(d['channels'])} channels", f"$DATATYPE {_fmt(d['datatype'])}",
                f"byte {d['offset']}",
            ]
            for d in datasets
        ]  # fmt: skip
        lines += _table(["#", "version", "events", "channels", "type", "offset"], rows)
    spill = record.get("spillover")
    lines.append("")
    if spill is None:
        lines.append("Spillover     none in the file")
    else:
        names = spill["channels"]
        lines.append(f"Spillover     {spill['source']}, {len(names)} channels: {', '.join(names)}")
        if len(names) <= 10:
            rows = [
                [src, *(f"{v:.4f}" for v in row)]
                for src, row in zip(names, spill["matrix"], strict=True)
            ]
            lines += _table(["from \\ into", *names], rows)
        else:
            lines.append("  (matrix too wide to print; use --json)")
    quirks = record.get("quirks") or []
    lines.append("")
    if not quirks:
        lines.append("Quirks        none")
    else:
        lines.append("Quirks tolerated")
        lines += [f"  {q}: {QUIRK_TEXT.get(q, q)}" for q in quirks]
    return "\n".join(lines)
