"""Grammar-aware random archlang specs for fuzzing: ``gen_spec`` (anything the grammar
allows, mostly wrong) and ``gen_valid`` (specs meant to compile), plus the vocabulary the
mutators in ``mutate.py`` draw from. Everything takes a :class:`random.Random`, so a case
is reproduced from its seed."""

from __future__ import annotations

import random

# ---- grammar-aware generation ----------------------------------------------------------

OPS = [
    "conv",
    "conv2d",
    "relu",
    "maxpool",
    "avgpool",
    "adaptive_avgpool",
    "batchnorm",
    "bn",
    "dropout",
    "flatten",
    "linear",
    "lrn",
    "transform_input",
    "softmax",
    "identity",
]
KEYWORDS = [
    "network",
    "block",
    "input",
    "const",
    "unit",
    "init",
    "if",
    "elif",
    "else",
    "for",
    "in",
    "repeat",
    "as",
    "aux",
    "at",
    "outputs",
    "concat",
    "add",
    "import",
    "then",
    "and",
    "or",
    "not",
    "true",
    "false",
    "none",
]
PUNCT = [
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    ";",
    "=",
    "+",
    "-",
    "*",
    "/",
    "//",
    "%",
    "**",
    "==",
    "<",
    ">=",
    "x",
    '"',
    "#",
    "\\",
    ".",
]
NAMES = [
    "a",
    "b",
    "n",
    "i",
    "x",
    "B",
    "conv",
    "stem",
    "branch1",
    "Mixed_5b",
    "_",
    "self",
    "torch",
    "lambda",
    "class",
    "forward",
    "__init__",
    "nn",
    "F",
]


def number(rng: random.Random) -> str:
    return rng.choice(
        [
            "0",
            "1",
            "2",
            "3",
            "7",
            "-1",
            "-3",
            str(rng.randint(0, 64)),
            str(rng.randint(65, 4096)),
            "1000000000000",
            str(2**62),
            str(2**63),
            "99999999999999999999999999",
            "0.5",
            "1e-3",
            "1e400",
            ".5",
            "3x8x8",
            "1x3",
            "0x0",
            "3x0x5",
            f"{rng.randint(1, 4)}x{rng.randint(1, 40)}x{rng.randint(1, 40)}",
        ]
    )


def expr(rng: random.Random, depth: int = 0) -> str:
    if depth > 3 or rng.random() < 0.4:
        return rng.choice(
            [
                number(rng),
                rng.choice(NAMES),
                "true",
                "false",
                "none",
                '"same"',
                '"valid"',
                '"a{i}"',
                "\"__import__('os')\"",
            ]
        )
    kind = rng.randrange(9)
    sub = lambda: expr(rng, depth + 1)  # noqa: E731
    if kind == 0:
        return f"{sub()} {rng.choice(['+', '-', '*', '//', '/', '%', '**', '==', '<', 'and', 'or'])} {sub()}"
    if kind == 1:
        return f"({sub()}, {sub()})"
    if kind == 2:
        return f"[{', '.join(sub() for _ in range(rng.randrange(4)))}]"
    if kind == 3:
        return f"{rng.choice(['range', 'len', 'min', 'max', 'int', 'float', 'str', 'abs', 'nope'])}({sub()})"
    if kind == 4:
        return f"if {sub()} then {sub()} else {sub()}"
    if kind == 5:
        return f"{sub()}[{sub()}]"
    if kind == 6:
        return f"-{sub()}"
    if kind == 7:
        return f"not {sub()}"
    return f"({sub()})"


def call(rng: random.Random, names=()) -> str:
    callee = rng.choice(OPS + list(names) + ["Inception", "InceptionA", "stacked3x3", "factorized", "Nope"])
    args = [expr(rng, 2) for _ in range(rng.randrange(4))]
    kwargs = [
        f"{rng.choice(['stride', 'padding', 'groups', 'bias', 'ceil_mode', 'dilation', 'eps', 'p', 'zz'])}"
        f"={expr(rng, 2)}"
        for _ in range(rng.randrange(3))
    ]
    if rng.random() < 0.15:
        return callee
    return f"{callee}({', '.join(args + kwargs)})"


