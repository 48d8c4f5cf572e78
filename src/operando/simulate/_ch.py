"""The Cahn–Hilliard benchmark dataset (Morgenstern et al., seed 000, S2.1).

Ten realisations of spinodal decomposition and coarsening of a regular solution,
``D(c) = 1 - c``, ``mu_h(c) = ln(c/(1-c)) + Ω(1 - 2c)``, Ω = 3, κ = 2e-3, on a periodic
128 × 128 grid, 501 frames each, generated with :func:`operando.pde.solve_ch`.

Choices the paper leaves open, and why (see also ``docs/cahn-hilliard.md``):

* **Domain** ``length = 2`` (pixel size 1/64). The fastest-growing spinodal wavelength is
  ``2π / k_max`` with ``k_max² = -mu_h'(c̄)/(2κ) = 500`` (c̄ = 0.5), i.e. 0.28: about 7
  wavelengths across the domain, so coarsening has room to run before the pattern hits the
  box size (on a unit domain there are only 3.5 and the system reaches one stripe by
  t ≈ 3). The 15–85 % interface width is ~4.5 px, resolved by the spectral grid (a 256²
  run agrees, see the tests).
* **Initial condition** ``c̄ + a ξ`` with ``ξ`` uniform in [-1, 1], mean removed, ``a = 0.01``,
  seeded per realisation by ``jax.random.fold_in(key(seed), r)``: the classical quench from
  a homogeneous state inside the spinodal (|mu_h'(0.5)| = 2 > 0).
* **Horizon** ``t_end = 5``: phase separation completes at t ≈ 0.05–0.1 (linear growth rate
  ~125 at k_max), then the characteristic length grows from ~0.3 to ~0.8 by t = 5
  (coarsening ~t^(1/3)); frames are uniform in time so the series suits video denoisers.
* **Step** ``dt = 5e-4`` (SBDF2): 10 000 steps per realisation, 20 per frame. Halving it
  changes coarsening-stage frames by ~2e-3 at most (interfaces), vs ~8e-3 at ``dt = 1e-3``;
  the early spinodal stage is sensitive (which modes win), so realisations at different
  ``dt`` differ there, as they would for different seeds.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..config import require_x64
from ..data import add_provenance, attach_truth, make_dataset
from ..errors import ParameterError
from ..pde._ch import _init_carry, _integrate_jit, time_grid
from ..physics._free_energy import linear_D, regular_solution_mu

__all__ = ["simulate_ch_dataset"]

#: Frames solved per jit call; sets the granularity of ``progress``. The multistep state is
#: carried across calls, so the result does not depend on it beyond round-off.
_CHUNK = 25


def _initial_condition(key: jax.Array, size: int, c_mean: float, amplitude: float) -> jax.Array:
    xi = jax.random.uniform(key, (size, size), dtype=jnp.float64, minval=-1.0, maxval=1.0)
    return c_mean + amplitude * (xi - xi.mean())


def simulate_ch_dataset(
    *,
    size: int = 128,
    frames: int = 501,
    realizations: int = 10,
    seed: int = 0,
    omega: float = 3.0,
    kappa: float = 2e-3,
    c_mean: float = 0.5,
    noise_amplitude_ic: float = 0.01,
    length: float = 2.0,
    t_end: float = 5.0,
    dt: float = 5e-4,
    progress: Callable[[int, int], None] | None = None,
) -> xr.Dataset:
    r"""Simulate the Cahn–Hilliard benchmark and return it as an operando dataset.

    Solves :math:`\partial_t c = \nabla\cdot((1-c)\,c\,\nabla\mu)`,
    :math:`\mu = \ln\frac{c}{1-c} + \Omega(1-2c) - \kappa\nabla^2 c` on the periodic square
    ``[0, length)²`` from a seeded noisy homogeneous state (see the module docstring for
    why these defaults).

    Parameters
    ----------
    size
        Grid points per side (the image is ``size × size``).
    frames
        Number of frames, uniformly spaced on ``[0, t_end]`` (frame 0 is the initial state).
    realizations
        Number of independent initial conditions.
    seed
        Realisation ``r`` uses ``jax.random.fold_in(jax.random.key(seed), r)``.
    omega, kappa
        Regular-solution parameter Ω (> 2 for phase separation) and gradient coefficient κ.
    c_mean
        Mean concentration, in (0, 1); conserved exactly by the solver.
    noise_amplitude_ic
        Half-width ``a`` of the uniform initial perturbation; ``c_mean ± a`` must lie in
        (0, 1).
    length
        Side of the periodic domain (dimensionless); pixel size ``length / size``.
    t_end
        Time of the last frame (dimensionless).
    dt
        Largest solver step (SBDF2); each frame interval takes ``ceil(Δt / dt)`` steps.
    progress
        Optional callback ``progress(done, total)`` called after each chunk of frames.

    Returns
    -------
    xarray.Dataset
        ``images`` of dims ``("realization", "t", "y", "x")``, shape
        ``(realizations, frames, size, size)``, with ``t`` the frame times, pixel size
        ``length / size`` (unit ``"1"``), ground truth (clean images, ``mu_h`` and ``D`` on
        197 points of [0.01, 0.99], parameters, seed) and a provenance step.

    Raises
    ------
    ParameterError
        Non-positive sizes or steps, ``c_mean ± noise_amplitude_ic`` outside (0, 1),
        ``kappa <= 0``, or float64 disabled.

    Examples
    --------
    >>> import jax
    >>> jax.config.update("jax_enable_x64", True)
    >>> ds = simulate_ch_dataset(size=16, frames=3, realizations=2, t_end=0.1)
    >>> ds.images.dims, ds.images.shape
    (('realization', 't', 'y', 'x'), (2, 3, 16, 16))
    """
    require_x64("operando.simulate.simulate_ch_dataset")
    where = "simulate_ch_dataset"
    for name, val in (("size", size), ("frames", frames), ("realizations", realizations)):
        if int(val) != val or val < 1 or (name == "frames" and val < 2):
            raise ParameterError(
                f"{name} = {val!r}",
                where=f"{where}: {name}",
                fix=f"pass a positive integer{' >= 2' if name == 'frames' else ''}",
            )
    for name, val in (("kappa", kappa), ("length", length), ("t_end", t_end), ("dt", dt)):
        if not (np.isfinite(val) and val > 0):
            raise ParameterError(
                f"{name} = {val!r} must be positive", where=f"{where}: {name}", fix="pass > 0"
            )
    if not (
        noise_amplitude_ic >= 0
        and 0 < c_mean - noise_amplitude_ic < c_mean + noise_amplitude_ic < 1
    ):
        raise ParameterError(
            f"c_mean ± noise_amplitude_ic = {c_mean} ± {noise_amplitude_ic} leaves (0, 1), "
            "where the logarithmic free energy is undefined",
            where=f"{where}: c_mean",
            fix="choose 0 < c_mean - a and c_mean + a < 1",
        )
    size, frames, realizations = int(size), int(frames), int(realizations)
    times = np.linspace(0.0, float(t_end), frames)
    steps, n_steps, _ = time_grid(times[1:], float(dt), 0.0)
    chunks = [steps[i : i + _CHUNK] for i in range(0, len(steps), _CHUNK)]
    static = {
        "mu_h": regular_solution_mu,
        "D": linear_D,
        "forcing": None,
        "n_steps": n_steps,
        "order": 2,
        "stab": None,
        "length": float(length),
    }
    total = realizations * len(chunks)
    key = jax.random.key(int(seed))
    images = np.empty((realizations, frames, size, size), dtype=np.float64)
    done = 0
    for r in range(realizations):
        c0 = _initial_condition(jax.random.fold_in(key, r), size, c_mean, noise_amplitude_ic)
        images[r, 0] = np.asarray(c0)
        carry = _init_carry(c0, 0.0)
        i = 1
        for chunk in chunks:
            carry, out = _integrate_jit(
                carry, jnp.asarray(omega), jnp.asarray(kappa), jnp.asarray(chunk), **static
            )
            images[r, i : i + len(chunk)] = np.asarray(out)
            i += len(chunk)
            done += 1
            if progress is not None:
                progress(done, total)

    c_grid = np.linspace(0.01, 0.99, 197)
    ds = make_dataset(
        images,
        dims=("realization", "t", "y", "x"),
        coords={"t": times},
        pixel_size=float(length) / size,
        pixel_unit="1",
        source=where,
    )
    ds["t"].attrs["units"] = "1"  # dimensionless time
    parameters = {
        "model": "cahn-hilliard",
        "equation": "dc/dt = div(D(c) c grad(mu_h(c) - kappa lap c))",
        "mu_h": "ln(c/(1-c)) + omega (1 - 2c)",
        "D": "1 - c",
        "omega": float(omega),
        "kappa": float(kappa),
        "length": float(length),
        "size": size,
        "frames": frames,
        "realizations": realizations,
        "t_end": float(t_end),
        "dt": float(dt),
        "dt_used": float(steps[0]),
        "steps_per_frame": n_steps,
        "scheme": "pseudo-spectral, linearly stabilised SBDF2 (operando.pde.solve_ch)",
        "c_mean": float(c_mean),
        "noise_amplitude_ic": float(noise_amplitude_ic),
        "initial_condition": "c_mean + a * (U[-1,1] - mean), key fold_in(key(seed), r)",
    }
    ds = attach_truth(
        ds,
        clean=images,
        functions={
            "mu_h": (c_grid, np.asarray(regular_solution_mu(c_grid, omega))),
            "D": (c_grid, np.asarray(linear_D(c_grid))),
        },
        parameters=parameters,
        seed=int(seed),
    )
    return add_provenance(ds, "simulate_ch_dataset", **parameters, seed=int(seed))
