"""Comparison of an STXM map with a higher-resolution reference (ptychography).

Following seed 000 S2.2 / Fig. 3b, S6: the reference map (e.g. 10 nm ptychography) is
resized onto the STXM pixel grid (anti-aliased), padded with its mean background to the
STXM image size (or cropped), re-aligned by phase cross-correlation, and compared pixel by
pixel: PSNR, SSIM, RMSE and a linear fit ``stxm = slope * reference + intercept`` with the
Pearson correlation ``r`` (a non-zero intercept is the bias the paper reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import metrics
from ...errors import DataError, ParameterError
from ._registration import apply_shifts

__all__ = ["ComparisonResult", "compare_to_reference", "reference_on_grid"]


@dataclass(frozen=True)
class ComparisonResult:
    """Agreement between an STXM map and a reference resampled onto its grid.

    Attributes
    ----------
    psnr, ssim, rmse
        Image-quality figures of the STXM map against the resampled reference
        (``data_range`` of the reference); PSNR in dB.
    slope, intercept, r
        Least-squares line ``stxm = slope * reference + intercept`` and Pearson ``r``.
    n_pixels
        Pixels used for RMSE and the fit (the mask, or all).
    shift
        ``(dy, dx)`` applied to the resampled reference to align it (pixels).
    data_range
        ``L`` used for PSNR/SSIM.
    reference
        The resampled, padded, aligned reference ``(y, x)``.
    """

    psnr: float
    ssim: float
    rmse: float
    slope: float
    intercept: float
    r: float
    n_pixels: int
    shift: tuple[float, float]
    data_range: float
    reference: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        """The scalar figures as a JSON-serialisable dict."""
        return {
            "psnr": self.psnr,
            "ssim": self.ssim,
            "rmse": self.rmse,
            "slope": self.slope,
            "intercept": self.intercept,
            "r": self.r,
            "n_pixels": self.n_pixels,
            "shift": list(self.shift),
            "data_range": self.data_range,
        }


def _image(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or min(arr.shape) < 4 or not np.all(np.isfinite(arr)):
        raise DataError(
            f"{name} must be a finite 2D image of at least 4x4 pixels (shape {arr.shape})",
            where=f"compare_to_reference: {name}",
            fix="pass absorbance/OD or composition maps with background filled, not NaN",
        )
    return arr


def reference_on_grid(
    reference: Any,
    shape: tuple[int, int],
    *,
    scale: float | None = None,
    background: float | None = None,
) -> np.ndarray:
    """Resample a high-resolution map onto a coarser grid of ``shape``.

    Parameters
    ----------
    reference
        High-resolution map ``(Y, X)``.
    shape
        Target ``(ny, nx)``.
    scale
        ``reference pixel size / target pixel size`` (e.g. 10 nm / 40 nm = 0.25): the map
        is rescaled by it (anti-aliased) and centred, padded with ``background`` or
        cropped to ``shape``. ``None``: resized straight to ``shape`` (both are crops of
        the same particle).
    background
        Padding value; default the mean of the reference's background (pixels below its
        Otsu threshold).
    """
    from skimage.filters import threshold_otsu
    from skimage.transform import rescale, resize

    ref = _image(reference, "reference")
    if scale is None:
        return resize(ref, shape, order=1, anti_aliasing=True, mode="edge")
    if not (scale > 0 and np.isfinite(scale)):
        raise ParameterError(
            f"scale={scale!r}", where="reference_on_grid: scale", fix="use pixel-size ratio > 0"
        )
    small = rescale(ref, scale, order=1, anti_aliasing=scale < 1, mode="edge")
    if background is None:
        thr = threshold_otsu(ref) if np.ptp(ref) > 0 else ref.max()
        bg = ref[ref <= thr]
        background = float(bg.mean()) if bg.size else float(ref.mean())
    out = np.full(shape, float(background))
    sy, sx = small.shape
    ty, tx = shape
    # centre: source window [a, a + n) goes to target window [b, b + n)
    ny, nx = min(sy, ty), min(sx, tx)
    ay, ax = (sy - ny) // 2, (sx - nx) // 2
    by, bx = (ty - ny) // 2, (tx - nx) // 2
    out[by : by + ny, bx : bx + nx] = small[ay : ay + ny, ax : ax + nx]
    return out


def compare_to_reference(
    image: Any,
    reference: Any,
    *,
    scale: float | None = None,
    background: float | None = None,
    mask: Any | None = None,
    align: bool = True,
    upsample_factor: int = 20,
    data_range: float | None = None,
) -> ComparisonResult:
    """Compare an STXM map with a high-resolution reference of the same field of view.

    Parameters
    ----------
    image
        STXM map ``(y, x)`` (absorbance, OD or composition), finite.
    reference
        Reference map (e.g. ptychography), any size; see :func:`reference_on_grid`.
    scale, background
        Passed to :func:`reference_on_grid`.
    mask
        ``(y, x)`` pixels for RMSE and the linear fit (default all). PSNR/SSIM use the
        whole image.
    align
        Register the resampled reference onto ``image`` (phase cross-correlation,
        sub-pixel, spline shift) before comparing.
    upsample_factor
        Registration precision ``1 / upsample_factor`` px.
    data_range
        ``L`` for PSNR/SSIM; default the resampled reference's ``max - min``.

    Returns
    -------
    ComparisonResult
    """
    from skimage.registration import phase_cross_correlation

    img = _image(image, "image")
    ref = reference_on_grid(reference, img.shape, scale=scale, background=background)
    shift = (0.0, 0.0)
    if align:
        s, _, _ = phase_cross_correlation(img, ref, upsample_factor=int(upsample_factor))
        ref = apply_shifts(ref[None], np.asarray(s)[None])[0]
        shift = (float(s[0]), float(s[1]))
    m = np.ones(img.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != img.shape or m.sum() < 3:
        raise DataError(
            f"mask has shape {m.shape} / {int(m.sum())} pixels; image is {img.shape}",
            where="compare_to_reference: mask",
            fix="pass a (y, x) mask with at least 3 pixels",
        )
    L = float(np.ptp(ref)) if data_range is None else float(data_range)
    if not L > 0:
        raise DataError(
            "the resampled reference is constant; data_range would be 0",
            where="compare_to_reference",
            fix="pass data_range explicitly",
        )
    a, b = ref[m], img[m]
    slope, intercept = np.polyfit(a, b, 1)
    r = float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 and np.std(b) > 0 else float("nan")
    return ComparisonResult(
        psnr=float(metrics.psnr(ref, img, data_range=L)),
        ssim=float(metrics.ssim(ref, img, data_range=L)),
        rmse=float(np.sqrt(np.mean((a - b) ** 2))),
        slope=float(slope),
        intercept=float(intercept),
        r=r,
        n_pixels=int(m.sum()),
        shift=shift,
        data_range=L,
        reference=ref,
    )
