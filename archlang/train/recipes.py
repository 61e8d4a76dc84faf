"""Training recipes: TOML files validated by pydantic, with located errors.

A recipe is data: ``archlang/train/recipes/<name>.toml`` ships one per paper (``archc train
--list-recipes``), and ``--recipe PATH`` reads any other file. Every problem (TOML syntax, an
unknown key, a value of the wrong type or out of range) is a :class:`~archlang.SpecError`
located at ``file:line:col`` of the TOML text. tomllib gives no positions, so
:func:`key_positions` scans the text for ``[table]`` headers and ``key =`` lines.

This module imports neither torch nor Lightning.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from archlang.diagnostics import Diagnostic, SourceMap, Span, SpecError, printable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# allow_inf_nan=False: `lr = inf` passed `gt=0` and trained to NaN
Fraction = Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
MAX_JITTER = 10.0  # a colour factor drawn from [0, 1 + 10] already saturates every image
MAX_SCALE = 8  # a recipe's pixel sizes are at most 8 × its reference_size (VGG's 512/224 is 2.3)
MAX_PIXELS = 8192  # reference_size and every pixel size of a recipe
MAX_RECIPE_BYTES = 1 << 20  # a recipe is a page of TOML; /dev/zero is not
MAX_SEED = 2**32 - 1  # numpy's and Lightning's seeds are 32-bit
Pixels = Annotated[int, Field(ge=1, le=MAX_PIXELS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# optimizer name -> the recipe fields its torch class takes (the torch class is looked up in
# archlang.train.optim.OPTIMIZERS; a test asserts both tables have the same keys).
OPTIMIZER_FIELDS: dict[str, tuple[str, ...]] = {
    "sgd": ("lr", "momentum", "weight_decay", "nesterov"),
    "rmsprop": ("lr", "alpha", "eps", "momentum", "weight_decay"),
    "adam": ("lr", "betas", "eps", "weight_decay"),
    "adamw": ("lr", "betas", "eps", "weight_decay"),
}

# schedule name -> the fields it reads (besides ``name``).
SCHEDULE_FIELDS: dict[str, tuple[str, ...]] = {
    "constant": (),
    "step": ("every_epochs", "gamma"),
    "plateau": ("factor", "patience", "monitor", "min_lr"),
    "cosine": ("min_lr",),
}


def _only_fields_of(model: BaseModel, table: dict[str, tuple[str, ...]], kind: str) -> None:
    allowed = {"name", *table[model.name]}
    extra = sorted(f for f in model.model_fields_set if f not in allowed)
    if extra:
        raise ValueError(f"{kind} {model.name!r} takes no {', '.join(extra)} (it takes {', '.join(sorted(allowed))})")


class Optimizer(_Strict):
    """The optimizer: ``name`` picks the torch class, the other fields are its arguments."""

    name: Literal["sgd", "rmsprop", "adam", "adamw"]
    lr: Positive
    momentum: NonNegative = 0.0
    weight_decay: NonNegative = 0.0
    nesterov: bool = False
    alpha: Fraction = 0.99  # RMSProp's decay of the squared-gradient average
    eps: Positive = 1e-8
    betas: tuple[Fraction, Fraction] = (0.9, 0.999)

    @model_validator(mode="after")
    def _fields_fit_the_optimizer(self):
        _only_fields_of(self, OPTIMIZER_FIELDS, "optimizer")
        return self

    def kwargs(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in OPTIMIZER_FIELDS[self.name]}


class Schedule(_Strict):
    """The learning-rate schedule, stepped once per epoch."""

    name: Literal["constant", "step", "plateau", "cosine"] = "constant"
    every_epochs: Annotated[int, Field(ge=1)] = 1  # step: multiply by gamma every N epochs
    gamma: Positive = 0.1
    factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1  # plateau: lr *= factor
    patience: Annotated[int, Field(ge=0)] = 5
    monitor: Literal["val_acc", "val_loss"] = "val_acc"
    min_lr: NonNegative = 0.0

    @model_validator(mode="after")
    def _fields_fit_the_schedule(self):
        _only_fields_of(self, SCHEDULE_FIELDS, "schedule")
        return self


class Averaging(_Strict):
    """Weights averaged for inference: ``polyak`` (running mean) or ``ema`` (exponential)."""

    kind: Literal["polyak", "ema"]
    decay: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.999  # ema only


def _ordered(pair, name: str) -> None:
    if pair is not None and pair[0] > pair[1]:
        raise ValueError(f"{name} is a range (low, high): {pair[0]} > {pair[1]}")


class ResizedCrop(_Strict):
    scale: tuple[Annotated[float, Field(gt=0.0, le=1.0)], Annotated[float, Field(gt=0.0, le=1.0)]] = (0.08, 1.0)
    ratio: tuple[Annotated[float, Field(gt=0.0, le=100.0)], Annotated[float, Field(gt=0.0, le=100.0)]] = (3 / 4, 4 / 3)

    @model_validator(mode="after")
    def _ranges(self):
        _ordered(self.scale, "scale")
        _ordered(self.ratio, "ratio")
        return self


Jitter = Annotated[float, Field(ge=0.0, le=MAX_JITTER, allow_inf_nan=False)]


class ColorJitter(_Strict):
    brightness: Jitter = 0.0
    contrast: Jitter = 0.0
    saturation: Jitter = 0.0
    hue: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0


class Augment(_Strict):
    """Training-time augmentation (torchvision.transforms.v2), applied in the order below.

    Pixel sizes are for a ``reference_size`` crop and scale with the spec's input size
    (AlexNet's "224 crops of 256" become 32 crops of 36.6 on a 32×32 input)."""

    reference_size: Pixels = 224
    resize: Pixels | None = None  # shorter side, then a random crop
    scale_jitter: tuple[Pixels, Pixels] | None = None
    random_resized_crop: ResizedCrop | None = None
    translate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0  # random shift, fraction of the side
    horizontal_flip: bool = False
    color_jitter: ColorJitter | None = None
    pca_lighting: Annotated[float, Field(ge=0.0, le=MAX_JITTER)] = 0.0  # AlexNet's PCA colour noise std
    eval_resize: Pixels | None = None  # val: shorter side, then a centre crop
    mean: tuple[Finite, ...] | None = None
    std: tuple[Positive, ...] | None = None

    @model_validator(mode="after")
    def _one_crop(self):
        crops = [n for n in ("resize", "scale_jitter", "random_resized_crop") if getattr(self, n) is not None]
        if len(crops) > 1:
            raise ValueError(f"give one of resize, scale_jitter, random_resized_crop, not {' and '.join(crops)}")
        if (self.mean is None) != (self.std is None) or (self.mean and len(self.mean) != len(self.std)):
            raise ValueError("mean and std go together and have one value per channel")
        _ordered(self.scale_jitter, "scale_jitter")
        bound = MAX_SCALE * self.reference_size
        for name in ("resize", "scale_jitter", "eval_resize"):
            value = getattr(self, name)
            largest = max(value) if isinstance(value, tuple) else value
            if largest is not None and largest > bound:
                raise ValueError(
                    f"{name} {largest} is more than {MAX_SCALE} × reference_size ({self.reference_size}) = {bound} "
                    "pixels; the images would be resized that much larger than the input"
                )
        return self


class Recipe(_Strict):
    """A paper's training procedure. ``source`` cites where each number comes from."""

    name: str
    source: str
    max_epochs: Annotated[int, Field(ge=1)]
    batch_size: Annotated[int, Field(ge=1)]  # global: split across devices
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    label_smoothing: Fraction = 0.0
    aux_loss_weight: NonNegative = 0.0  # each aux head's loss is added with this weight
    gradient_clip: Positive | None = None  # max global L2 norm of the gradients
    spec: dict[str, bool | int | float | str] = {}  # network parameters, set where the spec declares them
    optimizer: Optimizer
    schedule: Schedule = Schedule()
    averaging: Averaging | None = None
    augment: Augment = Augment()


# --------------------------------------------------------------------------- locating keys

_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\s\"-]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^(\s*)([A-Za-z0-9_.\"-]+)\s*=\s*(\S)")


