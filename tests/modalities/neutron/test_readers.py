"""Neutron frame readers: TIFF/FITS series, Data Exchange (real tooth.h5), registry, errors."""

import os

import h5py
import numpy as np
import pytest
import tifffile
from astropy.io import fits
from scipy import ndimage as ndi

from operando.errors import DataError, FileFormatError
from operando.io import read_dataset
from operando.modalities import neutron as nn


def test_tiff_series_directory_glob_and_multipage(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 4000, size=(4, 12, 10)).astype(np.uint16)
    d = tmp_path / "run"
    d.mkdir()
    for i, f in enumerate(frames):
        tifffile.imwrite(d / f"img_{i:03d}.tif", f)
    tifffile.imwrite(tmp_path / "stack.tiff", frames, photometric="minisblack")
    for src in (d, str(d / "img_*.tif"), sorted(d.iterdir()), tmp_path / "stack.tiff"):
        got = nn.read_frames(src)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, frames)


def test_fits_cube_single_and_registry(tmp_path):
    cube = np.arange(3 * 8 * 6, dtype=np.float32).reshape(3, 8, 6)
    fits.PrimaryHDU(cube).writeto(tmp_path / "cube.fits")
    fits.PrimaryHDU(cube[0]).writeto(tmp_path / "one.fit")
    np.testing.assert_array_equal(nn.read_frames(tmp_path / "cube.fits"), cube)
    np.testing.assert_array_equal(nn.read_frames(tmp_path / "one.fit"), cube[:1])
    ds = read_dataset(tmp_path / "cube.fits")  # registered with operando.io
    assert ds["images"].dims == ("t", "y", "x")
    np.testing.assert_array_equal(ds["images"].values, cube)


def test_mismatched_frame_sizes_name_the_file(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 8), np.uint16))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((8, 9), np.uint16))
    with pytest.raises(DataError, match=r"b\.tif.*frame size \(8, 9\) differs"):
        nn.read_frames(tmp_path)


def test_missing_files(tmp_path):
    with pytest.raises(FileFormatError, match="does not exist"):
        nn.read_frames(tmp_path / "nope.fits")
    with pytest.raises(FileFormatError, match="matches no file"):
        nn.read_frames(str(tmp_path / "ob_*.tif"))
    with pytest.raises(FileFormatError, match="no TIFF or FITS"):
        nn.read_frames(tmp_path)


def test_data_exchange_without_flats_is_a_clear_error(tmp_path):
    p = tmp_path / "dx.h5"
    with h5py.File(p, "w") as f:
        f["/exchange/data"] = np.ones((2, 4, 4))
        f["/exchange/data_dark"] = np.zeros((2, 4, 4))
    with pytest.raises(FileFormatError, match="data_white"):
        nn.read_data_exchange(p)
    with h5py.File(p, "a") as f:
        f["/exchange/data_white"] = np.ones((2, 4, 5))
    with pytest.raises(DataError, match="data_white frames are"):
        nn.read_data_exchange(p)


def test_data_exchange_tooth_normalisation(shared_data):
    path = os.path.join(shared_data, "tomopy-tooth", "tooth.h5")
    dx = nn.read_data_exchange(path)
    assert dx.data.shape == (181, 2, 640)
    assert dx.white.shape == (10, 2, 640) and dx.dark.shape == (10, 2, 640)
    assert dx.theta is not None and dx.theta.shape == (181,)
    # without the median filter: exactly the textbook flat/dark correction
    tr = nn.normalise(dx.data, dx.white, dx.dark, median=1)
    ref = (dx.data - dx.dark.mean(0)) / (dx.white.mean(0) - dx.dark.mean(0))
    assert tr.n_masked == 0 and tr.nonpositive_fraction == 0.0
    np.testing.assert_allclose(tr.transmission, ref, rtol=1e-12)
    # with the 3x3 median filter on all three series (seed 000 S2.4)
    tr3 = nn.normalise(dx.data, dx.white, dx.dark)
    med = [
        ndi.median_filter(a, size=(1, 3, 3), mode="nearest") for a in (dx.data, dx.white, dx.dark)
    ]
    ref3 = (med[0] - med[2].mean(0)) / (med[1].mean(0) - med[2].mean(0))
    np.testing.assert_allclose(tr3.transmission, ref3, rtol=1e-12)
    # the first 40 detector columns see air: T = 1 to within the flat-field noise (~1 %)
    air = tr3.transmission[:, :, :40]
    assert abs(np.median(air) - 1.0) < 0.01
    assert np.mean(np.abs(air - 1.0) < 0.05) > 0.98
    # the tooth absorbs: its darkest projections transmit well under half
    assert np.percentile(tr3.transmission, 1) < 0.3
    # the registry reads the same file as a dataset with its references
    ds = read_dataset(path)
    assert ds["open_beam"].shape == (10, 2, 640) and ds["dark"].shape == (10, 2, 640)
    np.testing.assert_array_equal(ds["images"].values, dx.data)


def test_analyze_runs_on_real_data_exchange(shared_data, tmp_path):
    from operando.pipelines._neutron import analyze_neutron_files

    path = os.path.join(shared_data, "tomopy-tooth", "tooth.h5")
    res = analyze_neutron_files(path, tmp_path, thickness_cm=1.0, figures=False)
    assert res["results"]["frames"] == 181 and res["results"]["masked_pixels"] == 0
    dx = nn.read_data_exchange(path)
    t = nn.normalise(dx.data, dx.white, dx.dark).transmission
    maps = read_dataset(tmp_path / "attenuation.nc")
    # flat 1 cm thickness: Sigma = -ln T exactly, every pixel valid (T > 0 throughout)
    np.testing.assert_allclose(maps["images"].values, -np.log(t), rtol=1e-12)
