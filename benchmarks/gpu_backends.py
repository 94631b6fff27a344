"""The paper's network on a GPU through Keras 3's JAX and PyTorch backends, against the CPU paths.

``gpu_speed.py`` measures tomowidgets' own GPU path (TensorFlow with the ``gpu`` extra). Where
TensorFlow cannot be installed on the GPU machine (the one lent to us here has no package registry,
and TensorFlow with its CUDA 12 libraries is over 2 GB), this script measures the same network —
the same Keras layers, built by :func:`tomowidgets.network.build_model` — on the backends the machine
does have, which run the convolutions through cuDNN as TensorFlow would. It answers the #18
questions a GPU raises: how long training takes, how many voxels per second applying reaches on a
``256 x 1024 x 1024`` tomogram, and whether the GPU agrees with the CPU paths (allowed 1e-4 of the
output scale), each with TensorFloat-32 allowed (every backend's default for float32 convolutions
on NVIDIA GPUs since Ampere) and forbidden.

Two steps, because the reference comes from TensorFlow::

    python benchmarks/gpu_backends.py prepare REF.npz        # here, with TensorFlow: trains the
        # reference network (FFT-domain, default schedule) and keeps its weights, its training
        # arrays, two 1024 x 1024 slices and their outputs from Keras-on-TensorFlow and the FFT engine
    python benchmarks/gpu_backends.py measure REF.npz --out RESULTS.json   # on the GPU machine

``measure`` runs one child process per backend and precision (Keras fixes its backend at import)
and then the CPU FFT engine on the GPU machine's cores, and prints one table. It needs JAX and/or
PyTorch with CUDA, Keras 3, numpy, scipy, pandas, mrcfile and starfile (tomowidgets is imported
from the source tree: ``PYTHONPATH=.``), not TensorFlow. The figures in the README (2026-12-04,
H200) came from ``measure REF.npz --configs jax/tf32 jax/fp32 torch/tf32`` and, for
``torch/fp32``, an earlier run with 16 slices per call; results in ``benchmarks/results/gpu/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from apply_speed import direct_flops_per_voxel, make_slices  # noqa: E402  (sibling scripts)
from train_speed import paper_sized_set  # noqa: E402

from tomowidgets.network.netfile import LAYERS  # noqa: E402

CONFIGS = (("jax", "tf32"), ("jax", "fp32"), ("torch", "tf32"), ("torch", "fp32"))
ALLOWED = 1e-4


def prepare(path: Path) -> None:
    """Train the reference network with TensorFlow here and keep what the GPU run compares to."""
    from tomowidgets.engine import FFTEngine
    from tomowidgets.network import FeatureNet
    from tomowidgets.network._training import training_arrays

    ts = paper_sized_set()
    net = FeatureNet("synthetic", apix=10.0, seed=0)
    start = time.perf_counter()
    net.train(ts, progress=False)
    seconds = time.perf_counter() - start
    x, y = training_arrays(ts, seed=0, copies=None)  # the arrays train() used (same seed)
    slices = make_slices(2, 1024, seed=0)
    weights = net.weights()
    arrays = {f"{name}_{part}": weights[name][i] for name in LAYERS
              for i, part in enumerate(("kernel", "bias"))}
    np.savez(path, x=x.astype(np.float32), y=y.astype(np.float32), slices=slices,
             keras_tf_cpu=net.model.predict(slices[..., None], verbose=0)[..., 0],
             fft_engine=FFTEngine(weights).predict(slices),
             tf_cpu_train_seconds=seconds, tf_cpu_final_loss=net.history["loss"][-1], **arrays)
    print(f"wrote {path}: {len(x)} training tiles, TensorFlow CPU training {seconds:.1f} s")


def reference_weights(ref) -> dict[str, list[np.ndarray]]:  # noqa: ANN001 - an NpzFile
    """The reference network's weights, ``{layer: [kernel, bias]}``, as ``prepare`` saved them."""
    return {name: [ref[f"{name}_kernel"], ref[f"{name}_bias"]] for name in LAYERS}


