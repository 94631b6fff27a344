"""Tomograms in memory and in MRC files.

A :class:`Tomogram` is a ``(z, y, x)`` array plus its voxel size in Å. MRC headers store sizes as
``(x, y, z)``; this module is the only place that converts.
"""

from __future__ import annotations

import errno
import glob
import math
import mmap
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import mrcfile
import numpy as np

from tomowidgets._validate import (
    as_float32,
    as_path,
    check_finite,
    check_ndim,
    check_positive,
    same_voxel_size,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Moments", "Tomogram", "atomic_path", "is_mrc_name", "moments", "mrc_stem", "new_mrc",
           "read_tomogram", "release_pages", "write_header", "write_tomogram"]

#: MRC modes we read, and what they hold.
READABLE_MODES = {0: "int8", 1: "int16", 2: "float32", 6: "uint16", 12: "float16"}
#: Data types we write, with their MRC mode: float16 halves a tomogram or score map, and int8 holds
#: masks and label maps (values -128..127).
WRITABLE_MODES = {np.dtype(np.float32): 2, np.dtype(np.float16): 12, np.dtype(np.int8): 0}
#: File-name endings of MRC volumes, each also readable gzip- or bzip2-compressed (``cell.mrc.gz``).
MRC_SUFFIXES = (".mrc", ".rec", ".map")
COMPRESSED_SUFFIXES = (".gz", ".bz2")
#: Magic bytes that open gzip and bzip2 streams.
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh")
#: Slices checked at a time for NaN/inf in a memory-mapped file, so the check stays in bounded memory.
_CHECK_SLAB = 16