def label(rng: random.Random) -> str:
    return rng.choice(
        [
            rng.choice(NAMES),
            f"n{rng.randrange(100)}",
            '"b{i}"',
            '"a-b"',
            '"a b"',
            '"x/y"',
            '""',
            '"a\\nb"',
            '"c\u043env"',
            '"{1+}"',
            '"{"',
        ]
    )


def stmt(rng: random.Random, depth: int, names=()) -> str:
    kind = rng.randrange(12)
    body = lambda: block_body(rng, depth + 1, names)  # noqa: E731
    if depth > 3 or kind < 4:
        prefix = f"{label(rng)}: " if rng.random() < 0.4 else ""
        return prefix + call(rng, names)
    if kind == 4:
        return f"{rng.choice(['concat', 'add'])} {{ {body()} }}"
    if kind == 5:
        return f"{{ {body()} }}"
    if kind == 6:
        return f"if {expr(rng)} {{ {body()} }}" + (f" else {{ {body()} }}" if rng.random() < 0.5 else "")
    if kind == 7:
        return f"for i in {rng.choice(['range(3)', '[1, 2]', expr(rng)])} {{ {body()} }}"
    if kind == 8:
        return f"repeat {rng.choice(['2', '0', expr(rng)])} as i {{ {body()} }}"
    if kind == 9:
        return f"const {rng.choice(NAMES)} = {expr(rng)}"
    if kind == 10:
        return rng.choice(
            [
                "unit conv = conv_bn_relu(eps=0.001)",
                "unit conv = conv_relu",
                "init trunc_normal(std=0.01)",
                "aux aux1 at stem: { flatten; linear(10) }",
                "outputs Out(logits, aux=aux1)",
                "input 3x32x32",
            ]
        )
    return f"{label(rng)}, {label(rng)}: {call(rng, names)}"


def block_body(rng: random.Random, depth: int, names=()) -> str:
    return "\n".join(stmt(rng, depth, names) for _ in range(rng.randrange(1, 5)))


def gen_spec(rng: random.Random) -> str:
    """A random spec from the grammar's constructs: often valid, often slightly wrong."""
    parts = []
    if rng.random() < 0.3:
        parts.append('import "lib/inception.arch"' if rng.random() < 0.5 else f'import "{rng.choice(NAMES)}.arch"')
    blocks = [f"B{i}" for i in range(rng.randrange(3))]
    for name in blocks:
        params = ", ".join(
            rng.choice(["c: int", "k: int = 3", "s = 1", "flag: bool = false", "t: str"])
            for _ in range(rng.randrange(3))
        )
        parts.append(f"block {name}({params}) {{\n{block_body(rng, 1, blocks)}\n}}")
    if rng.random() < 0.3:
        parts.append(f"const {rng.choice(NAMES)} = {expr(rng)}")
    params = ", ".join(
        rng.choice(["num_classes: int = 10", "aux: bool = true", "w: float = 0.5"]) for _ in range(rng.randrange(3))
    )
    shape = rng.choice(["3x32x32", "3x8x8", "1x1x1", "16", "3x299x299", number(rng)])
    parts.append(f"network Net({params}) {{\n  input {shape}\n{block_body(rng, 1, blocks)}\n}}")
    return "\n".join(parts) + "\n"


