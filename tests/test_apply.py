"""apply: calibrated scores over whole tomograms, streamed to MRC, resumable, several networks, Dask."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import mrcfile
import numpy as np
import pytest
from conftest import random_weights as shared_random_weights

import tomowidgets.engine as engine_module
from tomowidgets.apply import apply, apply_many
from tomowidgets.cli import main
from tomowidgets.engine import DEFAULT_TILE, FFTEngine
from tomowidgets.io import Tomogram, read_tomogram, write_tomogram

#: Small networks (5 x 5 kernels, 4 channels) and small FFT tiles keep every test fast.
KERNEL, CHANNELS, TILE = 5, 4, 64
APIX = 10.0
SHAPE = (10, 40, 51)   # odd x: the unbinned last column repeats its neighbour
#: The engine's own predict, kept before any test patches it.
ENGINE_PREDICT = FFTEngine.predict


def random_weights(seed: int, out_bias: float = 0.6, inputs: int = 1
                   ) -> dict[str, list[np.ndarray]]:
    """Small random networks; conv3 bias > 0 so part of the output is capped by min(1, x)."""
    return shared_random_weights(seed, kernel=KERNEL, channels=CHANNELS, out_bias=out_bias, inputs=inputs)


@dataclass
class FakeNet:
    """What apply needs of a FeatureNet (feature, apix, amplitude, preprocessing, weights())."""

    feature: str = "membrane"
    seed: int = 0
    amplitude: float | None = 0.37
    apix: float | None = APIX
    preprocessing: dict[str, Any] | None = field(default=None)
    context: int = 0                                # > 0: a 2.5D network
    calibration: dict[str, Any] | None = None       # as FeatureNet.calibration ("turns" > 1)

    def weights(self) -> dict[str, list[np.ndarray]]:
        return random_weights(self.seed, inputs=2 * self.context + 1)


def expected_scores(net: FakeNet, data: np.ndarray, tile: int = TILE) -> np.ndarray:
    """The known answer: engine.predict_full(slice) / amplitude, slice by slice (a 2.5D network's
    slice with its neighbours, the end slices repeated beyond the tomogram)."""
    engine = FFTEngine(net.weights(), tile=tile)
    tomo = Tomogram(data, APIX)
    return np.stack([engine.predict_full(tomo.slab(z, z + 1, net.context))[0]
                     for z in range(len(data))]) / np.float32(net.amplitude)


def make_tomogram(seed: int = 0, shape: tuple[int, int, int] = SHAPE) -> Tomogram:
    data = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return Tomogram(np.clip(data, -3, 3), APIX, None, (5.0, -20.0, 30.0))


@pytest.fixture()
def tomo_file(tmp_path):
    path = tmp_path / "cell.mrc"
    write_tomogram(path, make_tomogram())
    return path


def count_slices(monkeypatch, stop_after: int | None = None) -> list[int]:
    """Count slices given to FFTEngine.predict; raise KeyboardInterrupt on call `stop_after` + 1."""
    calls: list[int] = []

    def predict(self, slices):
        if stop_after is not None and len(calls) == stop_after:
            raise KeyboardInterrupt
        calls.append(np.shape(slices)[0])
        return ENGINE_PREDICT(self, slices)

    monkeypatch.setattr(engine_module.FFTEngine, "predict", predict)
    return calls


# -- the known answer, files, options ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int16])
def test_scores_are_engine_predict_full_over_amplitude_slice_by_slice(dtype):
    tomo = make_tomogram()
    tomo = tomo.with_data(np.round(tomo.data) if dtype == np.int16 else tomo.data.astype(dtype))
    result = apply(FakeNet(), tomo, progress=False, tile=TILE, slab=3)
    assert isinstance(result, Tomogram) and result.data.dtype == np.float32
    assert result.shape == SHAPE and result.apix == APIX and result.origin == tomo.origin
    np.testing.assert_array_equal(result.data, expected_scores(FakeNet(), tomo.data))
    assert (result.data == 1 / np.float32(0.37)).any()      # the cap min(1, x) is exercised


def test_out_file_has_voxel_size_origin_and_equals_the_in_memory_result(tmp_path, tomo_file):
    in_memory = apply(FakeNet(), read_tomogram(tomo_file), progress=False, tile=TILE)
    out = tmp_path / "scores" / "membrane.mrc"
    result = apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE, slab=4)
    assert result.is_mmap and result.path == out
    again = read_tomogram(out)
    assert again.shape == SHAPE and again.apix == pytest.approx(APIX)
    assert again.origin == pytest.approx((5.0, -20.0, 30.0))
    np.testing.assert_array_equal(again.data, in_memory.data)
    assert sorted(p.name for p in out.parent.iterdir()) == ["membrane.mrc"]   # no partial left
    half = apply(FakeNet(), tomo_file, out=tmp_path / "half.mrc", dtype=np.float16, progress=False,
                 tile=TILE)
    assert half.data.dtype == np.float16
    np.testing.assert_allclose(half.data, in_memory.data, rtol=1e-3, atol=1e-3)


def test_progress_bar_counts_slices(tomo_file, capsys):
    apply(FakeNet(), tomo_file, progress=True, tile=TILE, slab=4)
    assert f"{SHAPE[0]}/{SHAPE[0]}" in capsys.readouterr().err


@pytest.mark.parametrize("net_apix, message", [
    (20.0, r"bin it by 2 first: tomowidgets\.bin\(tomo, 2\), or tomowidgets\.rescale\(tomo, 20\)"),
    (15.0, r"factor 1\.5 first: tomowidgets\.rescale\(tomo, 15\) \(command line: tomowidgets rescale "
           r"IN OUT --to 15\)"),
    (5.0, r"2x coarser.*tomowidgets\.bin\(training_tomo, 2\)"),
])
def test_a_tomogram_at_another_voxel_size_is_refused_with_the_rescale_to_use(net_apix, message):
    with pytest.raises(ValueError, match=f"10 Å/voxel but the 'membrane' network .*{message}"):
        apply(FakeNet(apix=net_apix), make_tomogram(), progress=False, tile=TILE)
    apply(FakeNet(apix=10.05), make_tomogram(), progress=False, tile=TILE)   # within 1 %


def test_uncalibrated_network_is_refused():
    with pytest.raises(ValueError, match="'membrane' network is not calibrated"):
        apply(FakeNet(amplitude=None), make_tomogram(), progress=False)


def test_a_tomogram_that_does_not_look_preprocessed_warns():
    raw = make_tomogram().with_data(make_tomogram().data * 40 + 100)
    with pytest.warns(RuntimeWarning, match="does not look preprocessed: mean 10"):
        apply(FakeNet(), raw, progress=False, tile=TILE)
    apply(FakeNet(), raw, progress=False, tile=TILE, check_preprocessed=False)


def test_a_network_without_voxel_size_warns_that_it_cannot_be_checked():
    with pytest.warns(RuntimeWarning, match="records no voxel size"):
        apply(FakeNet(apix=None), make_tomogram(), progress=False, tile=TILE)


@pytest.mark.parametrize("kwargs, message", [
    ({"dtype": np.float16}, "float16 is a storage option of the `out` file"),
    ({"dtype": np.int8}, "`dtype` must be numpy.float32 or numpy.float16"),
    ({"slab": 0}, "`slab` must be an integer >= 1"),
    ({"client": object()}, "`client` must be a dask.distributed.Client"),
    ({"tile": 10}, "`tile` must be even"),
    ({"turns": 0}, "`turns` must be an integer from 1"),
    ({"turns": 5}, "`turns` must be an integer from 1"),
    ({"turns": 2.0}, "`turns` must be an integer from 1"),
])
def test_bad_options_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        apply(FakeNet(), make_tomogram(), progress=False, **kwargs)


def test_out_cannot_replace_the_tomogram(tomo_file):
    with pytest.raises(ValueError, match="would replace the tomogram"):
        apply(FakeNet(), tomo_file, out=tomo_file, progress=False)


# -- test-time turns ---------------------------------------------------------------------------------


def turned_by_hand(net: FakeNet, tomo: Tomogram, turns: int) -> np.ndarray:
    """The known answer for even slices: apply to the tomogram turned by k * 90 degrees about z,
    turn the scores back, average over k < `turns`."""
    total = np.zeros(tomo.shape, np.float64)
    for k in range(turns):
        turned = tomo.with_data(np.ascontiguousarray(np.rot90(tomo.data, k, axes=(1, 2))))
        total += np.rot90(apply(net, turned, progress=False, tile=TILE).data, -k, axes=(1, 2))
    return total / turns


@pytest.mark.filterwarnings("ignore:.*calibrated for 1 turn")   # the arithmetic of turns, not calibration
@pytest.mark.parametrize("net", [FakeNet(), FakeNet("vesicle", 2, 0.5, context=1)], ids=["2D", "2.5D"])
@pytest.mark.parametrize("turns", [2, 4])
def test_turns_average_the_scores_of_the_turned_tomogram_turned_back(net, turns):
    tomo = make_tomogram(shape=(6, 40, 52))
    result = apply(net, tomo, progress=False, tile=TILE, slab=4, turns=turns)
    np.testing.assert_allclose(result.data, turned_by_hand(net, tomo, turns), rtol=1e-6, atol=1e-6)
    assert not np.allclose(result.data, apply(net, tomo, progress=False, tile=TILE).data, atol=1e-3)


@pytest.mark.filterwarnings("ignore:.*calibrated for 1 turn")   # the arithmetic of turns, not calibration
def test_four_turns_make_the_scores_turn_with_the_tomogram():
    """Averaged over all four turns, the scores no longer depend on how the slices lie."""
    tomo = make_tomogram(shape=(4, 40, 52))
    turned = tomo.with_data(np.ascontiguousarray(np.rot90(tomo.data, 1, axes=(1, 2))))
    scores, turned_scores = (apply(FakeNet(), t, progress=False, tile=TILE, turns=4).data
                             for t in (tomo, turned))
    np.testing.assert_allclose(np.rot90(turned_scores, -1, axes=(1, 2)), scores, rtol=1e-6, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*calibrated for 1 turn")   # the arithmetic of turns, not calibration
def test_turns_on_odd_slices_sample_each_turn_at_the_pooling_blocks():
    """An odd size: each turn's output is unbinned, turned back and sampled at the first voxel of
    each 2 x 2 block, so the turns average on one grid and the edge repeats as without turns."""
    tomo = make_tomogram(shape=(3, 41, 51))
    engine = FFTEngine(FakeNet().weights(), tile=TILE)
    expected = np.zeros((3, 20, 25), np.float32)
    for k in range(4):
        data = np.ascontiguousarray(np.rot90(tomo.data, k, axes=(1, 2)))
        full = np.rot90(engine.predict_full(data), -k, axes=(1, 2))
        expected += full[:, :40:2, :50:2]
    result = apply(FakeNet(), tomo, progress=False, tile=TILE, turns=4).data
    unbinned = engine_module.unbin(expected / 4, (41, 51)) / np.float32(0.37)
    np.testing.assert_allclose(result, unbinned, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(result[:, 40], result[:, 39])      # the odd last row repeats


@pytest.mark.filterwarnings("ignore:.*calibrated for 1 turn")   # the arithmetic of turns, not calibration
def test_a_partial_file_from_another_number_of_turns_is_not_resumed(tmp_path, tomo_file, monkeypatch):
    out = tmp_path / "membrane.mrc"
    count_slices(monkeypatch, stop_after=1)
    with pytest.raises(KeyboardInterrupt):
        apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE, slab=4)
    monkeypatch.setattr(engine_module.FFTEngine, "predict", ENGINE_PREDICT)
    with pytest.warns(RuntimeWarning, match=r"not reused: settings changed"):
        result = apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE, slab=4, turns=2)
    np.testing.assert_array_equal(result.data,
                                  apply(FakeNet(), tomo_file, progress=False, tile=TILE, turns=2).data)


def test_applying_with_other_turns_than_the_calibrations_warns():
    """A network calibrated for N turns gives 1.0 at the painted level only when applied with N."""
    tomo = make_tomogram(shape=(2, 40, 52))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        apply(FakeNet(calibration={"method": "dice", "turns": 2}), tomo, progress=False, tile=TILE,
              turns=2)
        apply(FakeNet(calibration={"method": "dice"}), tomo, progress=False, tile=TILE)
    with pytest.warns(RuntimeWarning, match=r"'membrane' network was calibrated for 1 turn\(s\) and "
                      r"is applied with turns=4.*net.calibrate\(ts, turns=4\), or tomowidgets train "
                      r"--turns 4"):
        apply(FakeNet(), tomo, progress=False, tile=TILE, turns=4)
    with pytest.warns(RuntimeWarning, match=r"calibrated for 2 turn\(s\) and is applied with turns=1"):
        apply(FakeNet(calibration={"turns": 2}), tomo, progress=False, tile=TILE)


# -- resuming ---------------------------------------------------------------------------------------


def test_an_interrupted_run_resumes_and_computes_only_the_remaining_slices(tmp_path, tomo_file,
                                                                           monkeypatch):
    reference = apply(FakeNet(), tomo_file, progress=False, tile=TILE)
    out = tmp_path / "membrane.mrc"
    count_slices(monkeypatch, stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE, slab=3)
    partial, sidecar = tmp_path / "membrane.mrc.partial", tmp_path / "membrane.mrc.partial.json"
    assert not out.exists() and partial.exists()
    assert json.loads(sidecar.read_text())["done"] == [[0, 6]]
    computed = count_slices(monkeypatch)
    result = apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE, slab=3)
    assert sum(computed) == SHAPE[0] - 6
    np.testing.assert_array_equal(result.data, reference.data)
    assert not partial.exists() and not sidecar.exists()


def test_a_second_run_into_the_same_output_is_refused_while_the_first_runs(tmp_path, tomo_file,
                                                                           monkeypatch):
    """Two runs into one output: the second (here with --restart, which truncates the partial
    file) must not touch it while the first's process lives; a killed run's lock is taken over."""
    import subprocess

    out = tmp_path / "membrane.mrc"
    count_slices(monkeypatch, stop_after=1)
    with pytest.raises(KeyboardInterrupt):
        apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE, slab=4)
    partial = tmp_path / "membrane.mrc.partial"
    before = partial.read_bytes()
    lock = tmp_path / "membrane.mrc.lock"
    assert not lock.exists()                             # released when the run stopped
    count_slices(monkeypatch)
    first = subprocess.Popen(["sleep", "30"])           # a live process holds the output
    try:
        lock.write_text(f"{first.pid}\n")
        with pytest.raises(FileExistsError, match=f"being written by another run \\(process {first.pid}\\)"):
            apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE, resume=False)
        assert partial.read_bytes() == before and lock.read_text() == f"{first.pid}\n"
    finally:
        first.kill()
        first.wait()
    result = apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE)   # the lock is stale now
    np.testing.assert_array_equal(result.data, expected_scores(FakeNet(), read_tomogram(tomo_file).data))
    assert not lock.exists() and not partial.exists()


def test_a_full_disk_stops_apply_before_any_slice_and_leaves_nothing(tmp_path, tomo_file,
                                                                    monkeypatch):
    import errno
    import os

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    computed = count_slices(monkeypatch)
    with pytest.raises(OSError, match="No space left on device") as err:
        apply(FakeNet(), tomo_file, out=tmp_path / "membrane.mrc", progress=False, tile=TILE)
    assert err.value.filename == str(tmp_path / "membrane.mrc") and sum(computed) == 0
    assert [p.name for p in tmp_path.iterdir()] == [tomo_file.name]     # no partial, lock or temp


@pytest.mark.parametrize("shape", [(0, 40, 40), (3, 5, 5), (3, 40, 8)])
def test_a_tomogram_without_slices_or_too_small_for_the_kernels_is_refused(shape):
    with pytest.raises(ValueError, match=rf"shape \({shape[0]}, {shape[1]}, {shape[2]}\): the networks need"):
        apply(FakeNet(), Tomogram(np.zeros(shape, np.float32), 10.0), progress=False)


def test_a_changed_network_or_resume_false_starts_again(tmp_path, tomo_file, monkeypatch):
    out = tmp_path / "membrane.mrc"
    count_slices(monkeypatch, stop_after=1)
    with pytest.raises(KeyboardInterrupt):
        apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE, slab=4)
    computed = count_slices(monkeypatch)
    with pytest.warns(RuntimeWarning, match=r"not reused: network changed since it was started"):
        result = apply(FakeNet(seed=5), tomo_file, out=out, progress=False, tile=TILE, slab=4)
    assert sum(computed) == SHAPE[0]
    np.testing.assert_array_equal(result.data,
                                  expected_scores(FakeNet(seed=5), read_tomogram(tomo_file).data))
    count_slices(monkeypatch, stop_after=1)
    with pytest.raises(KeyboardInterrupt):
        apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE, slab=4)
    computed = count_slices(monkeypatch)
    apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE, slab=4, resume=False)
    assert sum(computed) == SHAPE[0]


def test_a_tomogram_replaced_with_its_old_size_and_mtime_is_not_resumed(tmp_path, monkeypatch):
    """``cp -p`` or ``rsync -t`` give a new tomogram the old one's size and mtime: the stale slices
    of the first run must not be reused (the status-change time tells them apart)."""
    tomo_file, out = tmp_path / "cell.mrc", tmp_path / "m.mrc"
    write_tomogram(tomo_file, make_tomogram(1))
    count_slices(monkeypatch, stop_after=1)
    with pytest.raises(KeyboardInterrupt):
        apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE, slab=4)
    before = os.stat(tomo_file)
    write_tomogram(tomo_file, make_tomogram(2))              # same shape, so the same size
    os.utime(tomo_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(tomo_file).st_size == before.st_size
    count_slices(monkeypatch)
    with pytest.warns(RuntimeWarning, match="tomogram changed since it was started"):
        result = apply(FakeNet(), tomo_file, out=out, progress=False, tile=TILE, slab=4)
    np.testing.assert_array_equal(result.data, expected_scores(FakeNet(), make_tomogram(2).data))


def test_an_interrupted_in_memory_tomogram_resumes_through_its_data_hash(tmp_path, monkeypatch):
    tomo, out = make_tomogram(3), tmp_path / "m.mrc"
    count_slices(monkeypatch, stop_after=1)
    with pytest.raises(KeyboardInterrupt):
        apply(FakeNet(), tomo, out=out, progress=False, tile=TILE, slab=5)
    computed = count_slices(monkeypatch)
    result = apply(FakeNet(), tomo, out=out, progress=False, tile=TILE, slab=5)
    assert sum(computed) == 5
    np.testing.assert_array_equal(result.data, expected_scores(FakeNet(), tomo.data))


def test_nan_voxels_in_a_file_are_reported_with_the_file_and_the_slices(tmp_path, capsys):
    data = make_tomogram().data.copy()
    data[7, 3, 4] = np.nan
    with mrcfile.new(tmp_path / "holey.mrc") as mrc, warnings.catch_warnings():
        warnings.simplefilter("ignore")          # mrcfile's own NaN warning
        mrc.set_data(data)
        mrc.voxel_size = APIX
    with pytest.raises(ValueError, match=r"in slices 6-8 of '.*holey.mrc' contains 1 NaN"):
        apply(FakeNet(), tmp_path / "holey.mrc", out=tmp_path / "m.mrc", progress=False, tile=TILE,
              slab=3)


def test_nan_voxels_raise_when_reached_and_finished_slabs_are_kept(tmp_path):
    data = make_tomogram().data.copy()
    data[7, 3, 4] = np.nan
    out = tmp_path / "m.mrc"
    with pytest.raises(ValueError, match="contains 1 NaN"):
        apply(FakeNet(), Tomogram(data, APIX), out=out, progress=False, tile=TILE, slab=3)
    record = json.loads((tmp_path / "m.mrc.partial.json").read_text())
    assert record["done"] == [[0, 6]] and not out.exists()


# -- several networks and tomograms ----------------------------------------------------------------


def test_several_networks_read_each_slab_once_and_equal_separate_runs(tmp_path, tomo_file,
                                                                      monkeypatch):
    nets = [FakeNet("membrane", 0, 0.37), FakeNet("ribosome", 1, 0.8),
            FakeNet("vesicle", 2, 0.5, context=2)]
    separate = {n.feature: apply(n, tomo_file, progress=False, tile=TILE) for n in nets}
    reads: list[tuple[int, int]] = []
    original = Tomogram.slab
    monkeypatch.setattr(Tomogram, "slab", lambda self, a, b, context=0:
                        reads.append((b - a, context)) or original(self, a, b, context))
    together = apply(nets, tomo_file, out=tmp_path / "out", progress=False, tile=TILE, slab=4)
    assert reads == [(4, 2), (4, 2), (2, 2)]          # each slab read once for all, with context
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "cell.membrane.mrc", "cell.ribosome.mrc", "cell.vesicle.mrc"]
    for feature, scores in together.items():
        np.testing.assert_array_equal(scores.data, separate[feature].data)
    tomo = read_tomogram(tomo_file)
    np.testing.assert_allclose(together["vesicle"].data, expected_scores(nets[2], tomo.data),
                               atol=1e-5)
    named = apply({"a": nets[0], "b": nets[1]}, make_tomogram(), progress=False, tile=TILE)
    assert sorted(named) == ["a", "b"]


def test_networks_with_the_same_name_are_refused():
    with pytest.raises(ValueError, match="distinct feature names"):
        apply([FakeNet(), FakeNet(seed=1)], make_tomogram(), progress=False)


def test_apply_many_writes_one_file_per_tomogram_and_feature(tmp_path, tomo_file):
    other = tmp_path / "other.mrc"
    write_tomogram(other, make_tomogram(7))
    results = apply_many([FakeNet()], [tomo_file, other], tmp_path / "out", progress=False,
                         tile=TILE)
    assert [r["membrane"].path.name for r in results] == ["cell.membrane.mrc", "other.membrane.mrc"]
    np.testing.assert_array_equal(results[1]["membrane"].data,
                                  expected_scores(FakeNet(), read_tomogram(other).data))
    with pytest.raises(ValueError, match="would both write"):
        apply_many([FakeNet()], [tomo_file, tomo_file], tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="`tomos` must be a list"):
        apply_many([FakeNet()], tomo_file)


# -- Dask -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes with one thread each, on loopback (closed at the end of the module).

    No warning filter is needed: distributed shuts down cleanly under filterwarnings=error.
    """
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as local_cluster:
        yield local_cluster


