"""Training and applying on a GPU, against the CPU paths, in one run: the GPU figures of #18.

Prints which devices TensorFlow sees, then:

1. **Training**: the paper-sized set of ``train_speed.py`` (10 positives + 100 negatives, default
   augmentation, 20 epochs) through both training engines, FFT-domain (``engine="fft"``, the
   default) and Keras' direct convolutions (``engine="keras"``, cuDNN on a GPU); wall time each.
2. **Applying**: a ``Z x 1024 x 1024`` tomogram (256 slices by default) through
   :class:`tomowidgets.network.KerasEngine` on the GPU in batches of slices (what
   ``apply(..., engine="auto")`` does where a GPU is), and the first ``--cpu-slices`` of it through
   the CPU FFT engine (:class:`tomowidgets.engine.FFTEngine`, all cores): Mvoxel/s each.
3. **Agreement**: max |GPU - CPU| over the slices both computed, relative to the output scale
   (allowed 1e-4), for the trained network, with TensorFloat-32 allowed (TensorFlow's default)
   and forbidden; the second apply is timed too.

Without a GPU everything runs on the CPU and the figures say so: the script is how the GPU
figures are measured where one is at hand (``pip install -e ".[gpu]"``), and it runs anywhere.

Usage::

    python benchmarks/gpu_speed.py                                  # on a GPU machine
    python benchmarks/gpu_speed.py --slices 8 --cpu-slices 2 --epochs 2   # quick, e.g. on a CPU
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from apply_speed import make_slices  # noqa: E402  (sibling scripts, not a package)
from train_speed import paper_sized_set  # noqa: E402


def devices() -> list[str]:
    """The GPUs TensorFlow sees (imported the library's way: CPU threads capped first)."""
    from tomowidgets.network._cnn import _tf

    tf = _tf()
    return [d.name for d in tf.config.list_physical_devices("GPU")]


def time_training(engine: str, epochs: int):
    from tomowidgets.network import FeatureNet

    net = FeatureNet("synthetic", apix=10.0, seed=0)
    start = time.perf_counter()
    net.train(paper_sized_set(), epochs=epochs, engine=engine, progress=False)
    return net, time.perf_counter() - start


def keras_apply(net, slices: np.ndarray, batch: int) -> tuple[np.ndarray, float]:
    """tomowidgets' GPU path (:class:`KerasEngine`, batches of slices) after one warm-up batch."""
    from tomowidgets.network import KerasEngine

    engine = KerasEngine(net.weights(), batch=batch)
    engine.predict(slices[:batch])
    start = time.perf_counter()
    out = engine.predict(slices)
    return out, time.perf_counter() - start


def tensor_float_32(enabled: bool) -> None:
    """Allow or forbid TensorFloat-32 in float32 convolutions (TensorFlow allows it by default on
    Ampere and later GPUs; on the H200 other Keras backends then differ by 5-7e-4 from the CPU)."""
    from tomowidgets.network._cnn import _tf

    _tf().config.experimental.enable_tensor_float_32_execution(enabled)


def engine_apply(net, slices: np.ndarray) -> tuple[np.ndarray, float]:
    from tomowidgets.engine import FFTEngine

    engine = FFTEngine(net.weights())
    engine.predict(slices[0])
    start = time.perf_counter()
    out = engine.predict(slices)
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=256, help="tomogram depth (default 256)")
    parser.add_argument("--size", type=int, default=1024, help="slice edge (default 1024)")
    parser.add_argument("--cpu-slices", type=int, default=8,
                        help="slices also run through the CPU FFT engine (default 8)")
    parser.add_argument("--batch", type=int, default=8, help="slices per Keras predict batch")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    args = parser.parse_args(argv)

    gpus = devices()
    where = ", ".join(gpus) if gpus else "no GPU: TensorFlow runs on the CPU"
    print(f"TensorFlow devices: {where}; {os.cpu_count()} CPUs")
    rows = []
    net, fft_seconds = time_training("fft", args.epochs)
    rows.append((f"train, FFT-domain convolutions, {args.epochs} epochs", f"{fft_seconds:.1f} s"))
    _, keras_seconds = time_training("keras", args.epochs)
    rows.append((f"train, Keras direct convolutions, {args.epochs} epochs",
                 f"{keras_seconds:.1f} s"))

    slices = make_slices(args.slices, args.size, seed=0)
    gpu_out, gpu_seconds = keras_apply(net, slices, args.batch)
    cpu_out, cpu_seconds = engine_apply(net, slices[:args.cpu_slices])
    label = "GPU" if gpus else "CPU"
    rows.append((f"apply, KerasEngine ({label}), {args.slices} x {args.size}^2, batch {args.batch}",
                 f"{slices.size / gpu_seconds / 1e6:.2f} Mvoxel/s ({gpu_seconds:.1f} s)"))
    rows.append((f"apply, FFT engine (CPU), first {args.cpu_slices} slices",
                 f"{cpu_out.size * 4 / cpu_seconds / 1e6:.2f} Mvoxel/s ({cpu_seconds:.1f} s)"))
    scale = float(np.abs(cpu_out).max())
    diff = float(np.abs(gpu_out[:args.cpu_slices] - cpu_out).max())
    rows.append(("max abs(Keras - FFT engine) / output scale, TensorFloat-32 allowed (default)",
                 f"{diff / max(scale, 1e-30):.1e} (allowed 1e-4)"))
    tensor_float_32(False)
    strict, strict_seconds = keras_apply(net, slices, args.batch)
    diff = float(np.abs(strict[:args.cpu_slices] - cpu_out).max())
    rows.append((f"apply, Keras ({label}), TensorFloat-32 forbidden",
                 f"{slices.size / strict_seconds / 1e6:.2f} Mvoxel/s ({strict_seconds:.1f} s)"))
    rows.append(("max abs(Keras - FFT engine) / output scale, TensorFloat-32 forbidden",
                 f"{diff / max(scale, 1e-30):.1e} (allowed 1e-4)"))

    width = max(len(name) for name, _ in rows)
    print(f"| {'step':<{width}} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
