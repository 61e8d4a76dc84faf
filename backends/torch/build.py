"""Build a ``torch.nn.Module`` from a spec, in memory.

    >>> model = archlang.build("googlenet", num_classes=10)

The module tree comes from :mod:`.plan` (the same tree the code generator prints), so a
built model and a generated file have the same state_dict keys and compute the same function.
Block, unit and network modules are :class:`GraphModule` subclasses named after their
template (``Inception``, ``BasicConv2d``, ``GoogLeNet``) that run their plan's steps in order.
"""

from __future__ import annotations

import collections
from pathlib import Path

import torch
from torch import nn

from archlang.compiler import Compiled, compile_spec

from .codegen_init import zero_init_norms
from .ops import INIT_KWARGS, INIT_MEAN, INIT_SCHEMES, TORCH_OPS, TRAINING, resolve
from .plan import UNIT_CLASSES, Leaf, ModulePlan, Step, iter_plans, plan


def transform_input(x: torch.Tensor, mean, std) -> torch.Tensor:
    """torchvision's ``_transform_input``: ImageNet-normalised input re-normalised to [-1, 1]."""
    channels = [torch.unsqueeze(x[:, i], 1) * (s / 0.5) + (m - 0.5) / 0.5 for i, (m, s) in enumerate(zip(mean, std))]
    return torch.cat(channels, 1)


