"""Where :func:`tomowidgets.apply.apply` puts scores: in memory, or a resumable MRC file (private).

A file output is computed into ``<out>.partial``, an MRC of the final shape created up front and
memory-mapped, next to a JSON sidecar ``<out>.partial.json`` that records which slices are done and
a fingerprint of the inputs. After every slab the data are flushed, then the sidecar is replaced
atomically, so an interrupted run (KeyboardInterrupt, crash, killed job) leaves a consistent pair.
A rerun with the same fingerprint continues where it stopped; at the end the header statistics are
written, ``<out>.partial`` is renamed onto ``<out>`` (atomic: a reader never sees a partial file)
and the sidecar is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np

from tomowidgets.io import (
    WRITABLE_MODES,
    OutputLock,
    Tomogram,
    atomic_path,
    read_tomogram,
    release_pages,
    reserve_space,
    write_header,
)

#: Value of the sidecar's "format" key, and its version.
SIDECAR_FORMAT = "tomowidgets.apply.partial"
SIDECAR_VERSION = 1
#: Slices hashed at a time for an in-memory tomogram's fingerprint (bounded memory).
_HASH_SLAB = 16


def partial_paths(out: Path) -> tuple[Path, Path]:
    """``(<out>.partial, <out>.partial.json)``: the file being computed and its progress record."""
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")


def file_identity(file: Path) -> list[int]:
    """Size, modification and status-change times (ns) of a file: any write to it, or a file put
    in its place, changes the status-change time (ctime), which no tool can set back, unlike the
    mtime that ``cp -p`` or ``rsync -t`` copy over. (A chmod changes it too: that only restarts.)"""
    stat = file.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def tomogram_fingerprint(tomo: Tomogram, file: Path | None) -> dict[str, Any]:
    """What identifies the input voxels: the file's path and :func:`file_identity`, or a hash of
    the data.

    `file` is the MRC file the voxels are memory-mapped from (None for data in memory, which are
    then hashed slab by slab).
    """
    if file is not None:
        return {"path": str(file), "identity": file_identity(file), "shape": list(tomo.shape)}
    digest = hashlib.blake2b(digest_size=20)
    for start in range(0, tomo.shape[0], _HASH_SLAB):
        digest.update(np.ascontiguousarray(tomo.data[start:start + _HASH_SLAB]).tobytes())
    return {"sha": digest.hexdigest(), "dtype": str(tomo.data.dtype), "shape": list(tomo.shape)}


class MemoryOutput:
    """Scores kept in a float32 array in memory (no resume)."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.data = np.empty(shape, np.float32)
        self.todo = np.ones(shape[0], bool)

    def write(self, z0: int, z1: int, scores: np.ndarray) -> None:
        """Store slices ``z0:z1``."""
        self.data[z0:z1] = scores
        self.todo[z0:z1] = False

    def finish(self, tomo: Tomogram, labels: Sequence[str]) -> Tomogram:
        """The scores as a Tomogram with the input's voxel size and origin (`labels` unused)."""
        return Tomogram(self.data, tomo.apix, None, tomo.origin)

    def close(self) -> None:
        """Nothing to release."""


