"""Synthetic cells: phantom tomograms with exact ground truth, for tutorials, tests and benchmarks.

:func:`make_cell` lays out a patch of cytoplasm (cell membrane, vesicles, a mitochondrion,
microtubules, ribosomes, proteasomes, gold fiducials), images it like a cryo-electron tomogram
(missing wedge, CTF, noise) and returns it with per-feature label volumes and a particle table.

Contrast convention: :attr:`SyntheticCell.density` is the object (dense material positive: ice 0,
protein and membranes ~1, gold 8); :attr:`SyntheticCell.tomogram` is what a reconstruction shows,
dense material **dark** (negative), as in real tomograms.

Examples
--------
>>> from tomowidgets.synthetic import make_cell
>>> cell = make_cell(shape=(32, 128, 128), seed=0)
>>> cell.tomogram.data.shape, cell.tomogram.data.dtype.name
((32, 128, 128), 'float32')
>>> sorted(cell.labels)
['double_membrane', 'gold', 'membrane', 'microtubule', 'proteasome', 'ribosome']
>>> list(cell.particles.columns)
['feature', 'z', 'y', 'x', 'rot', 'tilt', 'psi']
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import pandas as pd

from tomowidgets._rotation import zyz_matrix
from tomowidgets._validate import check_positive
from tomowidgets.io import Tomogram, atomic_path, write_tomogram
from tomowidgets.synthetic._imaging import (
    DEFAULT_DEFOCUS,
    DEFAULT_SNR,
    _check_shape,
    _image,
    ctf_curve,
    image_volume,
    missing_wedge_mask,
)
from tomowidgets.synthetic._phantoms import (
    apoferritin_template,
    proteasome_template,
    ribosome_template,
    spliceosome_template,
)
from tomowidgets.synthetic._scene import FEATURES, build_scene
from tomowidgets.synthetic._tiltseries import (
    DEFAULT_ALIGNMENT_ERROR,
    DEFAULT_DOSE,
    DEFAULT_TILT_STEP,
    _image_tilt_series,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "DEFAULT_DEFOCUS",
    "DEFAULT_SNR",
    "FEATURES",
    "IMAGING_MODELS",
    "PARTICLE_COLUMNS",
    "SyntheticCell",
    "apoferritin_template",
    "ctf_curve",
    "image_volume",
    "make_cell",
    "missing_wedge_mask",
    "proteasome_template",
    "reference_map",
    "ribosome_template",
    "spliceosome_template",
    "write_cell",
    "zyz_matrix",
]

#: The imaging models of :func:`make_cell`: "fourier" (wedge and CTF as exact masks of the volume's
#: Fourier transform, :func:`image_volume`) and "tilt_series" (a tilt series projected in real space,
#: per-image CTF, dose and noise, reconstructed by weighted back-projection).
IMAGING_MODELS = ("fourier", "tilt_series")
#: Columns of :attr:`SyntheticCell.particles`.
PARTICLE_COLUMNS = ("feature", "z", "y", "x", "rot", "tilt", "psi")


class _Imaging(TypedDict):
    """The imaging parameters :func:`make_cell` passes to ``_image`` and keeps in the cell."""

    tilt_range: float
    defocus: float
    ctf: bool
    phase_flip: bool
    voltage: float
    cs: float
    amplitude_contrast: float


@dataclass(frozen=True, repr=False, eq=False)
class SyntheticCell:
    """A synthetic tomogram and its ground truth. Arrays are read-only; all share one voxel grid.

    Attributes
    ----------
    tomogram : Tomogram
        The noisy reconstruction, ``(z, y, x)`` float32 at `apix`; dense material is dark (< 0).
    density : ndarray of float32, shape (z, y, x)
        Noise-free object density before imaging; dense is positive (ice 0, protein ~1, gold 8).
    noiseless : ndarray of float32, shape (z, y, x)
        `density` through the same missing wedge and CTF, without noise (``tomogram - noiseless``
        is the noise).
    labels : dict of str to ndarray of bool, shape (z, y, x)
        One mask per feature in :data:`FEATURES` (possibly empty), then ``"apoferritin"`` and
        ``"spliceosome"`` in a cell made with `distractors`; masks do not overlap.
        ``"membrane"``: the ±2.5 nm band around each single bilayer (cell membrane, vesicles);
        ``"double_membrane"``: the same bands around both bilayers of the mitochondrion (not its
        interior); ``"microtubule"``: the tube wall, radius 7.5-12.5 nm (the lumen is not
        labelled); ``"ribosome"``/``"proteasome"``: the particle envelope (template above the
        density that encloses its molecular volume) at the placed orientation; ``"gold"``: the
        10 nm bead.
    particles : pandas.DataFrame
        One row per ribosome, proteasome and gold bead, columns :data:`PARTICLE_COLUMNS`:
        ``feature`` (str), ``z, y, x`` (float, integer-valued voxel where the template's centre
        voxel ``n // 2`` lies) and ``rot, tilt, psi`` (float, RELION ZYZ Euler angles in degrees;
        0 for gold). The density at offset ``r = (x, y, z)`` Å from a particle's centre is
        ``s * template(R @ r)`` with ``R = zyz_matrix(rot, tilt, psi)`` (RELION's matrix is
        ``R.T``: the reference rotated as RELION rotates it onto a particle), `template` =
        :func:`ribosome_template` or :func:`proteasome_template` at `apix`, and ``s`` making the
        mean density inside the envelope 1 (about 1.5 for the ribosome). A proteasome's centre is
        its empty inner chamber, so it lies outside its own label.
    apix : float
        Voxel size in Å.
    seed : int or None
        The seed used (None when a Generator was passed).
    snr : float or None
        Signal variance / noise variance after wedge and CTF (None: no noise).
    tilt_range : float
        Largest tilt in degrees (tilt axis y).
    defocus : float
        Defocus in µm (positive = underfocus).
    ctf : bool
        Whether the CTF was applied.
    phase_flip : bool
        Whether the CTF was phase-flipped.
    voltage : float
        Accelerating voltage in kV.
    cs : float
        Spherical aberration in mm.
    amplitude_contrast : float
        Amplitude contrast fraction.
    imaging : str
        The imaging model, one of :data:`IMAGING_MODELS`.
    tilt_step : float
        Tilt increment in degrees ("tilt_series" only).
    dose : float
        Total exposure of the tilt series in e/Å² ("tilt_series" only).
    alignment_error : float
        Residual misalignment of each tilt image, sd in voxels ("tilt_series" only).
    varied : bool
        Whether the layout is a varied one (several mitochondria, tilted microtubules, crowding).
    distractors : bool
        Whether apoferritin- and spliceosome-like complexes were added (``labels`` then has them too).
    """

    tomogram: Tomogram
    density: NDArray[np.float32]
    noiseless: NDArray[np.float32]
    labels: dict[str, NDArray[np.bool_]]
    particles: pd.DataFrame
    apix: float
    seed: int | None
    snr: float | None
    tilt_range: float
    defocus: float
    ctf: bool
    phase_flip: bool
    voltage: float
    cs: float
    amplitude_contrast: float
    imaging: str = "fourier"
    tilt_step: float = DEFAULT_TILT_STEP
    dose: float = DEFAULT_DOSE
    alignment_error: float = DEFAULT_ALIGNMENT_ERROR
    varied: bool = False
    distractors: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        """Size in voxels, ``(z, y, x)``."""
        return self.tomogram.shape

    def __repr__(self) -> str:
        z, y, x = self.shape
        counts = self.particles["feature"].value_counts()
        parts = ", ".join(f"{n} {name}" for name, n in counts.items())
        cover = ", ".join(f"{name} {100 * float(m.mean()):.1f}%" for name, m in self.labels.items())
        ctf = (f"CTF {self.defocus:g} µm{' phase-flipped' if self.phase_flip else ''}"
               if self.ctf else "no CTF")
        noise = f"snr={self.snr:g}" if self.snr is not None else "no noise"
        tilts = (f"±{self.tilt_range:g}° tilts" if self.imaging == "fourier" else
                 f"WBP of ±{self.tilt_range:g}° tilts in {self.tilt_step:g}° steps, {self.dose:g} e/Å²")
        return (f"SyntheticCell(shape=(z={z}, y={y}, x={x}), apix={self.apix:g} Å, seed={self.seed}, "
                f"{'varied layout, ' if self.varied else ''}{'distractors, ' if self.distractors else ''}"
                f"{noise}, {tilts}, {ctf}; particles: {parts or 'none'}; "
                f"labelled voxels: {cover})")


def make_cell(
    shape: tuple[int, int, int] = (64, 256, 256),
    apix: float = 10.0,
    seed: int | np.random.Generator | None = 0,
    *,
    snr: float | None = DEFAULT_SNR,
    tilt_range: float = 60.0,
    defocus: float = DEFAULT_DEFOCUS,
    ctf: bool = True,
    phase_flip: bool = False,
    voltage: float = 300.0,
    cs: float = 2.7,
    amplitude_contrast: float = 0.07,
    imaging: str = "fourier",
    tilt_step: float = DEFAULT_TILT_STEP,
    dose: float = DEFAULT_DOSE,
    alignment_error: float = DEFAULT_ALIGNMENT_ERROR,
    varied: bool = False,
    distractors: bool = False,
) -> SyntheticCell:
    """Build a synthetic cellular tomogram with exact labels and a particle table.

    The cell holds a cell membrane (a large sphere crossing the field, so its edge is a gently
    curved line in every slice), vesicles (12-35 nm ellipsoids, one bilayer: two leaflets 4 nm
    apart), a mitochondrion-like organelle (two concentric bilayers 10-16 nm apart), microtubules
    (25 nm hollow tubes of 13 protofilaments, near the xy plane, crossing the field), 70S
    ribosomes (the :func:`ribosome_template` map) and 20S-proteasome-like barrels
    (:func:`proteasome_template`) in random orientations, and 10 nm gold beads. Object counts
    scale with the field of view and the free cytoplasm volume (about 35 ribosomes,
    15 proteasomes, 5 vesicles, 3 microtubules and 4 beads at the default size, a few of each at
    32 × 128 × 128); nothing overlaps.

    With ``imaging="fourier"`` (the default) the density is imaged by :func:`image_volume`: missing
    wedge for ±`tilt_range` tilts about y, CTF, then noise (also through the wedge) at `snr`. With
    ``imaging="tilt_series"`` it is projected in real space at every `tilt_step` up to
    ±`tilt_range` in dose-symmetric order; each image gets its CTF (with the defocus gradient across
    the tilted slab), the exposure filter of the dose so far, a random misalignment and shot noise,
    and the series is reconstructed by weighted back-projection. The two models differ as real
    reconstructions differ from an idealised one (streaks, a soft wedge, mixed CTFs), so a network
    trained on one and tested on the other shows what it learned of the feature rather than of the
    simulator.

    Parameters
    ----------
    shape : tuple of 3 ints, default (64, 256, 256)
        Volume size ``(z, y, x)`` in voxels, each >= 32. z is the slab thickness.
    apix : float, default 10.0
        Voxel size in Å; all objects keep their physical size (more voxels per object at small
        `apix`, more objects per volume at large `apix`).
    seed : int or numpy.random.Generator or None, default 0
        Randomness for the layout and the noise. The same int gives identical arrays.
    snr : float or None, default 0.5
        Signal variance / noise variance over the volume, after wedge and CTF; None for no noise.
        At 0.5 single slices look grainy, like real tomograms binned to ~10 Å, yet membranes,
        microtubules and ribosomes stay clearly visible after a 20 Å low-pass (the paper's
        preprocessing), so a small CNN has something to learn; proteasomes are harder. The
        signal variance is dominated by membranes and includes the gold (about a sixth at the
        default size), so small particles have a lower SNR of their own.
    tilt_range : float, default 60.0
        Largest tilt angle in degrees, in ``(0, 90]``; 90 means no missing wedge.
    defocus : float, default 3.0
        Defocus in µm, positive = underfocus (first CTF zero at ~24 Å at 300 kV).
    ctf : bool, default True
        Apply the CTF; False gives ``-density`` through the missing wedge.
    phase_flip : bool, default False
        Use a phase-flipped CTF, ``-|CTF|``.
    voltage : float, default 300.0
        Accelerating voltage in kV.
    cs : float, default 2.7
        Spherical aberration in mm.
    amplitude_contrast : float, default 0.07
        Amplitude contrast fraction, in ``[0, 1)``.
    imaging : {"fourier", "tilt_series"}, default "fourier"
        The imaging model (see above).
    tilt_step : float, default 3.0
        Tilt increment in degrees ("tilt_series" only).
    dose : float, default 120.0
        Total exposure of the series in e/Å², spread evenly over the tilts ("tilt_series" only;
        0 for no radiation damage).
    alignment_error : float, default 0.3
        Residual misalignment of each tilt image, sd in voxels along y and x ("tilt_series" only).
    varied : bool, default False
        Vary what real cells vary, so that a network trained on the cell learns the feature rather
        than one instance of it: about three smaller mitochondria whose membranes lie 7-22 nm apart
        (instead of one, 10-16 nm), microtubules up to 30° out of the xy plane (instead of 6°) and
        1.5 times as many ribosomes and proteasomes. The same seed gives another layout than
        with ``varied=False``.
    distractors : bool, default False
        Also fill free cytoplasm with complexes that a ribosome network has never been shown:
        apoferritin-like shells (12 nm, :func:`apoferritin_template`) and ribosome-sized,
        spliceosome-like complexes (3 MDa, :func:`spliceosome_template`), labelled
        ``"apoferritin"`` and ``"spliceosome"`` and listed in `particles`. They are placed after
        everything else, which lies where it lies without them; the noise differs.

    Returns
    -------
    SyntheticCell
        Tomogram, density, noise-free image, labels, particle table and these parameters.

    Raises
    ------
    ValueError
        If `shape` is not 3 ints >= 32, `apix`/`snr`/`defocus`/`voltage` is not positive,
        `tilt_range` is outside ``(0, 90]``, `cs` < 0, `amplitude_contrast` outside ``[0, 1)``,
        `imaging` is unknown, or `tilt_step`, `dose` or `alignment_error` is out of range.

    Notes
    -----
    A 64 × 256 × 256 cell takes about 2 s on two CPU cores with the Fourier model, 7 s with the
    tilt series.
    """
    shape = _check_shape(shape)
    apix = check_positive(apix, "apix")
    if snr is not None:
        snr = check_positive(snr, "snr")
    is_int = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
    if not (seed is None or isinstance(seed, np.random.Generator) or (is_int and seed >= 0)):
        raise ValueError(
            f"`seed` must be an integer >= 0, a numpy Generator or None, got {seed!r}; "
            "e.g. seed=0 (the same seed gives the same cell)"
        )
    rng = np.random.default_rng(seed)
    imaging_params: _Imaging = dict(tilt_range=tilt_range, defocus=defocus, ctf=bool(ctf),
                             phase_flip=bool(phase_flip), voltage=voltage, cs=cs,
                             amplitude_contrast=amplitude_contrast)
    if imaging not in IMAGING_MODELS:
        raise ValueError(f"`imaging` must be one of {IMAGING_MODELS}, got {imaging!r}")
    tilt_step = check_positive(tilt_step, "tilt_step")

    def image(volume: NDArray[np.float32], noise_snr: float | None, noise_rng: np.random.Generator | None,
              ) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        if imaging == "fourier":
            return _image(volume, apix, snr=noise_snr, rng=noise_rng, **imaging_params)
        return _image_tilt_series(volume, apix, tilt_step=tilt_step, dose=dose,
                                  alignment_error=alignment_error, snr=noise_snr, rng=noise_rng,
                                  **imaging_params)

    # Check the imaging parameters on a tiny volume before spending time on the layout.
    image(np.zeros((2, 2, 2), np.float32), None, None)

    density, labels, rows = build_scene(shape, apix, rng, varied=bool(varied), distractors=bool(distractors))
    noiseless, noise = image(density, snr, rng)
    data = noiseless if noise is None else noiseless + noise
    for array in (density, noiseless, data, *labels.values()):
        array.flags.writeable = False
    particles = pd.DataFrame(rows, columns=list(PARTICLE_COLUMNS))
    particles = particles.astype({c: np.float64 for c in PARTICLE_COLUMNS[1:]})
    particles["feature"] = particles["feature"].astype(object)
    return SyntheticCell(
        tomogram=Tomogram(data, apix), density=density, noiseless=noiseless, labels=labels,
        particles=particles, apix=apix,
        seed=None if seed is None or isinstance(seed, np.random.Generator) else int(seed),
        snr=snr, imaging=imaging, tilt_step=tilt_step, dose=float(dose),
        alignment_error=float(alignment_error), varied=bool(varied), distractors=bool(distractors),
        **imaging_params,
    )


def reference_map(cell: SyntheticCell, box: int) -> NDArray[np.float32]:
    """The true ribosome of `cell` in a ``box``³ box, imaged as in the cell but without the wedge.

    For a ``"tilt_series"`` cell, the box is imaged by the same tilt-series model with tilts over
    ±90° and no misalignment.

    This is what a perfect subtomogram average of the cell's ribosomes converges to: the 4V5D map
    at the cell's voxel size, with the cell's contrast and CTF (phase-flipped or not), centred,
    in the reference pose (rot = tilt = psi = 0), no noise and full angular coverage. Compare an
    average with it using :func:`tomowidgets.metrics.fsc_resolution`.

    Parameters
    ----------
    cell : SyntheticCell
        The cell whose voxel size, contrast and CTF to use.
    box : int
        Box edge in voxels; the template is cropped or zero-padded to it.

    Returns
    -------
    ndarray of float32, shape (box, box, box)
    """
    template = ribosome_template(cell.apix)
    n = template.shape[0]
    full = np.zeros((max(n, box),) * 3, np.float32)
    o = full.shape[0] // 2 - n // 2
    full[o:o + n, o:o + n, o:o + n] = template
    o = full.shape[0] // 2 - box // 2
    boxed = full[o:o + box, o:o + box, o:o + box]
    if cell.imaging == "tilt_series":  # the same optics and dose, tilts all round, nothing misaligned
        noiseless, _ = _image_tilt_series(
            boxed, cell.apix, tilt_range=90.0, tilt_step=cell.tilt_step, dose=cell.dose,
            alignment_error=0.0, gradient=False, isolated=True, snr=None, rng=None, ctf=cell.ctf,
            defocus=cell.defocus, phase_flip=cell.phase_flip, voltage=cell.voltage, cs=cell.cs,
            amplitude_contrast=cell.amplitude_contrast)
        return noiseless
    return image_volume(boxed, cell.apix, tilt_range=90.0, snr=None, ctf=cell.ctf, defocus=cell.defocus,
                        phase_flip=cell.phase_flip, voltage=cell.voltage, cs=cell.cs,
                        amplitude_contrast=cell.amplitude_contrast)


def write_cell(cell: SyntheticCell, out_dir: str | os.PathLike) -> Path:
    """Write a cell into `out_dir`: ``tomogram.mrc``, ``density.mrc``, ``labels/<feature>.mrc``
    (int8 masks) and ``particles.csv`` (voxel ``z, y, x`` from 0, angles in degrees), atomically.

    Returns
    -------
    Path
        `out_dir`.
    """
    out_dir = Path(out_dir)
    apix = cell.tomogram.apix
    out_dir.mkdir(parents=True, exist_ok=True)
    write_tomogram(out_dir / "tomogram.mrc", cell.tomogram, labels=["tomowidgets synth: noisy"])
    write_tomogram(out_dir / "density.mrc", cell.density, apix=apix, labels=["noise-free density"])
    for feature, mask in cell.labels.items():
        write_tomogram(out_dir / "labels" / f"{feature}.mrc", mask, apix=apix, dtype=np.int8,
                       labels=[f"ground truth: {feature}"])
    with atomic_path(out_dir / "particles.csv") as tmp:
        cell.particles.to_csv(tmp, index=False)
    return out_dir
