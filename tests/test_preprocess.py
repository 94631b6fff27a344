"""Tests for tomowidgets.preprocess: band-pass in Å, normalize, clamp, bin, streaming and MRC output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.fft

from tomowidgets.io import Tomogram, read_tomogram, write_tomogram
from tomowidgets.preprocess import (
    bandpass,
    bin,
    clamp,
    erase_gold,
    find_gold,
    highpass_filter,
    lowpass_filter,
    normalize,
    preprocess,
    preprocessing_params,
    rescale,
)

DTYPES = [np.int16, np.float16, np.float32, np.float64]


def response(f, lowpass, highpass):
    """The documented transfer function at spatial frequency f (1/Å)."""
    h = np.ones_like(f, dtype=np.float64)
    if lowpass is not None:
        h *= 2.0 ** -((f * lowpass) ** 2)
    if highpass is not None:
        h *= 1 - 2.0 ** -((f * highpass) ** 2)
    return h


def whole_volume_filter(x, apix, lowpass, highpass):
    """Reference: the filter on the whole volume at once, float64, reflect boundary (3D DCT-II)."""
    c = scipy.fft.dctn(np.asarray(x, np.float64), norm="ortho")
    f = np.meshgrid(*[np.arange(n) / (2 * n * apix) for n in x.shape], indexing="ij")
    return scipy.fft.idctn(c * response(np.sqrt(sum(a * a for a in f)), lowpass, highpass),
                           norm="ortho")


def dct_cosine(n, k):
    """cos(pi k (i + 1/2) / n): an eigenvector of every filter here, at frequency k / (2 n apix)."""
    return np.cos(np.pi * k * (np.arange(n) + 0.5) / n)


def noise(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_bandpass_keeps_band_and_removes_sinusoid_above_lowpass(axis):
    n, apix, k_in, k_out = 48, 2.0, 3, 36   # f = k / 192 Å⁻¹: 64 Å (in band) and 5.3 Å (above 20 Å)
    shape = [4, 4, 4]
    shape[axis] = n
    bcast = [1, 1, 1]
    bcast[axis] = n
    s_in = dct_cosine(n, k_in).reshape(bcast) * np.ones(shape)
    s_out = dct_cosine(n, k_out).reshape(bcast) * np.ones(shape)
    out = bandpass(s_in + s_out, apix, lowpass=20.0, highpass=400.0)
    h_in, h_out = response(np.array([k_in, k_out]) / (2 * n * apix), 20.0, 400.0)
    assert h_in > 0.9 and h_out < 2e-3
    np.testing.assert_allclose(out, h_in * s_in + h_out * s_out, atol=1e-5)


def test_lowpass_is_half_amplitude_at_cutoff_and_highpass_removes_mean():
    n, apix = 64, 5.0
    k = 2 * n * apix / 20.0                     # f = 1/20 Å⁻¹ exactly: k = 32
    x = dct_cosine(n, int(k))[None, None, :] * np.ones((2, 3, 1)) + 7.0
    lp = lowpass_filter(x, apix, cutoff=20.0)
    np.testing.assert_allclose(lp, 0.5 * (x - 7.0) + 7.0, atol=1e-5)
    hp = highpass_filter(x, apix, cutoff=100.0)
    assert abs(float(hp.mean())) < 1e-6


def test_highpass_removes_ice_gradient():
    shape, apix, hp = (8, 32, 256), 10.0, 400.0  # 2560 Å wide, ramp of 40 sd across it
    ramp = np.linspace(-20.0, 20.0, shape[2])[None, None, :] * np.ones(shape)
    x = noise(shape)
    gradient_left = highpass_filter(x + ramp, apix, cutoff=hp) - highpass_filter(x, apix, cutoff=hp)
    # Gaussian background of sd hp * sqrt(2 ln 2) / (2 pi) = 7.5 voxels reproduces a linear ramp
    # exactly away from the faces; within ~5 sd of the two x faces the mirror boundary leaves a kink.
    interior = gradient_left[:, :, 40:-40]
    assert np.abs(interior).max() < 1e-3 * 40
    assert np.abs(gradient_left).max() < 0.2 * 40
    # A very long wavelength (5120 Å, the lowest non-zero frequency) is removed to its response.
    wave = 10 * dct_cosine(shape[2], 1)[None, None, :] * np.ones(shape)
    h = response(np.array(1 / (2 * shape[2] * apix)), None, hp)
    assert h < 5e-3
    np.testing.assert_allclose(highpass_filter(wave, apix, cutoff=hp), h * wave, atol=1e-5)


def test_cutoffs_scale_with_apix_same_filter_after_binning():
    x = noise((16, 32, 48), seed=1)
    tomo = Tomogram(x, 5.0)
    binned = bin(tomo, 2, progress=False)
    assert binned.apix == 10.0
    filtered_then_binned = bin(Tomogram(bandpass(x, 5.0, lowpass=40.0, highpass=300.0), 5.0), 2,
                               progress=False).data
    binned_then_filtered = bandpass(binned.data, binned.apix, lowpass=40.0, highpass=300.0)
    scale = binned_then_filtered.std()
    np.testing.assert_allclose(filtered_then_binned, binned_then_filtered, atol=1e-5 * scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize_gives_mean_0_sd_1_float32(dtype):
    x = (np.random.default_rng(2).gamma(2.0, 30.0, (6, 20, 24)) + 100).astype(dtype)
    out = normalize(x)
    assert out.dtype == np.float32
    assert abs(out.mean(dtype=np.float64)) < 1e-6
    assert abs(out.std(dtype=np.float64) - 1) < 1e-6


@pytest.mark.parametrize("nsd", [1.0, 3.0])
def test_clamp_bounds_at_mean_plus_minus_nsd_sd(nsd):
    x = np.random.default_rng(3).standard_t(3, (6, 20, 24)) * 4 + 2
    lo, hi = x.mean() - nsd * x.std(), x.mean() + nsd * x.std()
    out = clamp(x, nsd)
    assert out.dtype == np.float32
    assert out.min() >= np.float32(lo) and out.max() <= np.float32(hi)
    inside = (x > lo) & (x < hi)
    np.testing.assert_allclose(out[inside], x[inside], rtol=1e-6)
    assert np.all(out[x >= hi] == np.float32(hi))


@pytest.mark.parametrize("dtype", DTYPES)
def test_preprocess_output_is_float32_normalized_and_clamped(dtype):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((8, 32, 40)) * 30 + np.linspace(0, 200, 40) + 500).astype(dtype)
    tomo = Tomogram(x, 10.0, origin=(1.0, 2.0, 3.0))
    pre = preprocess(tomo, lowpass=25.0, highpass=2000.0, clamp=2.0, progress=False)
    assert pre.data.dtype == np.float32 and pre.shape == x.shape
    assert pre.apix == 10.0 and pre.origin == (1.0, 2.0, 3.0)
    assert np.abs(pre.data).max() == 2.0          # exact bound, and some voxels were clamped
    assert abs(pre.data.mean(dtype=np.float64)) < 0.01
    assert 0.95 < pre.data.std(dtype=np.float64) < 1.0
    exact = preprocess(x, 25.0, 2000.0, None, apix=10.0, progress=False).data
    assert abs(exact.mean(dtype=np.float64)) < 1e-6
    assert abs(exact.std(dtype=np.float64) - 1) < 1e-5


@pytest.mark.parametrize("lowpass, highpass", [(20.0, 300.0), (20.0, None), (None, 300.0)])
def test_slab_wise_result_matches_whole_volume_filter(lowpass, highpass):
    # Odd sizes, an offset of 1000 and a ramp; slab_mb=1e-4 forces one plane (pass A) and one row
    # (pass B) per slab, 0.01 uneven slabs (8 + 5 planes, 10 + 7 rows). The streamed filter is the
    # whole-volume filter factorized per axis, so the only difference is float32 rounding:
    # tolerance 1e-5 of the sd (measured ~1e-6; float32 eps times the offset/sd ratio bounds it).
    x = noise((13, 17, 19), seed=5) * 10 + np.linspace(0, 50, 19).astype(np.float32) + 1000
    ref = whole_volume_filter(x, 5.0, lowpass, highpass)
    for slab_mb in (1e-4, 0.01):
        pre = preprocess(x, lowpass, highpass, None, apix=5.0, progress=False, slab_mb=slab_mb)
        expected = (ref - ref.mean()) / ref.std()
        np.testing.assert_allclose(pre.data, expected, atol=1e-5)
    np.testing.assert_allclose(bandpass(x, 5.0, lowpass=lowpass, highpass=highpass), ref,
                               atol=1e-5 * ref.std() + 1e-7 * np.abs(ref).max())


def test_out_path_writes_mrc_with_voxel_size_and_returns_memory_map(tmp_path):
    x = noise((6, 24, 28), seed=6)
    tomo = Tomogram(x, 7.5, origin=(10.0, 20.0, 30.0))
    path = tmp_path / "sub" / "pre.mrc"
    pre = preprocess(tomo, 20.0, 1000.0, 3.0, out=path, progress=False, slab_mb=0.002)
    assert pre.is_mmap and pre.path == path
    back = read_tomogram(path)
    assert back.apix == pytest.approx(7.5) and back.origin == (10.0, 20.0, 30.0)
    in_memory = preprocess(tomo, 20.0, 1000.0, 3.0, progress=False)
    np.testing.assert_allclose(back.data, in_memory.data, atol=1e-6)
    np.testing.assert_array_equal(pre.data, back.data)
    assert [p.name for p in path.parent.iterdir()] == ["pre.mrc"]   # no temporary left


def test_failed_preprocess_leaves_existing_output_untouched(tmp_path):
    path = tmp_path / "pre.mrc"
    write_tomogram(path, noise((2, 8, 8)), apix=5.0)
    before = path.read_bytes()
    x = noise((4, 8, 8))
    x[3, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        preprocess(x, apix=5.0, out=path, progress=False, slab_mb=0.0005)
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_memory_mapped_input_gives_same_result(tmp_path, dtype):
    x = noise((10, 20, 24), seed=7)
    write_tomogram(tmp_path / "raw.mrc", x, apix=6.0, dtype=dtype)
    mm = read_tomogram(tmp_path / "raw.mrc", mmap=True)
    assert mm.is_mmap and mm.data.dtype == dtype
    a = preprocess(mm, progress=False, slab_mb=0.005)
    b = preprocess(Tomogram(x.astype(dtype).astype(np.float32), 6.0), progress=False)
    np.testing.assert_allclose(a.data, b.data, atol=1e-5)
    assert np.array_equal(read_tomogram(tmp_path / "raw.mrc").data, x.astype(dtype))


@pytest.mark.parametrize("method", ["fourier", "mean"])
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_bin_shape_apix_origin_and_mean(method, dtype):
    x = (np.random.default_rng(8).standard_normal((10, 21, 33)) * 100 + 50).astype(dtype)
    tomo = Tomogram(x, 4.0, origin=(0.0, 0.0, 100.0))
    b = bin(tomo, 2, method=method, progress=False)
    assert b.shape == (5, 10, 16) and b.data.dtype == np.float32
    assert b.apix == 8.0 and b.origin == (2.0, 2.0, 102.0)
    cropped = x[:10, :20, :32].astype(np.float64)
    assert b.data.mean(dtype=np.float64) == pytest.approx(cropped.mean(), abs=1e-3)
    assert bin(tomo, 1, progress=False).data.dtype == np.float32


def test_low_frequency_sinusoid_survives_fourier_binning():
    n, f, k = 48, 3, 5
    wave = dct_cosine(n, k)[None, :, None] * np.ones((6, 1, 9))
    b = bin(Tomogram(wave, 2.0), f, progress=False)
    np.testing.assert_allclose(b.data, dct_cosine(n // f, k)[None, :, None] * np.ones((2, 1, 3)),
                               atol=1e-5)
    mean = bin(Tomogram(wave, 2.0), f, method="mean", progress=False).data
    assert 0.9 < np.abs(mean).max() < 0.999   # block mean attenuates it a little


def test_preprocessing_params_are_json_and_validated():
    p = preprocessing_params(10.0, 20.0, 4000.0, 3.0)
    assert json.loads(json.dumps(p)) == p
    assert (p["apix"], p["lowpass"], p["highpass"], p["clamp"]) == (10.0, 20.0, 4000.0, 3.0)
    assert preprocessing_params(10.0, None, None, None)["lowpass"] is None


def test_progress_bar_runs_without_warnings():
    preprocess(noise((4, 16, 16)), apix=5.0, progress=True)


@pytest.mark.parametrize("call, match", [
    (lambda: preprocess(noise((4, 8, 8)), 15.0, apix=10.0), r"`lowpass` must be >= 20 Å, the Nyquist"),
    (lambda: bandpass(noise((4, 8, 8)), 10.0, lowpass=19.0), "Nyquist"),
    (lambda: lowpass_filter(noise((4, 8, 8)), 10.0, cutoff=5.0), "`cutoff`.*Nyquist"),
    (lambda: preprocess(noise((4, 8, 8)), 40.0, 40.0, apix=10.0), "`highpass` must be longer"),
    (lambda: bandpass(noise((4, 8, 8)), 10.0, lowpass=None, highpass=15.0), "`highpass`.*Nyquist"),
    (lambda: preprocess(np.full((4, 8, 8), np.nan), apix=10.0, progress=False), "NaN"),
    (lambda: normalize(np.full((4, 8, 8), np.inf)), "NaN or infinite"),
    (lambda: preprocess(np.zeros((2, 4, 8, 8)), apix=10.0), "3-dimensional"),
    (lambda: bandpass(np.zeros((8, 8)), 10.0), "3-dimensional"),
    (lambda: preprocess(noise((4, 8, 8))), "`apix`.*required"),
    (lambda: preprocess(np.ones((4, 8, 8)), apix=5.0, progress=False), "constant"),
    (lambda: normalize(np.ones((4, 8, 8))), "constant"),
    (lambda: clamp(noise((4, 8, 8)), 0), "`nsd`"),
    (lambda: preprocess(noise((4, 8, 8)), apix=5.0, clamp=-1.0), "`clamp`"),
    (lambda: bin(Tomogram(noise((4, 8, 8)), 5.0), 0), "`factor`"),
    (lambda: bin(Tomogram(noise((4, 8, 8)), 5.0), 2.5), "`factor`"),
    (lambda: bin(Tomogram(noise((4, 8, 8)), 5.0), 5), "`factor`.*smallest dimension"),
    (lambda: bin(Tomogram(noise((4, 8, 8)), 5.0), 2, method="median"), "`method`"),
    (lambda: bin(noise((4, 8, 8)), 2), "Tomogram"),
    (lambda: bandpass(Tomogram(noise((4, 8, 8)), 5.0), 5.0), "tomo.data"),
])
def test_bad_inputs_raise_value_error_naming_the_fix(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_default_lowpass_falls_back_to_nyquist_on_binned_data_and_says_so(tmp_path):
    """20 Å voxels cannot carry the paper's 20 Å low-pass: the default uses 40 Å (Nyquist), warns,
    and records why in the parameters and the output file's header; 10 Å data keep 20 Å."""
    assert preprocessing_params(10.0)["lowpass"] == 20.0 and "lowpass_note" not in preprocessing_params(10.0)
    with pytest.warns(RuntimeWarning, match="Nyquist limit 40 Å"):
        pre = preprocess(Tomogram(noise((6, 32, 32)), 20.0), out=tmp_path / "pre.mrc", progress=False)
    import mrcfile

    with mrcfile.open(tmp_path / "pre.mrc") as mrc:
        labels = [bytes(label).decode().strip() for label in mrc.header.label[: mrc.header.nlabl]]
    assert "gaussian lowpass 40 A" in labels[0] and "Nyquist" in labels[1]
    with pytest.warns(RuntimeWarning, match="Nyquist"):
        assert preprocessing_params(20.0)["lowpass_note"]
    expected = preprocess(noise((6, 32, 32)), 40.0, apix=20.0, progress=False)
    np.testing.assert_array_equal(pre.data, expected.data)
    with pytest.raises(ValueError, match="Nyquist"):          # an explicit cut-off is never changed
        preprocess(noise((6, 32, 32)), 20.0, apix=20.0)
    with pytest.raises(ValueError, match="'auto'"):
        preprocess(noise((6, 32, 32)), "fine", apix=20.0)


