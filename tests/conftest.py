"""Fixtures and helpers shared by the test modules.

Helpers that module-level code needs (a fake network's weights, a widget's front-end message) are
plain functions here; test modules import them with ``from conftest import ...``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tomowidgets.network.netfile import LAYERS


def random_weights(seed: int, *, kernel: int = 15, channels: int = 40, out_bias: float = 0.0,
                   inputs: int = 1) -> dict[str, list[np.ndarray]]:
    """Weights of the paper's network layout with Glorot-uniform kernels and small random biases,
    at a trained network's scale; `inputs` = 2 * context + 1 slices; `out_bias` shifts conv3's bias
    (> 0 caps part of the output at min(1, x))."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, (c_in, c_out) in zip(LAYERS, [(inputs, channels), (channels, channels), (channels, 1)],
                                   strict=True):
        limit = np.sqrt(6.0 / (kernel * kernel * (c_in + c_out)))
        values = rng.uniform(-limit, limit, (kernel, kernel, c_in, c_out)).astype(np.float32)
        weights[name] = [values, rng.normal(0.0, 0.05, c_out).astype(np.float32)]
    weights["conv3"][1] += np.float32(out_bias)
    return weights


def frontend(canvas: Any, event: str, **content: Any) -> None:
    """Deliver a message as the browser would (ipycanvas routes it to the top layer's callbacks)."""
    canvas._handle_custom_msg({"event": event, **content}, [])


@pytest.fixture(scope="session")
def small_cell():
    """A small synthetic cell (40×128×128 voxels at 10 Å, seed 5) with its ground truth; shared,
    so tests must not modify it."""
    import tomowidgets as tw

    return tw.synthetic.make_cell((40, 128, 128), seed=5)
