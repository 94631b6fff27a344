"""2D classification of particle z-projections (re-exported by :mod:`tomowidgets.average`).

Each particle's projection along z is aligned in-plane (rotations every `angular_step` degrees,
translations by FFT cross-correlation) to every class average and joins the class it matches best
(normalised cross-correlation, low-passed); class averages are then recomputed from the aligned
members, as in k-means. Classes start from k-means++ seeds on rotation- and translation-invariant
features (the rotationally averaged power spectrum and intensity profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.fft
import scipy.ndimage as ndi

from tomowidgets._validate import check_positive, check_positive_int
from tomowidgets.average._align import WORKERS, hermitian_weights
from tomowidgets.average._checks import check_angle_step, check_cubic_stack, normalise_particles

if TYPE_CHECKING:
    from collections.abc import Iterable

    from numpy.typing import ArrayLike, NDArray

#: Float values in one batch of correlation maps.
_BATCH_VALUES = 8_000_000


@dataclass(frozen=True, repr=False, eq=False)
class Classification2D:
    """Result of :func:`classify_2d`; arrays are read-only. Classes are sorted by size, largest first.

    Attributes
    ----------
    averages : ndarray of float32, shape (n_classes, box, box)
        Class averages of the aligned z-projections ``(y, x)``, in the particles' contrast
        (normalised projections: mean 0, sd 1 per particle); all zeros for an empty class.
    assignments : ndarray of int, shape (n,)
        Class of each particle, an index into `averages`.
    angles : ndarray of float, shape (n,)
        In-plane angle in degrees: rotating particle ``i`` by ``angles[i]`` about z
        (``rotate_volume(subvolume, angles[i], 0, 0)``, counter-clockwise in x-y) and centring it by
        `shifts` makes its projection match its class average.
    shifts : ndarray of float32, shape (n, 2)
        Where the particle's centre lies relative to the box centre, ``(y, x)`` voxels.
    scores : ndarray of float32, shape (n,)
        Normalised cross-correlation with the class average (-1..1; low-passed).
    counts : ndarray of int, shape (n_classes,)
        Particles per class.
    """

    averages: NDArray[np.float32]
    assignments: NDArray[np.intp]
    angles: NDArray[np.float64]
    shifts: NDArray[np.float32]
    scores: NDArray[np.float32]
    counts: NDArray[np.intp]

    def keep(self, classes: Iterable[int]) -> NDArray[np.bool_]:
        """Boolean mask (n,) of the particles in `classes`, e.g. ``subvolumes[result.keep([0, 2])]``."""
        return np.isin(self.assignments, np.asarray(list(classes), dtype=np.intp))

    def __repr__(self) -> str:
        k, box = self.averages.shape[:2]
        counts = ", ".join(str(int(c)) for c in self.counts)
        return (f"Classification2D({len(self.assignments)} particles, {k} classes of {box}×{box}, "
                f"counts [{counts}], mean score {float(self.scores.mean()):.3f})")


def _rotate2d(image: NDArray[np.float32], angle: float, shift: NDArray[np.floating] | None = None
              ) -> NDArray[np.float32]:
    """``out(r) = image(R(angle) @ r + shift)``, R counter-clockwise in (x, y), about voxel n // 2."""
    a = np.deg2rad(angle)
    m = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # R in (y, x) order
    c = np.array(image.shape, dtype=np.float64) // 2
    offset = c - m @ c + (0.0 if shift is None else np.asarray(shift, dtype=np.float64))
    return ndi.affine_transform(image, m, offset=offset, order=1, mode="constant", cval=0.0,
                                prefilter=False).astype(np.float32, copy=False)


def _radius(n: int) -> NDArray[np.float32]:
    k = (scipy.fft.fftfreq(n) * n).astype(np.float32)
    kx = (scipy.fft.rfftfreq(n) * n).astype(np.float32)
    return np.sqrt(k[:, None] ** 2 + kx[None, :] ** 2)


def _power(spec: NDArray[np.complex64]) -> NDArray[np.float32]:
    """Sum of squares over the full spectrum, from rfft2-layout spectra (..., n, n // 2 + 1)."""
    return (np.abs(spec) ** 2 * hermitian_weights(spec.shape[-2])).sum(axis=(-2, -1))


