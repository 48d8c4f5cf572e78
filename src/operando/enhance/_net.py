"""The InDI U-Net of seed 001 (Fig. 1E, "Training details and model architecture"), in Equinox.

One unbatched image ``(1, y, x)`` and a scalar time ``t`` in, one image out (callers
``vmap``). Parameters are float32 (as the denoisers in :mod:`operando.denoise`), whatever
JAX's default precision.

Architecture (sizes configurable; the paper uses ``base_filters = 64``):

* a 7x7 input convolution to ``base_filters`` channels;
* ``depth`` encoder levels: a residual block (two 3x3 convolutions with Swish, the time
  embedding added through a dense layer between them) followed by a strided 3x3
  down-sampling convolution that doubles the filters;
* a bottleneck of residual blocks whose convolutions are dilated (1, 2, 4, 1): the
  paper's combination of non-dilated and dilated convolutions in place of deeper levels;
* ``depth`` decoder levels: up-sampling (nearest + 3x3 convolution; the *last*
  up-sampling is a sub-pixel convolution, i.e. a 3x3 convolution to 4x the channels and a
  pixel shuffle), concatenation with the skip connection, a residual block;
* a 7x7 output convolution and ``tanh`` (data live in ``[-1, 1]``).

The time embedding is the sinusoidal (sin/cos) positional embedding of ``t`` followed by
a two-layer MLP; each residual block maps it with its own dense layer to its channels.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, PRNGKeyArray

__all__ = ["InDIUNet", "receptive_radius", "time_embedding"]

_F32 = jnp.float32
_DILATIONS = (1, 2, 4, 1)


def time_embedding(t: Array, dim: int) -> Array:
    """Sinusoidal embedding ``[sin(t w_k), cos(t w_k)]`` of a scalar ``t`` (``dim`` even),
    frequencies ``w_k = 1000 * 10000^(-k / (dim/2))`` (``t`` in ``[0, 1]`` is scaled by
    1000 like a diffusion step index)."""
    half = dim // 2
    freqs = jnp.exp(-math.log(10000.0) * jnp.arange(half, dtype=_F32) / half)
    arg = 1000.0 * jnp.asarray(t, _F32) * freqs
    return jnp.concatenate([jnp.sin(arg), jnp.cos(arg)])


class _ResBlock(eqx.Module):
    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    temb: eqx.nn.Linear
    skip: eqx.nn.Conv2d | None

    def __init__(self, cin: int, cout: int, tdim: int, dilation: int = 1, *, key: PRNGKeyArray):
        k1, k2, k3, k4 = jr.split(key, 4)
        pad = dilation
        self.conv1 = eqx.nn.Conv2d(cin, cout, 3, padding=pad, dilation=dilation, dtype=_F32, key=k1)
        self.conv2 = eqx.nn.Conv2d(
            cout, cout, 3, padding=pad, dilation=dilation, dtype=_F32, key=k2
        )
        self.temb = eqx.nn.Linear(tdim, cout, dtype=_F32, key=k3)
        self.skip = None if cin == cout else eqx.nn.Conv2d(cin, cout, 1, dtype=_F32, key=k4)

    def __call__(self, x: Array, emb: Array) -> Array:
        h = self.conv1(jax.nn.swish(x))
        h = h + self.temb(emb)[:, None, None]
        h = self.conv2(jax.nn.swish(h))
        return (x if self.skip is None else self.skip(x)) + h


def _pixel_shuffle(x: Array) -> Array:
    c4, h, w = x.shape
    c = c4 // 4
    return x.reshape(c, 2, 2, h, w).transpose(0, 3, 1, 4, 2).reshape(c, 2 * h, 2 * w)


class InDIUNet(eqx.Module):
    """U-Net ``F(x_t, t)`` for InDI (see module docstring).

    Parameters
    ----------
    base_filters
        Filters of the first level (doubled per level); the paper uses 64.
    depth
        Down-sampling levels; image sides must be multiples of ``2**depth``.
    bottleneck_blocks
        Dilated residual blocks in the bottleneck (each uses the next dilation of
        (1, 2, 4, 1)).
    key
        PRNG key for the initial weights.
    """

    head: eqx.nn.Conv2d
    tmlp1: eqx.nn.Linear
    tmlp2: eqx.nn.Linear
    enc: tuple[_ResBlock, ...]
    down: tuple[eqx.nn.Conv2d, ...]
    mid: tuple[_ResBlock, ...]
    up: tuple[eqx.nn.Conv2d, ...]
    dec: tuple[_ResBlock, ...]
    tail: eqx.nn.Conv2d
    base_filters: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    tdim: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        base_filters: int = 64,
        depth: int = 2,
        bottleneck_blocks: int = 2,
        key: PRNGKeyArray,
    ):
        f = base_filters
        tdim = 4 * f
        keys = iter(jr.split(key, 8 + 4 * depth + bottleneck_blocks))
        self.head = eqx.nn.Conv2d(1, f, 7, padding=3, dtype=_F32, key=next(keys))
        self.tmlp1 = eqx.nn.Linear(f, tdim, dtype=_F32, key=next(keys))
        self.tmlp2 = eqx.nn.Linear(tdim, tdim, dtype=_F32, key=next(keys))
        enc, down, up, dec = [], [], [], []
        for level in range(depth):
            c = f * 2**level
            enc.append(_ResBlock(c, c, tdim, key=next(keys)))
            down.append(eqx.nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, dtype=_F32, key=next(keys)))
        cb = f * 2**depth
        self.mid = tuple(
            _ResBlock(cb, cb, tdim, _DILATIONS[i % len(_DILATIONS)], key=next(keys))
            for i in range(bottleneck_blocks)
        )
        for level in reversed(range(depth)):
            c = f * 2**level
            if level == 0:  # last up-sampling: sub-pixel convolution
                up.append(eqx.nn.Conv2d(2 * c, 4 * c, 3, padding=1, dtype=_F32, key=next(keys)))
            else:
                up.append(eqx.nn.Conv2d(2 * c, c, 3, padding=1, dtype=_F32, key=next(keys)))
            dec.append(_ResBlock(2 * c, c, tdim, key=next(keys)))
        self.enc, self.down, self.up, self.dec = tuple(enc), tuple(down), tuple(up), tuple(dec)
        self.tail = eqx.nn.Conv2d(f, 1, 7, padding=3, dtype=_F32, key=next(keys))
        self.base_filters, self.depth, self.tdim = f, depth, tdim

    def __call__(self, x: Array, t: Array) -> Array:
        """``x``: ``(1, y, x)``; ``t``: scalar. Returns ``(1, y, x)`` in ``(-1, 1)``."""
        x = x.astype(_F32)
        emb = time_embedding(t, self.base_filters)
        emb = self.tmlp2(jax.nn.swish(self.tmlp1(emb)))
        h = self.head(x)
        skips = []
        for block, down in zip(self.enc, self.down, strict=True):
            h = block(h, emb)
            skips.append(h)
            h = down(h)
        for block in self.mid:
            h = block(h, emb)
        for i, (up, block) in enumerate(zip(self.up, self.dec, strict=True)):
            level = self.depth - 1 - i
            if level == 0:
                h = _pixel_shuffle(up(h))
            else:
                h = up(jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2))
            h = block(jnp.concatenate([h, skips[level]], axis=0), emb)
        return jnp.tanh(self.tail(jax.nn.swish(h)))


def receptive_radius(depth: int, bottleneck_blocks: int = 2) -> int:
    """An upper bound (pixels) on the reach of an output pixel's receptive field, used as
    the context margin of tiled inference (tiles then agree with untiled inference)."""
    r = 3 + 3  # 7x7 head and tail
    for level in range(depth):
        s = 2**level
        r += 2 * s  # encoder residual block (two 3x3)
        r += 2 * s  # strided down-sampling (3x3, stride 2), rounded up
        r += 2 * s + 2 * s  # up-sampling convolution (at the coarse scale) + decoder block
    sb = 2**depth
    for i in range(bottleneck_blocks):
        r += 2 * _DILATIONS[i % len(_DILATIONS)] * sb
    return int(r)
