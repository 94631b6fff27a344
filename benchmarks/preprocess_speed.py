"""Benchmark: preprocess a memory-mapped 1024×1024×256 tomogram into an MRC file.

Writes a float32 tomogram (Gaussian noise plus an "ice gradient" ramp) to a temporary MRC file, then
runs ``preprocess(read_tomogram(path, mmap=True), out=...)`` in a fresh subprocess and reports that
process's peak resident set size, ``VmHWM`` from ``/proc/self/status`` (file-backed pages of the
memory maps included). ``ru_maxrss`` is not used: on Linux it carries over the parent's high-water
mark through vfork+exec, i.e. the ~1 GiB the parent touched writing the test file. Prints wall time,
peak memory and the targets.

Usage::

    .venv/bin/python benchmarks/preprocess_speed.py [--shape 256 1024 1024] [--slab-mb 128]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mrcfile
import numpy as np

TARGET_S = 30.0
TARGET_GIB = 3.0

WORKER = r"""
import json, sys, time
t0 = time.perf_counter()
from tomowidgets.preprocess import preprocess
from tomowidgets.io import read_tomogram
t1 = time.perf_counter()
src, dst, apix, slab_mb = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
tomo = read_tomogram(src, mmap=True, check_values=False)
out = preprocess(tomo, 20.0, 4000.0, 3.0, out=dst, progress=False, slab_mb=slab_mb)
t2 = time.perf_counter()
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({
    "import_s": t1 - t0, "preprocess_s": t2 - t1,
    "hwm_kib": int(status["VmHWM"].split()[0]), "shape": list(out.shape), "apix": out.apix,
}))
"""


def make_tomogram(path: Path, shape: tuple[int, int, int], apix: float, seed: int = 0) -> None:
    """Noise (sd 1) plus a ramp along x (0 → 5 sd) and an offset, written slab by slab."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    ramp = np.linspace(0.0, 5.0, nx, dtype=np.float32)
    with mrcfile.new_mmap(path, shape=shape, mrc_mode=2, overwrite=True) as mrc:
        for z0 in range(0, nz, 16):
            z1 = min(z0 + 16, nz)
            mrc.data[z0:z1] = rng.standard_normal((z1 - z0, ny, nx), dtype=np.float32) + ramp + 10
        mrc.voxel_size = apix


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns 0 when both targets are met."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[256, 1024, 1024], metavar=("Z", "Y", "X"))
    ap.add_argument("--apix", type=float, default=8.0)
    ap.add_argument("--slab-mb", type=float, default=128.0)
    args = ap.parse_args(argv)
    shape = tuple(args.shape)
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="tw-bench-") as tmp:
        src, dst = Path(tmp) / "raw.mrc", Path(tmp) / "pre.mrc"
        t0 = time.perf_counter()
        make_tomogram(src, shape, args.apix)
        print(f"wrote {src.stat().st_size / 2**30:.2f} GiB test tomogram in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", WORKER, str(src), str(dst), str(args.apix), str(args.slab_mb)],
            capture_output=True, text=True, cwd=repo,
            env={**os.environ, "PYTHONPATH": str(repo)},
        )
        wall = time.perf_counter() - t0
        if proc.returncode:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        with mrcfile.mmap(dst, mode="r") as mrc:
            ok_file = mrc.data.shape == shape and abs(float(mrc.voxel_size.x) - args.apix) < 1e-3
    peak_gib = r["hwm_kib"] / 2**20
    gib = np.prod(shape) * 4 / 2**30
    print(f"\npreprocess {shape[0]}×{shape[1]}×{shape[2]} float32 ({gib:.2f} GiB), memory-mapped "
          f"in and out=MRC, lowpass 20 Å, highpass 4000 Å, clamp 3, apix {args.apix:g} Å, "
          f"slab {args.slab_mb:g} MiB, {os.cpu_count()} cores")
    print(f"{'measure':<34}{'value':>12}{'target':>12}{'ok':>6}")
    rows = [
        ("wall time, preprocess() (s)", r["preprocess_s"], TARGET_S),
        ("wall time, whole subprocess (s)", wall, None),
        ("peak RSS, VmHWM (GiB)", peak_gib, TARGET_GIB),
    ]
    for name, value, target in rows:
        t = "" if target is None else f"≤ {target:g}"
        ok = "" if target is None else ("yes" if value <= target else "NO")
        print(f"{name:<34}{value:>12.2f}{t:>12}{ok:>6}")
    print(f"{'output shape and voxel size':<34}{'correct' if ok_file else 'WRONG':>12}")
    return 0 if (r["preprocess_s"] <= TARGET_S and peak_gib <= TARGET_GIB and ok_file) else 1


if __name__ == "__main__":
    sys.exit(main())
