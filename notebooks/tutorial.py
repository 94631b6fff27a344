"""The tutorial notebooks' project folder: where each step finds the previous step's files.

Every notebook reads and writes one folder (``WORKDIR``, by default ``notebooks/project/``)::

    project.json              which tomogram, its voxel size, how it was preprocessed
    cell/                     the synthetic cell (tomogram.mrc, labels/<feature>.mrc, particles.csv)
    binned.mrc                your tomogram binned (only when 01 ran with BIN > 1)
    preprocessed.mrc          01: band-passed, normalized, clamped
    <feature>.tiles.npz       02: training sets (positive tiles with masks + negative tiles)
    <feature>.keras           03: trained, calibrated networks
    scores/preprocessed.<feature>.mrc    04: calibrated score maps (1.0 = the annotated level)
    unseen_cell/, more/       04: a second synthetic cell (or MORE_TOMOGRAMS), preprocessed and scored
    labels.mrc, labels.json   05: merged annotation
    <particle>.star/.csv, <particle>_average.mrc ...   06: picks and the average

So any notebook can be opened on its own, the ``require_*`` functions make a missing input the cheap
scripted way (what the earlier notebook does with its defaults): the synthetic cell, the paper's
preprocessing, training sets from the synthetic ground truth, networks trained for a few epochs.
They never overwrite a training set or a network; a score map older than the preprocessed tomogram
or its network is computed again. For your own tomogram only the preprocessing can be made this way:
training sets need your annotation (notebook 02).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import tomowidgets as tw
from tomowidgets.preprocess import preprocessing_params
from tomowidgets.synthetic import write_cell

__all__ = ["Project", "decoys_for", "open_project", "require_networks", "require_scores",
           "require_training_sets", "start_project"]

CONFIG = "project.json"


class Project:
    """The files of one tutorial project (see the module docstring for the layout)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.config_path = self.root / CONFIG
        self.cell_dir = self.root / "cell"
        self.pre_path = self.root / "preprocessed.mrc"
        self.scores_dir = self.root / "scores"
        self.labels_path = self.root / "labels.mrc"
        self.config: dict[str, Any] = (json.loads(self.config_path.read_text())
                                       if self.config_path.is_file() else {})

    # -- what the project is about -------------------------------------------------------------
    @property
    def exists(self) -> bool:
        """Whether a tomogram was chosen (``project.json`` exists)."""
        return bool(self.config)

    @property
    def synthetic(self) -> bool:
        """Whether the tomogram is the built-in synthetic cell (so ground truth exists)."""
        return self.config.get("synthetic") is not None

    @property
    def raw_path(self) -> Path:
        """The tomogram to annotate, before preprocessing."""
        return Path(self.config["tomogram"])

    @property
    def apix(self) -> float:
        """Voxel size in Å."""
        return float(self.config["apix"])

    @property
    def preprocessing(self) -> dict[str, Any] | None:
        """Preprocessing record (``preprocessing_params``) of ``preprocessed.mrc``, or None."""
        return self.config.get("preprocessing")

    def raw(self) -> tw.Tomogram:
        """The tomogram before preprocessing, memory-mapped."""
        return tw.read_tomogram(self.raw_path, mmap=True, apix=self.apix)

    def pre(self) -> tw.Tomogram:
        """The preprocessed tomogram, memory-mapped (made with the paper's defaults if missing)."""
        require_preprocessed(self)
        return tw.read_tomogram(self.pre_path, mmap=True)

    # -- file names ----------------------------------------------------------------------------
    def tiles(self, feature: str) -> Path:
        return self.root / f"{feature}.tiles.npz"

    def network(self, feature: str) -> Path:
        return self.root / f"{feature}.keras"

    def scores(self, feature: str) -> Path:
        return self.scores_dir / f"{self.pre_path.stem}.{feature}.mrc"

    # -- ground truth (synthetic cell only) ----------------------------------------------------
    def truth(self) -> dict[str, np.ndarray] | None:
        """The synthetic cell's labels ``{feature: bool volume}``, or None for your own tomogram."""
        return read_labels(self.cell_dir) if self.synthetic else None

    def true_particles(self):  # noqa: ANN201 - pandas.DataFrame or None
        """The synthetic cell's particle table (feature, z, y, x, angles), or None."""
        if not self.synthetic:
            return None
        import pandas as pd

        return pd.read_csv(self.cell_dir / "particles.csv")

    # -- bookkeeping ---------------------------------------------------------------------------
    def save(self, **changes: Any) -> None:
        """Update ``project.json``."""
        self.config.update(changes)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.config, indent=2))
        tmp.replace(self.config_path)

    def __repr__(self) -> str:
        if not self.exists:
            return f"Project({self.root}: empty)"
        what = (f"synthetic cell {tuple(self.config['synthetic']['shape'])}, seed "
                f"{self.config['synthetic']['seed']}" if self.synthetic else str(self.raw_path))
        pre = "preprocessed" if self.pre_path.is_file() else "not preprocessed yet"
        return f"Project({self.root}: {what}, {self.apix:g} Å/voxel, {pre})"


