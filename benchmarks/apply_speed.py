"""Speed of applying the paper's network to tomogram slices: Keras ``predict`` vs the FFT engine.

Runs the same network (random Glorot weights with small biases, or a trained ``.keras`` file) on the
same 1024 x 1024 slices through Keras ``predict`` (batch 1, one slice at a time, as EMAN2 does) and
through :class:`tomowidgets.engine.FFTEngine`, then one 4096 x 4096 slice through the engine.
Each path runs in a fresh subprocess so that its peak memory (RSS high-water mark) is its own, and
times the same work `--repeats` times: the table shows medians. Prints time, Mvoxel/s (input
voxels), GFLOP/s (the arithmetic each path does) next to the machine's measured float32
matrix-multiply rate (what its cores sustain at best), peak RSS, the speed-up and the largest difference.

Usage::

    python benchmarks/apply_speed.py                      # random weights
    python benchmarks/apply_speed.py membrane.keras       # a trained network
    python benchmarks/apply_speed.py --slices 2 --big 0   # quicker

Targets on a 2-core machine: >= 10x Keras, >= 8 Mvoxel/s, <= 2 GiB for a 4096 x 4096 slice.
Timings on a shared machine are noisy; run it when nothing else is running.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LAYERS = ("conv1", "conv2", "conv3")
KERNEL, CHANNELS = 15, 40
TARGET_SPEEDUP, TARGET_MVOX, TARGET_PEAK_GIB = 10.0, 8.0, 2.0


def fft_flops(n: int) -> float:
    """Floating-point operations of a real n x n FFT (the usual 2.5 N log2 N estimate)."""
    return 2.5 * n * n * np.log2(n * n)


def engine_flops_per_voxel(tile: int = 320, window1: int = 128, k: int = KERNEL,
                           c: int = CHANNELS) -> float:
    """Arithmetic the FFT engine does per input voxel, overlaps of its windows included.

    Layer 1 on ``window1``-pixel windows (one forward transform, ``c`` spectral products, ``c``
    inverse transforms), then 2 x 2 pooling; layers 2-3 on ``tile // 2`` pooled windows (``c``
    forward, ``c x c`` complex products per frequency, ``c`` inverse and ``c`` forward transforms
    around the ReLU, ``c`` products and one inverse for layer 3).
    """
    kept1 = window1 - k + 1                                  # input pixels kept per side
    layer1 = fft_flops(window1) + c * 6 * window1 * (window1 // 2 + 1) + c * fft_flops(window1)
    m = tile // 2
    kept2 = m - 4 * (k // 2)                                 # pooled pixels kept per side
    freqs = m * (m // 2 + 1)
    layers23 = (3 * c + 1) * fft_flops(m) + freqs * 8 * (c * c + c)
    return layer1 / kept1 ** 2 + layers23 / (4 * kept2 ** 2)


def direct_flops_per_voxel(k: int = KERNEL, c: int = CHANNELS) -> float:
    """Arithmetic of Keras' direct convolutions per input voxel (layers 2-3 at half resolution)."""
    return 2 * k * k * (c + (c * c + c) / 4)


def worker_peak() -> dict:
    """The machine's float32 matrix-multiply rate on all cores: a practical peak."""
    a = np.random.default_rng(0).random((2048, 2048), np.float32)
    a @ a
    times = []
    for _ in range(5):
        start = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - start)
    return {"gflops": 2 * 2048 ** 3 / np.median(times) / 1e9}


def random_weights(seed: int) -> dict[str, list[np.ndarray]]:
    """Glorot-uniform kernels (Keras' default initializer) and N(0, 0.05) biases."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, (c_in, c_out) in zip(LAYERS, [(1, CHANNELS), (CHANNELS, CHANNELS), (CHANNELS, 1)],
                                   strict=True):
        limit = np.sqrt(6.0 / (KERNEL * KERNEL * (c_in + c_out)))
        kernel = rng.uniform(-limit, limit, (KERNEL, KERNEL, c_in, c_out))
        weights[name] = [kernel.astype(np.float32), rng.normal(0.0, 0.05, c_out).astype(np.float32)]
    return weights


def make_slices(n: int, size: int, seed: int) -> np.ndarray:
    """Preprocessed-looking slices: smoothed noise, mean 0 / sd 1, clamped at +-3 sd."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size), np.float32)
    for i in range(n):
        image = ndimage.gaussian_filter(rng.standard_normal((size, size), np.float32), 1.5)
        image -= image.mean()
        image /= image.std()
        out[i] = np.clip(image, -3, 3)
    return out


