"""FCS file -> ``Events``: the only core module that opens files.

Every stage (run, calibrate, inspect, gate) reads through :func:`read_events`
(or :func:`read_fcs`, which also says how the file was read). The contract:

- the result is one dataset as an (N, D) float32 array with $PnE log decoding,
  $PnG gain and $TIMESTEP applied exactly as flowio's
  ``FlowData.as_array(preprocess=True)`` does, plus the metadata;
- N is always $TOT (unless the caller explicitly allows otherwise);
- a file that cannot be read raises :class:`~hladr.errors.ReadError` with one
  line naming the file and the problem, never another exception.

The file is loaded by :mod:`hladr.fcs._load` (one buffer, read once; its
SHA-256 in a background thread for large files; only the declared extent of a
padded file). Our parser
(:mod:`hladr.fcs._parse`, with :mod:`hladr.fcs._layout` for where DATA is) then
reads HEADER and TEXT from it, to list the datasets and to check sizes before
anything else is allocated; :mod:`hladr.fcs._verify` and :mod:`hladr.fcs._align`
prove that TEXT and DATA are where the offsets say (or refuse the file); our
decoder (:func:`hladr.fcs._decode.decode_events`) converts DATA from zero-copy
views of it. For float32 and 32-bit integer DATA that is nearly the whole file
(all but 1 MiB) the float32 events are written over DATA itself (byte swap,
masks and scaling included) and keep the buffer; otherwise they are one new
array and the buffer is dropped when the call returns. Either way, reading
allocates about the file size once, besides the events. With ``threads`` above
one a large file is read and decoded in slices by several threads at once
(:mod:`hladr._parallel`).

Which reader decodes DATA (:mod:`hladr.fcs._flowio`): segments of 4 MiB or
more, and datasets with an export quirk flowio 1.4 fails on or misreads (each
recorded in ``Events.quirks``), go to our decoder; smaller standard files go to
flowio (flowkit's reader) first, as issue #3 asked. Where flowio reads a file,
our decoder gives identical values (tested on the corpus and on thousands of
mutated files), so the choice of reader never changes a result;
``ReadReport.reader_reason`` says which was used and why.
"""

from __future__ import annotations

import hashlib
import operator
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ReadError
from ..events import Events, Spillover
from . import _align as fa
from . import _decode as fd
from . import _flowio as ff
from . import _locate as floc
from . import _parse as fp
from . import _spillover as fs
from . import _verify as fv
from ._load import BackgroundDigest, load, one_line, sha256_file, threads_beside
from .datasets import DatasetSummary, list_datasets, summarise_datasets

__all__ = [
    "read_events",
    "read_fcs",
    "list_datasets",
    "parse_spillover",
    "spillover_of",
    "sha256_file",
    "DatasetSummary",
    "ReadReport",
    "REPAIR_QUIRKS",
]

REPAIR_QUIRKS = fv.REPAIR_QUIRKS

# Where our decoder can, it writes the float32 events over DATA in the file buffer
# and the events keep that buffer (no second full-size array: peak memory about
# the file size, not twice); only when the rest of the file kept with them
# (HEADER, TEXT, ANALYSIS, other datasets) is at most this many bytes.
_IN_PLACE_SLACK_BYTES = 1 << 20


@dataclass(frozen=True)
class ReadReport:
    """How a dataset was read: which reader, where DATA was, what it held."""

    reader: Literal["flowio", "hladr"]
    reader_reason: str
    datasets: tuple[DatasetSummary, ...]
    fcs_version: str
    datatype: str
    byteorder: str
    data_offset: int
    data_bytes: int
    flowio_error: str | None


