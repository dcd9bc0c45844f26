"""Installation qualification: what is installed, and whether it is what was shipped.

Calling contract: each ``check_*`` function takes what it needs (the package folder, the rule
set) and returns a list of :class:`~hladr.validate.record.Check`; none writes anything. The
installed files are hashed against ``hladr/_files.sha256``, the list a wheel carries (written at
build time by ``hatch_build.py``); an editable (development) install has no such list, because its
files are the working copy's and may change at any moment: it is reported as not qualified, and
passes only when the caller allows a development install (``--allow-development``), which the
record then says.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import platform
import sys
from collections.abc import Iterable
from pathlib import Path

from .record import Check

__all__ = ["FILE_LIST", "check_versions", "check_dependencies", "check_files", "check_rules", "check_lots",
           "package_folder"]

FILE_LIST = "_files.sha256"
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".nbi", ".nbc")  # caches Python and Numba write beside the sources


def package_folder() -> Path:
    """The folder of the installed ``hladr`` package."""
    import hladr

    return Path(hladr.__file__).resolve().parent


def check_versions() -> list[Check]:
    """hladr's version and the interpreter (recorded; fails only when the version cannot be found)."""
    from hladr import __version__

    try:
        dist = md.version("hladr")
    except md.PackageNotFoundError:
        dist = None
    ok = dist is not None and dist == __version__
    return [
        Check("iq.version", "IQ", "hladr version (installed distribution and package agree)",
              __version__, f"distribution {dist}" if dist else "an installed distribution", ok,
              "" if ok else "the package's version is not that of an installed hladr distribution"),
        Check("iq.python", "IQ", "Python interpreter (>= 3.11, as the package requires)",
              f"{platform.python_implementation()} {platform.python_version()}", ">= 3.11",
              sys.version_info >= (3, 11), sys.executable),
    ]


def _requirements() -> list[str]:
    try:
        reqs = md.requires("hladr") or []
    except md.PackageNotFoundError:
        return []
    return [r for r in reqs if "extra ==" not in r]


def dependency_versions() -> list[tuple[str, str, str | None, bool]]:
    """(name, specifier, installed version or None, satisfied) for every run-time requirement of hladr."""
    from packaging.requirements import Requirement

    out = []
    for text in _requirements():
        req = Requirement(text)
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            version = None
        ok = version is not None and req.specifier.contains(version, prereleases=True)
        out.append((req.name, str(req.specifier) or "any", version, ok))
    return out


def check_dependencies() -> list[Check]:
    """Every run-time dependency installed in a version the package declares."""
    deps = dependency_versions()
    bad = [f"{n} {v or 'missing'} (needs {s})" for n, s, v, ok in deps if not ok]
    shown = ", ".join(f"{n} {v}" for n, _, v, ok in deps if ok)
    return [Check("iq.dependencies", "IQ", "run-time dependencies installed in the declared versions",
                  f"{len(deps) - len(bad)} of {len(deps)} as declared", "all",
                  bool(deps) and not bad, ("; ".join(bad) if bad else shown) if deps else
                  "no installed hladr distribution declares them")]


def _installed(folder: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_dir() or _SKIP_DIRS & set(path.relative_to(folder).parts) or path.name.endswith(_SKIP_SUFFIXES):
            continue
        if path.name == FILE_LIST and path.parent == folder:
            continue
        out[f"hladr/{path.relative_to(folder).as_posix()}"] = path
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _names(items: Iterable[str], most: int = 5) -> str:
    items = list(items)
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more


def check_files(folder: Path | None = None, *, allow_development: bool = False) -> list[Check]:
    """The SHA-256 of every installed file against the list the wheel shipped (changed, missing, added)."""
    folder = folder or package_folder()
    listing = folder / FILE_LIST
    what = "installed package files against the SHA-256 list shipped in the wheel"
    if not listing.is_file():
        detail = (f"development install ({folder}): files not fixed by a wheel, no {FILE_LIST} to check them "
                  "against; " + ("accepted by --allow-development: this record does not qualify an installation"
                                 if allow_development else "install the wheel, or pass --allow-development for a "
                                 "test of a development copy"))
        return [Check("iq.files", "IQ", what, "development install", "a wheel install", allow_development, detail)]
    expected: dict[str, str] = {}
    for n, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            return [Check("iq.files", "IQ", what, f"{FILE_LIST} unreadable", "a valid list", False,
                          f"{listing}: line {n} is not 'SHA-256  path'")]
        expected[rel] = digest
    found = _installed(folder)
    changed = sorted(rel for rel, digest in expected.items() if rel in found and _sha256(found[rel]) != digest)
    missing = sorted(rel for rel in expected if rel not in found)
    added = sorted(rel for rel in found if rel not in expected)
    problems = [f"changed: {_names(changed)}" if changed else "", f"missing: {_names(missing)}" if missing else "",
                f"not shipped: {_names(added)}" if added else ""]
    ok = not (changed or missing or added)
    value = f"{len(expected) - len(changed) - len(missing)} of {len(expected)} files match"
    return [Check("iq.files", "IQ", what, value, f"all {len(expected)}, none added", ok,
                  "; ".join(p for p in problems if p) if not ok else f"{folder}")]


def check_rules(rules, *, source: str, installed: bool) -> list[Check]:
    """The rule set in use: its id, version and file digest; a rule table that is not the installed one fails."""
    detail = f"{source}"
    return [Check("iq.rules", "IQ", "rule set in use is the one installed with the package",
                  rules.label, "the installed rule table", installed,
                  detail if installed else f"{detail}: a rule table given with --rules is not the installed one; "
                                           "this record does not qualify the installation")]


def check_lots() -> list[Check]:
    """The QuantiBRITE bead lots found (bundled and the user's), each file valid."""
    import datetime as dt

    from ..beads.lots import list_lots
    from ..errors import HladrError

    try:
        lots = list_lots()
    except HladrError as exc:
        return [Check("iq.lots", "IQ", "bead lot files found and valid", "invalid lot file", "all valid", False,
                      str(exc))]
    today = dt.date.today()
    shown = "; ".join(f"{lot.id} ({lot.product}, expiry {lot.expiry.isoformat() if lot.expiry else 'none'}"
                      f"{', EXPIRED' if lot.expired(today) else ''})" for lot in lots)
    return [Check("iq.lots", "IQ", "bead lot files found and valid", f"{len(lots)} lot(s)", "at least 1, all valid",
                  bool(lots), shown or "no lot file found")]
