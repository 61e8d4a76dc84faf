"""Channel-group views: tensors of more dims than archlang's values, read as those values.

Selective-kernel and split-attention units (SKNet, ResNeSt) stack R paths into a
``(B, R, C, H, W)`` tensor, or reshape a ``(B, R·C, H, W)`` map to it, then sum over the
paths, softmax over them and multiply. In memory that tensor *is* a ``(B, R·C, H, W)`` map:
the importer keeps it as that archlang value (its *view*: :class:`View`) and reads each op
on the paths as an op on the map's channel groups:

* ``torch.stack(paths, 1)`` (and ``torch.cat`` of such views on dim 1): ``concat``;
* ``view`` / ``reshape`` / ``unsqueeze`` / ``squeeze`` that keep the batch first, split the
  channels into dims and keep H×W (or drop its 1×1): nothing, the same value;
* ``sum`` over dim 1 (R groups): ``add`` of the R ``narrow`` slices of C channels;
* ``softmax`` over dim 1: ``radix_softmax(R)``; after ``view(B, G, R, -1).transpose(1, 2)``
  (ResNeSt's rSoftMax) ``radix_softmax(R, groups=G)``;
* ``*`` / ``+`` of two views with the same channel dims (an H×W one times a 1×1 one): ``mul``
  / ``add`` of the maps.

Whatever else reads a view (a layer, a slice, the network's output) is a located E721:
archlang's ops read the map, not its grouping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.fx as fx

from archlang.importer.series_parallel import problem

from .concrete import Dim
from .tree import Call

# Tensor methods and torch functions that only reshape (a view of the same memory).
RESHAPE_METHODS = frozenset({"view", "reshape", "unsqueeze", "squeeze"})
RESHAPE_FUNCTIONS = (torch.reshape, torch.unsqueeze, torch.squeeze)
# ``flatten``, on a view: a reshape too (``flatten(1, 2)`` of (B, R, C, H, W) is the map itself)
FLATTENS = ("flatten", torch.flatten)
GROUP_METHODS = frozenset({"sum", "transpose", "swapaxes"}) | RESHAPE_METHODS
GROUP_FUNCTIONS = (torch.stack, torch.sum, torch.transpose, torch.swapaxes, *RESHAPE_FUNCTIONS)
SOFTMAX_FUNCTIONS = (torch.softmax, torch.nn.functional.softmax)


@dataclass(frozen=True)
class View:
    """A traced tensor read as the archlang value of shape ``shape`` (``(B, N, H, W)`` or
    ``(B, N)``, batch first), its channels split into several dims. ``swapped``: dims 1 and
    2 exchanged by a transpose, so the tensor is not the map's memory in order (only a
    softmax over dim 1 may read it: rSoftMax)."""

    shape: tuple[int, ...]
    swapped: bool = False


def _meta(node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def channel_dims(shape: tuple[int, ...], value: tuple[int, ...]) -> tuple[int, ...] | None:
    """The dims of ``shape`` that split ``value``'s channels (``(R, C)`` for a
    ``(B, R, C, H, W)`` view of ``(B, R·C, H, W)``), or None where ``shape`` is not such a
    view: the batch first, then dims whose product is the channels, then ``value``'s H×W
    (or nothing, or ones, where H×W is 1×1)."""
    if len(shape) < 2 or len(value) < 2 or shape[0] != value[0]:
        return None
    spatial = value[2:]
    product = 1
    for k in range(1, len(shape)):
        product *= shape[k]
        if product == value[1]:
            rest = shape[k + 1 :]
            ones = all(d == 1 for d in spatial) and all(d == 1 for d in rest)
            if rest == spatial or ones:
                return shape[1 : k + 1]
        if product > value[1]:
            return None
    return None


class GroupedViews:
    """The converter's reading of channel-group views (mixed into ``trace._Converter``)."""

    views: dict  # fx.Node -> View, for every traced tensor that is not its value's shape

    # -- reading values

    def value_shape(self, node) -> tuple[int, ...] | None:
        """The archlang value's shape (batch first) behind a traced tensor."""
        view = self.views.get(node)
        return view.shape if view is not None else _meta(node)

    def grouped(self, node) -> bool:
        """A view, or a tensor of a rank archlang has no value of (not a map, not a vector)."""
        shape = _meta(node)
        return shape is not None and (node in self.views or len(shape) not in (2, 4))

    def refuse_view(self, node: fx.Node, arg, what: str):
        view = self.views[arg]
        dims = "×".join(map(str, _meta(arg) or ()))
        return problem(
            "E721",
            f"{self._where(node)}: {what} reads a {dims} tensor, channel groups of a "
            f"{'×'.join(map(str, view.shape))} map",
            "archlang reads such a view only where it is stacked, summed over dim 1, soft-maxed over dim 1, "
            "multiplied or added elementwise, or reshaped back (SKNet, ResNeSt); see docs/import.md",
        )

    def flat_view(self, arg) -> int | None:
        """A (B, C) view of a C×1×1 map (timm's RadixSoftmax returns one) read as a vector:
        the map's ``flatten``, made once where the view was made."""
        view = self.views.get(arg)
        own = _meta(arg)
        if view is None or view.swapped or own is None or len(own) != 2 or len(view.shape) != 4:
            return None
        self._add(arg, [self.values[arg]], Call("flatten", source="a flat view of a C×1×1 map"))
        del self.views[arg]
        return self.values[arg]

    def _set_view(self, node: fx.Node, value: int, shape: tuple[int, ...], swapped: bool = False) -> None:
        self.values[node] = value
        if _meta(node) != shape or swapped:
            self.views[node] = View(shape, swapped)

    def _source(self, node: fx.Node, arg, what: str) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        """``(value, value shape, channel dims)`` of a tensor a group op reads."""
        value = self.values.get(arg) if isinstance(arg, fx.Node) else None
        shape, own = self.value_shape(arg), _meta(arg)
        view = self.views.get(arg)
        if view is not None and view.swapped:
            raise problem(
                "E721",
                f"{self._where(node)}: `{what}` reads channel groups transposed (dims 1 and 2 exchanged), not in "
                "the order of the map's channels",
                "archlang reads a transpose(1, 2) of channel groups only in a softmax over dim 1 (ResNeSt's rSoftMax)",
            )
        if not isinstance(value, int) or shape is None or own is None:
            raise problem(
                "E721",
                f"{self._where(node)}: {what} reads a value that is not a layer's output tensor (or its channel "
                "groups, in order)",
                "archlang reads a (B, R, C, H, W) tensor as the (B, R·C, H, W) map it was stacked or reshaped from",
            )
        dims = channel_dims(own, shape)
        if dims is None:
            raise self._not_a_view(node, what, own, shape)
        return value, shape, dims

    def _not_a_view(self, node: fx.Node, what: str, own, shape):
        return problem(
            "E721",
            f"{self._where(node)}: `{what}` makes a {'×'.join(map(str, own))} tensor of a "
            f"{'×'.join(map(str, shape))} map: archlang reads only the map itself or its channels split into "
            "groups (the batch first, H×W kept)",
            "stack paths on dim 1, or reshape (B, R·C, H, W) to (B, R, C, H, W)",
        )

    # -- reshapes

    def reshape(self, node: fx.Node) -> bool:
        """A reshape of a view, or to a rank archlang has no value of: the same value (True).
        False: a reshape of a map or vector to a map or vector, the op records' business
        (``view(B, -1)`` is a flatten)."""
        arg = node.args[0] if node.args else node.kwargs.get("input")
        own, out = _meta(arg), _meta(node)
        if own is None or out is None:
            return False
        if arg not in self.views and out != own and (len(out) == 2 or channel_dims(out, own) is None):
            return False  # a flatten, or no grouping of the channels: the op records' (they refuse it)
        what = f"Tensor.{node.target}" if node.op == "call_method" else f"torch.{node.target.__name__}"
        value, shape, _ = self._source(node, arg, what)
        if node.target in ("view", "reshape", torch.reshape):  # the others keep the batch dim
            self._batch_kept(node, what)
        if out == shape or channel_dims(out, shape) is not None:
            self._set_view(node, value, shape)
        elif len(out) == 2 and len(shape) == 4:  # (B, R, C, H, W) -> (B, R·C·H·W): the map flattened
            self._add(node, [value], Call("flatten", source=what))
        else:
            raise self._not_a_view(node, what, out, shape)
        return True

    def _batch_kept(self, node: fx.Node, what: str) -> None:
        """The new shape's first dim is the batch read off a tensor (``x.size(0)``) or -1:
        a literal would be the traced batch, not the batch the spec runs on."""
        dims = [a for a in node.args[1:]] or list(node.kwargs.get("shape", ()))
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = list(dims[0])
        first = dims[0] if dims else None
        if not (isinstance(first, Dim) and first.batch) and not (first == -1 and -1 not in dims[1:]):
            raise problem(
                "E721",
                f"{self._where(node)}: `{what}` to a shape whose first dim is not the batch read off a tensor",
                "write the batch as `x.size(0)` (or `x.shape[0]`), as the forward runs on any batch",
            )

    def transpose(self, node: fx.Node) -> None:
        """``transpose(1, 2)`` of a view whose dims 1 and 2 split the channels (rSoftMax)."""
        arg = node.args[0]
        what = f"Tensor.{node.target}" if node.op == "call_method" else f"torch.{node.target.__name__}"
        dims = list(node.args[1:]) + [node.kwargs[k] for k in ("dim0", "dim1") if k in node.kwargs]
        rank = len(_meta(arg) or ())
        if not self.grouped(arg) or len(dims) != 2 or not all(isinstance(d, int) for d in dims):
            raise problem(
                "E721",
                f"{self._where(node)}: no archlang op for `{what}` of a map or vector",
                "archlang transposes only channel groups, before a softmax over them (ResNeSt's rSoftMax)",
            )
        value, shape, channels = self._source(node, arg, what)
        if sorted(d % rank for d in dims) != [1, 2] or len(channels) < 2:
            raise problem(
                "E721",
                f"{self._where(node)}: `{what}` of dims {tuple(dims)}: archlang reads only the exchange of the first "
                "two channel groups (dims 1 and 2), before a softmax over dim 1 (ResNeSt's rSoftMax)",
                "x.view(B, groups, radix, -1).transpose(1, 2), then a softmax over dim 1, is `radix_softmax`",
            )
        self._set_view(node, value, shape, swapped=True)

    # -- stack, sum, softmax

    def stack(self, node: fx.Node) -> None:
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        out = _meta(node)
        if not isinstance(tensors, (list, tuple)) or not tensors or out is None or not isinstance(dim, int):
            raise problem("E721", f"{self._where(node)}: torch.stack of something other than a list of tensors")
        if dim % len(out) != 1:
            raise problem(
                "E722",
                f"{self._where(node)}: `torch.stack` on dim={dim}: archlang stacks paths on dim 1 "
                "(a concat of their channels)",
            )
        self._join(node, tensors, "torch.stack")

    def cat_views(self, node: fx.Node, tensors) -> None:
        """``torch.cat`` on dim 1 of views (paths unsqueezed on dim 1, then joined)."""
        self._join(node, tensors, "torch.cat")

    def _join(self, node: fx.Node, tensors, what: str) -> None:
        sources = [self._source(node, t, what) for t in tensors]
        shapes = {s[2:] for _, s, _ in sources}
        inner = {(dims[1:] if node.target is not torch.stack else dims) for _, _, dims in sources}
        if len(shapes) != 1 or len(inner) != 1 or len({len(_meta(t)) for t in tensors}) != 1:
            raise problem(
                "E721",
                f"{self._where(node)}: `{what}` of channel groups of different shapes has no archlang op",
                "the paths joined on dim 1 must have the same shape",
            )
        shape = (sources[0][1][0], sum(s[1] for _, s, _ in sources), *sources[0][1][2:])
        values = [v for v, _, _ in sources]
        if len(values) == 1:
            self._set_view(node, values[0], shape)
            return
        self._add(node, values, merge="concat")
        self._set_view(node, self.values[node], shape)

    @staticmethod
    def sums_paths(node: fx.Node) -> bool:
        """A sum over one dim (the paths' dim, when shapes are known)."""
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        return isinstance(dim, int) or (isinstance(dim, (tuple, list)) and len(dim) == 1)

    def group_sum(self, node: fx.Node) -> None:
        """``x.sum(1)`` of R groups of C channels: the sum of the R slices (``narrow``)."""
        arg = node.args[0] if node.args else node.kwargs.get("input")
        what = "Tensor.sum" if node.op == "call_method" else "torch.sum"
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        dim = dim[0] if isinstance(dim, (tuple, list)) and len(dim) == 1 else dim
        extra = {k: v for k, v in node.kwargs.items() if k not in ("input", "dim", "keepdim")}
        rank = len(_meta(arg) or ()) or 1
        if not isinstance(dim, int) or dim % rank != 1 or not self.grouped(arg) or extra or len(node.args) > 3:
            raise problem(
                "E721",
                f"{self._where(node)}: no archlang op for `{what}` other than over dim 1 of channel groups",
                "the sum of R paths stacked on dim 1 is an `add` of their channel slices (SKNet, ResNeSt)",
            )
        value, shape, channels = self._source(node, arg, what)
        if len(channels) < 2:
            raise problem("E721", f"{self._where(node)}: `{what}` over the channels has no archlang op")
        groups, width = channels[0], shape[1] // channels[0]
        out_shape = (shape[0], width, *shape[2:])
        if groups == 1:
            self._set_view(node, value, out_shape)
            return
        slices = []
        for g in range(groups):
            self._add(node, [value], Call("narrow", (g * width, width), source=what))
            slices.append(self.values[node])
        self._add(node, slices, merge="add")
        self._set_view(node, self.values[node], out_shape)

    def group_softmax(self, node: fx.Node, dim, arg=None, what: str = "softmax") -> None:
        """A softmax over dim 1 of channel groups: ``radix_softmax``."""
        arg = node.args[0] if arg is None else arg
        view = self.views.get(arg)
        swapped = view is not None and view.swapped
        rank = len(_meta(arg) or ()) or 1
        if not isinstance(dim, int) or dim % rank != 1:
            raise problem(
                "E722",
                f"{self._where(node)}: `{what}` over dim={dim} of channel groups: archlang's radix_softmax runs "
                "over dim 1 (the paths)",
            )
        if swapped:
            self.views[arg] = View(view.shape)  # read in memory order below
        try:
            value, shape, channels = self._source(node, arg, what)
        finally:
            if swapped:
                self.views[arg] = view
        if len(channels) < 2:
            raise problem("E721", f"{self._where(node)}: `{what}` over the channels of a map has no archlang op")
        # rSoftMax: memory (groups, radix, rest), read transposed as (radix, groups, rest)
        radix, groups = channels[0], channels[1] if swapped else 1
        kwargs = (("groups", groups),) if groups != 1 else ()
        self._add(node, [value], Call("radix_softmax", (radix,), kwargs, source=what))
        self._set_view(node, self.values[node], shape)

    # -- elementwise

    def merge_views(self, node: fx.Node, mode: str, a, b) -> None:
        """``a * b`` / ``a + b`` where one is a view: the maps' product / sum, their channel
        groups alike (an H×W map times a 1×1 one broadcasts as archlang's ``mul`` does)."""
        symbol = {"add": "+", "mul": "*"}[mode]
        tensors = [t for t in (a, b) if isinstance(t, fx.Node)]
        if len(tensors) == 1 and mode == "mul" and isinstance(a if tensors[0] is b else b, (int, float)):
            factor = a if tensors[0] is b else b
            value, shape, _ = self._source(node, tensors[0], symbol)
            self._add(node, [value], Call("scale", (float(factor),), source=symbol))
            self._set_view(node, self.values[node], shape)
            return
        if len(tensors) != 2:
            raise problem(
                "E721",
                f"{self._where(node)}: `{symbol}` of channel groups and a constant, buffer or parameter has no "
                "archlang op",
            )
        (va, sa, ga), (vb, sb, gb) = (self._source(node, t, symbol) for t in tensors)
        same_rank = len(_meta(a)) == len(_meta(b)) and len(sa) == len(sb)
        spatial = sa[2:] == sb[2:] or (mode == "mul" and all(d == 1 for d in min(sa[2:], sb[2:], key=math.prod)))
        if not (same_rank and ga == gb and sa[:2] == sb[:2] and spatial):
            raise problem(
                "E721",
                f"{self._where(node)}: `{symbol}` of {'×'.join(map(str, _meta(a)))} and "
                f"{'×'.join(map(str, _meta(b)))} channel groups has no archlang op",
                f"archlang's `{mode}` combines maps of the same channels (and a C×1×1 one broadcast, for `mul`)",
            )
        self._add(node, [va, vb], merge=mode)
        self._set_view(node, self.values[node], max(sa, sb, key=math.prod))
