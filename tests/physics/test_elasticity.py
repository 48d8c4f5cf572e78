"""2D elasticity: analytic cases (free body, Eshelby), convergence, gradients, coherency."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from operando.errors import DataError
from operando.physics import (
    ElasticParticle,
    coherency_hook,
    elastic_chemical_potential,
    habit_orientation,
    isotropic_stiffness,
    khachaturyan_b,
    lfp_stiffness,
    mask_graph,
    reaction_allen_cahn,
    regular_solution_mu,
    solve_periodic,
    strain_incompatibility,
)

NU = 0.3


def _ellipse(h, w):
    yy, xx = np.mgrid[:h, :w]
    return ((yy - (h - 1) / 2) / (0.45 * h)) ** 2 + ((xx - (w - 1) / 2) / (0.45 * w)) ** 2 < 1


def _disk(n, r):
    yy, xx = np.mgrid[:n, :n]
    return (yy - n / 2 + 0.5) ** 2 + (xx - n / 2 + 0.5) ** 2 < r**2


@pytest.mark.parametrize("method", ["direct", "cg"])
def test_uniform_eigenstrain_in_free_body_is_stress_free(method):
    mask = _ellipse(20, 28)
    eps0 = np.broadcast_to([0.01, -0.02, 0.004], (20, 28, 3))
    sol = ElasticParticle(mask, lfp_stiffness()).solve(eps0, method=method)
    # exact for a uniform field: the only error is the solver's (LU round-off / CG tol)
    assert float(jnp.max(jnp.abs(sol.stress))) < 1e-8 * 150 * 0.02
    np.testing.assert_allclose(np.asarray(sol.strain)[mask], np.asarray(eps0)[mask], atol=1e-10)


def test_cg_and_direct_agree_and_cg_is_differentiable():
    mask = _ellipse(10, 12)
    yy, _ = np.mgrid[:10, :12]
    x = 0.5 * (1 + np.tanh((yy - 5) / 2.0))
    part = ElasticParticle(mask, lfp_stiffness())

    def energy(s):
        eps0 = jnp.stack([0.05 * s * x, -0.025 * s * x, 0.0 * x], axis=-1)
        return part.solve_cg(eps0, tol=1e-13).energy

    e_cg = energy(1.0)
    eps0 = np.stack([0.05 * x, -0.025 * x, 0.0 * x], axis=-1)
    e_lu = part.solve_direct(eps0).energy
    np.testing.assert_allclose(float(e_cg), float(e_lu), rtol=1e-8)
    # the energy is quadratic in the misfit scale: dE/ds = 2 E at s = 1
    np.testing.assert_allclose(float(jax.grad(energy)(1.0)), 2 * float(e_cg), rtol=1e-6)


def test_eshelby_periodic_matches_analytic_interior_strain():
    # Plane strain, dilatational in-plane eigenstrain: interior strain S eps* with
    # S = 1 / (2 (1 - nu)); the stress-free periodic cell adds f (1 - S) eps*
    # (f = inclusion area fraction), exact for the uniform mean-strain shift.
    n, r = 128, 8
    inc = _disk(n, r)
    e0 = np.zeros((n, n, 3))
    e0[inc, :2] = 0.01
    sol = solve_periodic(e0, isotropic_stiffness(1.0, NU, "plane_strain"))
    s = 1 / (2 * (1 - NU))
    f = inc.mean()
    centre = np.asarray(sol.strain)[n // 2 - 1 : n // 2 + 1, n // 2 - 1 : n // 2 + 1, :2]
    # spectral solution of a pixelated disk: 0.2 % (Gibbs ripple at the centre)
    np.testing.assert_allclose(centre / 0.01, s + f * (1 - s), rtol=2e-3)


def test_eshelby_plane_stress_interior():
    # plane stress: S = (1 + nu) / 2
    n, r = 128, 8
    inc = _disk(n, r)
    e0 = np.zeros((n, n, 3))
    e0[inc, :2] = 0.01
    sol = solve_periodic(e0, isotropic_stiffness(1.0, NU, "plane_stress"))
    s, f = (1 + NU) / 2, inc.mean()
    got = np.asarray(sol.strain)[n // 2, n // 2, 0] / 0.01
    np.testing.assert_allclose(got, s + f * (1 - s), rtol=3e-3)


def test_fem_eshelby_converges_with_resolution():
    # Inclusion in a free square (the same material): the mean inclusion strain converges
    # to the analytic S + f (1 - S) at first order (staircase boundary of the disk).
    s = 1 / (2 * (1 - NU))
    q = isotropic_stiffness(1.0, NU, "plane_strain")
    errs = []
    radii = (3, 6, 12)
    for r in radii:
        n = 8 * r
        inc = _disk(n, r)
        e0 = np.zeros((n, n, 3))
        e0[inc, :2] = 0.01
        sol = ElasticParticle(np.ones((n, n), bool), q).solve_direct(e0)
        got = np.asarray(sol.strain)[inc, 0].mean() / 0.01
        errs.append(abs(got - (s + inc.mean() * (1 - s))))
    order = -np.polyfit(np.log(radii), np.log(errs), 1)[0]
    assert errs[-1] < 5e-3
    assert order > 0.8, (errs, order)


def test_compatible_strain_has_small_incompatibility():
    mask = _ellipse(24, 30)
    yy, _ = np.mgrid[:24, :30]
    x = 0.5 * (1 + np.tanh((yy - 12) / 2.0))
    eps0 = np.stack([0.05 * x, -0.025 * x, 0 * x], axis=-1)
    sol = ElasticParticle(mask, lfp_stiffness()).solve_direct(eps0)
    eta_total = strain_incompatibility(np.asarray(sol.strain), mask)
    eta_eigen = strain_incompatibility(eps0, mask)
    # the eigenstrain is incompatible (~ misfit / width^2); the total strain (pixel means
    # of a bilinear displacement) is compatible exactly, up to round-off
    assert np.nanmax(np.abs(eta_eigen)) > 1e-3
    assert np.nanmax(np.abs(eta_total)) < 1e-12


def test_habit_orientation_isotropic_is_invariant_line():
    # isotropic: the interface line t has zero misfit, e_a t_a^2 + e_c t_c^2 = 0, so the
    # normal is at atan(sqrt(-e_c / e_a)) from a
    q = isotropic_stiffness(1.0, NU, "plane_stress")
    th = habit_orientation([0.05, -0.025, 0.0], q)
    np.testing.assert_allclose(np.degrees(th), np.degrees(np.arctan(np.sqrt(0.5))), atol=0.1)
    # B >= 0 everywhere and vanishes there
    b = khachaturyan_b(np.linspace(0, np.pi, 50), [0.05, -0.025, 0.0], q)
    assert b.min() > -1e-12
    assert khachaturyan_b(th, [0.05, -0.025, 0.0], q) < 1e-6 * b.max()


def test_chemical_potential_sign():
    # compressive stress along a (sigma_aa < 0) opposes insertion (which expands a):
    # mu_el = -sigma : deps0/dc > 0
    mu = elastic_chemical_potential(jnp.array([-1.0, 0.0, 0.0]), jnp.array([0.05, -0.025, 0.0]))
    assert float(mu) > 0
    np.testing.assert_allclose(float(mu), 0.05e9 / (1.374e28 * 1.380649e-23 * 298.15), rtol=1e-12)


def test_finite_particle_hook_matches_direct_solve():
    mask = _ellipse(12, 10)
    misfit = np.array([0.05, -0.025, 0.0])
    q = lfp_stiffness()
    pix, nb, _ = mask_graph(mask, int(mask.sum()) + 3)  # with padding entries
    rng = np.random.default_rng(1)
    c = rng.uniform(0.1, 0.9, len(pix))
    mu = np.asarray(coherency_hook(mask, misfit, q, method="cg")(jnp.asarray(c), nb))
    grid = np.zeros(mask.shape)
    grid[pix[: mask.sum(), 0], pix[: mask.sum(), 1]] = c[: mask.sum()]
    sol = ElasticParticle(mask, q).solve_direct(grid[..., None] * misfit)
    ref = np.asarray(elastic_chemical_potential(sol.stress, misfit))[mask]
    np.testing.assert_allclose(mu[: mask.sum()], ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    assert np.all(mu[mask.sum() :] == 0)


def test_bad_inputs():
    with pytest.raises(DataError, match="empty"):
        ElasticParticle(np.zeros((4, 4), bool), lfp_stiffness())
    with pytest.raises(DataError, match="eigenstrain has shape"):
        ElasticParticle(np.ones((4, 4), bool), lfp_stiffness()).solve(np.zeros((4, 5, 3)))


def _relax(hook, n=40, seed=0):
    mask = np.ones((n, n), bool)
    _, nb, _ = mask_graph(mask)
    c0 = jnp.asarray(0.5 + 0.05 * np.random.default_rng(seed).standard_normal(n * n))
    out = reaction_allen_cahn(
        c0, jnp.array([20.0]), jnp.array([0.0]), jnp.zeros(n * n), jnp.asarray(nb),
        jnp.ones(n * n), None, mu_h=lambda c, p: regular_solution_mu(c, 4.47),
        log_j0=lambda c, p: jnp.zeros_like(c), kappa=1.0, n_sub=1000, strain=hook,
    )  # fmt: skip
    return np.asarray(out[-1]).reshape(n, n)


def _interface_angles(c):
    """|grad c|^2-weighted interface-normal angles folded into [0, 90] deg (a = 0)."""
    gy, gx = np.gradient(c)
    ang = np.degrees(np.arctan2(gy, gx)) % 180
    return np.minimum(ang, 180 - ang), gx**2 + gy**2


def test_coherency_strain_orients_interfaces():
    # Reaction-limited Allen-Cahn at fixed mean (rate 0) from c = 0.5 + noise, with the
    # LiFePO4 coherency potential (physical magnitude, B_max ~ 6 kT per site): the domains
    # align with the habit plane of minimum B(n), normal 35 deg from a (or its mirror).
    misfit = [0.05, -0.025, 0.0]
    q = lfp_stiffness()
    habit = np.degrees(habit_orientation(misfit, q))
    c = _relax(coherency_hook(np.ones((40, 40), bool), misfit, q))
    assert c.min() < 0.1 and c.max() > 0.9  # phase separated
    ang, wt = _interface_angles(c)
    mean_angle = np.sum(ang * wt) / wt.sum()
    near = np.sum(wt * (np.abs(ang - habit) < 15)) / wt.sum()
    assert abs(mean_angle - habit) < 5.0, mean_angle
    assert near > 0.6, near  # isotropic: 30 / 90 = 0.33
    c_free = _relax(None)
    ang, wt = _interface_angles(c_free)
    assert np.sum(wt * (np.abs(ang - habit) < 15)) / wt.sum() < 0.5