@pytest.mark.filterwarnings("ignore:.*calibrated for 1 turn")   # the arithmetic of turns, not calibration
def test_a_dask_cluster_gives_the_local_result_without_tensorflow(tmp_path, tomo_file, cluster):
    from distributed import Client

    nets = [FakeNet("membrane", 0, 0.37), FakeNet("ribosome", 1, 0.8),
            FakeNet("vesicle", 2, 0.5, context=1)]          # 2.5D: slabs travel with neighbours
    other = make_tomogram(4, (6, 36, 30))                    # in memory: sent to the workers
    local = [apply(nets, t, progress=False, tile=TILE) for t in (tomo_file, other)]
    with Client(cluster) as client:
        remote = apply(nets, tomo_file, progress=False, tile=TILE, client=client, slab=3)
        many = apply_many(nets, [tomo_file, other], tmp_path / "out", progress=False,
                          tile=TILE, client=client)
        remote_turned = apply(nets[0], tomo_file, progress=False, tile=TILE, client=client, turns=2)
        imported = client.run(lambda: "tensorflow" in sys.modules)
        bad = other.data.copy()
        bad[4, 0, 0] = np.inf
        with pytest.raises(ValueError, match="contains 1 NaN or infinite"):   # a task's error
            apply(nets, other.with_data(bad), progress=False, tile=TILE, client=client, slab=2)
    assert imported and not any(imported.values())
    np.testing.assert_array_equal(remote_turned.data,
                                  apply(nets[0], tomo_file, progress=False, tile=TILE, turns=2).data)
    for feature in ("membrane", "ribosome", "vesicle"):
        np.testing.assert_array_equal(remote[feature].data, local[0][feature].data)
        for result, expected in zip(many, local, strict=True):
            np.testing.assert_array_equal(result[feature].data, expected[feature].data)


