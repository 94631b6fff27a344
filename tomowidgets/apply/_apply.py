"""Annotate whole tomograms: every slice through one or several trained networks, slab by slab.

"Since the neural network is convolutional, we simply filter the full-sized pre-filtered tomogram
slices with the trained kernels [...] The final output tile is unbinned by 2 to match the
dimensions of the input tile" (Chen et al. 2017, Online Methods). :func:`apply` does this with the
FFT engine (:mod:`tomowidgets.engine`, no TensorFlow) over slabs of z slices read from a
memory-mapped tomogram, divides by each network's calibration amplitude (1.0 = the annotated level)
and keeps the scores in memory or streams them into an MRC file that survives interruption
(rerun the same call to resume). :func:`apply_many` does the same for several tomograms.
With ``client=`` a :class:`dask.distributed.Client` spreads the slabs over its workers.

Examples
--------
>>> import tomowidgets as tw                                               # doctest: +SKIP
>>> pre = tw.read_tomogram("cell.pre.mrc", mmap=True)                      # doctest: +SKIP
>>> seg = apply("membrane.keras", pre)                    # Tomogram of scores  # doctest: +SKIP
>>> segs = apply(["membrane.keras", "ribosome.keras"], pre, out="scores/")  # doctest: +SKIP
>>> sorted(segs)                                                           # doctest: +SKIP
['membrane', 'ribosome']
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from tomowidgets._validate import check_positive, check_positive_int, check_turns
from tomowidgets.apply._inputs import (
    NETWORK_APIX_RTOL,
    check_voxel_size,
    networks_of,
    open_tomogram,
    warn_if_not_preprocessed,
)
from tomowidgets.apply._output import FileOutput, MemoryOutput, tomogram_fingerprint
from tomowidgets.apply._slabs import check_slab, context, run_dask, scores, turned
from tomowidgets.engine import DEFAULT_TILE, FFTEngine
from tomowidgets.io import Tomogram, mrc_stem, release_pages
from tomowidgets.network import KerasEngine, gpu_available
from tomowidgets.network.netfile import NetworkRecord

if TYPE_CHECKING:
    from tomowidgets.network import FeatureNet

    NetworkLike = FeatureNet | str | os.PathLike
    TomogramLike = Tomogram | str | os.PathLike

__all__ = ["NETWORK_APIX_RTOL", "apply", "apply_many"]

#: Bytes of input and scores per slab when `slab` is not given (a 4096 x 4096 slice is 64 MiB).
_SLAB_BYTES = 32 * 2**20


@dataclass(frozen=True)
class _Job:
    """One tomogram, the MRC file its voxels are mapped from (or None), and one output per network."""

    tomo: Tomogram
    file: Path | None
    outputs: dict[str, FileOutput | MemoryOutput]


def apply(net: NetworkLike | Sequence[NetworkLike] | Mapping[str, NetworkLike],
          tomo: TomogramLike, out: str | os.PathLike | None = None, *, slab: int | None = None,
          progress: bool = True, client: Any = None, apix_tolerance: float = NETWORK_APIX_RTOL,
          dtype: Any = np.float32, resume: bool = True, check_preprocessed: bool = True,
          tile: int = DEFAULT_TILE, threads: int | None = None,
          engine: str = "auto", turns: int = 1) -> Tomogram | dict[str, Tomogram]:
    """Calibrated scores of one or several networks on every slice of a preprocessed tomogram.

    Parameters
    ----------
    net : FeatureNet, path to a .keras file, or a list or dict of them
        Trained, calibrated network(s). A ``.keras`` path is read without TensorFlow. A list
        names each output by the network's feature; a dict by its key.
    tomo : Tomogram or path to an MRC file
        The preprocessed tomogram, ``(z, y, x)``, at the networks' voxel size; in memory or
        memory-mapped (a path is opened memory-mapped).
    out : str or PathLike, optional
        Write the scores into this MRC file (a single network) or into the directory
        ``<out>/<tomo stem>.<feature>.mrc`` (several networks, or `out` an existing directory),
        and return them memory-mapped. Slabs are streamed into ``<out>.partial``, renamed onto
        `out` at the end; interrupted, rerun the same call to resume. Without `out` the scores are
        returned in memory, float32.
    slab : int, optional
        Slices per slab (one unit of reading, computing, writing, resuming, and one Dask task);
        default about 32 MiB of input and scores per slab.
    progress : bool, default True
        Show a progress bar over slices (tqdm).
    client : dask.distributed.Client, optional
        Spread the slabs over this client's workers (see Notes). The library never creates one.
    apix_tolerance : float, default 0.01
        Relative difference tolerated between the tomogram's and a network's voxel size.
    dtype : {numpy.float32, numpy.float16}, default float32
        Storage of the `out` file; float16 halves it (3 significant digits, clipped to ±65504).
    resume : bool, default True
        Continue an interrupted run into the same `out`; False starts again.
    check_preprocessed : bool, default True
        Warn if the tomogram does not look preprocessed (see Warns).
    tile : int, default 320
        Tile edge of the FFT engine in input pixels (speed and memory, not results).
    threads : int, optional
        Threads per network evaluation; default all cores locally, 1 per Dask task (start
        workers with one thread each and one process per core, or pass this).
    engine : {"auto", "fft", "keras"}, default "auto"
        How the networks are evaluated: "fft", the CPU FFT engine (:mod:`tomowidgets.engine`, no
        TensorFlow); "keras", Keras ``predict`` (cuDNN on a GPU; needs TensorFlow); "auto",
        Keras where TensorFlow sees a GPU and no `client` is given, else the FFT engine. The two
        agree to float32 rounding.
    turns : int, default 1
        Test-time augmentation: average each network's output over the tomogram turned about z
        by 0, 90, 180 and 270 degrees (the first `turns` of them, 1-4), each turned back. Costs
        `turns` times the time. With 4, on unseen synthetic cells, membranes gained ~0.02 Dice and
        most features and pick precision a little; on the real cell of notebook 08 less of the
        envelope was found, since a network trained on membranes that run one way answers less
        to them turned (README, #16). Check on your own data, with networks calibrated for the
        same turns (``net.calibrate(ts, turns=...)``, ``tomowidgets train --turns``): a network
        calibrated for other turns gives a RuntimeWarning, as its 1.0 is then not the painted
        level.

    Returns
    -------
    Tomogram or dict of str to Tomogram
        Float32 (or `dtype` from `out`) scores ``(z, y, x)`` with the tomogram's voxel size and
        origin: network output unbinned by 2 and divided by the amplitude, so 1.0 is the annotated
        level. One Tomogram for a single network, else ``{feature: Tomogram}``.

    Raises
    ------
    ValueError
        If a network is not calibrated or its voxel size differs from the tomogram's by more than
        `apix_tolerance` (the message gives the binning factor or resampling to use), two networks
        share a name, `out` would replace the tomogram, or an option is invalid. NaN/inf voxels
        raise when their slab is reached (finished slabs are kept for a resume).
    FileNotFoundError
        If a network or tomogram file does not exist.
    FileExistsError
        If another live process is writing `out` (its ``<out>.lock``).
    WorkersLostError
        With a `client`: no worker connected within ``WAIT_FOR_WORKERS_SECONDS``, a slab killed its
        workers, or the workers or the scheduler were lost (finished slabs are kept for a resume).

    Warns
    -----
    RuntimeWarning
        If the tomogram does not look preprocessed (mean beyond ±0.5 or sd outside 0.5-2 on 5
        sampled slices; the networks expect mean 0, sd 1 from :func:`tomowidgets.preprocess`), a
        network records no voxel size (nothing to check), or a partial file from an earlier run
        had other inputs and is computed again.

    See Also
    --------
    apply_many : several tomograms, e.g. all slabs of all of them on a Dask cluster.
    tomowidgets.merge : label map from the score maps of several features.

    Notes
    -----
    Several networks share everything but the networks themselves: each input slab is read,
    converted to float32 and checked once, then given to every network (one engine per network,
    built once per call); the outputs are written side by side and one progress bar counts slices.

    Resuming: next to ``<out>.partial`` a JSON sidecar ``<out>.partial.json`` records the slices
    done and a fingerprint (network weights SHA-256 and amplitude, tomogram path, size,
    modification and status-change times, or a hash of in-memory data, `dtype`, `tile`). A rerun
    with the same fingerprint skips the done slices; another fingerprint starts again (with a
    warning). A second call on an `out` that a live process is writing is refused (``<out>.lock``).

    With a client, each slab is one task that reads its slices from the tomogram's MRC file itself
    (workers must see the same file system; in-memory tomograms are sent slab by slab), runs every
    network and returns the calibrated scores, which this process writes. Engines are scattered
    once (an engine pickles as its weights and builds its spectra on the worker) and workers never
    import TensorFlow. At most two tasks per worker thread are in flight, so memory stays bounded.
    Tasks are futures, not a ``dask.array.map_overlap`` graph: the network is 2D, so z slabs need
    no overlap (a y/x split would recompute a 36-pixel halo per piece), and futures let each slab
    be written and recorded for resuming as soon as it arrives.
    """
    networks, single = networks_of(net)
    results = _apply(networks, [tomo], out, single_file=single, slab=slab, progress=progress,
                     client=client, apix_tolerance=apix_tolerance, dtype=dtype, resume=resume,
                     check_preprocessed=check_preprocessed, tile=tile, threads=threads,
                     engine=engine, turns=turns)
    return results[0][networks[0].name] if single else results[0]


def apply_many(nets: NetworkLike | Sequence[NetworkLike] | Mapping[str, NetworkLike],
               tomos: Sequence[TomogramLike], out_dir: str | os.PathLike | None = None, *,
               slab: int | None = None, progress: bool = True, client: Any = None,
               apix_tolerance: float = NETWORK_APIX_RTOL, dtype: Any = np.float32, resume: bool = True,
               check_preprocessed: bool = True, tile: int = DEFAULT_TILE,
               threads: int | None = None, engine: str = "auto", turns: int = 1
               ) -> list[dict[str, Tomogram]]:
    """Every network on every tomogram: :func:`apply` for several tomograms at once.

    Parameters
    ----------
    nets : FeatureNet, path to a .keras file, or a list or dict of them
        As `net` in :func:`apply`.
    tomos : sequence of Tomogram or path to an MRC file
        The preprocessed tomograms.
    out_dir : str or PathLike, optional
        Directory for ``<tomo stem>.<feature>.mrc`` (stems must differ; a tomogram without a file
        is called ``tomogram``); without it the scores stay in memory.
    slab, progress, client, apix_tolerance, dtype, resume, check_preprocessed, tile, threads, engine, turns
        As in :func:`apply`. With a client the slabs of all tomograms are spread together.

    Returns
    -------
    list of dict of str to Tomogram
        For each tomogram, in order, ``{feature: scores}``.

    Raises
    ------
    ValueError
        As :func:`apply`, checked for every tomogram before any is computed; also if two
        tomograms would write the same file.
    FileNotFoundError
        If a network or tomogram file does not exist.

    Warns
    -----
    RuntimeWarning
        As :func:`apply`.
    """
    if isinstance(tomos, (Tomogram, str, os.PathLike)) or not isinstance(tomos, Sequence):
        raise ValueError(f"`tomos` must be a list of tomograms or MRC paths, got "
                         f"{type(tomos).__name__}; for one tomogram use apply()")
    networks, _ = networks_of(nets)
    return _apply(networks, list(tomos), out_dir, single_file=False, slab=slab, progress=progress,
                  client=client, apix_tolerance=apix_tolerance, dtype=dtype, resume=resume,
                  check_preprocessed=check_preprocessed, tile=tile, threads=threads, engine=engine,
                  turns=turns)


# -- the pipeline ----------------------------------------------------------------------------------


def _apply(networks: list[NetworkRecord], tomos: list[Any], out: Any, *, single_file: bool,
           slab: int | None, progress: bool, client: Any,
           apix_tolerance: float, dtype: Any, resume: bool, check_preprocessed: bool, tile: int,
           threads: int | None, engine: str, turns: int) -> list[dict[str, Tomogram]]:
    """Check everything, build the engines, prepare the outputs, run the slabs, finish the files."""
    from tqdm.auto import tqdm

    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise ValueError(f"`dtype` must be numpy.float32 or numpy.float16, got {dtype}")
    if dtype != np.float32 and out is None:
        raise ValueError("`dtype` float16 is a storage option of the `out` file; pass out=... or "
                         "keep the default float32")
    tolerance = check_positive(apix_tolerance, "apix_tolerance")
    slab = None if slab is None else check_positive_int(slab, "slab")
    threads = None if threads is None else check_positive_int(threads, "threads")
    turns = check_turns(turns)
    _warn_if_calibrated_for_other_turns(networks, turns)
    if client is not None and not all(hasattr(client, a) for a in ("submit", "scatter", "nthreads")):
        raise ValueError(f"`client` must be a dask.distributed.Client, got {type(client).__name__}; "
                         "connect one with Client('tcp://scheduler:8786') or leave it None")
    opened = [open_tomogram(t) for t in tomos]
    for tomo, _ in opened:
        for network in networks:
            check_voxel_size(network, tomo, tolerance)
        if check_preprocessed:
            warn_if_not_preprocessed(tomo, next((n.preprocessing for n in networks
                                                 if n.preprocessing), None))
    paths = _output_paths(networks, [t for t, _ in opened], [f for _, f in opened], out,
                          single_file)
    engine = _engine_kind(engine, client)
    workers = threads if client is None else (threads or 1)
    engines: dict[str, Any] = {
        n.name: turned(KerasEngine(n) if engine == "keras" else FFTEngine(n, tile=tile, workers=workers),
                       turns)
        for n in networks}
    # cast: networks_of() checked every amplitude (mypy cannot see it)
    amplitudes = {n.name: cast(float, n.amplitude) for n in networks}
    settings: dict[str, Any] = {"dtype": dtype.name, "tile": tile, "engine": engine}
    if turns > 1:   # only then, so that partial files of earlier versions still resume
        settings["turns"] = turns
    jobs = []
    try:
        for (tomo, file), where in zip(opened, paths, strict=True):
            jobs.append(_Job(tomo, file, _outputs(networks, tomo, file, where, dtype, settings,
                                                  resume)))
        nthreads = sum(client.nthreads().values()) if client is not None else None
        tasks = [task for index, job in enumerate(jobs)
                 for task in _tasks(index, job, _slab_size(slab, job.tomo.shape, len(networks),
                                                           nthreads, _batch(engines)))]
        total = sum(job.tomo.shape[0] for job in jobs)
        todo = sum(z1 - z0 for _, z0, z1, _ in tasks)
        with tqdm(total=total, initial=total - todo, desc="apply", unit="slice",
                  disable=not progress) as bar:
            if client is None:
                for index, z0, z1, names in tasks:
                    extra = context([engines[name] for name in names])
                    tomo = jobs[index].tomo
                    data = tomo.slab(z0, z1, extra)
                    release_pages(tomo.data)   # a memory map's pages, once read
                    check_slab(data, z0, z1, f"'{tomo.path}'" if tomo.path else "the tomogram")
                    for name in names:
                        jobs[index].outputs[name].write(
                            z0, z1, scores(engines[name], amplitudes[name], data, dtype, extra))
                    bar.update(z1 - z0)
            else:
                run_dask(client, jobs, tasks, engines, amplitudes, dtype, bar.update)
        return [{n.name: job.outputs[n.name].finish(job.tomo, _labels(n))
                 for n in networks} for job in jobs]
    finally:
        for job in jobs:
            for output in job.outputs.values():
                output.close()


def _engine_kind(engine: str, client: Any) -> str:
    """"fft" or "keras" for the `engine` option (see apply); "auto" asks for a GPU."""
    if engine not in ("auto", "fft", "keras"):
        raise ValueError(f'`engine` must be "auto", "fft" or "keras", got {engine!r}')
    if engine == "keras" and client is not None:
        raise ValueError('engine="keras" runs in this process; Dask workers run the FFT engine '
                         '(they need no TensorFlow): leave `engine` "auto" with a client')
    if engine == "auto":
        return "keras" if client is None and gpu_available() else "fft"
    return engine


def _tasks(index: int, job: _Job, slab: int) -> list[tuple[int, int, int, tuple[str, ...]]]:
    """``(job index, z0, z1, names)`` for runs of up to `slab` slices that some output needs."""
    names = list(job.outputs)
    need = np.stack([job.outputs[name].todo for name in names])
    wanted = cast(np.ndarray, need.any(axis=0))  # cast: over axis 0 of a 2D stack, always an array
    tasks, z, n = [], 0, len(wanted)
    while z < n:
        if not wanted[z]:
            z += 1
            continue
        z1 = z + 1
        while z1 < n and z1 - z < slab and wanted[z1]:
            z1 += 1
        tasks.append((index, z, z1, tuple(m for m, row in zip(names, need, strict=True)
                                          if row[z:z1].any())))
        z = z1
    return tasks


def _warn_if_calibrated_for_other_turns(networks: list[NetworkRecord], turns: int) -> None:
    """A network's 1.0 is the painted level for the turns it was calibrated with, not others."""
    for network in networks:
        calibrated = int((network.metadata.get("calibration") or {}).get("turns", 1))
        if calibrated != turns:
            warnings.warn(
                f"the {network.name!r} network was calibrated for {calibrated} turn(s) and is "
                f"applied with turns={turns}, so its 1.0 is not the painted level; recalibrate it "
                f"first: net.calibrate(ts, turns={turns}), or tomowidgets train --turns {turns}",
                RuntimeWarning, stacklevel=4)


def _batch(engines: dict[str, Any]) -> int:
    """The most slices one engine call takes at once (Keras' batch; 1 for the FFT engine)."""
    return max(getattr(getattr(e, "engine", e), "batch", 1) for e in engines.values())


def _slab_size(slab: int | None, shape: tuple[int, int, int], n_networks: int,
               nthreads: int | None, batch: int = 1) -> int:
    """`slab`, or about _SLAB_BYTES of input + scores but at least one `batch` (a GPU's batch of
    slices, which a smaller slab would cut short); on Dask, as many equal slabs as make a
    multiple of the threads (>= 2 each), so that no thread is left alone with the last one."""
    if slab is not None:
        return slab
    per_slice = shape[1] * shape[2] * 4 * (2 + n_networks)
    size = max(batch, _SLAB_BYTES // per_slice)
    if nthreads:
        rounds = max(2, -(-shape[0] // (size * nthreads)))       # slabs per thread
        size = max(1, -(-shape[0] // (rounds * nthreads)))
    return size


def _outputs(networks: list[NetworkRecord], tomo: Tomogram, file: Path | None,
             paths: dict[str, Path] | None, dtype: np.dtype, settings: dict[str, Any],
             resume: bool) -> dict[str, FileOutput | MemoryOutput]:
    """One output per network: in memory, or a resumable file (warning when one restarts)."""
    if paths is None:
        return {n.name: MemoryOutput(tomo.shape) for n in networks}
    source = tomogram_fingerprint(tomo, file)
    outputs: dict[str, FileOutput | MemoryOutput] = {}
    try:
        for network in networks:
            fingerprint = {"network": {"digest": network.digest, "amplitude": network.amplitude},
                           "tomogram": source, "settings": settings}
            output = FileOutput(paths[network.name], tomo.shape, dtype, fingerprint, resume)
            outputs[network.name] = output
            if output.restarted:
                warnings.warn(f"'{output.partial}' from an interrupted run is not reused: "
                              f"{output.restarted}; computing '{output.path.name}' from the first "
                              "slice again", RuntimeWarning, stacklevel=4)
    except BaseException:
        for opened in outputs.values():  # not `output`: mypy types that one FileOutput
            opened.close()
        raise
    return outputs


def _labels(network: NetworkRecord) -> list[str]:
    return [f"tomowidgets apply: {network.name} scores (1.0 = annotated level)"[:80],
            f"network output / amplitude {network.amplitude:.6g}; weights sha256 "
            f"{network.digest[:16]}"]


def _output_paths(networks: list[NetworkRecord], tomos: list[Tomogram], files: list[Path | None],
                  out: Any, single_file: bool) -> Sequence[dict[str, Path] | None]:
    """For each tomogram ``{name: output path}``, or None when the scores stay in memory."""
    if out is None:
        return [None] * len(tomos)
    out = Path(out)
    if single_file and not out.is_dir():
        paths = [{networks[0].name: out}]
    else:
        stems = [mrc_stem(t.path) if t.path is not None else "tomogram" for t in tomos]
        paths = [{n.name: out / f"{stem}.{n.name}.mrc" for n in networks} for stem in stems]
    seen: dict[Path, int] = {}
    for index, (where, file) in enumerate(zip(paths, files, strict=True)):
        for path in where.values():
            resolved = path.resolve()
            if resolved in seen:
                raise ValueError(f"two tomograms would both write '{path}'; give them different "
                                 "file names (stems)")
            seen[resolved] = index
            source = file or tomos[index].path
            if source is not None and resolved == Path(source).resolve():
                raise ValueError(f"`out` '{path}' would replace the tomogram it is computed from; "
                                 "choose another file name")
    return paths
