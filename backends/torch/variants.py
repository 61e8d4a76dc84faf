"""Instances of one block template that differ in structure (an ``if`` on a parameter).

Two structures told apart by one boolean parameter become one class whose constructor
takes that choice, as torchvision writes ``BasicBlock(inplanes, planes, stride=1,
downsample=None)``: the statements both structures share are written once, the others
under ``if downsample:`` / ``else:``. Instantiated with the parameter's value, the class
executes exactly the statements of that structure, so the merge cannot change a model.
Other differences give one class per structure, named after what tells them apart
(:func:`variant_names`). No torch import.
"""

from __future__ import annotations

import difflib
import re

from archlang.ops import Op

from .naming import sanitize
from .plan import Leaf, iter_plans
from .pyfmt import INDENT, flat
from .symbols import Scaled, Slot, bind_slots
from .texts import Stmt

I2 = INDENT * 2


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in sanitize(text).split("_") if part)


def variant_names(template: str, groups: list[list], params: list[str]) -> list[str]:
    """Class names for groups of instances of one template that differ in structure: the
    template's name plus the parameters that tell the groups apart (``downsample=true`` ->
    ``BasicBlockDownsample``, ``stride=2`` -> ``...Stride2``); booleans first."""
    if len(groups) == 1:
        return [template]

    def value(g, q):
        return g[0].plan.args.get(q)

    constant = [q for q in params if all(len({repr(d.plan.args.get(q)) for d in g}) == 1 for g in groups)]
    constant.sort(key=lambda q: not isinstance(value(groups[0], q), bool))
    chosen: list[str] = []
    for q in constant:
        distinct = len({tuple(repr(value(g, c)) for c in chosen) for g in groups})
        if distinct == len(groups):
            break
        if len({tuple(repr(value(g, c)) for c in [*chosen, q]) for g in groups}) > distinct:
            chosen.append(q)
    names = []
    for g in groups:
        suffix = ""
        for q in chosen:
            v = value(g, q)
            if isinstance(v, bool):
                suffix += _camel(q) if v else ""
            elif isinstance(v, str):
                suffix += _camel(q) + _camel(v)
        if any(not isinstance(value(g, q), bool | str) for q in chosen):
            # Numbers (`k=1`, `groups=144`) are one instance's arguments, not what the
            # class is: say what its convolution is instead, or nothing (the docstring lists
            # the values; classes that read alike get _2, _3 from the namespace).
            suffix += conv_kind(g[0].plan)
        names.append(template + suffix)
    return names


def conv_kind(plan) -> str:
    """What the convolution of a module with one convolution is, in the words of the
    papers: ``Pointwise`` (1×1), ``Depthwise`` (one group per channel), ``Grouped``,
    ``Strided``; empty for a plain stride-1 convolution, or a module with several (a
    block is more than its first convolution)."""
    convs = [c for p in iter_plans(plan) for c in p.children if isinstance(c, Leaf) and c.op is Op.CONV2D]
    if len(convs) != 1:
        return ""
    conv = convs[0]
    pair = lambda v: tuple(v) if isinstance(v, tuple | list) else (v, v)  # noqa: E731
    words = []
    if pair(conv.attrs["kernel_size"]) == (1, 1):
        words.append("Pointwise")
    groups = conv.attrs.get("groups", 1)
    channels = conv.in_shape[-1] if conv.in_last else conv.in_shape[0]
    if groups > 1:
        words.append("Depthwise" if groups == channels else "Grouped")
    if any(s > 1 for s in pair(conv.attrs.get("stride", 1))):
        words.append("Strided")
    return "".join(words)


def separating_flag(groups: list[list], params: list[str]) -> str | None:
    """A boolean parameter that is True in every instance of one group and False in every
    instance of the other (two groups only)."""
    if len(groups) != 2:
        return None
    for q in params:
        values = [{d.plan.args.get(q) for d in g} for g in groups]
        if all(len(v) == 1 and isinstance(next(iter(v)), bool) for v in values) and values[0] != values[1]:
            return q
    return None


class _Shape(dict):
    def __missing__(self, key):
        return "<>"


def _slots(tree, out: list) -> list:
    if isinstance(tree, Slot):
        out.append(tree.index)
    elif isinstance(tree, (list, tuple)):
        for item in tree:
            _slots(item, out)
    elif hasattr(tree, "__dataclass_fields__"):
        for name in tree.__dataclass_fields__:
            _slots(getattr(tree, name), out)
    return out


