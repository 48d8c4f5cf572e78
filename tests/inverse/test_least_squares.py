"""The Levenberg–Marquardt engine on analytic problems."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from operando.errors import ConvergenceError, ParameterError
from operando.inverse import Status, least_squares, propagate_covariance


def test_linear_least_squares_solution_and_covariance():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(50, 4))
    y = A @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=50)
    res = least_squares(
        lambda p, a: a[0] @ p - a[1], jnp.zeros(4), (jnp.asarray(A), jnp.asarray(y)), rtol=1e-14
    )
    x_ref, rss, *_ = np.linalg.lstsq(A, y, rcond=None)
    assert res.status is Status.CONVERGED and res.success
    np.testing.assert_allclose(res.params, x_ref, rtol=1e-10, atol=1e-12)
    sigma2 = rss[0] / (50 - 4)
    np.testing.assert_allclose(res.sigma2, sigma2, rtol=1e-10)
    np.testing.assert_allclose(res.covariance, sigma2 * np.linalg.inv(A.T @ A), rtol=1e-8)
    np.testing.assert_allclose(res.cost, 0.5 * rss[0], rtol=1e-10)
    assert res.n_residuals == 50 and res.n_params == 4
    # A linear problem is solved by the first (nearly undamped) steps.
    assert res.n_accepted <= 6


def test_rosenbrock_as_residuals():
    def r(p, _):
        return jnp.stack([10.0 * (p["y"] - p["x"] ** 2), 1.0 - p["x"]])

    res = least_squares(r, {"x": -1.2, "y": 1.0}, max_steps=200)
    assert res.success, res.message
    np.testing.assert_allclose([res.params["x"], res.params["y"]], [1.0, 1.0], atol=1e-8)
    # The cost history is monotone (only accepted steps are recorded).
    assert np.all(np.diff(res.cost_history) <= 0)
    assert res.cost_history[0] == pytest.approx(0.5 * (4.4**2 + 2.2**2))


def test_reverse_mode_jacobian_agrees():
    def r(p, _):
        return jnp.stack([10.0 * (p[1] - p[0] ** 2), 1.0 - p[0]])

    fwd = least_squares(r, jnp.array([-1.2, 1.0]), jac="fwd", max_steps=200)
    rev = least_squares(r, jnp.array([-1.2, 1.0]), jac="rev", max_steps=200)
    np.testing.assert_allclose(fwd.params, rev.params, atol=1e-10)
    assert fwd.iterations == rev.iterations


def _decay_residual(p, a):
    return p["A"] * jnp.exp(-p["k"] * a[0]) - a[1]


def _decay_fit(key, t, noise):
    # A module-level residual function: repeated fits reuse one compilation.
    y = 2.0 * jnp.exp(-3.0 * t) + noise * jax.random.normal(key, t.shape)
    return least_squares(_decay_residual, {"A": 1.0, "k": 1.0}, (t, y))


def test_exponential_decay_recovers_parameters_and_covariance_coverage():
    # 200 noisy fits: the Gauss–Newton covariance should cover the truth at the nominal
    # rate. For 95 % intervals over 200 trials a binomial 3-sigma band is [0.90, 0.99];
    # we accept [0.88, 1.0] to leave room for the linearisation.
    t = jnp.linspace(0.0, 2.0, 40)
    keys = jax.random.split(jax.random.key(0), 200)
    hits = np.zeros(2)
    for key in keys:
        res = _decay_fit(key, t, 0.05)
        assert res.success
        z = (np.array([res.params["A"], res.params["k"]]) - [2.0, 3.0]) / np.sqrt(
            np.diag(res.covariance)
        )
        hits += np.abs(z) <= 1.96
    coverage = hits / len(keys)
    assert np.all((coverage >= 0.88) & (coverage <= 1.0)), coverage
    std = res.std()
    assert set(std) == {"A", "k"} and float(std["k"]) > 0


def test_nan_region_is_rejected_not_fatal():
    # r = ln p - ln 2 from p = 20: the undamped Gauss–Newton step is
    # -p (ln 20 - ln 2) = -46, landing at p < 0 where ln p is NaN. The engine must reject
    # that step, increase the damping and still converge to p = 2.
    def r(p, _):
        return jnp.log(p) - jnp.log(2.0)

    seen = []
    res = least_squares(r, jnp.array([20.0]), callback=seen.append, damping0=1e-12)
    assert res.success, res.message
    np.testing.assert_allclose(res.params, [2.0], rtol=1e-8)
    assert not seen[0].accepted, "the first (NaN) step should have been rejected"


def test_non_finite_start_fails_as_value_or_raises():
    def r(p, _):
        return jnp.log(p) - 1.0

    res = least_squares(r, jnp.array([-1.0]))
    assert res.status is Status.FAILED and "not finite" in res.message
    with pytest.raises(ConvergenceError, match="not finite"):
        least_squares(r, jnp.array([-1.0]), throw=True)


def test_max_steps_status():
    def r(p, _):
        return jnp.stack([10.0 * (p[1] - p[0] ** 2), 1.0 - p[0]])

    res = least_squares(r, jnp.array([-1.2, 1.0]), max_steps=2)
    assert res.status is Status.MAX_STEPS and res.iterations == 2
    with pytest.raises(ConvergenceError, match="max_steps"):
        least_squares(r, jnp.array([-1.2, 1.0]), max_steps=2, throw=True)


def test_regularisation_pulls_toward_prior_mean():
    # One observation y = p + noise and an L2 prior of weight w around m: the posterior
    # mode is (y + w m) / (1 + w) and the Gauss–Newton variance sigma^2 / (1 + w).
    def r(p, a):
        return jnp.atleast_1d(p["x"] - a)

    for w, m in ((0.0, 0.0), (1.0, 0.0), (3.0, 2.0)):
        res = least_squares(r, {"x": 0.0}, jnp.array(1.0), regularization=w, prior_mean={"x": m})
        np.testing.assert_allclose(res.params["x"], (1.0 + w * m) / (1.0 + w), rtol=1e-10)
    # Per-leaf weights: only 'b' is regularised.
    res = least_squares(
        lambda p, a: jnp.stack([p["a"] - 1.0, p["b"] - 1.0]),
        {"a": 0.0, "b": 0.0},
        regularization={"a": 0.0, "b": 1.0},
    )
    np.testing.assert_allclose([res.params["a"], res.params["b"]], [1.0, 0.5], rtol=1e-10)


def test_parameter_scaling_is_invariant():
    # Badly scaled problem: same optimum with and without scale=.
    t = jnp.linspace(0.0, 1.0, 30)
    y = 1e4 * jnp.exp(-2e-3 * 1e3 * t)

    def r(p, _):
        return (p["A"] * jnp.exp(-p["k"] * 1e3 * t) - y) / 1e4

    p0 = {"A": 5e3, "k": 1e-3}
    a = least_squares(r, p0)
    b = least_squares(r, p0, scale={"A": 1e4, "k": 1e-3})
    for res in (a, b):
        assert res.success, res.message
        np.testing.assert_allclose([res.params["A"], res.params["k"]], [1e4, 2e-3], rtol=1e-8)


def test_pytree_residuals_and_result_structure():
    def r(p, _):
        return {"u": p - 1.0, "v": jnp.reshape(2.0 * (p - 1.0), (1, 2))}

    res = least_squares(r, jnp.zeros(2))
    assert res.residuals["v"].shape == (1, 2)
    assert res.summary()["status"] == "converged"
    assert res.wall_s >= res.compile_s >= 0


def test_bad_options():
    with pytest.raises(ParameterError, match="method"):
        least_squares(lambda p, a: p, jnp.zeros(1), method="bfgs")
    with pytest.raises(ParameterError, match="jac"):
        least_squares(lambda p, a: p, jnp.zeros(1), jac="central")
    with pytest.raises(ParameterError, match="regularization"):
        least_squares(lambda p, a: p, jnp.zeros(1), regularization=-1.0)
    with pytest.raises(ParameterError, match="structure"):
        least_squares(lambda p, a: p["x"], {"x": jnp.zeros(2)}, scale={"y": 1.0})


def test_propagate_covariance_linear_map():
    C = np.array([[2.0, 0.5], [0.5, 1.0]])
    G = np.array([[1.0, 0.0], [1.0, 1.0], [2.0, -1.0]])
    var = propagate_covariance(lambda p: jnp.asarray(G) @ p, jnp.zeros(2), C)
    np.testing.assert_allclose(var, np.diag(G @ C @ G.T), rtol=1e-12)
