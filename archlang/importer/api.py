"""``archlang.from_module``: the importer's stages in order (no torch at import)."""

from __future__ import annotations


def from_module(
    module, input_shape: tuple[int, ...] = (3, 224, 224), name: str | None = None, source: str | None = None
) -> str:
    """The ``.arch`` spec text of ``module`` (an ``nn.Module``) traced on a
    ``(1, *input_shape)`` input: building the spec gives a module that loads ``module``'s
    ``state_dict`` with ``strict=True`` and computes the same function.

    ``name`` is the network's name (default: the class name); ``source`` what the header
    says it came from. Raises :class:`archlang.SpecError` (E720-E727) for what archlang
    cannot express, naming the module path and the op.
    """
    from archlang.importer.name_checks import check_labels, check_text

    from .blocks import abstract
    from .boundary import canonical_network
    from .text import network_text
    from .trace import trace

    input_shape = _checked(module, input_shape)
    network = trace(module, input_shape, name)
    check_labels(network)
    network.header = [
        f"{network.name}, imported from {source or type(module).__module__ + '.' + type(module).__qualname__}"
    ]
    network = canonical_network(abstract(network))
    _num_classes(network)
    return check_text(lambda: network_text(network))


def _num_classes(network) -> None:
    """A classifier's last ``linear`` (of the network, not of a block) reads its width from
    a ``num_classes`` parameter, as the bundled specs do, so ``archc train`` sets it from
    the data (``--num-classes``); aux heads of the same width follow it."""
    from .tree import Call, Instance, Param, Seq

    def last_linear(item):
        while isinstance(item, (Seq, Instance)):
            items = item.items if isinstance(item, Seq) else item.body.items
            if not items:
                return None
            item = items[-1]
        ok = isinstance(item, Call) and item.op == "linear" and item.args and isinstance(item.args[0], int)
        return item if ok and not isinstance(item.args[0], bool) else None

    main = last_linear(network.body)
    if main is None:
        return
    width = main.args[0]
    for call in [main, *(last_linear(a.body) for a in network.aux)]:
        if call is not None and call.args[0] == width:
            call.args = (Param("num_classes"), *call.args[1:])
    network.params = [("num_classes", "int", width)]


def _checked(module, input_shape) -> tuple[int, ...]:
    """``input_shape`` as a tuple of ints, or E726 / E727 for a call the CLI would not make."""
    import numbers

    import torch

    from archlang.importer.series_parallel import problem

    from ..ops import MAX_DIM

    if not isinstance(module, torch.nn.Module):
        raise problem("E726", f"from_module wants a torch.nn.Module, got a value of type `{type(module).__name__}`")
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if len(shape) not in (1, 3) or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and 1 <= d <= MAX_DIM for d in shape
    ):
        raise problem(
            "E727",
            f"input_shape wants (C, H, W) (or (features,)) of positive ints up to {MAX_DIM:,}, got {input_shape!r}",
            "like input_shape=(3, 224, 224); --input 3x224x224 on the command line",
        )
    return tuple(int(d) for d in shape)
