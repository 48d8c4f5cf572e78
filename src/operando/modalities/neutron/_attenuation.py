"""Beer–Lambert attenuation and differential imaging (seed 000 eq. 3 and S2.4).

Geometry and axes: frames are ``(t, y, x)``; ``y`` (rows) is the *depth* direction through
the electrode stack (anode, separator, cathode are bands of rows), ``x`` (columns) runs
across the cylindrical cell, whose axis is parallel to ``y``. The beam crosses the cell
along a chord of length

.. math:: \\delta(x) = 2 \\sqrt{r^2 - d(x)^2}, \\qquad d(x) = |x - x_c| / p

(``p`` pixels per cm; seed 000: 1289.8), and

.. math:: T = \\exp(-\\Sigma \\delta) \\;\\Rightarrow\\; \\Sigma = -\\ln T / \\delta,
   \\qquad \\Delta\\Sigma(t) = \\Sigma(t) - \\Sigma(t_{ref})
   = \\frac{1}{\\delta} \\ln \\frac{T(t_{ref})}{T(t)} .

(Seed 000 prints eq. 3 as ``(1/δ) log(T(t)/T(t_ref))``; with ``Σ = -ln T / δ`` the ratio is
the other way round: lithium uptake lowers ``T`` and *raises* ``Σ``. We use the sign that
makes ``ΔΣ > 0`` mean lithium gained.) ``Σ`` is in 1/cm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ...errors import DataError, ParameterError

__all__ = [
    "PAPER_PIXELS_PER_CM",
    "Attenuation",
    "attenuation",
    "chord_thickness",
    "delta_attenuation",
    "depth_profile",
]

#: Pixel calibration of the seed 000 neutron radiographs.
PAPER_PIXELS_PER_CM = 1289.8


def chord_thickness(
    nx: int,
    *,
    radius_cm: float,
    centre_px: float | None = None,
    pixels_per_cm: float = PAPER_PIXELS_PER_CM,
) -> np.ndarray:
    """Chord length ``δ(x) = 2 sqrt(r² - d(x)²)`` in cm for columns ``x = 0 .. nx-1``.

    Parameters
    ----------
    nx
        Number of columns.
    radius_cm
        Cell radius ``r`` (cm).
    centre_px
        Column of the cell axis (pixel units, may be fractional); default the image centre
        ``(nx - 1) / 2``.
    pixels_per_cm
        Pixel calibration ``p``.

    Returns
    -------
    numpy.ndarray
        ``(nx,)`` float64, 0 outside the cell (``d >= r``).
    """
    if not (radius_cm > 0 and np.isfinite(radius_cm)):
        raise ParameterError(
            f"radius {radius_cm} cm is not positive",
            where="radius",
            fix="give the cell radius in cm",
        )
    if not (pixels_per_cm > 0 and np.isfinite(pixels_per_cm)):
        raise ParameterError(
            f"pixels_per_cm={pixels_per_cm} is not positive", where="pixels_per_cm"
        )
    c = (nx - 1) / 2 if centre_px is None else float(centre_px)
    d = np.abs(np.arange(nx, dtype=np.float64) - c) / pixels_per_cm
    return 2.0 * np.sqrt(np.maximum(radius_cm**2 - d**2, 0.0))


@dataclass(frozen=True)
class Attenuation:
    """Attenuation coefficient ``Σ`` (1/cm) and its validity.

    Attributes
    ----------
    sigma
        ``(t, y, x)``; NaN where ``~valid`` (or where ``T <= 0`` when those are masked).
    valid
        ``(y, x)``: finite transmission and ``δ >= min_thickness``.
    thickness
        ``δ`` broadcast to ``(y, x)`` (cm).
    n_nonpositive
        Number of valid pixel values with ``T <= 0`` (masked to NaN, or an error).
    """

    sigma: np.ndarray
    valid: np.ndarray
    thickness: np.ndarray
    n_nonpositive: int


def attenuation(
    transmission: Any,
    thickness: float | Any,
    *,
    min_thickness: float | None = None,
    nonpositive: Literal["raise", "mask"] = "raise",
) -> Attenuation:
    """Beer–Lambert ``Σ = -ln(T) / δ``.

    Parameters
    ----------
    transmission
        ``(t, y, x)`` normalised transmission (NaN = masked pixel).
    thickness
        ``δ`` in cm: a number (flat sample), ``(x,)`` (cylinder, :func:`chord_thickness`)
        or ``(y, x)``.
    min_thickness
        Pixels with ``δ < min_thickness`` (the cell's rim and outside) are masked; default
        10 % of the largest ``δ`` (``Σ`` noise grows as ``1/δ``).
    nonpositive
        ``"raise"`` (default): ``T <= 0`` inside the valid region raises
        :class:`~operando.errors.DataError`; ``"mask"``: such values become NaN.

    Returns
    -------
    Attenuation
    """
    t = np.asarray(transmission, dtype=np.float64)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise DataError(
            f"transmission has shape {t.shape}; expected (t, y, x)", where="attenuation"
        )
    ny, nx = t.shape[1:]
    th = np.asarray(thickness, dtype=np.float64)
    if th.ndim == 0:
        th = np.full((ny, nx), float(th))
    elif th.shape == (nx,):
        th = np.broadcast_to(th[None, :], (ny, nx)).copy()
    elif th.shape != (ny, nx):
        raise DataError(
            f"thickness has shape {th.shape}; expected a number, ({nx},) or ({ny}, {nx})",
            where="thickness",
            fix="compute it for the same (cropped) frame size",
        )
    if not np.any(th > 0):
        raise ParameterError(
            "thickness is zero everywhere",
            where="thickness",
            fix="check radius, centre and pixel calibration",
        )
    if min_thickness is None:
        min_thickness = 0.1 * float(th.max())
    valid = (th >= min_thickness) & (th > 0) & np.all(np.isfinite(t), axis=0)
    bad = (t <= 0) & valid[None]
    n_bad = int(bad.sum())
    if n_bad and nonpositive == "raise":
        frames = np.flatnonzero(bad.any(axis=(1, 2)))
        raise DataError(
            f"{n_bad} pixel value(s) with T <= 0 (intensity at or below dark current) in "
            f"frame(s) {frames[:5].tolist()}{'...' if frames.size > 5 else ''}",
            where="transmission",
            fix="check the dark-current frames, crop the opaque region, or mask such pixels "
            "(nonpositive='mask', CLI --mask-nonpositive)",
        )
    if nonpositive not in ("raise", "mask"):
        raise ParameterError(
            f"nonpositive={nonpositive!r}", where="attenuation", fix="use 'raise' or 'mask'"
        )
    sigma = np.full(t.shape, np.nan)
    ok = valid[None] & (t > 0)
    sigma[ok] = -np.log(t[ok]) / np.broadcast_to(th, t.shape)[ok]
    return Attenuation(sigma=sigma, valid=valid, thickness=th, n_nonpositive=n_bad)


def delta_attenuation(
    sigma: Any, starts: Sequence[int], stops: Sequence[int] | None = None
) -> np.ndarray:
    """``ΔΣ`` of each frame relative to the first frame of its half-cycle (eq. 3).

    Parameters
    ----------
    sigma
        ``(t, y, x)`` attenuation.
    starts, stops
        First frame and one-past-last frame of each half-cycle; ``stops`` defaults to the
        next start (the last runs to the end). Frames outside every half-cycle are NaN.
    """
    s = np.asarray(sigma, dtype=np.float64)
    n = s.shape[0]
    starts = [int(v) for v in starts]
    stops = [int(v) for v in stops] if stops is not None else [*starts[1:], n]
    out = np.full(s.shape, np.nan)
    for a, b in zip(starts, stops, strict=True):
        if not 0 <= a < b <= n:
            raise ParameterError(
                f"half-cycle frames [{a}, {b}) outside 0..{n}", where="half-cycles"
            )
        out[a:b] = s[a:b] - s[a]
    return out


def depth_profile(image: Any, valid: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Depth profile: mean over ``x`` of each row and the in-plane standard deviation.

    Returns ``(mean, std)``, each ``(y,)``; rows without a valid pixel are NaN.
    """
    a = np.asarray(image, dtype=np.float64)
    if valid is not None:
        a = np.where(np.asarray(valid, dtype=bool), a, np.nan)
    count = np.isfinite(a).sum(axis=-1)
    filled = np.where(np.isfinite(a), a, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=-1) / count
        var = (np.where(np.isfinite(a), (a - mean[..., None]) ** 2, 0.0)).sum(axis=-1) / count
    mean = np.where(count > 0, mean, np.nan)
    return mean, np.where(count > 0, np.sqrt(var), np.nan)
