"""Inputs of :func:`tomowidgets.apply.apply`: networks, tomograms and their checks (private)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tomowidgets._validate import check_positive, same_voxel_size
from tomowidgets.io import Tomogram, read_tomogram
from tomowidgets.network.netfile import NetworkRecord, check_feature_name, read_metadata, read_network

#: Relative voxel-size difference tolerated between a tomogram and a network's training data: looser
#: on purpose than the package's APIX_RTOL (0.1 %), since a network still recognises a feature 1 %
#: larger or smaller, and reconstructions of one data set often differ by such a calibration.
NETWORK_APIX_RTOL = 0.01
#: The preprocessing check: slices sampled, and the mean / sd a preprocessed tomogram stays within.
_SAMPLE_SLICES = 5
_MAX_ABS_MEAN = 0.5
_SD_RANGE = (0.5, 2.0)


# -- networks and tomograms ------------------------------------------------------------------


def networks_of(net: Any) -> tuple[list[NetworkRecord], bool]:
    """The networks to run and whether a single one was given (not in a list or dict)."""
    if isinstance(net, Mapping):
        items, single = list(net.items()), False
    elif isinstance(net, (list, tuple)):
        items, single = [(None, n) for n in net], False
    else:
        items, single = [(None, net)], True
    if not items:
        raise ValueError("`net` is empty; give a FeatureNet, a .keras path, or a list of them")
    result = [_network(value, name) for name, value in items]
    names = [n.name for n in result]
    if len(set(names)) < len(names):
        raise ValueError(f"networks must have distinct feature names, got {names}; pass a dict "
                         "{name: network} to name them")
    return result, single


def _network(net: Any, name: str | None) -> NetworkRecord:
    """Read one network (a .keras path without TensorFlow, or a FeatureNet) and check it."""
    if isinstance(net, (str, os.PathLike)):
        meta = read_metadata(net)
        where = f" ('{net}')"
    elif callable(getattr(net, "weights", None)) and hasattr(net, "amplitude"):
        meta = {key: getattr(net, key, None)
                for key in ("feature", "amplitude", "apix", "preprocessing", "calibration")}
        meta["context"] = getattr(net, "context", 0)
        where = ""
    else:
        raise ValueError(f"`net` must be a FeatureNet or the path of a .keras file saved by "
                         f"FeatureNet.save, got {type(net).__name__}")
    name = meta.get("feature") if name is None else name
    try:
        check_feature_name(name)
    except ValueError:
        raise ValueError(f"network name {name!r}{where} cannot name a file; use letters, digits, "
                         "'-' and '_' (pass a dict {name: network})") from None
    if meta.get("amplitude") is None:
        raise ValueError(f"the {name!r} network{where} is not calibrated (amplitude None): train "
                         "it (FeatureNet.train calibrates at the end) or call net.calibrate(ts); "
                         "if training learned nothing, train longer or add positive tiles")
    meta["amplitude"] = check_positive(meta["amplitude"], "amplitude")
    # weights are read (or built) only now that the network is known to be calibrated
    if isinstance(net, (str, os.PathLike)):
        return replace(read_network(net), metadata=meta, label=name)
    return NetworkRecord(net.weights(), meta, label=name)


#: Smallest slice (rows and columns) worth annotating: the networks' first kernels are 15×15, and a
#: slice smaller than that is mostly zero padding.
MIN_SLICE = 16


def open_tomogram(tomo: Any) -> tuple[Tomogram, Path | None]:
    """The tomogram, and the MRC file its voxels are memory-mapped from (None if in memory)."""
    if isinstance(tomo, (str, os.PathLike)):
        opened = read_tomogram(tomo, mmap=True, check_values=False)  # the engine checks NaN/inf
        check_size(opened)
        return opened, Path(tomo).resolve()
    if not isinstance(tomo, Tomogram):
        raise ValueError(f"`tomo` must be a Tomogram or the path of an MRC file, got "
                         f"{type(tomo).__name__}; wrap an array as Tomogram(data, apix)")
    check_size(tomo)
    data, name = tomo.data, getattr(tomo.data, "filename", None)
    if not isinstance(data, np.memmap) or tomo.path is None or not name:
        return tomo, None
    try:
        same = os.path.samefile(name, tomo.path)
        shape = read_tomogram(tomo.path, mmap=True, apix=tomo.apix, check_values=False).shape
    except (OSError, ValueError):
        return tomo, None
    return tomo, (Path(tomo.path).resolve() if same and shape == tomo.shape else None)


# -- checks --------------------------------------------------------------------------------------


def check_size(tomo: Tomogram) -> None:
    """Refuse a tomogram without slices, or with slices smaller than the network's reach."""
    where = f"'{tomo.path}'" if tomo.path is not None else "the tomogram"
    nz, ny, nx = tomo.shape
    if nz == 0 or ny < MIN_SLICE or nx < MIN_SLICE:
        raise ValueError(f"{where} has shape {tomo.shape}: the networks need at least one slice of "
                         f"{MIN_SLICE}×{MIN_SLICE} voxels or more (their kernels are 15 voxels across)")


