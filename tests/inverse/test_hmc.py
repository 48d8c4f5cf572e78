"""NUTS on the posterior of a least-squares objective, against an analytic posterior."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from operando.errors import ParameterError
from operando.inverse._hmc import least_squares_log_posterior, nuts


def _linear_gaussian():
    # y = A p + e, e ~ N(0, sigma^2), prior p_2 ~ N(0, sigma^2 / 2) (weight 2), p_0,1 flat:
    # the posterior is Gaussian with precision (A^T A + W) / sigma^2.
    rng = np.random.default_rng(0)
    A = rng.normal(size=(30, 3))
    sigma = 0.3
    y = A @ np.array([1.0, -2.0, 0.5]) + sigma * rng.normal(size=30)
    W = np.diag([0.0, 0.0, 2.0])
    cov = np.linalg.inv((A.T @ A + W) / sigma**2)
    mean = cov @ (A.T @ y) / sigma**2

    def residual(p, args):
        a, yy = args
        return a @ jnp.concatenate([p["a"], p["b"][None]]) - yy

    lp = least_squares_log_posterior(
        residual,
        (jnp.asarray(A), jnp.asarray(y)),
        sigma=sigma,
        regularization={"a": jnp.zeros(2), "b": 2.0},
    )
    return lp, mean, cov


def test_log_posterior_is_the_scaled_objective():
    lp, mean, cov = _linear_gaussian()
    # A Gaussian: log p(m + d) - log p(m) = -d^T P d / 2 exactly.
    d = np.array([0.03, -0.02, 0.05])
    p = {"a": jnp.asarray(mean[:2] + d[:2]), "b": jnp.asarray(mean[2] + d[2])}
    m = {"a": jnp.asarray(mean[:2]), "b": jnp.asarray(mean[2])}
    want = -0.5 * d @ np.linalg.inv(cov) @ d
    assert float(lp(p) - lp(m)) == pytest.approx(want, rel=1e-9)


def test_nuts_recovers_analytic_gaussian_posterior():
    lp, mean, cov = _linear_gaussian()
    start = {"a": jnp.asarray(mean[:2]), "b": jnp.asarray(mean[2])}
    res = nuts(
        lp, start, key=jax.random.key(1), num_chains=4, num_warmup=200, num_samples=400,
        init_std=0.1, grad="fwd",
    )  # fmt: skip
    d = res.draws()
    x = np.column_stack([d["a"], d["b"]])
    assert x.shape == (1600, 3) and res.samples["a"].shape == (4, 400, 2)
    sd = np.sqrt(np.diag(cov))
    # Monte Carlo error of a mean is sd / sqrt(ESS) ~ 0.03 sd at ESS ~ 1000: allow 5x that.
    np.testing.assert_array_less(np.abs(x.mean(0) - mean) / sd, 0.15)
    # relative MC error of a std is ~ 1 / sqrt(2 ESS) ~ 2 %: allow 10 %.
    np.testing.assert_allclose(x.std(0) / sd, 1.0, atol=0.1)
    assert res.max_rhat < 1.02
    assert res.min_ess > 400
    assert np.all(res.divergences == 0)
    s = res.summary()
    assert s["chains"] == 4 and s["num_samples"] == 400


def test_bad_options():
    lp, _, _ = _linear_gaussian()
    with pytest.raises(ParameterError):
        least_squares_log_posterior(lambda p, a: p, sigma=0.0)
    with pytest.raises(ParameterError):
        nuts(lp, {"a": jnp.zeros(2), "b": jnp.zeros(())}, key=jax.random.key(0), num_samples=1)
