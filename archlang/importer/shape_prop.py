"""Every value's shape in a traced graph: one forward pass (eval mode, no grad) of a random
``(2, C, H, W)`` input, on fake tensors where torch can (shapes without the arithmetic: a
100-GFLOP model in a second), else on real ones. A failure is E727 naming the module that
failed; ``ShapeProp``'s own traceback printing is silenced."""

from __future__ import annotations

import contextlib
import io

import torch
import torch.fx as fx
from torch.fx.passes.shape_prop import ShapeProp

from archlang.importer.series_parallel import problem

# The batch of the trace's and this pass's inputs: 2, so that a BatchNorm in training mode
# after a global pool (one value per channel at batch 1) runs; sizes read in the forward are
# those of this batch, and `x.size(0)` is known to be the batch (:class:`~.concrete.Dim`).
BATCH = 2


class _Shapes(ShapeProp):
    """ShapeProp on ``graph`` run against ``module`` itself: no ``GraphModule``, whose
    generated Python breaks on attribute names that are keywords (``self.class``)."""

    current: fx.Node | None = None

    def __init__(self, module, graph: fx.Graph, fake_mode=None):
        fx.Interpreter.__init__(self, module, graph=graph)
        self.fake_module = self.fake_mode = None
        if fake_mode is not None:
            from torch._dynamo.utils import deepcopy_to_fake_tensor

            self.fake_module = deepcopy_to_fake_tensor(module, fake_mode)
            self.fake_mode = fake_mode
        self.real_module = module

    def run_node(self, n: fx.Node):
        self.current = n
        return super().run_node(n)


def propagate_shapes(graph: fx.Graph, module, input_shape) -> None:
    param = next(module.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else "cpu"
    module.eval()  # the caller restores the training flags
    with contextlib.redirect_stderr(io.StringIO()), torch.no_grad():
        try:
            from torch._subclasses.fake_tensor import FakeTensorMode

            fake = FakeTensorMode(allow_non_fake_inputs=True)
            with fake:  # no memory for the input either: a 3x8192x8192 input costs nothing
                x = torch.randn(BATCH, *input_shape, dtype=dtype, device=device)
            _Shapes(module, graph, fake_mode=fake).propagate(x)
            return
        except Exception:
            pass
        real = _Shapes(module, graph)
        try:
            real.propagate(torch.randn(BATCH, *input_shape, dtype=dtype, device=device))
        except Exception as err:
            raise _failed(real.current, err, input_shape) from None


def _failed(node: fx.Node | None, err: Exception, input_shape):
    while err.__cause__ is not None:  # ShapeProp wraps the module's own error
        err = err.__cause__
    text = str(err).strip()
    reason = text.splitlines()[0] if text else type(err).__name__
    where = ""
    if node is not None and node.op == "call_module":
        where = f"`{node.target}` "
    elif node is not None and node.meta.get("nn_module_stack"):
        where = f"`{list(node.meta['nn_module_stack'].values())[-1][0]}` "
    size = "x".join(map(str, input_shape))
    return problem(
        "E727",
        f"the module fails on a 1x{size} input {('at ' + where) if where else ''}: {reason}".replace(" :", ":"),
        "give the input size it expects with --input CxHxW (input_shape=)",
    )


def ndim(node) -> int | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return len(meta.shape) if meta is not None and hasattr(meta, "shape") else None
