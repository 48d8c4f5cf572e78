"""Open-beam / dark-current normalisation of neutron radiographs (seed 000 S2.4).

.. math:: T(x, y, t) = \\frac{I(x, y, t) - DC(x, y)}{OB(x, y) - DC(x, y)}

with every intensity, open-beam (OB) and dark-current (DC) frame median filtered (3x3) and
optionally denoised first, OB and DC averaged over their frames. Pixels whose denominator
``OB - DC`` is not safely positive are masked (NaN in ``T``) and counted, never divided.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ...errors import DataError, ParameterError

__all__ = [
    "FrameDenoiser",
    "Transmission",
    "denoise_frames",
    "median_filter_frames",
    "normalise",
    "train_frame_denoiser",
]

#: ``f(frames, role) -> frames`` where ``role`` is ``"intensity"``, ``"open_beam"`` or ``"dark"``.
FrameDenoiser = Callable[[np.ndarray, str], np.ndarray]


def _frames(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise DataError(
            f"expected frames (t, y, x) or one frame (y, x), got shape {arr.shape}",
            where=name,
            fix="give a non-empty frame series",
        )
    if not np.all(np.isfinite(arr)):
        raise DataError(
            f"{int(arr.size - np.isfinite(arr).sum())} NaN/inf pixel(s)",
            where=name,
            fix="replace dead pixels (e.g. by a median of neighbours) first",
        )
    return arr


def median_filter_frames(frames: Any, size: int = 3) -> np.ndarray:
    """Median filter every frame ``(t, y, x)`` in-plane (``size x size``, edges repeated)."""
    arr = _frames(frames, "median_filter_frames: frames")
    if size < 1 or size % 2 == 0:
        raise ParameterError(f"size={size} must be odd and >= 1", where="median_filter_frames")
    if size == 1:
        return arr.copy()
    return ndi.median_filter(arr, size=(1, size, size), mode="nearest")


@dataclass(frozen=True)
class Transmission:
    """Normalised transmission and the references that made it.

    Attributes
    ----------
    transmission
        ``(t, y, x)``; NaN where the pixel is masked (``~valid``).
    valid
        ``(y, x)``: ``OB - DC > min_denominator``.
    open_beam, dark
        The averaged (filtered, denoised) references ``(y, x)``.
    min_denominator
        The guard used.
    n_masked
        Number of masked detector pixels.
    nonpositive_fraction
        Fraction of valid pixel values with ``T <= 0`` (``I <= DC``).
    """

    transmission: np.ndarray
    valid: np.ndarray
    open_beam: np.ndarray
    dark: np.ndarray
    min_denominator: float
    n_masked: int
    nonpositive_fraction: float


def normalise(
    intensity: Any,
    open_beam: Any,
    dark: Any,
    *,
    median: int = 3,
    denoiser: FrameDenoiser | None = None,
    min_denominator: float | None = None,
) -> Transmission:
    """Transmission ``T = (I - DC) / (OB - DC)`` with median filtering and a division guard.

    Parameters
    ----------
    intensity
        Raw intensity frames ``(t, y, x)`` (or one frame).
    open_beam, dark
        Open-beam and dark-current frames ``(n, y, x)`` (or one frame each); averaged over
        frames after filtering.
    median
        Side of the in-plane median filter applied to all three series (3 in seed 000; 1: off).
    denoiser
        Optional ``f(frames, role)`` applied after the median filter to each series
        (``role``: ``"intensity"``, ``"open_beam"``, ``"dark"``); see
        :func:`train_frame_denoiser`.
    min_denominator
        Pixels with ``OB - DC <= min_denominator`` are masked. Default: 1 % of the median
        of ``OB - DC`` over the detector (a dead or shadowed pixel).

    Returns
    -------
    Transmission

    Raises
    ------
    DataError
        Missing (empty) references, frame sizes that differ, NaN pixels, or a detector
        on which every pixel fails the guard (open beam not brighter than dark).
    """
    i = _frames(intensity, "intensity")
    ob = _frames(open_beam, "open beam")
    dc = _frames(dark, "dark current")
    for name, a in (("open beam", ob), ("dark current", dc)):
        if a.shape[1:] != i.shape[1:]:
            raise DataError(
                f"{name} frames are {a.shape[1:]} pixels but intensity frames {i.shape[1:]}",
                where=name,
                fix="use references recorded with the same detector region (crop alike)",
            )
    if median != 1:
        i, ob, dc = (median_filter_frames(a, median) for a in (i, ob, dc))
    if denoiser is not None:
        i = np.asarray(denoiser(i, "intensity"), dtype=np.float64)
        ob = np.asarray(denoiser(ob, "open_beam"), dtype=np.float64)
        dc = np.asarray(denoiser(dc, "dark"), dtype=np.float64)
    ob_m = ob.mean(axis=0)
    dc_m = dc.mean(axis=0)
    den = ob_m - dc_m
    if min_denominator is None:
        med = float(np.median(den))
        if not med > 0:
            raise DataError(
                f"open beam is not brighter than dark current (median OB - DC = {med:.4g})",
                where="open beam / dark current",
                fix="check that the open-beam and dark files are not swapped",
            )
        min_denominator = 0.01 * med
    valid = den > min_denominator
    if not valid.any():
        raise DataError(
            f"OB - DC <= {min_denominator:.4g} at every pixel",
            where="open beam / dark current",
            fix="check the references (swapped files? beam closed?) or lower min_denominator",
        )
    t = np.full(i.shape, np.nan)
    t[:, valid] = (i[:, valid] - dc_m[valid]) / den[valid]
    tv = t[:, valid]
    return Transmission(
        transmission=t,
        valid=valid,
        open_beam=ob_m,
        dark=dc_m,
        min_denominator=float(min_denominator),
        n_masked=int((~valid).sum()),
        nonpositive_fraction=float(np.mean(tv <= 0)),
    )


def denoise_frames(
    frames: Any,
    *,
    method: str = "n2v",
    key: Any = 0,
    **train_options: Any,
) -> np.ndarray:
    """Denoise a frame series with :func:`operando.denoise.train_denoiser` (trained on itself).

    ``method="umvd"`` on a series shorter than the UMVD window (``window``, default 5)
    falls back to ``"n2v"`` (single images), as for the five open-beam frames of seed 000.
    """
    from ...denoise import train_denoiser

    arr = _frames(frames, "denoise_frames: frames")
    window = int(train_options.get("window", 5))
    if method == "umvd" and arr.shape[0] < window:
        method = "n2v"
        train_options = {k: v for k, v in train_options.items() if k not in ("window",)}
    patch = int(train_options.pop("patch_size", 32))
    side = min(arr.shape[1:])
    patch = max(16, min(patch, side - side % 4))
    if side < 16:
        raise DataError(
            f"frames of {arr.shape[1:]} pixels are too small to denoise (need >= 16)",
            where="denoise_frames",
            fix="skip denoising for such small frames",
        )
    den = train_denoiser(arr, method=method, key=key, patch_size=patch, **train_options)
    return den.predict(arr)


def train_frame_denoiser(method: str, *, key: int = 0, **train_options: Any) -> FrameDenoiser:
    """A :data:`FrameDenoiser` that trains one self-supervised model per series.

    Each of the intensity, open-beam and dark series gets its own model (seed 000 Table S1),
    seeded ``key``, ``key + 1``, ``key + 2``. Options go to
    :func:`operando.denoise.train_denoiser` (``epochs``, ``steps_per_epoch``, ...).
    """
    offsets = {"intensity": 0, "open_beam": 1, "dark": 2}

    def f(frames: np.ndarray, role: str) -> np.ndarray:
        return denoise_frames(
            frames, method=method, key=key + offsets.get(role, 3), **dict(train_options)
        )

    return f
