r"""Reaction kinetics of phase-separating particles: reference laws and the Allen–Cahn kernel.

Model (seed 002, eq. 1 and "Theoretical framework"): the depth-averaged, reaction-limited
Allen–Cahn equation with Butler–Volmer kinetics on a particle's 2D mask,

.. math::

    \partial_t c = k(x, y)\,R(c, \tilde\eta), \qquad
    R = j_0(c)\,\bigl[e^{-\alpha\tilde\eta} - e^{(1-\alpha)\tilde\eta}\bigr], \qquad
    \tilde\eta = \tilde\mu(c) + \Delta\tilde\phi(t),

    \tilde\mu = \mu_h(c) - \tilde\kappa\,\nabla^2 c\;[+\ \mu_{\mathrm{el}}(c)].

Everything is dimensionless: chemical potentials and overpotentials in units of
:math:`k_BT` (``e\eta/k_BT``), lengths in pixels, time in hours, so a rate of 1 is 1C
(the whole particle in one hour). **Signs**: :math:`R > 0` is insertion (lithiation,
discharge of the cathode, :math:`c` increasing), which requires :math:`\tilde\eta < 0`;
:math:`\Delta\tilde\phi` is the interfacial voltage term of the overpotential
(:math:`\tilde\eta = (\mu - \mu_{Li^+} + e\Delta\phi)/k_BT`), so a more negative
:math:`\Delta\tilde\phi` drives insertion.

:math:`\Delta\tilde\phi(t)` is not known: it is the algebraic unknown that makes the mean
reaction rate over the evolving pixels equal a prescribed rate :math:`I(t)` (from the
measured mean concentration, or a galvanostatic C-rate). The constraint
:math:`g(\Delta\tilde\phi) = \langle k R\rangle - I = 0` is strictly decreasing in
:math:`\Delta\tilde\phi`, so it has exactly one root; :func:`solve_interfacial_voltage`
finds it (in closed form for :math:`\alpha = 1/2`, where it is a quadratic in
:math:`e^{\Delta\tilde\phi/2}`; by safeguarded Newton otherwise) and is differentiated
implicitly (implicit function theorem, :func:`jax.custom_jvp`), never through the
iterations.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erfc
from jaxtyping import Array, ArrayLike, Float

from ..errors import ParameterError
from ._free_energy import LOG_EPS

__all__ = [
    "KAPPA_LFP",
    "butler_volmer",
    "ciet_j0",
    "dimensionless_kappa",
    "mask_graph",
    "reaction_allen_cahn",
    "regular_solution_binodal",
    "regular_solution_g",
    "solve_interfacial_voltage",
    "symmetric_j0",
]

_Arr = Float[Array, "..."]
_ArrLike = Float[ArrayLike, "..."]

#: Gradient-energy coefficient of LiFePO4 (J/m), seed 002 Methods "Identifiability".
KAPPA_LFP = 5.02e-10
#: Li site density of LiFePO4 (1/m^3): 3.6 g/cm^3 / 157.76 g/mol * N_A.
SITE_DENSITY_LFP = 1.374e28
_KB = 1.380649e-23

#: Overpotentials are clipped into [-ETA_MAX, ETA_MAX] inside exponentials (NaN safety).
ETA_MAX = 60.0


def dimensionless_kappa(
    pixel_size_m: float = 50e-9,
    *,
    kappa: float = KAPPA_LFP,
    site_density: float = SITE_DENSITY_LFP,
    temperature: float = 298.15,
) -> float:
    r""":math:`\tilde\kappa = \kappa / (k_BT\,c_s\,\Delta x^2)` (pixel units).

    With the LiFePO4 literature values and 50 nm pixels this is ``3.55e-3``: the interface
    width :math:`\sqrt{\kappa/(k_BT c_s)} \approx 3` nm is far below one pixel.
    """
    if not (pixel_size_m > 0 and kappa > 0 and site_density > 0 and temperature > 0):
        raise ParameterError(
            "pixel size, kappa, site density and temperature must be > 0",
            where="dimensionless_kappa",
        )
    return float(kappa / (_KB * temperature * site_density * pixel_size_m**2))


# ------------------------------------------------------------------ reference laws


def ciet_j0(c: ArrayLike, *, lam: float = 8.3, c_plus: float = 1.0, j_r: float = 1.0) -> _Arr:
    r"""Exchange current of coupled ion–electron transfer (seed 002, eq. 3).

    .. math::

        j_0(c) = j_r^*\,(1-c)\,\frac{\tilde c_+ c}{\tilde c_+ + c}\,
        \operatorname{erfc}\Bigl(\frac{\tilde\lambda - \sqrt{1+\tilde\lambda}
        + \ln^2(\tilde c_+/c)}{2\sqrt{\tilde\lambda}}\Bigr)

    Parameters
    ----------
    c
        Li fraction, any shape; clipped into ``[LOG_EPS, 1 - LOG_EPS]`` (so the result is
        finite and >= 0 for every real ``c``).
    lam
        Reorganisation energy :math:`\tilde\lambda` in units of kT (8.3 for LFP).
    c_plus
        Fractional coverage of reactive surface sites :math:`\tilde c_+` (1: strong
        adsorption).
    j_r
        Prefactor :math:`j_r^*` (sets the scale).

    Examples
    --------
    >>> import jax
    >>> jax.config.update("jax_enable_x64", True)
    >>> c = jnp.linspace(0.05, 0.95, 91)
    >>> float(c[jnp.argmax(ciet_j0(c))]) > 0.5   # asymmetric: maximum at high c
    True
    """
    c = jnp.clip(jnp.asarray(c), LOG_EPS, 1.0 - LOG_EPS)
    arg = (lam - jnp.sqrt(1.0 + lam) + jnp.log(c_plus / c) ** 2) / (2.0 * jnp.sqrt(lam))
    return j_r * (1.0 - c) * c_plus * c / (c_plus + c) * erfc(arg)


def symmetric_j0(c: ArrayLike, *, j_r: float = 1.0) -> _Arr:
    r"""Porous-electrode-theory exchange current :math:`j_0 = j_r\sqrt{c(1-c)}`."""
    c = jnp.clip(jnp.asarray(c), 0.0, 1.0)
    return j_r * jnp.sqrt(c * (1.0 - c))


def regular_solution_g(c: ArrayLike, omega: float = 4.47) -> _Arr:
    r"""Regular-solution free energy :math:`g_h = c\ln c + (1-c)\ln(1-c) + \Omega c(1-c)` (kT).

    Its derivative is :func:`operando.physics.regular_solution_mu`. ``c`` is clipped into
    ``[LOG_EPS, 1 - LOG_EPS]`` inside the logarithms.
    """
    c = jnp.asarray(c)
    cc = jnp.clip(c, LOG_EPS, 1.0 - LOG_EPS)
    return cc * jnp.log(cc) + (1.0 - cc) * jnp.log1p(-cc) + omega * c * (1.0 - c)


def regular_solution_binodal(omega: float = 4.47) -> float:
    r"""Li-poor binodal composition :math:`\delta` of the regular solution (and ``1 - delta``).

    Solves :math:`\ln(\delta/(1-\delta)) = \Omega(2\delta - 1)` on ``(0, 1/2)``
    (common tangent of a symmetric free energy). ``omega = 4.47`` gives ``0.0123``.
    """
    from scipy.optimize import brentq

    if not omega > 2.0:
        raise ParameterError(
            f"omega is {omega}; the regular solution phase-separates only for omega > 2",
            where="regular_solution_binodal",
        )

    def f(d: float) -> float:
        return float(np.log(d / (1.0 - d)) - omega * (2.0 * d - 1.0))

    c_spin = 0.5 * (1.0 - np.sqrt(1.0 - 2.0 / omega))
    return float(brentq(f, 1e-15, c_spin * (1 - 1e-12)))


def butler_volmer(j0: ArrayLike, eta: ArrayLike, alpha: float = 0.5) -> _Arr:
    r"""Butler–Volmer rate :math:`R = j_0[e^{-\alpha\eta} - e^{(1-\alpha)\eta}]` (> 0: insertion).

    ``eta`` is clipped into ``[-ETA_MAX, ETA_MAX]`` so the result never overflows.
    """
    eta = jnp.clip(jnp.asarray(eta), -ETA_MAX, ETA_MAX)
    return jnp.asarray(j0) * (jnp.exp(-alpha * eta) - jnp.exp((1.0 - alpha) * eta))


# ------------------------------------------------------------------ dphi constraint


def _closed_form_half(weight: Array, mu: Array, rate: Array) -> Array:
    """Root for alpha = 1/2: ``A/x - B x = I`` with ``x = exp(dphi/2)``."""
    mu = jnp.clip(mu, -ETA_MAX, ETA_MAX)
    a = jnp.sum(weight * jnp.exp(-0.5 * mu)) + 1e-300
    b = jnp.sum(weight * jnp.exp(0.5 * mu)) + 1e-300
    disc = jnp.sqrt(rate * rate + 4.0 * a * b)
    # Two algebraically equal forms, each free of cancellation for one sign of the rate.
    x_pos = 2.0 * a / (rate + disc)
    x_neg = (disc - rate) / (2.0 * b)
    x = jnp.where(rate >= 0, x_pos, x_neg)
    return 2.0 * jnp.log(x)


def _g_and_dg(
    phi: Array, weight: Array, mu: Array, rate: Array, alpha: float
) -> tuple[Array, Array]:
    eta = jnp.clip(mu + phi, -ETA_MAX, ETA_MAX)
    ea, eb = jnp.exp(-alpha * eta), jnp.exp((1.0 - alpha) * eta)
    g = jnp.sum(weight * (ea - eb)) - rate
    dg = -jnp.sum(weight * (alpha * ea + (1.0 - alpha) * eb))
    return g, dg


@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _solve_phi(weight: Array, mu: Array, rate: Array, alpha: float, newton_steps: int) -> Array:
    phi0 = _closed_form_half(weight, mu, rate)
    if alpha == 0.5:
        return phi0
    # Safeguarded Newton from the alpha = 1/2 root inside a bracket that is widened until
    # it contains the root (g is strictly decreasing); bisection when Newton leaves it.
    lo, hi = phi0 - 2.0, phi0 + 2.0

    def widen(carry: tuple[Array, Array]) -> tuple[Array, Array]:
        lo, hi = carry
        glo, _ = _g_and_dg(lo, weight, mu, rate, alpha)
        ghi, _ = _g_and_dg(hi, weight, mu, rate, alpha)
        return jnp.where(glo < 0, 2 * lo - hi, lo), jnp.where(ghi > 0, 2 * hi - lo, hi)

    lo, hi = jax.lax.fori_loop(0, 8, lambda i, c: widen(c), (lo, hi))

    def body(i: int, carry: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
        phi, lo, hi = carry
        g, dg = _g_and_dg(phi, weight, mu, rate, alpha)
        lo = jnp.where(g > 0, phi, lo)
        hi = jnp.where(g <= 0, phi, hi)
        step = phi - g / jnp.where(dg < 0, dg, -1.0)
        inside = (step >= lo) & (step <= hi)
        return jnp.where(inside, step, 0.5 * (lo + hi)), lo, hi

    phi, _, _ = jax.lax.fori_loop(0, newton_steps, body, (0.5 * (lo + hi), lo, hi))
    return phi


@_solve_phi.defjvp
def _solve_phi_jvp(
    alpha: float, newton_steps: int, primals: tuple[Array, ...], tangents: tuple[Array, ...]
) -> tuple[Array, Array]:
    weight, mu, rate = primals
    dw, dmu, drate = tangents
    phi = _solve_phi(weight, mu, rate, alpha, newton_steps)
    eta = jnp.clip(mu + phi, -ETA_MAX, ETA_MAX)
    inside = (mu + phi > -ETA_MAX) & (mu + phi < ETA_MAX)
    ea, eb = jnp.exp(-alpha * eta), jnp.exp((1.0 - alpha) * eta)
    deta = jnp.where(inside, -(alpha * ea + (1.0 - alpha) * eb), 0.0)
    dg_dphi = jnp.sum(weight * deta)
    dg = jnp.sum(dw * (ea - eb)) + jnp.sum(weight * deta * dmu) - drate
    return phi, -dg / jnp.where(dg_dphi < 0, dg_dphi, -1e-300)


def solve_interfacial_voltage(
    weight: _ArrLike,
    mu: _ArrLike,
    rate: Float[ArrayLike, ""],
    *,
    alpha: float = 0.5,
    newton_steps: int = 30,
) -> Float[Array, ""]:
    r"""The interfacial voltage :math:`\Delta\tilde\phi` that gives a prescribed total rate.

    Solves

    .. math::

        g(\Delta\tilde\phi) = \sum_i w_i\bigl[e^{-\alpha(\mu_i + \Delta\tilde\phi)}
        - e^{(1-\alpha)(\mu_i + \Delta\tilde\phi)}\bigr] - I = 0,

    with :math:`w_i = k_i j_0(c_i) / N \ge 0` (zero for pixels that do not react), i.e.
    :math:`\langle k R\rangle = I`. ``g`` is strictly decreasing, so the root is unique
    whenever some ``w_i > 0``. For ``alpha = 1/2`` the root is the closed form of the
    quadratic in ``exp(dphi/2)``; otherwise ``newton_steps`` safeguarded Newton/bisection
    steps from that value. Derivatives (forward and reverse mode, any order of nesting
    with ``vmap``) follow from the implicit function theorem,
    :math:`d\Delta\tilde\phi = -(\partial_w g\,dw + \partial_\mu g\,d\mu - dI)/\partial_\phi g`.

    Parameters
    ----------
    weight
        Non-negative weights :math:`w_i`, any shape.
    mu
        Chemical potentials :math:`\tilde\mu_i` (kT), same shape.
    rate
        Target rate :math:`I` (scalar; > 0 insertion).
    alpha
        Symmetry factor in (0, 1) (static).
    newton_steps
        Iterations for ``alpha != 0.5`` (static).

    Returns
    -------
    jax.Array
        Scalar :math:`\Delta\tilde\phi`.
    """
    if not 0.0 < float(alpha) < 1.0:
        raise ParameterError(
            f"alpha is {alpha}", where="solve_interfacial_voltage", fix="0 < alpha < 1"
        )
    w = jnp.asarray(weight)
    m = jnp.asarray(mu)
    r = jnp.asarray(rate, dtype=w.dtype)
    return _solve_phi(w, m, r, float(alpha), int(newton_steps))


# ---------------------------------------------------------------- forward model


def mask_graph(
    mask: np.ndarray, size: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel list of a mask and its 4-neighbour graph, padded to ``size`` entries.

    The forward model runs on the list of mask pixels (not the bounding box), so its cost
    is proportional to the particle area.

    Returns
    -------
    (pixels, neighbours, valid)
        ``pixels`` ``(size, 2)`` (row, column) of each entry (padding: ``(0, 0)``);
        ``neighbours`` ``(size, 4)`` list index of the up/down/left/right neighbour, or the
        entry itself where the neighbour is outside the mask (no-flux edge) and for padding;
        ``valid`` ``(size,)`` bool, False for padding.
    """
    mask = np.asarray(mask, dtype=bool)
    pix = np.argwhere(mask)
    n = len(pix)
    size = n if size is None else int(size)
    if size < n:
        raise ParameterError(f"size {size} < {n} mask pixels", where="mask_graph")
    lookup = -np.ones(mask.shape, dtype=int)
    lookup[pix[:, 0], pix[:, 1]] = np.arange(n)
    padded = np.pad(lookup, 1, constant_values=-1)
    nb = np.stack(
        [
            padded[pix[:, 0] + 1 + dy, pix[:, 1] + 1 + dx]
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))
        ],
        axis=1,
    )
    nb = np.where(nb < 0, np.arange(n)[:, None], nb)
    neighbours = np.tile(np.arange(size)[:, None], (1, 4))
    neighbours[:n] = nb
    pixels = np.zeros((size, 2), dtype=int)
    pixels[:n] = pix
    valid = np.zeros(size, dtype=bool)
    valid[:n] = True
    return pixels, neighbours, valid


