"""Reading/writing datasets: round trips, the reader registry, atomic writes, bad files."""

import json
import os

import h5py
import numpy as np
import pytest
import tifffile
import xarray as xr

from operando import data
from operando.errors import DataError, FileFormatError
from operando.io import (
    atomic_path,
    file_sha256,
    read_dataset,
    write_dataset,
    write_json,
    write_summary,
)


def _synthetic():
    rng = np.random.default_rng(1)
    clean = rng.random((4, 6, 5))
    masks = np.zeros((2, 6, 5), bool)
    masks[0, :3] = True
    masks[1, 3:] = True
    ds = data.image_series(
        clean + 0.1,
        times=[0.0, 0.5, 1.0, 2.0],
        pixel_size=80.0,
        pixel_unit="nm",
        masks=masks,
        attrs={"instrument": "ALS 11.0.2.2", "dwell_ms": 1.5, "flags": {"aligned": True}},
    )
    c = np.linspace(0.01, 0.99, 11)
    ds = data.attach_truth(
        ds, clean=clean, functions={"D": (c, 1 - c)}, parameters={"omega": 3.0}, seed=5
    )
    return data.add_provenance(ds, "simulate", seed=5)


def test_roundtrip_with_metadata_and_truth(tmp_path):
    ds = _synthetic()
    path = write_dataset(ds, tmp_path / "a.nc")
    back = read_dataset(path)
    xr.testing.assert_identical(ds, back)
    assert back["masks"].dtype == bool
    truth = data.get_truth(back)
    assert truth.seed == 5 and truth.parameters == {"omega": 3.0}
    assert json.loads(back.attrs["flags"]) == {"aligned": True}
    # the .h5 suffix is the same NetCDF4/HDF5 container
    back2 = read_dataset(write_dataset(ds, tmp_path / "a.h5"))
    xr.testing.assert_identical(ds, back2)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []
    # and an existing complete file is not clobbered by a failed rewrite
    target.write_text("complete")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_dataset_failure_leaves_no_file(tmp_path, monkeypatch):
    ds = _synthetic()

    def boom(self, *a, **k):
        with open(a[0], "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(ds, tmp_path / "x.nc")
    assert list(tmp_path.iterdir()) == []


def test_tiff_npy_npz_readers(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    tifffile.imwrite(tmp_path / "s.tif", arr)
    np.save(tmp_path / "s.npy", arr)
    np.savez(tmp_path / "s.npz", images=arr, other=arr[0])
    for spec in ["s.tif", "s.npy", "s.npz:images"]:
        ds = read_dataset(tmp_path / spec if ":" not in spec else f"{tmp_path}/{spec}")
        np.testing.assert_array_equal(ds["images"].values, arr)
        assert ds["images"].dims == ("t", "y", "x")
    ds = read_dataset(tmp_path / "s.npy", dims=("energy", "y", "x"))
    assert ds["images"].dims == ("energy", "y", "x")
    with pytest.raises(DataError, match="holds 2 arrays"):
        read_dataset(tmp_path / "s.npz")
    with pytest.raises(FileFormatError, match="no array 'nope'"):
        read_dataset(f"{tmp_path}/s.npz:nope")


def test_hdf5_path_spec(tmp_path):
    f = tmp_path / "raw.h5"
    with h5py.File(f, "w") as h:
        h["/exchange/data"] = np.ones((3, 2, 4), np.float32)
    ds = read_dataset(f"{f}:/exchange/data")
    assert ds["images"].shape == (3, 2, 4)
    with pytest.raises(FileFormatError, match="has no dataset"):
        read_dataset(f"{f}:/exchange/nothing")
    with pytest.raises(FileFormatError, match="is a group"):
        read_dataset(f"{f}:/exchange")
    with pytest.raises(FileFormatError, match="not an operando dataset") as e:
        read_dataset(f)
    assert "raw.h5:/exchange/data" in str(e.value)


def test_real_data_exchange_file(shared_data):
    path = os.path.join(shared_data, "tomopy-tooth", "tooth.h5")
    ds = read_dataset(f"{path}:/exchange/data", dims=("z", "y", "x"))
    assert ds["images"].shape == (181, 2, 640)


@pytest.mark.parametrize("name", ["missing.nc", "missing.tif"])
def test_missing_file(tmp_path, name):
    with pytest.raises(FileFormatError, match="does not exist") as e:
        read_dataset(tmp_path / name)
    assert name in str(e.value)


def test_unknown_format_and_directory(tmp_path):
    (tmp_path / "x.xyz").write_text("hello")
    with pytest.raises(FileFormatError, match=r"unknown file format '\.xyz'"):
        read_dataset(tmp_path / "x.xyz")
    with pytest.raises(FileFormatError, match="directory"):
        read_dataset(tmp_path)


@pytest.mark.parametrize("suffix", [".nc", ".h5", ".tif", ".npy"])
def test_corrupt_files(tmp_path, suffix):
    p = tmp_path / f"bad{suffix}"
    p.write_bytes(b"\x89HDF\r\n garbage that is not a real file" * 3)
    with pytest.raises(FileFormatError) as e:
        read_dataset(p)
    assert str(p) in str(e.value)


def test_truncated_netcdf(tmp_path):
    p = write_dataset(_synthetic(), tmp_path / "t.nc")
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FileFormatError, match="corrupt"):
        read_dataset(p)


def test_nan_in_raw_array_rejected(tmp_path):
    arr = np.ones((2, 3, 3))
    arr[0, 1, 1] = np.nan
    np.save(tmp_path / "n.npy", arr)
    with pytest.raises(DataError, match="NaN") as e:
        read_dataset(tmp_path / "n.npy")
    assert "n.npy" in str(e.value)


def test_summary_records_versions_params_checksums(tmp_path):
    inp = tmp_path / "in.npy"
    np.save(inp, np.zeros((2, 2)))
    p = write_summary(
        tmp_path / "out",
        command="operando test",
        parameters={"a": np.float64(1.5)},
        results={"psnr": np.float32(30.0), "bad": float("nan")},
        inputs=[inp],
    )
    rec = json.loads(p.read_text())
    assert p.name == "summary.json"
    assert rec["parameters"] == {"a": 1.5} and rec["results"]["psnr"] == 30.0
    assert rec["results"]["bad"] is None  # NaN is not valid JSON
    assert rec["inputs"][str(inp)] == file_sha256(inp)
    assert rec["versions"]["operando"]
    write_json({"x": 1}, tmp_path / "j.json")
    assert json.loads((tmp_path / "j.json").read_text()) == {"x": 1}
