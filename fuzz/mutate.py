"""Fuzz inputs for archlang: token-, value- and byte-level mutations of specs (the random
specs themselves come from ``generate.py``), and the oracle every input must satisfy.

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

from generate import KEYWORDS, NAMES, OPS, PUNCT, label, number

ROOT = Path(__file__).resolve().parent.parent
SEED_FILES = sorted((ROOT / "specs").glob("*.arch")) + sorted((ROOT / "specs" / "lib").glob("*.arch"))

# Diagnostics about the main file as a whole (it is missing, a folder, unreadable): no line.
FILE_LEVEL = {"E104"}
CODE = re.compile(r"E\d{3}")

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
    from archlang.diagnostics import SpecError

    try:
        if isinstance(source, str) and ("\n" in source or "{" in source):
            # spec text: imports resolve against specs/, so `import "lib/inception.arch"` works
            from archlang.frontend.loader import load_text

            source = load_text(source, "<fuzz>", base_dir=ROOT / "specs")
        compile_spec(source, max_nodes=max_nodes)
    except SpecError as err:
        return judge(err)
    except Exception:  # noqa: BLE001 - any other exception is the bug we look for
        return Outcome("crash", traceback.format_exc())
    return Outcome("ok")


def judge(err) -> Outcome:
    """A refusal is fine only if it renders and every diagnostic has a code, a message and a
    place (or is one of the file-level codes)."""
    import traceback

    from archlang.diagnostics import render_all

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