def peak_rss_mib() -> float:
    """This process's RSS high-water mark in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_weights(data: Path, model: str | None) -> dict[str, list[np.ndarray]]:
    if model:
        try:
            from tomowidgets.network import read_weights
        except ImportError as error:
            raise SystemExit(f"reading {model} needs tomowidgets.network.read_weights: "
                             f"{error}") from error
        return read_weights(model)
    with np.load(data) as arrays:
        return {name: [arrays[f"{name}_kernel"], arrays[f"{name}_bias"]] for name in LAYERS}


def worker_engine(data: Path, out: Path, model: str | None, tile: int | None,
                  workers: int | None, big: int, repeats: int) -> dict:
    """Engine on the saved slices (or on one `big` x `big` slice made here); timings as a dict."""
    from tomowidgets.engine import FFTEngine

    weights = load_weights(data, model)
    if big:
        slices = make_slices(1, big, seed=1)[0]
    else:
        with np.load(data) as arrays:
            slices = arrays["slices"]
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    options = {} if tile is None else {"tile": tile}
    engine = FFTEngine(weights, workers=workers, **options)
    setup = time.perf_counter() - start
    if not big:
        engine.predict(slices[0])                   # warm-up, as Keras gets one
    seconds, cpu, result = timed(engine.predict, slices, 1 if big else repeats)
    if not big:
        np.save(out, result)
    return {"seconds": seconds, "cpu": cpu, "setup": setup, "voxels": int(slices.size),
            "peak_mib": peak_rss_mib(), "data_mib": rss_before, "engine": repr(engine),
            "flops": engine_flops_per_voxel(engine.tile)}


def timed(function, argument, repeats: int) -> tuple[float, float, np.ndarray]:
    """Median wall-clock and CPU seconds of `repeats` calls, and the last result."""
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        result = function(argument)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return float(np.median(walls)), float(np.median(cpus)), result


def worker_keras(data: Path, out: Path, model: str | None, repeats: int) -> dict:
    """Keras predict, batch 1, one slice at a time (after one warm-up call)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    if model:
        from tomowidgets import network

        try:
            net = network.FeatureNet.load(model).model
        except ValueError:              # a bare Keras file, without tomowidgets' metadata
            network.build_model(compile=False)      # registers min_one & co. with Keras
            net = keras.saving.load_model(model, compile=False)
    else:
        from tomowidgets.network import build_model

        net = build_model(filters=CHANNELS, kernel_size=KERNEL, compile=False)
        weights = load_weights(data, None)
        for name in LAYERS:
            net.get_layer(name).set_weights(weights[name])
    with np.load(data) as arrays:
        slices = arrays["slices"]
    start = time.perf_counter()
    net.predict(slices[:1, :, :, None], batch_size=1, verbose=0)    # traces the graph
    first_call = time.perf_counter() - start

    def predict(stack: np.ndarray) -> np.ndarray:
        return np.stack([net.predict(s[None, :, :, None], batch_size=1, verbose=0)[0, :, :, 0]
                         for s in stack])

    seconds, cpu, result = timed(predict, slices, repeats)
    np.save(out, result)
    return {"seconds": seconds, "cpu": cpu, "voxels": int(slices.size),
            "peak_mib": peak_rss_mib(), "first_call": first_call,
            "flops": direct_flops_per_voxel()}