def _set_precision(backend: str, precision: str) -> str:
    """Allow or forbid TensorFloat-32 in float32 convolutions; returns the device's name."""
    if backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest" if precision == "fp32" else "default")
        return str(jax.devices()[0].device_kind)
    import torch

    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def _build_model():  # noqa: ANN202 - a keras.Model on the child's backend
    from tomowidgets.network import _cnn

    # build_model imports TensorFlow first (thread cap, serialisation names); this child runs
    # Keras on another backend and saves nothing, so that step is skipped, not the layers.
    _cnn._tf = lambda: None
    return _cnn.build_model(seed=0)


def child(ref_path: Path, backend: str, precision: str, slices_n: int, size: int,
          batches: list[int], epochs: int) -> dict:
    """Train, check agreement and time applying on one backend and precision (in its own process)."""
    device = _set_precision(backend, precision)
    import keras

    ref = np.load(ref_path)
    model = _build_model()
    epoch_seconds: list[float] = []
    clock = {}
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: clock.update(start=time.perf_counter()),
        on_epoch_end=lambda epoch, logs: epoch_seconds.append(time.perf_counter() - clock["start"]))
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch: 0.01 * 0.9**epoch)
    start = time.perf_counter()
    history = model.fit(ref["x"], ref["y"], batch_size=20, epochs=epochs, shuffle=True, verbose=0,
                        callbacks=[schedule, timer])
    train_seconds = time.perf_counter() - start

    model.set_weights([w for pair in reference_weights(ref).values() for w in pair])
    out = model.predict(ref["slices"][..., None], batch_size=len(ref["slices"]), verbose=0)[..., 0]
    scale = float(np.abs(ref["keras_tf_cpu"]).max())
    agreement = {key: float(np.abs(out - ref[key]).max()) / scale for key in ("keras_tf_cpu", "fft_engine")}

    distinct = make_slices(min(32, slices_n), size, seed=1)[..., None]
    apply = {method: {b: _apply_seconds(model, method, distinct, slices_n, b) for b in batches}
             for method in ("predict", "predict_on_batch")}
    best = min(apply["predict_on_batch"].values())
    return {"backend": backend, "precision": precision, "device": device,
            "train_seconds": train_seconds, "median_epoch_seconds": float(np.median(epoch_seconds[1:])),
            "final_loss": float(history.history["loss"][-1]),
            "agreement": agreement, "apply_seconds": apply,
            "mvoxel_per_s": slices_n * size * size / best / 1e6,
            "tflop_per_s": slices_n * size * size * direct_flops_per_voxel() / best / 1e12}


def _apply_seconds(model, method: str, distinct: np.ndarray, n: int, batch: int) -> float:  # noqa: ANN001
    """Seconds to run `n` slices in calls of `batch` slices (cycling through `distinct`: the
    content does not change the time)."""
    x = distinct[np.arange(batch) % len(distinct)]

    def call() -> None:
        if method == "predict":
            model.predict(x, batch_size=batch, verbose=0)
        else:
            np.asarray(model.predict_on_batch(x))   # waits for the device, as apply does

    call()  # compile for this batch shape
    start = time.perf_counter()
    for _ in range(0, n, batch):
        call()
    return time.perf_counter() - start


def cpu_engine(ref_path: Path, n: int, size: int) -> dict:
    """The FFT engine on this machine's CPU cores, for the same network."""
    from tomowidgets.engine import FFTEngine

    engine = FFTEngine(reference_weights(np.load(ref_path)))
    slices = make_slices(n, size, seed=1)
    engine.predict(slices[:1])
    start = time.perf_counter()
    engine.predict(slices)
    seconds = time.perf_counter() - start
    return {"cores": os.cpu_count(), "slices": n, "seconds": seconds,
            "mvoxel_per_s": slices.size / seconds / 1e6}