def key_positions(text: str) -> dict[tuple[str, ...], tuple[int, int, int]]:
    """``(table..., key) -> (line, key column, value column)`` for every ``key = value`` line,
    and ``(table...,) -> (line, column, column)`` for every ``[table]`` header (1-based)."""
    positions: dict[tuple[str, ...], tuple[int, int, int]] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.split("\n"), start=1):
        header = _HEADER.match(line)
        if header:
            table = tuple(part.strip().strip('"') for part in header.group(1).split("."))
            positions.setdefault(table, (number, line.index("[") + 1, line.index("[") + 1))
            continue
        key = _KEY.match(line)
        if key:
            dotted = tuple(part.strip().strip('"') for part in key.group(2).split("."))
            positions.setdefault((*table, *dotted), (number, len(key.group(1)) + 1, key.end(3)))
    return positions


def _span(file: str, text: str, loc: tuple, *, at_value: bool) -> Span:
    positions = key_positions(text)
    path = tuple(str(p) for p in loc if not isinstance(p, int))
    while path and path not in positions:
        path = path[:-1]  # an inline table's key, or a missing one: point at its parent
    line, key_col, value_col = positions.get(path, (1, 1, 1))
    col = value_col if at_value else key_col
    source_line = text.split("\n")[line - 1]
    end = len(source_line.split("#")[0].rstrip()) + 1 if at_value else col + len(path[-1] if path else "")
    return Span(file=file, line=line, col=col, end_line=line, end_col=max(end, col + 1))


