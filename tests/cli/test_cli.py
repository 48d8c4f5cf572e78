"""The CLI: conventions (exit codes, one-line errors, summaries) and the basic commands."""

import json

import numpy as np
import pytest

from operando import data
from operando.cli import main
from operando.io import read_dataset, write_dataset


def run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.fixture
def clean_file(tmp_path):
    y, x = np.mgrid[0:32, 0:32] / 32.0
    frames = np.stack(
        [0.5 + 0.3 * np.sin(2 * np.pi * (x + 0.1 * k)) * np.cos(2 * np.pi * y) for k in range(4)]
    )
    ds = data.image_series(frames, times=[0, 1, 2, 3])
    return write_dataset(ds, tmp_path / "clean.nc")


def test_help_and_version(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for cmd in ("demo", "info", "corrupt", "metrics"):
        assert cmd in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and "operando" in out


def test_info_json(capsys, clean_file):
    code, out, _ = run(capsys, "info", clean_file, "--json")
    assert code == 0
    d = json.loads(out)
    assert d["dims"] == ["t", "y", "x"] and d["shape"] == [4, 32, 32]
    assert d["ground_truth"] is None


def test_corrupt_then_metrics(capsys, tmp_path, clean_file):
    noisy = tmp_path / "noisy.nc"
    code, out, err = run(
        capsys,
        "corrupt",
        clean_file,
        "--out",
        noisy,
        "--noise",
        "gaussian:0.3",
        "--seed",
        3,
        "--no-clip",
    )
    assert code == 0, err
    ds = read_dataset(noisy)
    truth = data.get_truth(ds)
    clean = read_dataset(clean_file)["images"].values
    np.testing.assert_array_equal(truth.clean.values, clean)
    resid = ds["images"].values - clean
    # relative amplitude 0.3 of the per-frame std; 4096 samples/frame -> ~2 % sampling error
    ratio = resid.std(axis=(1, 2)) / clean.std(axis=(1, 2))
    np.testing.assert_allclose(ratio, 0.3, rtol=0.06)
    summary = json.loads((tmp_path / "noisy.nc.summary.json").read_text())
    assert summary["parameters"]["seed"] == 3
    assert summary["inputs"][str(clean_file)] != "missing"
    assert data.get_provenance(ds)[-1]["step"] == "corrupt"
    # the same seed reproduces the same output
    again = tmp_path / "again.nc"
    run(
        capsys,
        "corrupt",
        clean_file,
        "--out",
        again,
        "--noise",
        "gaussian:0.3",
        "--seed",
        3,
        "--no-clip",
    )
    np.testing.assert_array_equal(read_dataset(again)["images"].values, ds["images"].values)

    code, out, _ = run(capsys, "metrics", clean_file, noisy, "--json", "--data-range", 1)
    assert code == 0
    res = json.loads(out)["results"]
    mse = float(np.mean(resid**2))
    assert res["mse"] == pytest.approx(mse, rel=1e-12)
    assert res["psnr"] == pytest.approx(10 * np.log10(1 / mse), rel=1e-12)


def test_bad_inputs_exit_2_with_one_line(capsys, tmp_path, clean_file):
    cases = [
        ("info", tmp_path / "none.nc"),
        ("corrupt", clean_file, "--out", tmp_path / "o.nc", "--noise", "bogus:1"),
        ("corrupt", clean_file, "--out", tmp_path / "o.nc", "--noise", "gaussian:abc"),
        ("corrupt", tmp_path / "none.nc", "--out", tmp_path / "o.nc", "--noise", "composite"),
    ]
    for args in cases:
        code, _, err = run(capsys, *args)
        assert code == 2, args
        assert err.startswith("operando: error:") and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.nc").exists()
    assert not list(tmp_path.glob(".o.nc*"))


def test_metrics_shape_mismatch(capsys, tmp_path, clean_file):
    other = write_dataset(data.image_series(np.zeros((3, 32, 32))), tmp_path / "other.nc")
    code, _, err = run(capsys, "metrics", clean_file, other)
    assert code == 2 and "shapes differ" in err and "(4, 32, 32)" in err


def test_nan_input_rejected(capsys, tmp_path):
    arr = np.ones((2, 8, 8))
    arr[1, 2, 3] = np.nan
    np.save(tmp_path / "nan.npy", arr)
    code, _, err = run(
        capsys,
        "corrupt",
        tmp_path / "nan.npy",
        "--out",
        tmp_path / "o.nc",
        "--noise",
        "poisson:100",
    )
    assert code == 2 and "NaN" in err and "nan.npy" in err


def test_debug_shows_traceback(tmp_path):
    from operando.errors import FileFormatError

    with pytest.raises(FileFormatError):
        main(["--debug", "info", str(tmp_path / "none.nc")])
