"""Every op's record, by op: :data:`RECORDS`, collected from the family modules.

The only place that lists the families; a family module registers an op by listing its
:class:`~archlang.ops.record.OpRecord` in its ``RECORDS``.
"""

from __future__ import annotations

from . import activation, attention, classifier, conv, external, norm, pool, regularize, resample, structure
from .base import Op
from .record import OpRecord

FAMILIES = (structure, conv, norm, activation, attention, pool, regularize, classifier, resample, external)


def _collect() -> dict[Op, OpRecord]:
    found: dict[Op, OpRecord] = {}
    for family in FAMILIES:
        for record in family.RECORDS:
            if record.op in found:
                raise ValueError(f"{record.op} has two records ({family.__name__})")
            found[record.op] = record
    missing = [op.value for op in Op if op not in found]
    if missing:
        raise ValueError(f"ops without a record: {', '.join(missing)}")
    return {op: found[op] for op in Op}  # in the order of Op, as the tables were


RECORDS: dict[Op, OpRecord] = _collect()
