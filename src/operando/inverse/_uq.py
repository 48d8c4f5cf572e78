r"""Model selection and uncertainty bookkeeping: folds, the one-SE rule, bands, resamples.

Pure NumPy helpers shared by cross-validation and bootstrap workflows
(:mod:`operando.pipelines._uq`); nothing here fits a model, reads a file or prints.

* :func:`kfold_half_cycles`: k-fold assignment of half-cycles *within each particle*
  (seed 002, Methods "Cross-validation": with :math:`p_{global}` fixed at its MAP the
  folds of different particles are independent, so each particle's half-cycles are
  split on their own: train on :math:`k-1`, validate on the remaining one).
* :func:`cv_statistics` and :func:`one_standard_error`: mean and standard error of the
  validation error over folds, and the one-standard-error rule (Hastie, Tibshirani &
  Friedman, *Elements of Statistical Learning*, 2nd ed., sec. 7.10; seed 002 ref. 54):
  among the candidates whose mean error is within one standard error of the minimum,
  take the *most regularised* one.
* :func:`bootstrap_indices`: seeded resampling with replacement (particles in seed 002,
  realisations for Cahn–Hilliard, frames for denoiser ensembles).
* :func:`percentile_band` and :func:`band_coverage`: pointwise percentile bands of
  samples and the fraction of a truth curve inside a band.
* :func:`basic_band`: the basic (reverse-percentile) bootstrap band
  :math:`[2\hat\theta - q_{hi}, 2\hat\theta - q_{lo}]` (Davison & Hinkley, *Bootstrap
  Methods and their Application*, 1997, eq. 5.6), optionally on a log scale for positive
  quantities: it moves the band by the estimator's bias as the bootstrap sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError, ParameterError

__all__ = [
    "band_coverage",
    "basic_band",
    "bootstrap_indices",
    "cv_statistics",
    "kfold_half_cycles",
    "kfold_splits",
    "one_standard_error",
    "percentile_band",
]


def kfold_half_cycles(particle_of: Sequence[int] | np.ndarray, k: int, *, seed: int) -> np.ndarray:
    """Assign every half-cycle to one of ``k`` folds, separately within each particle.

    The half-cycles of each particle are shuffled (seeded) and dealt round-robin to folds
    ``0, 1, ..., k - 1``, so a particle with ``n_i >= k`` half-cycles has every fold
    non-empty and one with ``2 <= n_i < k`` contributes to folds ``0..n_i - 1`` only.
    A particle with a single half-cycle cannot be validated (nothing would remain to
    train its ``Z_i``): its half-cycle gets fold ``-1``.

    Parameters
    ----------
    particle_of
        ``(H,)`` particle index of every half-cycle.
    k
        Number of folds (>= 2).
    seed
        Seed of the shuffle.

    Returns
    -------
    numpy.ndarray
        ``(H,)`` int fold of every half-cycle (``-1``: never validated).

    Examples
    --------
    >>> kfold_half_cycles([0, 0, 0, 1, 1, 2], 3, seed=0).tolist()  # doctest: +SKIP
    [2, 0, 1, 1, 0, -1]
    """
    if int(k) < 2:
        raise ParameterError(f"k = {k}", where="cross-validation folds", fix="use k >= 2")
    p = np.asarray(particle_of, dtype=int)
    if p.ndim != 1:
        raise DataError(f"particle_of has shape {p.shape}", where="kfold_half_cycles")
    rng = np.random.default_rng(seed)
    folds = np.full(p.shape, -1, dtype=int)
    for particle in np.unique(p):
        idx = np.flatnonzero(p == particle)
        if idx.size < 2:
            continue
        folds[rng.permutation(idx)] = np.arange(idx.size) % int(k)
    return folds


def kfold_splits(
    particle_of: Sequence[int] | np.ndarray, k: int, *, seed: int
) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """Per-particle train/validation splits: ``[(particle, fold, train_idx, val_idx), ...]``.

    Built from :func:`kfold_half_cycles`; only non-empty validation folds are listed.
    Indices are half-cycle indices into the dataset (sorted).
    """
    p = np.asarray(particle_of, dtype=int)
    folds = kfold_half_cycles(p, k, seed=seed)
    out = []
    for particle in np.unique(p):
        mine = p == particle
        for f in range(int(k)):
            val = np.flatnonzero(mine & (folds == f))
            if val.size:
                train = np.flatnonzero(mine & (folds != f))
                out.append((int(particle), f, train, val))
    return out


def cv_statistics(errors: Any, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of validation errors over folds.

    Parameters
    ----------
    errors
        Validation errors, folds along ``axis`` (e.g. ``(n_folds, n_grid)``); NaN entries
        (failed or absent folds) are skipped.
    axis
        The fold axis.

    Returns
    -------
    (mean, se)
        ``se = std(ddof=1) / sqrt(n)`` over the finite entries (NaN where fewer than 2).
    """
    e = np.asarray(errors, dtype=float)
    n = np.sum(np.isfinite(e), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(e, axis=axis) / np.where(n > 0, n, np.nan)
        dev = np.where(np.isfinite(e), e - np.expand_dims(mean, axis), 0.0)
        var = np.sum(dev**2, axis=axis) / np.where(n > 1, n - 1, np.nan)
        se = np.sqrt(var / n)
    return mean, se


def one_standard_error(
    grid: Any, mean: Any, se: Any, *, most_regularised: str = "largest"
) -> tuple[int, int]:
    """The one-standard-error rule: the most regularised candidate within 1 SE of the best.

    Parameters
    ----------
    grid
        ``(n,)`` regularisation parameters (e.g. ``rho2``), in any order.
    mean, se
        ``(n,)`` mean validation error and its standard error (NaN: candidate skipped).
    most_regularised
        ``"largest"`` (default: larger ``grid`` values regularise more, as ``rho2``) or
        ``"smallest"``.

    Returns
    -------
    (chosen, best)
        Index of the one-SE choice and index of the minimum mean error.

    Raises
    ------
    DataError
        No finite mean error.
    """
    g = np.asarray(grid, dtype=float)
    m = np.asarray(mean, dtype=float)
    s = np.asarray(se, dtype=float)
    if not (g.shape == m.shape == s.shape) or g.ndim != 1:
        raise DataError(
            f"grid, mean and se have shapes {g.shape}, {m.shape}, {s.shape}",
            where="one_standard_error",
            fix="pass three 1-d arrays of equal length",
        )
    if most_regularised not in ("largest", "smallest"):
        raise ParameterError(
            f"most_regularised = {most_regularised!r}",
            where="one_standard_error",
            fix="'largest' or 'smallest'",
        )
    ok = np.isfinite(m)
    if not ok.any():
        raise DataError("no finite validation error", where="one_standard_error")
    best = int(np.flatnonzero(ok)[np.argmin(m[ok])])
    threshold = m[best] + (s[best] if np.isfinite(s[best]) else 0.0)
    within = np.flatnonzero(ok & (m <= threshold))
    pick = np.argmax(g[within]) if most_regularised == "largest" else np.argmin(g[within])
    return int(within[pick]), best


def bootstrap_indices(n: int, n_samples: int, *, seed: int) -> np.ndarray:
    """``(n_samples, n)`` indices drawn uniformly with replacement from ``0..n-1`` (seeded).

    Sample ``b`` is reproducible on its own: it is drawn from ``default_rng([seed, b])``,
    so asking for more samples later extends the set without changing the first ones.
    """
    if int(n) < 1 or int(n_samples) < 1:
        raise ParameterError(
            f"n = {n}, n_samples = {n_samples}", where="bootstrap", fix="both must be >= 1"
        )
    return np.stack(
        [np.random.default_rng([int(seed), b]).integers(0, n, int(n)) for b in range(n_samples)]
    )


def percentile_band(samples: Any, level: float = 0.99, axis: int = 0) -> tuple[Any, Any]:
    """Pointwise central percentile band of samples.

    Parameters
    ----------
    samples
        Samples along ``axis`` (e.g. ``(B, n_c)`` bootstrap curves or ``(B, y, x)`` maps);
        NaNs are ignored (maps with NaN off the particle stay NaN there).
    level
        Coverage of the band, e.g. 0.99 for the 0.5 and 99.5 percentiles.
    axis
        The sample axis.

    Returns
    -------
    (lo, hi)
    """
    if not 0.0 < level < 1.0:
        raise ParameterError(f"level = {level}", where="percentile_band", fix="0 < level < 1")
    x = np.asarray(samples, dtype=float)
    q = 100.0 * np.array([(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    all_nan = np.all(np.isnan(x), axis=axis)
    filled = np.where(np.expand_dims(all_nan, axis), 0.0, x)
    lo, hi = np.nanpercentile(filled, q, axis=axis)
    return np.where(all_nan, np.nan, lo), np.where(all_nan, np.nan, hi)


def basic_band(
    samples: Any, estimate: Any, level: float = 0.99, axis: int = 0, *, log: bool = False
) -> tuple[Any, Any]:
    r"""Pointwise basic (reverse-percentile) bootstrap band around an estimate.

    If the bootstrap estimates :math:`\theta^*_b` scatter about the estimate
    :math:`\hat\theta` as :math:`\hat\theta` scatters about the truth, the band
    :math:`[2\hat\theta - q_{hi}, 2\hat\theta - q_{lo}]` of the percentiles
    :math:`q` of :math:`\theta^*` covers the truth at ``level`` (Davison & Hinkley 1997,
    eq. 5.6). Unlike the percentile band it is shifted *against* a bias the resamples
    reproduce (mean :math:`\theta^* - \hat\theta`). With ``log=True`` the rule is
    applied to :math:`\log\theta` (positive quantities such as ``j0``):
    :math:`[\hat\theta^2 / q_{hi}, \hat\theta^2 / q_{lo}]`, which stays positive.

    Parameters
    ----------
    samples
        Bootstrap estimates along ``axis``.
    estimate
        The estimate from the data, shaped like one sample.
    level, axis
        As in :func:`percentile_band`.
    log
        Apply the rule on a log scale (samples and estimate must then be > 0).

    Returns
    -------
    (lo, hi)
    """
    est = np.asarray(estimate, dtype=float)
    x = np.asarray(samples, dtype=float)
    if log:
        if np.any(est <= 0) or np.any(x[np.isfinite(x)] <= 0):
            raise DataError(
                "log=True needs positive samples and estimate", where="basic_band",
                fix="use log=False for quantities that can be <= 0",
            )  # fmt: skip
        lo, hi = percentile_band(np.log(x), level, axis)
        return np.exp(2.0 * np.log(est) - hi), np.exp(2.0 * np.log(est) - lo)
    lo, hi = percentile_band(x, level, axis)
    return 2.0 * est - hi, 2.0 * est - lo


def band_coverage(lo: Any, hi: Any, truth: Any) -> float:
    """Fraction of the finite points of ``truth`` with ``lo <= truth <= hi``."""
    lo, hi, t = (np.asarray(v, dtype=float) for v in (lo, hi, truth))
    ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(t)
    if not ok.any():
        return float("nan")
    return float(np.mean((t[ok] >= lo[ok]) & (t[ok] <= hi[ok])))