def gen_valid(rng: random.Random) -> str:
    """A random spec that is meant to compile (channels tracked for ``add``): the base that
    mutations then break a little, so they reach the later stages (lowering, shapes)."""
    size = rng.randint(12, 40)
    channels = 8
    blocks, body, used = [], [], set()

    def name(stem: str) -> str:
        k = len(used)
        used.add(k)
        return f"{stem}{k}"

    if rng.random() < 0.5:
        blocks.append("block Unit(c: int, k: int = 3) {\n  conv(c, 1)\n  conv(c, k, padding=k // 2)\n}")
    if rng.random() < 0.3:
        blocks.append('import "lib/inception.arch"')
    if rng.random() < 0.5:
        body.append(
            rng.choice(["unit conv = conv_bn_relu(eps=0.001)", "unit conv = conv_relu", "init trunc_normal(std=0.01)"])
        )
    body.append("stem: conv(8, 3, padding=1)")
    for _ in range(rng.randint(1, 6)):
        kind = rng.randrange(9)
        if kind == 0:
            k = rng.choice([1, 3, 5])
            channels = rng.choice([4, 8, 16])
            body.append(f"{name('c')}: conv({channels}, {k}, padding={k // 2})")
        elif kind == 1:
            body.append(f"{name('p')}: {rng.choice(['maxpool', 'avgpool'])}(3, stride=1, padding=1)")
        elif kind == 2:
            body.append(
                f"{name('cat')}: concat {{\n    a: conv(4, 1)\n    b: {{ conv(4, 1); conv(4, 3, padding=1) }}\n"
                f"    maxpool(3, stride=1, padding=1)\n  }}"
            )
            channels = 8 + channels
        elif kind == 3:
            body.append(f"{name('res')}: add {{\n    identity\n    {{ conv({channels}, 3, padding=1); relu }}\n  }}")
        elif kind == 4:
            channels = 8
            body.append(f'repeat {rng.randint(0, 3)} as i {{ "{name("r")}_{{i}}": conv(8, 3, padding=1) }}')
            body.append("conv(8, 1)")
        elif kind == 5:
            widths = [rng.choice([4, 8]) for _ in range(rng.randint(1, 3))]
            channels = widths[-1]
            body.append(f"for w in [{', '.join(map(str, widths))}] {{ conv(w, 1) }}")
        elif kind == 6:
            body.append("if num_classes > 5 { relu } else { batchnorm }")
        elif kind == 7 and "Unit" in "".join(blocks):
            channels = rng.choice([4, 8])
            body.append(f"{name('u')}: Unit({channels})")
        else:
            body.append("relu")
    aux = rng.random() < 0.3
    if aux:
        body.append("aux aux1 at stem: { adaptive_avgpool(1); flatten; linear(num_classes) }")
        body.append("outputs Outs(logits, aux1 = aux1)")
    body += ["adaptive_avgpool(1)", "flatten", f"dropout({rng.choice(['0.5', '0.0'])})", "fc: linear(num_classes)"]
    lines = "\n  ".join(body)
    net = f"network Net(num_classes: int = 10) {{\n  input 3x{size}x{size}\n  {lines}\n}}"
    return "\n".join(blocks + [net]) + "\n"


# ---- hostile names and output paths (issue 14): what a name can smuggle into the outputs ----

# Pieces a quoted label may hold: dunders and keywords (generated code), backslashes (DOT and
# Python escapes), HTML and DOT syntax (diagram injection), control characters and lone
# surrogates (terminals and encoders; both must be refused with a located error).
HOSTILE_PIECES = [
    "__init__",
    "__class__",
    "__w",
    "class",
    "lambda",
    "self",
    "\\\\",
    "\\\\N",
    '\\"',
    "<b>",
    "<<table>>",
    "&amp;",
    '\\" URL=\\"javascript:alert(1)\\" x=\\"',
    "]; pwned [label=INJECTED]; x [",
    "{1}",
    "é",
    "☃",
    " ",
    "-",
    ".",
    "'",
]
# Refused wherever they appear: control characters (E207 in a name) and lone surrogates (E102).
REFUSED_PIECES = ["\\x1b]0;title\\x07", "\\x1b[2J", "\\x9b31m", "\\x7f", "\\ud800", "\\udfff"]


def hostile_name(rng: random.Random) -> str:
    """A quoted label (as spec source) joined from hostile pieces, sometimes very long."""
    text = "".join(rng.choice(HOSTILE_PIECES) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.1:
        text += rng.choice(REFUSED_PIECES)
    if rng.random() < 0.1:
        text *= rng.choice([100, 1000])
    return f'"{text}"'


def gen_hostile_names(rng: random.Random) -> str:
    """A valid network whose layers carry hostile names: it must compile and draw, or be
    refused with a located diagnostic (E102 surrogate, E207 bad name, E302 duplicate)."""
    layers = "\n".join(f"  {hostile_name(rng)}: conv(4, {rng.choice([1, 3])}, padding=1)" for _ in range(3))
    return f"network Net {{\n  input 3x8x8\n{layers}\n  flatten\n}}\n"


def special_output(rng: random.Random, folder: str) -> str:
    """An `-o` target that must not be replaced by a regular file: a device, a link to one,
    or (the caller makes it) a FIFO under ``folder``."""
    return rng.choice(["/dev/null", "/dev/full", f"{folder}/link-to-null", f"{folder}/fifo"])