def read_fcs(
    path: str | os.PathLike,
    *,
    dataset: int | None = None,
    engine: Literal["auto", "hladr"] = "auto",
    allow_tot_mismatch: bool = False,
    threads: int | None = None,
    sha256: bool = True,
) -> tuple[Events, ReadReport]:
    """Read one dataset of an FCS (or Beckman LMD) file, and say how it was read.

    Parameters
    ----------
    path : path-like
        The FCS 2.0/3.0/3.1/3.2 or LMD file.
    dataset : int, optional
        1-based dataset index in file order. Default: the first dataset, or the
        FCS 3.0 dataset of a Beckman LMD pair.
    engine : {"auto", "hladr"}
        ``"auto"`` uses our decoder for DATA segments of 4 MiB or more, and for
        smaller ones flowio where it reads the file correctly and our decoder
        otherwise (see :mod:`hladr.fcs._flowio`); ``"hladr"`` always uses our
        decoder (for tests and comparison).
    allow_tot_mismatch : bool
        Read the complete events a too-short DATA segment holds instead of
        raising (quirk ``events_fewer_than_tot``). Off by default: the event count
        of a result is always $TOT.
    threads : int, optional
        Threads reading and decoding a large file in slices; default: by the
        cores this process may use and the file's size (``hladr._parallel``);
        while a background thread hashes the file, one (hashing has the other
        core). The result does not depend on it.
    sha256 : bool
        False skips the file's SHA-256 (``Events.sha256`` is then ""): only for
        timing against readers that do not hash (benchmarks). Every result of
        hladr carries the digest; :func:`read_events` always computes it.

    Returns
    -------
    events : Events
        (N, D) float32 values with $TIMESTEP, $PnE and $PnG applied, channel
        names, decoded upper limits, keywords and quirks.
    report : ReadReport
        Reader used, all datasets of the file, DATA position and encoding.

    Raises
    ------
    ReadError
        The file is missing, not FCS, truncated or inconsistent; the message is
        one line starting with the file name.
    """
    name = Path(path).name
    try:
        p, buf, digest = load(path, digest_wanted=sha256, threads=threads)
        threads = threads_beside(digest, threads)
        return _read(p, buf, dataset, engine, allow_tot_mismatch, digest if sha256 else "", threads)
    except ReadError:
        raise
    except MemoryError:
        raise ReadError(f"{name}: not enough memory to read this file") from None
    except Exception as exc:  # safety net: a user's bad file must never give a traceback
        err = ReadError(
            f"{name}: could not be decoded (unexpected {type(exc).__name__} in the reader; its text, which may "
            "quote the file, is not shown)"
        )
        err.internal = True  # type: ignore[attr-defined]  # marks reader bugs for the tests
        raise err from exc


def _read(
    p: Path, buf: fp.Buffer, dataset: int | None, engine: str, allow_tot_mismatch: bool,
    digest: BackgroundDigest | str | None = None,
    threads: int | None = 1,
) -> tuple[Events, ReadReport]:
    name = p.name
    # first: DATA may be decoded over the buffer (a background digest reads the file itself; "" skips it)
    sha256 = digest if digest is not None else hashlib.sha256(buf).hexdigest()
    datasets = fp.scan_datasets(buf, name)
    n_sets = len(datasets)
    if dataset is None:
        index, quirks = fp.choose_default_dataset(datasets)
    else:
        try:
            index = operator.index(dataset)
        except TypeError:
            index = 0
        if isinstance(dataset, bool) or not 1 <= index <= n_sets:
            raise ReadError(
                f"{name}: holds {n_sets} dataset{'s' if n_sets != 1 else ''}; "
                f"there is no dataset {dataset!r}"
            )
        quirks = []
    if dataset is None and index == 1 and "nextdata_invalid_ignored" in datasets[0].quirks:
        # An FCS 2.0 first dataset whose $NEXTDATA names a dataset that is not there: a truncated
        # Beckman LMD has lost its primary FCS 3.0 dataset; the FCS 2.0 one has other channels.
        raise ReadError(
            f"{name}: $NEXTDATA names a second dataset that is missing or damaged (truncated LMD?); "
            "the first dataset is not read in its place: ask for it explicitly (--dataset 1) if it is wanted"
        )
    try:
        return _read_dataset(
            buf, sha256, datasets, index, quirks, name, str(p), engine, allow_tot_mismatch, threads,
            default=dataset is None,
        )
    except ReadError as exc:
        if dataset is not None or index == 1:
            raise
        # The LMD's FCS 3.0 dataset is damaged. Its FCS 2.0 dataset holds other channels (10-bit
        # log, another $PAR): reading it in its place would change what the numbers mean. Refuse.
        raise ReadError(
            f"{one_line(exc, 300)} (FCS 3.0 dataset {index} of this LMD; its FCS 2.0 dataset 1 is not "
            "read in its place: ask for it explicitly (--dataset 1) if it is wanted)"
        ) from None


