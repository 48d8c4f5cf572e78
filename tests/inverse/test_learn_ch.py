"""Cahn–Hilliard recovery: snapshot selection, Jacobians, bad input, and the headline test."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from operando.data import image_series
from operando.errors import DataError, ParameterError
from operando.inverse import coarsening_onset, learn_ch, select_snapshots
from operando.inverse._ch import _ch_residual, _CHProblem, _IntervalD, _IntervalMu
from operando.physics import LegendreChemicalPotential, LegendreLogDiffusivity
from operando.simulate import simulate_ch_dataset

# A small benchmark-like series: same pixel size (1/64) and kappa as the full benchmark,
# 32x32 on a 0.5-wide domain, 13 frames 0.01 apart covering spinodal decomposition
# (frames 0-6) and the onset of coarsening.
SMALL = {"size": 32, "length": 0.5, "t_end": 0.12, "frames": 13, "realizations": 1}


@pytest.fixture(scope="module")
def small_ds():
    return simulate_ch_dataset(**SMALL)


def test_recovers_mu_and_D_with_prior_on_clean_data(small_ds):
    # The acceptance criterion on a small grid: mu_rmse, D_rmse < 0.05 on
    # c in [0.1, 0.9]. Degree 4 and 4 snapshots keep it fast; the fit reaches
    # mu_rmse ~ 3e-4 and D_rmse ~ 0.015 (degree 4 represents D = 1 - c only to ~0.02 in
    # exp-Legendre form), so the 0.05 bound has a 3x margin.
    fit = learn_ch(small_ds, degree=4, snapshots=4, max_steps=40)
    assert fit.success, fit.result.message
    m = fit.metrics
    assert m["mu_rmse"] < 0.05 and m["D_rmse"] < 0.05, m
    # ~6e-9, vs ~1e-3 between consecutive frames: the dynamics are fitted.
    assert m["final_mse"] < 1e-6
    assert set(m) >= {"mu_rmse_full", "D_rmse_full", "final_mse_clean"}
    # Default selection: consecutive frames from the coarsening onset.
    onset = coarsening_onset(small_ds["images"].values[0])
    np.testing.assert_array_equal(fit.snapshot_indices, onset + np.arange(4))
    # Bands exist and are finite; the dataset round-trips the essentials.
    assert np.all(np.isfinite(fit.mu_std)) and np.all(np.isfinite(fit.D_std))
    out = fit.to_dataset()
    assert out["predicted"].shape == out["images"].shape == (4, 32, 32)
    assert np.isnan(out["predicted"].values[0]).all()
    assert fit.D_true is not None and fit.mu_true is not None


def test_autodiff_jacobian_matches_finite_differences(small_ds):
    # The forward-mode Jacobian of the multiple-shooting residual equals central finite
    # differences. h = 1e-5 balances truncation (O(h^2) ~ 1e-10) and round-off
    # (eps / h ~ 1e-11) on residuals of size ~1e-2.
    deg = 3
    frames = np.asarray(small_ds["images"].values[0, 7:10])
    mu = LegendreChemicalPotential(degree=deg)
    D = LegendreLogDiffusivity(degree=deg)
    problem = _CHProblem(
        mu_h=_IntervalMu(mu), D=_IntervalD(D), kappa=2e-3, length=0.5, n_sub=20, weight=1.0
    )
    args = (jnp.asarray(frames[:-1]), jnp.asarray(frames[1:]), jnp.array([0.01, 0.01]), problem)
    p = {"mu": jnp.array([-1.5, 0.1, -0.05]), "D": jnp.array([-0.8, -0.7, -0.2, 0.05])}
    J = jax.jacfwd(lambda q: _ch_residual(q, args))(p)
    for key in ("mu", "D"):
        for i in range(p[key].size):
            h = 1e-5
            plus = {**p, key: p[key].at[i].add(h)}
            minus = {**p, key: p[key].at[i].add(-h)}
            fd = (_ch_residual(plus, args) - _ch_residual(minus, args)) / (2 * h)
            scale = float(jnp.max(jnp.abs(fd)))
            assert scale > 0
            np.testing.assert_allclose(J[key][..., i], fd, atol=1e-6 * scale)


def test_select_snapshots_rules():
    std_growth = np.concatenate([np.linspace(0.01, 0.3, 8), np.linspace(0.31, 0.33, 12)])
    frames = std_growth[:, None, None] * np.sign(np.random.default_rng(0).normal(size=(1, 8, 8)))
    onset = coarsening_onset(frames)
    assert std_growth[onset] >= 0.75 * 0.33 > std_growth[onset - 1]
    np.testing.assert_array_equal(select_snapshots(frames, 3), onset + np.arange(3))
    np.testing.assert_array_equal(select_snapshots(frames, 3, stride=2), onset + 2 * np.arange(3))
    # Stride too long for the series: spread evenly to the last frame instead.
    idx = select_snapshots(frames, 3, stride=50)
    assert idx[0] == onset and idx[-1] == 19
    np.testing.assert_array_equal(select_snapshots(frames, 3, window=(0.5, 1.0)), [10, 14, 19])
    with pytest.raises(DataError, match="fewer than snapshots"):
        select_snapshots(frames, 30)
    with pytest.raises(ParameterError, match="at least 2"):
        select_snapshots(frames, 1)
    with pytest.raises(ParameterError, match="sub-interval"):
        select_snapshots(frames, 3, window=(0.8, 0.2))


def test_bad_input_is_a_clear_error(small_ds):
    img = small_ds["images"].values[0]
    t = small_ds["t"].values
    # Values outside (0, 1): noisy data must be clipped first.
    bad = image_series(np.where(img > 0.9, 1.02, img), t, pixel_size=0.5 / 32)
    with pytest.raises(DataError, match="clip"):
        learn_ch(bad, degree=2, snapshots=2, max_steps=1)
    # Too few frames for the requested snapshots.
    with pytest.raises(DataError, match="fewer than snapshots"):
        learn_ch(small_ds, degree=2, snapshots=12, max_steps=1)
    with pytest.raises(ParameterError, match="at least 1"):
        learn_ch(small_ds, degree=0, snapshots=2)
    with pytest.raises(ParameterError, match="realization"):
        learn_ch(small_ds, degree=2, snapshots=2, realization=3)
    # A non-periodic crop (the field jumps across the boundary).
    crop = np.concatenate([img[:, :, :16], img[:, :, :16][:, :, ::-1] * 0 + 0.5], axis=2)
    crop[:, :, -1] = 0.95
    crop[:, :, 0] = 0.05
    with pytest.raises(DataError, match="not periodic"):
        learn_ch(image_series(crop, t, pixel_size=0.5 / 32), degree=2, snapshots=2)
    with pytest.raises(DataError, match="8x8"):
        learn_ch(image_series(img[:, :4, :4], t), degree=2, snapshots=2)


def test_divergence_is_a_failed_status_not_garbage(small_ds):
    # ln D = 800 overflows exp: the forward model produces inf/NaN from the start. The
    # fit must report `failed` with an explanation, not return NaN laws or crash.
    fit = learn_ch(small_ds, degree=2, snapshots=2, D0=np.array([800.0, 0.0, 0.0]), max_steps=3)
    assert fit.status.value == "failed"
    assert "diverged" in fit.result.message and "dt" in fit.result.message


def test_pipeline_and_cli_write_outputs(small_ds, tmp_path):
    import json

    from typer.testing import CliRunner

    from operando.cli._learn import app
    from operando.io import read_dataset, write_dataset

    data = tmp_path / "ch.nc"
    write_dataset(small_ds, data)
    out = tmp_path / "fit"
    result = CliRunner().invoke(
        app,
        ["ch", str(data), "--out", str(out), "--degree", "2", "--snapshots", "3"],
    )
    assert result.exit_code == 0, result.output
    for name in ("fit.nc", "laws.png", "snapshots.png", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    res = summary["results"]
    for key in ("final_mse", "iterations", "wall_s", "status", "mu_rmse", "D_rmse"):
        assert key in res, key
    assert res["status"] == "converged" and res["mu_rmse_full"] >= 0
    assert summary["parameters"]["degree"] == 2
    fit = read_dataset(out / "fit.nc")
    assert fit["images"].dims == ("t", "y", "x") and "D_std" in fit


def test_cli_help_and_bad_degree():
    from typer.testing import CliRunner

    from operando.cli._learn import app

    runner = CliRunner()
    text = runner.invoke(app, ["ch", "--help"]).output
    for flag in ("--out", "--degree", "--prior", "--no-prior", "--snapshots", "--realization"):
        assert flag in text
    assert runner.invoke(app, ["ch", "x.nc", "--out", "o", "--degree", "0"]).exit_code == 2