@dataclass(frozen=True, repr=False)
class Tomogram:
    """A tomogram: voxels ``(z, y, x)`` and their size in Å.

    Parameters
    ----------
    data : ndarray of shape (z, y, x)
        Voxel values; float32 in memory, or a read-only memory map of the file's own dtype.
    apix : float
        Voxel size in Å per voxel (the same along x, y and z).
    path : Path or None
        The file it was read from, if any.
    origin : tuple of 3 floats
        Position of voxel (0, 0, 0) in Å, ``(z, y, x)``, from the MRC header's origin.
    """

    data: np.ndarray
    apix: float
    path: Path | None = None
    origin: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))

    def __post_init__(self) -> None:
        check_ndim(self.data, (3,), "data")
        check_positive(self.apix, "apix")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Size in voxels, ``(z, y, x)``."""
        # cast, not an ignore: numpy's stubs type a shape tuple[int, ...] or tuple[Any, ...] by version
        return cast("tuple[int, int, int]", tuple(self.data.shape))

    @property
    def is_mmap(self) -> bool:
        """True when the voxels stay in the file and are read on demand."""
        return isinstance(self.data, np.memmap)

    def slab(self, start: int, stop: int, context: int = 0) -> np.ndarray:
        """Slices ``start:stop`` as a float32 array in memory (reads them if memory-mapped).

        With `context` = k > 0 the slab also holds the k slices before `start` and after `stop`
        (shape ``(stop - start + 2k, y, x)``), as a 2.5D network needs; beyond the tomogram's ends
        the first or last slice is repeated.
        """
        if not context:
            return as_float32(np.array(self.data[start:stop]))
        # fancy indexing reads (and copies) only these slices, even of a memory map
        return as_float32(np.asarray(self.data[context_indices(start, stop, context, self.shape[0])]))

    def with_data(self, data: np.ndarray, apix: float | None = None) -> Tomogram:
        """A new tomogram with other voxels and the same voxel size, origin and source path."""
        return Tomogram(data, self.apix if apix is None else apix, self.path, self.origin)

    def __repr__(self) -> str:
        z, y, x = self.shape
        size_nm = tuple(round(n * self.apix / 10) for n in (z, y, x))
        where = f", path='{self.path}'" if self.path else ""
        mm = ", memory-mapped" if self.is_mmap else ""
        return (
            f"Tomogram(shape=(z={z}, y={y}, x={x}), apix={self.apix:.3g} Å, "
            f"size={size_nm[0]}×{size_nm[1]}×{size_nm[2]} nm, dtype={self.data.dtype}{mm}{where})"
        )


def context_indices(start: int, stop: int, context: int, nz: int) -> np.ndarray:
    """Slice indices ``start - context .. stop + context - 1``, clipped to ``0 .. nz - 1``: what a
    2.5D network reads for slices ``start:stop`` (the end slices repeat beyond the tomogram)."""
    return np.clip(np.arange(start - context, stop + context), 0, nz - 1)


def read_tomogram(
    path: str | os.PathLike,
    mmap: bool = False,
    *,
    apix: float | None = None,
    check_values: bool = True,
) -> Tomogram:
    """Read an MRC file (modes 0, 1, 2, 6, 12; a 3D volume or a single 2D image).

    Mode-0 bytes are signed (MRC2014) unless the header carries IMOD's stamp without its "signed"
    flag: IMOD writes unsigned bytes (0-255), and they are read as such.

    Parameters
    ----------
    path : str or PathLike
        The ``.mrc``/``.rec``/``.map`` file.
    mmap : bool, default False
        Memory-map the voxels instead of loading them: they are read slice by slice when used, so
        tomograms larger than memory can be processed. The data then keep the file's dtype. A
        gzip- or bzip2-compressed file cannot be mapped and is read into memory.
    apix : float, optional
        Voxel size in Å to use instead of the header's (for files whose header is wrong).
    check_values : bool, default True
        Scan for NaN/inf voxels (slab by slab when memory-mapped).

    Returns
    -------
    Tomogram
        Data ``(z, y, x)``: float32 in memory, or the memory map; a 2D image becomes ``(1, y, x)``.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file is not MRC, is truncated, has an unsupported mode, holds a 4D stack or
        NaN/inf voxels. The message names the file.

    Warns
    -----
    RuntimeWarning
        If the header has no voxel size (0 Å); 1.0 Å is then assumed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No tomogram at '{path}'; check the path (cwd is '{Path.cwd()}')")
    if mmap and _is_compressed(path):
        mmap = False
    try:
        if mmap:
            mrc = mrcfile.mmap(path, mode="r")
        else:
            mrc = mrcfile.open(path, mode="r")
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"'{path}' is not a readable MRC file ({err})") from None
    with mrc:
        mode = int(mrc.header.mode)
        if mode not in READABLE_MODES:
            raise ValueError(
                f"'{path}' has MRC mode {mode}, which is not supported; "
                f"supported modes are {sorted(READABLE_MODES)} (convert with IMOD `newstack -mode 2`)"
            )
        data = mrc.data
        if data is None:
            raise ValueError(f"'{path}' holds no voxel data")
        if data.ndim == 4:
            raise ValueError(
                f"'{path}' holds a 4D volume stack of shape {data.shape}; "
                "split it into single volumes first"
            )
        if data.ndim == 2:
            data = data[np.newaxis]
        if mode == 0 and _imod_unsigned_bytes(mrc.header):
            data = data.view(np.uint8)
        _check_axis_order(mrc.header, path)
        size = mrc.voxel_size
        header_apix = float(size.x)
        if apix is None:
            _check_cubic_voxels((float(size.z), float(size.y), header_apix), data.shape, path)
        o = mrc.header.origin
        origin = (float(o.z), float(o.y), float(o.x))
        start = (int(mrc.header.nzstart), int(mrc.header.nystart), int(mrc.header.nxstart))
        if not mmap:
            data = as_float32(data).copy()
    if apix is None:
        if not np.isfinite(header_apix) or header_apix <= 0:
            warnings.warn(
                f"'{path}' has no voxel size in its header; assuming 1.0 Å/voxel. "
                "Pass apix=... or fix the header (IMOD: `alterheader -del`).",
                RuntimeWarning,
                stacklevel=2,
            )
            header_apix = 1.0
        apix = header_apix
    if not any(origin) and any(start):
        # No origin, but a start index (a subvolume cut by IMOD or CCP4 tools): place it as
        # UCSF Chimera does, at start · voxel size.
        origin = (start[0] * apix, start[1] * apix, start[2] * apix)
    if check_values and mode in (2, 12):
        for z0 in range(0, data.shape[0], _CHECK_SLAB):
            check_finite(data[z0 : z0 + _CHECK_SLAB], "voxels", where=f"'{path}'")
            release_pages(data)   # a memory map's scan must not keep the whole file resident
    return Tomogram(data, float(apix), path, origin)


def _is_compressed(path: Path) -> bool:
    """Whether the file is a gzip or bzip2 stream (by its first bytes, not its name)."""
    with open(path, "rb") as f:
        return f.read(3).startswith(_COMPRESSED_MAGIC)


def is_mrc_name(path: str | os.PathLike) -> bool:
    """Whether a file name is an MRC volume's: ``.mrc``, ``.rec`` or ``.map``, maybe then ``.gz``/``.bz2``."""
    return _mrc_ending(Path(path).name) is not None


def mrc_stem(path: str | os.PathLike) -> str:
    """A file's name without its MRC ending (``cell.mrc.gz`` -> ``cell``), else without its suffix."""
    name = Path(path).name
    ending = _mrc_ending(name) or Path(name).suffix
    return name[: len(name) - len(ending)]


