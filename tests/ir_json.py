"""Reading ``archc --emit ir`` JSON back into IR nodes, for the tests that check the JSON
holds every field (archlang itself never reads IR from JSON). Written from the document's
own shape: a dict with a ``kind`` is the node class of that tag; one without is known by
the field holding it."""

from __future__ import annotations

import dataclasses

from archlang.diagnostics import Span
from archlang.frontend import ir

KINDS = {
    f.default: cls
    for cls in vars(ir).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls)
    for f in dataclasses.fields(cls)
    if f.name == "kind"
}
UNTAGGED = {
    "labels": ir.Label,
    "label": ir.Label,
    "kwargs": ir.KwArg,
    "branches": ir.Branch,
    "params": ir.Param,
    "fields": ir.OutputField,
    "sources": ir.Label,  # `from` names; `input` and `a.b` are tagged (InputRef, PathRef)
    "parts": ir.Label,
    "inputs": ir.Label,  # a block's input names
    "rules": ir.KwArg,  # an extern's `shape = ...`
}


def read_ir(value, field: str | None = None):
    """The IR node (or tuple) of a JSON value; a top-level dict is a :class:`ir.Module`."""
    if isinstance(value, list):
        return tuple(read_ir(v, field) for v in value)
    if not isinstance(value, dict):
        return value
    if field is not None and (field == "span" or field.endswith("_span")):
        return Span(**value)
    cls = KINDS[value["kind"]] if "kind" in value else UNTAGGED.get(field, ir.Module)
    return cls(**{k: read_ir(v, k) for k, v in value.items() if k != "kind"})
