"""Random expansion bombs (issue 14): small specs that describe huge work. Each family
multiplies something — shared references in values, nested loops, blocks calling blocks,
repeated errors, long strings and names, constant chains, deep values — by a random
factor, so that some cases are legal and others must be refused fast, with a location.
``gen_bomb(rng)`` returns spec text; everything is reproducible from the seed."""

from __future__ import annotations

import random

HEAD = "network N {\n  input 3x8x8\n"


def _shared_values(rng: random.Random) -> str:
    width, levels = rng.randint(2, 12), rng.randint(1, 9)
    lines = [f"const f0 = [{', '.join(str(i) for i in range(width))}]"]
    lines += [f"const f{i} = [{', '.join([f'f{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    g = f"f{levels}"
    use = rng.choice(
        [f"repeat len({g}) {{ relu }}", f'"x{{{g}}}": relu', f"conv({g}, 3)", f"if {g} == f0 {{ relu }}", "relu"]
    )
    return "\n".join(lines) + "\n" + HEAD + f"  const z = {g}\n  {use}\n}}\n"


def _nested_repeats(rng: random.Random) -> str:
    depth, count = rng.randint(1, 40), rng.randint(1, 4)
    body = rng.choice(["relu", "conv(4, 1)", "{ relu relu }", "concat { relu relu }"])
    return HEAD + "  " + f"repeat {count} {{ " * depth + body + " }" * depth + "\n}\n"


def _nested_fors(rng: random.Random) -> str:
    depth, n = rng.randint(1, 4), rng.choice([2, 10, 100, 1024])
    loops = "".join(f"for i{k} in range({n}) {{ " for k in range(depth))
    return HEAD + "  " + loops + "relu" + " }" * depth + "\n}\n"


def _doubling_blocks(rng: random.Random) -> str:
    depth, fan = rng.randint(1, 45), rng.randint(1, 3)
    blocks = "".join(f"block B{i}() {{ {' '.join([f'B{i + 1}()'] * fan)} }}\n" for i in range(depth))
    return blocks + f"block B{depth}() {{ relu }}\n" + HEAD + "  B0()\n}\n"


def _repeated_error(rng: random.Random) -> str:
    count = rng.choice([10, 1000, 150_000, 1_000_000])
    return HEAD + f"  repeat {count} {{ {rng.choice(['convv(8, 3)', 'conv(0, 3)', 'relu(1)'])} }}\n}}\n"


def _long_names(rng: random.Random) -> str:
    size, count = rng.choice([10, 200, 5_000, 99_000, 100_001]), rng.choice([1, 30, 3000])
    return f'const s = "{"a" * size}"\n' + HEAD + f'  repeat {count} as i {{ "{{s}}{{i}}": relu }}\n}}\n'


def _const_chain(rng: random.Random) -> str:
    count = rng.choice([2, 50, 70, 500, 3000])
    chain = "".join(f"const c{i} = c{i - 1}\n" if i else "const c0 = 1\n" for i in range(count))
    return chain + HEAD + f"  conv(c{count - 1}, 3)\n}}\n"


def _deep_value(rng: random.Random) -> str:
    depth = rng.choice([2, 99, 101, 500])
    consts = "".join(f"  const l{i} = [l{i - 1}]\n" for i in range(1, depth))
    return HEAD + "  const l0 = [1]\n" + consts + f"  const z = l{depth - 1}\n  relu\n}}\n"


FAMILIES = [
    _shared_values,
    _nested_repeats,
    _nested_fors,
    _doubling_blocks,
    _repeated_error,
    _long_names,
    _const_chain,
    _deep_value,
]


def gen_bomb(rng: random.Random) -> str:
    return rng.choice(FAMILIES)(rng)
