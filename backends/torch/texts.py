"""Fixed pieces of generated files (helpers, weight init, docstrings). No torch import."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from archlang.graph.shape_text import format_shape
from archlang.ops.records import RECORDS

from .naming import comment_text, docstring_text
from .ops import INIT_SCHEMES
from .pyfmt import INDENT, LIMIT, Call, Seq, lines, py_str, py_value, statement

I1, I2, I3, I4 = INDENT, INDENT * 2, INDENT * 3, INDENT * 4

# The class attribute naming the spec block a generated class was written for: importing a
# built spec reads it to group the instances by block (archlang/importer/generated.py).
BLOCK_MARKER = "_archlang_block"

# Helper definitions a file includes when it uses them, by name.
HELPERS = {
    "transform_input": '''def transform_input(x: torch.Tensor, mean: tuple, std: tuple) -> torch.Tensor:
    """torchvision's `_transform_input`: ImageNet-normalised input to [-1, 1]."""
    channels = [
        torch.unsqueeze(x[:, i], 1) * (s / 0.5) + (m - 0.5) / 0.5
        for i, (m, s) in enumerate(zip(mean, std, strict=True))
    ]
    return torch.cat(channels, 1)''',
    "TransformInput": '''class TransformInput(nn.Module):
    """`transform_input` as a module, for `nn.Sequential`; it holds no state."""

    def __init__(self, mean: tuple, std: tuple) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return transform_input(x, self.mean, self.std)''',
    "stochastic_depth": '''def stochastic_depth(
    x: torch.Tensor, p: float, mode: str, training: bool = True
) -> torch.Tensor:
    """torchvision.ops.stochastic_depth: in training, zero whole samples ("row") or
    the whole batch ("batch") with probability p, scale the rest by 1 / (1 - p)."""
    if not training or p == 0.0:
        return x
    survival_rate = 1.0 - p
    size = [1] * x.ndim
    if mode == "row":
        size[0] = x.shape[0]
    noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return x * noise''',
    "StochasticDepth": '''class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: `stochastic_depth` as a module."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(x, self.p, self.mode, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"''',
}
HELPERS["Permute"] = '''class Permute(nn.Module):
    """`torch.permute` as a module, for `nn.Sequential` (torchvision's `Permute`)."""

    def __init__(self, dims: tuple) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)'''
HELPERS["LayerNorm2d"] = '''class LayerNorm2d(nn.LayerNorm):
    """torchvision's `LayerNorm2d`: layer norm over the channels of an NCHW map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(
            x, self.normalized_shape, self.weight, self.bias, self.eps
        )
        return x.permute(0, 3, 1, 2)'''
# The op records' own helpers.
for _record in RECORDS.values():
    HELPERS.update(_record.torch.helpers)
# The helpers that are functions (called in a forward; the others are classes).
HELPER_FUNCTIONS = frozenset({"transform_input", "stochastic_depth"}) | {
    name for r in RECORDS.values() for name, text in r.torch.helpers.items() if text.startswith("def ")
}
# What a helper needs defined before it.
HELPER_NEEDS = {"TransformInput": ("transform_input",), "StochasticDepth": ("stochastic_depth",)}


@dataclass(frozen=True)
class Stmt:
    """A statement of a method body, printable at any indentation (so that it can move
    under an ``if``): ``render(indent) -> lines``."""

    render: Callable[[str], list[str]]

    @staticmethod
    def assign(target: str, value, comment: str = "") -> Stmt:
        return Stmt(lambda indent: statement(target, value, indent, comment))

    @staticmethod
    def expression(value) -> Stmt:
        return Stmt(lambda indent: lines(value, indent))

    @staticmethod
    def line(text: str) -> Stmt:
        return Stmt(lambda indent: [indent + text])

    @staticmethod
    def block(header: str, body: list[Stmt]) -> Stmt:
        """``header:`` and ``body`` one level deeper."""
        return Stmt(lambda indent: [indent + header, *[x for s in body for x in s.render(indent + INDENT)]])


def docstring(paragraphs: list[str], indent: str = I1) -> list[str]:
    """A docstring, wrapped to the line limit. The text is wrapped first and each line escaped
    on its own, so a line break never falls inside an escape (``\\\\N`` split after its first
    backslash would leave a malformed ``\\N`` escape)."""
    raw = []
    for para in paragraphs:
        raw += _wrap(para, LIMIT - len(indent) - 3) if para else [""]
    if len(raw) == 1:
        if len(indent) + len(docstring_text(raw[0])) + 6 <= LIMIT:
            return [f'{indent}"""{docstring_text(raw[0])}"""']
        # too long for one line with both quotes: two lines (ruff keeps those as they are)
        raw = _wrap(raw[0], LIMIT - len(indent) - 6)
    text = [docstring_text(line) for line in raw]
    return [f'{indent}"""{text[0]}', *[(indent + t) if t else "" for t in text[1:]], f'{indent}"""']


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(comment_text(text), width, break_on_hyphens=False) or [""]


def shape_comment(shape) -> str:
    """``(N, 192, 35, 35)``: the shape a line produces, batch first."""
    return "(" + format_shape(("N", *shape), sep=", ") + ")" if shape else ""


def show(v) -> str:
    """A parameter value as the spec writes it."""
    if isinstance(v, bool):
        return str(v).lower()
    return repr(v) if isinstance(v, str) else str(v)


def init_method(inits: list[tuple[str, dict | None]], bn_affine_varies: bool) -> list[str]:
    """The body of ``_initialize_weights``: torchvision's loop over ``modules()``; ``inits``
    maps every conv / linear module name to its spec init (``None``: PyTorch's default)."""
    given = [(n, i) for n, i in inits if i is not None]
    if not given:
        return []
    out = [
        f"{I2}# The spec's init on conv / linear weights (biases keep PyTorch's default),",
        f"{I2}# BatchNorm weight 1 and bias 0: one pass in module order, as torchvision does.",
    ]
    schemes = {(i["scheme"], i["a"], i["b"]) for _, i in given}
    skip = [n for n, i in inits if i is None]
    bn_test = "isinstance(m, nn.BatchNorm2d)" + (" and m.affine" if bn_affine_varies else "")
    if len(schemes) == 1:
        ((scheme, a, b),) = schemes
        stds = [i["std"] for _, i in given]
        common = max(sorted(set(stds)), key=stds.count)
        special = [(n, i["std"]) for n, i in given if i["std"] != common]
        named = bool(special or skip)
        if special:
            out += statement("stds", Seq("{", "}", [(py_str(n), py_value(s)) for n, s in special]), I2)
        if skip:
            out += statement("keep_default", Seq("{", "}", [py_str(n) for n in skip]), I2)
        out.append(f"{I2}for {'name, m' if named else 'm'} in self.{'named_modules' if named else 'modules'}():")
        cond = "isinstance(m, (nn.Conv2d, nn.Linear))" + (" and name not in keep_default" if skip else "")
        out.append(f"{I3}if {cond}:")
        std = f"stds.get(name, {py_value(common)})" if special else py_value(common)
        kwargs = [("mean", "0.0"), ("std", std)]
        if scheme == "trunc_normal":
            kwargs += [("a", py_value(a)), ("b", py_value(b))]
        out += lines(Call(INIT_SCHEMES[scheme], ["m.weight"], kwargs), I4)
    else:
        rows = [
            (py_str(n), Seq("(", ")", [py_str(i["scheme"]), py_value(i["std"]), py_value(i["a"]), py_value(i["b"])]))
            for n, i in given
        ]
        out += statement("inits", Seq("{", "}", rows, explode=True), I2)
        out.append(f"{I2}for name, m in self.named_modules():")
        out.append(f"{I3}if name in inits:")
        out.append(f"{I4}scheme, std, a, b = inits[name]")
        out.append(f'{I4}if scheme == "trunc_normal":')
        trunc = Call("nn.init.trunc_normal_", ["m.weight"], [("mean", "0.0"), ("std", "std"), ("a", "a"), ("b", "b")])
        out += lines(trunc, I4 + I1)
        out.append(f"{I4}else:")
        out += lines(Call("nn.init.normal_", ["m.weight"], [("mean", "0.0"), ("std", "std")]), I4 + I1)
    out.append(f"{I3}elif {bn_test}:")
    out += [f"{I4}nn.init.constant_(m.weight, 1)", f"{I4}nn.init.constant_(m.bias, 0)"]
    return out
