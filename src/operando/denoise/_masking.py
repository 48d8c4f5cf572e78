"""Blind-spot masking for Noise2Void, N2V2 and structN2V (pure JAX, one patch at a time).

Masked pixels are placed on a jittered grid (stratified sampling, as in N2V): the patch
is cut into ``n_y x n_x`` cells, one masked pixel per cell, at a random position in the
first ``cell - gap`` rows/columns of its cell, the whole grid shifted cyclically by a
random offset. Two masked pixels are therefore always at least ``gap + 1`` pixels apart
(Chebyshev distance), with ``gap`` at least the replacement radius and the struct-mask
half-span. Consequently no masked pixel can be the *source* of another masked pixel's
replacement value or lie under another pixel's struct mask: the network input of a
masked pixel never contains that pixel's own noisy value, anywhere in the patch. This is
what :func:`mask_patch` guarantees and what the tests check with a Jacobian.

Replacement rules (the centre is never its own source):

* ``"n2v"``: a uniformly random neighbour from the ``(2r+1) x (2r+1)`` window without
  the centre (``r = 5``: 11x11). A neighbour outside the patch is mirrored through the
  centre (offset ``d -> -d``), which keeps it inside the patch and non-zero.
* ``"n2v2"``: the median of the in-patch window without the centre.
* ``"struct"``: the centre and a line of ``span`` pixels through it (horizontal or
  vertical) are filled with values drawn uniformly from the patch's range, per channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, PRNGKeyArray

__all__ = [
    "MaskGrid",
    "mask_grid",
    "mask_patch",
    "masked_coords",
    "replacement_offsets",
    "uniform_ints",
]


@dataclass(frozen=True)
class MaskGrid:
    """Static layout of the masked pixels in a patch (chosen once per patch shape)."""

    n_y: int
    n_x: int
    cell_y: int
    cell_x: int
    gap: int

    @property
    def n_masked(self) -> int:
        return self.n_y * self.n_x


def mask_grid(height: int, width: int, fraction: float, gap: int) -> MaskGrid:
    """Grid of ``round(fraction * height * width)`` (at least 1) masked pixels.

    The number per axis is capped so that every cell is at least ``2 * gap`` pixels
    wide, which keeps the spacing guarantee (see module docstring); tiny patches with a
    large fraction therefore get fewer masked pixels than asked for.
    """
    n_target = max(1, round(fraction * height * width))
    n_y = max(1, round(math.sqrt(n_target * height / width)))
    n_y = min(n_y, max(1, height // (2 * gap)))
    n_x = max(1, round(n_target / n_y))
    n_x = min(n_x, max(1, width // (2 * gap)))
    cell_y, cell_x = height // n_y, width // n_x
    if cell_y <= gap or cell_x <= gap:
        raise ValueError(f"patch {height}x{width} too small for a masking gap of {gap}")
    return MaskGrid(n_y, n_x, cell_y, cell_x, gap)


def uniform_ints(u: Array, n: int) -> Array:
    """Integers uniform in ``[0, n)`` from uniforms ``u`` in ``[0, 1)``.

    All random numbers of a patch come from one ``jax.random.uniform`` draw mapped by this
    function: each separate ``jax.random`` call adds about a second of XLA compile time on
    CPU, and a training step would otherwise contain a dozen of them.
    """
    return jnp.minimum(jnp.floor(u * n).astype(jnp.int32), n - 1)


def masked_coords(u: Array, grid: MaskGrid) -> tuple[Array, Array]:
    """Row and column indices of the masked pixels of one patch (``grid.n_masked`` each).

    ``u`` holds ``2 + 2 * grid.n_masked`` uniforms in ``[0, 1)``.
    """
    m = grid.n_masked
    oy = uniform_ints(u[0], grid.cell_y)
    ox = uniform_ints(u[1], grid.cell_x)
    iy, ix = np.meshgrid(np.arange(grid.n_y), np.arange(grid.n_x), indexing="ij")
    uy = uniform_ints(u[2 : 2 + m], grid.cell_y - grid.gap)
    ux = uniform_ints(u[2 + m : 2 + 2 * m], grid.cell_x - grid.gap)
    ys = (oy + iy.ravel() * grid.cell_y + uy) % (grid.n_y * grid.cell_y)
    xs = (ox + ix.ravel() * grid.cell_x + ux) % (grid.n_x * grid.cell_x)
    return ys, xs


def replacement_offsets(u: Array, radius: int) -> tuple[Array, Array]:
    """Uniformly random non-zero offsets ``(dy, dx)`` in ``[-radius, radius]^2``, one per ``u``.

    An index into the ``(2r+1)^2 - 1`` non-centre positions is drawn and mapped past the
    centre, so ``(0, 0)`` is impossible by construction.
    """
    side = 2 * radius + 1
    centre = (side * side) // 2
    j = uniform_ints(u, side * side - 1)
    j = j + (j >= centre)
    return j // side - radius, j % side - radius


def _mirror_inside(pos: Array, off: Array, size: int) -> Array:
    """``pos + off``, or ``pos - off`` when ``pos + off`` leaves ``[0, size)``."""
    p = pos + off
    return jnp.where((p < 0) | (p >= size), pos - off, p)


def mask_patch(
    key: PRNGKeyArray,
    patch: Array,
    grid: MaskGrid,
    *,
    mode: str = "n2v",
    radius: int = 5,
    span: int = 7,
    horizontal: bool = True,
) -> tuple[Array, Array, Array]:
    """Blind-spot manipulation of one patch.

    Parameters
    ----------
    key
        PRNG key.
    patch
        ``(channel, row, column)``; each side at least ``2 * radius + 1``.
    grid
        From :func:`mask_grid` (``grid.gap >= radius`` and ``>= span // 2``).
    mode
        ``"n2v"`` (random neighbour), ``"n2v2"`` (median without centre) or ``"struct"``.
    radius
        Half-width of the replacement window (5: an 11x11 window).
    span, horizontal
        Length and orientation of the structN2V line mask.

    Returns
    -------
    masked, ys, xs
        The manipulated patch and the row/column indices of the masked pixels; the loss
        is evaluated at ``(ys, xs)`` only.
    """
    c, h, w = patch.shape
    m = grid.n_masked
    n_fill = c * m * span if mode == "struct" else m
    u = jr.uniform(key, (2 + 2 * m + n_fill,), dtype=jnp.float32)
    ys, xs = masked_coords(u[: 2 + 2 * m], grid)
    u_rep = u[2 + 2 * m :]
    if mode == "n2v":
        dy, dx = replacement_offsets(u_rep, radius)
        sy = _mirror_inside(ys, dy, h)
        sx = _mirror_inside(xs, dx, w)
        return patch.at[:, ys, xs].set(patch[:, sy, sx]), ys, xs
    if mode == "n2v2":
        side = 2 * radius + 1
        oy, ox = np.meshgrid(np.arange(side) - radius, np.arange(side) - radius, indexing="ij")
        keep = (oy != 0) | (ox != 0)
        oy, ox = jnp.asarray(oy[keep]), jnp.asarray(ox[keep])  # the side^2 - 1 offsets
        py = ys[:, None] + oy[None, :]
        px = xs[:, None] + ox[None, :]
        inside = (py >= 0) & (py < h) & (px >= 0) & (px < w)
        vals = patch[:, jnp.clip(py, 0, h - 1), jnp.clip(px, 0, w - 1)]  # (c, n, side^2-1)
        vals = jnp.where(inside[None], vals, jnp.nan)
        med = jnp.nanmedian(vals, axis=-1).astype(patch.dtype)
        return patch.at[:, ys, xs].set(med), ys, xs
    if mode == "struct":
        half = span // 2
        offs = jnp.arange(-half, half + 1)
        if horizontal:
            ly = jnp.broadcast_to(ys[:, None], (ys.shape[0], offs.shape[0]))
            lx = xs[:, None] + offs[None, :]
            lx = jnp.where((lx < 0) | (lx >= w), w, lx)  # out of range -> dropped
        else:
            ly = ys[:, None] + offs[None, :]
            ly = jnp.where((ly < 0) | (ly >= h), h, ly)
            lx = jnp.broadcast_to(xs[:, None], (xs.shape[0], offs.shape[0]))
        lo = patch.min(axis=(1, 2))[:, None, None]
        hi = patch.max(axis=(1, 2))[:, None, None]
        fill = lo + u_rep.reshape(c, *ly.shape).astype(patch.dtype) * (hi - lo)
        out = patch.at[:, ly, lx].set(fill, mode="drop")
        return out, ys, xs
    raise ValueError(f"unknown masking mode {mode!r}")
