"""Per-slab work of :func:`tomowidgets.apply.apply`, locally and on Dask workers (private).

:func:`scores` is the one computation of calibrated scores, used by both paths, so a Dask run gives
what a local run gives. :func:`remote_slab` is the pure task a worker runs: it reads its slab from
the tomogram's MRC file itself (or gets in-memory data scattered to it), runs every network on it and
returns the scores. :func:`run_dask` keeps a bounded number of these tasks in flight and hands each
result to the caller's outputs as it arrives.
"""

from __future__ import annotations

import ctypes
import functools
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import CancelledError
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tomowidgets._validate import check_finite
from tomowidgets.apply._output import file_identity
from tomowidgets.engine import FFTEngine, unbin
from tomowidgets.io import read_tomogram

#: Largest finite float16 value: float16 scores are clipped to it rather than becoming inf.
FLOAT16_MAX = float(np.finfo(np.float16).max)
#: Tasks in flight per Dask worker thread (one running, one queued).
_IN_FLIGHT_PER_THREAD = 2
#: How long apply waits for a first Dask worker to connect before it gives up.
WAIT_FOR_WORKERS_SECONDS = 120.0
_RESUME = "the finished slices are kept: run the same command again to resume"
#: glibc ``mallopt`` parameters, and what :func:`keep_freed_memory` sets them to.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES, _TRIM_THRESHOLD_BYTES = 32 * 2**20, 64 * 2**20


class Engine(Protocol):
    """What a slab needs of an engine: :class:`~tomowidgets.engine.FFTEngine`, or on a GPU
    ``tomowidgets.network._keras_engine.KerasEngine``, or either one :class:`Turned`."""

    context: int

    def predict(self, slices: np.ndarray) -> np.ndarray: ...


class Turned:
    """Test-time augmentation: `engine`'s output averaged over the slices turned about z by 0,
    90, 180 and 270 degrees (the first `turns` of them), each output turned back.

    The network is 2D (or reads neighbouring slices), so a turn about z shows it the same
    structures in another orientation; averaging smooths out what it learned of one orientation
    only. Costs `turns` evaluations. Pickles as its engine and `turns` (for Dask workers).
    """

    def __init__(self, engine: Engine, turns: int) -> None:
        self.engine, self.turns = engine, turns
        self.context = engine.context

    def __repr__(self) -> str:
        return f"Turned({self.engine!r}, turns={self.turns})"

    def predict(self, slices: np.ndarray) -> np.ndarray:
        """Half-resolution output, as the engine's, averaged over the turns.

        Turning a slice of even size maps the 2 × 2 pooling blocks onto 2 × 2 blocks, so the
        turned-back outputs line up exactly; for an odd size each turn's output is unbinned,
        turned back at full resolution and sampled again at the first pixel of each block.
        """
        total = self._turned_back(slices, 0)
        for k in range(1, self.turns):
            total += self._turned_back(slices, k)
        return total / np.float32(self.turns)

    def _turned_back(self, slices: np.ndarray, k: int) -> np.ndarray:
        """The engine's output for `slices` turned by ``k * 90`` degrees, turned back."""
        ny, nx = slices.shape[-2:]
        out = self.engine.predict(np.ascontiguousarray(np.rot90(slices, k, axes=(-2, -1))))
        if ny % 2 == nx % 2 == 0:   # views of the engine's fresh output: no copies needed
            return np.rot90(out, -k, axes=(-2, -1))
        full = np.rot90(unbin(out, (nx, ny) if k % 2 else (ny, nx)), -k, axes=(-2, -1))
        return full[..., : ny - ny % 2 : 2, : nx - nx % 2 : 2]


def turned(engine: Engine, turns: int) -> Engine:
    """`engine`, or with ``turns > 1`` a :class:`Turned` one."""
    return Turned(engine, turns) if turns > 1 else engine


def context(engines: Sequence[Engine]) -> int:
    """Slices above and below a slab that the most demanding of `engines` reads (0: all 2D)."""
    return max((engine.context for engine in engines), default=0)


def scores(engine: Engine, amplitude: float, data: np.ndarray, dtype: Any,
           extra: int = 0) -> np.ndarray:
    """Calibrated scores of slices ``data`` (n + 2 extra, y, x): unbinned output / amplitude.

    The first and last `extra` slices of `data` are context only (``Tomogram.slab(z0, z1,
    context=extra)``); the engine reads as many of them as its network needs.
    """
    skip = extra - engine.context
    full = unbin(engine.predict(data[skip:len(data) - skip]), data.shape[-2:])
    full /= np.float32(amplitude)
    if np.dtype(dtype) == np.float16:
        np.clip(full, -FLOAT16_MAX, FLOAT16_MAX, out=full)
        return full.astype(np.float16)
    return full


def check_slab(data: np.ndarray, z0: int, z1: int, where: str) -> None:
    """Refuse NaN/inf voxels, naming the slices and the file (`where`) that hold them."""
    check_finite(data, "voxels", where=f"slices {z0}-{z1 - 1} of {where}")