def _read_dataset(
    buf: fp.Buffer,
    sha256: str | BackgroundDigest,
    datasets: Sequence[fp.RawDataset],
    index: int,
    quirks: list[str],
    name: str,
    path: str,
    engine: str,
    allow_tot_mismatch: bool,
    threads: int | None = 1,
    default: bool = False,
) -> tuple[Events, ReadReport]:
    companion = "lmd_fcs3_dataset_chosen" in quirks
    ds, kw, layout, ds_quirks = floc.locate(buf, datasets, index, name, allow_tot_mismatch, companion)
    quirks = [*ds_quirks, *quirks, *layout.quirks]
    # before decoding: DATA may be decoded over the buffer
    nxt = datasets[index].offset if index < len(datasets) else None
    if nxt is None and default:
        floc.check_unchained(buf, ds, layout.start + layout.nbytes, name)
    fa.check_tail(buf, ds, layout, nxt, name)
    fa.check_alignment(buf, layout, name)  # also with nothing after DATA: two shifts can cancel out
    channels, q = fp.channel_table(kw, layout.n_par, name)
    quirks += q
    scaling = fd.channel_scaling(channels, kw)
    quirks += scaling.quirks

    reader: Literal["flowio", "hladr"] = "hladr"
    flowio_error = None
    data = None
    reason = ff.hladr_reason(engine, layout, kw, channels, quirks)
    if reason is None:
        try:
            data = ff.read_flowio(buf, ds, layout)
            reader, reason = "flowio", "standard file"
        except Exception as exc:  # flowio raises many types; all mean "use our decoder"
            flowio_error = one_line(f"{type(exc).__name__}: {exc}", 160)
            reason = f"flowio failed ({flowio_error})"
            quirks.append("flowio_error_fallback")
    if data is None:
        # The last use of buf: from here on DATA may hold the events instead.
        in_place = len(buf) - layout.nbytes <= _IN_PLACE_SLACK_BYTES and fd.decodes_in_place(buf, layout)
        data, q = fd.decode_events(buf, layout, channels, scaling, name, in_place=in_place, threads=threads)
        quirks += q
        if data.shape[0] != layout.n_events and layout.n_events >= 0 and not allow_tot_mismatch:
            raise ReadError(
                f"{name}: DATA holds {data.shape[0]} events but $TOT is {layout.n_events}"
            )
    elif fd.high_bits_set(buf, layout, channels):
        quirks.append("pnr_bitmask_applied")  # flowio masks silently; say so like our decoder
    if "no_datatype_assumed_I" in quirks and "pnr_bitmask_applied" in quirks:
        # Integers above $PnR with no $DATATYPE: the bit patterns of floats read as integers
        # (a damaged $DATATYPE keyword). Partec CyFlow, the corpus file without $DATATYPE, fits $PnR.
        raise ReadError(
            f"{name}: no $DATATYPE, and read as integers the values exceed $PnR: the data are not "
            "integers (a damaged $DATATYPE keyword?); re-export the file"
        )
    fv.check_plausible(data, [c.pnn for c in channels], scaling.limits, layout.datatype, name)

    events = Events(
        data=data,
        pnn=tuple(c.pnn for c in channels),
        pns=tuple(c.pns for c in channels),
        pnr=scaling.limits,
        keywords=kw,
        path=path,
        sha256=sha256,
        dataset=index,
        n_datasets=len(datasets),
        quirks=tuple(dict.fromkeys(quirks)),
    )
    byteorder = "mixed" if layout.byte_perm else ("little" if layout.endian == "<" else "big")
    report = ReadReport(
        reader=reader,
        reader_reason=reason,
        datasets=summarise_datasets(datasets),
        fcs_version=ds.version,
        datatype=layout.datatype,
        byteorder=byteorder,
        data_offset=layout.start,
        data_bytes=layout.nbytes,
        flowio_error=flowio_error,
    )
    return events, report