def _diagnostic(file: str, text: str, error: dict, overridden: set[str] = frozenset()) -> Diagnostic:
    loc = tuple(error["loc"])
    where = ".".join(str(p) for p in loc if not isinstance(p, int)) or "recipe"
    if where in overridden or any(o.startswith(f"{where}.") for o in overridden):  # from the command line
        message = error["msg"].removeprefix("Value error, ")
        return Diagnostic(code="E803", message=f"bad value for `{where}` (given on the command line): {message}")
    if error["type"] == "extra_forbidden":
        return Diagnostic(
            code="E802",
            message=f"unknown recipe key `{where}`",
            span=_span(file, text, loc, at_value=False),
            help="see `archc train --list-recipes` and docs/train.md for the recipe fields",
        )
    if error["type"] == "missing":
        return Diagnostic(
            code="E802", message=f"the recipe needs `{where}`", span=_span(file, text, loc[:-1], at_value=False)
        )
    message = error["msg"].removeprefix("Value error, ")
    misplaced = re.search(r"takes no (\w+)", message)
    if misplaced:  # a field the chosen optimizer/schedule does not take: point at that key
        loc = (*loc, misplaced.group(1))
        return Diagnostic(code="E802", message=message, span=_span(file, text, loc, at_value=False))
    return Diagnostic(
        code="E803", message=f"bad value for `{where}`: {message}", span=_span(file, text, loc, at_value=True)
    )


MAX_DEPTH = 16  # the deepest recipe field is 3 levels down (augment.random_resized_crop.scale)


