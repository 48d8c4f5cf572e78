"""Flip/rot90 augmentation and test-time augmentation (the dihedral group of the square)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array

__all__ = ["N_TRANSFORMS", "inverse_transform", "random_transform", "transform"]

#: Transforms allowed per method: all 8 symmetries of the square, or, for structN2V whose
#: line mask assumes the orientation of the correlated noise, only the 4 flips.
N_TRANSFORMS = {"dihedral": 8, "flips": 4}


def transform(x: Array, k: int) -> Array:
    """Apply symmetry ``k`` (static, 0..7) to the last two axes.

    ``k = 0..3``: flips (none, rows, columns, both); ``k = 4..7``: transpose followed by
    the same flips (i.e. the rotations by 90/270 degrees and the two diagonal mirrors).
    Indices 0..3 preserve the row/column orientation.
    """
    if k >= 4:
        x = jnp.swapaxes(x, -1, -2)
    if k % 4 in (1, 3):
        x = jnp.flip(x, axis=-2)
    if k % 4 in (2, 3):
        x = jnp.flip(x, axis=-1)
    return x


def inverse_transform(x: Array, k: int) -> Array:
    """Inverse of :func:`transform` (flips first, then the transpose)."""
    if k % 4 in (2, 3):
        x = jnp.flip(x, axis=-1)
    if k % 4 in (1, 3):
        x = jnp.flip(x, axis=-2)
    if k >= 4:
        x = jnp.swapaxes(x, -1, -2)
    return x


def random_transform(x: Array, k: Array, n: int) -> Array:
    """Apply symmetry ``k`` (traced, in ``[0, n)``) to a square array."""
    branches: list[Callable[[Array], Array]] = [(lambda a, i=i: transform(a, i)) for i in range(n)]
    return jax.lax.switch(k, branches, x)
