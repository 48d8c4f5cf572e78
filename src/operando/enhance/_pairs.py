"""Paired training data from one low-quality and one high-quality scan (seed 001, Methods).

Steps of :func:`prepare_pairs`:

1. **Crop** the low-quality volume to the high-quality field of view: the high-quality
   volume ``(z, y, x)`` at half the voxel size covers ``(z/2, y/2, x/2)`` low-quality
   voxels starting at ``offset`` (default: centred).
2. **Up-sample x2** in all three directions with the fixed cubic resampler
   (:func:`~operando.enhance.upsample2`).
3. **Register** the up-sampled low-quality volume to the high-quality one, sub-voxel:
   ``"translation"`` (phase correlation with 1/20-voxel up-sampling,
   :func:`skimage.registration.phase_cross_correlation`), ``"affine"`` (the translation
   refined by a 12-parameter affine fit maximising the correlation, SciPy) or ``"none"``.
   The transform is applied to the low-quality data (cubic spline interpolation).
4. **Slice** into ``xy`` pairs and **hold out** a contiguous block of about 10 % of the
   slices at the end of the stack (contiguous rather than random, so that held-out slices
   do not have training neighbours one voxel away).
5. **Normalise** each modality to ``[-1, 1]`` with fixed ranges (the 0.05th and 99.95th
   percentiles of the training region), stored with the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi
from scipy import optimize

from ..errors import DataError, ParameterError
from ._resample import upsample2

__all__ = ["Normalisation", "PairedData", "check_volume", "prepare_pairs", "register_volumes"]

Registration = Literal["translation", "affine", "none"]


@dataclass(frozen=True)
class Normalisation:
    """Linear maps of the low- and high-quality grey values to ``[-1, 1]``."""

    lq_range: tuple[float, float]
    hq_range: tuple[float, float]

    def lq(self, v: np.ndarray) -> np.ndarray:
        lo, hi = self.lq_range
        return 2.0 * (np.asarray(v, np.float64) - lo) / (hi - lo) - 1.0

    def hq(self, v: np.ndarray) -> np.ndarray:
        lo, hi = self.hq_range
        return 2.0 * (np.asarray(v, np.float64) - lo) / (hi - lo) - 1.0

    def lq_inverse(self, u: np.ndarray) -> np.ndarray:
        lo, hi = self.lq_range
        return (np.asarray(u, np.float64) + 1.0) / 2.0 * (hi - lo) + lo

    def hq_inverse(self, u: np.ndarray) -> np.ndarray:
        lo, hi = self.hq_range
        return (np.asarray(u, np.float64) + 1.0) / 2.0 * (hi - lo) + lo

    def to_dict(self) -> dict[str, Any]:
        return {"lq_range": list(self.lq_range), "hq_range": list(self.hq_range)}

    @classmethod
    def fit(cls, lq: np.ndarray, hq: np.ndarray, q: float = 0.05) -> Normalisation:
        def rng(v: np.ndarray, name: str) -> tuple[float, float]:
            lo, hi = np.percentile(v, [q, 100 - q])
            if not hi > lo:
                raise DataError(
                    f"the {name} volume is constant ({lo:g}); cannot normalise it",
                    where=f"prepare_pairs: {name}",
                    fix="pass the reconstructed grey values",
                )
            return float(lo), float(hi)

        return cls(rng(lq, "lq"), rng(hq, "hq"))


@dataclass(frozen=True)
class PairedData:
    """Training and held-out slice pairs, normalised to ``[-1, 1]`` (float32).

    ``lq_up`` and ``hq`` are ``(slice, y, x)``; ``train`` and ``test`` index slices.
    ``registration`` holds the fitted transform (``shift`` in fine voxels, and
    ``matrix`` for affine).
    """

    lq_up: np.ndarray
    hq: np.ndarray
    train: np.ndarray
    test: np.ndarray
    norm: Normalisation
    registration: dict[str, Any]
    offset: tuple[int, int, int]


def check_volume(v: Any, name: str, *, where: str) -> np.ndarray:
    """Validate a ``(z, y, x)`` volume: real, finite, three-dimensional."""
    a = np.asarray(v)
    if a.dtype.kind not in "biuf":
        raise DataError(f"{name} has dtype {a.dtype}; expected real numbers", where=where)
    if a.ndim != 3:
        raise DataError(
            f"{name} has shape {a.shape}; a volume (z, y, x) is required",
            where=where,
            fix="pass the reconstructed 3D volume, not a single slice"
            if a.ndim == 2
            else "pass a 3D array (z, y, x)",
        )
    if not np.all(np.isfinite(a)):
        raise DataError(
            f"{name} contains {int((~np.isfinite(a)).sum())} non-finite voxels",
            where=where,
            fix="mask or fill NaN/inf voxels first",
        )
    return a.astype(np.float64, copy=False)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = (a - a.mean()) / (a.std() + 1e-12)
    b = (b - b.mean()) / (b.std() + 1e-12)
    return float(np.mean(a * b))


def _translation(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Phase correlation (1/20 voxel) refined by maximising the normalised
    cross-correlation of the (linearly) shifted volume away from the borders."""
    from skimage.registration import phase_cross_correlation

    shift0, _, _ = phase_cross_correlation(fixed, moving, upsample_factor=20, normalization=None)
    m = max(1, min(fixed.shape) // 8)
    sl = (slice(m, -m),) * 3

    def cost(s: np.ndarray) -> float:
        return -_ncc(ndi.shift(moving, s, order=1, mode="nearest")[sl], fixed[sl])

    res = optimize.minimize(
        cost, np.asarray(shift0, float), method="Powell", options={"xtol": 1e-2}
    )
    return np.asarray(res.x, dtype=np.float64)


def _affine(
    moving: np.ndarray, fixed: np.ndarray, shift0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Refine to an affine map ``fixed(p) ~ moving(A p + b)`` by maximising correlation."""
    centre = (np.asarray(fixed.shape) - 1) / 2.0
    f = (fixed - fixed.mean()) / (fixed.std() + 1e-12)

    def warp(p: np.ndarray) -> np.ndarray:
        a = np.eye(3) + p[:9].reshape(3, 3)
        b = centre - a @ centre - shift0 - p[9:]
        return ndi.affine_transform(moving, a, offset=b, order=1, mode="nearest")

    def cost(p: np.ndarray) -> float:
        w = warp(p)
        w = (w - w.mean()) / (w.std() + 1e-12)
        return -float(np.mean(w * f))

    res = optimize.minimize(
        cost, np.zeros(12), method="Powell", options={"maxiter": 2000, "xtol": 1e-3}
    )
    a = np.eye(3) + res.x[:9].reshape(3, 3)
    b = centre - a @ centre - shift0 - res.x[9:]
    return a, b


def register_volumes(
    moving: np.ndarray, fixed: np.ndarray, *, method: Registration = "translation"
) -> tuple[np.ndarray, dict[str, Any]]:
    """Register ``moving`` onto ``fixed`` (same shape); returns the warped volume and the
    transform (``shift``: ``fixed(p) ~ moving(p - shift)``; for affine also ``matrix`` and
    ``offset`` of :func:`scipy.ndimage.affine_transform`)."""
    if method == "none":
        return moving, {"method": "none", "shift": [0.0, 0.0, 0.0]}
    if method not in ("translation", "affine"):
        raise ParameterError(
            f"unknown registration {method!r}",
            where="prepare_pairs: register",
            fix="use 'translation', 'affine' or 'none'",
        )
    shift = _translation(moving, fixed)
    if method == "translation":
        warped = ndi.shift(moving, shift, order=3, mode="nearest")
        return warped, {"method": "translation", "shift": shift.tolist()}
    a, b = _affine(moving, fixed, shift)
    warped = ndi.affine_transform(moving, a, offset=b, order=3, mode="nearest")
    return warped, {
        "method": "affine",
        "shift": shift.tolist(),
        "matrix": a.tolist(),
        "offset": b.tolist(),
    }


def prepare_pairs(
    lq: Any,
    hq: Any,
    *,
    offset: tuple[int, int, int] | None = None,
    register: Registration = "translation",
    holdout: float = 0.1,
    margin: int = 4,
) -> PairedData:
    """Build normalised xy slice pairs from a low- and a high-quality volume.

    Parameters
    ----------
    lq
        Low-quality volume ``(z, y, x)`` (voxel twice the high-quality voxel).
    hq
        High-quality volume ``(Z, Y, X)`` with even sides; its field of view is
        ``(Z/2, Y/2, X/2)`` low-quality voxels.
    offset
        Corner of the high-quality field of view in ``lq`` (low-quality voxels); default
        centred.
    register
        ``"translation"`` (default), ``"affine"`` or ``"none"``.
    holdout
        Fraction of slices held out for testing (a contiguous block at the end).
    margin
        Slices and border pixels (fine voxels) dropped after registration, where the
        warped data were extrapolated.
    """
    where = "prepare_pairs"
    lq = check_volume(lq, "lq", where=f"{where}: lq")
    hq = check_volume(hq, "hq", where=f"{where}: hq")
    if any(s % 2 for s in hq.shape):
        raise DataError(
            f"hq has shape {hq.shape} with odd sides; its field of view is not a whole number "
            "of low-quality voxels",
            where=f"{where}: hq",
            fix="crop the high-quality volume to even sides",
        )
    size = tuple(s // 2 for s in hq.shape)
    if offset is None:
        offset = tuple((a - b) // 2 for a, b in zip(lq.shape, size, strict=True))
    if any(o < 0 or o + s > a for o, s, a in zip(offset, size, lq.shape, strict=True)):
        raise DataError(
            f"the high-quality field of view ({hq.shape} fine voxels = {size} low-quality voxels "
            f"at offset {offset}) does not fit inside the low-quality volume {lq.shape}",
            where=where,
            fix="LQ and HQ sizes are incompatible: the HQ voxel must be half the LQ voxel and "
            "its field of view inside the LQ scan; check the inputs or pass offset=",
        )
    if not 0 < holdout < 0.5:
        raise ParameterError(f"holdout={holdout} must be in (0, 0.5)", where=f"{where}: holdout")
    crop = lq[tuple(slice(o, o + s) for o, s in zip(offset, size, strict=True))]
    up = upsample2(crop, axes=(0, 1, 2))
    up, reg = register_volumes(up, hq, method=register)
    m = margin
    if min(hq.shape) < 2 * m + 4:
        raise DataError(
            f"hq {hq.shape} is too small for pairs", where=where, fix="use a larger volume"
        )
    sl = (slice(m, -m), slice(m, -m), slice(m, -m))
    up, hq_c = up[sl], hq[sl]
    n = up.shape[0]
    n_test = max(1, round(holdout * n))
    train = np.arange(0, n - n_test)
    test = np.arange(n - n_test, n)
    norm = Normalisation.fit(up[train], hq_c[train])
    return PairedData(
        lq_up=norm.lq(up).astype(np.float32),
        hq=np.clip(norm.hq(hq_c), -1.0, 1.0).astype(np.float32),
        train=train,
        test=test,
        norm=norm,
        registration=reg,
        offset=tuple(int(o) for o in offset),
    )