def _features(images: NDArray[np.float32], filt: NDArray[np.float32]) -> NDArray[np.float64]:
    """Rotation-invariant features: radial profiles of the power spectrum and of the image."""
    n = images.shape[-1]
    spec = scipy.fft.rfft2(images, workers=WORKERS) * filt
    shell = np.rint(_radius(n)).astype(np.intp).ravel()
    keep = (filt.ravel() > 0) & (shell > 0)
    power = np.abs(spec.reshape(len(images), -1)[:, keep]) ** 2
    counts = np.bincount(shell[keep])
    used = counts > 0
    prof_f = np.stack([np.bincount(shell[keep], p, len(counts))[used] / counts[used] for p in power])
    prof_f = np.log(prof_f + 1e-6 * prof_f.mean())
    ax = np.arange(n) - n // 2
    ring = np.rint(np.hypot(ax[:, None], ax[None, :])).astype(np.intp).ravel()
    inner = ring < n // 2
    rc = np.bincount(ring[inner])
    smooth = scipy.fft.irfft2(spec, s=(n, n), workers=WORKERS).reshape(len(images), -1)
    prof_r = np.stack([np.bincount(ring[inner], s[inner], len(rc)) / rc for s in smooth])
    feats = np.concatenate([prof_f, prof_r], axis=1)
    feats = feats - feats.mean(axis=0)
    return feats / np.maximum(feats.std(axis=0), 1e-12)


def _kmeans(feats: NDArray[np.float64], k: int, rng: np.random.Generator, rounds: int = 20
            ) -> NDArray[np.intp]:
    """k-means++ seeding then Lloyd iterations; returns labels (n,)."""
    centres = [feats[rng.integers(len(feats))]]
    for _ in range(1, k):
        d2 = np.min([((feats - c) ** 2).sum(axis=1) for c in centres], axis=0)
        prob = d2 / d2.sum() if d2.sum() > 0 else np.full(len(feats), 1.0 / len(feats))
        centres.append(feats[rng.choice(len(feats), p=prob)])
    cent = np.array(centres)
    labels = np.zeros(len(feats), dtype=np.intp)
    for _ in range(rounds):
        labels = ((feats[:, None] - cent[None]) ** 2).sum(axis=2).argmin(axis=1)
        cent = np.array([feats[labels == j].mean(axis=0) if np.any(labels == j) else cent[j]
                         for j in range(k)])
    return labels