class TransformInput(nn.Module):
    """:func:`transform_input` as a module (for ``nn.Sequential``); it holds no state."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = tuple(mean), tuple(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return transform_input(x, self.mean, self.std)


def _split(args):
    return [a.value for a in args if a.positional], {a.name: a.value for a in args if not a.positional}


def _make_leaf(leaf: Leaf) -> nn.Module:
    pos, kw = _split(leaf.args)
    return resolve(TORCH_OPS[leaf.op].module)(*pos, **kw)


def _functional(leaf: Leaf):
    """``f(module, inputs) -> tensor`` for an op called functionally."""
    row = TORCH_OPS[leaf.op]
    if row.inputs == "alias":
        return lambda module, xs: xs[0]
    if row.inputs == "sum":

        def add(module, xs):
            out = xs[0]
            for x in xs[1:]:
                out = out + x
            return out

        return add
    fn = resolve(row.functional)
    pos, kw = _split([*leaf.args, *row.extra])
    if row.inputs == "list":
        return lambda module, xs: fn(list(xs), *pos, **kw)
    if any(v is TRAINING for v in kw.values()):

        def call(module, xs):
            return fn(xs[0], *pos, **{k: (module.training if v is TRAINING else v) for k, v in kw.items()})

        return call
    return lambda module, xs: fn(xs[0], *pos, **kw)


class GraphModule(nn.Module):
    """A block, conv unit or network: submodules plus the steps of its forward."""

    def __init__(self, p: ModulePlan):
        super().__init__()
        for child in p.children:
            self.add_module(child.name, _make(child))
        self._input = p.input
        self._steps = [self._compile(s) for s in p.steps]
        self._output = p.output
        self._outputs = None
        if p.outputs:
            self._outputs = (
                _outputs_class(p.outputs_type, tuple(f for f, _ in p.outputs)),
                tuple(nid for _, nid in p.outputs),
            )

    def _compile(self, step: Step):
        if step.module is None:
            return step.target, step.inputs, None, _functional(step.leaf), step.aux
        return step.target, step.inputs, step.module, None, step.aux

    def _submodule(self, path: tuple[str, ...]) -> nn.Module:
        module = self
        for name in path:
            module = module._modules[name]
        return module

    def forward(self, x: torch.Tensor):
        values = {self._input: x}
        for target, inputs, path, fn, aux in self._steps:
            if aux is not None and not self.training:
                continue  # aux heads only run in training
            xs = [values[i] for i in inputs]
            values[target] = fn(self, xs) if path is None else self._submodule(path)(*xs)
        if self._outputs is not None and self.training:
            cls, nodes = self._outputs
            return cls(*(values[n] for n in nodes))
        return values[self._output]


_CLASSES: dict[str, type] = {}
_OUTPUTS: dict[tuple, type] = {}


def _class(name: str) -> type:
    """A named GraphModule subclass, so ``print(model)`` shows ``Inception(...)``."""
    if name not in _CLASSES:
        _CLASSES[name] = type(name, (GraphModule,), {"__module__": __name__})
    return _CLASSES[name]


def _outputs_class(name: str, fields: tuple[str, ...]) -> type:
    key = (name, fields)
    if key not in _OUTPUTS:
        _OUTPUTS[key] = collections.namedtuple(name, fields)
    return _OUTPUTS[key]


def _make(p) -> nn.Module:
    if isinstance(p, Leaf):
        return _make_leaf(p)
    if p.kind == "sequential":
        return nn.Sequential(collections.OrderedDict((c.name, _make(c)) for c in p.children))
    if p.kind == "container":
        return nn.ModuleDict(collections.OrderedDict((c.name, _make(c)) for c in p.children))
    name = UNIT_CLASSES.get(p.args.get("style"), "ConvUnit") if p.kind == "unit" else p.template
    return _class(str(name))(p)


def weight_inits(root: ModulePlan) -> dict[str, dict | None]:
    """Dotted name of every conv / linear module -> its init (``None``: PyTorch's default)."""
    out = {}
    for p in iter_plans(root):
        for child in p.children:
            if isinstance(child, Leaf) and TORCH_OPS[child.op].init:
                out[".".join((*p.path, child.name))] = child.init
    return out


def initialize(model: nn.Module, root: ModulePlan) -> None:
    """The spec's ``init``, applied like torchvision: one pass over ``modules()`` in order
    (so a fixed seed gives torchvision's weights), conv / linear weights drawn, biases set to
    the init's ``bias`` constant or left at PyTorch's default, BatchNorm weight 1 and bias 0;
    then the scale of ``batchnorm(zero_init=true)`` layers is zeroed."""
    inits = weight_inits(root)
    if any(inits.values()):
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                init = inits.get(name)
                if init is None:
                    continue
                scheme = init["scheme"]
                mean = {"mean": INIT_MEAN[scheme]} if scheme in INIT_MEAN else {}
                resolve(INIT_SCHEMES[scheme])(m.weight, **mean, **{k: init[k] for k in INIT_KWARGS[scheme]})
                if init.get("bias") is not None and m.bias is not None:
                    nn.init.constant_(m.bias, init["bias"])
            elif isinstance(m, nn.BatchNorm2d) and m.affine:
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
    # batchnorm(zero_init=true): torchvision's zero_init_residual, a second pass after the first
    modules = dict(model.named_modules())
    for name in zero_init_norms(root):
        nn.init.zeros_(modules[name].weight)


def build_compiled(compiled: Compiled) -> nn.Module:
    root = plan(compiled.graph)
    model = _make(root)
    initialize(model, root)
    return model


def build(
    source: str | Path | Compiled, input_shape: tuple[int, ...] | None = None, *, optimize: bool = False, **params
) -> nn.Module:
    """A ``torch.nn.Module`` for a spec (a path, a bundled spec name, spec text or a
    :class:`Compiled`); ``params`` set network parameters (``num_classes=10``).

    Raises :class:`archlang.SpecError` for an invalid spec. The model is in training mode,
    on the CPU, in float32, like any freshly constructed module. ``optimize=True`` gives
    the inference module of ``--emit torch --optimize`` instead (eval mode; see
    :mod:`archlang.backends.torch.optimize` to load the unoptimized model's weights).
    """
    if optimize:
        from .optimize import build as build_optimized

        return build_optimized(source, input_shape, **params)
    compiled = source if isinstance(source, Compiled) else compile_spec(source, params or None, input_shape)
    return build_compiled(compiled)