@functools.cache
def keep_freed_memory() -> bool:
    """Let this process's ``malloc`` keep freed blocks for reuse (glibc only; once per process).

    Dask's nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536``, so that memory a task
    frees goes back to the operating system at once. Setting it also freezes glibc's mmap
    threshold at 128 KiB: every numpy temporary larger than that becomes a fresh ``mmap`` whose
    pages fault in again on first use, and the engine ran at half speed in a worker
    (``benchmarks/dask_speed.py``). Blocks up to 32 MiB now come from the heap again, and up to
    64 MiB of free heap is kept; the engine's working memory is bounded (~0.4 GB) anyway.

    Returns
    -------
    bool
        Whether the settings were applied (False where the C library has no ``mallopt``).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):   # no mallopt: not glibc (macOS, Windows)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
                and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))


def remote_slab(source: Any, z0: int, z1: int, names: Sequence[str],
                engines: Sequence[FFTEngine], amplitudes: Sequence[float],
                dtype: str) -> dict[str, np.ndarray]:
    """A Dask task: scores of slices ``z0:z1`` for every named network.

    Parameters
    ----------
    source : tuple or ndarray
        ``("mrc", path, file_identity)`` to read the slices from the file (checked to be the one
        the client saw), or the slices themselves, ``Tomogram.slab(z0, z1, context=k)`` for the
        largest context k of `engines`.
    z0, z1 : int
        First and past-the-end slice.
    names, engines, amplitudes : sequences
        The networks, in one order.
    dtype : str
        'float32' or 'float16'.

    Returns
    -------
    dict of str to ndarray of shape (z1 - z0, y, x)
        Scores per network name.

    Raises
    ------
    ValueError
        If the worker sees another file than the client did (no shared file system, or the file
        changed), or the slices hold NaN/inf.
    """
    keep_freed_memory()
    extra = context(engines)
    if isinstance(source, tuple):
        _, path, identity = source
        if file_identity(Path(path)) != identity:
            raise ValueError(f"the Dask worker sees another '{path}' than the client (size or "
                             "modification times differ); workers must share the file system and "
                             "the tomogram must not change during apply")
        data = read_tomogram(path, mmap=True, apix=1.0, check_values=False).slab(z0, z1, extra)
        check_slab(data, z0, z1, f"'{path}'")
    else:
        data = np.asarray(source, dtype=np.float32)
        check_slab(data, z0, z1, "the tomogram")
    return {name: scores(engine, amplitude, data, dtype, extra)
            for name, engine, amplitude in zip(names, engines, amplitudes, strict=True)}


class WorkersLostError(CancelledError):
    """The Dask workers (or the scheduler) went away before every slab was computed.

    The slabs already written are kept; running the same call again resumes from them.
    """


def run_dask(client: Any, jobs: Sequence[Any], tasks: Sequence[tuple[int, int, int, tuple[str, ...]]],
             engines: Mapping[str, FFTEngine], amplitudes: Mapping[str, float], dtype: np.dtype,
             update: Callable[[int], Any]) -> None:
    """Run `tasks` on the client's workers, writing each result into its job's outputs.

    Raises whatever a task raised (the first one to be collected), or :class:`WorkersLostError`
    when no worker connects within :data:`WAIT_FOR_WORKERS_SECONDS`, a slab killed its workers, or the
    scheduler cancelled the tasks (every worker, and the networks with them, lost; or the
    scheduler itself); pending tasks are cancelled and slabs already written stay written (they
    are kept for a resume).
    """
    from distributed import as_completed

    try:
        client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_SECONDS)
    except TimeoutError:
        raise WorkersLostError(f"the Dask scheduler has had no worker for "
                               f"{WAIT_FOR_WORKERS_SECONDS:.0f} s; start workers (`dask worker "
                               "SCHEDULER_ADDRESS`), then run again") from None
    # every worker holds the networks: losing one loses no network (and no task waits to fetch one)
    remote = {name: client.scatter(engine, hash=False, broadcast=True)
              for name, engine in engines.items()}
    limit = max(2, _IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
    pending = deque(tasks)
    running: dict[Any, tuple[int, int, int, tuple[str, ...]]] = {}
    finished = as_completed()

    def submit() -> None:
        task = pending.popleft()
        index, z0, z1, names = task
        job = jobs[index]
        if job.file is not None:
            source: Any = ("mrc", str(job.file), file_identity(job.file))
        else:
            extra = context([engines[n] for n in names])
            source = client.scatter(job.tomo.slab(z0, z1, extra), hash=False)
        future = client.submit(remote_slab, source, z0, z1, names, [remote[n] for n in names],
                               [amplitudes[n] for n in names], dtype.name, pure=False)
        running[future] = task
        finished.add(future)

    try:
        while pending and len(running) < limit:
            submit()
        for future in finished:
            index, z0, z1, names = running.pop(future)
            result = _result(future, z0, z1)
            future.release()
            for name in names:
                jobs[index].outputs[name].write(z0, z1, result[name])
            update(z1 - z0)
            if pending:
                submit()
    finally:
        if running:
            with suppress(OSError):      # a lost scheduler cannot cancel anything
                client.cancel(list(running))
        for future in remote.values():
            future.release()


def _result(future: Any, z0: int, z1: int) -> dict[str, np.ndarray]:
    """A task's scores, with lost workers and cancelled tasks turned into WorkersLostError."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker:
        raise WorkersLostError(f"slices {z0}-{z1 - 1} killed every Dask worker that computed them "
                               "(most often out of memory: give workers more memory or pass a "
                               f"smaller slab); {_RESUME}") from None
    except CancelledError:
        raise WorkersLostError(f"the Dask scheduler cancelled slices {z0}-{z1 - 1}: every worker "
                               "holding the networks was lost, or the connection to the "
                               f"scheduler; {_RESUME}") from None