# -- .keras files, the command line, no TensorFlow ----------------------------------------------------


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """Two networks saved by FeatureNet.save with known weights and amplitudes."""
    pytest.importorskip("tensorflow")
    from tomowidgets.network import FeatureNet

    folder = tmp_path_factory.mktemp("nets")
    paths = []
    for fake in (FakeNet("membrane", 0, 0.37), FakeNet("ribosome", 1, 0.8)):
        net = FeatureNet(fake.feature, apix=APIX, filters=CHANNELS, kernel_size=KERNEL)
        for name, values in fake.weights().items():
            net.model.get_layer(name).set_weights(values)
        net.amplitude = fake.amplitude
        paths.append(net.save(folder / f"{fake.feature}.keras"))
    return paths


@pytest.mark.tensorflow
def test_a_keras_file_is_applied_without_importing_tensorflow(tmp_path, tomo_file, keras_files):
    code = ("import sys, numpy as np; from tomowidgets.apply import apply; "
            f"r = apply({str(keras_files[0])!r}, {str(tomo_file)!r}, progress=False, tile={TILE}); "
            f"np.save({str(tmp_path / 'r.npy')!r}, r.data); "
            "sys.exit('tensorflow imported' if 'tensorflow' in sys.modules else 0)")
    env = dict(os.environ, PYTHONWARNINGS="error")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    expected = expected_scores(FakeNet(), read_tomogram(tomo_file).data)
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), expected)


