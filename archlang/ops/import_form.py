"""Helpers the op records' import mappings share (``archc import``): no torch import here,
the module or the call's arguments are given to each mapping by the importer."""

from __future__ import annotations

from .base import Signature


class Unsupported(Exception):
    """A call archlang cannot express: ``str(err)`` says why (the caller adds where)."""


def import_size(value):
    """A kernel/stride/padding value: an int for a square pair."""
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        return value[0]
    if isinstance(value, tuple) and len(value) == 1:
        return value[0]
    return value


def default(signature: Signature, arg: str):
    return next(a.default for a in signature.args if a.name == arg)


def kw(signature: Signature, pairs) -> tuple:
    """The keyword arguments ``(name, value)`` whose value differs from the default the
    op's signature gives: those the spec must write."""
    return tuple((k, v) for k, v in pairs if v != default(signature, k))


def simple(op: str):
    return lambda m: (op, (), ())


def activation_stub(op: str):
    def stub(input, inplace=False):
        return op, (), ()

    return stub


NN = "torch.nn.modules."
F = "torch.nn.functional."
