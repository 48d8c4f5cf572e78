r"""Pseudo-spectral Cahn–Hilliard solver (periodic 2D, fixed step, differentiable).

Model (Morgenstern et al., Eq. 1–2)

.. math::

    \partial_t c = \nabla\cdot\bigl(M(c)\,\nabla\mu\bigr), \qquad
    M(c) = D(c)\,c, \qquad \mu = \mu_h(c) - \kappa\nabla^2 c,

on the periodic rectangle with isotropic grid spacing ``h = length / nx``.

Spatial discretisation: Fourier pseudo-spectral. ``∇²c``, ``∇μ`` and the divergence of
the flux ``M ∇μ`` are taken in Fourier space (first derivatives drop the Nyquist mode);
products and ``mu_h``, ``D`` are evaluated on the grid. The divergence multiplies the
flux spectrum by ``i k``, so the ``k = 0`` mode of the right-hand side is exactly zero and
the mean of ``c`` (the total mass) is conserved to round-off.

Time discretisation: linearly stabilised IMEX (Eyre 1998; Zhu, Chen, Shen & Tikare 1999).
With the stabiliser :math:`S = -A\nabla^2 + B\nabla^4` (symbol :math:`A k^2 + B k^4`) the
equation is split as :math:`\partial_t c = [N(c) + Sc] - Sc`; ``-Sc`` is implicit (diagonal
in Fourier space) and the rest explicit. ``order=2`` (default) is variable-step SBDF2
(BDF2 + second-order extrapolation), ``order=1`` the first-order IMEX Euler scheme of Zhu
et al. In increment form, with :math:`\Delta_n = c^n - c^{n-1}`, step ratio
:math:`\omega = \delta t_n/\delta t_{n-1}` and :math:`c^* = c^n + \omega\Delta_n`,

.. math::

    (a_0 + \delta t\,S)\,\hat\Delta_{n+1} = (a_2 + \omega\,\delta t\,S)\,\hat\Delta_n
        + \delta t\,\widehat{N(c^*)}, \quad
    a_0 = \frac{1 + 2\omega}{1 + \omega},\; a_2 = \frac{\omega^2}{1 + \omega};

``ω = 0`` gives IMEX Euler, used for the first step (and whenever the step ratio exceeds
2, where variable-step BDF2 loses zero-stability margin).

Default stabiliser (``stabilization=None``): recomputed every step from the current field,
:math:`A = \max(0, \max_x M\mu_h')` and :math:`B = \kappa\max_x |M|`, i.e. the largest
linearised second- and fourth-order diffusion coefficients. This removes the stiff
explicit limit (``δt ≲ h⁴/(Mκ)``, ~1e-6 at 128² for the benchmark): steps are limited by
accuracy and by the explicitly treated spinodal growth (rate ~125 for the benchmark at
c = 0.5), not by the grid. On the benchmark, order 2 is stable up to δt ≈ 5e-3
from a near-uniform start (unstable at 1e-2 for some seeds) and order 1 up to at least
0.05; accurate coarsening dynamics need δt ≲ 1e-3 (see docs). It is differentiable (no
``stop_gradient``), so Jacobians are those of the discrete map the solver computes (the
maxima make that map piecewise smooth: the derivative switches when the arg-max pixel
does, which finite differences with small steps essentially never straddle).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..config import require_x64
from ..errors import DataError, ParameterError

__all__ = ["ch_rhs", "solve_ch", "time_grid", "wavenumbers"]

MuH = Callable[[Array, Any], Array]
Diffusivity = Callable[[Array, Any], Array]
Forcing = Callable[[Array, Any], Array]
# Shape aliases (jaxtyping); (y, x) = (rows, columns).
Field = Float[Array, "y x"]
FieldLike = Float[ArrayLike, "y x"]
Frames = Float[Array, "t y x"]
Times = Float[ArrayLike, " t"]
Scalar = Float[ArrayLike, ""]

#: Largest step ratio for which the variable-step BDF2 step is used; above it the step
#: falls back to IMEX Euler (variable-step BDF2 is zero-stable for ratios < 1 + √2).
_MAX_RATIO = 2.0


# --------------------------------------------------------------------------- spectral


def wavenumbers(ny: int, nx: int, length: float = 1.0) -> tuple[Array, Array, Array]:
    """Wavenumbers for ``rfft2`` of a ``(ny, nx)`` field with spacing ``length / nx``.

    Returns
    -------
    ky, kx
        First-derivative wavenumbers (``(ny, 1)`` and ``(1, nx // 2 + 1)``), with the
        Nyquist mode zeroed so that derivatives of real fields stay real.
    k2
        ``|k|²`` of shape ``(ny, nx // 2 + 1)`` (Nyquist kept), for Laplacians.
    """
    h = length / nx
    ky_full = 2 * np.pi * np.fft.fftfreq(ny, d=h)
    kx_full = 2 * np.pi * np.fft.rfftfreq(nx, d=h)
    k2 = ky_full[:, None] ** 2 + kx_full[None, :] ** 2
    ky = ky_full.copy()
    kx = kx_full.copy()
    if ny % 2 == 0:
        ky[ny // 2] = 0.0
    if nx % 2 == 0:
        kx[nx // 2] = 0.0
    return jnp.asarray(ky[:, None]), jnp.asarray(kx[None, :]), jnp.asarray(k2)


def _rhs_hat(c, params, mu_h, D, kappa, ky, kx, k2, c_hat=None):
    """``FFT[div(M grad mu)]`` and the mobility ``M`` on the grid (5-6 real FFTs)."""
    shape = c.shape
    if c_hat is None:
        c_hat = jnp.fft.rfft2(c)
    lap_c = jnp.fft.irfft2(-k2 * c_hat, s=shape)
    mu = mu_h(c, params) - kappa * lap_c
    mu_hat = jnp.fft.rfft2(mu)
    # Separate 2D transforms: XLA:CPU runs a stacked (batched) irfft2 several times slower.
    gx = jnp.fft.irfft2(1j * kx * mu_hat, s=shape)
    gy = jnp.fft.irfft2(1j * ky * mu_hat, s=shape)
    m = D(c, params) * c
    div_hat = 1j * (kx * jnp.fft.rfft2(m * gx) + ky * jnp.fft.rfft2(m * gy))
    return div_hat, m


def ch_rhs(
    c: FieldLike,
    params: Any,
    *,
    mu_h: MuH,
    D: Diffusivity,
    kappa: float | Scalar,
    length: float = 1.0,
) -> Field:
    r"""The Cahn–Hilliard spatial operator :math:`\nabla\cdot(D(c)\,c\,\nabla\mu)`, pseudo-spectral.

    Parameters
    ----------
    c
        Concentration field, shape ``(ny, nx)`` (rows, columns), periodic.
    params
        Any pytree, passed to ``mu_h`` and ``D``.
    mu_h, D
        Elementwise callables ``mu_h(c, params)`` and ``D(c, params)``.
    kappa
        Gradient-energy coefficient κ.
    length
        Physical width of the domain along x; the grid spacing is ``length / nx`` in both
        directions.

    Returns
    -------
    Array
        ``dc/dt``, shape ``(ny, nx)``; its mean is zero to round-off.
    """
    c = jnp.asarray(c)
    if c.ndim != 2:
        raise DataError(
            f"c has shape {c.shape}; expected a 2D field (ny, nx)",
            where="ch_rhs: c",
            fix="pass one image; use jax.vmap for a batch",
        )
    return _ch_rhs(c, params, kappa, mu_h=mu_h, D=D, length=float(length))


@partial(jax.jit, static_argnames=("mu_h", "D", "length"))
def _ch_rhs(c, params, kappa, *, mu_h, D, length):
    ky, kx, k2 = wavenumbers(*c.shape, length)
    div_hat, _ = _rhs_hat(c, params, mu_h, D, kappa, ky, kx, k2)
    return jnp.fft.irfft2(div_hat, s=c.shape)


# --------------------------------------------------------------------------- stepping


def time_grid(t_save: Times, dt: float, t0: float = 0.0) -> tuple[np.ndarray, int, bool]:
    """The step schedule :func:`solve_ch` uses (NumPy, concrete).

    Every interval between consecutive output times (starting at ``t0``) is split into
    the same number ``n = max_i ceil((t_i - t_{i-1}) / dt)`` of equal steps, so each
    interval's step ``(t_i - t_{i-1}) / n`` is at most ``dt`` and the trip count of every
    inner loop is the same fixed ``n`` (needed for ``lax.scan`` and reverse mode). With
    uniformly spaced ``t_save`` this is ``dt`` rounded down to divide the spacing.

    Returns
    -------
    steps
        Step size of each interval, shape ``(n_intervals,)``.
    n
        Steps per interval.
    first_is_t0
        Whether ``t_save[0] == t0`` (that frame is ``c0`` itself and has no interval).
    """
    t = np.asarray(t_save, dtype=np.float64)
    first_is_t0 = bool(t.size and t[0] == t0)
    edges = np.concatenate([[t0], t[1:] if first_is_t0 else t])
    widths = np.diff(edges)
    if widths.size == 0:
        return widths, 0, first_is_t0
    # 1e-9 relative slack: a width that is an exact multiple of dt up to round-off must
    # not get one extra step.
    n = int(max(1, math.ceil(float(widths.max()) / dt * (1 - 1e-9))))
    return widths / n, n, first_is_t0


def _stabiliser(c, m, params, mu_h, kappa, stab):
    if stab is not None:
        return jnp.asarray(stab[0], c.dtype), jnp.asarray(stab[1], c.dtype)
    dmu = jax.jvp(lambda u: mu_h(u, params), (c,), (jnp.ones_like(c),))[1]
    a = jnp.maximum(jnp.max(m * dmu), 0.0)
    b = kappa * jnp.max(jnp.abs(m))
    return a, b


def _init_carry(c0, t0):
    """Solver state before the first step.

    ``(c, FFT c, Δ, FFT Δ, δt_prev, t)`` with ``Δ`` the last increment (zero) and
    ``δt_prev = inf``, which makes the first step's ratio 0, i.e. an IMEX Euler start.
    """
    c_hat = jnp.fft.rfft2(c0)
    zero = jnp.zeros_like(c0)
    return (
        c0,
        c_hat,
        zero,
        jnp.zeros_like(c_hat),
        jnp.asarray(jnp.inf, c0.dtype),
        jnp.asarray(t0, c0.dtype),
    )


def _integrate(carry, params, kappa, steps, *, mu_h, D, forcing, n_steps, order, stab, length):
    """Advance ``carry`` over ``len(steps)`` intervals of ``n_steps`` steps each.

    Returns the final carry (to continue without restarting the multistep scheme) and the
    field at the end of every interval, shape ``(len(steps), ny, nx)``. The field is kept
    both on the grid and in Fourier space, so a step costs 7 real FFTs of the grid.
    """
    shape = carry[0].shape
    ky, kx, k2 = wavenumbers(*shape, length)
    k4 = k2 * k2

    def step(carry, dt):
        c, c_hat, delta, delta_hat, dt_prev, t = carry
        ratio = dt / dt_prev
        omega = jnp.where((ratio <= _MAX_RATIO) & (order == 2), ratio, 0.0)
        c_star = c + omega * delta
        n_hat, m = _rhs_hat(
            c_star, params, mu_h, D, kappa, ky, kx, k2, c_hat=c_hat + omega * delta_hat
        )
        if forcing is not None:
            # Extrapolation time (1 + ω) t_n - ω t_{n-1} = t_n + ω δt_{n-1}: t_{n+1} for
            # SBDF2, t_n for IMEX Euler (written without ω·δt_{n-1}, which is 0·inf at start).
            t_star = t + jnp.where(omega > 0, dt, 0.0)
            n_hat = n_hat + jnp.fft.rfft2(forcing(t_star, params))
        a, b = _stabiliser(c_star, m, params, mu_h, kappa, stab)
        s = dt * (a * k2 + b * k4)
        a0 = (1 + 2 * omega) / (1 + omega)
        a2 = omega**2 / (1 + omega)
        new_hat = ((a2 + omega * s) * delta_hat + dt * n_hat) / (a0 + s)
        new = jnp.fft.irfft2(new_hat, s=shape)
        return (c + new, c_hat + new_hat, new, new_hat, dt, t + dt), None

    def interval(carry, dt):
        carry, _ = jax.lax.scan(step, carry, jnp.broadcast_to(dt, (n_steps,)))
        return carry, carry[0]

    return jax.lax.scan(interval, carry, steps)


_STATIC = ("mu_h", "D", "forcing", "n_steps", "order", "stab", "length")
_integrate_jit = jax.jit(_integrate, static_argnames=_STATIC)


@partial(jax.jit, static_argnames=(*_STATIC, "first_is_t0"))
def _solve(c0, params, kappa, t0, steps, *, first_is_t0, **static):
    _, frames = _integrate(_init_carry(c0, t0), params, kappa, steps, **static)
    if first_is_t0:
        frames = jnp.concatenate([c0[None], frames], axis=0)
    return frames


def solve_ch(
    c0: FieldLike,
    t_save: Times,
    params: Any,
    *,
    mu_h: MuH,
    D: Diffusivity,
    kappa: float | Scalar,
    length: float = 1.0,
    dt: float,
    t0: float = 0.0,
    stabilization: tuple[float, float] | None = None,
    order: int = 2,
    forcing: Forcing | None = None,
) -> Frames:
    r"""Solve the periodic 2D Cahn–Hilliard equation and return the field at ``t_save``.

    Solves :math:`\partial_t c = \nabla\cdot(D(c)\,c\,\nabla(\mu_h(c) - \kappa\nabla^2 c))
    + f(t)` with the pseudo-spectral, linearly stabilised IMEX scheme described in
    :mod:`operando.pde._ch` (second order in time by default, spectral in space, mass
    conserving to round-off when ``forcing`` is ``None``).

    Jit-compiled; differentiable with respect to ``c0``, ``params`` and ``kappa`` in forward
    (``jax.jvp``/``jax.jacfwd``) and reverse mode (fixed-trip-count ``lax.scan``), and
    ``jax.vmap``-able over ``c0`` or ``params``. New values of ``c0``, ``params`` and
    ``kappa`` do not recompile; new ``mu_h``/``D``/``forcing`` objects, shapes, ``t_save``
    spacing (number of steps), ``length``, ``order`` or ``stabilization`` do. Define the
    callables once (module level), not as fresh lambdas per call.

    Parameters
    ----------
    c0
        Initial field at ``t0``, shape ``(ny, nx)`` (rows, columns), finite, float64.
    t_save
        Output times, 1D, strictly increasing, ``t_save[0] >= t0`` (if equal, the first
        output is ``c0``). Must be concrete (NumPy or a non-traced array): the number of
        steps is fixed at trace time.
    params
        Any pytree of arrays, passed unchanged to ``mu_h``, ``D`` and ``forcing``.
    mu_h
        ``mu_h(c, params) -> array`` of ``c``'s shape, elementwise, pure JAX, hashable.
        Must be finite for every real ``c`` (clip ``c`` into ``(eps, 1 - eps)`` inside
        logarithms, see :func:`operando.physics.regular_solution_mu`).
    D
        ``D(c, params) -> array``, elementwise diffusivity; the mobility is ``D(c) c``.
    kappa
        Gradient-energy coefficient κ > 0 (float or traced scalar).
    length
        Physical width of the periodic domain along x; spacing ``h = length / nx`` in
        both directions (the y extent is ``ny * h``).
    dt
        Largest step. Each interval between outputs is split into the same number
        ``n = max_i ceil(Δt_i / dt)`` of equal steps (see :func:`time_grid`); for uniform
        ``t_save`` the step is ``dt`` rounded down to divide the spacing.
    t0
        Time of ``c0``.
    stabilization
        ``None`` (default): stabiliser ``A k² + B k⁴`` recomputed every step from the
        field (``A = max(0, max M mu_h')``, ``B = kappa max |M|``), so that stiff
        high-wavenumber modes are stable whatever ``D`` and ``mu_h`` are.
        Or a fixed pair ``(A, B)`` of floats.
    order
        2 (default): variable-step SBDF2, second order. 1: IMEX Euler (Zhu et al. 1999).
    forcing
        Optional source ``f(t, params) -> (ny, nx)`` added to the right-hand side (for
        manufactured-solution tests); evaluated at the scheme's extrapolation time.

    Returns
    -------
    Array
        Fields at ``t_save``, shape ``(len(t_save), ny, nx)``.

    Raises
    ------
    DataError
        ``c0`` not 2D, empty, non-finite; ``t_save`` not 1D, unsorted or before ``t0``.
    ParameterError
        ``dt`` ≤ 0, ``length`` ≤ 0, ``order`` not 1 or 2, bad ``stabilization``, traced
        ``t_save``, or float64 disabled.

    References
    ----------
    J. Zhu, L.-Q. Chen, J. Shen, V. Tikare, "Coarsening kinetics from a variable-mobility
    Cahn–Hilliard equation", Phys. Rev. E 60, 3564 (1999).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> jax.config.update("jax_enable_x64", True)
    >>> from operando.physics import regular_solution_mu, linear_D
    >>> c0 = 0.5 + 0.01 * jax.random.uniform(jax.random.key(0), (32, 32), minval=-1)
    >>> out = solve_ch(c0, jnp.array([0.01, 0.02]), 3.0, mu_h=regular_solution_mu,
    ...                D=linear_D, kappa=2e-3, dt=1e-3)
    >>> out.shape
    (2, 32, 32)
    >>> bool(abs(out[-1].mean() - c0.mean()) < 1e-14)
    True
    """
    require_x64("operando.pde.solve_ch")
    c0 = jnp.asarray(c0)
    if c0.ndim != 2 or 0 in c0.shape:
        raise DataError(
            f"c0 has shape {c0.shape}; expected a non-empty 2D field (ny, nx)",
            where="solve_ch: c0",
            fix="pass one image; use jax.vmap for a batch of initial conditions",
        )
    if not jnp.issubdtype(c0.dtype, jnp.floating):
        c0 = c0.astype(jnp.float64)
    if not isinstance(c0, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(c0))):
        bad = int(c0.size - jnp.count_nonzero(jnp.isfinite(c0)))
        raise DataError(
            f"c0 contains {bad} NaN/inf value(s)",
            where="solve_ch: c0",
            fix="fill or interpolate non-finite pixels before simulating",
        )
    if isinstance(t_save, jax.core.Tracer):
        raise ParameterError(
            "t_save is a traced array; the number of time steps must be known at trace time",
            where="solve_ch: t_save",
            fix="pass t_save as a NumPy array (close over it instead of differentiating it)",
        )
    t = np.asarray(t_save, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)):
        raise DataError(
            f"t_save must be a non-empty finite 1D array, got shape {t.shape}",
            where="solve_ch: t_save",
            fix="pass the output times as a 1D array",
        )
    if np.any(np.diff(t) <= 0):
        raise DataError(
            "t_save is not strictly increasing",
            where="solve_ch: t_save",
            fix="sort the output times and drop duplicates",
        )
    if t[0] < t0:
        raise DataError(
            f"t_save[0] = {t[0]} is before t0 = {t0}",
            where="solve_ch: t_save",
            fix="output times must satisfy t_save[0] >= t0",
        )
    if not (np.isfinite(dt) and dt > 0):
        raise ParameterError(f"dt = {dt} must be positive", where="solve_ch: dt", fix="pass dt > 0")
    if not (np.isfinite(length) and length > 0):
        raise ParameterError(
            f"length = {length} must be positive", where="solve_ch: length", fix="pass length > 0"
        )
    if not isinstance(kappa, jax.core.Tracer) and not float(kappa) > 0:
        raise ParameterError(
            f"kappa = {kappa} must be positive (it is the interfacial stiffness)",
            where="solve_ch: kappa",
            fix="pass kappa > 0",
        )
    if order not in (1, 2):
        raise ParameterError(
            f"order = {order!r}", where="solve_ch: order", fix="use order=1 or order=2"
        )
    if stabilization is not None:
        try:
            stab = (float(stabilization[0]), float(stabilization[1]))
        except (TypeError, ValueError, IndexError) as err:
            raise ParameterError(
                f"stabilization = {stabilization!r} is not a pair of floats",
                where="solve_ch: stabilization",
                fix="pass None (adaptive) or (A, B) with A, B >= 0",
            ) from err
        if len(stabilization) != 2 or min(stab) < 0 or not all(map(np.isfinite, stab)):
            raise ParameterError(
                f"stabilization = {stabilization!r}",
                where="solve_ch: stabilization",
                fix="pass None (adaptive) or (A, B) with finite A, B >= 0",
            )
    else:
        stab = None
    steps, n_steps, first_is_t0 = time_grid(t, float(dt), float(t0))
    if steps.size == 0:
        return c0[None]
    return _solve(
        c0,
        params,
        jnp.asarray(kappa, c0.dtype),
        float(t0),
        jnp.asarray(steps),
        mu_h=mu_h,
        D=D,
        forcing=forcing,
        n_steps=n_steps,
        order=int(order),
        stab=stab,
        length=float(length),
        first_is_t0=first_is_t0,
    )
