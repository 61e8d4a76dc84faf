"""Mostly-valid random specs from a typed model (issue 14, finding 10).

``gen_typed`` tracks the tensor shape (channels, height, width, or flat features) as it draws
each statement, so convs and pools fit their input, ``concat`` branches agree on H×W, ``add``
branches agree on the whole shape and a head flattens what is left (or takes its
``spatial_mean``). It covers every activation, stochastic depth, ``channel_shuffle`` and
``split`` (with torch.chunk's sizes, or two channel counts), ``narrow``, ``radix_softmax``, the
weight-standardised convs, ``blur_pool``, ``frozen_batchnorm``, ``eca``, ``scale``, blocks with parameters and defaults, ``if`` on bool
parameters (instances of one block that differ in structure), ``repeat``/``for``, unit styles, ``init``, aux heads with ``outputs``, and labels
drawn part of the time from :func:`generate.hostile_name`. ``gen_case`` then breaks a minority
of them with :mod:`mutate`'s value and token mutations, so most cases reach the back ends.
Everything takes a :class:`random.Random`: a case is reproduced from its seed.
"""

from __future__ import annotations

import random

from generate import hostile_name
from mutate import mutate_tokens, mutate_values

ACTIVATIONS = [
    *("relu", "tanh", "sigmoid", "batchnorm", "batchnorm(eps=0.001)", "dropout(0.2)"),
    *("relu6", "silu", "hardswish", "hardsigmoid", "gelu", 'gelu(approximate="tanh")'),
    *("stochastic_depth(0.2)", 'stochastic_depth(0.1, mode="batch")', "layernorm2d"),
    *("leaky_relu(0.2)", "elu", "mish", "softplus", "hardtanh(-2, 2)", "prelu", "group_norm(1)"),
    "instance_norm(affine=true)",
    *("frozen_batchnorm", "eca", "eca(5)", "scale(0.5)"),
]
# Blocks the generator may call; the body of each keeps H×W unless `pool` (ceil halving).
BLOCKS = {
    "Unit": (
        "block Unit(c: int, k: int = 3, pool: bool = false, act: bool = true) {\n"
        "  conv(c, k, padding=k // 2)\n"
        "  if act { relu } else { batchnorm }\n"
        "  if pool { maxpool(2, stride=2, ceil_mode=true) }\n"
        "}"
    ),
    "Res": (
        "block Res(c: int, stride: int = 1, down: bool = false, wide: int = 1) {\n"
        "  add {\n"
        "    { conv(c * wide, 3, stride=stride, padding=1); relu; conv(c, 3, padding=1); batchnorm }\n"
        "    if down { proj: { conv(c, 1, stride=stride); batchnorm } } else { identity }\n"
        "  }\n"
        "  relu\n"
        "}"
    ),
    "Mix": (
        "block Mix(a: int, b: int, pool_proj: bool = true) {\n"
        "  concat {\n"
        "    branch1: conv(a, 1)\n"
        '    branch2: { conv(b, 1); conv(b, 3, padding="same") }\n'
        "    if pool_proj { branch3: { maxpool(3, stride=1, padding=1); conv(a, 1) } }\n"
        "  }\n"
        "}"
    ),
}
# Block parameter names that are Python keywords or builtins in the generated code.
PARAM_NAMES = ["c", "self", "lambda", "super", "torch", "nn", "F", "x", "cls", "def_", "__init__"]


def _odd_block(rng: random.Random) -> tuple[str, str, str]:
    """A block whose parameter names are hostile to Python: (name, definition, parameters)."""
    a, b = rng.sample(PARAM_NAMES, 2)
    text = f"block Odd({a}: int, {b}: int = 1) {{\n  conv({a}, 1)\n  repeat {b} {{ relu }}\n}}"
    return "Odd", text, a


