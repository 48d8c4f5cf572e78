"""U-Net backbones (Equinox, float32) for the blind-spot denoisers.

All modules act on one unbatched image ``(channel, row, column)``; callers ``vmap`` over
a batch. Parameters are created in float32 explicitly, so the networks stay float32
even when JAX runs with x64 enabled (as operando's physics does).

* :class:`UNet`: the CSBDeep/CAREamics-style U-Net used by Noise2Void: ``depth``
  down-sampling levels, two 3x3 convolutions + ReLU per level, ``base_filters * 2**l``
  filters at level ``l``, bilinear up-sampling, skip connections, a 1x1 output
  convolution and no residual connection. The N2V2 variant (Höck et al. 2022) replaces
  max-pooling by max-blur-pooling and drops the top-level skip connection.
* :class:`UMVDNet`: the spatio-temporal blind-spot network of UMVD (Aiyetigbo et al.,
  CVPRW 2024): per-frame convolutional features (grouped by colour channel, shared by
  the frames), a temporal blind spot that zeroes the centre frame's features, and a
  :class:`UNet` that predicts the centre frame.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, PRNGKeyArray

__all__ = ["UMVDNet", "UNet", "receptive_radius"]

_F32 = jnp.float32


class _ConvBlock(eqx.Module):
    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d

    def __init__(self, cin: int, cout: int, *, key: PRNGKeyArray):
        k1, k2 = jr.split(key)
        self.conv1 = eqx.nn.Conv2d(cin, cout, 3, padding=1, dtype=_F32, key=k1)
        self.conv2 = eqx.nn.Conv2d(cout, cout, 3, padding=1, dtype=_F32, key=k2)

    def __call__(self, x: Array) -> Array:
        return jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(x))))


def _max_pool(x: Array) -> Array:
    c, h, w = x.shape
    return x.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))


def _max_blur_pool(x: Array) -> Array:
    """Max-blur-pool (Zhang 2019, used by N2V2): 2x2 max with stride 1, then a 3x3
    binomial blur with stride 2 (zero padding), applied per channel."""
    c = x.shape[0]
    m = jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max, (1, 2, 2), (1, 1, 1), ((0, 0), (0, 1), (0, 1))
    )
    m = jnp.where(jnp.isfinite(m), m, 0.0).astype(x.dtype)
    b = jnp.asarray([1.0, 2.0, 1.0], dtype=x.dtype)
    k = (b[:, None] * b[None, :]) / 16.0
    kernel = jnp.broadcast_to(k, (c, 1, 3, 3))
    out = jax.lax.conv_general_dilated(
        m[None],
        kernel,
        window_strides=(2, 2),
        padding=((1, 1), (1, 1)),
        feature_group_count=c,
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
    )
    return out[0]


def _upsample(x: Array) -> Array:
    """Bilinear 2x up-sampling (half-pixel centres, edge clamped), written with shifts.

    Equals ``jax.image.resize(x, (c, 2y, 2x), "bilinear")`` in the interior but compiles
    and differentiates much faster on CPU.
    """

    def up(a: Array, axis: int) -> Array:
        n = a.shape[axis]
        prev = jnp.concatenate(
            [
                jax.lax.slice_in_dim(a, 0, 1, axis=axis),
                jax.lax.slice_in_dim(a, 0, n - 1, axis=axis),
            ],
            axis=axis,
        )
        nxt = jnp.concatenate(
            [
                jax.lax.slice_in_dim(a, 1, n, axis=axis),
                jax.lax.slice_in_dim(a, n - 1, n, axis=axis),
            ],
            axis=axis,
        )
        even = 0.75 * a + 0.25 * prev
        odd = 0.75 * a + 0.25 * nxt
        out = jnp.stack([even, odd], axis=axis + 1)
        shape = list(a.shape)
        shape[axis] = 2 * n
        return out.reshape(shape).astype(a.dtype)

    return up(up(x, 1), 2)


class UNet(eqx.Module):
    """A U-Net mapping ``(in_channels, y, x)`` to ``(out_channels, y, x)``.

    Parameters
    ----------
    in_channels, out_channels
        Channels of the input and the output.
    depth
        Number of down-sampling steps; ``y`` and ``x`` must be multiples of ``2**depth``.
    base_filters
        Filters of the first level (doubled at each level).
    n2v2
        Use max-blur-pool down-sampling and no top-level skip connection (N2V2).
    key
        PRNG key for the initial weights.
    """

    encoders: tuple[_ConvBlock, ...]
    bottom: _ConvBlock
    decoders: tuple[_ConvBlock, ...]
    head: eqx.nn.Conv2d
    depth: int = eqx.field(static=True)
    n2v2: bool = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        depth: int = 2,
        base_filters: int = 32,
        n2v2: bool = False,
        key: PRNGKeyArray,
    ):
        keys = jr.split(key, 2 * depth + 2)
        enc = []
        cin = in_channels
        for level in range(depth):
            cout = base_filters * 2**level
            enc.append(_ConvBlock(cin, cout, key=keys[level]))
            cin = cout
        self.encoders = tuple(enc)
        self.bottom = _ConvBlock(cin, base_filters * 2**depth, key=keys[depth])
        dec = []
        for level in reversed(range(depth)):
            c_up = base_filters * 2 ** (level + 1)
            c_skip = 0 if (n2v2 and level == 0) else base_filters * 2**level
            dec.append(
                _ConvBlock(c_up + c_skip, base_filters * 2**level, key=keys[depth + 1 + level])
            )
        self.decoders = tuple(dec)
        self.head = eqx.nn.Conv2d(base_filters, out_channels, 1, dtype=_F32, key=keys[-1])
        self.depth = depth
        self.n2v2 = n2v2

    def __call__(self, x: Array) -> Array:
        pool = _max_blur_pool if self.n2v2 else _max_pool
        skips = []
        for block in self.encoders:
            x = block(x)
            skips.append(x)
            x = pool(x)
        x = self.bottom(x)
        for i, block in enumerate(self.decoders):
            level = self.depth - 1 - i
            x = _upsample(x)
            if not (self.n2v2 and level == 0):
                x = jnp.concatenate([x, skips[level]], axis=0)
            x = block(x)
        return self.head(x)


class UMVDNet(eqx.Module):
    """UMVD's spatio-temporal blind-spot network.

    The input is a window of ``n_frames = 2k+1`` frames stacked along the channel axis,
    ``(n_frames * channels, y, x)``, frame-major. As in the reference implementation of
    Aiyetigbo et al., every frame passes separately through the same feature extractor
    (two 3x3 convolutions grouped by colour channel, weights shared by all frames, so
    frames do not mix); the centre frame's features are then set to zero (the temporal
    blind spot; ``jnp.where``, so even a NaN centre frame cannot leak) and a
    :class:`UNet` maps the stacked features of all frames to the centre frame
    ``(channels, y, x)``. The output therefore does not depend on the centre frame.
    (The reference also scales the other frames' features by a fixed V-shaped temporal
    weight; a learnable first U-Net convolution absorbs such a scaling, so it is omitted.)
    """

    frame_conv1: eqx.nn.Conv2d
    frame_conv2: eqx.nn.Conv2d
    unet: UNet
    n_frames: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)
    features: int = eqx.field(static=True)

    def __init__(
        self,
        channels: int,
        *,
        n_frames: int = 5,
        features: int = 16,
        depth: int = 2,
        base_filters: int = 32,
        key: PRNGKeyArray,
    ):
        k1, k2, k3 = jr.split(key, 3)
        c, f = channels, features * channels
        self.frame_conv1 = eqx.nn.Conv2d(c, f, 3, padding=1, groups=c, dtype=_F32, key=k1)
        self.frame_conv2 = eqx.nn.Conv2d(f, f, 3, padding=1, groups=c, dtype=_F32, key=k2)
        self.unet = UNet(n_frames * f, c, depth=depth, base_filters=base_filters, key=k3)
        self.n_frames = n_frames
        self.channels = channels
        self.features = features

    def frame_features(self, x: Array) -> Array:
        """Per-frame features ``(n_frames, features * channels, y, x)``, centre zeroed."""
        frames = x.reshape(self.n_frames, self.channels, *x.shape[1:])

        def extract(frame: Array) -> Array:
            return jax.nn.relu(self.frame_conv2(jax.nn.relu(self.frame_conv1(frame))))

        h = jax.vmap(extract)(frames)
        centre = (jnp.arange(self.n_frames) == self.n_frames // 2)[:, None, None, None]
        return jnp.where(centre, jnp.zeros((), h.dtype), h)

    def __call__(self, x: Array) -> Array:
        h = self.frame_features(x)
        return self.unet(h.reshape(-1, *x.shape[1:]))


def receptive_radius(depth: int, *, n2v2: bool = False, umvd: bool = False) -> int:
    """A bound (in pixels) on how far an output pixel's receptive field reaches.

    Sum over levels of the 3x3 convolutions (two per block, radius ``2**l`` each), the
    pooling (2x2, plus the 3x3 blur of max-blur-pool) and the bilinear up-sampling.
    Tiled prediction uses it to choose a context margin that makes tiles independent of
    their borders.
    """
    r = 0
    for level in range(depth):
        s = 2**level
        r += 2 * s + s  # encoder convolutions + 2x2 pool
        if n2v2:
            r += 2 * s  # blur kernel (radius 1 at the pooled scale, max window)
        r += 2 * s + s  # decoder convolutions + bilinear up-sampling
    r += 2 * 2**depth
    if umvd:
        r += 2
    return math.ceil(r)
