r"""Inversion by Direct Iteration (InDI; Delbracio & Milanfar, TMLR 2023), as used by seed 001.

Notation: ``x`` is the high-quality image, ``y`` the low-quality image already brought to
the same grid (x2 cubic up-sampling, :func:`~operando.enhance.upsample2`), both
normalised to ``[-1, 1]``.

* **Degradation path** (:func:`degradation_path`): :math:`x_t = (1 - t)\,x + t\,y + t\,\sigma\,\eta`
  with :math:`t \in [0, 1]` and optional path noise :math:`\sigma \ge 0`
  (:math:`\eta \sim N(0, 1)`); :math:`x_0 = x`, :math:`x_1 = y + \sigma\eta`.
* **Training** (:func:`sample_times`, :func:`indi_loss`): the network
  :math:`F(x_t, t)` predicts ``x``; ``t`` is uniform on ``(0, 1]`` with an optional point
  mass ``p_one`` at ``t = 1`` (``p_one = 1`` turns InDI into plain regression, the CNN
  baseline). Loss per pixel on the error ``e = F - x``: ``"mae_mse"`` (seed 001: MAE below
  ``|e| = 0.5``, MSE above; written ``|e|`` for ``|e| <= 0.5`` and ``e^2 + 1/4`` above so
  that value *and* slope are continuous at 0.5), ``"l1"`` or ``"l2"``.
* **Inference** (:func:`indi_restore`): from :math:`x_1 = y`, ``N`` uniform steps of size
  :math:`\delta = 1/N`:
  :math:`x_{t-\delta} = \frac{\delta}{t} F(x_t, t) + (1 - \frac{\delta}{t}) x_t`.
  ``N = 1`` is one regression step ``F(y, 1)``. With a constant path-noise level the
  stochastic update of Delbracio & Milanfar adds zero noise, so inference is deterministic.

These are pure JAX functions of a callable ``F(x_t, t)`` (batch ``(b, 1, y, x)`` and times
``(b,)``), so the mathematics is tested with oracle networks independently of training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, PRNGKeyArray

from ..errors import ParameterError

__all__ = ["LOSSES", "degradation_path", "indi_loss", "indi_restore", "pixel_loss", "sample_times"]

#: Loss names accepted by :func:`pixel_loss`.
LOSSES = ("mae_mse", "l1", "l2")

Loss = Literal["mae_mse", "l1", "l2"]


def degradation_path(
    x: Array, y: Array, t: Array, *, noise: float = 0.0, key: PRNGKeyArray | None = None
) -> Array:
    """The InDI path ``x_t = (1 - t) x + t y + t * noise * eta``.

    Parameters
    ----------
    x, y
        High- and low-quality images of the same shape ``(b, ...)``.
    t
        Times ``(b,)`` in ``[0, 1]`` (broadcast over the trailing axes) or a scalar.
    noise
        Path-noise level ``sigma`` (0: deterministic path); needs ``key`` when > 0.
    key
        PRNG key for ``eta``.
    """
    t = jnp.asarray(t, dtype=x.dtype)
    tb = t.reshape(t.shape + (1,) * (x.ndim - t.ndim))
    xt = (1 - tb) * x + tb * y
    if noise > 0:
        if key is None:
            raise ParameterError(
                "path noise needs a PRNG key", where="degradation_path: key", fix="pass key="
            )
        xt = xt + tb * noise * jr.normal(key, x.shape, x.dtype)
    return xt


def sample_times(key: PRNGKeyArray, n: int, *, p_one: float = 0.0) -> Array:
    """``n`` training times: uniform on ``(0, 1]``, replaced by exactly 1 with probability
    ``p_one``."""
    k1, k2 = jr.split(key)
    t = 1.0 - jr.uniform(k1, (n,), jnp.float32)  # (0, 1]
    return jnp.where(jr.uniform(k2, (n,)) < p_one, jnp.ones_like(t), t)


def pixel_loss(err: Array, kind: Loss = "mae_mse") -> Array:
    """Per-pixel loss of the error ``err``: ``"mae_mse"``, ``"l1"`` or ``"l2"`` (see module)."""
    a = jnp.abs(err)
    if kind == "mae_mse":
        return jnp.where(a <= 0.5, a, err**2 + 0.25)
    if kind == "l1":
        return a
    if kind == "l2":
        return err**2
    raise ParameterError(f"unknown loss {kind!r}", where="loss", fix=f"use one of {LOSSES}")


def indi_loss(
    apply: Callable[[Array, Array], Array],
    x: Array,
    y: Array,
    key: PRNGKeyArray,
    *,
    p_one: float = 0.0,
    noise: float = 0.0,
    loss: Loss = "mae_mse",
) -> Array:
    """Mean InDI training loss of ``apply`` (``F``) on a batch of pairs ``(b, 1, y, x)``."""
    kt, kn = jr.split(key)
    t = sample_times(kt, x.shape[0], p_one=p_one).astype(x.dtype)
    xt = degradation_path(x, y, t, noise=noise, key=kn)
    return jnp.mean(pixel_loss(apply(xt, t) - x, loss))


def indi_restore(
    apply: Callable[[Array, Array], Array],
    y: Array,
    steps: int,
    *,
    return_trajectory: bool = False,
) -> Array | tuple[Array, list[Array]]:
    """Run ``steps`` InDI iterations from ``x_1 = y`` down to ``t = 0``.

    Parameters
    ----------
    apply
        ``F(x_t, t)`` on a batch ``(b, ...)`` with times ``(b,)``; returns the estimate of ``x``.
    y
        Low-quality batch ``(b, ...)`` on the high-quality grid, normalised.
    steps
        Number of uniform steps ``N >= 1`` (1: plain regression ``F(y, 1)``).
    return_trajectory
        Also return the list of intermediate states ``[x_1, x_{1-d}, ..., x_0]``.

    Returns
    -------
    jax.Array
        The restored batch ``x_0`` (and the trajectory when asked).
    """
    if int(steps) != steps or steps < 1:
        raise ParameterError(
            f"steps={steps!r} must be a positive integer",
            where="indi_restore: steps",
            fix="use N >= 1",
        )
    steps = int(steps)
    x = y
    traj = [x]
    for i in range(steps):
        t = (steps - i) / steps  # exact rationals on the uniform grid
        d = 1.0 / steps
        tb = jnp.full((y.shape[0],), t, dtype=y.dtype)
        f = apply(x, tb)
        x = f if i == steps - 1 else (d / t) * f + (1.0 - d / t) * x
        traj.append(x)
    if return_trajectory:
        return x, traj
    return x
