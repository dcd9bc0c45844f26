"""``hladr validate``: the installation and operational qualification a clinical lab files.

The checks (:mod:`~hladr.validate.iq`, :mod:`~hladr.validate.oq_units`,
:mod:`~hladr.validate.oq_runs`) return plain :class:`~hladr.validate.record.Check` records; the
shell (:mod:`~hladr.validate.command`) runs them, shows one line per check and writes the record
(:mod:`~hladr.validate.html`, :mod:`~hladr.validate.pdf`, and the JSON). Acceptance limits come
from the rule table's ``[validation]`` section.
"""

from .record import Check, Validation

__all__ = ["Check", "Validation"]
