"""InDI mathematics with oracle networks: exact endpoints, regression limit, the path."""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from operando.enhance import degradation_path, indi_restore, pixel_loss, sample_times
from operando.errors import ParameterError


@pytest.fixture
def xy():
    k1, k2 = jr.split(jr.PRNGKey(0))
    x = jr.uniform(k1, (3, 1, 8, 8), minval=-1, maxval=1)
    y = jr.uniform(k2, (3, 1, 8, 8), minval=-1, maxval=1)
    return x, y


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 16])
def test_oracle_network_returns_x_exactly(xy, n):
    x, y = xy
    out = indi_restore(lambda xt, t: x, y, n)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(x))


@pytest.mark.parametrize("n", [1, 4, 10])
def test_identity_network_returns_y(xy, n):
    _x, y = xy
    out = indi_restore(lambda xt, t: xt, y, n)
    # (d/t) y + (1 - d/t) y: equal up to one rounding per step
    np.testing.assert_allclose(np.asarray(out), np.asarray(y), rtol=0, atol=1e-12 * n)


def test_one_step_is_one_regression_step(xy):
    _, y = xy
    calls = []

    def net(xt, t):
        calls.append(np.asarray(t))
        return jnp.tanh(2 * xt + 0.3)

    out = indi_restore(net, y, 1)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(jnp.tanh(2 * y + 0.3)))
    assert len(calls) == 1 and np.all(calls[0] == 1.0)


def test_oracle_trajectory_follows_the_degradation_path(xy):
    x, y = xy
    n = 5
    _, traj = indi_restore(lambda xt, t: x, y, n, return_trajectory=True)
    assert len(traj) == n + 1
    for k, state in enumerate(traj):
        t = 1 - k / n
        np.testing.assert_allclose(
            np.asarray(state), np.asarray(degradation_path(x, y, t)), atol=1e-12
        )


def test_times_passed_to_the_network_are_the_uniform_grid(xy):
    _, y = xy
    seen = []
    indi_restore(lambda xt, t: (seen.append(float(t[0])), xt)[1], y, 4)
    np.testing.assert_allclose(seen, [1.0, 0.75, 0.5, 0.25])


def test_degradation_path_endpoints_and_noise_scaling(xy):
    x, y = xy
    np.testing.assert_array_equal(np.asarray(degradation_path(x, y, 0.0)), np.asarray(x))
    np.testing.assert_allclose(np.asarray(degradation_path(x, y, 1.0)), np.asarray(y), atol=0)
    np.testing.assert_allclose(
        np.asarray(degradation_path(x, y, 0.25)), np.asarray(0.75 * x + 0.25 * y), atol=1e-15
    )
    t = jnp.array([0.0, 0.5, 1.0])
    key = jr.PRNGKey(3)
    noisy = degradation_path(x, y, t, noise=0.1, key=key)
    clean = degradation_path(x, y, t)
    d = np.asarray(noisy - clean)
    assert np.all(d[0] == 0)  # no noise at t = 0: x_0 = x exactly
    eta = np.asarray(jr.normal(key, x.shape, x.dtype))
    np.testing.assert_allclose(d[1], 0.5 * 0.1 * eta[1], atol=1e-15)
    np.testing.assert_allclose(d[2], 1.0 * 0.1 * eta[2], atol=1e-15)
    with pytest.raises(ParameterError, match="key"):
        degradation_path(x, y, t, noise=0.1)


def test_sample_times_uniform_with_point_mass():
    t = np.asarray(sample_times(jr.PRNGKey(0), 20000, p_one=0.0))
    assert t.min() > 0 and t.max() <= 1
    assert abs(t.mean() - 0.5) < 0.01  # sd of the mean 0.002
    t = np.asarray(sample_times(jr.PRNGKey(1), 20000, p_one=0.3))
    assert abs(np.mean(t == 1.0) - 0.3) < 0.015
    assert np.all(np.asarray(sample_times(jr.PRNGKey(2), 50, p_one=1.0)) == 1.0)


def test_mae_mse_loss_is_continuous_huber_like():
    e = jnp.array([-2.0, -0.5, -0.2, 0.0, 0.2, 0.5, 0.5 + 1e-7, 1.0])
    v = np.asarray(pixel_loss(e, "mae_mse"))
    np.testing.assert_allclose(v[[1, 2, 3, 4, 5]], [0.5, 0.2, 0.0, 0.2, 0.5], atol=1e-15)
    np.testing.assert_allclose(v[[0, 7]], [4.25, 1.25])
    assert abs(v[6] - v[5]) < 1e-6  # continuous at |e| = 0.5
    import jax

    g = jax.grad(lambda a: pixel_loss(a, "mae_mse"))
    assert abs(float(g(0.5 - 1e-6)) - float(g(0.5 + 1e-6))) < 1e-5  # slope 1 on both sides
    np.testing.assert_allclose(np.asarray(pixel_loss(e, "l1")), np.abs(np.asarray(e)))
    np.testing.assert_allclose(np.asarray(pixel_loss(e, "l2")), np.asarray(e) ** 2)
    with pytest.raises(ParameterError):
        pixel_loss(e, "huber")


def test_bad_steps_raise(xy):
    _, y = xy
    for n in (0, -1, 2.5):
        with pytest.raises(ParameterError):
            indi_restore(lambda xt, t: xt, y, n)
