"""The one fixed resampler of the enhancement workflow: x2 cubic convolution.

Every x2 up-sampling in :mod:`operando.enhance` (the low-quality slices before InDI, the
bicubic baseline, the interpolation of enhanced slices along ``z``) goes through
:func:`upsample2`, so that training and inference see exactly the same operator.

The kernel is Keys' cubic convolution with ``a = -0.5`` (the "bicubic" of most image
libraries) on half-pixel-centred grids: output sample ``j`` of an axis of length ``2n``
sits at input coordinate ``j / 2 - 1/4``, so even outputs use the input offset ``-1/4``
and odd outputs ``+1/4``. Each output is a fixed 4-tap combination of its neighbours;
borders are extended by edge replication. The operator is exact for constant and linear
signals away from the borders and preserves the mean of a constant image everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["cubic_weights", "upsample2"]


def _keys(s: np.ndarray, a: float = -0.5) -> np.ndarray:
    s = np.abs(s)
    w = np.where(
        s <= 1,
        (a + 2) * s**3 - (a + 3) * s**2 + 1,
        np.where(s < 2, a * s**3 - 5 * a * s**2 + 8 * a * s - 4 * a, 0.0),
    )
    return w


def cubic_weights() -> tuple[np.ndarray, np.ndarray]:
    """The 4-tap weights of the even and odd outputs (taps at input ``i-2 .. i+1`` for
    even outputs and ``i-1 .. i+2`` for odd ones); each sums to one."""
    even = _keys(np.array([-1.75, -0.75, 0.25, 1.25]))
    odd = _keys(np.array([-1.25, -0.25, 0.75, 1.75]))
    return even, odd


def _up_axis(a: np.ndarray, axis: int) -> np.ndarray:
    a = np.moveaxis(a, axis, 0)
    n = a.shape[0]
    p = np.concatenate([a[:1], a[:1], a, a[-1:], a[-1:]], axis=0)  # pad 2 by edge replication
    even_w, odd_w = cubic_weights()
    # input i sits at p[i + 2]; even taps i-2..i+1 -> p[i..i+3]; odd taps i-1..i+2 -> p[i+1..i+4]
    even = sum(even_w[k] * p[k : k + n] for k in range(4))
    odd = sum(odd_w[k] * p[k + 1 : k + 1 + n] for k in range(4))
    out = np.stack([even, odd], axis=1).reshape(2 * n, *a.shape[1:])
    return np.moveaxis(out, 0, axis)


def upsample2(x: np.ndarray, axes: Sequence[int] = (-2, -1)) -> np.ndarray:
    """Up-sample ``x`` by 2 along ``axes`` with the fixed cubic-convolution kernel.

    Parameters
    ----------
    x
        Real array; computed in float64.
    axes
        Axes to up-sample (default: the last two, i.e. rows and columns of images).

    Returns
    -------
    numpy.ndarray
        Float64 array with every axis in ``axes`` twice as long.

    Examples
    --------
    >>> import numpy as np
    >>> upsample2(np.ones((2, 3))).shape
    (4, 6)
    """
    out = np.asarray(x, dtype=np.float64)
    for ax in axes:
        out = _up_axis(out, ax)
    return out