def reaction_allen_cahn(
    c0: Float[Array, " n"],
    frame_dt: Float[Array, " f1"],
    rates: Float[Array, " f1"],
    log_k: Float[Array, " n"],
    neighbours: Any,
    evolve: Float[Array, " n"],
    params: Any,
    *,
    mu_h: Callable[[Array, Any], Array],
    log_j0: Callable[[Array, Any], Array],
    kappa: float,
    n_sub: int,
    boundary: Float[Array, "f n"] | None = None,
    valid: Float[Array, " n"] | None = None,
    alpha: float = 0.5,
    strain: Callable[[Array, Array], Array] | None = None,
    clip: float = 1e-6,
    semi_implicit: bool = True,
    damping_smoothing: float = 0.0,
) -> Float[Array, "f n"]:
    r"""Integrate the reaction-limited Allen–Cahn model of one half-cycle between frames.

    The particle is a list of ``n`` pixels with a 4-neighbour graph (:func:`mask_graph`).
    ``n_sub`` equal sub-steps per frame interval of a linearly implicit (Rosenbrock–Euler)
    scheme in the local reaction term (``semi_implicit=True``; the stiff relaxation near
    c = 0 and 1, where :math:`\mu_h' \sim 1/c(1-c)`, is damped by
    :math:`1/(1 + h\max(0, -\partial_c f))`, or with ``damping_smoothing``
    :math:`\epsilon > 0` by its smooth form :math:`1/(1 + h(\sqrt{f_c^2 + \epsilon^2} -
    f_c)/2)`) and explicit in the Laplacian and voltage coupling, or forward Euler
    (``semi_implicit=False``); at every sub-step
    :math:`\Delta\tilde\phi` is solved (:func:`solve_interfacial_voltage`) so that the mean
    rate of the evolving pixels equals the interval's ``rate`` exactly, so their mean
    concentration follows the prescribed piecewise-linear path. Valid pixels with
    ``evolve = 0`` are Dirichlet pixels: their values are interpolated linearly in time
    from ``boundary`` (the measured frames). After each step ``c`` is clipped into
    ``[clip, 1 - clip]`` so that a trial parameter that destabilises the explicit scheme
    gives a large but finite residual.

    Parameters
    ----------
    c0
        Initial values ``(n,)``.
    frame_dt
        ``(F - 1,)`` frame intervals in hours (0 for padding frames: no change).
    rates
        ``(F - 1,)`` prescribed mean rate :math:`d\bar c/dt` of the evolving pixels (1/h).
    log_k
        :math:`\ln k` per pixel ``(n,)``.
    neighbours
        ``(n, 4)`` int neighbour indices (self where there is no neighbour: no flux).
    evolve
        ``(n,)`` 0/1: pixels whose ``c`` evolves.
    params
        Parameter pytree passed to ``mu_h(c, params)`` and ``log_j0(c, params)``.
    mu_h, log_j0
        Constitutive laws (static callables; ``log_j0`` in ln(1/h)).
    kappa
        :math:`\tilde\kappa` in pixel units.
    n_sub
        Euler sub-steps per frame interval (static).
    boundary
        ``(F, n)`` Dirichlet values at the frame times (default: ``c0`` at all times).
    valid
        ``(n,)`` 0/1, 0 for padding entries (default all 1).
    alpha
        Butler–Volmer symmetry factor.
    strain
        Optional coherency-strain hook ``strain(c, neighbours) -> mu_el`` ``(n,)`` (kT),
        added to :math:`\tilde\mu`.
    clip
        Distance of the clip range from 0 and 1.
    semi_implicit
        Linearly implicit local reaction term (default) or forward Euler.
    damping_smoothing
        :math:`\epsilon` (1/h) of the smooth damping factor; 0 (default) keeps the exact
        :math:`\max(0, -f_c)`, whose switch makes the fit's objective kinked in the
        parameters (benchmarks/bench_posterior_roughness.py). Any :math:`\epsilon` is a
        consistent first-order scheme (the damping is :math:`1 + O(h)`); it adds
        :math:`h\epsilon/2` of damping where :math:`f_c = 0`.

    Returns
    -------
    jax.Array
        ``(F, n)``: ``c`` at the frame times (frame 0: ``c0`` with Dirichlet values).
    """
    neighbours = jnp.asarray(neighbours)
    if valid is None:
        valid = jnp.ones_like(c0)
    evolve = evolve * valid
    n_ev = jnp.maximum(jnp.sum(evolve), 1.0)
    k = jnp.exp(log_k) * evolve
    dirichlet = valid * (1.0 - evolve)
    if boundary is None:
        boundary = jnp.broadcast_to(c0, (frame_dt.shape[0] + 1, *c0.shape))

    def increment(c: Array, rate: Array, h: Array) -> Array:
        lap = jnp.sum(c[neighbours], axis=-1) - 4.0 * c
        rest = -kappa * lap
        if strain is not None:
            rest = rest + strain(c, neighbours)
        mu_ev = lambda c_: jnp.where(evolve > 0, mu_h(c_, params) + rest, 0.0)  # noqa: E731
        lj_ev = lambda c_: jnp.clip(log_j0(c_, params), -300.0, 300.0)  # noqa: E731
        mu, dmu = jax.jvp(mu_ev, (c,), (jnp.ones_like(c),))
        lj, dlj = jax.jvp(lj_ev, (c,), (jnp.ones_like(c),))
        j0 = jnp.exp(lj)
        w = k * j0 / n_ev
        phi = _solve_phi(w, mu, rate, float(alpha), 30)
        if not semi_implicit:
            return h * k * butler_volmer(j0, mu + phi, alpha)
        # Linearly implicit in the local (pointwise) reaction term: the rate's derivative
        # with respect to the pixel's own c (at this voltage, with the Laplacian's diagonal
        # 4 kappa) damps the stiff, stable modes; the unstable (spinodal) ones stay explicit.
        eta = jnp.clip(mu + phi, -ETA_MAX, ETA_MAX)
        ea, eb = jnp.exp(-alpha * eta), jnp.exp((1.0 - alpha) * eta)
        f_c = k * j0 * (dlj * (ea - eb) - (alpha * ea + (1.0 - alpha) * eb) * (dmu + 4 * kappa))
        if damping_smoothing > 0:
            eps2 = float(damping_smoothing) ** 2
            damp = 1.0 / (1.0 + h * 0.5 * (jnp.sqrt(f_c * f_c + eps2) - f_c))
        else:
            damp = 1.0 / (1.0 + h * jnp.maximum(-f_c, 0.0))
        # Re-solve the voltage with the damped weights: the mean increment is exactly h I.
        phi = _solve_phi(w * damp, mu, rate, float(alpha), 30)
        return h * damp * k * butler_volmer(j0, mu + phi, alpha)

    def interval(c: Array, inp: tuple[Array, ...]) -> tuple[Array, Array]:
        dt, rate, b0, b1 = inp
        h = dt / n_sub

        def sub(i: int, c: Array) -> Array:
            s = (i + 1.0) / n_sub
            c = c + increment(c, rate, h)
            c = jnp.where(dirichlet > 0, (1.0 - s) * b0 + s * b1, c)
            return jnp.clip(c, clip, 1.0 - clip)

        c = jax.lax.fori_loop(0, n_sub, sub, c)
        return c, c

    c_init = jnp.where(dirichlet > 0, boundary[0], c0)
    c_init = jnp.clip(jnp.where(valid > 0, c_init, 0.5), clip, 1.0 - clip)
    _, frames = jax.lax.scan(interval, c_init, (frame_dt, rates, boundary[:-1], boundary[1:]))
    return jnp.concatenate([c_init[None], frames], axis=0)