def _mrc_ending(name: str) -> str | None:
    for packed in ("", *COMPRESSED_SUFFIXES):
        for suffix in MRC_SUFFIXES:
            ending = suffix + packed
            if name.lower().endswith(ending) and len(name) > len(ending):
                return name[-len(ending):]
    return None


def _check_axis_order(header: Any, path: Path) -> None:
    """Refuse files whose columns, rows and sections are not x, y and z (mapc/mapr/maps)."""
    order = (int(header.mapc), int(header.mapr), int(header.maps))
    if order != (1, 2, 3) and order != (0, 0, 0):      # 0: an old writer that left them unset
        raise ValueError(
            f"'{path}' stores its axes in the order (mapc, mapr, maps) = {order}, not x, y, z "
            "(1, 2, 3); reorder it first, e.g. with IMOD `clip rotx` or `trimvol -yz`, or "
            "CCP4 `mapmask axis X Y Z`")


def _check_cubic_voxels(sizes: tuple[float, float, float], shape: tuple[int, ...], path: Path) -> None:
    """Refuse voxel sizes (z, y, x) that differ by more than APIX_RTOL (unset ones, 0, are ignored;
    so is z for a single image)."""
    known = [a for axis, a in enumerate(sizes) if a > 0 and np.isfinite(a) and (axis or shape[0] > 1)]
    if any(not same_voxel_size(a, known[0]) for a in known):
        z, y, x = sizes
        raise ValueError(
            f"'{path}' has voxels of {x:g} × {y:g} × {z:g} Å (x × y × z), not cubic; tomowidgets "
            "filters and networks assume one voxel size: resample it to cubic voxels (e.g. IMOD "
            "`squeezevol`), or pass apix=... (CLI: --apix) if the header is wrong")


#: IMOD's stamp in header bytes 152-155 ("IMOD" read as an int32); with it, bit 0 of the flags in
#: bytes 156-159 says whether mode-0 bytes are signed. IMOD writes unsigned bytes by default, and
#: the MRC2014 standard (and mrcfile) reads mode 0 as signed.
_IMOD_STAMP = 1146047817


def _imod_unsigned_bytes(header: Any) -> bool:
    """True when an IMOD header marks its mode-0 bytes as unsigned (stamp set, signed flag clear)."""
    words = np.frombuffer(bytes(header.extra2), dtype=header.dtype["nx"])   # header byte order
    stamp, flags = int(words[10]), int(words[11])       # bytes 152 and 156 of the header
    return stamp == _IMOD_STAMP and not flags & 1


def write_tomogram(
    path: str | os.PathLike,
    tomo: Tomogram | ArrayLike,
    apix: float | None = None,
    *,
    dtype: Any = np.float32,
    labels: list[str] | None = None,
) -> Path:
    """Write a tomogram to an MRC file atomically (a temporary file, then a rename).

    Parameters
    ----------
    path : str or PathLike
        Destination; an existing file is replaced only once the new one is complete.
    tomo : Tomogram or array of shape (z, y, x) or (y, x)
        What to write. A memory-mapped tomogram is copied slab by slab.
    apix : float, optional
        Voxel size in Å; required for a bare array, overrides ``tomo.apix`` otherwise.
    dtype : {numpy.float32, numpy.float16, numpy.int8}, default float32
        Storage type (MRC mode 2, 12 or 0). int8 is for masks and label maps; values are rounded.
    labels : list of str, optional
        Up to 10 header labels of 80 characters (e.g. what produced the file).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        If the array is not 2D/3D, holds NaN/inf, `apix` is missing or not positive, `dtype` is
        not float32/float16/int8, or values do not fit in int8.
    """
    path = as_path(path, "write_tomogram(path, tomo)")
    if isinstance(tomo, Tomogram):
        apix = tomo.apix if apix is None else apix
        origin = tomo.origin
        data = tomo.data
    else:
        data = np.asarray(tomo)
        origin = (0.0, 0.0, 0.0)
        if apix is None:
            raise ValueError("`apix` (voxel size in Å) is required when writing a bare array")
        if data.ndim == 2:
            data = data[np.newaxis]
    check_ndim(data, (3,), "tomo")
    apix = check_positive(apix, "apix")
    dtype = np.dtype(dtype)
    if dtype not in WRITABLE_MODES:
        raise ValueError(f"`dtype` must be float32, float16 or int8, got {dtype}")
    with new_mrc(path, data.shape, dtype, apix=apix, origin=origin, labels=labels or ()) as out:
        for start in range(0, data.shape[0], _CHECK_SLAB):
            slab = as_float32(np.asarray(data[start : start + _CHECK_SLAB]), "tomo")
            check_finite(slab, "tomo")
            if dtype == np.int8:
                slab = np.rint(slab)
                if slab.size and (slab.min() < -128 or slab.max() > 127):
                    raise ValueError("values do not fit in int8 (-128..127); write float32")
            out.data[start : start + _CHECK_SLAB] = slab.astype(dtype, copy=False)
    return path


