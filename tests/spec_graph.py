"""Helpers for the language tests: compile a network body and read its graph."""

from __future__ import annotations

from archlang import compile_spec


def graph(body: str, header: str = "network N", pre: str = "", params=None, input_line="input 3x32x32"):
    return compile_spec(f"{pre}\n{header} {{\n  {input_line}\n{body}\n}}\n", params).graph


def shape(g, nid):
    return g.nodes[nid].shape


def attrs(g, nid):
    return g.nodes[nid].attrs


def ids(g):
    return list(g.nodes)
