"""Chains of pure rearrangements, recognised by what they do rather than how they are spelled.

A run of ``view`` / ``reshape`` / ``permute`` / ``transpose`` / ``flatten`` / ``contiguous``
(and the like) from a feature map to a feature map moves values and computes nothing, so it
is one of archlang's rearrangements exactly when it moves every value to the same place:
the chain is replayed on an index tensor (each element holds its own position, at the
traced input's shape) and the result compared with each candidate op's, made by torch's own
functions: the identity, ``channel_shuffle(g)``, ``pixel_shuffle(r)``, ``pixel_unshuffle(r)``,
``space_to_depth(b)`` and ``depth_to_space(b)``. TResNet's ``SpaceToDepth`` (view, permute,
view), ShuffleNet's ``channel_shuffle`` (view, transpose, contiguous, view) and ``einops``-style
spellings of either are all one op; any other rearrangement keeps its own refusal, located,
with what it does.

The replay runs again at another batch size, the sizes read off the batch dimension
(``x.size(0)``) following it, so a chain that only works at the traced batch is no match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn.functional as F  # noqa: N812

from .shape_prop import BATCH

# Tensor methods and functions that only move values (their other arguments are sizes or dims).
METHODS = frozenset(
    "view reshape permute transpose swapaxes swapdims movedim flatten unflatten squeeze unsqueeze "
    "contiguous clone".split()
)
FUNCTIONS = frozenset(
    {
        torch.reshape,
        torch.permute,
        torch.transpose,
        torch.swapaxes,
        torch.swapdims,
        torch.movedim,
        torch.flatten,
        torch.unflatten,
        torch.squeeze,
        torch.unsqueeze,
        F.pixel_shuffle,
        F.pixel_unshuffle,
        F.channel_shuffle,
        torch.pixel_shuffle,
        torch.pixel_unshuffle,
        torch.channel_shuffle,
    }
)


def is_step(node: fx.Node) -> bool:
    """A node that only moves the values of its first argument, a traced tensor."""
    if node.op == "call_method":
        kind = node.target in METHODS
    elif node.op == "call_function":
        kind = node.target in FUNCTIONS
    else:
        return False
    return kind and bool(node.args) and isinstance(node.args[0], fx.Node) and not _reads_nodes(node)


def _reads_nodes(node: fx.Node) -> bool:
    found = []
    fx.node.map_arg((node.args[1:], node.kwargs), found.append)
    return bool(found)


@dataclass(frozen=True)
class Match:
    """A chain ``steps`` from ``start``'s value: ``op`` is ``(name, args, kwargs)``, or
    ``None`` where it is the identity."""

    start: fx.Node
    steps: tuple[fx.Node, ...]
    op: tuple | None


@dataclass(frozen=True)
class Unmatched:
    """A chain from a map to a map that is none of the candidates (for the refusal)."""

    start: fx.Node
    steps: tuple[fx.Node, ...]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    def describe(self) -> str:
        def shape(s):
            return "×".join(["B", *map(str, s[1:])])

        steps = " → ".join(spelling(n) for n in self.steps)
        return f"`{steps}` rearranges {shape(self.in_shape)} into {shape(self.out_shape)}"


def spelling(node: fx.Node) -> str:
    """A step as the forward wrote it: the method's or the function's name."""
    return node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(int(d) for d in shape) if shape is not None else None


def find(graph: fx.Graph) -> tuple[dict[fx.Node, Match], dict[fx.Node, Unmatched]]:
    """The matched chains by their last node, and the nodes of chains from a map to a map
    that match nothing (their refusal says what the chain does)."""
    matches: dict[fx.Node, Match] = {}
    unmatched: dict[fx.Node, Unmatched] = {}
    for node in graph.nodes:
        if not is_step(node) or _continues(node.args[0]):
            continue
        start = node.args[0]
        in_shape = _shape(start)
        if in_shape is None or len(in_shape) != 4:
            continue
        chain = [node]
        while _continues(chain[-1]):
            chain.append(next(iter(chain[-1].users)))
        ends = [i for i, n in enumerate(chain) if (s := _shape(n)) is not None and len(s) == 4]
        for i in reversed(ends):  # the longest chain that is one op
            op = _recognise(chain[: i + 1], in_shape, _shape(chain[i]))
            if op is not False and _tail_stands(chain[i + 1 : ends[-1] + 1], _shape(chain[i])):
                matches[chain[i]] = Match(start, tuple(chain[: i + 1]), op)
                break
        else:
            if ends:
                steps = tuple(chain[: ends[-1] + 1])
                refusal = Unmatched(start, steps, in_shape, _shape(steps[-1]))
                for n in steps:
                    unmatched[n] = refusal
    return matches, unmatched


def _tail_stands(tail: list[fx.Node], shape: tuple[int, ...]) -> bool:
    """Whether the steps after a matched start of a chain can stand on their own: none, a
    permute (into or out of channels-last, imported step by step), or another match.
    Otherwise the start was a coincidence of sizes (a (B, 8, 1, 1) map viewed as
    (B, 2, 2, 2) is a pixel shuffle, but ResNeSt's rSoftMax transposes it next: the channel
    groups the importer reads step by step) and the chain is taken step by step."""
    if not tail or all(spelling(n) in ("permute", "contiguous") for n in tail):
        return True
    return _recognise(tail, shape, _shape(tail[-1])) is not False


def _continues(node) -> bool:
    """``node`` is a step whose only reader is the next step of the same chain, in the same
    module's forward (a chain does not cross a module boundary)."""
    if not isinstance(node, fx.Node) or not is_step(node) or len(node.users) != 1:
        return False
    (user,) = node.users
    return (
        is_step(user) and user.args[0] is node and user.meta.get("nn_module_stack") == node.meta.get("nn_module_stack")
    )