class NewMrc:
    """An MRC file being written by :func:`new_mrc`: fill :attr:`data`; set :attr:`moments` if known.

    Attributes
    ----------
    data : numpy.memmap of shape (z, y, x)
        The file's voxels, memory-mapped, in its storage dtype.
    moments : Moments or None
        Statistics of the voxels, when the writer measured them while writing; otherwise they are
        read back once the block ends.
    """

    def __init__(self, mrc: Any) -> None:
        self.data: np.ndarray = mrc.data
        self.moments: Moments | None = None


@contextmanager
def new_mrc(path: str | os.PathLike, shape: tuple[int, ...], dtype: Any = np.float32, *, apix: float,
            origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
            labels: Sequence[str] = ()) -> Iterator[NewMrc]:
    """Write a new MRC file atomically: fill ``.data`` in the block; the header is set when it ends.

    The file appears at `path` only when the block succeeds, with its voxel size, origin, statistics
    and labels set by :func:`write_header`; an exception leaves any previous file untouched.

    Parameters
    ----------
    path : str or PathLike
        Destination.
    shape : tuple of 3 ints
        ``(z, y, x)`` in voxels.
    dtype : {numpy.float32, numpy.float16, numpy.int8}, default float32
        Storage type (MRC mode 2, 12 or 0).
    apix : float
        Voxel size in Å.
    origin : tuple of 3 floats, default (0, 0, 0)
        Position of voxel (0, 0, 0) in Å, ``(z, y, x)``.
    labels : sequence of str
        Header labels (up to 10 of 80 characters).

    Examples
    --------
    >>> with new_mrc("ones.mrc", (2, 4, 4), apix=10.0) as out:   # doctest: +SKIP
    ...     out.data[:] = 1.0
    """
    with atomic_path(path) as tmp:
        with mrcfile.new_mmap(tmp, shape=tuple(shape), mrc_mode=WRITABLE_MODES[np.dtype(dtype)],
                              overwrite=True) as mrc:
            reserve_space(tmp, name=path)
            out = NewMrc(mrc)
            yield out
            write_header(mrc, apix=apix, origin=origin, labels=labels, stats=out.moments)