def check_voxel_size(network: NetworkRecord, tomo: Tomogram, tolerance: float) -> None:
    """Refuse a tomogram at another voxel size than the network's training data, saying what to do."""
    if network.apix is None:
        warnings.warn(f"the {network.name!r} network records no voxel size, so it cannot be checked "
                      f"against the tomogram's {tomo.apix:.4g} Å/voxel; apply it only at the voxel "
                      "size it was trained at", RuntimeWarning, stacklevel=4)
        return
    net_apix, apix = network.apix, tomo.apix
    if same_voxel_size(apix, net_apix, tolerance):
        return
    ratio = net_apix / apix
    k = round(ratio)
    rescale = (f"tomowidgets.rescale(tomo, {net_apix:.4g}) (command line: tomowidgets rescale IN OUT "
               f"--to {net_apix:.4g})")
    if k >= 2 and abs(ratio - k) <= tolerance * ratio:
        hint = (f"bin it by {k} first: tomowidgets.bin(tomo, {k}), or {rescale}; then preprocess "
                "it as for training")
    elif ratio > 1:
        hint = (f"rescale it by a factor {ratio:.3g} first: {rescale}; then preprocess it as for "
                f"training, or train a network at {apix:.4g} Å/voxel")
    else:
        hint = (f"the tomogram is {1 / ratio:.3g}x coarser, so it lacks the detail the network "
                f"learned from: reconstruct it at {net_apix:.4g} Å/voxel (or rescale a finer "
                f"reconstruction with tomowidgets.rescale), or train a network on tomograms binned "
                f"to {apix:.4g} Å/voxel (tomowidgets.bin(training_tomo, {round(1 / ratio)}))")
    raise ValueError(
        f"the tomogram has {apix:.4g} Å/voxel but the {network.name!r} network was trained at "
        f"{net_apix:.4g} Å/voxel (tolerance {tolerance:.0%}); {hint}. If the header is wrong, "
        "read the tomogram with read_tomogram(path, apix=...)")


def warn_if_not_preprocessed(tomo: Tomogram, preprocessing: dict[str, Any] | None) -> None:
    """Warn unless a few sampled slices have mean ~0 and sd ~1, as after preprocess().

    Every other pixel of up to 5 evenly spaced slices is read (NaN/inf are skipped here; the
    engine refuses them). `preprocessing` (a network's record, if any) is quoted in the warning.
    """
    nz = tomo.shape[0]
    total = total2 = count = 0.0
    slices = np.unique(np.linspace(0, nz - 1, min(nz, _SAMPLE_SLICES)).round().astype(int))
    for z in slices:
        sample = np.asarray(tomo.data[z, ::2, ::2], dtype=np.float64)
        sample = sample[np.isfinite(sample)]
        total += float(sample.sum())
        total2 += float(np.square(sample).sum())
        count += sample.size
    if not count:
        return
    mean = total / count
    sd = float(np.sqrt(max(total2 / count - mean**2, 0.0)))
    if abs(mean) > _MAX_ABS_MEAN or not _SD_RANGE[0] <= sd <= _SD_RANGE[1]:
        settings = f" ({preprocessing})" if preprocessing else ""
        warnings.warn(f"the tomogram does not look preprocessed: mean {mean:.3g} and sd {sd:.3g} "
                      f"on {len(slices)} sampled slices, where the networks expect mean 0 and sd 1; "
                      f"run tomowidgets.preprocess(tomo) with the settings used for training"
                      f"{settings}, or pass check_preprocessed=False", RuntimeWarning,
                      stacklevel=4)
