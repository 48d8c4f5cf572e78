"""``operando denoise`` (the command function, on a local Typer app)."""

import json

import numpy as np
import pytest
import typer
import xarray as xr
from typer.testing import CliRunner

from operando.cli._denoise import denoise_command
from operando.data import attach_truth, image_series
from operando.errors import DataError
from operando.io import write_dataset

app = typer.Typer()
app.command("denoise")(denoise_command)
app.command("other")(lambda: None)  # two commands: Typer keeps "denoise" as a sub-command


@pytest.fixture(scope="module")
def noisy_file(tmp_path_factory):
    # one 96x96 frame: with the options below, the same jitted training step as the
    # TINY settings of test_train.py (compiled once per session)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    clean = (0.5 + 0.4 * np.sin(xx / 7) * np.cos(yy / 9))[None]
    noisy = clean + rng.normal(0, 0.15, clean.shape)
    ds = attach_truth(image_series(noisy, times=[0.0]), clean=clean, seed=0)
    path = tmp_path_factory.mktemp("cli") / "noisy.nc"
    write_dataset(ds, path)
    return path


def test_denoise_trains_writes_dataset_uncertainty_summary_and_model(tmp_path, noisy_file):
    out = tmp_path / "den.nc"
    args = ["denoise", str(noisy_file), "--out", str(out), "--method", "n2v", "--epochs", "1"]
    args += ["--steps-per-epoch", "10", "--patch", "32", "--batch-size", "8", "--filters", "8"]
    args += ["--masked-fraction", "0.02"]
    args += ["--ensemble", "2", "--seed", "1", "--model-out", str(tmp_path / "model")]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    ds = xr.open_dataset(out, engine="h5netcdf")
    assert ds["images"].dims == ("t", "y", "x") and ds["uncertainty"].shape == (1, 96, 96)
    assert "truth_images" in ds
    summary = json.loads((tmp_path / "den.nc.summary.json").read_text())
    r = summary["results"]
    for k in ("training_time_s", "final_loss", "psnr_noisy", "psnr_denoised"):
        assert np.isfinite(r[k])
    assert 0 < r["ssim_noisy"] <= 1 and 0 < r["ssim_denoised"] <= 1
    ds.close()

    # apply the saved model to the same data: no training, identical images
    out2 = tmp_path / "den2.nc"
    res = CliRunner().invoke(
        app,
        ["denoise", str(noisy_file), "--out", str(out2), "--model", str(tmp_path / "model")],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    a = xr.open_dataset(out, engine="h5netcdf")["images"].values
    b = xr.open_dataset(out2, engine="h5netcdf")["images"].values
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_denoise_rejects_umvd_on_a_short_video(tmp_path, noisy_file):
    with pytest.raises(DataError, match="fewer than the temporal window"):
        CliRunner().invoke(
            app,
            ["denoise", str(noisy_file), "--out", str(tmp_path / "x.nc"), "--method", "umvd"],
            catch_exceptions=False,
        )
