"""The records of a validation: one ``Check`` per thing checked, and the ``Validation`` they make up.

Calling contract: every check function of :mod:`hladr.validate` returns a list of ``Check``
(plain values: an id, what was checked, the value found, the limit, passed or not, and a detail
line); the shell collects them into a ``Validation`` and writes it as JSON, HTML and PDF. A check
with ``passed=False`` fails the validation (exit 1); ``tables`` carry figures shown beside the
checks (the accuracy table, the calibrations), never decisions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Check", "Validation", "SECTIONS"]

SECTIONS = {"IQ": "Installation qualification (IQ)", "OQ": "Operational qualification (OQ)"}


@dataclass(frozen=True)
class Check:
    """One check: ``value`` found against ``limit`` (both as text, as the record shows them)."""

    id: str  # e.g. "iq.files", "oq.accuracy.abc"
    section: str  # "IQ" or "OQ"
    what: str  # what is checked, in words
    value: str
    limit: str
    passed: bool
    detail: str = ""  # one line: why it failed, or what was found

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Table:
    """Figures shown beside the checks: a title, column heads and rows of text."""

    title: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "head": list(self.head), "rows": [list(r) for r in self.rows], "note": self.note}


@dataclass(frozen=True)
class Validation:
    """A whole validation: what ran (``facts``: version, seed, rule table, machine, ...), its checks and tables."""

    facts: dict[str, Any]
    checks: tuple[Check, ...]
    tables: tuple[Table, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "validation": "hladr installation and operational qualification",
            "passed": self.passed,
            "failed_checks": [c.id for c in self.failed],
            "facts": dict(self.facts),
            "checks": [c.to_dict() for c in self.checks],
            "tables": [t.to_dict() for t in self.tables],
        }
