r"""Synthetic operando videos of LiFePO4 platelets with known kinetics, free energy and k(x, y).

Each particle is an irregular star-shaped platelet (~490 pixels at 50 nm by default) with a
Gaussian-random-field heterogeneity :math:`\ln k(x, y)`; each of its one to three
half-cycles is a galvanostatic (dis)charge at 0.2C–3C recorded in 4–10 frames, simulated
with the reaction-limited Allen–Cahn model of :func:`operando.physics.reaction_allen_cahn`
(no-flux edges, every mask pixel evolving, the particle's total rate fixed to the C-rate).
Truth: regular-solution :math:`\mu_h` (:math:`\Omega = 4.47`), CIET :math:`j_0(c)`
(:math:`\tilde\lambda = 8.3`, :math:`\tilde c_+ = 1`, seed 002 eq. 3), LFP :math:`\tilde\kappa`.

Dataset layout (schema ``operando.dataset/1``; see ``docs/kinetics.md``)
-----------------------------------------------------------------------
* ``images`` ``(realization, t, y, x)``: one realization per particle half-cycle, ``t`` the
  frame *index* (``units = "frame"``) padded to the longest half-cycle; NaN outside the
  particle and in padding frames (``allow_nonfinite``).
* ``frame_time`` ``(realization, t)``: seconds since the half-cycle's first frame (NaN in
  padding); ``frame_valid`` ``(realization, t)`` bool.
* ``particle_of`` ``(realization,)``: index of the particle (into ``masks``).
* ``c_rate`` ``(realization,)``: signed C-rate (> 0 insertion) of the half-cycle.
* ``masks`` ``(particle, y, x)``: the particles, all on one common box.
* attributes ``binodal_delta`` and ``kappa_tilde``: material constants a fit may use as
  known (literature) values.
* truth: ``truth_images`` (clean), ``truth_fn_mu_h``, ``truth_fn_j0`` (1/h),
  ``truth_fn_g_h`` on a c-grid, ``truth_ln_k`` ``(particle, y, x)`` (NaN outside the
  mask; area-weighted mean over all particles 0), ``truth_parameters``, ``truth_seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from scipy import ndimage

from ..config import require_x64
from ..data import attach_truth, make_dataset
from ..errors import ParameterError
from ..physics._free_energy import regular_solution_mu
from ..physics._kinetics import (
    ciet_j0,
    dimensionless_kappa,
    mask_graph,
    reaction_allen_cahn,
    regular_solution_binodal,
    regular_solution_g,
)

__all__ = ["gaussian_random_field", "particle_shape", "simulate_particles"]

HOUR = 3600.0


def particle_shape(
    rng: np.random.Generator, area: float, box: int, *, roughness: float = 0.12
) -> np.ndarray:
    """A random irregular star-shaped platelet mask of about ``area`` pixels centred in a box.

    The radius is ``r(theta) = R (1 + sum_m a_m cos(m theta + p_m))`` with an elongation
    (m = 2) and random low harmonics (m = 3..5) of relative amplitude ``roughness``.
    """
    theta = np.linspace(0, 2 * np.pi, 721)
    shape = 1.0 + rng.uniform(0.15, 0.35) * np.cos(2 * theta + rng.uniform(0, 2 * np.pi))
    for m in (3, 4, 5):
        shape += roughness * rng.normal() / m * np.cos(m * theta + rng.uniform(0, 2 * np.pi))
    shape = np.clip(shape, 0.4, None)
    area_unit = 0.5 * np.trapezoid(shape**2, theta)
    radius = np.sqrt(area / area_unit)
    yy, xx = np.mgrid[:box, :box].astype(float)
    yy -= (box - 1) / 2
    xx -= (box - 1) / 2
    ang = np.mod(np.arctan2(yy, xx), 2 * np.pi)
    r_edge = radius * np.interp(ang, theta, shape)
    mask = np.hypot(yy, xx) <= r_edge
    if mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any():
        raise ParameterError(
            f"a particle of area {area:.0f} px does not fit a {box} px box",
            where="particle_shape",
            fix="pass a larger box",
        )
    return mask


def gaussian_random_field(
    rng: np.random.Generator,
    mask: np.ndarray,
    sigma: float,
    corr_length: float,
    n_modes: int | None = None,
) -> np.ndarray:
    """A zero-mean Gaussian field on the mask pixels with covariance ``sigma^2 exp(-d^2 / 2 l^2)``.

    Sampled from the eigen-decomposition (Karhunen–Loève expansion) of the covariance
    matrix of the mask pixels: exact with ``n_modes=None``, else truncated to the
    ``n_modes`` leading modes. Returns the field on the box, 0 outside the mask.
    """
    pts = np.argwhere(mask).astype(float)
    d2 = np.sum((pts[:, None, :] - pts[None, :, :]) ** 2, axis=-1)
    cov = sigma**2 * np.exp(-d2 / (2.0 * corr_length**2))
    w, v = np.linalg.eigh(cov)
    z = rng.normal(size=w.size)
    if n_modes is not None:
        z[: max(0, w.size - int(n_modes))] = 0.0  # eigh sorts ascending: keep the largest
    vals = v @ (np.sqrt(np.clip(w, 0.0, None)) * z)
    out = np.zeros(mask.shape)
    out[mask] = vals
    return out


def _truth_laws(omega: float, lam: float, c_plus: float, j_r: float) -> tuple[Callable, Callable]:
    def mu_h(c: jax.Array, params: Any) -> jax.Array:
        return regular_solution_mu(c, omega)

    def log_j0(c: jax.Array, params: Any) -> jax.Array:
        return jnp.log(ciet_j0(c, lam=lam, c_plus=c_plus, j_r=j_r) + 1e-300)

    return mu_h, log_j0


def simulate_particles(
    n_particles: int = 3,
    *,
    noise: float = 0.07,
    seed: int = 0,
    mean_area: float = 490.0,
    box: int | None = None,
    half_cycles: tuple[int, int] = (1, 3),
    frames: tuple[int, int] = (4, 10),
    c_rates: tuple[float, float] = (0.2, 3.0),
    omega: float = 4.47,
    lam: float = 8.3,
    c_plus: float = 1.0,
    j0_max: float = 2.0,
    sigma_psi: float = 0.3,
    sigma_psi0: float = 0.5,
    corr_length: float = 3.0,
    pixel_size: float = 50.0,
    dt_max: float = 0.01,
    n_modes: int | None = 20,
    ic_noise: float = 0.002,
) -> xr.Dataset:
    r"""Simulate operando videos of LiFePO4 platelets with known kinetics (truth attached).

    Parameters
    ----------
    n_particles
        Number of particles (>= 1).
    noise
        Standard deviation :math:`\sigma_e` of the Gaussian pixel noise (0: clean).
    seed
        Seed of everything random (shapes, ln k, rates, frames, noise).
    mean_area
        Mean particle area in pixels (each particle: ``mean_area * U(0.7, 1.3)``).
    box
        Side of the common square box (default from the largest particle).
    half_cycles, frames
        Inclusive ranges of half-cycles per particle and frames per half-cycle.
    c_rates
        Range of |C-rate| (1/h), drawn log-uniformly; the direction (insertion or
        extraction) alternates between half-cycles, starting at random.
    omega
        Regular-solution parameter of the true :math:`\mu_h`.
    lam, c_plus
        CIET parameters of the true :math:`j_0(c)` (eq. 3).
    j0_max
        Maximum of the true :math:`j_0(c)` on [0, 1] in 1/h (sets :math:`j_r^*`).
    sigma_psi, sigma_psi0, corr_length
        :math:`\ln k = \psi`: per-particle offset :math:`\sigma_{\psi_0} Z_0` plus a Gaussian
        random field of standard deviation ``sigma_psi`` and correlation length
        ``corr_length`` pixels; afterwards the area-weighted mean over all particles is
        removed (the gauge :func:`operando.inverse.learn_kinetics` uses).
    pixel_size
        Pixel size in nm (sets :math:`\tilde\kappa`).
    dt_max
        Largest Euler step in hours.
    n_modes
        Karhunen–Loève modes of the :math:`\ln k` field (``None``: exact sampling). The
        default 20 keeps the truth inside the span a 20-mode fit can represent (a
        resolved-field study is future work).
    ic_noise
        Standard deviation of the iid perturbation of the uniform initial field of each
        half-cycle (seeds the phase separation together with ``k``).

    Returns
    -------
    xarray.Dataset
        See the module docstring for the layout.

    Examples
    --------
    >>> ds = simulate_particles(1, mean_area=60, frames=(4, 4))  # doctest: +SKIP
    >>> ds["images"].dims
    ('realization', 't', 'y', 'x')
    """
    require_x64("operando.simulate_particles")
    if int(n_particles) < 1:
        raise ParameterError(
            f"n_particles is {n_particles}", where="simulate_particles", fix="pass >= 1"
        )
    if noise < 0 or not np.isfinite(noise):
        raise ParameterError(f"noise is {noise}", where="simulate_particles", fix="pass >= 0")
    if not (1 <= half_cycles[0] <= half_cycles[1]) or not (2 <= frames[0] <= frames[1]):
        raise ParameterError(
            f"half_cycles {half_cycles} / frames {frames} are not valid ranges",
            where="simulate_particles",
            fix="pass (lo, hi) with 1 <= lo <= hi (frames: 2 <= lo)",
        )
    if not (0 < c_rates[0] <= c_rates[1]):
        raise ParameterError(f"c_rates is {c_rates}", where="simulate_particles")
    rng = np.random.default_rng(seed)
    areas = mean_area * rng.uniform(0.7, 1.3, size=n_particles)
    if box is None:
        box = int(np.ceil(2.0 * np.sqrt(areas.max() / np.pi) * 1.6)) + 4
    masks = np.stack([particle_shape(rng, a, box) for a in areas])
    psi = np.stack(
        [
            sigma_psi0 * rng.normal()
            + gaussian_random_field(rng, m, sigma_psi, corr_length, n_modes)
            for m in masks
        ]
    )
    # Gauge: zero area-weighted mean over the interior pixels (those a fit sees evolve).
    inner = np.stack(
        [
            ndimage.binary_erosion(m, structure=ndimage.generate_binary_structure(2, 1))
            for m in masks
        ]
    )
    psi -= np.sum(psi * inner) / np.sum(inner)
    psi = np.where(masks, psi, 0.0)

    c_fine = np.linspace(0.0, 1.0, 20001)[1:-1]
    j_r = j0_max / float(np.max(np.asarray(ciet_j0(c_fine, lam=lam, c_plus=c_plus))))
    mu_h, log_j0 = _truth_laws(omega, lam, c_plus, j_r)
    kappa = dimensionless_kappa(pixel_size * 1e-9)

    # Half-cycles: (particle, signed rate, frame times in hours, initial field).
    plan = []
    for p in range(n_particles):
        n_hc = int(rng.integers(half_cycles[0], half_cycles[1] + 1))
        direction = 1.0 if rng.random() < 0.5 else -1.0
        for _ in range(n_hc):
            rate = float(np.exp(rng.uniform(np.log(c_rates[0]), np.log(c_rates[1]))))
            n_f = int(rng.integers(frames[0], frames[1] + 1))
            lo = rng.uniform(0.03, 0.08)
            hi = rng.uniform(0.9, 0.95)
            c_start, c_end = (lo, hi) if direction > 0 else (hi, lo)
            duration = abs(c_end - c_start) / rate
            steps = np.diff(np.linspace(0.0, duration, n_f)) * rng.uniform(0.8, 1.2, n_f - 1)
            times = np.concatenate([[0.0], np.cumsum(steps)])
            times *= duration / times[-1]
            c0 = np.clip(c_start + ic_noise * rng.normal(size=(box, box)), 0.01, 0.99)
            plan.append((p, direction * rate, times, c0))
            direction = -direction

    n_real = len(plan)
    f_max = max(len(t) for _, _, t, _ in plan)
    dts = np.zeros((n_real, f_max - 1))
    rates = np.zeros((n_real, f_max - 1))
    for i, (_, rate, times, _) in enumerate(plan):
        dts[i, : len(times) - 1] = np.diff(times)
        rates[i, : len(times) - 1] = rate
    n_sub = max(1, int(np.ceil(dts.max() / dt_max * (1 - 1e-12))))
    pidx = np.array([p for p, _, _, _ in plan])
    m_f = masks.astype(float)[pidx]
    n_pix = int(masks.reshape(n_particles, -1).sum(1).max())
    graphs = [mask_graph(m, n_pix) for m in masks]
    pix = np.stack([graphs[p][0] for p in pidx])
    nbrs = np.stack([graphs[p][1] for p in pidx])
    ok = np.stack([graphs[p][2] for p in pidx]).astype(float)
    rows = np.arange(n_real)[:, None]
    c0s = np.stack([c0 for _, _, _, c0 in plan])[rows, pix[..., 0], pix[..., 1]]
    lks = psi[pidx][rows, pix[..., 0], pix[..., 1]]

    def run(c0, dt, rt, lk, nb, ok):
        return reaction_allen_cahn(
            c0, dt, rt, lk, nb, ok, None, mu_h=mu_h, log_j0=log_j0, kappa=kappa, n_sub=n_sub,
            valid=ok,
        )  # fmt: skip

    lists = np.asarray(
        jax.jit(jax.vmap(run))(
            jnp.asarray(c0s), jnp.asarray(dts), jnp.asarray(rates), jnp.asarray(lks),
            jnp.asarray(nbrs), jnp.asarray(ok),
        )
    )  # fmt: skip
    clean = np.zeros((n_real, f_max, box, box))
    for i in range(n_real):
        n_i = int(ok[i].sum())
        clean[i][:, pix[i, :n_i, 0], pix[i, :n_i, 1]] = lists[i][:, :n_i]
    valid = np.zeros((n_real, f_max), dtype=bool)
    ftime = np.full((n_real, f_max), np.nan)
    for i, (_, _, times, _) in enumerate(plan):
        valid[i, : len(times)] = True
        ftime[i, : len(times)] = times * HOUR
    inside = (m_f[:, None] > 0) & valid[:, :, None, None]
    clean = np.where(inside, clean, np.nan)
    noisy = clean + noise * rng.normal(size=clean.shape)

    ds = make_dataset(
        noisy,
        dims=("realization", "t", "y", "x"),
        coords={"t": np.arange(f_max, dtype=float)},
        pixel_size=pixel_size,
        pixel_unit="nm",
        masks=masks,
        attrs={
            "description": "synthetic LiFePO4 particle videos (reaction-limited Allen-Cahn)",
            "binodal_delta": regular_solution_binodal(omega),
            "kappa_tilde": kappa,
            "concentration": "Li fraction c in (0, 1)",
        },
        source="simulate_particles",
        allow_nonfinite=True,
    )
    ds["t"].attrs["units"] = "frame"
    ds["frame_time"] = (("realization", "t"), ftime)
    ds["frame_time"].attrs["units"] = "s"
    ds["frame_valid"] = (("realization", "t"), valid)
    ds["particle_of"] = (("realization",), pidx)
    ds["c_rate"] = (("realization",), np.array([r for _, r, _, _ in plan]))
    ds["c_rate"].attrs["units"] = "1/h (signed, > 0 insertion)"
    c_grid = np.linspace(0.001, 0.999, 999)
    params = {
        "omega": omega,
        "lambda": lam,
        "c_plus": c_plus,
        "j0_max": j0_max,
        "j_r": j_r,
        "sigma_psi": sigma_psi,
        "sigma_psi0": sigma_psi0,
        "corr_length": corr_length,
        "kappa_tilde": kappa,
        "noise": noise,
        "binodal_delta": regular_solution_binodal(omega),
        "n_particles": int(n_particles),
        "n_half_cycles": n_real,
        "dt_max": dt_max,
        "n_sub": n_sub,
        "n_modes": n_modes,
        "ic_noise": ic_noise,
        "time_unit": "h",
    }
    ds = attach_truth(
        ds,
        clean=clean,
        functions={
            "mu_h": (c_grid, np.asarray(regular_solution_mu(c_grid, omega))),
            "j0": (c_grid, np.asarray(ciet_j0(c_grid, lam=lam, c_plus=c_plus, j_r=j_r))),
            "g_h": (c_grid, np.asarray(regular_solution_g(c_grid, omega))),
        },
        parameters=params,
        seed=seed,
    )
    ds["truth_ln_k"] = (("particle", "y", "x"), np.where(masks, psi, np.nan))
    return ds
