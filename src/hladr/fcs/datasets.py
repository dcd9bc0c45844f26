"""The datasets of an FCS or LMD file, listed from HEADER and TEXT alone (DATA is not read).

:func:`list_datasets` (re-exported by :mod:`hladr.fcs.read`) lists the datasets of a file
with their $TOT, $PAR, $DATATYPE and $CYT, without reading DATA (a Beckman LMD holds an
FCS 2.0 and an FCS 3.0 dataset of the same events); :func:`summarise_datasets` gives the
same records for datasets already parsed, as :class:`hladr.fcs.read.ReadReport` carries them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from . import _parse as fp
from ._load import load

__all__ = ["DatasetSummary", "list_datasets", "summarise_datasets"]


@dataclass(frozen=True)
class DatasetSummary:
    """One dataset of a file, as listed by :func:`list_datasets`.

    ``events``/``channels`` are $TOT/$PAR as written (None when missing or not a
    number); ``offset`` is the byte position of the dataset's HEADER.
    """

    index: int
    offset: int
    fcs_version: str
    events: int | None
    channels: int | None
    datatype: str | None
    instrument: str | None



def summarise_datasets(datasets: Sequence[fp.RawDataset]) -> tuple[DatasetSummary, ...]:
    """One :class:`DatasetSummary` per parsed dataset, in file order."""
    out = []
    for ds in datasets:
        kw = ds.keywords
        cyt = kw.get("cyt", "").strip()
        out.append(
            DatasetSummary(
                index=ds.index,
                offset=ds.offset,
                fcs_version=ds.version,
                events=fp.kw_opt_int(kw, "tot"),
                channels=fp.kw_opt_int(kw, "par"),
                datatype=kw.get("datatype", "").strip().upper() or None,
                instrument=cyt or None,
            )
        )
    return tuple(out)


def list_datasets(path: str | os.PathLike) -> list[DatasetSummary]:
    """Datasets of an FCS/LMD file, in file order (HEADER and TEXT only, no DATA).

    Raises
    ------
    ReadError
        The file is missing or its first HEADER/TEXT cannot be parsed.
    """
    p, buf, _ = load(path, digest_wanted=False)
    return list(summarise_datasets(fp.scan_datasets(buf, p.name)))