def test_rescale_by_an_integer_factor_is_fourier_binning():
    tomo = Tomogram(noise((10, 32, 30)), 5.0, None, (1.0, 2.0, 3.0))
    binned, rescaled = bin(tomo, 2, progress=False), rescale(tomo, 10.0, progress=False)
    assert rescaled.shape == binned.shape and rescaled.apix == 10.0 and rescaled.origin == binned.origin
    np.testing.assert_allclose(rescaled.data, binned.data, atol=1e-5)


def test_rescale_samples_a_band_limited_signal_at_the_new_voxel_centres():
    """A DCT basis cosine (below both Nyquists) is the known answer at any ratio, here 10 -> 16 Å
    (40 -> 25 voxels) and 10 -> 4 Å (40 -> 100 voxels), on every axis."""
    n, k = 40, 3
    wave = np.cos(np.pi * k * (np.arange(n) + 0.5) / n)
    data = (wave[:, None, None] + 0.5 * wave[None, :, None] - 0.25 * wave[None, None, :]).astype(np.float32)
    for apix, m in ((16.0, 25), (4.0, 100)):
        out = rescale(Tomogram(data, 10.0), apix, progress=False)
        new = np.cos(np.pi * k * (np.arange(m) + 0.5) / m)
        expected = new[:, None, None] + 0.5 * new[None, :, None] - 0.25 * new[None, None, :]
        assert out.shape == (m, m, m) and out.apix == apix
        np.testing.assert_allclose(out.data, expected, atol=1e-5)
        assert out.origin == pytest.approx(((apix - 10.0) / 2,) * 3)


