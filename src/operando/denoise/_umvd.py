"""UMVD training batches and the boundary-safe temporal window."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, PRNGKeyArray

from ._augment import random_transform
from ._masking import uniform_ints
from ._n2v import crop, pick_frames

__all__ = ["umvd_batch", "window_indices"]


def window_indices(t: Any, n_frames: int, window: int) -> Any:
    """Frame indices of the ``window = 2k+1`` frames centred on frame ``t``.

    Position ``k`` is ``t`` itself (its features are zeroed by the network). A neighbour
    ``t + d`` that falls outside ``[0, n_frames)`` is replaced by its mirror image
    *about the target frame*, ``t - d``. Because ``d != 0`` this is never ``t``, and as
    ``n_frames >= window`` it is always inside the video. (Mirroring about the clip
    edge instead, ``-(t + d)``, would put the target frame itself into its own input,
    e.g. ``t = 1, d = -2``, and let the network copy its noise.)

    Works on Python/NumPy integers and on traced JAX scalars.
    """
    half = window // 2
    d = jnp.arange(-half, half + 1)
    idx = t + d
    return jnp.where((idx < 0) | (idx >= n_frames), t - d, idx)


def umvd_batch(
    key: PRNGKeyArray,
    data: Array,
    weights: Array,
    *,
    batch_size: int,
    patch: int,
    window: int,
    augment: bool,
) -> tuple[Array, Array]:
    """A batch of ``(window stacked on channels, noisy centre frame)`` patch pairs."""
    n, c, h, w = data.shape
    u = jr.uniform(key, (batch_size, 5), dtype=jnp.float32)
    ts = pick_frames(u[:, 0], weights)

    def one(ub: Array, t: Array) -> tuple[Array, Array]:
        y0 = uniform_ints(ub[1], h - patch + 1)
        x0 = uniform_ints(ub[2], w - patch + 1)
        idx = window_indices(t, n, window)

        win = jax.vmap(lambda i: crop(data, i, y0, x0, patch))(idx)  # (window, c, p, p)
        if augment:
            win = random_transform(win, uniform_ints(ub[3], 8), 8)
            # the blind spot is symmetric in time: a reversed window is as valid a sample
            win = jnp.where(ub[4] < 0.5, win[::-1], win)
        target = win[window // 2]
        return win.reshape(window * c, patch, patch), target

    return jax.vmap(one)(u, ts)