@pytest.mark.tensorflow
def test_cli_apply_writes_a_score_map_per_tomogram_and_feature(tmp_path, tomo_file, keras_files,
                                                               capsys):
    other = tmp_path / "other.mrc"
    write_tomogram(other, make_tomogram(2))
    files = [str(keras_files[0]), str(tomo_file), str(keras_files[1]), str(other)]
    assert main(["apply", *files, "-o", str(tmp_path / "out"), "--float16", "--slab", "3"]) == 0
    assert "applied 2 network(s) to 2 tomogram(s)" in capsys.readouterr().out
    for stem, source in (("cell", tomo_file), ("other", other)):
        for fake in (FakeNet("membrane", 0, 0.37), FakeNet("ribosome", 1, 0.8)):
            scores = read_tomogram(tmp_path / "out" / f"{stem}.{fake.feature}.mrc")
            assert scores.apix == pytest.approx(APIX)
            np.testing.assert_allclose(scores.data, expected_scores(fake, read_tomogram(source).data),
                                       rtol=1e-3, atol=1e-3)


@pytest.mark.filterwarnings("ignore:.*calibrated for 1 turn")   # the arithmetic of turns, not calibration
@pytest.mark.tensorflow
def test_cli_apply_turns_the_tomogram_when_asked_and_refuses_a_fifth_turn(tmp_path, tomo_file,
                                                                          keras_files, capsys):
    files = [str(keras_files[0]), str(tomo_file)]
    assert main(["apply", *files, "-o", str(tmp_path / "out"), "--turns", "2"]) == 0
    scores = read_tomogram(tmp_path / "out" / "cell.membrane.mrc")
    np.testing.assert_allclose(scores.data, apply(FakeNet(), tomo_file, progress=False, turns=2).data,
                               rtol=1e-5, atol=1e-5)
    capsys.readouterr()
    assert main(["apply", *files, "-o", str(tmp_path / "again"), "--turns", "5"]) == 1
    err = capsys.readouterr().err
    assert "`turns` must be an integer from 1" in err and "Traceback" not in err