def test_rescale_leaves_out_the_last_voxels_that_do_not_fit_and_round_trips():
    tomo = Tomogram(noise((41, 33, 32)), 10.0)                    # 41 and 33 are odd
    coarse = rescale(tomo, 20.0, progress=False)
    assert coarse.shape == (20, 16, 16)                           # the last z and y voxel left out
    fine = rescale(tomo, 5.0, progress=False)
    back = rescale(fine, 10.0, progress=False)
    np.testing.assert_allclose(back.data, tomo.data, atol=1e-4)
    with pytest.warns(RuntimeWarning, match="do not fit whole voxels"):
        rescale(Tomogram(noise((3, 8, 8)), 10.0), 7.3, progress=False)
    with pytest.raises(ValueError, match="Tomogram"):
        rescale(noise((4, 8, 8)), 5.0)
    with pytest.raises(ValueError, match="leaves"):
        rescale(Tomogram(noise((4, 8, 8)), 10.0), 40.0)


def test_find_gold_recovers_the_synthetic_cells_gold_and_nothing_else(small_cell):
    gold = find_gold(small_cell.tomogram)
    truth = small_cell.labels["gold"]
    assert truth.any() and gold[truth].mean() == 1.0                    # every gold voxel
    assert not gold[small_cell.labels["ribosome"] | small_cell.labels["membrane"]].any()
    assert gold.mean() < 0.01
    assert find_gold(small_cell.tomogram, polarity="dark")[truth].all()         # gold is dark here;
    assert find_gold(small_cell.tomogram, polarity="bright")[truth].mean() < 0.5  # only its CTF halo


def test_erase_gold_replaces_only_the_mask_with_local_background(small_cell):
    tomo = small_cell.tomogram
    gold = find_gold(tomo)
    clean = erase_gold(tomo, gold)
    assert clean.apix == tomo.apix and clean.origin == tomo.origin
    np.testing.assert_array_equal(clean.data[~gold], tomo.data[~gold])
    outside = tomo.data[~gold]
    assert abs(clean.data[gold].mean() - outside.mean()) < 0.5 * outside.std()
    assert clean.data[gold].min() > outside.min() - outside.std()        # no bead left
    np.testing.assert_array_equal(erase_gold(tomo, gold).data, clean.data)    # seeded
    with pytest.raises(ValueError, match="shape"):
        erase_gold(tomo, gold[1:])
    with pytest.raises(ValueError, match="`extent`"):
        find_gold(tomo, threshold=4.0, extent=5.0)
    with pytest.raises(ValueError, match="`polarity`"):
        find_gold(tomo, polarity="black")
