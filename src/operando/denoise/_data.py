"""Input validation and layout for the denoisers (NumPy, outside any jitted code).

Accepted layouts: ``(y, x)`` (one image), ``(t, y, x)`` (independent images for the
N2V family, a video for UMVD) and ``(t, c, y, x)`` (multi-channel, e.g. RGB). Internally
everything is ``(n, c, y, x)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import DataError

__all__ = ["as_nchw", "from_nchw"]


def as_nchw(data: Any, *, where: str = "data") -> np.ndarray:
    """Validate ``data``; return it as a float64 ``(n, c, y, x)`` array (a view if possible)."""
    if isinstance(data, xr.DataArray):
        data = data.values
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"has dtype {arr.dtype}; expected a real numeric array",
            where=where,
            fix="pass a real-valued image array (np.abs for complex data)",
        )
    if arr.ndim not in (2, 3, 4):
        raise DataError(
            f"has {arr.ndim} dimensions {arr.shape}; expected (y, x), (t, y, x) or (t, c, y, x)",
            where=where,
            fix="reshape the array",
        )
    if arr.size == 0:
        raise DataError(f"is empty, shape {arr.shape}", where=where)
    arr = arr.astype(np.float64, copy=False)
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise DataError(
            f"contains {bad} NaN/inf value(s)",
            where=where,
            fix="replace the non-finite pixels (e.g. by interpolation or the local median) first",
        )
    if arr.ndim == 2:
        return arr[None, None]
    if arr.ndim == 3:
        return arr[:, None]
    return arr


def from_nchw(out: np.ndarray, ndim: int) -> np.ndarray:
    """Inverse of :func:`as_nchw`'s reshaping for an input of ``ndim`` dimensions."""
    if ndim == 2:
        return out[0, 0]
    if ndim == 3:
        return out[:, 0]
    return out
