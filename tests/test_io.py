"""MRC reading and writing: modes, voxel size, atomic writes and every kind of bad input."""

from __future__ import annotations

import os
import warnings

import mrcfile
import numpy as np
import pytest

import tomowidgets as tw
from tomowidgets.io import atomic_path


def _volume(shape=(6, 7, 8), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_write_then_read_round_trip_keeps_voxels_voxel_size_and_origin(tmp_path):
    tomo = tw.Tomogram(_volume(), apix=13.5, origin=(10.0, 20.0, 30.0))
    path = tw.write_tomogram(tmp_path / "t.mrc", tomo)
    back = tw.read_tomogram(path)
    np.testing.assert_array_equal(back.data, tomo.data)
    assert back.apix == pytest.approx(13.5)
    assert back.origin == (10.0, 20.0, 30.0)
    assert back.path == path
    with mrcfile.open(path) as mrc:  # the header stores (x, y, z)
        assert (int(mrc.header.nx), int(mrc.header.ny), int(mrc.header.nz)) == (8, 7, 6)
        assert float(mrc.voxel_size.z) == pytest.approx(13.5)


@pytest.mark.parametrize(
    ("dtype", "mode"),
    [(np.int8, 0), (np.int16, 1), (np.float32, 2), (np.uint16, 6), (np.float16, 12)],
)
def test_reads_every_supported_mode_as_float32(tmp_path, dtype, mode):
    data = (np.arange(2 * 3 * 4) % 100).reshape(2, 3, 4).astype(dtype)
    with mrcfile.new(tmp_path / "m.mrc") as mrc:
        mrc.set_data(data)
        mrc.voxel_size = 5.0
        assert int(mrc.header.mode) == mode
    tomo = tw.read_tomogram(tmp_path / "m.mrc")
    assert tomo.data.dtype == np.float32
    np.testing.assert_array_equal(tomo.data, data.astype(np.float32))


@pytest.mark.parametrize(("imod", "flags", "expected"), [(True, 0, 200.0), (True, 1, -56.0),
                                                       (False, 0, -56.0)])
@pytest.mark.parametrize("mmap", [False, True])
def test_mode_0_bytes_follow_imods_signed_flag(tmp_path, imod, flags, expected, mmap):
    """IMOD writes mode-0 bytes unsigned and says so in its header (stamp set, bit 0 of the flags
    clear); without IMOD's stamp, MRC2014 bytes are signed."""
    path = tmp_path / "bytes.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.full((2, 3, 4), 200, np.uint8).view(np.int8))
        words = np.frombuffer(bytes(mrc.header.extra2), dtype=mrc.header.dtype["nx"]).copy()
        words[10:12] = (1146047817 if imod else 0, flags)
        mrc.header.extra2 = words.tobytes()
    tomo = tw.read_tomogram(path, apix=10.0, mmap=mmap)
    assert np.asarray(tomo.data, np.float32).ravel().tolist() == [expected] * 24


@pytest.mark.parametrize("compression", ["gzip", "bzip2"])
@pytest.mark.parametrize("mmap", [False, True])
def test_compressed_files_are_read_even_when_a_memory_map_is_asked_for(tmp_path, compression, mmap):
    """A compressed file cannot be mapped: it is read into memory instead of being called not MRC."""
    path = tmp_path / ("t.mrc.gz" if compression == "gzip" else "t.mrc.bz2")
    with mrcfile.new(path, compression=compression) as mrc:
        mrc.set_data(_volume())
        mrc.voxel_size = 12.0
    tomo = tw.read_tomogram(path, mmap=mmap)
    np.testing.assert_array_equal(tomo.data, _volume())
    assert tomo.apix == pytest.approx(12.0)


@pytest.mark.parametrize(("name", "stem", "is_mrc"), [
    ("cell.mrc", "cell", True), ("cell.mrc.gz", "cell", True), ("run1.cell.REC.bz2", "run1.cell", True),
    ("cell.map", "cell", True), ("net.keras", "net", False), ("notes.gz", "notes", False),
    (".mrc", ".mrc", False)])
def test_mrc_names_lose_their_compressed_endings_too(name, stem, is_mrc):
    assert tw.io.mrc_stem(name) == stem and tw.io.is_mrc_name(name) == is_mrc


def _mrc_with(path, **header):
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
        mrc.voxel_size = 10.0
        for name, value in header.items():
            setattr(mrc.header, name, value) if name != "voxel_size" else setattr(mrc, name, value)
    return path


def test_anisotropic_voxels_are_refused_unless_the_voxel_size_is_given(tmp_path):
    path = _mrc_with(tmp_path / "aniso.mrc", voxel_size=(10.0, 10.0, 15.0))
    with pytest.raises(ValueError, match="aniso.mrc' has voxels of 10 × 10 × 15 Å .* not cubic"):
        tw.read_tomogram(path)
    assert tw.read_tomogram(path, apix=10.0).apix == 10.0
    assert tw.read_tomogram(_mrc_with(tmp_path / "cubic.mrc", voxel_size=(10.0, 10.0, 10.005))).apix == 10.0


def test_a_permuted_axis_order_is_refused(tmp_path):
    path = _mrc_with(tmp_path / "yxz.mrc", mapc=2, mapr=1, maps=3)
    with pytest.raises(ValueError, match=r"yxz.mrc' stores its axes in the order .* = \(2, 1, 3\)"):
        tw.read_tomogram(path)


def test_a_start_index_without_origin_places_the_volume(tmp_path):
    path = _mrc_with(tmp_path / "sub.mrc", nxstart=4, nystart=2, nzstart=1)
    assert tw.read_tomogram(path).origin == (10.0, 20.0, 40.0)
    both = _mrc_with(tmp_path / "both.mrc", nxstart=4, origin=(100.0, 0.0, 0.0))
    assert tw.read_tomogram(both).origin == (0.0, 0.0, 100.0)          # the origin wins


def test_single_2d_image_becomes_one_slice(tmp_path):
    with mrcfile.new(tmp_path / "i.mrc") as mrc:
        mrc.set_data(np.ones((5, 6), np.float32))
        mrc.voxel_size = 2.0
    assert tw.read_tomogram(tmp_path / "i.mrc").shape == (1, 5, 6)


def test_memory_mapped_read_stays_in_the_file(tmp_path):
    tw.write_tomogram(tmp_path / "t.mrc", _volume(), apix=10)
    tomo = tw.read_tomogram(tmp_path / "t.mrc", mmap=True)
    assert tomo.is_mmap
    assert "memory-mapped" in repr(tomo)
    np.testing.assert_array_equal(tomo.slab(1, 3), _volume()[1:3])


def test_repr_shows_shape_voxel_size_and_physical_size():
    text = repr(tw.Tomogram(np.zeros((10, 20, 30), np.float32), apix=10.0))
    assert "z=10, y=20, x=30" in text and "apix=10 Å" in text and "10×20×30 nm" in text


def test_float16_output_halves_the_file(tmp_path):
    vol = _volume((8, 16, 16))
    tw.write_tomogram(tmp_path / "a.mrc", vol, apix=1.0)
    tw.write_tomogram(tmp_path / "b.mrc", vol, apix=1.0, dtype=np.float16)
    assert os.path.getsize(tmp_path / "b.mrc") < 0.6 * os.path.getsize(tmp_path / "a.mrc")
    back = tw.read_tomogram(tmp_path / "b.mrc")
    np.testing.assert_allclose(back.data, vol, atol=1e-2)


def test_missing_voxel_size_warns_and_assumes_one_angstrom(tmp_path):
    with mrcfile.new(tmp_path / "n.mrc") as mrc:
        mrc.set_data(np.zeros((2, 3, 4), np.float32))
    with pytest.warns(RuntimeWarning, match="no voxel size"):
        tomo = tw.read_tomogram(tmp_path / "n.mrc")
    assert tomo.apix == 1.0
    assert tw.read_tomogram(tmp_path / "n.mrc", apix=7.0).apix == 7.0  # explicit override: no warning


def test_missing_file_raises_file_not_found_with_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.mrc"):
        tw.read_tomogram(tmp_path / "nothere.mrc")


def test_file_that_is_not_mrc_raises_value_error_naming_it(tmp_path):
    bad = tmp_path / "notes.mrc"
    bad.write_text("this is a text file, not a tomogram\n" * 50)
    with pytest.raises(ValueError, match="notes.mrc.*not a readable MRC"):
        tw.read_tomogram(bad)


@pytest.mark.parametrize("mmap", [False, True])
def test_truncated_file_raises_value_error_naming_it(tmp_path, mmap):
    tw.write_tomogram(tmp_path / "t.mrc", _volume((8, 16, 16)), apix=1.0)
    raw = (tmp_path / "t.mrc").read_bytes()
    (tmp_path / "cut.mrc").write_bytes(raw[: len(raw) - 500])
    with pytest.raises(ValueError, match="cut.mrc"):
        tw.read_tomogram(tmp_path / "cut.mrc", mmap=mmap)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_voxels_raise_value_error_naming_the_file(tmp_path, bad):
    vol = _volume()
    vol[3, 2, 1] = bad
    with warnings.catch_warnings(), mrcfile.new(tmp_path / "nan.mrc") as mrc:
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile warns about the bad voxel we want
        mrc.set_data(vol)
        mrc.voxel_size = 1.0
    with pytest.raises(ValueError, match=r"nan.mrc.*1 NaN or infinite"):
        tw.read_tomogram(tmp_path / "nan.mrc")
    with pytest.raises(ValueError, match="NaN or infinite"):
        tw.write_tomogram(tmp_path / "out.mrc", vol, apix=1.0)


def test_4d_stack_raises_on_read_and_write(tmp_path):
    with mrcfile.new(tmp_path / "s.mrc") as mrc:
        mrc.set_data(np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="4D"):
        tw.read_tomogram(tmp_path / "s.mrc")
    with pytest.raises(ValueError, match="3-dimensional"):
        tw.write_tomogram(tmp_path / "o.mrc", np.zeros((2, 3, 4, 5), np.float32), apix=1.0)


def test_write_needs_a_positive_voxel_size_and_a_float_dtype(tmp_path):
    with pytest.raises(ValueError, match="apix"):
        tw.write_tomogram(tmp_path / "o.mrc", _volume())
    with pytest.raises(ValueError, match="apix"):
        tw.write_tomogram(tmp_path / "o.mrc", _volume(), apix=0)
    with pytest.raises(ValueError, match="float32, float16 or int8"):
        tw.write_tomogram(tmp_path / "o.mrc", _volume(), apix=1, dtype=np.int32)


def test_swapped_arguments_say_that_the_file_name_comes_first(tmp_path):
    tomo = tw.Tomogram(np.zeros((2, 4, 4), np.float32), apix=10.0)
    with pytest.raises(TypeError, match=r"file name comes first: write_tomogram\(path, tomo\)"):
        tw.write_tomogram(tomo, tmp_path / "cell.mrc")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "keep.mrc"
    tw.write_tomogram(target, _volume(), apix=3.0)
    before = target.read_bytes()
    bad = _volume()
    bad[-1, -1, -1] = np.nan  # detected only at the last slab, after writing has begun
    with pytest.raises(ValueError):
        tw.write_tomogram(target, bad, apix=3.0)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mrc"]  # no temporary left behind


def test_atomic_path_renames_only_on_success(tmp_path):
    target = tmp_path / "x.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("broken")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "new"


def test_tomogram_rejects_bad_construction():
    with pytest.raises(ValueError, match="3-dimensional"):
        tw.Tomogram(np.zeros((3, 4), np.float32), apix=1.0)
    with pytest.raises(ValueError, match="apix"):
        tw.Tomogram(np.zeros((3, 4, 5), np.float32), apix=-1.0)


def test_int8_holds_masks_and_label_maps(tmp_path):
    labels = np.zeros((3, 4, 5), np.uint8)
    labels[1, 2, 3] = 1
    labels[2, 0, 0] = 7
    tw.write_tomogram(tmp_path / "l.mrc", labels, apix=10.0, dtype=np.int8)
    with mrcfile.open(tmp_path / "l.mrc") as mrc:
        assert int(mrc.header.mode) == 0
    np.testing.assert_array_equal(tw.read_tomogram(tmp_path / "l.mrc").data, labels)
    with pytest.raises(ValueError, match="int8"):
        tw.write_tomogram(tmp_path / "big.mrc", labels * 100, apix=10.0, dtype=np.int8)


def test_written_files_get_ordinary_permissions_not_private_temp_ones(tmp_path):
    path = tw.write_tomogram(tmp_path / "p.mrc", _volume(), apix=1.0)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_read_only_folder_is_reported_with_the_output_not_the_temporary(tmp_path, monkeypatch):
    import errno
    import tempfile

    def read_only(prefix, suffix, dir):
        name = os.path.join(dir, prefix + "x" + suffix)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), name)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OSError, match="Read-only file system") as err, atomic_path(tmp_path / "o.mrc"):
        pass
    assert err.value.filename == str(tmp_path / "o.mrc")


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    """Temporaries carry their writer's process id; one whose process is gone (kill -9 mid-write)
    is deleted when the file is next written, one of a running writer is left alone."""
    from tomowidgets.io import atomic_path

    orphan = tmp_path / ".a.mrc.4194309.k3j2.tmp"       # above Linux's largest process id
    orphan.write_bytes(b"x" * 1000)
    running = tmp_path / f".a.mrc.{os.getpid()}.q8w1.tmp"
    running.write_bytes(b"y")
    other = tmp_path / ".b.mrc.4194309.k3j2.tmp"         # another file's: not ours to judge now
    other.write_bytes(b"z")
    with atomic_path(tmp_path / "a.mrc") as tmp:
        assert tmp.name.startswith(f".a.mrc.{os.getpid()}.")
        tmp.write_bytes(b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.mrc", running.name, other.name])


def test_the_value_scan_of_a_memory_mapped_file_does_not_keep_it_resident(tmp_path):
    """read_tomogram(mmap=True) scans for NaN slab by slab; every page it touched stayed counted in
    the process's memory, so preprocess peaked at 1.4 GiB on a 1 GiB tomogram (0.53 GiB now)."""
    import subprocess
    import sys

    path = tmp_path / "big.mrc"
    with mrcfile.new_mmap(path, shape=(128, 512, 512), mrc_mode=2) as mrc:   # 128 MiB
        mrc.data[:] = 1.0
        mrc.voxel_size = 10.0
    code = (
        "import tomowidgets as tw\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
        "before = rss()\n"
        f"tomo = tw.read_tomogram({str(path)!r}, mmap=True)\n"
        "print(rss() - before)\n")
    grown = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout)
    assert grown < 64, f"{grown:.0f} MiB stayed resident after scanning a 128 MiB file"