def _out(size: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


class _Gen:
    def __init__(self, rng: random.Random, hostile: bool = True):
        self.rng = rng
        self.allow_hostile = hostile
        self.n = 0
        self.blocks: set[str] = set()
        self.labels: list[tuple[str, int]] = []  # labels of spatial layers, for aux heads
        self.hostile = rng.random() < 0.3 and hostile
        self.odd = _odd_block(rng)

    def label(self) -> str:
        self.n += 1
        if self.hostile and self.rng.random() < 0.4:
            return hostile_name(self.rng)
        return f"l{self.n}"

    def conv(self, shape) -> tuple[str, tuple]:
        rng = self.rng
        c, h, w = shape
        out = rng.randint(1, 16)
        k = rng.choice([k for k in (1, 3, 5, 7) if k <= max(h, w) + 2 * (k // 2)] or [1])
        s = rng.choice([1, 1, 2])
        p = rng.randint(0, k // 2)
        d = 2 if k == 3 and s == 1 and rng.random() < 0.1 else 1
        oh, ow = _out(h, k, s, p, d), _out(w, k, s, p, d)
        if oh < 1 or ow < 1:
            k, s, p, d, oh, ow = 1, 1, 0, 1, h, w
        groups = ""
        if rng.random() < 0.1 and c % 2 == 0 and out % 2 == 0:
            groups = ", groups=2"
        callee = "conv"
        if rng.random() < 0.15 and c // (2 if groups else 1) * k * k > 1:  # fan-in 1: nothing to standardise
            callee = rng.choice(["std_conv2d", "scaled_std_conv2d"])
        text = f"{callee}({out}, {k}" + (f", stride={s}" if s != 1 else "") + (f", padding={p}" if p else "")
        text += (f", dilation={d}" if d != 1 else "") + groups + rng.choice(["", "", ", bias=false"]) + ")"
        return text, (out, oh, ow)

    def pool(self, shape) -> tuple[str, tuple]:
        rng = self.rng
        c, h, w = shape
        k, s = rng.choice([(2, 2), (3, 2), (3, 1)])
        p = rng.randint(0, k // 2)
        oh, ow = _out(h, k, s, p), _out(w, k, s, p)
        if oh < 1 or ow < 1:
            return "identity", shape
        kind = rng.choice(["maxpool", "avgpool", "blur_pool"])
        if kind == "blur_pool":  # a binomial k×k blur; reflect padding needs p < H, W
            oh, ow = _out(h, 3, s, 1), _out(w, 3, s, 1)
            if min(h, w) == 1:
                return "identity", shape
            return "blur_pool" if s == 2 else "blur_pool(stride=1)", (c, oh, ow)
        return f"{kind}({k}, stride={s}" + (f", padding={p}" if p else "") + ")", (c, oh, ow)

    def branch(self, shape, depth: int) -> tuple[str, int]:
        """A concat branch that keeps H×W; returns its text and channels."""
        rng = self.rng
        kind = rng.choice(["conv", "seq", "pool", "nested"] if depth == 0 else ["conv", "seq", "pool"])
        label = f"{self.label()}: " if rng.random() < 0.4 else ""
        if kind == "pool":
            return label + "maxpool(3, stride=1, padding=1)", shape[0]
        if kind == "nested":
            parts = [self.branch(shape, depth + 1) for _ in range(rng.randint(1, 3))]
            return label + "concat { " + "; ".join(t for t, _ in parts) + " }", sum(c for _, c in parts)
        out = rng.randint(1, 8)
        k = rng.choice([1, 3, 5])
        conv = f'conv({out}, {k}, padding="same")' if rng.random() < 0.5 else f"conv({out}, {k}, padding={k // 2})"
        if kind == "seq":
            return label + f"{{ conv({rng.randint(1, 8)}, 1); relu; {conv} }}", out
        return label + conv, out

    def statement(self, shape, depth: int = 0) -> tuple[list[str], tuple]:
        rng = self.rng
        c, h, w = shape
        kind = rng.choice(
            ["conv"] * 4
            + ["pool", "act", "act", "chan", "concat", "add", "mul", "repeat", "for", "block", "block", "if", "seq"]
        )
        if depth > 1 and kind in ("repeat", "for", "if", "seq"):
            kind = "conv"
        label = self.label() if rng.random() < 0.5 else None
        if kind == "conv":
            text, shape = self.conv(shape)
            lines = [text]
        elif kind == "pool":
            text, shape = self.pool(shape)
            lines = [text]
        elif kind == "act":
            lines = [rng.choice(ACTIVATIONS)]
        elif kind == "chan":  # channel_shuffle (groups divide C), one torch.chunk / split piece, narrow
            roll = rng.random()
            if roll < 0.3:
                lines = [f"channel_shuffle({rng.choice([d for d in range(1, c + 1) if c % d == 0])})"]
            elif roll < 0.45 and c % 2 == 0:  # ResNeSt's rSoftMax: radix · groups divides C
                radix = rng.choice([r for r in range(2, c + 1) if c % r == 0])
                groups = rng.choice([g for g in range(1, c // radix + 1) if c // radix % g == 0])
                lines = [f"radix_softmax({radix}, groups={groups})"]
            elif roll < 0.6 and c >= 2:  # torch.split(x, [a, C - a], 1)[i], or x[:, a:]
                a = rng.randint(1, c - 1)
                if rng.random() < 0.5:
                    index = rng.randrange(2)
                    lines, shape = [f"split(({a}, {c - a}), {index})"], ((a, c - a)[index], h, w)
                else:
                    lines, shape = [f"narrow({a}, {c - a})"], (c - a, h, w)
            else:
                chunks = rng.randint(1, 4)
                size = -(-c // chunks)
                sizes = [min(size, c - start) for start in range(0, c, size)]
                index = rng.randrange(len(sizes))
                lines = [f"split({chunks}, {index})"]
                shape = (sizes[index], h, w)
        elif kind == "concat":
            parts = [self.branch(shape, 0) for _ in range(rng.randint(1, 4))]
            lines = ["concat {", *(f"  {t}" for t, _ in parts), "}"]
            shape = (sum(ch for _, ch in parts), h, w)
        elif kind == "add":
            k = rng.choice([1, 3])
            lines = ["add {", f"  {{ conv({c}, {k}, padding={k // 2}); relu }}", "  identity", "}"]
        elif kind == "mul":
            lines = ["mul {", "  identity", f"  {{ adaptive_avgpool(1); conv({c}, 1); sigmoid }}", "}"]
        elif kind == "repeat":
            n, out = rng.randint(0, 3), rng.randint(1, 8)
            self.n += 1
            lines = [f"repeat {n} as i {{", f'  "r{self.n}_{{i}}": conv({out}, 3, padding=1)', "  relu", "}"]
            shape = (out, h, w) if n else shape
            label = None
        elif kind == "for":
            widths = [rng.randint(1, 8) for _ in range(rng.randint(1, 3))]
            lines = [f"for w in [{', '.join(map(str, widths))}] {{ conv(w, 1); relu }}"]
            shape = (widths[-1], h, w)
            label = None
        elif kind == "if":
            lines = ["if deep { relu } else { identity }"]
            label = None
        elif kind == "seq":
            lines, inner = ["{"], shape
            for _ in range(rng.randint(1, 3)):
                sub, inner = self.statement(inner, depth + 1)
                lines += [f"  {x}" for x in sub]
            lines.append("}")
            shape = inner
        else:
            lines, shape = self.block_call(shape)
        if label is not None:
            lines[0] = f"{label}: {lines[0]}"
            if len(shape) == 3 and not label.startswith('"'):
                self.labels.append((label, shape[0]))
        return lines, shape

    def block_call(self, shape) -> tuple[list[str], tuple]:
        rng = self.rng
        c, h, w = shape
        name = rng.choice([*BLOCKS, "Odd"])
        if name == "Odd" and not self.allow_hostile:
            name = "Unit"
        self.blocks.add(name)
        if name == "Odd":
            out = rng.randint(1, 8)
            return [f"Odd({out})" if rng.random() < 0.5 else f"Odd({self.odd[2]}={out})"], (out, h, w)
        if name == "Unit":
            out, k = rng.randint(1, 8), rng.choice([1, 3, 5])
            pool = rng.random() < 0.4 and min(h, w) >= 2  # maxpool(2) on a 1-pixel map is E403
            args = [str(out)] + ([f"k={k}"] if k != 3 else []) + (["pool=true"] if pool else [])
            act = rng.random() < 0.3 and (pool or self.allow_hostile)  # known bug: see KNOWN_BUGS
            args += ["act=false"] if act else []
            new = (out, (h + 1) // 2, (w + 1) // 2) if pool else (out, h, w)
            return [f"Unit({', '.join(args)})"], new
        if name == "Res":
            out = rng.randint(1, 6)
            stride = rng.choice([1, 2])
            if out == c and stride == 1 and rng.random() < 0.5:
                call = f"Res({out})"
            else:
                call = f"Res({out}, stride={stride}, down=true" + (", wide=2" if rng.random() < 0.3 else "") + ")"
            lines = ["{", f"  b0: {call}"]
            lines += [f"  b{i}: Res({out})" for i in range(1, rng.randint(1, 3))]
            return [*lines, "}"], (out, _out(h, 3, stride, 1), _out(w, 3, stride, 1))
        a, b = rng.randint(1, 6), rng.randint(1, 6)
        proj = rng.random() < 0.6
        return [f"Mix({a}, {b}" + ("" if proj else ", pool_proj=false") + ")"], (a + b + (a if proj else 0), h, w)


def gen_typed(rng: random.Random, hostile: bool = True) -> str:
    """A random spec that compiles (up to hostile labels, which may be refused with a located
    diagnostic): the shape is tracked through every statement. ``hostile=False`` leaves out
    what reaches the back-end bugs listed in ``KNOWN_BUGS`` (hostile labels, parameter and
    field names, a block ending in a batchnorm that ``--optimize`` folds)."""
    g = _Gen(rng, hostile)
    c, h = rng.randint(1, 4), rng.randint(8, 40)
    w = h if rng.random() < 0.7 else rng.randint(8, 40)
    shape: tuple = (c, h, w)
    classes = rng.randint(1, 20)
    body = [f"input {c}x{h}x{w}"]
    if rng.random() < 0.3:
        body.append(rng.choice(["unit conv = conv_bn_relu(eps=0.001)", "unit conv = conv_relu", "unit conv = conv_bn"]))
    if rng.random() < 0.2:
        body.append(rng.choice(["init trunc_normal(std=0.01)", "init kaiming_normal", "init xavier_uniform"]))
    first, shape = g.conv(shape)
    body.append(f"stem: {first}")
    g.labels.append(("stem", shape[0]))
    for _ in range(rng.randint(1, 8)):
        lines, shape = g.statement(shape)
        body += lines
    head = rng.random() < 0.8
    aux = head and g.labels and rng.random() < 0.3
    if aux:
        at = rng.choice(g.labels)[0]
        body.append(f"aux a1 at {at}: {{ adaptive_avgpool(1); flatten; linear(num_classes) }}")
        field = rng.choice(["aux1", "aux_logits", "side"] * 6 + ["_h", "def", "self", "OrderedDict"])
        kind = "OrderedDict" if rng.random() < 0.05 else rng.choice(["Outs", "Outputs"])
        if not g.allow_hostile:
            field, kind = (field if field in ("aux1", "aux_logits", "side") else "aux1"), "Outs"
        body.append(f"outputs {kind}(logits, {field} = a1)")
    if head:
        roll = rng.random()
        if roll < 0.6:
            body += ["pool: adaptive_avgpool(1)", "flatten"]
        elif roll < 0.8:
            body += ["adaptive_avgpool((1, 1))", "flatten"]
        else:
            body += ["pool: spatial_mean"] if roll < 0.9 else ["spatial_mean(keepdim=true)", "flatten"]
        if rng.random() < 0.3:
            body += [f"hidden: linear({rng.randint(1, 32)})", "relu"]
        if rng.random() < 0.5:
            body.append("dropout(0.5)")
        body.append(f"{g.label()}: linear(num_classes)")
    else:
        body.append("relu")
    blocks = [BLOCKS.get(name) or g.odd[1] for name in sorted(g.blocks)]
    net = f"network Net(num_classes: int = {classes}, deep: bool = {rng.choice(['true', 'false'])}) {{"
    text = "\n".join([*blocks, net, *(f"  {line}" for line in body), "}"]) + "\n"
    return text


def gen_case(rng: random.Random, hostile: bool = True) -> str:
    """``gen_typed``, with one in five broken a little by a value or token mutation."""
    text = gen_typed(rng, hostile)
    roll = rng.random()
    if roll < 0.12:
        return mutate_values(rng, text, rounds=1)
    if roll < 0.2:
        return mutate_tokens(rng, text, rounds=1)
    return text