def start_project(workdir: str | Path, tomogram: str | Path | None = None, *,
                  shape: tuple[int, int, int] = (64, 256, 256), seed: int = 0,
                  apix: float | None = None, bin_factor: int = 1) -> Project:
    """Choose the project's tomogram: your MRC file, or (None) the built-in synthetic cell.

    A project folder belongs to one tomogram: if `workdir` was started for another one (another
    file, binning, or synthetic `shape`/`seed`), this raises instead of mixing their files. The
    synthetic cell is written to ``cell/`` (Binder's ``postBuild`` makes the default one ahead of
    time). Your own file is not copied; with `bin_factor` > 1 it is binned into ``binned.mrc`` (the
    paper annotated tomograms binned 2-8 times).
    """
    project = Project(workdir)
    if tomogram is None:
        shape = tuple(int(n) for n in shape)
        wanted = {"synthetic": {"shape": list(shape), "seed": int(seed)}}
    else:
        source = Path(tomogram).expanduser().resolve()
        if not source.is_file():
            raise FileNotFoundError(f"TOMOGRAM = {str(tomogram)!r} does not exist (a relative path "
                                    f"starts from {Path.cwd()})")
        wanted = {"synthetic": None, "source": str(source), "bin": int(bin_factor),
                  "apix_override": None if apix is None else float(apix)}
    if project.exists:
        if {k: project.config.get(k) for k in wanted} != wanted:
            raise ValueError(
                f"{project.root} already holds the project of another tomogram ({project!r}); its "
                "training sets and networks belong to that one. Choose another WORKDIR for this "
                f"tomogram, or delete {project.root} to start again.")
        if tomogram is None and not project.raw_path.is_file():  # the cell was deleted: make it again
            write_cell(tw.synthetic.make_cell(shape, seed=seed), project.cell_dir)
            project.save(preprocessing=None)
        return project

    project.root.mkdir(parents=True, exist_ok=True)
    if tomogram is None:
        path = project.cell_dir / "tomogram.mrc"
        premade = seed == 0 and _shape_of(path) == shape and (project.cell_dir / "particles.csv").is_file()
        if not premade:  # Binder's postBuild ran `tomowidgets synth` with the defaults
            print(f"making a synthetic cell of {shape} voxels (seed {seed}) in {project.cell_dir} ...")
            write_cell(tw.synthetic.make_cell(shape, seed=seed), project.cell_dir)
        apix_value = tw.read_tomogram(path, mmap=True).apix
    else:
        original = tw.read_tomogram(source, mmap=True, apix=apix)
        path, apix_value = source, original.apix
        if int(bin_factor) > 1:
            path = project.root / "binned.mrc"
            print(f"binning {source.name} by {bin_factor} into {path} ...")
            tw.write_tomogram(path, tw.bin(original, int(bin_factor), progress=False))
            apix_value = original.apix * int(bin_factor)
    project.save(**wanted, tomogram=str(path), apix=float(apix_value), preprocessing=None)
    return project


