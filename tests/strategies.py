"""Hypothesis strategies for random, *valid* archlang specs (shared by several test files).

``valid_specs()`` draws the text of a small network that must parse, lower and pass shape
inference. ``spec_cases()`` draws a :class:`SpecCase`: the same text plus facts computed
here, independently of archlang, with PyTorch's documented output-size formulas
(``reference_out``), so a test can compare archlang's shapes with them.

Examples stay small (input at most 3×32×32 by default, roughly 15 primitive ops) so torch
differential tests built on them run fast. What the generator covers: conv units and
``conv2d`` with square and asymmetric kernels (``3``, ``1x3``, ``(1, 5)``), stride 1–2,
padding as an int, a pair, ``"same"`` (odd kernels, stride 1) or ``"valid"``, bias on/off,
dilation; max/avg pools with ``ceil_mode``; every activation (relu ... gelu), stochastic depth,
channel_shuffle, split, padding (a crop by a negative amount, a fill value) and batchnorm; ``concat`` groups of 2–4
branches (all "same"-padded stride-1 branches, or all downsampling identically), nested
concat, ``add`` residuals; ``repeat`` with ``{i}`` name templates; blocks with parameters
and defaults; blocks whose instances differ in structure (`if` on a parameter), also inside
labelled sequences (ResNet-style stages ``"0": Res(8, stride=2, down=true); "1": Res(8)``);
unit styles; the importer's newer ops (weight-standardised convs, frozen_batchnorm, eca,
scalar and flat layer_scale, scale, radix_softmax, split by channel counts, also channels-last,
narrow, pixel_unshuffle / space_to_depth where r divides H and W, depth_to_space, blur_pool);
and a head (adaptive_avgpool(1) and flatten, or spatial_mean; dropout, linear and
batchnorm1d, linear).

    from strategies import spec_cases, valid_specs

    @given(valid_specs())
    def test_it(text): ...
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from hypothesis import strategies as st

Shape = tuple[int, ...]
ACTIVATIONS = [
    "relu",
    "batchnorm",
    "batchnorm(eps=0.001)",
    "tanh",
    "sigmoid",
    "relu6",
    "silu",
    "hardswish",
    "hardsigmoid",
    "gelu",
    'gelu(approximate="tanh")',
    "leaky_relu(0.2)",
    "elu",
    "mish",
    "softplus(beta=2)",
    "hardtanh(-2, 2)",
    "prelu",
    "group_norm(1)",
    "instance_norm(affine=true)",
    "stochastic_depth(0.2)",
    'stochastic_depth(0.1, mode="batch")',
]


@dataclass(frozen=True)
class SpecCase:
    """A generated spec and what it must compute, derived without archlang."""

    text: str
    input_shape: Shape  # (C, H, W)
    output_shape: Shape  # (C, H, W), or (num_classes,) with a head
    named_shapes: dict = field(default_factory=dict)  # top-level label -> expected output shape
    has_head: bool = False
    unit_style: str = "conv2d"


# ---- reference output-size formulas (PyTorch docs, Conv2d / MaxPool2d) -------------------


def reference_out(size: int, k: int, s: int = 1, p: int = 0, d: int = 1, ceil_mode: bool = False) -> int:
    """H_out = floor((H + 2p - d(k-1) - 1) / s + 1); with ceil_mode, ceil instead of floor,
    except that the last window must start inside the input or the left padding. Below 1,
    the layer has no output (0)."""
    num = size + 2 * p - d * (k - 1) - 1
    if not ceil_mode:
        return max(0, math.floor(num / s + 1))
    out = math.ceil(num / s) + 1
    if out > 0 and (out - 1) * s >= size + p:
        out -= 1
    return max(0, out)


# ---- pieces ----------------------------------------------------------------------------

_KERNELS = [  # (kh, kw, spelling)
    (1, 1, "1"),
    (3, 3, "3"),
    (3, 3, "3x3"),
    (5, 5, "5"),
    (1, 3, "1x3"),
    (3, 1, "3x1"),
    (1, 5, "(1, 5)"),
    (5, 1, "(5, 1)"),
    (3, 3, "(3, 3)"),
]


class _Names:
    """Fresh top-level labels, so names never collide."""

    def __init__(self):
        self.n = 0

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"


def _conv(draw, shape: Shape, callee: str, *, stride_ok: bool = True, max_out: int = 16) -> tuple[str, Shape]:
    """A conv call valid on ``shape`` and its output shape."""
    _, h, w = shape
    kh, kw, spelling = draw(st.sampled_from(_KERNELS))
    if callee.endswith("std_conv2d") and shape[0] * kh * kw == 1:
        callee = "conv2d"  # one weight per filter has nothing to standardise (E405)
    out = draw(st.integers(1, max_out))
    stride = draw(st.sampled_from([1, 1, 2])) if stride_ok else 1
    dilation = 1
    if stride == 1 and (kh, kw) == (3, 3) and draw(st.booleans()) and draw(st.booleans()):
        dilation = 2
    pad_kind = draw(st.sampled_from(["none", "int", "pair", "same", "valid"]))
    if pad_kind == "same" and stride != 1:
        pad_kind = "pair"  # torch refuses padding="same" with stride > 1
    if pad_kind == "int":
        p = draw(st.integers(0, max(kh, kw) // 2))
        ph = pw = p
        pad_text = f", padding={p}"
    elif pad_kind == "pair":
        ph, pw = dilation * (kh // 2), dilation * (kw // 2)
        pad_text = f", padding=({ph}, {pw})"
    elif pad_kind == "same":
        ph, pw = dilation * (kh - 1) // 2, dilation * (kw - 1) // 2
        pad_text = ', padding="same"'
    else:
        ph = pw = 0
        pad_text = ', padding="valid"' if pad_kind == "valid" else ""
    oh = reference_out(h, kh, stride, ph, dilation)
    ow = reference_out(w, kw, stride, pw, dilation)
    if oh < 1 or ow < 1:  # too small for this window: a size-keeping fallback
        stride, dilation, ph, pw = 1, 1, kh // 2, kw // 2
        pad_text, oh, ow = f", padding=({ph}, {pw})", h, w
    text = f"{callee}({out}, {spelling}"
    if stride != 1:
        text += f", stride={stride}"
    text += pad_text
    if dilation != 1:
        text += f", dilation={dilation}"
    bias = draw(st.sampled_from(["", ", bias=true", ", bias=false"]))
    return text + bias + ")", (out, oh, ow)


def _pool(draw, shape: Shape) -> tuple[str, Shape]:
    c, h, w = shape
    kind = draw(st.sampled_from(["maxpool", "avgpool"]))
    k = draw(st.integers(2, 3))
    s = draw(st.integers(1, 2))
    p = draw(st.integers(0, k // 2))
    ceil_mode = draw(st.booleans())
    oh, ow = (reference_out(x, k, s, p, 1, ceil_mode) for x in (h, w))
    if oh < 1 or ow < 1:
        return "relu", shape
    text = f"{kind}({k}, stride={s}"
    if p:
        text += f", padding={p}"
    if ceil_mode:
        text += ", ceil_mode=true"
    return text + ")", (c, oh, ow)


def _divisors(n: int, low: int = 1) -> list[int]:
    return [d for d in range(low, n + 1) if n % d == 0]


def _newer_op(draw, shape: Shape) -> tuple[str, Shape]:
    """One of the ops the importer work added (timm's layers), valid on ``shape``, and its
    output shape by each op's definition: frozen batch norm, ECA, scalar / flat layer scale,
    a constant scale, ResNeSt's radix softmax, split by channel counts, narrow, the
    space/depth rearrangements, blur pool, and a channels-last split inside ConvNeXt's
    permute pattern."""
    c, h, w = shape
    kinds = ["frozen_bn", "eca", "layer_scale", "scale", "narrow", "blur"]
    if _divisors(c, 2):
        kinds.append("radix")
    if c >= 2:
        kinds += ["split", "split_last"]
    if any(h % r == 0 and w % r == 0 for r in (2, 3)):
        kinds.append("to_depth")
    if c % 4 == 0 and max(h, w) <= 16:  # 4× the pixels: only on small maps (test time)
        kinds.append("to_space")
    kind = draw(st.sampled_from(kinds))
    if kind == "frozen_bn":
        return draw(st.sampled_from(["frozen_batchnorm", "frozen_batchnorm(eps=0.001)"])), shape
    if kind == "eca":
        return draw(st.sampled_from(["eca", "eca(1)", "eca(5)"])), shape
    if kind == "layer_scale":
        return draw(st.sampled_from(["layer_scale(scalar=true)", "layer_scale(0.5, flat=true)"])), shape
    if kind == "scale":
        return draw(st.sampled_from(["scale(0.5)", "scale(-1.25)"])), shape
    if kind == "radix":  # radix ≥ 2 paths of `groups` groups: radix · groups divides C
        radix = draw(st.sampled_from(_divisors(c, 2)))
        groups = draw(st.sampled_from(_divisors(c // radix)))
        return f"radix_softmax({radix}" + (f", groups={groups})" if groups > 1 else ")"), shape
    if kind == "narrow":  # x[:, start:start + length]
        start = draw(st.integers(0, c - 1))
        length = draw(st.integers(1, c - start))
        return f"narrow({start}, {length})", (length, h, w)
    if kind in ("split", "split_last"):  # torch.split(x, sizes, dim)[index]: sizes adding up to C
        cuts = sorted(draw(st.sets(st.integers(1, c - 1), min_size=1, max_size=min(2, c - 1))))
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, c])]
        index = draw(st.integers(0, len(sizes) - 1))
        text = f"split(({', '.join(map(str, sizes))}), {index})"
        if kind == "split":
            return text, (sizes[index], h, w)
        # on channels-last values (dim=-1), between ConvNeXt's permutes
        out = draw(st.integers(1, 6))
        return f"{{ permute((0, 2, 3, 1)); layernorm; {text}; linear({out}); permute((0, 3, 1, 2)) }}", (out, h, w)
    if kind == "to_depth":  # C×H×W -> r²C×H/r×W/r
        r = draw(st.sampled_from([r for r in (2, 3) if h % r == 0 and w % r == 0]))
        op = draw(st.sampled_from(["pixel_unshuffle", "space_to_depth"]))
        return f"{op}({r})", (c * r * r, h // r, w // r)
    if kind == "to_space":  # C×H×W -> C/4×2H×2W
        return "depth_to_space(2)", (c // 4, 2 * h, 2 * w)
    # blur_pool: pad p, a k×k binomial blur at stride s; reflect padding needs p < H, W
    k = draw(st.sampled_from([3, 5]))
    stride = draw(st.sampled_from([1, 2]))
    pad = draw(st.integers(0, k // 2))
    mode = draw(st.sampled_from(["reflect", "reflect", "constant", "replicate"]))
    if (
        (oh := reference_out(h, k, stride, pad)) < 1
        or (ow := reference_out(w, k, stride, pad)) < 1
        or (mode == "reflect" and pad >= min(h, w))
    ):
        return "frozen_batchnorm", shape
    args = ([str(k)] if k != 3 else []) + (["stride=1"] if stride == 1 else []) + [f"padding={pad}"]
    args += [f'pad_mode="{mode}"'] if mode != "reflect" else []
    return f"blur_pool({', '.join(args)})", (c, oh, ow)


def _same_branch(draw, shape: Shape, depth: int) -> tuple[str, int]:
    """One concat branch that keeps H×W (stride 1, "same"-like padding); returns channels."""
    c = shape[0]
    kind = draw(st.sampled_from(["conv", "seq", "pool", "nested"] if depth == 0 else ["conv", "seq", "pool"]))
    if kind == "pool":
        return draw(
            st.sampled_from(["maxpool(3, stride=1, padding=1)", "avgpool(3, stride=1, padding=1, ceil_mode=true)"])
        ), c
    if kind == "nested":
        inner = [_same_branch(draw, shape, depth + 1) for _ in range(draw(st.integers(2, 3)))]
        return "concat { " + "; ".join(t for t, _ in inner) + " }", sum(ch for _, ch in inner)
    kh, kw, spelling = draw(st.sampled_from([(1, 1, "1"), (3, 3, "3"), (1, 3, "1x3"), (3, 1, "3x1"), (5, 5, "5")]))
    out = draw(st.integers(1, 8))
    pad = draw(st.sampled_from(["same", "pair"]))
    pad_text = 'padding="same"' if pad == "same" else f"padding=({kh // 2}, {kw // 2})"
    conv = f"conv({out}, {spelling}, {pad_text})"
    if kind == "seq":
        mid = draw(st.integers(1, 8))
        return f"{{ conv({mid}, 1); relu; {conv} }}", out
    return conv, out


def _down_branch(draw, shape: Shape) -> tuple[str, int]:
    """A concat branch that halves H×W like every other such branch: floor((H-1)/2)+1."""
    c = shape[0]
    kind = draw(st.sampled_from(["conv3", "conv1", "max", "avg", "seq"]))
    out = draw(st.integers(1, 8))
    if kind == "conv3":
        return f"conv({out}, 3, stride=2, padding=1)", out
    if kind == "conv1":
        return f"conv({out}, 1, stride=2)", out
    if kind == "max":
        return "maxpool(3, stride=2, padding=1)", c
    if kind == "avg":
        return "avgpool(3, stride=2, padding=1)", c
    return f"{{ conv({out}, 1); conv({out}, 3, stride=2, padding=1) }}", out


def _concat(draw, shape: Shape, names: _Names) -> tuple[list[str], Shape]:
    _, h, w = shape
    n = draw(st.integers(2, 4))
    down = draw(st.booleans())
    lines = []
    channels = 0
    for _ in range(n):
        text, ch = _down_branch(draw, shape) if down else _same_branch(draw, shape, 0)
        label = f"{names.fresh('b')}: " if draw(st.booleans()) else ""
        lines.append(f"    {label}{text}")
        channels += ch
    oh, ow = (reference_out(h, 3, 2, 1), reference_out(w, 3, 2, 1)) if down else (h, w)
    return ["concat {", *lines, "  }"], (channels, oh, ow)


def _stage(draw, shape: Shape, names: _Names) -> tuple[list[str], Shape]:
    """A ResNet-style stage: a labelled sequence of `Res` instances that differ in structure
    (the first projects the shortcut, later ones may or may not), named "0", "1", ..."""
    c, h, w = shape
    out = draw(st.integers(1, 6))
    stride = draw(st.sampled_from([1, 2])) if min(h, w) >= 4 else 1
    wide = draw(st.sampled_from([1, 2]))
    lines = [f"{names.fresh('stage')}: {{"]
    first = f"Res({out}, stride={stride}, down=true" + (f", wide={wide}" if wide != 1 else "") + ")"
    if out == c and stride == 1 and draw(st.booleans()):
        first = f"Res({out})"  # no projection needed
    lines.append(f'    "0": {first}')
    for i in range(1, draw(st.integers(2, 3))):  # at least two instances: a class to merge
        kind = draw(st.sampled_from(["plain", "plain", "down", "wide"]))
        text = {"plain": f"Res({out})", "down": f"Res({out}, down=true)", "wide": f"Res({out}, wide=2)"}[kind]
        lines.append(f'    "{i}": {text}')
    lines.append("  }")
    return lines, (out, reference_out(h, 3, stride, 1), reference_out(w, 3, stride, 1))


# ---- the whole spec --------------------------------------------------------------------

_BLOCK = """\
block Stage(c: int, k: int = 3, pool: bool = false) {
  conv(c, k, padding=k // 2)
  relu
  if pool { maxpool(2, stride=2, ceil_mode=true) }
}
"""

# A residual block whose instances differ in structure (`if down`), with widths that are
# expressions of its parameters (`c * wide`).
_RES_BLOCK = """\
block Res(c: int, stride: int = 1, down: bool = false, wide: int = 1) {
  add {
    { conv(c * wide, 3, stride=stride, padding=1); relu; conv(c, 3, padding=1); batchnorm }
    if down { proj: { conv(c, 1, stride=stride); batchnorm } } else { identity }
  }
  relu
}
"""


@st.composite
def spec_cases(draw, max_channels: int = 3, min_size: int = 8, max_size: int = 32, max_items: int = 6) -> SpecCase:
    """A random valid spec and its expected shapes."""
    c = draw(st.integers(1, max_channels))
    h = draw(st.integers(min_size, max_size))
    w = draw(st.integers(min_size, max_size)) if draw(st.booleans()) else h
    shape: Shape = (c, h, w)
    names = _Names()
    unit = draw(st.sampled_from(["conv2d", "conv2d", "conv_relu", "conv_bn", "conv_bn_relu"]))
    use_block = draw(st.booleans())
    use_res = False
    body: list[str] = [f"  input {c}x{h}x{w}"]
    if unit != "conv2d":
        body.append(f"  unit conv = {unit}" + ("(eps=0.001)" if "bn" in unit and draw(st.booleans()) else ""))
    named: dict[str, Shape] = {}
    items = draw(
        st.lists(
            st.sampled_from(
                ["conv", "conv", "pool", "act", "pad", "concat", "add", "repeat", "block", "stage", "newer"]
            ),
            min_size=1,
            max_size=max_items,
        )
    )
    for item in items:
        label = names.fresh("l") if draw(st.booleans()) else None
        if item == "act":  # an activation, or one of the channel ops
            item = draw(st.sampled_from([*ACTIVATIONS, "shuffle", "split", "struct"]))
        if item == "conv":
            callee = draw(st.sampled_from(["conv", "conv", "conv2d", "std_conv2d", "scaled_std_conv2d"]))
            text, shape = _conv(draw, shape, callee)
            if callee == "scaled_std_conv2d" and draw(st.booleans()):
                text = text[:-1] + ", gamma=1.7139588594436646)"  # NF-Nets' ReLU gamma
            lines = [text]
        elif item == "newer":
            text, shape = _newer_op(draw, shape)
            lines = [text]
        elif item == "pool":
            text, shape = _pool(draw, shape)
            lines = [text]
        elif item in ACTIVATIONS:
            lines = [item]
        elif item == "shuffle":  # nn.ChannelShuffle: groups must divide the channels
            g = draw(st.sampled_from([d for d in range(1, shape[0] + 1) if shape[0] % d == 0]))
            lines = [f"channel_shuffle({g})"]
        elif item == "split":  # torch.chunk(x, chunks, 1)[index]: pieces of ceil(C / chunks)
            chunks = draw(st.integers(1, 4))
            size = -(-shape[0] // chunks)
            sizes = [min(size, shape[0] - start) for start in range(0, shape[0], size)]
            index = draw(st.integers(0, len(sizes) - 1))
            lines = [f"split({chunks}, {index})"]
            shape = (sizes[index], *shape[1:])
        elif item == "struct":
            # layer norm, layer scale; squeeze-and-excitation (a C×1×1 scale times the map);
            # ConvNeXt's channels-last layernorm + linear on H×W×C
            forms = [
                "layernorm2d",
                "layer_scale(0.5)",
                f"mul {{ identity; {{ adaptive_avgpool(1); conv2d({shape[0]}, 1); sigmoid }} }}",
                f"{{ permute((0, 2, 3, 1)); layernorm; linear({shape[0]}); relu; permute((0, 3, 1, 2)) }}",
            ]
            lines = [draw(st.sampled_from(forms))]
        elif item == "pad":  # (top, bottom, left, right), as nn.ZeroPad2d((left, right, top, bottom))
            # a negative amount crops; each axis keeps at least one row (column)
            t, b = (draw(st.integers(-1 if shape[1] > 2 else 0, 2)) for _ in range(2))
            left, right = (draw(st.integers(-1 if shape[2] > 2 else 0, 2)) for _ in range(2))
            value = draw(st.sampled_from(["", "", ", value=0.5", ", value=-2"]))
            lines = [f"pad(({t}, {b}, {left}, {right}){value})"]
            shape = (shape[0], shape[1] + t + b, shape[2] + left + right)
        elif item == "concat":
            lines, shape = _concat(draw, shape, names)
        elif item == "add":
            k = draw(st.sampled_from([1, 3]))
            lines = ["add {", f"    conv({shape[0]}, {k}, padding={k // 2})", "    identity", "  }"]
        elif item == "repeat":
            n = draw(st.integers(0, 3))
            out = draw(st.integers(1, 8))
            prefix = names.fresh("r")
            lines = [f"repeat {n} as i {{", f'    "{prefix}_{{i}}": conv({out}, 3, padding=1)', "    relu", "  }"]
            if n:
                shape = (out, shape[1], shape[2])
            label = None  # a repeat is a statement, not a layer
        elif item == "stage":
            use_res = True
            lines, shape = _stage(draw, shape, names)
            label = None  # the stage is labelled already
        else:
            use_block = True
            out = draw(st.integers(1, 8))
            k = draw(st.sampled_from([1, 3, 5]))
            pool = draw(st.booleans()) and shape[1] >= 2 and shape[2] >= 2
            args = [str(out)]
            if k != 3 or draw(st.booleans()):
                args.append(f"k={k}")
            if pool:
                args.append("pool=true")
            lines = [f"Stage({', '.join(args)})"]
            shape = (out, *(reference_out(x, 2, 2, 0, 1, True) for x in shape[1:])) if pool else (out, *shape[1:])
        if label is not None:
            lines[0] = f"{label}: {lines[0]}"
            named[label] = shape
        body += ["  " + line if not line.startswith("  ") else line for line in lines]
    classes = draw(st.integers(1, 12))
    head = draw(st.booleans())
    if head:
        body += draw(
            st.sampled_from(
                [
                    ["  pool: adaptive_avgpool(1)", "  flatten"],
                    ["  pool: spatial_mean"],
                    ["  pool: spatial_mean(keepdim=true)", "  flatten"],
                ]
            )
        )
        if draw(st.booleans()):
            body.append("  dropout(0.2)")
        if draw(st.booleans()):  # RepViT's classifier: linear, BatchNorm1d
            body += [f"  hidden: linear({draw(st.integers(1, 8))})", "  batchnorm1d"]
        body.append("  fc: linear(num_classes)")
    else:
        body.append("  relu")  # a network needs a layer (and `repeat 0` may have made none)
    header = f"network Random(num_classes: int = {classes}) {{"
    blocks = (_BLOCK + "\n" if use_block else "") + (_RES_BLOCK + "\n" if use_res else "")
    text = blocks + "\n".join([header, *body, "}"]) + "\n"
    return SpecCase(
        text=text,
        input_shape=(c, h, w),
        output_shape=(classes,) if head else shape,
        named_shapes=named,
        has_head=head,
        unit_style=unit,
    )


def valid_specs(**kwargs) -> st.SearchStrategy[str]:
    """Random valid spec texts (see :func:`spec_cases` for the keyword arguments)."""
    return spec_cases(**kwargs).map(lambda case: case.text)


# ---- any DAG: named values read with `from` ----------------------------------------------


@st.composite
def dag_specs(draw, dict_outputs: bool = True) -> str:
    """A random network that is not series-parallel: every value is named (``v3``), and a
    layer reads any earlier value with ``from`` (``v4: conv2d(8, 3, padding=1) from v1``);
    ``add from`` merges values of equal width, ``concat from`` any; a group's branch may
    read an outside value; a block builds its own small DAG from its ``input``. All at one
    spatial size, then an optional pooled head or an ``outputs dict(...)`` of several values."""
    c_in, size = draw(st.integers(1, 4)), draw(st.integers(6, 12))
    widths: dict[str, int] = {"input": c_in}
    lines = [f"input {c_in}x{size}x{size}"]
    blocks = []
    n = draw(st.integers(2, 8))
    for i in range(n):
        name = f"v{i}"
        src = draw(st.sampled_from(sorted(widths)))
        kind = draw(
            st.sampled_from(["conv", "act", "add", "concat", "seq", "group", "block", "fuse", "inner", "pieces"])
        )
        same = [v for v in widths if widths[v] == widths[src] and v != src]
        if kind == "add" and same:
            other = draw(st.sampled_from(sorted(same)))
            lines.append(f"{name}: add from {src}, {other}")
        elif kind == "concat" and len(widths) > 1:
            picks = draw(st.lists(st.sampled_from(sorted(widths)), min_size=2, max_size=3))
            lines.append(f"{name}: concat from {', '.join(picks)}")
            widths[name] = sum(widths[p] for p in picks)
            continue
        elif kind == "act":
            ops = ["relu", "batchnorm", "sigmoid", "maxpool(3, stride=1, padding=1)", "frozen_batchnorm", "eca"]
            ops += ["scale(0.5)", "layer_scale(scalar=true)", "blur_pool(stride=1)"]
            ops += ["radix_softmax(2)"] if widths[src] % 2 == 0 else []
            op = draw(st.sampled_from(ops))
            lines.append(f"{name}: {op} from {src}")
        elif kind == "pieces" and widths[src] >= 2 and draw(st.booleans()):  # split by sizes, or narrow
            first = draw(st.integers(1, widths[src] - 1))
            if draw(st.booleans()):
                index = draw(st.integers(0, 1))
                lines.append(f"{name}: split(({first}, {widths[src] - first}), {index}) from {src}")
                widths[name] = first if index == 0 else widths[src] - first
            else:
                lines.append(f"{name}: narrow({first}, {widths[src] - first}) from {src}")
                widths[name] = widths[src] - first
            continue
        elif kind == "pieces" and size % 2 == 0:  # to half the size and back (TResNet's stem, sub-pixel conv)
            w = draw(st.integers(1, 4))
            down, up = draw(
                st.sampled_from([("space_to_depth", "depth_to_space"), ("pixel_unshuffle", "pixel_shuffle")])
            )
            lines.append(f"{name}: {{ {down}(2); conv2d({4 * w}, 1); {up}(2) }} from {src}")
            widths[name] = w
            continue
        elif kind == "seq":
            w = draw(st.integers(1, 6))
            lines.append(f"{name}: {{ conv2d({w}, 3, padding=1); batchnorm; relu }} from {src}")
            widths[name] = w
            continue
        elif kind == "group":
            other = draw(st.sampled_from(sorted(widths)))
            w = draw(st.integers(1, 6))
            lines.append(f"{name}: concat {{ relu from {other}; conv2d({w}, 1) }} from {src}")
            widths[name] = widths[other] + w
            continue
        elif kind == "fuse":  # a block of two inputs: `Fuse(w) from a, b`
            other = draw(st.sampled_from(sorted(widths)))
            w = draw(st.integers(1, 6))
            if not any(b.startswith("block Fuse(") for b in blocks):
                blocks.append(
                    "block Fuse(c: int) from x, skip {\n  a: conv2d(c, 1)\n  b: conv2d(c, 3, padding=1) from skip\n"
                    "  cat: concat from a, b, skip\n  relu\n}"
                )
            lines.append(f"{name}: Fuse({w}) from {src}, {other}")
            widths[name] = 2 * w + widths[other]
            continue
        elif kind == "inner" and any(f"v{j}: Fuse(" in line for j in range(i) for line in lines):
            # a value inside an earlier block instance (its further output)
            inst = draw(st.sampled_from([f"v{j}" for j in range(i) if any(f"v{j}: Fuse(" in ln for ln in lines)]))
            fuse = next(ln for ln in lines if ln.startswith(f"{inst}: Fuse("))
            w = int(fuse.split("(")[1].split(")")[0])
            lines.append(f"{name}: relu from {inst}.a")
            widths[name] = w
            continue
        elif kind == "block":
            w = draw(st.integers(1, 6))
            bname = f"B{len(blocks)}"
            blocks.append(
                f"block {bname}(c: int) {{\n  a: conv2d(c, 3, padding=1)\n  b: conv2d(c, 1) from input\n"
                f"  s: add from a, b\n  relu\n}}"
            )
            lines.append(f"{name}: {bname}({w}) from {src}")
            widths[name] = w
            continue
        else:
            w = draw(st.integers(1, 6))
            k = draw(st.sampled_from([1, 3]))
            conv = draw(st.sampled_from(["conv2d", "conv2d", "std_conv2d", "scaled_std_conv2d"]))
            conv = "conv2d" if widths[src] * k * k == 1 else conv  # fan-in 1: nothing to standardise
            lines.append(f"{name}: {conv}({w}, {k}, padding={k // 2}) from {src}")
            widths[name] = w
            continue
        widths[name] = widths[src]
    # every value is read (no W201): the ones nothing reads yet are concatenated last. A block
    # instance read only through an inner value (`from v1.a`) is unread itself: its other
    # layers would be dead code, run by torch but dropped by fvcore's trace
    text = "\n".join(lines)
    unread = [v for v in widths if v != "input" and not re.search(rf"(from|,) [^\n]*\b{v}\b(?!\.)", text)]
    if len(unread) > 1:
        lines.append(f"v{n}: concat from {', '.join(unread)}")
        widths[f"v{n}"] = sum(widths[v] for v in unread)
        n += 1
    elif unread and unread[0] != f"v{n - 1}":
        lines.append(f"v{n}: relu from {unread[0]}")
        widths[f"v{n}"] = widths[unread[0]]
        n += 1
    last = f"v{n - 1}"
    if dict_outputs and draw(st.booleans()):
        extra = draw(st.sampled_from([v for v in sorted(widths) if v not in ("input", last)] or ["v0"]))
        lines.append(f'outputs dict(out, "side" = {extra})')
    elif draw(st.booleans()):
        lines += ["head: { adaptive_avgpool(1); flatten; linear(3) }"]
    body = "\n".join(f"  {line}" for line in lines)
    return "\n".join([*blocks, f"network Dag {{\n{body}\n}}"]) + "\n"
