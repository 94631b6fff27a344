"""Network files (``*.keras``) read and written without TensorFlow, and the one check of weights.

A tomowidgets network file is the zip archive Keras writes (``config.json``, ``metadata.json``,
``model.weights.h5``) plus one member of ours, ``tomowidgets.json``, with what is needed to reuse the
network (feature, voxel size, preprocessing, calibration amplitude, hyper-parameters, history).
These readers use only zipfile, json and h5py, so the FFT engine and Dask workers can load a network
without importing TensorFlow.

:class:`NetworkRecord` is a trained network as plain data (checked weights + metadata): what
:func:`read_network` returns, what :meth:`tomowidgets.FeatureNet.load` builds its model from, and what
:func:`tomowidgets.apply` hands to the FFT engine. :data:`LAYERS` names the layers everywhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from tomowidgets._validate import as_float32, check_finite

__all__ = ["LAYERS", "METADATA_NAME", "NetworkRecord", "append_metadata", "check_file", "check_weights",
           "read_metadata", "read_network", "read_weights", "weights_digest"]

#: Member of the .keras zip archive that holds our metadata.
METADATA_NAME = "tomowidgets.json"
#: Value of the metadata's "format" key.
FORMAT = "tomowidgets.network"
#: Convolution layers of the paper's network, in order (the contract with the FFT engine).
LAYERS = ("conv1", "conv2", "conv3")
_WEIGHTS_NAME = "model.weights.h5"
_CONFIG_NAME = "config.json"


def check_file(path: str | os.PathLike) -> Path:
    """Return `path` as a Path, raising FileNotFoundError with a hint if it is not a file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No network file at '{path}' (cwd is '{Path.cwd()}'); networks are written by "
            "FeatureNet.save('<feature>.keras') or `tomowidgets train ... -o <feature>.keras`"
        )
    return path


def check_feature_name(name: Any) -> str:
    """`name` if it can name a feature, and so a file (``<tomogram>.<feature>.mrc``): a non-empty,
    printable string of at most 64 characters, without path separators (``/ \\ :``) or a leading
    dot."""
    if (not isinstance(name, str) or not name.strip() or not name.isprintable() or len(name) > 64
            or any(c in name for c in "/\\:") or name.startswith(".")):
        raise ValueError(f"a feature name must be a short name such as 'membrane' (no '/', '\\', "
                         f"':' or leading '.'), got {name!r}")
    return name


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"'{path}' is not a .keras network file (not a zip archive: {err})") from None


