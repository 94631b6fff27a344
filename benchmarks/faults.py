"""The fault matrix: what real users, real files and real machines do to tomowidgets, and what is lost.

Each row provokes one fault against the command line, as a user meets it (a second run, ``kill -9``,
a full or read-only disk, a file from another program, a damaged download, lost Dask workers) and
records what the command said and what data was lost. "Data lost" compares what is on disk with
what should be there: a previous output, finished slices, a run's result. It must be "none" in
every row. Full and read-only disks are real (a 4 MiB tmpfs) when this runs as root and may mount,
and otherwise simulated by patching ``os.posix_fallocate`` / ``os.open`` (the row says which).

Usage::

    .venv/bin/python benchmarks/faults.py [--out benchmarks/results/faults.md]

Takes about a minute on 2 cores (one TensorFlow import to write a network file; every command runs
in its own process, as from a shell).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import mrcfile
import numpy as np

APIX = 10.0
SMALL = (12, 64, 64)        # the quick tomogram
LARGE = (48, 384, 384)      # one that takes seconds, so a run can be killed half-way
FAULTS: list[tuple[str, Callable[[Path, dict], tuple[str, str]]]] = []


def fault(name: str) -> Callable:
    """Register a row: ``f(work_dir, inputs) -> (outcome, data lost)``."""
    def register(f: Callable) -> Callable:
        FAULTS.append((name, f))
        return f
    return register


# -- running the command line -----------------------------------------------------------------------


def tomowidgets(*args: str | Path, prelude: str = "",
                wait: bool = True) -> tuple[int, str] | subprocess.Popen:
    """Run ``tomowidgets ARGS`` in a new process (after `prelude`, Python that patches the system);
    return its exit status and the last line it wrote to stderr, or the process if not `wait`."""
    code = f"import sys\n{prelude}\nfrom tomowidgets.cli import main\nsys.exit(main(sys.argv[1:]))"
    command = [sys.executable, "-c", code, *map(str, args)]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    lines = [line for line in result.stderr.splitlines() if line.strip() and "%|" not in line]
    return result.returncode, lines[-1] if lines else ""


#: The scratch folder, left out of the messages shown.
SCRATCH = [""]


def said(rc: int, line: str) -> str:
    """The outcome as a user sees it: exit status, and the message shortened."""
    message = line.removeprefix("tomowidgets ").split(": ", 1)[-1].replace(SCRATCH[0], "")
    if "Traceback" in line or (rc and not line):
        message = "TRACEBACK (no clear message)"
    return f"exit {rc}: {message[:170]}" if message else f"exit {rc}"


def voxels(path: Path) -> np.ndarray:
    with mrcfile.open(path, permissive=True) as mrc:
        return np.array(mrc.data)


def same(a: Path, b: Path) -> str:
    """'none' if two MRC files hold the same voxels, else how they differ."""
    if not a.exists():
        return f"{a.name} missing"
    x, y = voxels(a), voxels(b)
    return "none" if x.shape == y.shape and np.array_equal(x, y) else f"{a.name} differs"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix in (
        ".tmp", ".lock"))


# -- inputs -----------------------------------------------------------------------------------------


def make_inputs(root: Path) -> dict:
    """A small and a large tomogram (preprocessed-like noise), a network file and its reference
    outputs computed once."""
    rng = np.random.default_rng(0)
    inputs = {}
    for name, shape in (("small", SMALL), ("large", LARGE)):
        path = root / f"{name}.mrc"
        with mrcfile.new(path) as mrc:
            mrc.set_data(rng.standard_normal(shape, dtype=np.float32))
            mrc.voxel_size = APIX
        inputs[name] = path
    code = ("import sys; from tomowidgets.network import FeatureNet; "
            f"net = FeatureNet('membrane', apix={APIX}, seed=1); net.amplitude = 0.5; "
            "net.save(sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(root / "membrane.keras")], check=True,
                   capture_output=True)
    inputs["net"] = root / "membrane.keras"
    for name in ("small", "large"):
        rc, line = tomowidgets("apply", inputs["net"], inputs[name], "-o", root / "reference")
        assert rc == 0, line
        inputs[f"{name}_scores"] = root / "reference" / f"{name}.membrane.mrc"
    return inputs


def wait_for(condition: Callable[[], bool], timeout: float = 120.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return False


class Tmpfs:
    """A real small (or read-only) file system when we may mount one; None otherwise."""

    def __init__(self, where: Path, size: str = "4m", readonly: bool = False) -> None:
        self.where = where
        where.mkdir()
        options = f"size={size}" + (",ro" if readonly else "")
        self.ok = os.geteuid() == 0 and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True).returncode == 0

    def close(self) -> None:
        if self.ok:
            subprocess.run(["umount", str(self.where)], check=False)


# -- the rows ---------------------------------------------------------------------------------------


@fault("a second apply into an output another live run writes (--restart)")
def second_run(d: Path, inputs: dict) -> tuple[str, str]:
    out = d / "out"
    rc, line = tomowidgets("apply", inputs["net"], inputs["small"], "-o", out)
    first = subprocess.Popen(["sleep", "60"])
    try:
        (out / "small.membrane.mrc.lock").write_text(f"{first.pid}\n")
        rc, line = tomowidgets("apply", inputs["net"], inputs["small"], "-o", out, "--restart")
    finally:
        first.kill()
        first.wait()
    return said(rc, line), same(out / "small.membrane.mrc", inputs["small_scores"])


@fault("the lock of a run killed with kill -9")
def stale_lock(d: Path, inputs: dict) -> tuple[str, str]:
    out = d / "out"
    out.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (out / "small.membrane.mrc.lock").write_text(f"{dead.pid}\n")
    rc, line = tomowidgets("apply", inputs["net"], inputs["small"], "-o", out)
    return said(rc, line or "finished; stale lock taken over"), same(out / "small.membrane.mrc",
                                                                     inputs["small_scores"])


@fault("kill -9 during apply, then the same command")
def killed_apply(d: Path, inputs: dict) -> tuple[str, str]:
    out = d / "out"
    run = tomowidgets("apply", inputs["net"], inputs["large"], "-o", out, "--slab", "2", wait=False)
    sidecar = out / "large.membrane.mrc.partial.json"
    wait_for(lambda: sidecar.exists() and json.loads(sidecar.read_text() or "{}").get("done"))
    run.send_signal(signal.SIGKILL)
    run.wait()
    done = sum(z1 - z0 for z0, z1 in json.loads(sidecar.read_text())["done"])
    rc, line = tomowidgets("apply", inputs["net"], inputs["large"], "-o", out, "--slab", "2")
    return (said(rc, f"resumed after {done} of {LARGE[0]} slices"),
            same(out / "large.membrane.mrc", inputs["large_scores"]))


@fault("kill -9 during preprocess, then the same command")
def killed_preprocess(d: Path, inputs: dict) -> tuple[str, str]:
    run = tomowidgets("preprocess", inputs["large"], d / "pre.mrc", wait=False)
    wait_for(lambda: any(p.suffix == ".tmp" for p in d.iterdir()))
    run.send_signal(signal.SIGKILL)
    run.wait()
    orphans = leftovers(d)
    rc, line = tomowidgets("preprocess", inputs["large"], d / "pre.mrc")
    left = leftovers(d)
    return (said(rc, f"{len(orphans)} orphan temp(s) from the kill removed, {len(left)} left"),
            "none" if (d / "pre.mrc").exists() and not left else f"orphans {left}")


def _full_or_readonly(d: Path, inputs: dict, readonly: bool) -> tuple[str, str]:
    disk = Tmpfs(d / "disk", readonly=readonly)
    try:
        target = disk.where / "pre.mrc"
        prelude = ""
        if not disk.ok:   # simulate: the reservation fails, or opening for writing is refused
            if readonly:
                prelude = ("import os, errno\n_open = os.open\ndef ro(p, flags, *a, **k):\n"
                           "    if flags & (os.O_WRONLY | os.O_RDWR):\n"
                           "        raise OSError(errno.EROFS, os.strerror(errno.EROFS), p)\n"
                           "    return _open(p, flags, *a, **k)\nos.open = ro")
            else:
                prelude = ("import os, errno\ndef full(*a):\n"
                           "    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
                           "os.posix_fallocate = full")
            (disk.where / "pre.mrc").write_bytes(b"previous")
        elif not readonly:
            target.write_bytes(b"previous")
        before = target.read_bytes() if target.exists() else None
        rc, line = tomowidgets("preprocess", inputs["large"], target, prelude=prelude)
        after = target.read_bytes() if target.exists() else None
        how = "real tmpfs" if disk.ok else "simulated"
        kept = before == after and not leftovers(disk.where)
        lost = "none" if kept else "previous output changed or temp left"
        return f"{said(rc, line)} ({how})", lost
    finally:
        disk.close()


@fault("a full disk (preprocess of 28 MB onto 4 MB, a previous output there)")
def full_disk(d: Path, inputs: dict) -> tuple[str, str]:
    return _full_or_readonly(d, inputs, readonly=False)


@fault("a read-only file system")
def readonly_disk(d: Path, inputs: dict) -> tuple[str, str]:
    return _full_or_readonly(d, inputs, readonly=True)


@fault("IMOD unsigned bytes (mode 0, values 0-255)")
def unsigned_bytes(d: Path, inputs: dict) -> tuple[str, str]:
    path = d / "bytes.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.full((2, 3, 4), 200, np.uint8).view(np.int8))
        mrc.voxel_size = APIX
        words = np.frombuffer(bytes(mrc.header.extra2), dtype=mrc.header.dtype["nx"]).copy()
        words[10:12] = (1146047817, 0)       # IMOD's stamp, "signed" flag clear
        mrc.header.extra2 = words.tobytes()
    code = ("import sys, tomowidgets as tw; "
            "print(float(tw.read_tomogram(sys.argv[1]).data.max()))")
    value = float(subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                                 text=True, check=True).stdout)
    return f"read as {value:g}", "none" if value == 200 else f"read {value:g}, not 200"


def _header_fault(d: Path, inputs: dict, name: str, edit: Callable) -> tuple[str, str]:
    path = d / name
    shutil.copy(inputs["small"], path)
    with mrcfile.open(path, "r+") as mrc:
        edit(mrc)
    rc, line = tomowidgets("apply", inputs["net"], path, "-o", d / "out")
    return said(rc, line), "none" if rc and not (d / "out" / f"{path.stem}.membrane.mrc").exists() \
        else "a score map computed on a misread grid"


@fault("anisotropic voxel size in the header")
def anisotropic(d: Path, inputs: dict) -> tuple[str, str]:
    def edit(mrc):
        mrc.voxel_size = (APIX, APIX, 2 * APIX)
    return _header_fault(d, inputs, "aniso.mrc", edit)


@fault("axes stored in another order (mapc/mapr/maps)")
def permuted(d: Path, inputs: dict) -> tuple[str, str]:
    def edit(mrc):
        mrc.header.mapc, mrc.header.mapr = 2, 1
    return _header_fault(d, inputs, "yxz.mrc", edit)


@fault("NaN voxels in a tomogram")
def nan_voxels(d: Path, inputs: dict) -> tuple[str, str]:
    def edit(mrc):
        mrc.data[5, 3, 4] = np.nan
    return _header_fault(d, inputs, "holey.mrc", edit)


@fault("a truncated MRC download")
def truncated(d: Path, inputs: dict) -> tuple[str, str]:
    path = d / "cut.mrc"
    path.write_bytes(inputs["small"].read_bytes()[:100_000])
    rc, line = tomowidgets("info", path)
    return said(rc, line), "none"


@fault("a gzip-compressed tomogram (cell.mrc.gz)")
def gzipped(d: Path, inputs: dict) -> tuple[str, str]:
    path = d / "small.mrc.gz"
    with mrcfile.new(path, compression="gzip") as mrc:
        mrc.set_data(voxels(inputs["small"]))
        mrc.voxel_size = APIX
    rc, line = tomowidgets("apply", inputs["net"], path, "-o", d / "out")
    return said(rc, line or "applied"), same(d / "out" / "small.membrane.mrc", inputs["small_scores"])


@fault("a tomogram replaced in place, size and mtime kept (cp -p), then resume")
def replaced(d: Path, inputs: dict) -> tuple[str, str]:
    tomo, out = d / "small.mrc", d / "out"
    np.random.seed(3)
    with mrcfile.new(tomo) as mrc:
        mrc.set_data(np.random.standard_normal(SMALL).astype(np.float32))
        mrc.voxel_size = APIX
    run = tomowidgets("apply", inputs["net"], tomo, "-o", out, "--slab", "1", wait=False)
    sidecar = out / "small.membrane.mrc.partial.json"
    wait_for(lambda: sidecar.exists() and json.loads(sidecar.read_text() or "{}").get("done"))
    run.send_signal(signal.SIGKILL)
    run.wait()
    stat = tomo.stat()
    shutil.copyfile(inputs["small"], tomo)
    os.utime(tomo, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rc, line = tomowidgets("apply", inputs["net"], tomo, "-o", out, "--slab", "1")
    return said(rc, line), same(out / "small.membrane.mrc", inputs["small_scores"])


def _damaged_network(d: Path, inputs: dict, edit: Callable[[dict[str, bytes]], None]) -> tuple[str, str]:
    with zipfile.ZipFile(inputs["net"]) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    edit(members)
    bad = d / "bad.keras"
    with zipfile.ZipFile(bad, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    rc, line = tomowidgets("apply", bad, inputs["small"], "-o", d / "out")
    wrote = (d / "out").exists() and any((d / "out").iterdir())
    return said(rc, line), "none" if rc and not wrote else "an output from a damaged network"


@fault("a .keras file with a damaged member (bad CRC)")
def bad_crc(d: Path, inputs: dict) -> tuple[str, str]:
    with zipfile.ZipFile(inputs["net"]) as archive:
        name = max(archive.infolist(), key=lambda i: i.file_size).filename
    data = bytearray(inputs["net"].read_bytes())
    with zipfile.ZipFile(inputs["net"]) as archive:
        info = archive.getinfo(name)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    bad = d / "crc.keras"
    bad.write_bytes(bytes(data))
    rc, line = tomowidgets("apply", bad, inputs["small"], "-o", d / "out")
    return said(rc, line), "none" if rc else "an output from a damaged network"


@fault("a .keras file whose metadata says amplitude 0 and feature '../../evil'")
def bad_metadata(d: Path, inputs: dict) -> tuple[str, str]:
    def edit(members):
        name = "tomowidgets.json"
        meta = json.loads(members[name])
        meta.update(amplitude=0, feature="../../evil")
        members[name] = json.dumps(meta).encode()
    return _damaged_network(d, inputs, edit)


@fault("a zip-bomb training set (images unpack to 1 GB)")
def zip_bomb(d: Path, inputs: dict) -> tuple[str, str]:
    path = d / "bomb.tiles.npz"
    meta = json.dumps({"format": "tomowidgets.TrainingSet", "version": 1, "tile": 64, "feature": "x",
                       "apix": APIX, "preprocessing": None,
                       "tiles": [{"kind": "negative", "centre": [0, 32, 32], "source": None}]})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("metadata.npy", "w") as member:
            np.save(member, np.frombuffer(meta.encode(), np.uint8))
        with archive.open("masks.npy", "w") as member:
            np.save(member, np.zeros((1, 64, 64), bool))
        with archive.open("images.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (2**30 // (4 * 64 * 64), 64, 64)})
            zeros = bytes(2**24)
            for _ in range(2**30 // 2**24):
                member.write(zeros)
    code = ("import resource, sys\nfrom tomowidgets.cli import main\nrc = main(sys.argv[1:])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)\n"
            "sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, "info", str(path)], capture_output=True,
                            text=True)
    lines = result.stderr.strip().splitlines()
    peak = int(lines[-1])
    size = path.stat().st_size // 1024
    return f"{said(result.returncode, lines[-2])} (a {size} KB file; process peak {peak} MB)", "none"


@fault("a training set with positives only")
def positives_only(d: Path, inputs: dict) -> tuple[str, str]:
    code = ("import sys, numpy as np, tomowidgets as tw\n"
            "tomo = tw.read_tomogram(sys.argv[1])\n"
            "ts = tw.TrainingSet(64, feature='membrane')\n"
            "mask = np.zeros((64, 64), bool); mask[30:34] = True\n"
            "ts.add_positive(tomo, 5, 32, 32, mask)\nts.save(sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(inputs["small"]), str(d / "pos.tiles.npz")],
                   check=True, capture_output=True)
    rc, line = tomowidgets("train", d / "pos.tiles.npz", "-o", d / "pos.keras", "--epochs", "1")
    return said(rc, line), "none"


@fault("every Dask worker lost mid-apply, then the same command without Dask")
def dask_lost(d: Path, inputs: dict) -> tuple[str, str]:
    out = d / "out"
    prelude = (
        "import distributed, time\n"
        "from tomowidgets.apply._output import FileOutput\n"
        "cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, "
        "dashboard_address=':0')\n"
        "client = distributed.Client(cluster)\n"
        "write = FileOutput.write\n"
        "def write_then_lose(self, z0, z1, s):\n"
        "    write(self, z0, z1, s)\n"
        "    cluster.scale(0)\n"
        "    while client.nthreads(): time.sleep(0.05)\n"
        "FileOutput.write = write_then_lose\n"
        "sys.argv += ['--scheduler', cluster.scheduler_address]\n")
    rc, line = tomowidgets("apply", inputs["net"], inputs["small"], "-o", out, "--slab", "2",
                           prelude=prelude)
    kept = (out / "small.membrane.mrc.partial").exists()
    rc2, _ = tomowidgets("apply", inputs["net"], inputs["small"], "-o", out, "--slab", "2")
    lost = same(out / "small.membrane.mrc", inputs["small_scores"]) if kept and rc2 == 0 \
        else "the finished slices"
    return said(rc, line), lost


@fault("an empty particle file given to average")
def empty_particles(d: Path, inputs: dict) -> tuple[str, str]:
    (d / "none.csv").write_text("")
    rc, line = tomowidgets("average", inputs["small"], d / "none.csv", "-o", d / "avg.mrc")
    return said(rc, line), "none"


# -- the table --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the table here (Markdown)")
    parser.add_argument("-k", default="", help="only rows whose name contains this")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        SCRATCH[0] = f"{root}/"
        t0 = time.perf_counter()
        inputs = make_inputs(root)
        print(f"inputs ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        for index, (name, run) in enumerate(FAULTS):
            if args.k not in name:
                continue
            work = root / f"fault{index}"
            work.mkdir()
            t0 = time.perf_counter()
            try:
                outcome, lost = run(work, inputs)
            except Exception as err:   # a row that breaks is a finding, not the end of the table
                outcome, lost = f"BENCHMARK ERROR {type(err).__name__}: {err}", "unknown"
            rows.append((name, outcome, lost, time.perf_counter() - t0))
            print(f"{name}: {outcome} | lost: {lost}", file=sys.stderr)
    table = ["| fault | outcome | data lost | s |", "|---|---|---|---|"]
    table += [f"| {name} | {outcome.replace('|', '/')} | {lost} | {seconds:.1f} |"
              for name, outcome, lost, seconds in rows]
    text = "\n".join(table)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    if any(lost != "none" for _, _, lost, _ in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