def open_project(workdir: str | Path, *, shape: tuple[int, int, int] = (64, 256, 256),
                 seed: int = 0) -> Project:
    """The project in `workdir`; if there is none yet, the synthetic cell, preprocessed (as 01 does)."""
    project = Project(workdir)
    if not project.exists:
        print(f"{project.root} holds no project yet: making the synthetic cell and preprocessing it "
              "with the paper's defaults, as notebook 01 does")
        project = start_project(workdir, shape=shape, seed=seed)
    require_preprocessed(project)
    return project


def require_preprocessed(project: Project) -> Path:
    """``preprocessed.mrc``, made with the paper's defaults (20 Å, 4000 Å, ±3 sd) if missing."""
    if project.preprocessing is None or not project.pre_path.is_file():
        params = {"lowpass": 20.0, "highpass": 4000.0, "clamp": 3.0}
        print(f"preprocessing {project.raw_path.name} with {params} ...")
        tw.preprocess(project.raw(), **params, out=project.pre_path, progress=False)
        record_preprocessing(project, params)
    return project.pre_path


def record_preprocessing(project: Project, params: dict[str, Any]) -> None:
    """Note in ``project.json`` how ``preprocessed.mrc`` was made (stored with every training set)."""
    project.save(preprocessing=preprocessing_params(project.apix, **params))


def decoys_for(truth: dict[str, np.ndarray], feature: str) -> np.ndarray:
    """Voxels of every other labelled structure: where the simulated annotator clicks negatives."""
    return np.any([mask for name, mask in truth.items() if name != feature], axis=0)


def require_training_sets(project: Project, features: list[str], *, n_positive: int = 10,
                          n_negative: int = 100, seed: int = 0) -> dict[str, tw.TrainingSet]:
    """Each feature's training set; missing ones come from the synthetic ground truth (as 02 does)."""
    sets, truth, pre = {}, None, None
    for feature in features:
        path = project.tiles(feature)
        if path.is_file():
            sets[feature] = tw.TrainingSet.load(path)
            continue
        if not project.synthetic:
            raise FileNotFoundError(f"{path} does not exist: annotate {feature!r} in notebook "
                                    "02_training_set.ipynb first (your own tomogram has no ground truth)")
        if truth is None:
            truth, pre = project.truth(), project.pre()
        print(f"{path.name} is missing: the simulated annotator picks {n_positive} positive and "
              f"{n_negative} negative tiles from the ground truth, as 02 does")
        ts = tw.TrainingSet.from_ground_truth(pre, truth[feature], feature=feature, rng=seed,
                                              n_positive=n_positive, n_negative=n_negative,
                                              decoys=decoys_for(truth, feature),
                                              preprocessing=project.preprocessing)
        ts.save(path)
        sets[feature] = ts
    return sets


def require_networks(project: Project, features: list[str], *, epochs: int = 5,
                     seed: int = 0) -> dict[str, Path]:
    """Each feature's ``.keras`` file; missing ones are trained for `epochs` (a quick stand-in for 03)."""
    missing = [f for f in features if not project.network(f).is_file()]
    # competing, as 03 trains them
    sets = tw.trainset.competing(require_training_sets(project, features, seed=seed)) if missing else {}
    for feature in missing:
        ts = sets[feature]
        print(f"{project.network(feature).name} is missing: training a quick stand-in ({epochs} "
              "epochs; notebook 03 trains the real one) ...")
        net = tw.FeatureNet(feature, seed=seed)
        net.train(ts, epochs=epochs, progress=False)
        if net.amplitude is None:
            raise RuntimeError(f"the quick {feature} network learned nothing in {epochs} epochs; "
                               "run notebook 03 to train it properly")
        net.save(project.network(feature))
    return {f: project.network(f) for f in features}


