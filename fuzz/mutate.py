"""Fuzz inputs for archlang: grammar-aware random specs, token- and byte-level mutations,
and the oracle every input must satisfy.

Shared by ``tests/test_fuzz.py`` (a few hundred cases under hypothesis) and
``fuzz/campaign.py`` (tens of thousands, seeded). Everything here takes a
:class:`random.Random`, so a case is reproduced from its seed.

The oracle: compiling either succeeds or raises :class:`SpecError` whose diagnostics all
have a code, a message and a span (except the file-level codes in ``FILE_LEVEL``), and
render without error. Anything else is a bug.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_FILES = sorted((ROOT / "specs").glob("*.arch")) + sorted((ROOT / "specs" / "lib").glob("*.arch"))

# Diagnostics about the main file as a whole (it is missing, a folder, unreadable): no line.
FILE_LEVEL = {"E104"}
CODE = re.compile(r"E\d{3}")

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


# ---- mutations -------------------------------------------------------------------------

TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z0-9_.]+|\*\*|//|[=!<>]=|\s+|\S')


def mutate_tokens(rng: random.Random, text: str, rounds: int = 3) -> str:
    tokens = TOKEN.findall(text) or [""]
    for _ in range(rng.randint(1, rounds)):
        i = rng.randrange(len(tokens))
        op = rng.randrange(8)
        if op == 0:
            del tokens[i]
        elif op == 1:
            tokens.insert(i, tokens[i])
        elif op == 2:
            j = rng.randrange(len(tokens))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == 3:
            tokens[i] = rng.choice(NAMES + KEYWORDS + OPS)
        elif op == 4:
            tokens[i] = number(rng)
        elif op == 5:
            tokens.insert(i, rng.choice(PUNCT))
        elif op == 6:
            tokens = tokens[: rng.randrange(len(tokens) + 1)]  # truncation
        else:
            tokens.insert(i, " " + rng.choice(KEYWORDS + PUNCT) + " ")
        if not tokens:
            tokens = [""]
    return "".join(tokens)


def mutate_values(rng: random.Random, text: str, rounds: int = 2) -> str:
    """Swap numbers, names and strings for others of the same kind: the syntax survives, so
    the change reaches lowering and shape inference."""
    tokens = TOKEN.findall(text)
    spots = [i for i, t in enumerate(tokens) if t[:1].isdigit() or t[:1].isalpha() or t[:1] in '"_']
    for _ in range(rng.randint(1, rounds)):
        if not spots:
            break
        i = rng.choice(spots)
        tok = tokens[i]
        if tok[:1].isdigit():
            tokens[i] = number(rng)
        elif tok[:1] == '"':
            tokens[i] = label(rng)
        elif tok not in KEYWORDS:
            tokens[i] = rng.choice(NAMES + OPS + ["Unit", "Net", "stem", "num_classes", "w", "i", "c", "k"])
    return "".join(tokens)


def mutate_bytes(rng: random.Random, data: bytes, rounds: int = 4) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, rounds)):
        pos = rng.randrange(len(buf) + 1)
        op = rng.randrange(7)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif op == 2:
            del buf[pos : pos + rng.randint(1, 64)]
        elif op == 3:
            buf[pos:pos] = rng.choice(
                [
                    b"\x00",
                    b"\xef\xbb\xbf",
                    b"\r",
                    b"\r\n",
                    b"\t",
                    b"\xff",
                    b"\xc3",
                    b"\xe2\x80\x9c",
                    "\u043e".encode(),
                    b"{",
                    b"}",
                    b"(",
                    b'"',
                    b"#",
                ]
            )
        elif op == 4:
            buf = buf[:pos]
        elif op == 5 and buf:  # duplicate a slice
            end = min(len(buf), pos + rng.randint(1, 200))
            buf[pos:pos] = buf[pos:end]
        else:
            other = rng.choice(SEED_FILES).read_bytes()
            start = rng.randrange(len(other))
            buf[pos:pos] = other[start : start + rng.randint(1, 300)]
    return bytes(buf)


# ---- the oracle ------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str  # "ok", "rejected", "unlocated" (a diagnostic without code/message/span), "crash"
    detail: str = ""


def check(source, max_nodes: int = 20_000) -> Outcome:
    """Compile ``source`` (spec text or a path) and judge the result."""
    import traceback

    from archlang import compile_spec
    from archlang.diagnostics import SpecError, render_all

    try:
        if isinstance(source, str) and ("\n" in source or "{" in source):
            # spec text: imports resolve against specs/, so `import "lib/inception.arch"` works
            from archlang.loader import load_text

            source = load_text(source, "<fuzz>", base_dir=ROOT / "specs")
        compile_spec(source, max_nodes=max_nodes)
    except SpecError as err:
        try:
            render_all(err.diagnostics, getattr(err, "sources", None))
        except Exception:  # noqa: BLE001 - rendering must never fail
            return Outcome("crash", traceback.format_exc())
        for d in err.diagnostics:
            if not (CODE.fullmatch(d.code or "") and d.message):
                return Outcome("unlocated", f"{d}")
            if d.span is None and d.code not in FILE_LEVEL:
                return Outcome("unlocated", f"{d.code}: {d.message}")
        return Outcome("rejected", err.diagnostics[0].code)
    except Exception:  # noqa: BLE001 - any other exception is the bug we look for
        return Outcome("crash", traceback.format_exc())
    return Outcome("ok")