def test_cli_apply_reads_compressed_tomograms_and_names_the_output_without_their_endings(
        tmp_path, keras_files):
    packed = tmp_path / "packed.rec.gz"
    with mrcfile.new(packed, compression="gzip") as mrc:
        mrc.set_data(make_tomogram(4).data)
        mrc.voxel_size = APIX
    assert main(["apply", str(keras_files[0]), str(packed), "-o", str(tmp_path / "out")]) == 0
    scores = read_tomogram(tmp_path / "out" / "packed.membrane.mrc")
    np.testing.assert_allclose(scores.data, expected_scores(FakeNet("membrane", 0, 0.37),
                                                            make_tomogram(4).data), rtol=1e-3, atol=1e-3)


def test_cli_apply_takes_the_voxel_size_its_voxel_size_error_asks_for(tmp_path, keras_files, capsys):
    """A tomogram whose header says 1 Å/voxel (never set): refused with the voxel-size error;
    --apix gives the right one, as for preprocess and rescale."""
    unset = tmp_path / "unset.mrc"
    write_tomogram(unset, make_tomogram(3).data, apix=1.0)
    files = [str(keras_files[0]), str(unset)]
    assert main(["apply", *files, "-o", str(tmp_path / "out")]) == 1
    assert "voxel" in capsys.readouterr().err
    assert main(["apply", *files, "-o", str(tmp_path / "out"), "--apix", str(APIX)]) == 0
    scores = read_tomogram(tmp_path / "out" / "unset.membrane.mrc")
    assert scores.apix == pytest.approx(APIX)
    np.testing.assert_allclose(scores.data, expected_scores(FakeNet("membrane", 0, 0.37),
                                                            make_tomogram(3).data), rtol=1e-3, atol=1e-3)