def require_scores(project: Project, features: list[str], *, epochs: int = 5,
                   seed: int = 0) -> dict[str, tw.Tomogram]:
    """Each feature's calibrated score map (memory-mapped); missing or outdated ones are computed.

    A score map is outdated when ``preprocessed.mrc`` or the network is newer (as 04 makes them).
    """
    pre = project.pre()
    nets = require_networks(project, features, epochs=epochs, seed=seed)
    missing = [f for f in features if _older(project.scores(f), project.pre_path, nets[f])]
    if missing:
        print(f"applying the {missing} network(s) to {project.pre_path.name} ...")
        project.scores_dir.mkdir(parents=True, exist_ok=True)
        tw.apply([nets[f] for f in missing], pre, out=project.scores_dir, progress=False)
    return {f: tw.read_tomogram(project.scores(f), mmap=True) for f in features}


def read_labels(cell_dir: str | Path) -> dict[str, np.ndarray]:
    """The labels ``{feature: bool volume}`` that ``tomowidgets synth`` wrote into `cell_dir`."""
    return {p.stem: tw.read_tomogram(p).data > 0 for p in sorted((Path(cell_dir) / "labels").glob("*.mrc"))}


def other_cell(project: Project, name: str = "unseen_cell") -> Path:
    """A second synthetic cell like the project's (next seed) in ``<name>/``, made once; its tomogram."""
    cell_dir = project.root / name
    path = cell_dir / "tomogram.mrc"
    if not (path.is_file() and (cell_dir / "particles.csv").is_file()):
        config = project.config["synthetic"]
        print(f"making a second synthetic cell (seed {config['seed'] + 1}) in {cell_dir} ...")
        write_cell(tw.synthetic.make_cell(tuple(config["shape"]), seed=config["seed"] + 1), cell_dir)
    return path


def _older(path: Path, *sources: Path) -> bool:
    """Whether `path` is missing or older than any of `sources`."""
    return not path.is_file() or any(path.stat().st_mtime < s.stat().st_mtime for s in sources)


def _shape_of(path: Path) -> tuple[int, ...] | None:
    try:
        return tuple(tw.read_tomogram(path, mmap=True, check_values=False).shape)
    except (OSError, ValueError):
        return None


# -- pictures ------------------------------------------------------------------------------------
def label_slice(masks: dict[str, np.ndarray], z: int) -> tuple[np.ndarray, list[str]]:
    """Slice `z` of boolean masks ``{name: (z, y, x)}`` as one label image (0 = none, i = names[i-1])."""
    names = list(masks)
    labels = np.zeros(next(iter(masks.values())).shape[1:], np.uint8)
    for i, name in enumerate(names, 1):
        labels[np.asarray(masks[name][z], bool)] = i
    return labels, names


def show_labels(ax, image: np.ndarray, labels: np.ndarray, names: list[str], *,  # noqa: ANN001
                title: str = "", alpha: float = 0.55, legend: bool = True) -> None:
    """Draw a preprocessed slice in grey and `labels` (0 = none, i = names[i-1]) in colour on `ax`.

    Colours are those of the widgets (``tomowidgets.widgets.PALETTE``, in the order of `names`).
    """
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    from tomowidgets.widgets import PALETTE

    colours = [to_rgba(PALETTE[i % len(PALETTE)]) for i in range(len(names))]
    rgba = np.zeros((*labels.shape, 4))
    for i, colour in enumerate(colours, 1):
        rgba[labels == i] = (*colour[:3], alpha)
    ax.imshow(image, cmap="gray", vmin=-3, vmax=3)
    ax.imshow(rgba, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    if legend:
        ax.legend([Patch(color=c) for c in colours], names, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  fontsize="small", frameon=False)
