"""One record per op: everything archlang knows about a primitive op, in one place.

Every stage reads its field of the record: binding the ``signature``, the shape pass the
``shape`` rule, the analyses ``params`` / ``buffers`` / ``macs`` / ``flops`` / ``all_ops`` /
``rf`` / ``view``, the lint rules the ``role``, the torch back end the ``torch`` form, the
diagrams and the report the ``diagram`` style, ``archc import`` the ``imports`` mapping.
Adding an op is one :class:`OpRecord` in the module of its family (plus its name in
:class:`archlang.ops.base.Op`).

The record holds no torch object: the torch form is data the back end prints, and the
import mapping names torch's classes and functions by their dotted names, resolved by the
importer when it runs (``archc check`` and ``--report`` never import torch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import rf_rules
from .base import Op, Signature
from .costs import Rule, zero
from .torch_form import TorchOp

ShapeRule = Callable[[dict, list], tuple]

# Lint roles (archlang.lint.view.Role's values): how an op takes part in the representation.
ROLES = ("source", "conv", "pool", "global", "pointwise", "merge", "upsample")
# Diagram categories (backends/diagrams/style.py draws each in its colour).
CATEGORIES = ("conv", "pool", "norm", "classifier", "other")
# How an op's output width follows (backends/torch/describe.py writes each).
WIDTHS = ("same", "out_arg", "flatten", "split", "concat", "shape")


@dataclass(frozen=True)
class Diagram:
    """How diagrams and the paper-style report show the op: its ``category`` (colour), its
    ``label`` ("3x3 conv, 64") from the attributes, and its ``paper_row``: what a top-level
    layer is called in GoogLeNet's Table 1 (None: the paper gives it no row)."""

    category: str
    label: Callable[[dict], str]
    paper_row: str | None = None


@dataclass(frozen=True)
class Imports:
    """What ``archc import`` maps to this op: ``modules`` by the class's qualified name
    (``torch.nn.modules.conv.Conv2d``), ``functions`` by the function's dotted name
    (``torch.nn.functional.relu``; resolved when the importer runs), ``methods`` by the
    tensor method's name. Each value turns the module (or the bound call) into
    ``(op name, args, kwargs)``, or ``None`` for a call that is the identity."""

    modules: Mapping[str, Callable] = field(default_factory=dict)
    functions: Mapping[str, Callable] = field(default_factory=dict)
    methods: Mapping[str, Callable] = field(default_factory=dict)
    # the torch form's helpers read back from a built spec: class name -> module mapping,
    # function name -> call stub
    helpers: Mapping[str, Callable] = field(default_factory=dict)


@dataclass(frozen=True)
class OpRecord:
    op: Op
    signature: Signature
    shape: ShapeRule
    torch: TorchOp
    diagram: Diagram
    # the rule for a channels-last (H×W×C) input; None: refused, unless ``shape`` is
    # elementwise (``layout_free``)
    channels_last: ShapeRule | None = None
    params: Rule = zero  # elements of the parameters, as torch's numel counts them
    buffers: Rule = zero
    macs: Rule = zero  # multiply-accumulates of conv and linear layers only
    flops: Rule = zero  # fvcore's FlopCountAnalysis (0 where fvcore has no handle)
    all_ops: Rule = zero  # every arithmetic operation at inference (archlang's count)
    rf: Callable = rf_rules.keep
    view: bool = False  # the output shares its input's storage (a view, or eval's identity)
    role: str = "pointwise"
    imports: Imports = field(default_factory=Imports)
    # other names a spec may call it by, with the arguments they fix
    aliases: Mapping[str, Mapping] = field(default_factory=dict)
    # the (H, W) attribute a second value read with `from x, ref` fills with ref's size
    # (`upsample(mode="bilinear") from x, input`: torchvision's F.interpolate to the
    # input's size); the generated forward reads it from that tensor (``ref.shape[-2:]``)
    size_from_value: str | None = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"{self.op}: role {self.role!r} is not one of {ROLES}")
        if self.torch.width not in WIDTHS:
            raise ValueError(f"{self.op}: torch width {self.torch.width!r} is not one of {WIDTHS}")
        if self.params is not zero and self.torch.functional is not None:
            # weights live in a module; a functional call would have nowhere to keep them
            raise ValueError(f"{self.op}: an op with parameters has no functional form")
        if self.diagram.category not in CATEGORIES:
            raise ValueError(f"{self.op}: diagram category {self.diagram.category!r} is not one of {CATEGORIES}")