def classify(images: NDArray[np.float32], n_classes: int, *, iterations: int, angular_step: float,
             max_shift: float, rng: np.random.Generator) -> Classification2D:
    """Align and classify normalised projections (n, b, b); see the module docstring."""
    n, b = len(images), images.shape[-1]
    edge = max(2.0, b / 12)
    ax = np.arange(b, dtype=np.float32) - b // 2
    disc = np.clip((np.hypot(ax[:, None], ax[None, :]) - (b / 2 - edge - 1)) / edge, 0, 1)
    mask = (0.5 + 0.5 * np.cos(np.pi * disc)).astype(np.float32)
    r = _radius(b)
    cutoff = b / 4
    filt = (0.5 + 0.5 * np.cos(np.pi * np.clip((r - cutoff) / 2 + 0.5, 0, 1))).astype(np.float32)
    filt[r < 1.5] = 0.0
    spec = (scipy.fft.rfft2(images, workers=WORKERS) * filt).astype(np.complex64)
    k = (scipy.fft.fftfreq(b) * b)
    sy, sx = np.meshgrid(k, k, indexing="ij")
    window = np.flatnonzero(sy.ravel() ** 2 + sx.ravel() ** 2 <= max_shift**2 + 1e-6)
    steps = np.arange(0.0, 360.0 - 1e-9, 360.0 / max(1, int(round(360.0 / angular_step))))

    # The power of an average includes its members' noise, about sum ||p_i||² / n_c²; it is
    # subtracted in the objective so that small (noisier) classes are not penalised, which would
    # let one class swallow the others.
    mpow = _power(scipy.fft.rfft2(images * mask, workers=WORKERS) * filt) / b**2
    pnorm2 = _power(spec)
    labels = _kmeans(_features(images, filt), n_classes, rng)
    # Start from rotationally averaged cluster means (their angles are not known yet).
    ring = np.rint(np.hypot(ax[:, None], ax[None, :])).astype(np.intp)
    averages = np.zeros((n_classes, b, b), np.float32)
    noise = np.zeros(n_classes, np.float32)
    for j in range(n_classes):
        members = np.flatnonzero(labels == j)
        if members.size == 0:
            members = rng.choice(n, 1)
        mean = images[members].mean(axis=0)
        profile = np.bincount(ring.ravel(), mean.ravel()) / np.bincount(ring.ravel())
        averages[j] = profile[ring]
        noise[j] = mpow[members].sum() / members.size**2
    assign = np.zeros(n, np.intp)
    angles = np.zeros(n)
    shifts = np.zeros((n, 2), np.float32)
    scores = np.zeros(n, np.float32)
    for _ in range(iterations):
        tmpl = np.stack([[_rotate2d(avg * mask, a) for a in steps] for avg in averages])
        tspec = (scipy.fft.rfft2(tmpl, workers=WORKERS) * filt).astype(np.complex64)
        tspec = tspec.reshape((-1,) + tspec.shape[2:])  # (k * A, b, h)
        tpow = _power(tspec)
        penalty = tpow / b**2 - np.repeat(noise, len(steps))
        best = np.zeros(n, np.intp)
        peak = np.zeros(n, np.intp)
        step = max(1, _BATCH_VALUES // (b * b * len(tspec)))
        for p0 in range(0, n, step):
            cc = scipy.fft.irfft2(spec[p0:p0 + step, None] * np.conj(tspec[None]), s=(b, b),
                                  axes=(-2, -1), workers=WORKERS).reshape(-1, len(tspec), b * b)
            cc = cc[..., window]
            # k-means objective, least squares: ||p - T||² = const - (2 <p, T> - ||T||²)
            gain = (2 * cc - penalty[None, :, None]).reshape(len(cc), -1)
            flat = gain.argmax(axis=1)
            best[p0:p0 + step], peak[p0:p0 + step] = np.divmod(flat, len(window))
            top = cc.reshape(len(cc), -1)[np.arange(len(cc)), flat]
            scores[p0:p0 + step] = top * b**2 / np.sqrt(
                pnorm2[p0:p0 + step] * tpow[best[p0:p0 + step]] + 1e-30)
        assign, which = np.divmod(best, len(steps))
        angles = steps[which]
        shifts = np.stack([sy.ravel()[window[peak]], sx.ravel()[window[peak]]], axis=1).astype(np.float32)
        aligned = np.stack([_rotate2d(im, -a, s) for im, a, s in zip(images, angles, shifts, strict=True)])
        spare = list(np.argsort(scores))  # worst-matching particles first, to reseed empty classes
        for j in range(n_classes):
            members = np.flatnonzero(assign == j)
            if members.size == 0:
                members = np.array([spare.pop(0)])
            averages[j] = aligned[members].mean(axis=0)
            noise[j] = mpow[members].sum() / members.size**2
    counts = np.bincount(assign, minlength=n_classes)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(n_classes)
    out = Classification2D(averages=averages[order], assignments=rank[assign], angles=angles,
                           shifts=shifts, scores=scores, counts=counts[order])
    for array in (out.averages, out.assignments, out.angles, out.shifts, out.scores, out.counts):
        array.flags.writeable = False
    return out


def classify_2d(subvolumes: ArrayLike, n_classes: int = 4, *, iterations: int = 10,
                angular_step: float = 10.0, max_shift: float | None = None,
                rng: int | np.random.Generator | None = None) -> Classification2D:
    """Classify particles by their z-projections, aligned in-plane (the paper's cleaning step).

    Each projection (sum over z, normalised to mean 0, sd 1) is rotated in steps of
    `angular_step` and shifted (FFT cross-correlation) against every class average and joins the
    best (least squares, low-passed at ``box / 4`` Fourier shells, half of Nyquist); averages are then
    recomputed from the aligned members, `iterations` times (k-means with alignment). Classes are
    seeded by k-means++ on rotation-invariant radial profiles. Drop bad classes with
    ``subvolumes[result.keep(good)]``.

    Parameters
    ----------
    subvolumes : ndarray of shape (n, box, box, box)
        Particles ``(z, y, x)``, e.g. from ``extract_subvolumes``.
    n_classes : int, default 4
        Number of classes, at most n.
    iterations : int, default 10
        Alignment/assignment rounds.
    angular_step : float, default 10.0
        In-plane rotation step in degrees.
    max_shift : float, optional
        Largest in-plane shift in voxels; default ``box // 6``.
    rng : int or numpy.random.Generator, optional
        Seed for the k-means++ seeding.

    Returns
    -------
    Classification2D
        ``averages`` (n_classes, box, box), ``assignments`` (n,), ``angles`` (n,) in degrees,
        ``shifts`` (n, 2), ``scores`` (n,), ``counts`` (n_classes,); classes sorted by size.

    Raises
    ------
    ValueError
        If `subvolumes` is not a finite (n, box, box, box) stack, n < `n_classes`, a particle is
        constant or a parameter is out of range.
    """
    subvolumes = check_cubic_stack(subvolumes, minimum=1)
    n_classes = check_positive_int(n_classes, "n_classes")
    if n_classes > len(subvolumes):
        raise ValueError(f"`n_classes` must be at most the number of particles ({len(subvolumes)}), "
                         f"got {n_classes}; ask for fewer classes")
    box = subvolumes.shape[-1]
    max_shift = box // 6 if max_shift is None else check_positive(max_shift, "max_shift")
    images = normalise_particles(subvolumes.sum(axis=1, dtype=np.float32), "subvolumes")
    return classify(images, n_classes, iterations=check_positive_int(iterations, "iterations"),
                    angular_step=check_angle_step(angular_step, grid3d=False), max_shift=max_shift,
                    rng=np.random.default_rng(rng))