def _depth(data) -> int:
    """How deep tables and arrays nest in ``data`` (without recursion: it may be 3000 deep)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack += [(child, depth + 1) for child in children if isinstance(child, (dict, list))]
    return deepest


_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_recipe(text: str, file: str = "<recipe>", overrides: dict[str, Any] | None = None) -> Recipe:
    """A validated :class:`Recipe` from TOML text; ``overrides`` (``{"optimizer.lr": 0.1}``)
    replace fields before validation. Raises :class:`SpecError` with located diagnostics."""
    sources = SourceMap()
    sources.add(file, text)

    def too_deep() -> SpecError:
        # tomllib parses arrays recursively: point at the line that opens the most levels
        lines = text.split("\n")

        def opens(line: str) -> int:
            header_dots = line.count(".") if line.lstrip().startswith("[") else 0
            return line.count("[") + line.count("{") + header_dots

        line = max(range(len(lines)), key=lambda i: opens(lines[i])) + 1
        error = SpecError(
            Diagnostic(
                code="E801",
                message=f"the recipe nests tables or arrays more than {MAX_DEPTH} deep",
                span=Span(file=file, line=line, col=1, end_line=line, end_col=2),
                help="a recipe is a few flat tables of numbers, strings and short arrays",
            )
        )
        error.sources = sources
        return error

    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise too_deep() from None
    except tomllib.TOMLDecodeError as err:
        found = _TOML_POSITION.search(str(err))
        line, col = (int(found.group(1)), int(found.group(2))) if found else (1, 1)
        message = _TOML_POSITION.sub("", str(err)).strip()
        error = SpecError(
            Diagnostic(
                code="E801",
                message=f"recipe is not valid TOML: {message}",
                span=Span(file=file, line=line, col=col, end_line=line, end_col=col + 1),
            )
        )
        error.sources = sources
        raise error from None
    for dotted, value in (overrides or {}).items():
        *tables, key = dotted.split(".")
        node = data
        for table in tables:
            node = node.setdefault(table, {})
            if not isinstance(node, dict):
                raise SpecError(Diagnostic(code="E803", message=f"cannot set `{dotted}`: `{table}` is not a table"))
        node[key] = value
    if _depth(data) > MAX_DEPTH:
        raise too_deep()
    try:
        # TOML arrays are JSON arrays: strict mode then takes them for tuples
        return Recipe.model_validate_json(json.dumps(data, default=str))
    except ValidationError as err:
        error = SpecError([_diagnostic(file, text, e, set(overrides or ())) for e in err.errors()])
        error.sources = sources
        raise error from None


def bundled_recipes() -> dict[str, Path]:
    """Recipes shipped with archlang, by name (``inception_v3`` -> .../recipes/inception_v3.toml)."""
    root = Path(__file__).resolve().parent / "recipes"  # package data, installed beside this module
    return {p.name[:-5]: p for p in sorted(root.iterdir()) if p.name.endswith(".toml")}


def load_recipe(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """A bundled recipe by name, or a TOML file by path."""
    bundled = bundled_recipes()
    path = bundled.get(str(name_or_path)) or Path(name_or_path)

    def fail(reason: str, code: str = "E804") -> SpecError:
        return SpecError(
            Diagnostic(
                code=code,
                message=f"cannot read recipe `{printable(str(name_or_path), keep_newlines=False)}`: {reason}",
                help=f"bundled recipes: {', '.join(sorted(bundled))}, or give a path to a .toml file",
            )
        )

    try:
        if path.exists() and not path.is_file():  # a FIFO would block, /dev/zero never ends
            raise fail("not a regular file")
        with open(path, "rb") as f:
            data = f.read(MAX_RECIPE_BYTES + 1)  # stat's size may lie (/proc) or change
        if len(data) > MAX_RECIPE_BYTES:
            raise fail(f"larger than the limit of {MAX_RECIPE_BYTES:,} bytes", "E603")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise fail(reason.lower()) from None
    return parse_recipe(text, str(path), overrides)


def parse_override(item: str) -> tuple[str, Any]:
    """``"optimizer.lr=0.1"`` -> ``("optimizer.lr", 0.1)``: the value is read as TOML, and as a
    string if it is not valid TOML (``schedule.name=step``)."""
    key, eq, value = item.partition("=")
    if not eq or not key.strip():
        raise ValueError(f"--recipe-set wants FIELD=VALUE, got {item!r}")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.strip(), parsed
