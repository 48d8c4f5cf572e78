"""Closed-form constitutive laws of the Cahn–Hilliard benchmark.

The benchmark of Morgenstern et al. (seed 000, S2.1) uses a regular-solution homogeneous
chemical potential and a linear diffusivity,

.. math::

    \\mu_h(c) = \\ln\\frac{c}{1-c} + \\Omega(1 - 2c), \\qquad D(c) = 1 - c,

so that the Cahn–Hilliard mobility is :math:`M(c) = D(c)\\,c = c(1-c)`.

Both functions are pure, elementwise and safe to evaluate (and differentiate) for any
real ``c``: an iterate of a Gauss–Newton fit can leave ``(0, 1)``, so the logarithm is
evaluated on ``c`` clipped into ``[eps, 1 - eps]`` and never returns NaN.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = ["LOG_EPS", "linear_D", "regular_solution_mu"]

#: Clip distance from 0 and 1 used inside logarithms. ``ln(1e-12) ≈ -27.6`` is finite and
#: far outside the range a physical solution reaches (|mu_h| < 10 for c in [1e-4, 1-1e-4]).
LOG_EPS = 1e-12

_AnyLike = Float[ArrayLike, "..."]
_Any = Float[Array, "..."]
_ScalarLike = Float[ArrayLike, ""]


def regular_solution_mu(
    c: _AnyLike, omega: float | _ScalarLike = 3.0, *, eps: float = LOG_EPS
) -> _Any:
    """Regular-solution homogeneous chemical potential ``ln(c/(1-c)) + omega (1 - 2c)``.

    Parameters
    ----------
    c
        Concentration (any shape), nominally in ``(0, 1)``.
    omega
        Regular-solution interaction parameter Ω (dimensionless; phase separation for
        Ω > 2). The benchmark uses Ω = 3.
    eps
        ``c`` is clipped into ``[eps, 1 - eps]`` inside the logarithm only (the enthalpic
        term uses ``c`` unclipped), so the result is finite for every real ``c``; the
        derivative of the log term is zero where ``c`` is clipped.

    Returns
    -------
    Array
        ``mu_h(c)``, same shape as ``c``.

    Examples
    --------
    >>> import jax
    >>> jax.config.update("jax_enable_x64", True)
    >>> float(regular_solution_mu(0.5))
    0.0
    >>> bool(jnp.isfinite(regular_solution_mu(jnp.array([-0.1, 1.2]))).all())
    True
    """
    c = jnp.asarray(c)
    cc = jnp.clip(c, eps, 1.0 - eps)
    # One log of the ratio: float64 log is the costliest operation of a solver step on
    # CPU; 1 - cc is exact for cc >= 0.5 and relatively accurate to 1e-16 below.
    return jnp.log(cc / (1.0 - cc)) + omega * (1.0 - 2.0 * c)


def linear_D(c: _AnyLike, params: Any = None) -> _Any:
    """The benchmark diffusivity ``D(c) = 1 - c`` (any shape; ``params`` is ignored).

    ``params`` is accepted so that the function can be passed directly as ``D=`` to
    :func:`operando.pde.solve_ch`, whose callables have the signature ``D(c, params)``.
    """
    return 1.0 - jnp.asarray(c)