def reserve_space(file: str | os.PathLike, *, name: str | os.PathLike | None = None) -> None:
    """Allocate a (sparse) file's full size on the disk now.

    Files written through a memory map are created sparse: when the disk fills up while the map is
    written, the process dies of SIGBUS, with no message and a full-size file left behind. Reserving
    the blocks first turns that into an OSError (ENOSPC) here, before any work.

    Parameters
    ----------
    file : str or PathLike
        The file, already at its final size.
    name : str or PathLike, optional
        The file to name in the error (e.g. the output a temporary stands for); default `file`.

    Raises
    ------
    OSError
        ``errno.ENOSPC`` (or the quota's) when the disk cannot hold the file.
    """
    size = os.path.getsize(file)
    fd = os.open(file, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        if err.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return  # a file system without allocation: the old behaviour, nothing better to do
        raise OSError(err.errno, f"{err.strerror}: {size / 2**30:.2f} GiB are needed",
                      str(name if name is not None else file)) from None
    finally:
        os.close(fd)


def write_header(mrc: Any, *, apix: float, origin: tuple[float, float, float],
                 labels: Sequence[str] = (), stats: Moments | None = None) -> None:
    """Set the header fields tomowidgets owns on an open, writable mrcfile object.

    The one place that writes voxel size (Å, the same along x, y, z), origin (``(z, y, x)`` Å, stored
    as MRC's x, y, z), statistics (min, max, mean, rms) and labels (replacing any, up to 10 of 80
    characters). Without `stats` they are measured slab by slab with :func:`moments`.
    """
    if stats is None:
        stats = moments(mrc.data)
    header = mrc.header
    header.dmin, header.dmax, header.dmean, header.rms = stats.lo, stats.hi, stats.mean, stats.sd
    mrc.voxel_size = apix
    header.origin = (origin[2], origin[1], origin[0])
    header.nlabl = 0
    for label in list(labels)[:10]:
        mrc.add_label(label[:80])


class Moments:
    """Streaming count, mean and sum of squared deviations (Chan et al. pairwise update, float64).

    Add slabs of a volume one at a time with :meth:`add`; :attr:`mean`, :attr:`sd`, :attr:`lo`
    and :attr:`hi` describe everything added so far, in bounded memory.

    Examples
    --------
    >>> m = Moments(); m.add(np.array([1.0, 2.0], np.float32)); m.add(np.array([3.0], np.float32))
    >>> m.n, m.mean, round(m.sd, 6), m.lo, m.hi
    (3, 2.0, 0.816497, 1.0, 3.0)
    """

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.lo, self.hi = math.inf, -math.inf

    def add(self, a: np.ndarray) -> None:
        """Add the values of float32 array `a`."""
        n = a.size
        if n == 0:
            return
        mean = float(np.mean(a, dtype=np.float64))
        d = a - np.float32(mean)
        m2 = float(np.sum(np.square(d, out=d), dtype=np.float64))
        total = self.n + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.n * n / total
        self.mean += delta * n / total
        self.n = total
        self.lo, self.hi = min(self.lo, float(a.min())), max(self.hi, float(a.max()))

    @property
    def sd(self) -> float:
        """Standard deviation (population, ddof = 0)."""
        return math.sqrt(self.m2 / self.n) if self.n else 0.0


def moments(data: np.ndarray, slab: int = _CHECK_SLAB) -> Moments:
    """Statistics of a volume read `slab` z slices at a time (a memory map's pages are released)."""
    m = Moments()
    for start in range(0, data.shape[0], slab):
        m.add(as_float32(np.array(data[start : start + slab])))
        release_pages(data)
    return m


def release_pages(array: np.ndarray) -> None:
    """Drop a shared memory map's pages from this process's resident set; the data stay in the file.

    Without this every page touched stays counted in the process's memory until the map is closed.
    Only shared maps (numpy modes 'r', 'r+', 'w+') are released; copy-on-write maps never are.
    """
    mm = getattr(array, "_mmap", None)
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if (mm is None or advice is None or getattr(array, "mode", "c") == "c"
            or getattr(mm, "closed", True) or not hasattr(mm, "madvise")):
        return
    try:
        mm.madvise(advice)
    except (OSError, ValueError):  # pragma: no cover - platform without the advice
        pass


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Give a temporary path next to `path` that is renamed onto it when the block succeeds.

    A crash or an exception leaves any previous file at `path` untouched and removes the temporary,
    so a reader never sees a half-written file.

    Examples
    --------
    >>> with atomic_path("out.mrc") as tmp:  # doctest: +SKIP
    ...     write_something(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                    dir=path.parent)
    except OSError as err:   # name the file the user asked for, not our temporary
        raise OSError(err.errno, err.strerror, str(path)) from None
    os.close(fd)
    tmp = Path(name)
    # mkstemp makes the file private (0600); give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        _fsync(tmp)            # the data reach the disk before the name does: a power cut after
        os.replace(tmp, path)  # the rename must not leave an empty file behind it
        _fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


class OutputLock:
    """``<path>.lock``, holding the writer's process id, so that two runs never write one output.

    Taken when made; a lock whose process is gone (a killed run) is taken over. :meth:`release`
    removes it.

    Raises
    ------
    FileExistsError
        If a running process holds the lock: the message names it and what to do.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.target = Path(path)
        self.path = self.target.with_name(self.target.name + ".lock")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):   # a stale lock removed, then taken; a racing run may take it first
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self.owner()
                if owner is not None and owner != os.getpid() and _alive(owner):
                    raise FileExistsError(
                        errno.EEXIST, f"is being written by another run (process {owner}); wait "
                        f"for it to finish or write elsewhere (if no such run exists, delete "
                        f"'{self.path}')", str(self.target)) from None
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as file:
                file.write(f"{os.getpid()}\n")
            return
        raise FileExistsError(errno.EEXIST, f"'{self.target}' is contended by other runs; try again",
                              str(self.path))

    def owner(self) -> int | None:
        """The process id in the lock file, or None if it is unreadable."""
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self.owner() == os.getpid():
            self.path.unlink(missing_ok=True)


def _remove_orphans(path: Path) -> None:
    """Delete the temporaries of `path` left by killed writers: their names carry the writer's
    process id (``.<name>.<pid>.<random>.tmp``), and that process is gone."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether a process with this id runs (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):   # someone else's process, or not a valid id
        return True
    return True


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') pending writes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno != errno.EINVAL or not path.is_dir():   # some file systems cannot sync folders
            raise
    finally:
        os.close(fd)
