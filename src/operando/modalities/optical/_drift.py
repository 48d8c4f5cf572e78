"""Stage-drift correction of colour videos by phase cross-correlation.

Each frame's luminance is registered to the previous frame's with
:func:`skimage.registration.phase_cross_correlation` (sub-pixel, ``1/upsample_factor``
pixel), and the frame-to-frame shifts are accumulated, so slow drift over a long video and
the changing colours of the particles (which defeat registration to a distant frame) are both
handled. Frames are mean-subtracted (illumination flicker) and Hann-windowed before
correlation. All frames are then shifted (per channel, cubic spline, edges extended) into the
coordinates of frame 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ...errors import DataError

__all__ = ["DriftResult", "apply_drift", "correct_drift", "estimate_drift"]


@dataclass(frozen=True)
class DriftResult:
    """A drift-corrected video and the correction applied.

    Attributes
    ----------
    video
        ``(t, y, x, 3)`` aligned to frame 0.
    shifts
        ``(t, 2)`` cumulative shifts ``(dy, dx)`` in pixels *applied* to each frame
        (``shifts[0] = 0``; a frame displaced by ``d`` relative to frame 0 gets ``-d``).
    steps
        ``(t, 2)`` frame-to-frame shifts (``steps[0] = 0``).
    errors
        ``(t,)`` normalised RMS registration error of each step.
    """

    video: np.ndarray
    shifts: np.ndarray
    steps: np.ndarray
    errors: np.ndarray


def _luminance(video: np.ndarray) -> np.ndarray:
    return video @ np.array([0.2126, 0.7152, 0.0722]) if video.ndim == 4 else video


def estimate_drift(
    video: np.ndarray, *, upsample_factor: int = 20, smooth: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative sub-pixel shifts that align every frame to frame 0.

    Parameters
    ----------
    video
        ``(t, y, x, 3)`` colour or ``(t, y, x)`` grey frames.
    upsample_factor
        Sub-pixel precision ``1/upsample_factor``.
    smooth
        Gaussian pre-smoothing (pixels) of the luminance against shot noise (0: none).

    Returns
    -------
    shifts, steps, errors
        ``(t, 2)`` cumulative shifts to apply, ``(t, 2)`` frame-to-frame steps, ``(t,)``
        registration errors.
    """
    from skimage.registration import phase_cross_correlation

    lum = _luminance(np.asarray(video, dtype=np.float64))
    if lum.ndim != 3 or lum.shape[0] < 2:
        raise DataError(
            f"drift correction needs a video of at least 2 frames, got shape {lum.shape}",
            where="estimate_drift",
            fix="pass (t, y, x, 3) frames",
        )
    if smooth > 0:
        lum = ndi.gaussian_filter(lum, (0, smooth, smooth))
    lum = lum - lum.mean(axis=(1, 2), keepdims=True)  # flicker: remove each frame's mean
    # A Hann window suppresses the edge discontinuity of the implicitly periodic images,
    # whose zero-shift correlation would otherwise bias sub-pixel shifts towards 0.
    from skimage.filters import window

    lum = lum * window("hann", lum.shape[1:])[None]
    n = lum.shape[0]
    steps = np.zeros((n, 2))
    errors = np.zeros(n)
    for t in range(1, n):
        s, err, _ = phase_cross_correlation(
            lum[t - 1], lum[t], upsample_factor=upsample_factor, normalization=None
        )
        steps[t] = s
        errors[t] = err
    return np.cumsum(steps, axis=0), steps, errors


def apply_drift(video: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Shift each frame of ``video`` ``(t, y, x[, 3])`` by ``shifts[t]`` ``(dy, dx)`` pixels."""
    a = np.asarray(video, dtype=np.float64)
    s = np.asarray(shifts, dtype=np.float64)
    if s.shape != (a.shape[0], 2):
        raise DataError(
            f"shifts {s.shape} do not match {a.shape[0]} frames",
            where="apply_drift",
            fix="one (dy, dx) per frame",
        )
    out = np.empty_like(a)
    extra = (0,) * (a.ndim - 3)
    for t in range(a.shape[0]):
        if not s[t].any():
            out[t] = a[t]
        else:
            out[t] = ndi.shift(a[t], (*s[t], *extra), order=3, mode="nearest")
    return np.clip(out, 0.0, 1.0) if a.ndim == 4 else out


def correct_drift(
    video: np.ndarray, *, upsample_factor: int = 20, smooth: float = 1.0
) -> DriftResult:
    """Estimate (:func:`estimate_drift`) and apply (:func:`apply_drift`) the stage drift.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> f0 = ndi.gaussian_filter(rng.random((64, 64, 3)), (2, 2, 0))
    >>> v = np.stack([f0, ndi.shift(f0, (1.5, -2.0, 0), mode="nearest")])
    >>> bool(np.abs(correct_drift(v).shifts[1] - [-1.5, 2.0]).max() < 0.15)
    True
    """
    shifts, steps, errors = estimate_drift(video, upsample_factor=upsample_factor, smooth=smooth)
    return DriftResult(apply_drift(video, shifts), shifts, steps, errors)
