"""Training and applying on a GPU, against the CPU paths, in one run: the GPU figures of #18.

Prints which devices TensorFlow sees, then:

1. **Training**: the paper-sized set of ``train_speed.py`` (10 positives + 100 negatives, default
   augmentation, 20 epochs) through both training engines, FFT-domain (``engine="fft"``, the
   default) and Keras' direct convolutions (``engine="keras"``, cuDNN on a GPU); wall time each.
2. **Applying**: a ``Z x 1024 x 1024`` tomogram (256 slices by default) through Keras ``predict``
   on the GPU in batches of slices (what ``apply(..., engine="auto")`` does where a GPU is), and
   the first ``--cpu-slices`` of it through the CPU FFT engine
   (:class:`tomowidgets.engine.FFTEngine`, all cores): Mvoxel/s each.
3. **Agreement**: max |GPU - CPU| over the slices both computed, relative to the output scale
   (allowed 1e-4), for the trained network.

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
    """Keras predict over all `slices` in batches (after one warm-up batch): output, seconds."""
    model = net.model
    model.predict(slices[:batch, ..., None], batch_size=batch, verbose=0)
    start = time.perf_counter()
    out = np.concatenate([model.predict(slices[i:i + batch, ..., None], batch_size=batch,
                                        verbose=0)[..., 0] for i in range(0, len(slices), batch)])
    return out, time.perf_counter() - start


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
    rows.append((f"apply, Keras predict ({label}), {args.slices} x {args.size}^2, batch {args.batch}",
                 f"{slices.size / gpu_seconds / 1e6:.2f} Mvoxel/s ({gpu_seconds:.1f} s)"))
    rows.append((f"apply, FFT engine (CPU), first {args.cpu_slices} slices",
                 f"{cpu_out.size * 4 / cpu_seconds / 1e6:.2f} Mvoxel/s ({cpu_seconds:.1f} s)"))
    common = gpu_out[:args.cpu_slices]
    diff = float(np.abs(common - cpu_out).max())
    scale = float(np.abs(common).max())
    rows.append(("max abs(Keras - FFT engine) / output scale",
                 f"{diff / max(scale, 1e-30):.1e} (allowed 1e-4)"))

    width = max(len(name) for name, _ in rows)
    print(f"| {'step':<{width}} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