def measure(ref_path: Path, out: Path | None, args: argparse.Namespace) -> None:
    results = []
    for backend, precision in (c.split("/") for c in args.configs):
        env = dict(os.environ, KERAS_BACKEND=backend)
        cmd = [sys.executable, __file__, "child", str(ref_path), backend, precision,
               "--slices", str(args.slices), "--size", str(args.size),
               "--batches", *map(str, args.batches), "--epochs", str(args.epochs)]
        run = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if run.returncode:
            print(f"{backend}/{precision} failed:\n{run.stderr[-3000:]}")
            results.append({"backend": backend, "precision": precision, "error": run.stderr[-3000:]})
            continue
        results.append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    cpu = cpu_engine(ref_path, args.cpu_slices, args.size)
    ref = np.load(ref_path)
    report = {"configs": results, "cpu_fft_engine": cpu,
              "tf_cpu_train_seconds_here": float(ref["tf_cpu_train_seconds"]),
              "tf_cpu_final_loss": float(ref["tf_cpu_final_loss"]),
              "tomogram": [args.slices, args.size, args.size], "batches": args.batches,
              "epochs": args.epochs}
    if out is not None:
        out.write_text(json.dumps(report, indent=1) + "\n")
    print_table(report)


def print_table(report: dict) -> None:
    z, y, x = report["tomogram"]
    print(f"\nTomogram {z} x {y} x {x}; apply in Mvoxel/s per call method and slices per call; "
          f"agreement = max |GPU - CPU| / output scale (allowed {ALLOWED:g})")
    calls = [(m, b) for m in ("predict", "predict_on_batch") for b in report["batches"]]
    head = " | ".join(f"{'on_batch' if m != 'predict' else m} {b}" for m, b in calls)
    print(f"| backend | precision | device | train {report['epochs']} epochs (s) | epoch (s) | "
          f"final loss | {head} | best TFLOP/s | vs Keras-TF CPU | vs FFT engine |")
    print("|---" * (9 + len(calls)) + "|")
    for r in report["configs"]:
        if "error" in r:
            print(f"| {r['backend']} | {r['precision']} | failed |" + " |" * (6 + len(calls)))
            continue
        done = r.get("apply_slices", {})   # slices timed, where a call size ran fewer than z
        mvoxels = [done.get(str(b), z) * y * x / r["apply_seconds"][m][str(b)] / 1e6 for m, b in calls]
        rates = " | ".join(f"{rate:.0f}" for rate in mvoxels)
        tflops = max(mvoxels) * 1e6 * direct_flops_per_voxel() / 1e12
        a = r["agreement"]
        print(f"| {r['backend']} | {r['precision']} | {r['device']} | {r['train_seconds']:.1f} | "
              f"{r['median_epoch_seconds']:.3f} | {r['final_loss']:.3f} | {rates} | "
              f"{tflops:.1f} | {a['keras_tf_cpu']:.1e} | {a['fft_engine']:.1e} |")
    cpu = report["cpu_fft_engine"]
    print(f"\nCPU FFT engine on this machine's {cpu['cores']} cores: {cpu['mvoxel_per_s']:.1f} Mvoxel/s; "
          f"TensorFlow CPU training (FFT-domain) on the machine that prepared the reference: "
          f"{report['tf_cpu_train_seconds_here']:.1f} s, final loss {report['tf_cpu_final_loss']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("prepare", "measure", "child"))
    parser.add_argument("ref", type=Path, help="the reference .npz (written by prepare)")
    parser.add_argument("backend", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("precision", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="write the results as JSON here (measure)")
    parser.add_argument("--slices", type=int, default=256, help="tomogram depth (default 256)")
    parser.add_argument("--size", type=int, default=1024, help="slice edge (default 1024)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64],
                        help="slices per predict call, each timed (default 1 4 16 64)")
    parser.add_argument("--configs", nargs="+", default=[f"{b}/{p}" for b, p in CONFIGS],
                        help="backend/precision pairs (default: jax and torch, tf32 and fp32)")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--cpu-slices", type=int, default=8,
                        help="slices through the CPU FFT engine (default 8)")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        prepare(args.ref)
    elif args.step == "measure":
        measure(args.ref, args.out, args)
    else:
        result = child(args.ref, args.backend, args.precision, args.slices, args.size, args.batches,
                       args.epochs)
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
