"""The iterative gold-standard alignment loop behind :func:`tomowidgets.average.average`.

Orientation convention: ``mats[i]`` (``R``, acting on ``(x, y, z)`` offsets) and ``shifts[i]``
(``t``, voxels ``(z, y, x)``) say that particle ``i`` is ``particle(c + t + r) = map(R @ r)`` around
its box centre ``c``; the particle brought into the map's frame is ``particle(c + t + R.T @ r)``.

Schedule: the two half sets (even and odd indices) never see each other's particles. The first
``iterations // 2`` iterations (at least one) search globally over SO(3) against each half's own
strongly low-passed map (the initial model); then half 2 is brought into half 1's frame once
(alignment of the half maps at the initial model's low-pass only, orientations composed), and the rest
refine locally with a low-pass and FSC weighting that follow the half maps' Fourier shell
correlation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import scipy.fft
from scipy.spatial.transform import Rotation
from tqdm.auto import tqdm

from tomowidgets._rotation import FLIP
from tomowidgets.average import _align as al

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

#: Wiener-like constant added to the summed wedge weights before dividing (in particles).
WIENER = 1.0
#: FSC threshold for the gold-standard resolution.
THRESHOLD = 0.143
#: Cosine edge of the search low-pass, in Fourier shells.
EDGE = 2.0
#: Shells below this are left out of the scores (the DC term and box-sized gradients).
HIGHPASS = 1.5
#: Particles per batch of local-search templates, and rotations per batch of the global grid
#: (bound the memory of the template spectra).
_LOCAL_BATCH = 16
_GLOBAL_BATCH = 128


@dataclass
class Refinement:
    """Raw result of :func:`refine` (wrapped by :class:`tomowidgets.average.AverageResult`)."""

    map: NDArray[np.float32]
    half_maps: NDArray[np.float32]
    shells: NDArray[np.float64]
    fsc: NDArray[np.float64]
    mats: NDArray[np.float64]
    shifts: NDArray[np.float32]
    scores: NDArray[np.float32]
    half: NDArray[np.int8]
    history: list[float]


def fsc_shells(a: NDArray[np.float32], b: NDArray[np.float32]) -> tuple[NDArray[np.float64],
                                                                       NDArray[np.float64]]:
    """FSC of two cubic maps per shell ``0 .. n // 2`` (shell = cycles per box); NaN where undefined."""
    n = a.shape[0]
    fa = scipy.fft.rfftn(a, workers=al.WORKERS)
    fb = scipy.fft.rfftn(b, workers=al.WORKERS)
    shell = np.rint(al.radius_grid(n)).astype(np.intp).ravel()
    w = np.broadcast_to(al.hermitian_weights(n), fa.shape).ravel().astype(np.float64)
    keep = shell <= n // 2
    shell, w = shell[keep], w[keep]
    fa, fb = fa.ravel()[keep], fb.ravel()[keep]
    nb = n // 2 + 1
    cross = np.bincount(shell, w * (fa * np.conj(fb)).real, nb)
    pa = np.bincount(shell, w * np.abs(fa) ** 2, nb)
    pb = np.bincount(shell, w * np.abs(fb) ** 2, nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        curve = cross / np.sqrt(pa * pb)
    return np.arange(nb, dtype=np.float64), curve


def crossing(shells: NDArray[np.float64], curve: NDArray[np.float64], threshold: float) -> float:
    """Shell (interpolated) where `curve` first drops below `threshold`, from shell 1 on.

    NaN counts as below. Returns 0.0 if shell 1 is already below, the last shell if never.
    """
    below = ~(curve[1:] >= threshold)
    if not below.any():
        return float(shells[-1])
    i = int(np.argmax(below)) + 1
    if i == 1:
        return 0.0
    c0, c1 = curve[i - 1], curve[i]
    if not np.isfinite(c1):
        return float(shells[i - 1])
    return float(shells[i - 1] + (c0 - threshold) / (c0 - c1) * (shells[i] - shells[i - 1]))


def reconstruct(parts: NDArray[np.float32], mats: NDArray[np.float64], shifts: NDArray[np.float32],
                sym: NDArray[np.float64], tilt_range: float | None
                ) -> tuple[NDArray[np.complex64], NDArray[np.float32]]:
    """Sum of the aligned particles' spectra and of their rotated wedge weights (with symmetry)."""
    n = parts.shape[-1]
    total = np.zeros(parts.shape[1:], dtype=np.float32)
    for p, r, t in zip(parts, mats, shifts, strict=True):
        total += al.rotate(p, r.T, t)
    if len(sym) > 1:
        # cast: a sum of (more than one) arrays is an array, never sum()'s start value 0
        total = cast("NDArray[np.float32]", sum(al.rotate(total, g.T) for g in sym))
    weights = al.wedge_weights(n, (sym[:, None] @ mats[None]).reshape(-1, 3, 3), tilt_range)
    return scipy.fft.rfftn(total, workers=al.WORKERS).astype(np.complex64), weights


def to_map(num: NDArray[np.complex64], weights: NDArray[np.float32], n: int,
           filt: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
    """Wedge-weighted average ``num / (weights + WIENER)``, optionally filtered, in real space."""
    spec = num / (weights + np.float32(WIENER))
    if filt is not None:
        spec = spec * filt
    return scipy.fft.irfftn(spec, s=(n, n, n), workers=al.WORKERS).astype(np.float32)


def _templates(ref: NDArray[np.float32], mats: NDArray[np.float64], filt: NDArray[np.float32]
               ) -> NDArray[np.complex64]:
    spec = scipy.fft.rfftn(al.rotate_many(ref, mats), axes=(-3, -2, -1), workers=al.WORKERS)
    spec *= filt
    return al.normalise_spectra(spec)


def search(spec: NDArray[np.complex64], ref: NDArray[np.float32], filt: NDArray[np.float32],
           mats: NDArray[np.float64], *, global_step: float | None, local_steps: Sequence[float],
           max_shift: float, prior: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
           ) -> tuple[NDArray[np.float64], NDArray[np.float32], NDArray[np.float32]]:
    """Align particle spectra `spec` (p, m, m, m//2+1) to the masked reference `ref` (m³).

    With `prior` ``(bases (p, 3, 3), grid (k, 3, 3))``, first each particle's best of
    ``grid @ base`` (instead of a global search); then `global_step`, then `local_steps`.
    Returns the new rotations (p, 3, 3), shifts in voxels of this box (p, 3) and scores (p,).
    """
    window, window_shifts = al.shift_window(ref.shape[0], max_shift)
    mats = mats.copy()
    if prior is not None:
        mats = _best_of(spec, ref, filt, window, prior[0], prior[1])
    if global_step is not None:
        grid = al.rotation_grid(global_step)
        best = np.full(len(spec), -np.inf, dtype=np.float32)
        for g0 in range(0, len(grid), _GLOBAL_BATCH):
            chunk = grid[g0:g0 + _GLOBAL_BATCH]
            j, score = al.best_match(spec, _templates(ref, chunk, filt), window)
            better = score > best
            best[better], mats[better] = score[better], chunk[j[better]]
    for step in local_steps:
        mats = _best_of(spec, ref, filt, window, mats, al.local_grid(step))
    shifts = np.zeros((len(spec), 3), dtype=np.float32)
    scores = np.zeros(len(spec), dtype=np.float32)
    for p0 in range(0, len(spec), _LOCAL_BATCH):
        tmpl = _templates(ref, mats[p0:p0 + _LOCAL_BATCH], filt)
        shifts[p0:p0 + _LOCAL_BATCH], scores[p0:p0 + _LOCAL_BATCH] = al.peak_shifts(
            spec[p0:p0 + _LOCAL_BATCH], tmpl, window, window_shifts)
    return mats, shifts, scores


def _best_of(spec: NDArray[np.complex64], ref: NDArray[np.float32], filt: NDArray[np.float32],
             window: NDArray[np.intp], starts: NDArray[np.float64], deltas: NDArray[np.float64]
             ) -> NDArray[np.float64]:
    """Each particle's best rotation among ``deltas @ start`` (its own candidates), in batches."""
    mats = np.empty_like(starts)
    batch = max(1, _LOCAL_BATCH * 27 // len(deltas))     # the memory of 16 particles' 27 candidates
    for p0 in range(0, len(spec), batch):
        cand = deltas[None] @ starts[p0:p0 + batch, None]  # (p, k, 3, 3)
        tmpl = _templates(ref, cand.reshape(-1, 3, 3), filt).reshape(cand.shape[:2] + filt.shape)
        pick, _ = al.best_match(spec[p0:p0 + batch], tmpl, window)
        mats[p0:p0 + batch] = cand[np.arange(len(cand)), pick]
    return mats


def working_box(n: int, cutoff: float) -> int:
    """Smallest even box holding shells up to `cutoff` plus the filter edge (the full box if odd)."""
    if n % 2:
        return n
    return int(min(n, max(16, 2 * int(np.ceil(cutoff + EDGE + 1)))))


def _fsc_filter(n: int, shells: NDArray[np.float64], curve: NDArray[np.float64], cutoff: float
                ) -> NDArray[np.float32]:
    """FSC weighting ``sqrt(2 FSC / (1 + FSC))`` up to `cutoff`, with a soft edge, rfft layout."""
    c = np.clip(np.nan_to_num(curve), 0.0, 1.0)
    weight = np.sqrt(2 * c / (1 + c))
    weight[0] = 1.0
    r = al.radius_grid(n)
    return (np.interp(r, shells, weight) * al.lowpass(n, cutoff, width=EDGE)).astype(np.float32)


def align_volumes(moving: NDArray[np.float32], fixed: NDArray[np.float32], *, mask: NDArray[np.float32],
                  cutoff: float, max_shift: float, global_step: float | None,
                  local_steps: Sequence[float], grid: NDArray[np.float64] | None = None
                  ) -> tuple[NDArray[np.float64], NDArray[np.float32], float]:
    """Rotation ``R`` and shift ``t`` (voxels, z y x) with ``moving(c + t + r) ≈ fixed(R @ r)``.

    With `global_step`, first a global search on that grid (or on `grid`, rotations near the
    identity, when given), low-passed to a quarter of the box, plus one local round at a third of
    the step; then local rounds at `local_steps` degrees with the low-pass at `cutoff` shells.
    `fixed` is masked; the search starts from the identity.
    """
    n = moving.shape[0]
    spec_full = scipy.fft.rfftn(moving, workers=al.WORKERS)[None].astype(np.complex64)
    ref_full = scipy.fft.rfftn(fixed * mask, workers=al.WORKERS)
    mats = np.eye(3)[None]
    rounds: list[tuple[float, float | None, list[float]]] = [(cutoff, None, list(local_steps))]
    if global_step is not None:
        rounds.insert(0, (min(cutoff, n / 4), global_step, [global_step / 3]))
    for cut, glob, steps in rounds:
        m = working_box(n, cut)
        filt = al.lowpass(m, cut, width=EDGE, highpass=HIGHPASS)
        spec = al.normalise_spectra(al.crop_spectrum(spec_full, m) * filt)
        ref = scipy.fft.irfftn(al.crop_spectrum(ref_full, m), s=(m, m, m)).astype(np.float32)
        prior = None if glob is None or grid is None else (mats, grid)
        mats, shifts, scores = search(spec, ref, filt, mats, global_step=None if prior else glob,
                                      local_steps=steps, max_shift=max_shift * m / n, prior=prior)
    return mats[0], (shifts[0] * n / m).astype(np.float32), float(scores[0])


def refine(parts: NDArray[np.float32], *, iterations: int, angular_step: float, sym: int,
           tilt_range: float | None, rng: np.random.Generator, reference: NDArray[np.float32] | None,
           mask_radius: float, max_shift: float, progress: bool,
           priors: NDArray[np.float64] | None = None, prior_range: float = 0.0,
           half: NDArray[np.int8] | None = None) -> Refinement:
    """Gold-standard refinement of two independent half sets; see the module docstring.

    `half` (count,) gives each particle's half set, 0 or 1; by default even and odd indices.

    With `priors` (count, 3, 3), rotations that put the map's z axis on each particle's prior
    direction: particles start there with a random spin about it, and the global searches and the
    one alignment of the half maps try every spin but tilt the axis by at most `prior_range`
    degrees (:func:`_align.prior_grid`); the local refinement that follows is unrestricted.
    """
    count, n = len(parts), parts.shape[-1]
    half = (np.arange(count) % 2).astype(np.int8) if half is None else half
    groups = [np.flatnonzero(half == h) for h in (0, 1)]
    sym_mats = al.cn_matrices(sym)
    edge = max(2.0, n / 12)
    mask = al.soft_sphere(n, mask_radius, edge)
    spec_full = scipy.fft.rfftn(parts, axes=(-3, -2, -1), workers=al.WORKERS).astype(np.complex64)
    n_global = max(1, iterations // 2)
    model_cutoff = float(np.clip(2.0 * n / (mask_radius + edge), 3.0, n / 4))
    top = n / 2 - EDGE / 2
    local_floor = max(1.0, float(np.rad2deg(0.5 / (mask_radius + edge))))
    low = al.lowpass(n, model_cutoff, width=EDGE)

    on_priors = None if priors is None else (priors, al.prior_grid(angular_step, prior_range))
    if priors is None:
        mats = Rotation.random(count, random_state=rng).as_matrix()
    else:   # on the prior, with a random spin about it
        spin = Rotation.from_euler("z", rng.uniform(0.0, 360.0, (count, 1)), degrees=True).as_matrix()
        mats = spin @ priors
    shifts = np.zeros((count, 3), dtype=np.float32)
    scores = np.zeros(count, dtype=np.float32)
    if reference is None:  # each half starts from its own randomly rotated average
        refs = [to_map(*reconstruct(parts[idx], mats[idx], shifts[idx], sym_mats, tilt_range), n, low)
                for idx in groups]
    else:
        start = scipy.fft.irfftn(scipy.fft.rfftn(reference, workers=al.WORKERS) * low,
                                 s=(n, n, n), workers=al.WORKERS).astype(np.float32)
        refs = [start, start]
    cutoff, history = model_cutoff, []
    bar = tqdm(range(iterations), desc="average", disable=not progress, leave=False)
    for it in bar:
        is_global = it < n_global
        m = working_box(n, cutoff)
        scale = m / n
        filt = (al.wedge_weights(m, None, tilt_range)
                * al.lowpass(m, cutoff, width=EDGE, highpass=HIGHPASS))
        small_mask = al.soft_sphere(m, mask_radius * scale, edge * scale)
        spec = al.normalise_spectra(al.crop_spectrum(spec_full, m) * filt)
        if is_global:
            steps = [angular_step / 3, angular_step / 6]
        else:  # one local round per iteration, halving the step down to the floor
            steps = [max(local_floor, angular_step / 6 / 2 ** (it - n_global))]
        for h, idx in enumerate(groups):
            ref_small = scipy.fft.irfftn(al.crop_spectrum(scipy.fft.rfftn(refs[h]), m), s=(m, m, m))
            ref_small = (ref_small * small_mask).astype(np.float32)
            prior = (on_priors[0][idx], on_priors[1]) if is_global and on_priors else None
            mats[idx], sh, scores[idx] = search(
                spec[idx], ref_small, filt, mats[idx],
                global_step=angular_step if is_global and prior is None else None,
                local_steps=steps, max_shift=max_shift * scale, prior=prior)
            shifts[idx] = sh / scale
        halves = [reconstruct(parts[idx], mats[idx], shifts[idx], sym_mats, tilt_range)
                  for idx in groups]
        maps = [to_map(num, w, n) for num, w in halves]
        if it + 1 == n_global:  # bring half 2 into half 1's frame, at the model's low-pass
            g, t, _ = align_volumes(maps[1], maps[0], mask=mask, max_shift=n / 4,
                                    cutoff=model_cutoff, global_step=angular_step / 2,
                                    local_steps=[angular_step / 6, angular_step / 12, angular_step / 24],
                                    grid=None if priors is None else al.prior_grid(angular_step / 2,
                                                                                   prior_range))
            idx = groups[1]
            shifts[idx] += ((FLIP @ np.transpose(mats[idx], (0, 2, 1)) @ FLIP) @ t).astype(np.float32)
            mats[idx] = g @ mats[idx]
            halves[1] = reconstruct(parts[idx], mats[idx], shifts[idx], sym_mats, tilt_range)
            maps[1] = to_map(*halves[1], n)
        shells, curve = fsc_shells(maps[0] * mask, maps[1] * mask)
        res = crossing(shells, curve, THRESHOLD) if it + 1 >= n_global else float("nan")
        history.append(res)
        bar.set_postfix(shell=f"{res:.1f}/{n // 2}")
        if it + 1 < n_global:
            refs = [to_map(num, w, n, low) for num, w in halves]
        else:
            cutoff = float(np.clip(max(res + 1.0, model_cutoff), 1.0, top))
            refs = [to_map(num, w, n, _fsc_filter(n, shells, curve, cutoff)) for num, w in halves]
    bar.close()
    num = halves[0][0] + halves[1][0]
    w = halves[0][1] + halves[1][1]
    return Refinement(map=to_map(num, w, n), half_maps=np.stack(maps), shells=shells, fsc=curve,
                      mats=mats, shifts=shifts, scores=scores, half=half, history=history)
