"""Applying a network through Keras ``predict``: the path :func:`tomowidgets.apply` takes on a GPU.

The FFT engine (:mod:`tomowidgets.engine`) is CPU code. On an NVIDIA GPU, TensorFlow runs the
paper's 15×15 convolutions through cuDNN, which is the fast path there, so ``apply(...,
engine="auto")`` uses :class:`KerasEngine` when :func:`gpu_available` says TensorFlow sees a GPU,
and the FFT engine otherwise (and always on Dask workers, which need no TensorFlow). Both give
the same scores to float32 rounding (``tests/test_apply.py``).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tomowidgets._validate import check_positive_int, check_slices
from tomowidgets.network.netfile import LAYERS, NetworkRecord, check_weights

#: Where the NVIDIA driver lists its GPUs on Linux.
_NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def gpu_available() -> bool:
    """Whether TensorFlow is installed and sees a GPU.

    TensorFlow (3-5 s to import) is imported only when an NVIDIA driver is present, so that
    machines without a GPU, CI among them, never pay for the question.
    """
    if importlib.util.find_spec("tensorflow") is None:
        return False
    driver = _NVIDIA_GPUS.is_dir() and any(_NVIDIA_GPUS.iterdir())
    if not driver and shutil.which("nvidia-smi") is None:
        return False
    from tomowidgets.network._cnn import _tf

    return bool(_tf().config.list_physical_devices("GPU"))


class KerasEngine:
    """The paper's network through Keras ``predict``, with :class:`~tomowidgets.engine.FFTEngine`'s
    ``predict`` contract (half-resolution scores, capped at 1, 2.5D context).

    Parameters
    ----------
    weights : mapping of str to [kernel, bias], or NetworkRecord
        As for FFTEngine.
    batch : int, default 4
        Slices per ``predict`` call (GPU memory: ~0.5 GB per 1024² slice in float32).

    Raises
    ------
    ImportError
        If TensorFlow is not installed.
    ValueError
        As FFTEngine for bad weights, or `batch` < 1.
    """

    def __init__(self, weights: Mapping[str, Sequence[Any]] | NetworkRecord, *, batch: int = 4) -> None:
        from tomowidgets.network._cnn import build_model

        checked = weights.weights if isinstance(weights, NetworkRecord) else check_weights(weights)
        kernel = checked["conv1"][0]
        self.kernel_size, self.channels = kernel.shape[0], kernel.shape[3]
        #: Slices above and below each slice that a 2.5D network reads (0 for the paper's 2D one).
        self.context = (kernel.shape[2] - 1) // 2
        self.batch = check_positive_int(batch, "batch")
        self.model = build_model(filters=self.channels, kernel_size=self.kernel_size, compile=False,
                                 inputs=kernel.shape[2])
        for name in LAYERS:
            self.model.get_layer(name).set_weights(checked[name])

    def __repr__(self) -> str:
        context = f", context={self.context}" if self.context else ""
        return (f"KerasEngine(kernel_size={self.kernel_size}, channels={self.channels}{context}, "
                f"batch={self.batch})")

    def predict(self, slices: Any) -> np.ndarray:
        """Network output at half resolution: ``(n - 2 * context, y // 2, x // 2)`` float32 for a
        stack ``(n, y, x)`` (``(y // 2, x // 2)`` for one slice), as FFTEngine.predict."""
        stack, single = check_slices(slices, self.context)
        k = self.context
        out = np.empty((len(stack) - 2 * k, stack.shape[1] // 2, stack.shape[2] // 2), np.float32)
        for start in range(0, len(out), self.batch):
            stop = min(start + self.batch, len(out))
            # each slice with its neighbours as channels, (b, y, x, 2k + 1)
            inputs = np.stack([np.moveaxis(stack[z:z + 2 * k + 1], 0, -1) for z in range(start, stop)])
            # predict_on_batch, not predict: predict builds a data pipeline on every call, ~75 ms
            # here on a CPU, longer than a GPU takes to run a 1024² slice
            out[start:stop] = np.asarray(self.model.predict_on_batch(inputs))[..., 0]
        return out[0] if single else out
