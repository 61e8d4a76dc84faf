"""Receptive field per axis, composed along the graph (Araujo et al., Distill 2019).

For a window op with kernel ``k``, dilation ``d``, stride ``s`` and padding ``pad`` on an
input whose field is ``(r, j, p)`` (size, jump / effective stride, effective padding)::

    k_eff = d * (k - 1) + 1
    r_out = r + (k_eff - 1) * j      j_out = j * s      p_out = p + pad * j

Pointwise ops keep the field. A merge (concat / add) takes the largest field among its
inputs and is flagged *misaligned* when the inputs disagree in effective stride or in the
centre of unit 0 (``(r - 1) / 2 - p``). Global operations (adaptive pooling to 1, or to a
size that does not divide the input; spatial_mean; flatten; linear) see the whole input: the axis becomes
:data:`WHOLE_AXIS`. Adaptive pooling to a size that divides the input is the plain pooling
``k = s = in / out``.

Every rule takes ``(attrs, input fields, input ids, input shapes)`` and returns a
:class:`ReceptiveField`.
"""

from __future__ import annotations

from ..ops import Op
from ..ops.records import RECORDS
from ..ops.rf_rules import Rule

RF_RULES: dict[Op, Rule] = {op: r.rf for op, r in RECORDS.items()}