def run_worker(kind: str, data: Path, out: Path, args: argparse.Namespace,
               big: int = 0) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--data", str(data), "--out", str(out),
               "--big", str(big), "--repeats", str(args.repeats)]
    if args.model:
        command.append(args.model)
    if args.tile:
        command += ["--tile", str(args.tile)]
    if args.workers:
        command += ["--workers", str(args.workers)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{kind} worker failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", help="trained .keras file (default: random weights)")
    parser.add_argument("--slices", type=int, default=8, help="number of slices (default 8)")
    parser.add_argument("--size", type=int, default=1024, help="slice edge (default 1024)")
    parser.add_argument("--big", type=int, default=4096,
                        help="edge of the single large slice run through the engine; 0 skips it")
    parser.add_argument("--tile", type=int, default=None, help="FFTEngine tile (default: its own)")
    parser.add_argument("--workers", type=int, default=None, help="engine threads (default: all)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs of each path; the table shows medians (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=["engine", "keras", "peak"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "engine":
        print(json.dumps(worker_engine(args.data, args.out, args.model, args.tile, args.workers,
                                       args.big, args.repeats)))
        return 0
    if args.worker == "keras":
        print(json.dumps(worker_keras(args.data, args.out, args.model, args.repeats)))
        return 0
    if args.worker == "peak":
        print(json.dumps(worker_peak()))
        return 0

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.npz"
        slices = make_slices(args.slices, args.size, args.seed)
        arrays = {"slices": slices}
        if not args.model:
            for name, (kernel, bias) in random_weights(args.seed).items():
                arrays[f"{name}_kernel"], arrays[f"{name}_bias"] = kernel, bias
        np.savez(data, **arrays)
        peak = run_worker("peak", data, Path(tmp) / "peak.npy", args)
        engine = run_worker("engine", data, Path(tmp) / "engine.npy", args)
        keras = run_worker("keras", data, Path(tmp) / "keras.npy", args)
        big = None
        if args.big:
            big = run_worker("engine", data, Path(tmp) / "big.npy", args, args.big)
        ours, theirs = np.load(Path(tmp) / "engine.npy"), np.load(Path(tmp) / "keras.npy")

    def mvox(r: dict) -> float:
        return r["voxels"] / r["seconds"] / 1e6

    source = args.model or f"random Glorot weights (seed {args.seed})"
    print(f"Network: 40@15x15 -> max-pool 2 -> 40@15x15 -> 1@15x15 -> min(1, x); {source}")
    print(f"Machine: {os.cpu_count()} CPUs, load average {load_before:.1f} before and "
          f"{os.getloadavg()[0]:.1f} after (> 0.5: other work shared the CPUs; times are noisy); "
          f"float32 matrix multiply on all cores: {peak['gflops']:.0f} GFLOP/s (a practical peak)")
    print(f"Engine: {engine['engine']}, set-up (kernel spectra) {engine['setup']:.2f} s; "
          f"Keras' first predict call (graph tracing, not timed below) {keras['first_call']:.2f} s")
    print(f"Arithmetic per input voxel: engine {engine['flops']:.0f} FLOP (FFT estimate), Keras "
          f"{keras['flops']:.0f} FLOP (direct convolutions); medians of {args.repeats} runs")
    label = f"{args.slices} x {args.size}^2"
    header = f"{'path':<34}{'slices':>14}{'time (s)':>10}{'CPU (s)':>9}{'Mvoxel/s':>10}" \
             f"{'GFLOP/s':>9}{'% peak':>8}{'peak RSS (MiB)':>16}"
    print(header)
    print("-" * len(header))
    rows = [("Keras predict, batch 1", label, keras), ("FFT engine", label, engine)]
    if big:
        rows.append(("FFT engine, one large slice", f"1 x {args.big}^2", big))
    for name, what, r in rows:
        gflops = mvox(r) * r["flops"] / 1e3
        print(f"{name:<34}{what:>14}{r['seconds']:>10.2f}{r['cpu']:>9.2f}{mvox(r):>10.2f}"
              f"{gflops:>9.1f}{100 * gflops / peak['gflops']:>7.0f}%{r['peak_mib']:>16.0f}")
    speedup = keras["seconds"] / engine["seconds"]
    cpu_ratio = keras["cpu"] / engine["cpu"]
    diff = float(np.abs(ours - theirs).max())
    scale = float(np.abs(theirs).max())
    print(f"speed-up over Keras: {speedup:.1f}x in time, {cpu_ratio:.1f}x in CPU time (target >= "
          f"{TARGET_SPEEDUP:.0f}x); engine {mvox(engine):.2f} Mvoxel/s "
          f"(target >= {TARGET_MVOX:.0f})")
    print(f"max |engine - Keras| = {diff:.2e} (output scale {scale:.3f}, relative "
          f"{diff / max(scale, 1e-30):.1e}; allowed 1e-4)")
    if big:
        print(f"{args.big}^2 slice: peak RSS {big['peak_mib'] / 1024:.2f} GiB "
              f"(target <= {TARGET_PEAK_GIB:.0f} GiB; input slice alone "
              f"{args.big ** 2 * 4 / 2 ** 20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