def unify(a, b) -> None:
    """Bind corresponding slots of two structures alike where the values allow it.

    ``a`` and ``b`` are (members, binding) of two groups. Submodules with the same name and
    the same constructor shape have corresponding slots; where one group binds a slot to a
    parameter (``stride``) and the other to a literal that equals that parameter in every
    one of its instances, the literal becomes the parameter too, so the statement is the
    same in both and is written once."""
    (ma, ba), (mb, bb) = a, b
    trees_b = dict(mb[0].init)
    for attr, tree in ma[0].init:
        other = trees_b.get(attr)
        if other is None or flat(bind_slots(tree, _Shape())) != flat(bind_slots(other, _Shape())):
            continue
        for sa, sb in zip(_slots(tree, []), _slots(other, []), strict=True):
            for (bx, sx), (my, by, sy) in (((ba, sa), (mb, bb, sb)), ((bb, sb), (ma, ba, sa))):
                bound = bx.get(sx)
                if isinstance(bound, (str, Scaled)) and not isinstance(by.get(sy), (str, Scaled)):
                    param, factor = (bound.param, bound.factor) if isinstance(bound, Scaled) else (bound, 1)
                    ok = all(
                        isinstance(d.plan.args.get(param), (int, float))
                        and d.slots[sy] == d.plan.args[param] * factor
                        and type(d.slots[sy]) is type(d.plan.args[param])
                        for d in my
                    )
                    if ok:
                        by[sy] = bound


def _key(stmt: Stmt) -> str:
    """A statement's text without its shape comment (shapes differ between instances)."""
    return "\n".join(_SHAPE.sub("", line) for line in stmt.render(I2) if not _SHAPE.fullmatch(line))


_SHAPE = re.compile(r" *# \(N[^)]*\)$")


def merge_statements(a: list[Stmt], b: list[Stmt], when_a: str, when_b: str) -> list[Stmt] | None:
    """``a``'s and ``b``'s statements, shared ones once, the others under ``if``; None when
    they share less than they differ in (separate classes read better then)."""
    matcher = difflib.SequenceMatcher(a=[_key(s) for s in a], b=[_key(s) for s in b], autojunk=False)
    out, shared, differing = [], 0, 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out += a[i1:i2]
            shared += i2 - i1
            continue
        differing += (i2 - i1) + (j2 - j1)
        only_a, only_b = a[i1:i2], b[j1:j2]
        if only_a:
            out.append(Stmt.block(f"{when_a}:", only_a))
            if only_b:
                out.append(Stmt.block("else:", only_b))
        else:
            out.append(Stmt.block(f"{when_b}:", only_b))
    return out if shared >= differing else None


def merge_variants(flag: str, ident: str, true_side, false_side, attrs_true: set, attrs_false: set):
    """(init statements, forward statements) of the merged class, or None.

    ``true_side`` / ``false_side``: (init statements, forward statements) of the structures
    with ``flag`` true / false. The constructor tests the argument; ``forward`` tests the
    submodule that only the true structure has when it is named like the flag
    (``if self.downsample is not None``, torchvision's way; the false structure sets it to
    ``None``), else the flag kept as an attribute (``self.deep = deep``)."""
    (init_t, fwd_t), (init_f, fwd_f) = true_side, false_side
    if ident in attrs_true - attrs_false:
        at = next(i for i, s in enumerate(init_t) if s.render(I2)[0].startswith(f"{I2}self.{ident} = "))
        before = _key(init_t[at - 1]) if at else None
        keys_f = [_key(s) for s in init_f]
        pos = keys_f.index(before) + 1 if before in keys_f else 0
        init_f = [*init_f[:pos], Stmt.line(f"self.{ident} = None"), *init_f[pos:]]
        test, negated = f"if self.{ident} is not None", f"if self.{ident} is None"
        prologue = []
    elif ident in attrs_true | attrs_false:
        return None
    else:
        test, negated = f"if self.{ident}", f"if not self.{ident}"
        prologue = [Stmt.line(f"self.{ident} = {ident}")]
    init = merge_statements(init_t, init_f, f"if {ident}", f"if not {ident}")
    forward = merge_statements(fwd_t, fwd_f, test, negated)
    if init is None or forward is None:
        return None
    return prologue + init, forward
