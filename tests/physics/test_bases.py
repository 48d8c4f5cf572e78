"""Legendre bases on [0, 1] and the constitutive-law parameterisations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from operando.errors import ParameterError
from operando.physics import (
    LegendreChemicalPotential,
    LegendreLogDiffusivity,
    legendre,
    legendre_series,
    project_legendre,
)


def test_orthonormal_on_unit_interval():
    # Gauss–Legendre with 40 nodes integrates polynomials of degree <= 79 exactly, so the
    # Gram matrix of P_0..P_20 (products of degree <= 40) is the identity to round-off.
    x, w = np.polynomial.legendre.leggauss(40)
    c, w = (x + 1) / 2, w / 2
    P = np.asarray(legendre(jnp.asarray(c), 20))
    gram = (P * w[:, None]).T @ P
    np.testing.assert_allclose(gram, np.eye(21), atol=1e-12)


def test_matches_numpy_legendre():
    c = np.linspace(0, 1, 57)
    P = np.asarray(legendre(jnp.asarray(c), 11))
    for n in range(12):
        ref = np.sqrt(2 * n + 1) * np.polynomial.legendre.Legendre.basis(n)(2 * c - 1)
        np.testing.assert_allclose(P[:, n], ref, atol=1e-12)


def test_endpoint_values_and_stability_at_high_degree():
    # P_n(1) = sqrt(2n+1), P_n(0) = (-1)^n sqrt(2n+1); the recurrence stays accurate at
    # degree 60 where a monomial expansion would have lost every digit.
    P = np.asarray(legendre(jnp.array([0.0, 1.0]), 60))
    n = np.arange(61)
    np.testing.assert_allclose(P[1], np.sqrt(2 * n + 1), rtol=1e-12)
    np.testing.assert_allclose(P[0], (-1.0) ** n * np.sqrt(2 * n + 1), rtol=1e-12)


def test_shape_and_degree_errors():
    assert legendre(jnp.zeros((3, 4)), 5).shape == (3, 4, 6)
    with pytest.raises(ParameterError, match="at least 0"):
        legendre(0.5, -1)
    for bad in (0, -2):
        with pytest.raises(ParameterError, match="at least 1"):
            LegendreChemicalPotential(degree=bad)
        with pytest.raises(ParameterError, match="at least 1"):
            LegendreLogDiffusivity(degree=bad)
    with pytest.raises(ParameterError, match="integer"):
        LegendreLogDiffusivity(degree=2.5)


@pytest.mark.parametrize("interval", [(0.0, 1.0), (0.1, 0.9), (0.01, 0.99)])
def test_projection_exact_for_polynomials(interval):
    rng = np.random.default_rng(0)
    coef = rng.normal(size=8)  # a degree-7 polynomial in the basis
    f = lambda c: np.asarray(legendre_series(jnp.asarray(c), coef))  # noqa: E731
    np.testing.assert_allclose(project_legendre(f, 7, interval=interval), coef, atol=1e-10)
    # A higher-degree basis represents it exactly with zero extra coefficients.
    a = project_legendre(f, 10, interval=interval)
    np.testing.assert_allclose(a[:8], coef, atol=1e-9)
    np.testing.assert_allclose(a[8:], 0.0, atol=1e-9)
    # start=1 drops the constant: f is matched up to an additive constant.
    np.testing.assert_allclose(
        project_legendre(f, 7, start=1, interval=interval), coef[1:], atol=1e-10
    )


def test_projection_errors():
    with pytest.raises(ParameterError, match="sub-interval"):
        project_legendre(np.sin, 3, interval=(0.5, 0.2))
    with pytest.raises(ParameterError, match="not finite"):
        project_legendre(lambda c: np.where(c > 0.5, np.nan, c), 3)


def test_chemical_potential_prior_and_fit():
    c = jnp.linspace(0.05, 0.95, 19)
    mu = LegendreChemicalPotential(degree=4, prior=True, key="mu")
    np.testing.assert_allclose(mu(c, {"mu": mu.zeros()}), jnp.log(c / (1 - c)), atol=1e-12)
    # Regular solution: 3(1 - 2c) = -3 (2c - 1) = -sqrt(3) P_1(c), so a = (-sqrt(3), 0, ...).
    a = mu.fit(lambda c: np.log(c / (1 - c)) + 3 * (1 - 2 * c))
    np.testing.assert_allclose(a, [-np.sqrt(3), 0, 0, 0], atol=1e-10)
    # Finite everywhere (an LM iterate may produce c outside (0, 1)).
    assert bool(jnp.all(jnp.isfinite(mu(jnp.array([-0.5, 0.0, 1.0, 1.5]), {"mu": a}))))
    no_prior = LegendreChemicalPotential(degree=3, prior=False, key=None)
    # No constant: the series has zero mean over [0, 1].
    x, w = np.polynomial.legendre.leggauss(20)
    vals = no_prior(jnp.asarray((x + 1) / 2), jnp.array([0.3, -1.0, 2.0]))
    assert abs(float(vals @ (w / 2))) < 1e-12


def test_log_diffusivity_includes_constant_and_fits():
    D = LegendreLogDiffusivity(degree=3, key=None)
    assert D.n_coefficients == 4
    np.testing.assert_allclose(D(0.3, jnp.array([np.log(2.0), 0, 0, 0])), 2.0, rtol=1e-12)
    b = D.fit(lambda c: np.exp(1 - c + c**2))
    c = jnp.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(D(c, b), np.exp(1 - c + c**2), rtol=1e-10)


def test_parameterisations_are_static_hashable_and_differentiable():
    mu = LegendreChemicalPotential(degree=3)
    assert (
        hash(mu) == hash(LegendreChemicalPotential(degree=3))
        and jax.tree_util.tree_leaves(mu) == []
    )
    D = LegendreLogDiffusivity(degree=3)
    params = {"mu": jnp.array([0.1, 0.2, 0.3]), "D": jnp.array([0.0, 0.1, -0.1, 0.2])}
    c = jnp.array([0.2, 0.7])
    # Forward and reverse mode agree (the laws are used inside jacfwd/jacrev).
    f = lambda p: jnp.concatenate([mu(c, p), D(c, p)])  # noqa: E731
    jf = jax.jacfwd(f)(params)
    jr = jax.jacrev(f)(params)
    for k in params:
        np.testing.assert_allclose(jf[k], jr[k], atol=1e-12)
    with pytest.raises(ParameterError, match="expected"):
        mu(c, {"mu": jnp.zeros(4)})
