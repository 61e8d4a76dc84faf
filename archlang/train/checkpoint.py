"""Reading checkpoints and weights files a user names (``--resume``, ``--init``, ``--weights``)
without ever running code from them.

Every load is ``torch.load(weights_only=True)``, spelled out: pyproject allows torch 2.2,
whose default was still the full unpickler until 2.6. Lightning's own ``--resume`` load goes
through :class:`SafeCheckpointIO` for the same reason, and :func:`check_resumable` first
compares the checkpoint with the run, so that a checkpoint of another spec or recipe is one
located line instead of an error from inside Lightning's restore.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import torch

from archlang.diagnostics import Diagnostic, SpecError, printable

_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def _why(err: BaseException) -> str:
    """One line saying why ``torch.load(weights_only=True)`` refused a file."""
    text = str(err)
    if isinstance(err, pickle.UnpicklingError):
        found = _GLOBAL.search(text)
        if found:
            return f"it would import `{found.group(1)}`, Python code a safe load never runs"
        return "it holds Python objects other than tensors and plain data, which a safe load refuses"
    if isinstance(err, EOFError) or not text.strip():
        return "the file is empty or truncated"
    if "zip" in text or "central directory" in text or "PytorchStreamReader" in text:
        return "it is truncated or corrupt (not a complete PyTorch file)"
    first = text.strip().splitlines()[0][:200]
    return f"it is not a PyTorch file ({type(err).__name__}: {first})"


def safe_load(path: str | Path, code: str = "E805", what: str = "weights"):
    """``torch.load(path, weights_only=True)`` on the CPU; every problem is one
    :class:`SpecError` naming the file and the reason."""
    shown = printable(str(path), keep_newlines=False)

    def fail(reason: str, message: str | None = None) -> SpecError:
        return SpecError(Diagnostic(code=code, message=message or f"cannot read {what} `{shown}`: {reason}"))

    file = Path(path)
    try:
        if not file.exists():
            raise fail("", f"no {what} file `{shown}`")
        if not file.is_file():  # a FIFO would block, a device never ends
            raise fail("not a regular file")
    except (OSError, ValueError) as err:  # a NUL in the name, a name too long
        raise fail(getattr(err, "strerror", None) or str(err)) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols are for developers
            return torch.load(file, map_location="cpu", weights_only=True)
    except PermissionError:
        raise fail("permission denied") from None
    except (OSError, MemoryError) as err:
        raise fail((getattr(err, "strerror", None) or type(err).__name__).lower()) from None
    except Exception as err:  # pickle/zip errors have many types: _why sorts them
        raise fail(_why(err)) from None


def load_checkpoint_io():
    """A Lightning ``CheckpointIO`` whose loads are ``weights_only=True`` on every torch."""
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class SafeCheckpointIO(TorchCheckpointIO):
        def load_checkpoint(self, path, map_location=None, weights_only=None):
            return safe_load(path, "E809", "checkpoint")

    return SafeCheckpointIO()


# what Lightning's restore reads from an `archc train` checkpoint
_LIGHTNING_KEYS = ("state_dict", "optimizer_states", "lr_schedulers", "loops", "epoch", "global_step")


def check_resumable(checkpoint, path, module: torch.nn.Module, recipe) -> int:
    """Raise E809 unless ``checkpoint`` is an ``archc train`` checkpoint of this spec with
    this recipe's optimizer and schedule; returns the epochs its recipe asked for."""
    shown = printable(str(path), keep_newlines=False)

    def fail(reason: str, help: str | None = None) -> SpecError:
        return SpecError(Diagnostic(code="E809", message=f"--resume: `{shown}` {reason}", help=help))

    if not isinstance(checkpoint, dict) or any(k not in checkpoint for k in _LIGHTNING_KEYS):
        raise fail("is not a checkpoint of `archc train` (a weights file?)", "start from weights with --init FILE")
    state = checkpoint["state_dict"]
    own = module.state_dict()
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise fail("holds no state_dict of tensors")
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"lacks {len(missing)} of the spec's tensors (e.g. `{missing[0]}`)")
        if unexpected:
            parts.append(f"has {len(unexpected)} tensors the spec does not (e.g. `{unexpected[0]}`)")
        if wrong:
            k = wrong[0]
            parts.append(f"has `{k}` of shape {tuple(state[k].shape)}, the spec {tuple(own[k].shape)}")
        raise fail(
            "is from another spec or other parameters: it " + "; ".join(parts),
            "resume with the spec, --set and data of that run, or give another --out",
        )
    hparams = checkpoint.get("hyper_parameters") or {}
    classes = hparams.get("classes") if isinstance(hparams, dict) else None
    now = getattr(module, "hparams", {}).get("classes")
    if isinstance(classes, list) and now is not None and list(classes) != list(now):
        raise fail(
            f"was trained on classes {printable(str(classes[:5]))[:200]}, the data now has {printable(str(now[:5]))[:200]}",
            "resume with the data of that run, or give another --out",
        )
    stored = hparams.get("recipe") if isinstance(hparams, dict) else None
    stored = stored if isinstance(stored, dict) else {}
    before = (stored.get("optimizer") or {}).get("name") if isinstance(stored.get("optimizer"), dict) else None
    if before and before != recipe.optimizer.name:
        raise fail(f"was trained with optimizer {before!r}, the recipe now says {recipe.optimizer.name!r}")
    schedule = stored.get("schedule") if isinstance(stored.get("schedule"), dict) else {}
    schedule_before = schedule.get("name", "constant")
    if stored and schedule_before != recipe.schedule.name:
        raise fail(f"was trained with schedule {schedule_before!r}, the recipe now says {recipe.schedule.name!r}")
    epochs = stored.get("max_epochs")
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else recipe.max_epochs
