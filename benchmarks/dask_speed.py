"""Applying networks locally vs on a Dask ``LocalCluster`` with the same cores.

Writes a 64 x 512 x 512 tomogram (smoothed noise, 10 Å/voxel) and applies one network with random
Glorot weights (the paper's layout; no TensorFlow anywhere) through
:func:`tomowidgets.apply.apply`: locally (the engine's threads on all cores), then with a client of
a ``LocalCluster`` of 1, 2 and 4 single-threaded worker processes on the same machine. Every run
writes an MRC file, as the command line does. Prints a table of medians: wall time, Mvoxel/s,
the ratio to the local path, and the overhead per slab task, ``(Dask - ideal) / tasks`` where
the ideal is the local time scaled to the cores the workers can use. Also checks that each Dask
run gives the local result exactly.

Usage::

    python benchmarks/dask_speed.py                  # 64 x 512 x 512, 3 runs each
    python benchmarks/dask_speed.py --shape 16 256 256 --repeats 1 --workers 1 2   # quicker

Target (#18): a ``LocalCluster`` on the same cores within 1.3x of the local path. On a real
cluster, start ``dask scheduler`` and ``dask worker tcp://SCHEDULER:8786 --nthreads 1`` per
core on machines that see the tomogram's file system (workers need tomowidgets and numpy/scipy,
not TensorFlow), then ``tomowidgets apply NET.keras TOMO.mrc --scheduler tcp://SCHEDULER:8786``.
Timings on a shared machine are noisy: run it alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from apply_speed import random_weights  # noqa: E402  (a sibling script, not a package)

APIX = 10.0
TARGET_RATIO = 1.3


@dataclass
class RandomNet:
    """What apply needs of a FeatureNet: feature, apix, amplitude, preprocessing and weights()."""

    feature: str = "membrane"
    apix: float = APIX
    amplitude: float = 0.5
    preprocessing: Any = None
    context: int = 0

    def weights(self) -> dict[str, list[np.ndarray]]:
        return random_weights(0)


def write_tomogram(path: Path, shape: tuple[int, int, int]) -> None:
    """Smoothed unit-variance noise, the look of a preprocessed tomogram."""
    from scipy import ndimage

    from tomowidgets.io import Tomogram, write_tomogram

    rng = np.random.default_rng(0)
    data = ndimage.gaussian_filter(rng.standard_normal(shape, np.float32), (0, 1.5, 1.5))
    data = (data - data.mean()) / data.std()
    write_tomogram(path, Tomogram(np.clip(data, -3, 3), APIX))


def timed_apply(tomo: Path, out: Path, repeats: int, client: Any = None) -> tuple[float, np.ndarray]:
    """Median wall time of `repeats` apply runs into `out` (from scratch each time), and the scores."""
    from tomowidgets.apply import apply

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = apply(RandomNet(), tomo, out=out, client=client, resume=False, progress=False)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), np.asarray(result.data)


def tasks_for(shape: tuple[int, int, int], nthreads: int | None) -> int:
    from tomowidgets.apply._apply import _slab_size

    return -(-shape[0] // _slab_size(None, shape, 1, nthreads))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[64, 512, 512], metavar=("Z", "Y", "X"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4],
                        help="LocalCluster sizes (single-threaded worker processes)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each path (median)")
    args = parser.parse_args(argv)
    shape = tuple(args.shape)

    import distributed

    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tomo = Path(tmp) / "cell.mrc"
        write_tomogram(tomo, shape)
        timed_apply(tomo, Path(tmp) / "warm.mrc", 1)              # imports, page cache
        local, expected = timed_apply(tomo, Path(tmp) / "local.mrc", args.repeats)
        rows.append(("local (engine threads on all cores)", cores, tasks_for(shape, None), local,
                     True))
        for n in args.workers:
            with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                          dashboard_address=None, host="127.0.0.1") as cluster, \
                    distributed.Client(cluster) as client:
                seconds, result = timed_apply(tomo, Path(tmp) / f"dask{n}.mrc", args.repeats, client)
            rows.append((f"Dask LocalCluster, {n} worker{'s' * (n > 1)} x 1 thread", min(n, cores),
                         tasks_for(shape, n), seconds, bool(np.array_equal(result, expected))))

    voxels = float(np.prod(shape))
    print(f"apply: one network (40@15x15, random weights) on {shape[0]} x {shape[1]} x {shape[2]} "
          f"float32, MRC in and out; {cores} CPUs, load average {load_before:.1f} before and "
          f"{os.getloadavg()[0]:.1f} after; medians of {args.repeats} runs")
    header = (f"{'path':<38}{'tasks':>6}{'time (s)':>10}{'Mvoxel/s':>10}{'vs local':>10}"
              f"{'overhead/task (s)':>19}{'same result':>13}")
    print(header)
    print("-" * len(header))
    for name, usable, tasks, seconds, same in rows:
        ideal = local * cores / usable
        overhead = (seconds - ideal) / tasks if name.startswith("Dask") else 0.0
        print(f"{name:<38}{tasks:>6}{seconds:>10.2f}{voxels / seconds / 1e6:>10.2f}"
              f"{seconds / local:>9.2f}x{overhead:>19.3f}{'yes' if same else 'NO':>13}")
    best = min(seconds for name, _, _, seconds, _ in rows if name.startswith("Dask"))
    print(f"best Dask run: {best / local:.2f}x the local time (target <= {TARGET_RATIO}x on the "
          "same cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
