"""Network files (``*.keras``) read without TensorFlow: metadata and weights (private).

A tomowidgets network file is the zip archive Keras writes (``config.json``, ``metadata.json``,
``model.weights.h5``) plus one member of ours, ``tomowidgets.json``, with what is needed to reuse the
network (feature, voxel size, preprocessing, calibration amplitude, hyper-parameters, history).
These readers use only zipfile, json and h5py, so the FFT engine and Dask workers can load a network
without importing TensorFlow.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LAYERS", "METADATA_NAME", "append_metadata", "check_file", "read_metadata",
           "read_weights"]

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


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"'{path}' is not a .keras network file (not a zip archive: {err})") from None


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
            meta = json.loads(zf.read(METADATA_NAME).decode("utf-8"))
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile) as err:
            raise ValueError(f"'{path}' has corrupt tomowidgets metadata ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"'{path}' has metadata that is not a tomowidgets network description")
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
        blob = zf.read(_WEIGHTS_NAME)
        config = zf.read(_CONFIG_NAME)
    weights = {}
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
    check_layout(weights, str(path))
    return weights


def _weight_groups(config: dict[str, Any]) -> dict[str, str]:
    """Map each layer's name to its group in ``model.weights.h5``.

    Keras 3 stores a functional model's weights under ``layers/<class in snake_case>[_<k>]`` (k
    counting earlier layers of the same class, e.g. ``conv2d_1``), not under the layer names, "since
    names are usually autogenerated"; the layer order is that of ``config.json``.
    """
    groups, used = {}, {}
    for layer in config["config"]["layers"]:
        snake = re.sub(r"\W+", "", layer["class_name"])
        snake = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", snake)
        snake = re.sub("([a-z])([A-Z])", r"\1_\2", snake).lower()
        used[snake] = used.get(snake, -1) + 1
        groups[layer["config"]["name"]] = f"{snake}_{used[snake]}" if used[snake] else snake
    return groups


def check_layout(weights: dict[str, list[np.ndarray]], where: str) -> None:
    """Raise ValueError unless `weights` are 15×15-style 'same' convolutions n → c → c2 → 1, with
    n = 1 input slice (the paper) or an odd number (a 2.5D network's slice and neighbours)."""
    try:
        shapes = [[w.shape for w in weights[name]] for name in LAYERS]
        (k1, b1), (k2, b2), (k3, b3) = shapes
        ok = (len(k1) == len(k2) == len(k3) == 4 and k1[:2] == k2[:2] == k3[:2]
              and k1[0] == k1[1] and k1[0] % 2 == 1 and k1[2] % 2 == 1 and k2[2] == k1[3]
              and k3[2] == k2[3] and k3[3] == 1
              and (b1, b2, b3) == ((k1[3],), (k2[3],), (1,)))
    except (KeyError, ValueError, TypeError):
        ok, shapes = False, {name: "missing" for name in LAYERS if name not in weights}
    if not ok:
        raise ValueError(
            f"'{where}' does not hold the paper's network: expected conv1 (k, k, n, c) with "
            f"n = 1, 3, 5..., conv2 (k, k, c, c2), conv3 (k, k, c2, 1) with odd k and matching "
            f"biases, got {shapes}"
        )


def append_metadata(path: Path, meta: dict[str, Any]) -> None:
    """Add ``tomowidgets.json`` with `meta` to the .keras zip archive at `path`."""
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(METADATA_NAME, json.dumps(meta, indent=1, allow_nan=False))
