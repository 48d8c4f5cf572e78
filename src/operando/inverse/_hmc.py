r"""Hamiltonian Monte Carlo (NUTS) on the posterior of a least-squares objective.

The fits in :mod:`operando.inverse` minimise
:math:`\tfrac12\|r(p)\|^2 + \tfrac12\sum_i w_i (p_i - m_i)^2`
(:func:`operando.inverse.least_squares`). With Gaussian pixel noise of standard deviation
:math:`\sigma` this is :math:`-\sigma^2` times the log posterior

.. math::

    \log \pi(p) = -\frac{\|r(p)\|^2}{2\sigma^2} - \sum_i \frac{w_i (p_i - m_i)^2}{2\sigma^2}
    + \text{const},

i.e. the regularisation weights are Gaussian priors :math:`p_i \sim N(m_i, \sigma^2/w_i)`
(``w = 0``: flat prior). :func:`least_squares_log_posterior` builds that density from the
same residual function the optimiser uses, and :func:`nuts` samples it (seed 002,
Supplementary Information section 9.1: HMC as a check of the bootstrap bands).

Why BlackJAX rather than NumPyro: the posterior here is not a generative model but an
existing JAX residual closed over device arrays; BlackJAX samples any ``logdensity(pytree)``
directly, takes explicit PRNG keys, starts each chain where we say (the MAP) and accepts
an initial inverse mass matrix (the Gauss–Newton covariance), with no model tracing or
handlers in between. NumPyro would wrap the same function as a ``potential_fn`` and add
nothing we use.

Chains are warmed up with Stan's window adaptation (step size and mass matrix), each
chain separately, then sampled with NUTS; :func:`nuts` reports the split potential scale
reduction :math:`\hat R` and effective sample sizes (BlackJAX diagnostics) per parameter.
Gradients are reverse-mode by default; ``grad="fwd"`` computes them by forward mode (one
JVP per parameter), for forward models with loops that reverse mode cannot differentiate
or when parameters are few and the state is large.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..errors import ParameterError

__all__ = ["HMCResult", "least_squares_log_posterior", "nuts"]

PyTree = Any


def least_squares_log_posterior(
    residual_fn: Callable[[PyTree, Any], PyTree],
    args: Any = None,
    *,
    sigma: float,
    regularization: float | PyTree = 0.0,
    prior_mean: PyTree | None = None,
) -> Callable[[PyTree], jax.Array]:
    r"""The log posterior :math:`-(\|r\|^2 + \sum w (p - m)^2) / 2\sigma^2` of a fit.

    Parameters
    ----------
    residual_fn
        ``residual_fn(params, args) -> residuals`` as passed to
        :func:`~operando.inverse.least_squares` (a pure JAX function).
    args
        Its extra data.
    sigma
        Noise standard deviation of the residuals (> 0).
    regularization
        Weights ``w`` (scalar or pytree like the parameters), as in ``least_squares``.
    prior_mean
        ``m`` (default 0).

    Returns
    -------
    callable
        ``log_density(params) -> scalar`` (up to a constant).
    """
    if not (np.isfinite(sigma) and sigma > 0):
        raise ParameterError(f"sigma = {sigma}", where="HMC posterior", fix="pass sigma > 0")
    inv2s2 = 0.5 / float(sigma) ** 2

    def log_density(params: PyTree) -> jax.Array:
        r, _ = ravel_pytree(residual_fn(params, args))
        cost = jnp.sum(r**2)
        if isinstance(regularization, int | float):
            w_tree = jax.tree_util.tree_map(lambda p: float(regularization), params)
        else:
            w_tree = regularization
        m_tree = (
            jax.tree_util.tree_map(jnp.zeros_like, params) if prior_mean is None else prior_mean
        )
        terms = jax.tree_util.tree_map(
            lambda p, w, m: jnp.sum(jnp.asarray(w) * (p - jnp.asarray(m)) ** 2),
            params,
            w_tree,
            m_tree,
        )
        return -inv2s2 * (cost + sum(jax.tree_util.tree_leaves(terms)))

    return log_density


@dataclass(frozen=True)
class HMCResult:
    """Samples and diagnostics of :func:`nuts`.

    Attributes
    ----------
    samples
        Pytree like the parameters; every leaf has leading dims ``(chains, draws)``.
    rhat, ess
        Pytrees like the parameters: split :math:`\\hat R` and effective sample size (over
        all chains) of every parameter component.
    acceptance_rate, divergences, step_size
        ``(chains,)`` mean acceptance probability, number of divergent transitions and
        adapted step size of each chain.
    num_warmup, num_samples
        Steps of adaptation and of sampling per chain.
    wall_s
        Seconds.
    """

    samples: PyTree
    rhat: PyTree
    ess: PyTree
    acceptance_rate: np.ndarray
    divergences: np.ndarray
    step_size: np.ndarray
    num_warmup: int
    num_samples: int
    wall_s: float

    @property
    def max_rhat(self) -> float:
        """Largest :math:`\\hat R` over all parameter components."""
        return float(max(np.max(v) for v in jax.tree_util.tree_leaves(self.rhat)))

    @property
    def min_ess(self) -> float:
        """Smallest effective sample size over all parameter components."""
        return float(min(np.min(v) for v in jax.tree_util.tree_leaves(self.ess)))

    def draws(self) -> PyTree:
        """The samples with chains merged: leaves ``(chains * draws, ...)``."""
        return jax.tree_util.tree_map(lambda x: x.reshape(-1, *x.shape[2:]), self.samples)

    def summary(self) -> dict[str, Any]:
        """JSON-ready diagnostics."""
        return {
            "chains": int(self.acceptance_rate.size),
            "num_warmup": self.num_warmup,
            "num_samples": self.num_samples,
            "max_rhat": self.max_rhat,
            "min_ess": self.min_ess,
            "acceptance_rate": [float(a) for a in self.acceptance_rate],
            "divergences": [int(d) for d in self.divergences],
            "step_size": [float(s) for s in self.step_size],
            "wall_s": self.wall_s,
        }


def _forward_mode_grad(f: Callable[[jax.Array], jax.Array]) -> Callable[[jax.Array], jax.Array]:
    """``f`` with a reverse-mode rule computed by forward mode (``jax.jacfwd``)."""

    @jax.custom_vjp
    def g(x: jax.Array) -> jax.Array:
        return f(x)

    def g_fwd(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return f(x), jax.jacfwd(f)(x)

    def g_bwd(grad: jax.Array, ct: jax.Array) -> tuple[jax.Array]:
        return (ct * grad,)

    g.defvjp(g_fwd, g_bwd)
    return g


def nuts(
    log_density: Callable[[PyTree], jax.Array],
    position: PyTree,
    *,
    key: jax.Array,
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 500,
    init_std: float | PyTree = 0.0,
    inverse_mass_matrix: np.ndarray | None = None,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    grad: Literal["rev", "fwd"] = "rev",
    callback: Callable[[int, int], None] | None = None,
) -> HMCResult:
    """Sample ``log_density`` with NUTS, warm-started at ``position`` (the MAP).

    Parameters
    ----------
    log_density
        ``log_density(params) -> scalar``, e.g. from :func:`least_squares_log_posterior`.
    position
        Starting point (pytree of float arrays), normally the MAP of the same objective.
    key
        JAX PRNG key (of everything random: jitter, adaptation, sampling).
    num_chains
        Independent chains (>= 2 for :math:`\\hat R`).
    num_warmup, num_samples
        Window-adaptation steps and kept draws per chain.
    init_std
        Chains start at ``position + init_std * N(0, 1)`` (scalar or pytree like
        ``position``, e.g. Gauss–Newton standard deviations) so that :math:`\\hat R` can
        detect chains that do not mix; 0 starts all chains at the MAP.
    inverse_mass_matrix
        Initial inverse mass matrix over the flattened parameters: ``(n,)`` (diagonal
        adaptation) or ``(n, n)`` (dense adaptation), e.g. the Gauss–Newton covariance.
        Default: identity, diagonal adaptation.
    target_accept
        Target acceptance probability of the step-size adaptation.
    max_tree_depth
        Maximum number of trajectory doublings (at most ``2**depth`` gradient steps).
    grad
        ``"rev"`` (reverse mode) or ``"fwd"`` (forward mode; see the module docstring).
    callback
        ``callback(done_chains, num_chains)`` after each chain.

    Returns
    -------
    HMCResult
    """
    import blackjax
    from blackjax.adaptation.base import get_filter_adapt_info_fn

    if int(num_chains) < 1 or int(num_warmup) < 1 or int(num_samples) < 2:
        raise ParameterError(
            f"num_chains={num_chains}, num_warmup={num_warmup}, num_samples={num_samples}",
            where="nuts",
            fix="num_chains >= 1, num_warmup >= 1, num_samples >= 2",
        )
    if grad not in ("rev", "fwd"):
        raise ParameterError(f"grad = {grad!r}", where="nuts", fix="'rev' or 'fwd'")
    t0 = time.perf_counter()
    x0, unravel = ravel_pytree(jax.tree_util.tree_map(lambda v: jnp.asarray(v, float), position))

    def flat_logp(x: jax.Array) -> jax.Array:
        return log_density(unravel(x))

    logp = _forward_mode_grad(flat_logp) if grad == "fwd" else flat_logp
    if isinstance(init_std, int | float):
        s = jnp.full(x0.shape, float(init_std))
    else:
        s, _ = ravel_pytree(
            jax.tree_util.tree_map(
                lambda v, p: jnp.broadcast_to(jnp.asarray(v, float), jnp.shape(p)),
                init_std,
                position,
            )
        )
    diag = inverse_mass_matrix is None or np.ndim(inverse_mass_matrix) == 1
    imm = None if inverse_mass_matrix is None else jnp.asarray(inverse_mass_matrix, float)
    lp0 = float(flat_logp(x0))
    if not np.isfinite(lp0):
        raise ParameterError(
            f"log density at the starting point is {lp0}",
            where="nuts",
            fix="start at a point where the forward model succeeds (the MAP)",
        )

    @jax.jit
    def run_chain(k: jax.Array, start: jax.Array) -> tuple[jax.Array, ...]:
        k_warm, k_samp = jax.random.split(k)
        warmup = blackjax.window_adaptation(
            blackjax.nuts,
            logp,
            is_mass_matrix_diagonal=diag,
            initial_inverse_mass_matrix=imm,
            target_acceptance_rate=float(target_accept),
            adaptation_info_fn=get_filter_adapt_info_fn(),
            max_num_doublings=int(max_tree_depth),
        )
        (state, params), _ = warmup.run(k_warm, start, num_steps=int(num_warmup))
        kernel = blackjax.nuts(
            logp,
            step_size=params["step_size"],
            inverse_mass_matrix=params["inverse_mass_matrix"],
            max_num_doublings=int(max_tree_depth),
        )

        def one(st: Any, kk: jax.Array) -> tuple[Any, tuple[jax.Array, ...]]:
            st, info = kernel.step(kk, st)
            return st, (st.position, info.acceptance_rate, info.is_divergent)

        _, (xs, acc, div) = jax.lax.scan(one, state, jax.random.split(k_samp, int(num_samples)))
        return xs, jnp.mean(acc), jnp.sum(div), params["step_size"]

    keys = jax.random.split(key, int(num_chains) + 1)
    jitter = jax.random.normal(keys[0], (int(num_chains), x0.size))
    chains, accs, divs, steps = [], [], [], []
    for c in range(int(num_chains)):
        xs, acc, div, step = run_chain(keys[c + 1], x0 + s * jitter[c])
        chains.append(np.asarray(xs))
        accs.append(float(acc))
        divs.append(int(div))
        steps.append(float(step))
        if callback is not None:
            callback(c + 1, int(num_chains))
    flat = np.stack(chains)  # (chains, draws, n)
    if int(num_chains) >= 2:
        rhat = np.asarray(blackjax.diagnostics.potential_scale_reduction(flat, 0, 1))
    else:
        rhat = np.full(x0.shape, np.nan)
    ess = np.asarray(blackjax.diagnostics.effective_sample_size(flat, 0, 1))
    unr = jax.vmap(jax.vmap(unravel))
    samples = jax.tree_util.tree_map(np.asarray, unr(jnp.asarray(flat)))
    return HMCResult(
        samples=samples,
        rhat=jax.tree_util.tree_map(np.asarray, unravel(jnp.asarray(rhat))),
        ess=jax.tree_util.tree_map(np.asarray, unravel(jnp.asarray(ess))),
        acceptance_rate=np.asarray(accs),
        divergences=np.asarray(divs),
        step_size=np.asarray(steps),
        num_warmup=int(num_warmup),
        num_samples=int(num_samples),
        wall_s=time.perf_counter() - t0,
    )