@pytest.mark.tensorflow
def test_cli_apply_with_a_scheduler_spreads_the_slabs_over_its_workers(tmp_path, tomo_file,
                                                                       keras_files, cluster):
    out = tmp_path / "out"
    assert main(["apply", str(keras_files[0]), str(tomo_file), "-o", str(out), "--scheduler",
                 cluster.scheduler_address]) == 0
    expected = expected_scores(FakeNet(), read_tomogram(tomo_file).data, tile=DEFAULT_TILE)
    np.testing.assert_array_equal(read_tomogram(out / "cell.membrane.mrc").data, expected)


def test_when_every_dask_worker_is_lost_apply_says_so_keeps_its_slices_and_resumes(
        tmp_path, tomo_file, keras_files, monkeypatch, capsys):
    """Workers leave after the first slab: the CLI stops with one line, the finished slices
    stay, and a rerun computes only the rest."""
    distributed = pytest.importorskip("distributed")
    from tomowidgets.apply._output import FileOutput

    out = tmp_path / "out"
    args = ["apply", str(keras_files[0]), str(tomo_file), "-o", str(out), "--slab", "2"]
    write = FileOutput.write
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        def write_then_lose_the_workers(self, z0, z1, scores):
            write(self, z0, z1, scores)
            cluster.scale(0)
            while client.nthreads():
                time.sleep(0.05)

        monkeypatch.setattr(FileOutput, "write", write_then_lose_the_workers)
        assert main([*args, "--scheduler", cluster.scheduler_address]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("tomowidgets apply: error: the Dask scheduler cancelled slices ")
    assert "every worker holding the networks was lost" in err
    assert err.endswith("run the same command again to resume")
    done = json.loads((out / "cell.membrane.mrc.partial.json").read_text())["done"]
    assert done and done[0][0] == 0 and not (out / "cell.membrane.mrc").exists()
    monkeypatch.setattr(FileOutput, "write", write)
    computed = count_slices(monkeypatch)
    assert main(args) == 0
    assert sum(computed) == SHAPE[0] - sum(z1 - z0 for z0, z1 in done)
    expected = expected_scores(FakeNet(), read_tomogram(tomo_file).data, tile=DEFAULT_TILE)
    np.testing.assert_allclose(read_tomogram(out / "cell.membrane.mrc").data, expected, rtol=1e-5,
                               atol=1e-5)


def test_a_scheduler_without_workers_is_reported_after_the_grace_time(tmp_path, tomo_file,
                                                                      keras_files, monkeypatch, capsys):
    distributed = pytest.importorskip("distributed")
    from tomowidgets.apply import _slabs as slabs

    monkeypatch.setattr(slabs, "WAIT_FOR_WORKERS_SECONDS", 0.5)
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster:
        assert main(["apply", str(keras_files[0]), str(tomo_file), "-o", str(tmp_path / "out"),
                     "--scheduler", cluster.scheduler_address]) == 1
    assert "the Dask scheduler has had no worker for 0 s; start workers" in capsys.readouterr().err


def test_cli_apply_rejects_files_it_cannot_tell_apart(tmp_path, capsys):
    (tmp_path / "net.h5").write_bytes(b"")
    assert main(["apply", str(tmp_path / "net.h5"), "-o", str(tmp_path)]) == 1
    assert "neither networks (.keras) nor tomograms" in capsys.readouterr().err
    assert main(["apply", str(tmp_path / "a.mrc"), "-o", str(tmp_path)]) == 1
    assert "at least one network" in capsys.readouterr().err


def test_importing_apply_does_not_import_tensorflow():
    code = ("import sys, tomowidgets.apply, tomowidgets.cli; "
            "bad = [m for m in ('tensorflow', 'keras', 'distributed') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    env = dict(os.environ, PYTHONWARNINGS="error")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_a_slab_task_makes_a_dask_worker_reuse_freed_memory():
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which makes every numpy
    temporary over 128 KiB a fresh mmap that faults its pages in again (the engine ran at half
    speed): after one slab task, 4 MiB temporaries reuse freed memory instead."""
    code = """
import resource, numpy as np
from tomowidgets.apply._slabs import remote_slab

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        np.ones(2**19)                                  # 4 MiB, freed at once
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults()
fresh = faults()
remote_slab(np.zeros((1, 8, 8), np.float32), 0, 1, [], [], [], "float32")
print(fresh, faults())
"""
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="65536")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    fresh, reused = map(int, result.stdout.split())
    assert fresh > 10 * 1024                      # ~1024 page faults per 4 MiB temporary
    assert reused < 1024                          # one temporary's worth at most


def test_dask_slabs_are_equal_and_a_multiple_of_the_threads():
    from tomowidgets.apply._apply import _slab_size

    # (slices, Dask threads): slab size; 64 slices in 7 slabs of 10 left one of 2 threads idle
    for (depth, threads), size in {(64, 2): 8, (64, 4): 8, (300, 2): 10, (7, 2): 2,
                                   (33, 3): 6}.items():
        assert _slab_size(None, (depth, 512, 512), 1, threads) == size
        assert -(-depth // size) % threads == 0
    assert _slab_size(None, (64, 512, 512), 1, None) == 10         # local: ~32 MB slabs
    assert _slab_size(5, (64, 512, 512), 1, 2) == 5                # as asked


def test_a_slab_holds_at_least_one_gpu_batch():
    """Four networks on 1024² slices make ~32 MB slabs of one slice, which would cut a GPU's batch
    of slices down to one per call."""
    from types import SimpleNamespace

    from tomowidgets.apply._apply import _batch, _slab_size
    from tomowidgets.apply._slabs import turned

    assert _slab_size(None, (64, 1024, 1024), 4, None) == 1
    assert _slab_size(None, (64, 1024, 1024), 4, None, batch=6) == 6
    assert _slab_size(3, (64, 1024, 1024), 4, None, batch=6) == 3   # as asked
    gpu = SimpleNamespace(batch=6, context=0)
    weights = FakeNet().weights()
    assert _batch({"a": turned(gpu, 2), "b": FFTEngine(weights, tile=TILE)}) == 6
    assert _batch({"b": FFTEngine(weights, tile=TILE)}) == 1


@pytest.mark.tensorflow
def test_the_keras_engine_gives_the_fft_engines_scores(tmp_path):
    """engine="keras" (what a GPU runs, through cuDNN) and the CPU FFT engine agree, 2D and 2.5D."""
    nets = [FakeNet("membrane", 0, 0.37), FakeNet("vesicle", 2, 0.5, context=1)]
    tomo = make_tomogram(5)
    fft = apply(nets, tomo, progress=False, engine="fft", tile=TILE)
    keras = apply(nets, tomo, progress=False, engine="keras")
    for name in ("membrane", "vesicle"):
        scale = float(np.abs(fft[name].data).max())
        np.testing.assert_allclose(keras[name].data, fft[name].data, rtol=0, atol=1e-4 * scale)


@pytest.mark.tensorflow
def test_the_keras_engine_predicts_like_the_fft_engine(monkeypatch):
    from tomowidgets.network import KerasEngine

    weights = FakeNet(context=1).weights()
    keras, fft = KerasEngine(weights, batch=2), FFTEngine(weights, tile=TILE)
    stack = make_tomogram(6).data[:5]
    assert keras.context == 1 and "context=1" in repr(keras)
    # Model.predict builds a data pipeline per call (~75 ms on a CPU, longer than a GPU's slice)
    monkeypatch.setattr(type(keras.model), "predict", lambda *a, **k: pytest.fail("Model.predict"))
    result = keras.predict(stack)
    assert result.shape == (3, SHAPE[1] // 2, SHAPE[2] // 2) and result.dtype == np.float32
    np.testing.assert_allclose(result, fft.predict(stack), rtol=0, atol=1e-4 * np.abs(result).max())
    with pytest.raises(ValueError, match="needs more than 2, got 2"):
        keras.predict(stack[:2])


def test_auto_uses_keras_only_where_tensorflow_sees_a_gpu_and_there_is_no_client(monkeypatch):
    from tomowidgets.apply import _apply as apply_module

    class Client:                                   # what _apply checks a client for
        submit = scatter = nthreads = None

    monkeypatch.setattr(apply_module, "gpu_available", lambda: True)
    assert apply_module._engine_kind("auto", None) == "keras"
    assert apply_module._engine_kind("auto", Client()) == "fft"     # Dask workers: no TensorFlow
    assert apply_module._engine_kind("fft", None) == "fft"
    monkeypatch.setattr(apply_module, "gpu_available", lambda: False)
    assert apply_module._engine_kind("auto", None) == "fft"
    with pytest.raises(ValueError, match='`engine` must be "auto", "fft" or "keras", got \'gpu\''):
        apply(FakeNet(), make_tomogram(), engine="gpu", progress=False)
    with pytest.raises(ValueError, match="Dask workers run the FFT engine"):
        apply_module._engine_kind("keras", Client())


def test_asking_for_a_gpu_without_a_driver_does_not_import_tensorflow():
    code = ("import sys; from tomowidgets.network._keras_engine import gpu_available; "
            "import tomowidgets.network._keras_engine as k; k._NVIDIA_GPUS = k.Path('/nonexistent'); "
            "import shutil; shutil.which = lambda name: None; "
            "sys.exit(1 if gpu_available() or 'tensorflow' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