def _replay(chain: list[fx.Node], x: torch.Tensor, batch: int | None = None):
    """The chain's steps on ``x``; sizes read off the batch dim become ``batch``."""

    def size(a):
        if isinstance(a, (tuple, list)):
            return type(a)(map(size, a))
        return batch if batch is not None and getattr(a, "batch", False) else a

    for node in chain:
        args = [size(a) for a in node.args[1:]]
        kwargs = {k: size(v) for k, v in node.kwargs.items()}
        if node.op == "call_method":
            x = getattr(x, node.target)(*args, **kwargs)
        else:
            x = node.target(x, *args, **kwargs)
    return x


def _candidates(in_shape: tuple[int, ...], out_shape: tuple[int, ...]):
    """``((name, args), function)`` for each op that maps ``in_shape`` to ``out_shape``."""
    _, c, h, w = in_shape
    _, oc, oh, ow = out_shape
    if (oc, oh, ow) == (c, h, w):
        yield None, lambda x: x
        for g in range(2, c):
            if c % g == 0:
                yield ("channel_shuffle", (g,)), lambda x, g=g: F.channel_shuffle(x, g)
    elif oh and ow and h % oh == 0 and w % ow == 0 and h // oh == w // ow > 1:
        r = h // oh
        if oc == c * r * r:
            yield ("pixel_unshuffle", (r,)), lambda x: F.pixel_unshuffle(x, r)
            # block position major: pixel_unshuffle's channels (C, r²) transposed to (r², C)
            yield ("space_to_depth", (r,)), lambda x: F.channel_shuffle(F.pixel_unshuffle(x, r), c)
    elif h and w and oh % h == 0 and ow % w == 0 and oh // h == ow // w > 1:
        r = oh // h
        if c == oc * r * r:
            yield ("pixel_shuffle", (r,)), lambda x: F.pixel_shuffle(x, r)
            yield ("depth_to_space", (r,)), lambda x: F.pixel_shuffle(F.channel_shuffle(x, r * r), r)


def _recognise(chain: list[fx.Node], in_shape, out_shape):
    """The op (``None``: the identity) the chain is at every batch size, else ``False``."""
    candidates = list(_candidates(in_shape, out_shape))
    if not candidates:
        return False
    other = BATCH + 1
    index = torch.arange(math.prod(in_shape)).view(in_shape)
    again = torch.arange(other * math.prod(in_shape[1:])).view(other, *in_shape[1:])
    try:
        moved, moved_again = _replay(chain, index), _replay(chain, again, other)
    except (RuntimeError, TypeError, ValueError, IndexError):  # a view the replay cannot make
        return False
    if tuple(moved.shape) != tuple(out_shape):
        return False
    for candidate, fn in candidates:
        if torch.equal(moved, fn(index)) and torch.equal(moved_again, fn(again)):
            return None if candidate is None else (*candidate, ())
    return False