class FileOutput:
    """Scores streamed into ``<out>.partial`` with a progress sidecar; see the module docstring.

    Parameters
    ----------
    path : Path
        The final MRC file.
    shape : tuple of 3 ints
        ``(z, y, x)`` of the scores (the input tomogram's shape).
    dtype : numpy dtype
        float32 or float16 (MRC mode 2 or 12).
    fingerprint : dict
        JSON-able description of everything the values depend on (network, tomogram, settings).
    resume : bool
        Continue a matching partial file if there is one; False always starts again.

    Attributes
    ----------
    resumed : int
        Slices found done in a partial file from an earlier run (0 when starting afresh).
    restarted : str or None
        Why an existing partial file was not reused (other inputs, unreadable), for the caller to
        report; None if there was none or it was reused.
    """

    def __init__(self, path: Path, shape: tuple[int, int, int], dtype: np.dtype,
                 fingerprint: dict[str, Any], resume: bool) -> None:
        self.path = path
        self.partial, self.sidecar = partial_paths(path)
        self.fingerprint = json.loads(json.dumps(fingerprint))
        self.todo = np.ones(shape[0], bool)
        self.restarted: str | None = None
        self._mrc: Any = None
        self._lock = OutputLock(path)   # before touching the partial file another run may own
        try:
            # mrcfile is untyped; the MrcMemmap is None only after finish() or close(), past which
            # the other methods are not called (as before, they would then fail on None)
            self._mrc = self._reopen(shape, dtype) if resume else None
            if self._mrc is None:
                self.sidecar.unlink(missing_ok=True)
                self._mrc = mrcfile.new_mmap(self.partial, shape=shape,
                                             mrc_mode=WRITABLE_MODES[dtype], overwrite=True)
                try:
                    reserve_space(self.partial, name=path)
                except OSError:   # the disk cannot hold it: leave no full-size empty file behind
                    self._mrc.close()
                    self._mrc = None
                    self.partial.unlink(missing_ok=True)
                    raise
                self._save_sidecar()
        except BaseException:
            self.close()
            raise
        self.resumed = int(np.count_nonzero(~self.todo))

    @property
    def data(self) -> np.ndarray:
        """The memory-mapped voxels of the partial file."""
        return self._mrc.data

    def _reopen(self, shape: tuple[int, int, int], dtype: np.dtype) -> Any:
        """The partial file opened for update if it matches the fingerprint, else None."""
        if not self.partial.exists() and not self.sidecar.exists():
            return None
        reason = None
        try:
            record = json.loads(self.sidecar.read_text(encoding="utf-8"))
            if record.get("format") != SIDECAR_FORMAT or record.get("version") != SIDECAR_VERSION:
                reason = "its progress record is from another version"
            else:
                changed = [key for key in sorted(set(self.fingerprint) | set(record["fingerprint"]))
                           if self.fingerprint.get(key) != record["fingerprint"].get(key)]
                if changed:
                    reason = f"{' and '.join(changed)} changed since it was started"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            reason = f"its progress record '{self.sidecar.name}' is missing or unreadable ({err})"
        mrc = None
        if reason is None:
            try:
                mrc = mrcfile.mmap(self.partial, mode="r+")
                if mrc.data.shape != shape or mrc.data.dtype.newbyteorder("=") != dtype:
                    reason = (f"it has shape {mrc.data.shape} and dtype {mrc.data.dtype}, "
                              f"not {shape} and {dtype}")
                else:
                    todo = np.ones(shape[0], bool)
                    for z0, z1 in record["done"]:
                        todo[int(z0):int(z1)] = False
                    self.todo = todo
                    return mrc
            except (OSError, ValueError, TypeError) as err:
                reason = f"it cannot be read ({err})"
            if mrc is not None:
                mrc.close()
        self.restarted = reason
        return None

    def _save_sidecar(self) -> None:
        done, z = [], 0
        n = len(self.todo)
        while z < n:
            if self.todo[z]:
                z += 1
                continue
            z1 = z + 1
            while z1 < n and not self.todo[z1]:
                z1 += 1
            done.append([z, z1])
            z = z1
        record = {"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION,
                  "output": self.path.name, "fingerprint": self.fingerprint, "done": done}
        with atomic_path(self.sidecar) as tmp:
            tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")

    def write(self, z0: int, z1: int, scores: np.ndarray) -> None:
        """Store slices ``z0:z1``, flush them to disk, then record them as done."""
        self._mrc.data[z0:z1] = scores
        self._mrc.flush()
        release_pages(self._mrc.data)  # the pages stay in the file, not in this process's memory
        self.todo[z0:z1] = False
        self._save_sidecar()

    def finish(self, tomo: Tomogram, labels: Sequence[str]) -> Tomogram:
        """Header (voxel size, origin, statistics, labels), rename onto the output, drop sidecar."""
        write_header(self._mrc, apix=tomo.apix, origin=tomo.origin, labels=labels)
        self._mrc.close()
        self._mrc = None
        os.replace(self.partial, self.path)
        self.sidecar.unlink(missing_ok=True)
        return read_tomogram(self.path, mmap=True, check_values=False)

    def close(self) -> None:
        """Flush and close the partial file, keeping it and its sidecar for a rerun; unlock."""
        if self._mrc is not None:
            self._mrc.close()
            self._mrc = None
        self._lock.release()
