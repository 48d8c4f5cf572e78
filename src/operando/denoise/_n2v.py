"""Noise2Void-family training batches (N2V, N2V2, structN2V)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, PRNGKeyArray

from ._augment import random_transform
from ._masking import MaskGrid, mask_patch, uniform_ints

__all__ = ["crop", "n2v_batch", "pick_frames"]


def n2v_batch(
    key: PRNGKeyArray,
    data: Array,
    weights: Array,
    *,
    batch_size: int,
    patch: int,
    grid: MaskGrid,
    mode: str,
    radius: int,
    span: int,
    horizontal: bool,
    n_transforms: int,
) -> tuple[Array, Array, Array, Array]:
    """Random patches, augmented, then blind-spot masked.

    Returns the masked inputs, the unmasked (noisy) targets and the masked pixels'
    rows/columns per patch.
    """
    _, _c, h, w = data.shape
    k_u, k_mask = jr.split(key)
    u = jr.uniform(k_u, (batch_size, 4), dtype=jnp.float32)
    frames = pick_frames(u[:, 0], weights)

    def one(k: PRNGKeyArray, ub: Array, i: Array) -> tuple[Array, Array, Array, Array]:
        y0 = uniform_ints(ub[1], h - patch + 1)
        x0 = uniform_ints(ub[2], w - patch + 1)
        p = crop(data, i, y0, x0, patch)
        if n_transforms > 1:
            p = random_transform(p, uniform_ints(ub[3], n_transforms), n_transforms)
        masked, ys, xs = mask_patch(
            k, p, grid, mode=mode, radius=radius, span=span, horizontal=horizontal
        )
        return masked, p, ys, xs

    return jax.vmap(one)(jr.split(k_mask, batch_size), u, frames)


def pick_frames(u: Array, weights: Array) -> Array:
    """Frame indices drawn with probabilities ``weights`` (inverse CDF of uniforms ``u``)."""
    cdf = jnp.cumsum(weights)
    idx = jnp.searchsorted(cdf, u * cdf[-1], side="right")
    return jnp.minimum(idx, weights.shape[0] - 1).astype(jnp.int32)


def crop(data: Array, i: Array, y0: Array, x0: Array, patch: int) -> Array:
    """``data[i, :, y0:y0+patch, x0:x0+patch]`` for traced indices (int32 throughout)."""
    start = tuple(jnp.asarray(v, dtype=jnp.int32) for v in (i, 0, y0, x0))
    return jax.lax.dynamic_slice(data, start, (1, data.shape[1], patch, patch))[0]
