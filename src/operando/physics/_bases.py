"""Orthonormal Legendre bases on [0, 1] and the constitutive-law parameterisations built on them.

The unknown functions of a phase-field model (the homogeneous chemical potential
:math:`\\mu_h(c)`, the diffusivity :math:`D(c)`, later the exchange current
:math:`j_0(c)`) are expanded in the *shifted, normalised* Legendre polynomials

.. math::

    P_n(c) = \\sqrt{2n + 1}\\, \\tilde P_n(2c - 1), \\qquad
    \\int_0^1 P_m(c) P_n(c)\\, dc = \\delta_{mn},

where :math:`\\tilde P_n` is the standard Legendre polynomial on [-1, 1]. They are
evaluated by the three-term (Bonnet) recurrence, which is stable on [-1, 1], never by
expanding monomials (whose coefficients grow like :math:`4^n` and cancel catastrophically).

Parameterisations (seed 000, S2.1) are small immutable :class:`equinox.Module` objects
with only static fields, so they are hashable and can be passed as the static ``mu_h`` /
``D`` callables of :func:`operando.pde.solve_ch`. Each is called as ``f(c, params)`` and
reads its coefficient vector from ``params[key]`` (or uses ``params`` itself when
``key is None``), so several laws can share one parameter pytree:

* :class:`LegendreChemicalPotential`: ``mu_h(c) = [ln(c/(1-c))] + sum_{n=1}^N a_n P_n(c)``,
  with the physical (ideal-mixing entropy) prior in brackets optional. The constant
  ``a_0`` is *excluded*: only :math:`\\nabla\\mu` enters the Cahn–Hilliard equation, so
  a constant shift of :math:`\\mu_h` is unidentifiable and would make the Gauss–Newton
  matrix singular.
* :class:`LegendreLogDiffusivity`: ``D(c) = exp(sum_{n=0}^N b_n P_n(c))``. Unlike the
  paper (which sums from ``n = 1``), the constant ``b_0`` is *included*: it scales ``D``
  by ``exp(b_0)``, i.e. it sets the time scale of the dynamics, which the snapshot times
  determine. Leaving it out would force ``D`` to have geometric mean ``exp(0) = 1``
  over [0, 1], an assumption the true law ``D = 1 - c`` does not satisfy
  (its log-mean is ``-1``), and the remaining coefficients would have to distort the
  shape to compensate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..errors import ParameterError
from ._free_energy import LOG_EPS

__all__ = [
    "LegendreChemicalPotential",
    "LegendreLogDiffusivity",
    "legendre",
    "legendre_series",
    "project_legendre",
]


def _check_degree(degree: int, where: str, minimum: int = 0) -> int:
    if isinstance(degree, bool) or not isinstance(degree, int | np.integer):
        raise ParameterError(
            f"degree must be an integer, got {degree!r}", where=where, fix="pass e.g. degree=11"
        )
    if degree < minimum:
        raise ParameterError(
            f"degree is {degree}; it must be at least {minimum}",
            where=where,
            fix=f"pass degree >= {minimum} (the paper uses 11)",
        )
    return int(degree)


def legendre(c: ArrayLike, degree: int) -> Float[Array, "... degree+1"]:
    """Orthonormal shifted Legendre polynomials :math:`P_0 .. P_N` on [0, 1].

    Parameters
    ----------
    c
        Points, any shape. The polynomials are defined everywhere but are orthonormal
        on [0, 1].
    degree
        Highest degree ``N >= 0`` (static).

    Returns
    -------
    jax.Array
        Shape ``c.shape + (N + 1,)``; ``out[..., n] = sqrt(2n+1) * P_n^std(2c - 1)``.

    Notes
    -----
    Bonnet's recurrence ``(n+1) P_{n+1}(x) = (2n+1) x P_n(x) - n P_{n-1}(x)`` on
    ``x = 2c - 1``, then normalisation. Differentiable in ``c`` (forward and reverse).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> legendre(jnp.array([0.0, 0.5, 1.0]), 2).shape
    (3, 3)
    """
    degree = _check_degree(degree, "legendre")
    x = 2.0 * jnp.asarray(c) - 1.0
    polys = [jnp.ones_like(x)]
    if degree >= 1:
        polys.append(x)
    for n in range(1, degree):
        polys.append(((2 * n + 1) * x * polys[n] - n * polys[n - 1]) / (n + 1))
    norms = jnp.sqrt(2.0 * jnp.arange(degree + 1) + 1.0).astype(x.dtype)
    return jnp.stack(polys, axis=-1) * norms


def legendre_series(
    c: ArrayLike, coefficients: Float[ArrayLike, " n"], *, start: int = 0
) -> Float[Array, ...]:
    """Evaluate ``sum_k coefficients[k] * P_{start+k}(c)``.

    Parameters
    ----------
    c
        Points, any shape.
    coefficients
        1D coefficients; ``coefficients[k]`` multiplies ``P_{start + k}``.
    start
        Degree of the first coefficient (0, or 1 for series without a constant).

    Returns
    -------
    jax.Array
        Same shape as ``c``.

    Notes
    -----
    Evaluated by Clenshaw's recurrence (stable, no basis matrix formed); equal to
    ``legendre(c, N)[..., start:] @ coefficients``.
    """
    coefficients = jnp.asarray(coefficients)
    if coefficients.ndim != 1:
        raise ParameterError(
            f"coefficients have shape {coefficients.shape}; expected a 1D vector",
            where="legendre_series",
        )
    x = 2.0 * jnp.asarray(c) - 1.0
    n = coefficients.shape[0]
    if n == 0:
        return jnp.zeros_like(x)
    degree = start + n - 1
    # Coefficients of the *standard* Legendre polynomials: a_k sqrt(2k+1).
    norms = jnp.sqrt(2.0 * jnp.arange(start, degree + 1) + 1.0).astype(coefficients.dtype)
    std = [None] * start + list(coefficients * norms)
    # Clenshaw recurrence for P_{k+1} = alpha_k P_k + beta_k P_{k-1},
    # alpha_k = (2k+1) x / (k+1), beta_k = -k / (k+1): b_k = c_k + alpha_k b_{k+1}
    # + beta_{k+1} b_{k+2}; S = c_0 + x b_1 - b_2 / 2. No (..., N+1) basis array is
    # formed, which keeps this cheap inside a PDE right-hand side.
    b1 = jnp.zeros_like(x)
    b2 = jnp.zeros_like(x)
    for k in range(degree, 0, -1):
        ck = std[k] if k >= start else 0.0
        b1, b2 = ck + (2 * k + 1) / (k + 1) * x * b1 - (k + 1) / (k + 2) * b2, b1
    c0 = std[0] if start == 0 else 0.0
    return c0 + x * b1 - 0.5 * b2


def project_legendre(
    fn: Callable[[np.ndarray], ArrayLike],
    degree: int,
    *,
    start: int = 0,
    interval: tuple[float, float] = (0.0, 1.0),
    n_quad: int = 200,
) -> np.ndarray:
    """Least-squares projection of a known function onto ``P_start .. P_degree``.

    Minimises :math:`\\int_{lo}^{hi} (f(c) - \\sum_n a_n P_n(c))^2 dc`, discretised by
    Gauss–Legendre quadrature with ``n_quad`` nodes on ``interval``. On the full
    interval [0, 1] with ``start = 0`` this is the orthogonal projection
    ``a_n = <f, P_n>``; on a sub-interval, or with ``start = 1`` (constant dropped,
    in which case the constant is fitted and then discarded, i.e. ``f`` is matched up to
    an additive constant), it is the corresponding least-squares fit.

    Parameters
    ----------
    fn
        Vectorised function of ``c`` (NumPy or JAX), finite on the open interval.
    degree
        Highest degree ``N``.
    start
        0 to return ``a_0 .. a_N``, 1 to return ``a_1 .. a_N`` (fit up to a constant).
    interval
        Sub-interval of [0, 1] on which to fit, e.g. ``(0.01, 0.99)`` for functions
        singular at the ends like ``ln(c/(1-c))`` or ``ln(1-c)``.
    n_quad
        Number of quadrature nodes; the projection of a polynomial of degree
        ``<= 2 n_quad - 1 - N`` is exact to round-off.

    Returns
    -------
    numpy.ndarray
        Coefficients, shape ``(degree + 1 - start,)``.

    Examples
    --------
    >>> a = project_legendre(lambda c: 3 * c**2, 2)
    >>> bool(np.allclose(legendre_series(0.3, a), 0.27))
    True
    """
    degree = _check_degree(degree, "project_legendre")
    if start not in (0, 1):
        raise ParameterError(f"start is {start}; expected 0 or 1", where="project_legendre")
    lo, hi = float(interval[0]), float(interval[1])
    if not (0.0 <= lo < hi <= 1.0):
        raise ParameterError(
            f"interval {interval} is not a sub-interval of [0, 1]",
            where="project_legendre",
            fix="pass (lo, hi) with 0 <= lo < hi <= 1",
        )
    x, w = np.polynomial.legendre.leggauss(int(n_quad))
    c = lo + (hi - lo) * (x + 1.0) / 2.0
    sw = np.sqrt(w * (hi - lo) / 2.0)
    f = np.asarray(fn(c), dtype=np.float64)
    if f.shape != c.shape or not np.all(np.isfinite(f)):
        raise ParameterError(
            "the function is not finite (or not vectorised) on the quadrature nodes",
            where="project_legendre",
            fix="pass a vectorised function finite on the open interval, or shrink interval",
        )
    basis = np.asarray(legendre(c, degree), dtype=np.float64)
    coef, *_ = np.linalg.lstsq(basis * sw[:, None], f * sw, rcond=None)
    return coef[start:]


def _coefficients(params: Any, key: str | None, n: int, where: str) -> Array:
    coef = params if key is None else params[key]
    coef = jnp.asarray(coef)
    if coef.shape != (n,):
        raise ParameterError(
            f"coefficients have shape {coef.shape}; expected ({n},)",
            where=where if key is None else f"{where}: params[{key!r}]",
            fix="build initial parameters with the parameterisation's .zeros() or .fit()",
        )
    return coef


class LegendreChemicalPotential(eqx.Module):
    """Homogeneous chemical potential as a Legendre series, optionally with the entropy prior.

    .. math::

        \\mu_h(c) = [\\ln \\tfrac{c}{1-c}] + \\sum_{n=1}^{N} a_n P_n(c)

    The bracketed ideal-mixing term is present when ``prior=True`` (seed 000, S2.1
    "physical prior"); inside it ``c`` is clipped into ``[LOG_EPS, 1 - LOG_EPS]`` so the
    law is finite for every real ``c`` (as :func:`operando.pde.solve_ch` requires).
    There is no ``a_0``: a constant shift of :math:`\\mu_h` does not change the
    Cahn–Hilliard dynamics (only its gradient enters) and is unidentifiable.

    Parameters
    ----------
    degree
        Highest degree ``N >= 1`` (default 11, as in the paper). There are ``N``
        coefficients ``a_1 .. a_N``.
    prior
        Include ``ln(c / (1 - c))``.
    key
        Where to find the coefficients in the ``params`` pytree passed to ``__call__``
        (``params[key]``); ``None`` means ``params`` is the coefficient vector itself.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> mu = LegendreChemicalPotential(degree=3, prior=True, key=None)
    >>> float(mu(0.5, jnp.zeros(3)))
    0.0
    """

    degree: int = eqx.field(static=True, default=11)
    prior: bool = eqx.field(static=True, default=True)
    key: str | None = eqx.field(static=True, default="mu")

    def __check_init__(self) -> None:
        _check_degree(self.degree, "LegendreChemicalPotential: degree", minimum=1)

    @property
    def n_coefficients(self) -> int:
        """Number of coefficients, ``N``."""
        return self.degree

    def __call__(self, c: ArrayLike, params: Any) -> Array:
        """Evaluate :math:`\\mu_h(c)` with coefficients from ``params``."""
        a = _coefficients(params, self.key, self.degree, "LegendreChemicalPotential")
        c = jnp.asarray(c)
        out = legendre_series(c, a, start=1)
        if self.prior:
            cc = jnp.clip(c, LOG_EPS, 1.0 - LOG_EPS)
            out = out + jnp.log(cc) - jnp.log1p(-cc)
        return out

    def zeros(self) -> Array:
        """Zero coefficients: the pure prior (``prior=True``) or ``mu_h = 0``."""
        return jnp.zeros(self.degree)

    def fit(
        self, fn: Callable[[np.ndarray], ArrayLike], interval: tuple[float, float] = (0.01, 0.99)
    ) -> np.ndarray:
        """Coefficients that best represent ``fn`` up to an additive constant on ``interval``.

        With the prior, the residual ``fn(c) - ln(c/(1-c))`` is projected.
        """

        def target(c: np.ndarray) -> np.ndarray:
            f = np.asarray(fn(c), dtype=np.float64)
            return f - (np.log(c) - np.log1p(-c)) if self.prior else f

        return project_legendre(target, self.degree, start=1, interval=interval)


class LegendreLogDiffusivity(eqx.Module):
    """Positive diffusivity as the exponential of a Legendre series.

    .. math::

        D(c) = \\exp\\Big(\\sum_{n=0}^{N} b_n P_n(c)\\Big)

    The constant ``b_0`` is included (the paper sums from ``n = 1``) because it sets the
    time scale of the dynamics and is identifiable from the snapshot times; see the
    module docstring.

    Parameters
    ----------
    degree
        Highest degree ``N >= 1`` (default 11). There are ``N + 1`` coefficients.
    key
        Where to find the coefficients in ``params`` (``params[key]``); ``None`` means
        ``params`` is the coefficient vector itself.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> D = LegendreLogDiffusivity(degree=2, key=None)
    >>> float(D(0.3, jnp.zeros(3)))
    1.0
    """

    degree: int = eqx.field(static=True, default=11)
    key: str | None = eqx.field(static=True, default="D")

    def __check_init__(self) -> None:
        _check_degree(self.degree, "LegendreLogDiffusivity: degree", minimum=1)

    @property
    def n_coefficients(self) -> int:
        """Number of coefficients, ``N + 1``."""
        return self.degree + 1

    def log(self, c: ArrayLike, params: Any) -> Array:
        """:math:`\\ln D(c)`, the Legendre series itself."""
        b = _coefficients(params, self.key, self.degree + 1, "LegendreLogDiffusivity")
        return legendre_series(c, b, start=0)

    def __call__(self, c: ArrayLike, params: Any) -> Array:
        """Evaluate :math:`D(c)` with coefficients from ``params``."""
        return jnp.exp(self.log(c, params))

    def zeros(self) -> Array:
        """Zero coefficients: ``D = 1``."""
        return jnp.zeros(self.degree + 1)

    def fit(
        self, fn: Callable[[np.ndarray], ArrayLike], interval: tuple[float, float] = (0.01, 0.99)
    ) -> np.ndarray:
        """Coefficients whose ``ln D`` best matches ``ln fn`` on ``interval`` (``fn > 0``)."""

        def target(c: np.ndarray) -> np.ndarray:
            f = np.asarray(fn(c), dtype=np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(f)

        return project_legendre(target, self.degree, start=0, interval=interval)
