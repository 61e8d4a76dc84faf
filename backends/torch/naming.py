"""Python identifiers from spec names, and safe text for comments and docstrings.

A spec may name a layer ``class``, ``3x3``, ``len`` or ``mixed-5b``; the generated Python
must still be valid, readable and unambiguous. :class:`Namespace` works like torch.fx's
``_Namespace``: every name becomes a valid identifier that is not a keyword, does not shadow
a builtin or a name the generated module itself uses (``torch``, ``nn``, ``F``, ``self``),
and is unique within its namespace; readable names stay as they are (``class`` ->
``class_``, ``3x3`` -> ``_3x3``, ``mixed-5b`` -> ``mixed_5b``). The same name always maps
to the same identifier, so the output is deterministic.

Submodule *attribute* names are different: they decide state_dict keys, so they are kept
verbatim (``setattr`` accepts any string; the code uses ``getattr`` for the odd ones) —
see :func:`is_plain_attribute`.
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata

# Names the generated file binds at module level or uses inside methods.
RESERVED = frozenset({"torch", "nn", "F", "namedtuple", "self", "x", "Tensor"})
_BUILTINS = frozenset(dir(builtins))
_INVALID = re.compile(r"[^0-9A-Za-z_]+")


def sanitize(name: str) -> str:
    """A valid identifier close to ``name`` (not yet checked for keywords or clashes)."""
    text = _INVALID.sub("_", name)
    if not text:
        return "_"
    if text[0].isdigit():
        text = "_" + text
    if text.startswith("__") and text.strip("_"):
        text = "_" + text.lstrip("_")  # ``__p`` in a class body is mangled (``_Net__p``)
    return text


def is_plain_attribute(name: str) -> bool:
    """Whether ``self.<name>`` is valid Python (else generated code uses getattr) and names
    the same attribute: Python NFKC-normalizes identifiers, so ``self.ﬁlter`` (U+FB01)
    would read ``filter`` and change the state_dict key. Names with a leading ``__`` would be
    mangled by Python inside the class (``self.__w`` is ``_N__w``), so they use getattr too."""
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and unicodedata.normalize("NFKC", name) == name
        and not name.startswith("__")  # ``self.__w`` in a class body is mangled to ``_N__w``
    )


class Namespace:
    """Hands out unique, valid, non-shadowing identifiers; the same name gets the same one."""

    def __init__(self, reserved: frozenset[str] | set[str] = frozenset()):
        self._taken: set[str] = set(RESERVED) | set(reserved)
        self._given: dict[object, str] = {}

    def name(self, wanted: str, key: object | None = None) -> str:
        """An identifier for ``wanted``; asking again with the same ``key`` returns the same one."""
        key = wanted if key is None else key
        if key in self._given:
            return self._given[key]
        base = sanitize(wanted)
        if keyword.iskeyword(base) or keyword.issoftkeyword(base) or base in _BUILTINS:
            base += "_"
        candidate, k = base, 1
        while candidate in self._taken:
            k += 1
            candidate = f"{base}_{k}"
        self._taken.add(candidate)
        self._given[key] = candidate
        return candidate

    def __contains__(self, name: str) -> bool:
        """Whether ``name`` is taken (given out or reserved)."""
        return name in self._taken


def comment_text(text: str) -> str:
    """Text safe inside a ``#`` comment: one line, no control characters."""
    return "".join(ch if ch.isprintable() else " " for ch in text.replace("\n", " "))


def docstring_text(text: str) -> str:
    """Text safe inside a triple-quoted docstring: no backslashes or quote runs that end it."""
    return comment_text(text).replace("\\", "\\\\").replace('"', '\\"')


def class_name(name: str, namespace: Namespace, kind: str = "class") -> str:
    """A class identifier; CamelCase spec names are kept, others get their first letter
    capitalized. ``kind`` tells apart things that may share a spec name (a block, the
    network and its outputs type may all be called ``Net``): each gets its own identifier."""
    base = sanitize(name)
    if base[0].islower():
        base = base[0].upper() + base[1:]
    return namespace.name(base, key=(kind, name))


# Attribute names torch.nn.Module already has (torch 2.x): a submodule cannot take them.
MODULE_ATTRIBUTES = frozenset(
    {
        "T_destination",
        "_apply",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_buffers",
        "_call_impl",
        "_compiled_call_impl",
        "_forward_hooks",
        "_forward_hooks_always_called",
        "_forward_hooks_with_kwargs",
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
        "_get_backward_hooks",
        "_get_backward_pre_hooks",
        "_get_name",
        "_is_full_backward_hook",
        "_load_from_state_dict",
        "_load_state_dict_post_hooks",
        "_load_state_dict_pre_hooks",
        "_maybe_warn_non_full_backward_hook",
        "_modules",
        "_named_members",
        "_non_persistent_buffers_set",
        "_parameters",
        "_register_load_state_dict_pre_hook",
        "_register_state_dict_hook",
        "_replicate_for_data_parallel",
        "_save_to_state_dict",
        "_slow_forward",
        "_state_dict_hooks",
        "_state_dict_pre_hooks",
        "_version",
        "_wrapped_call_impl",
        "add_module",
        "apply",
        "bfloat16",
        "buffers",
        "call_super_init",
        "children",
        "compile",
        "cpu",
        "cuda",
        "double",
        "dump_patches",
        "eval",
        "extra_repr",
        "float",
        "forward",
        "get_buffer",
        "get_extra_state",
        "get_parameter",
        "get_submodule",
        "half",
        "ipu",
        "load_state_dict",
        "modules",
        "mtia",
        "named_buffers",
        "named_children",
        "named_modules",
        "named_parameters",
        "parameters",
        "register_backward_hook",
        "register_buffer",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook",
        "register_load_state_dict_pre_hook",
        "register_module",
        "register_parameter",
        "register_state_dict_post_hook",
        "register_state_dict_pre_hook",
        "requires_grad_",
        "set_extra_state",
        "set_submodule",
        "share_memory",
        "state_dict",
        "to",
        "to_empty",
        "train",
        "training",
        "type",
        "xpu",
        "zero_grad",
        "_initialize_weights",
    }
)