def read_events(path: str | os.PathLike, *, dataset: int | None = None, threads: int | None = None) -> Events:
    """Read one dataset of an FCS file into ``Events`` (see :func:`read_fcs`).

    Parameters
    ----------
    path : path-like
        The FCS (or Beckman LMD) file.
    dataset : int, optional
        1-based index of the dataset to read; default the first one, or the FCS
        3.0 dataset of a Beckman LMD pair.
    threads : int, optional
        As in :func:`read_fcs`.

    Returns
    -------
    Events
        float32 values with $PnE log decoding and $PnG gain applied; exactly $TOT
        events.

    Raises
    ------
    ReadError
        The file is missing or cannot be decoded; the message is one line.
    """
    return read_fcs(path, dataset=dataset, threads=threads)[0]


def parse_spillover(
    events_or_keywords: Events | Mapping[str, str], pnn: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray] | None:
    """Spillover matrix stored in a file's keywords, or None when there is none.

    Parameters
    ----------
    events_or_keywords : Events or mapping
        ``Events`` (its keywords and channels are used) or TEXT keywords (keys
        with or without ``$``, any case).
    pnn : sequence of str, optional
        Channel names ($PnN) in file order; default those of ``events`` or the
        $PnN keywords.

    Returns
    -------
    (names, matrix) or None
        ``names`` are the $PnN of the listed channels (usually a subset of the
        file's channels); ``matrix`` is the (k, k) float64 spillover matrix with
        the source channel in rows and the detector in columns, diagonal 1.

    Raises
    ------
    ReadError
        A spillover keyword exists but is malformed.

    Notes
    -----
    Sources, in order of preference: $SPILLOVER (FCS 3.1), SPILL (BD FACSDiva),
    $COMP (FCS 3.0; a matrix with negative off-diagonal terms is taken as the
    compensation matrix and inverted), $DFCiTOj (Beckman FCS 2.0: percent of FLi
    subtracted from FLj, i.e. ``S[i, j] = DFCiTOj / 100``). Names given as channel
    numbers (Navios/Gallios, Accuri C6: ``2,3,4,...``) are mapped to $PnN, and
    names matching a $PnS are mapped to that channel's $PnN.
    """
    if isinstance(events_or_keywords, Events):
        ev = events_or_keywords
        kw: Mapping[str, str] = ev.keywords
        names = list(pnn if pnn is not None else ev.pnn)
        pns = list(ev.pns)
        label = Path(ev.path).name or "FCS file"
    else:
        kw = {}
        for key, value in events_or_keywords.items():
            k = str(key).strip().lower()
            kw[k[1:] if k.startswith("$") else k] = str(value)
        n_par = fp.kw_opt_int(kw, "par") or 0
        if pnn is None:
            pnn = [kw.get(f"p{i}n", f"P{i}").strip() for i in range(1, n_par + 1)]
        names = list(pnn)
        pns = [kw.get(f"p{i}s", "").strip() for i in range(1, len(names) + 1)]
        label = "keywords"
    found = fs.parse_spillover_keywords(kw, names, pns, label)
    if found is None:
        return None
    _, channels, matrix = found
    return channels, matrix


def spillover_of(events: Events) -> Spillover | None:
    """The file's spillover ($SPILLOVER, SPILL, $COMP, $DFCiTOj) as a ``Spillover``, or None.

    Raises
    ------
    ReadError
        A spillover keyword exists but is malformed (the message names the file).
    """
    found = parse_spillover(events)
    if found is None:
        return None
    names, matrix = found
    return Spillover(tuple(names), np.asarray(matrix, dtype=np.float64))
