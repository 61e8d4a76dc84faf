"""timm models whose layers need tracing with shapes (``BatchNormAct2d``: a rank test, then
``F.batch_norm`` on its own buffers and its activation) import exactly: strict load, equal
float64 outputs (``scripts/import_coverage_timm.py`` checks one model of every family)."""

from __future__ import annotations

import pytest
import timm
from hostile_models import roundtrip


@pytest.mark.slow  # ~8 s each on an idle core (the hand-written BatchNormAct2d is in test_import_shapes.py)
@pytest.mark.parametrize("name", ["mobilenetv3_small_050", "lcnet_050"])
def test_timm_batchnorm_act_models_import_exactly(name):
    text = roundtrip(timm.create_model(name, num_classes=5), shape=(3, 32, 32))
    assert "batchnorm" in text and "BatchNormAct2d" not in text