def _read_member(zf: zipfile.ZipFile, name: str, path: Path) -> bytes:
    """One file of the archive; a damaged one (bad CRC, broken compression) is a ValueError."""
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise ValueError(f"'{path}' is damaged: its {name} cannot be read ({err}); save or copy the "
                         "network again") from None


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The tomowidgets metadata of a network file, without importing TensorFlow.

    Parameters
    ----------
    path : str or PathLike
        A ``.keras`` file written by :meth:`tomowidgets.network.FeatureNet.save`.

    Returns
    -------
    dict
        JSON metadata: ``feature``, ``apix`` (Å/voxel or None), ``preprocessing``, ``amplitude``
        (calibration: divide the network output by it), ``hyper``, ``training``, ``history``,
        ``tomowidgets_version``, ``format``, ``format_version``.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file is not a zip archive, or a zip (e.g. a plain Keras model) without tomowidgets
        metadata. The message names the file.
    """
    path = check_file(path)
    with _open(path) as zf:
        if METADATA_NAME not in zf.namelist():
            raise ValueError(
                f"'{path}' holds no tomowidgets metadata ({METADATA_NAME}); it is not a network "
                "saved by FeatureNet.save (a plain Keras model lacks the calibration amplitude)"
            )
        try:
            meta = json.loads(_read_member(zf, METADATA_NAME, path).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"'{path}' has corrupt tomowidgets metadata ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"'{path}' has metadata that is not a tomowidgets network description")
    try:
        check_feature_name(meta.get("feature"))
        amplitude = meta.get("amplitude")
        if amplitude is not None and (isinstance(amplitude, bool) or not isinstance(amplitude, (int, float))
                                      or not math.isfinite(amplitude) or amplitude <= 0):
            raise ValueError(f"its calibration amplitude must be a number > 0, got {amplitude!r}")
    except ValueError as err:
        raise ValueError(f"'{path}' has invalid metadata: {err}") from None
    return meta


def read_weights(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """The convolution weights of a network file, without importing TensorFlow.

    Parameters
    ----------
    path : str or PathLike
        A ``.keras`` file written by :meth:`tomowidgets.network.FeatureNet.save`.

    Returns
    -------
    dict of str to list of ndarray
        ``{"conv1": [kernel, bias], "conv2": [...], "conv3": [...]}``, float32, in Keras' layout:
        kernel ``(k, k, in, out)`` applied as a cross-correlation with 'same' zero padding, bias
        ``(out,)``. ``conv1`` has ``in = 2 * context + 1`` (1 for the paper's 2D network) and
        ``conv3`` has ``out = 1``.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file is not a zip archive, has no weights, or its layers are not the paper's network
        (names, shapes). The message names the file.
    """
    import h5py

    path = check_file(path)
    with _open(path) as zf:
        names = zf.namelist()
        if _WEIGHTS_NAME not in names or _CONFIG_NAME not in names:
            raise ValueError(f"'{path}' holds no {_WEIGHTS_NAME} or {_CONFIG_NAME}; it is not a "
                             "Keras 3 .keras file")
        blob = _read_member(zf, _WEIGHTS_NAME, path)
        config = _read_member(zf, _CONFIG_NAME, path)
    weights: dict[str, list[np.ndarray]] = {}
    try:
        groups = _weight_groups(json.loads(config.decode("utf-8")))
        with h5py.File(io.BytesIO(blob), "r") as h5:
            for name in LAYERS:
                if name not in groups:
                    raise ValueError(f"no layer '{name}'")
                group = h5[f"layers/{groups[name]}/vars"]
                weights[name] = [np.asarray(group[str(i)], dtype=np.float32)
                                 for i in range(len(group))]
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"'{path}' is not a network of the paper's layout (conv1, conv2, conv3): {err}"
        ) from None
    try:
        return check_weights(weights)
    except ValueError as err:
        raise ValueError(f"'{path}' does not hold the paper's network: {err}") from None


def _weight_groups(config: dict[str, Any]) -> dict[str, str]:
    """Map each layer's name to its group in ``model.weights.h5``.

    Keras 3 stores a functional model's weights under ``layers/<class in snake_case>[_<k>]`` (k
    counting earlier layers of the same class, e.g. ``conv2d_1``), not under the layer names, "since
    names are usually autogenerated"; the layer order is that of ``config.json``.
    """
    groups: dict[str, str] = {}
    used: dict[str, int] = {}
    for layer in config["config"]["layers"]:
        snake = re.sub(r"\W+", "", layer["class_name"])
        snake = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", snake)
        snake = re.sub("([a-z])([A-Z])", r"\1_\2", snake).lower()
        used[snake] = used.get(snake, -1) + 1
        groups[layer["config"]["name"]] = f"{snake}_{used[snake]}" if used[snake] else snake
    return groups


def check_weights(weights: Mapping[str, Sequence[Any]]) -> dict[str, list[np.ndarray]]:
    """The one check of a network's weights; returns them as C-contiguous float32 copies.

    Parameters
    ----------
    weights : dict of str to [kernel, bias]
        ``{"conv1": [kernel, bias], "conv2": [...], "conv3": [...]}`` in Keras' layout: kernels
        ``(k, k, in, out)`` with k odd; conv1 reads ``in = 2 * context + 1`` slices (1 for the
        paper's 2D network), conv3 has ``out = 1``.

    Raises
    ------
    ValueError
        If `weights` is not such a dict, a layer is missing, a kernel or bias has the wrong shape,
        or a value is NaN/inf. The message names the layer.
    """
    if not isinstance(weights, Mapping):
        raise ValueError(f"`weights` must be a dict {{layer name: [kernel, bias]}}, got "
                         f"{type(weights).__name__}; use {{l.name: l.get_weights()}} or "
                         "tomowidgets.network.read_weights(path)")
    missing = [name for name in LAYERS if name not in weights]
    if missing:
        raise ValueError(f"`weights` lacks layer(s) {missing}; found {sorted(weights)}. "
                         f"The network needs {list(LAYERS)}")
    checked: dict[str, list[np.ndarray]] = {}
    for name in LAYERS:
        pair = weights[name]
        if len(pair) != 2:
            raise ValueError(f"`weights[{name!r}]` must be [kernel, bias], got {len(pair)} arrays")
        checked[name] = []
        for array, part in zip(pair, ("kernel", "bias"), strict=True):
            array = as_float32(array, f"weights[{name!r}] {part}")
            check_finite(array, f"weights[{name!r}] {part}")
            checked[name].append(np.ascontiguousarray(array))
    first = checked["conv1"][0].shape
    if len(first) != 4 or first[0] != first[1] or first[0] % 2 == 0 or first[2] % 2 == 0:
        raise ValueError(f"`weights['conv1']` kernel must have shape (k, k, inputs, channels) with "
                         f"k odd and inputs = 2 * context + 1 slices, got {first}; the paper's is "
                         "(15, 15, 1, 40)")
    k, inputs, c = first[0], first[2], first[3]
    for name, want in zip(LAYERS, [(k, k, inputs, c), (k, k, c, c), (k, k, c, 1)], strict=True):
        kernel, bias = checked[name]
        if kernel.shape != want or bias.shape != (want[3],):
            raise ValueError(
                f"`weights[{name!r}]` must be a kernel of shape {want} and a bias of shape "
                f"{(want[3],)}, got {kernel.shape} and {bias.shape}; is this the paper's network?")
    return checked


def weights_digest(weights: Mapping[str, Sequence[Any]]) -> str:
    """SHA-256 of a network's layer names, shapes and float32 values (hex)."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        for array in weights[name]:
            array = np.ascontiguousarray(array, dtype=np.float32)
            digest.update(f"{name}:{array.shape};".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True, repr=False)
class NetworkRecord:
    """A trained network as plain data: checked weights and the metadata to reuse them.

    Built by :func:`read_network` from a file, or from a trained network's weights and metadata (as
    :func:`tomowidgets.apply` does for a FeatureNet); the weights are checked once, here, and every
    user (the FFT engine, apply, Keras) trusts them.

    Parameters
    ----------
    weights : dict of str to [kernel, bias]
        As :func:`check_weights` takes them.
    metadata : dict
        As :func:`read_metadata` returns it (``feature``, ``amplitude``, ``apix``, ...).
    path : Path or None
        The file it was read from.
    label : str or None
        What to call its output, if not its feature (see :attr:`name`).
    """

    weights: dict[str, list[np.ndarray]]
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", check_weights(self.weights))
        inputs = self.weights["conv1"][0].shape[2]
        if inputs != 2 * self.context + 1:
            where = f"'{self.path}'" if self.path else "the network"
            raise ValueError(f"{where} is inconsistent: its metadata says context {self.context} "
                             f"but its first layer reads {inputs} slices")

    @property
    def name(self) -> str:
        """What its output is called: the label, else the feature, else "network"."""
        return self.label or self.feature or "network"

    @property
    def feature(self) -> str | None:
        """The feature it was trained on."""
        return self.metadata.get("feature")

    @property
    def amplitude(self) -> float | None:
        """Calibration: calibrated score = output / amplitude (None if never calibrated)."""
        return self.metadata.get("amplitude")

    @property
    def apix(self) -> float | None:
        """Voxel size of its training data in Å (None if unknown)."""
        apix = self.metadata.get("apix")
        return None if apix is None else float(apix)

    @property
    def preprocessing(self) -> dict[str, Any] | None:
        """The preprocessing settings of its training data."""
        return self.metadata.get("preprocessing")

    @property
    def context(self) -> int:
        """Slices above and below that it reads (0 for the paper's 2D network)."""
        return int(self.metadata.get("context", 0) or 0)

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the weights (:func:`weights_digest`)."""
        return weights_digest(self.weights)

    def __repr__(self) -> str:
        where = f", path='{self.path}'" if self.path else ""
        return (f"NetworkRecord({self.name!r}, amplitude={self.amplitude}, "
                f"apix={self.apix}, context={self.context}{where})")


def read_network(path: str | os.PathLike) -> NetworkRecord:
    """A network file's weights and metadata, checked, without importing TensorFlow.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        As :func:`read_metadata` and :func:`read_weights`, or if the metadata's context does not
        match the first layer. The message names the file.
    """
    metadata = read_metadata(path)  # first: a foreign .keras file is told apart by its metadata
    return NetworkRecord(read_weights(path), metadata, Path(path))


def append_metadata(path: Path, meta: dict[str, Any]) -> None:
    """Add ``tomowidgets.json`` with `meta` to the .keras zip archive at `path`."""
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(METADATA_NAME, json.dumps(meta, indent=1, allow_nan=False))
