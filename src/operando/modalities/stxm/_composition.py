r"""Composition maps from optical density: two-energy system, NNLS, offset fit, bootstrap.

Model
-----
In every pixel the optical density is a non-negative mixture of the reference spectra
``R_j`` (OD per unit amount of phase ``j``) plus a baseline ``B`` (non-resonant absorption,
support film, I0 mismatch; free sign)::

    OD(E_i) = sum_j c_j R_j(E_i - delta) + sum_l b_l B_l(E_i) + noise,   c_j >= 0,

with ``delta`` the energy offset (stack minus reference calibration, see
:mod:`._spectra`). The fraction of the first reference (LiFePO4, Fe(II)) is

.. math:: X = c_1 / \sum_j c_j \in [0, 1],

which is independent of the local thickness. :func:`nnls_composition` solves the
constrained least-squares problem exactly for every pixel at once by enumerating the
``2**k`` active sets of the ``k`` references (each a linear least-squares solve with a
pseudo-inverse computed once for all pixels) and keeping the feasible solution with the
smallest residual, which is the NNLS optimum; this is fast for the ``k <= 4`` references of
STXM (the generic solver :func:`scipy.optimize.nnls` would loop over 10^4–10^5 pixels).

:func:`two_energy_composition` is the 2x2 system of seed 000 S2.2 (pre-edge normalised),
:func:`fit_energy_offset` a 1D grid search for ``delta`` and :func:`bootstrap_composition`
the bootstrap over energies that gives the per-pixel ``sigma_X``.

References
----------
.. [1] Seed 000, Supplementary S2.2 "Scanning Transmission X-ray Microscopy Image
   Processing" and Fig. S4/S5.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import jax
import numpy as np

from ...errors import DataError, ParameterError
from ._od import interpolate_planes
from ._spectra import Outside, ReferenceSpectra

__all__ = [
    "PAPER_TWO_ENERGY",
    "BootstrapResult",
    "CompositionResult",
    "OffsetFit",
    "TwoEnergyMatrix",
    "bootstrap_composition",
    "fit_energy_offset",
    "nnls_composition",
    "nnls_kernel",
    "two_energy_composition",
    "two_energy_matrix",
]

Baseline = Literal["none", "constant", "linear"]
_MAX_REFERENCES = 6


# ------------------------------------------------------------------------ the kernel


def _baseline_columns(energies: np.ndarray, baseline: Baseline) -> np.ndarray:
    e = np.asarray(energies, dtype=np.float64)
    if baseline == "none":
        return np.zeros((e.size, 0))
    if baseline == "constant":
        return np.ones((e.size, 1))
    if baseline == "linear":
        span = max(float(np.ptp(e)), 1e-12)
        return np.stack([np.ones_like(e), (e - e.mean()) / span], axis=1)
    raise ParameterError(
        f"baseline={baseline!r}",
        where="baseline",
        fix="use 'none', 'constant' (default) or 'linear'",
    )


def nnls_kernel(
    a: np.ndarray, free: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact NNLS for many right-hand sides, few non-negative columns, free columns.

    Minimises ``||a c + free b - y||^2`` over ``c >= 0`` and unconstrained ``b`` for
    every column of ``y`` by active-set enumeration.

    Parameters
    ----------
    a
        ``(n, k)`` non-negative-coefficient columns (``k <= 6``).
    free
        ``(n, m)`` unconstrained columns (baseline), ``m >= 0``.
    y
        ``(n, p)`` right-hand sides (one column per pixel).

    Returns
    -------
    c, b, rss
        ``(k, p)`` non-negative coefficients, ``(m, p)`` free coefficients and the
        residual sum of squares ``(p,)``.
    """
    k = a.shape[1]
    m = free.shape[1]
    p = y.shape[1]
    best_rss = np.full(p, np.inf)
    best_c = np.zeros((k, p))
    best_b = np.zeros((m, p))
    yy = np.einsum("ip,ip->p", y, y)
    for r in range(k + 1):
        for subset in itertools.combinations(range(k), r):
            cols = list(subset)
            design = np.concatenate([a[:, cols], free], axis=1)
            if design.shape[1] == 0:
                coef = np.zeros((0, p))
                rss = yy
            else:
                coef = np.linalg.pinv(design) @ y
                resid = design @ coef - y
                rss = np.einsum("ip,ip->p", resid, resid)
            feasible = np.all(coef[:r] >= 0, axis=0) if r else np.ones(p, bool)
            better = feasible & (rss < best_rss - 1e-15 * np.maximum(yy, 1e-300))
            if not better.any():
                continue
            best_rss = np.where(better, rss, best_rss)
            c_full = np.zeros((k, p))
            c_full[cols] = coef[:r]
            best_c = np.where(better, c_full, best_c)
            best_b = np.where(better, coef[r:], best_b)
    return best_c, best_b, best_rss


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CompositionResult:
    """A composition map and the fit behind it.

    Attributes
    ----------
    fraction
        ``X`` ``(y, x)``: fraction of the first reference, in ``[0, 1]``; NaN outside the
        mask or where the references' total amount is not positive (no signal).
    coefficients
        ``(k, y, x)`` non-negative amounts of each reference (NaN outside the mask).
    baseline
        ``(m, y, x)`` baseline coefficients (constant, slope) (NaN outside the mask).
    residual_rms
        ``(y, x)`` root-mean-square fit residual (OD units) over the energies used.
    names
        Reference names, in coefficient order.
    energies
        Energies (eV) used in the fit.
    energy_offset
        Stack minus reference calibration (eV) used.
    method
        ``"nnls"`` or ``"two-energy"``.
    info
        Method-specific facts (baseline kind, two-energy matrix, ...).
    """

    fraction: np.ndarray
    coefficients: np.ndarray
    baseline: np.ndarray
    residual_rms: np.ndarray
    names: tuple[str, ...]
    energies: np.ndarray
    energy_offset: float
    method: str
    info: dict[str, Any] = field(default_factory=dict)


def _od_stack(od: Any, energies: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(od)
    e = np.asarray(energies, dtype=np.float64)
    if a.dtype.kind not in "biuf":
        raise DataError(f"OD has dtype {a.dtype}", where=where, fix="pass real OD values")
    a = a.astype(np.float64, copy=False)
    if a.ndim == 1:
        a = a[:, None, None]
    if a.ndim != 3 or e.shape != (a.shape[0],):
        raise DataError(
            f"OD has shape {a.shape} and energies {e.shape}",
            where=where,
            fix="pass an (energy, y, x) OD stack (or one spectrum) and one energy per plane",
        )
    if not np.all(np.diff(e) > 0):
        raise DataError(
            "energies are not strictly increasing",
            where=where,
            fix="sort the stack by energy and drop duplicates",
        )
    return a, e


def _mask2d(mask: Any, shape: tuple[int, int], where: str) -> np.ndarray:
    if mask is None:
        return np.ones(shape, bool)
    m = np.asarray(mask, dtype=bool)
    if m.ndim == 3:
        m = m.any(axis=0)
    if m.shape != shape:
        raise DataError(
            f"mask has shape {m.shape}; the images are {shape}",
            where=where,
            fix="pass a (y, x) or (particle, y, x) mask of the stack's size",
        )
    return m


def _check_finite(y: np.ndarray, where: str) -> None:
    bad = int(y.size - np.count_nonzero(np.isfinite(y)))
    if bad:
        raise DataError(
            f"OD contains {bad} NaN/inf value(s) inside the mask",
            where=where,
            fix="replace the bad pixels or exclude them with the mask",
        )


def _fractions(c: np.ndarray) -> np.ndarray:
    total = c.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(total > 0, c[0] / np.where(total > 0, total, 1.0), np.nan)
    return np.clip(x, 0.0, 1.0)


def _scatter(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.full((*values.shape[:-1], *mask.shape), np.nan)
    out[..., mask] = values
    return out


def nnls_composition(
    od: Any,
    energies: Any,
    references: ReferenceSpectra,
    *,
    energy_offset: float = 0.0,
    baseline: Baseline = "constant",
    mask: Any | None = None,
    outside: Outside = "error",
) -> CompositionResult:
    """Composition by non-negative least squares over all energies (seed 000 S2.2).

    Parameters
    ----------
    od
        Optical density ``(energy, y, x)`` (or one spectrum ``(energy,)``).
    energies
        Stack energies (eV), strictly increasing.
    references
        Reference spectra; ``X`` is the fraction of the first.
    energy_offset
        Stack minus reference calibration (eV).
    baseline
        Unconstrained baseline added to the model: ``"constant"`` (default; absorbs
        non-resonant absorption and a wrong I0 scale), ``"linear"`` (also a slope, e.g. a
        drifting I0) or ``"none"``.
    mask
        ``(y, x)`` or ``(particle, y, x)`` boolean; pixels outside are not fitted (NaN).
    outside
        Stack energies outside the references' range: ``"error"`` (default) or
        ``"restrict"`` (fit the overlap only).

    Returns
    -------
    CompositionResult

    Examples
    --------
    >>> import numpy as np
    >>> e = np.linspace(700, 720, 41)
    >>> refs = ReferenceSpectra.from_arrays(
    ...     e, [np.exp(-((e - 707) ** 2)), np.exp(-((e - 709) ** 2))])
    >>> od = (0.3 * refs.values[0] + 0.1 * refs.values[1] + 0.5)[:, None, None]
    >>> round(float(nnls_composition(od, e, refs).fraction[0, 0]), 6)
    0.75
    """
    a, e = _od_stack(od, energies, "nnls_composition: od")
    if len(references.names) > _MAX_REFERENCES:
        raise ParameterError(
            f"{len(references.names)} references; at most {_MAX_REFERENCES} are supported",
            where="nnls_composition: references",
            fix="fit fewer phases",
        )
    r, keep = references.on(e, energy_offset=energy_offset, outside=outside)
    m = _mask2d(mask, a.shape[1:], "nnls_composition: mask")
    y = a[keep][:, m]
    _check_finite(y, "nnls_composition: od")
    free = _baseline_columns(e[keep], baseline)
    c, b, rss = nnls_kernel(r, free, y)
    return CompositionResult(
        fraction=_scatter(_fractions(c), m),
        coefficients=_scatter(c, m),
        baseline=_scatter(b, m),
        residual_rms=_scatter(np.sqrt(rss / max(int(keep.sum()), 1)), m),
        names=references.names,
        energies=e[keep],
        energy_offset=float(energy_offset),
        method="nnls",
        info={"baseline": baseline, "energies_dropped": int((~keep).sum())},
    )


# ---------------------------------------------------------------------- two energies


@dataclass(frozen=True)
class TwoEnergyMatrix:
    """The 2x2 system of seed 000 S2.2: pre-edge-normalised reference absorptions.

    ``matrix[i, j]`` is reference ``j``'s (LFP, FP) absorption at energy ``i`` (low,
    high) minus its absorption at ``pre_edge``; energies on the references' scale (eV).
    """

    pre_edge: float = 703.0
    low: float = 706.0
    high: float = 713.0
    matrix: tuple[tuple[float, float], tuple[float, float]] = ((0.64, 0.05), (0.11, 0.60))
    names: tuple[str, str] = ("LFP", "FP")


#: Seed 000 S2.2: Delta LFP(706, 713) = (0.64, 0.11), Delta FP(706, 713) = (0.05, 0.60).
PAPER_TWO_ENERGY = TwoEnergyMatrix()


def two_energy_matrix(
    references: ReferenceSpectra,
    *,
    pre_edge: float = 703.0,
    low: float = 706.0,
    high: float = 713.0,
) -> TwoEnergyMatrix:
    """Build the two-energy system from reference spectra (values at ``low``/``high``
    minus the value at ``pre_edge``, on the references' energy scale)."""
    if len(references.names) != 2:
        raise ParameterError(
            f"{len(references.names)} references; the two-energy system needs exactly 2",
            where="two_energy_matrix: references",
            fix="pass the lithiated (Fe2+) and delithiated (Fe3+) spectra",
        )
    e = np.asarray([pre_edge, low, high])
    vals, _ = references.on(e)  # (3, 2); raises if outside
    d = vals[1:] - vals[0]
    return TwoEnergyMatrix(
        pre_edge=pre_edge,
        low=low,
        high=high,
        matrix=((float(d[0, 0]), float(d[0, 1])), (float(d[1, 0]), float(d[1, 1]))),
        names=(references.names[0], references.names[1]),
    )


def two_energy_composition(
    od: Any,
    energies: Any,
    *,
    system: TwoEnergyMatrix = PAPER_TWO_ENERGY,
    energy_offset: float = 0.0,
    mask: Any | None = None,
) -> CompositionResult:
    r"""Composition from two energies after pre-edge normalisation (seed 000 S2.2).

    Solves, per pixel,

    .. math::
        \begin{bmatrix} \Delta S_{706} \\ \Delta S_{713} \end{bmatrix} =
        \begin{bmatrix} \Delta LFP_{706} & \Delta FP_{706} \\
                        \Delta LFP_{713} & \Delta FP_{713} \end{bmatrix}
        \begin{bmatrix} a \\ b \end{bmatrix}, \qquad X = \mathrm{clip}(a / (a + b), 0, 1),

    where ``Delta S_E = OD(E + delta) - OD(703 + delta)`` (stack OD linearly interpolated
    between planes; ``delta`` the energy offset). Normalising by *dividing* by the
    pre-edge OD instead would scale ``a`` and ``b`` by the same factor and give the same
    ``X``.

    Parameters
    ----------
    od
        Optical density ``(energy, y, x)``.
    energies
        Stack energies (eV).
    system
        Energies and matrix; default the paper's (LFP 0.64/0.11, FP 0.05/0.60 at
        706/713 eV, pre-edge 703 eV). :func:`two_energy_matrix` builds one from spectra.
    energy_offset
        Stack minus reference calibration (eV).
    mask
        ``(y, x)`` or ``(particle, y, x)``; pixels outside are NaN.

    Returns
    -------
    CompositionResult
        ``coefficients`` are ``(a, b)``; ``X`` is NaN where ``a + b <= 0``.
    """
    a, e = _od_stack(od, energies, "two_energy_composition: od")
    m = _mask2d(mask, a.shape[1:], "two_energy_composition: mask")
    d = float(energy_offset)
    where = "two_energy_composition: energy_offset"
    pre = interpolate_planes(a, e, system.pre_edge + d, where=where)
    s1 = interpolate_planes(a, e, system.low + d, where=where) - pre
    s2 = interpolate_planes(a, e, system.high + d, where=where) - pre
    mat = np.asarray(system.matrix, dtype=np.float64)
    if abs(np.linalg.det(mat)) < 1e-12:
        raise ParameterError(
            f"the two-energy matrix {system.matrix} is singular",
            where="two_energy_composition: system",
            fix="choose two energies where the references differ",
        )
    y = np.stack([s1[m], s2[m]])
    _check_finite(y, "two_energy_composition: od")
    coef = np.linalg.solve(mat, y)
    total = coef.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(total > 0, coef[0] / np.where(total > 0, total, 1.0), np.nan)
    x = np.clip(x, 0.0, 1.0)
    zeros = np.zeros((0, int(m.sum())))
    return CompositionResult(
        fraction=_scatter(x, m),
        coefficients=_scatter(coef, m),
        baseline=_scatter(zeros, m),
        residual_rms=_scatter(np.zeros(int(m.sum())), m),
        names=system.names,
        energies=np.asarray([system.pre_edge, system.low, system.high]) + d,
        energy_offset=d,
        method="two-energy",
        info={
            "pre_edge": system.pre_edge,
            "low": system.low,
            "high": system.high,
            "matrix": [list(r) for r in system.matrix],
        },
    )


# ---------------------------------------------------------------------- energy offset


@dataclass(frozen=True)
class OffsetFit:
    """Result of :func:`fit_energy_offset`.

    Attributes
    ----------
    offset
        The best offset (eV), refined by a parabola through the grid minimum.
    offsets, rms
        The grid searched and the mean per-pixel RMS residual at each offset.
    at_edge
        True when the minimum lies on the edge of the grid (widen the search).
    """

    offset: float
    offsets: np.ndarray
    rms: np.ndarray
    at_edge: bool


def fit_energy_offset(
    od: Any,
    energies: Any,
    references: ReferenceSpectra,
    *,
    offsets: Any | None = None,
    baseline: Baseline = "constant",
    mask: Any | None = None,
    max_pixels: int = 2000,
) -> OffsetFit:
    """Find the energy offset by a 1D grid search minimising the mean NNLS residual.

    For each trial offset the references are shifted, the stack energies outside their
    range are dropped and every (masked) pixel is fitted by NNLS; the objective is the mean
    over pixels of the RMS residual per energy. The grid minimum is refined by a parabola
    through it and its two neighbours.

    Parameters
    ----------
    od, energies, references, baseline, mask
        As in :func:`nnls_composition`.
    offsets
        Trial offsets (eV); default ``-3 .. 3`` eV in steps of 0.05 eV.
    max_pixels
        At most this many masked pixels (evenly strided) enter the objective, for speed.

    Returns
    -------
    OffsetFit
    """
    a, e = _od_stack(od, energies, "fit_energy_offset: od")
    grid = np.arange(-3.0, 3.0 + 1e-9, 0.05) if offsets is None else np.asarray(offsets, float)
    if grid.ndim != 1 or grid.size < 3 or not np.all(np.diff(grid) > 0):
        raise ParameterError(
            "offsets must be an increasing grid of at least 3 values",
            where="fit_energy_offset: offsets",
            fix="e.g. numpy.arange(-3, 3.01, 0.05)",
        )
    m = _mask2d(mask, a.shape[1:], "fit_energy_offset: mask")
    y_all = a[:, m]
    _check_finite(y_all, "fit_energy_offset: od")
    stride = max(1, y_all.shape[1] // max_pixels)
    y_all = y_all[:, ::stride]
    rms = np.empty(grid.size)
    for i, d in enumerate(grid):
        try:
            r, keep = references.on(e, energy_offset=float(d), outside="restrict")
        except DataError:
            rms[i] = np.inf
            continue
        if keep.sum() < len(references.names) + 3:
            rms[i] = np.inf
            continue
        free = _baseline_columns(e[keep], baseline)
        _, _, rss = nnls_kernel(r, free, y_all[keep])
        rms[i] = float(np.mean(np.sqrt(rss / keep.sum())))
    if not np.any(np.isfinite(rms)):
        raise DataError(
            "no trial offset leaves enough energies inside the references' range",
            where="fit_energy_offset: offsets",
            fix="check the energy calibration of the stack and the references",
        )
    j = int(np.nanargmin(rms))
    best = float(grid[j])
    at_edge = j in (0, grid.size - 1)
    if not at_edge and np.all(np.isfinite(rms[j - 1 : j + 2])):
        y0, y1, y2 = rms[j - 1 : j + 2]
        h = grid[j + 1] - grid[j]
        denom = y0 - 2 * y1 + y2
        if denom > 0:
            best = float(grid[j] + 0.5 * h * (y0 - y2) / denom)
    return OffsetFit(offset=best, offsets=grid, rms=rms, at_edge=at_edge)


# ------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap over energies of the NNLS composition.

    Attributes
    ----------
    sigma
        ``(y, x)`` standard deviation of ``X`` over bootstrap replicates (NaN outside the
        mask).
    mean
        ``(y, x)`` mean of ``X`` over replicates.
    n_boot
        Number of replicates.
    n_energies
        Energies resampled (with replacement) in each replicate.
    """

    sigma: np.ndarray
    mean: np.ndarray
    n_boot: int
    n_energies: int


def bootstrap_composition(
    key: jax.Array,
    od: Any,
    energies: Any,
    references: ReferenceSpectra,
    *,
    n_boot: int = 100,
    energy_offset: float = 0.0,
    baseline: Baseline = "constant",
    mask: Any | None = None,
    outside: Outside = "error",
) -> BootstrapResult:
    """Per-pixel uncertainty of ``X`` by bootstrapping over energies (seed 000 S2.2).

    Each replicate draws ``n`` of the ``n`` energies with replacement (the same draw for
    every pixel: a pairs bootstrap of (reference row, OD) pairs, which is valid for
    heteroscedastic noise), refits every pixel by NNLS and records ``X``; ``sigma_X`` is
    the standard deviation over replicates (``ddof=1``).

    Parameters
    ----------
    key
        JAX PRNG key, e.g. ``jax.random.key(0)`` (randomness is an explicit argument).
    od, energies, references, energy_offset, baseline, mask, outside
        As in :func:`nnls_composition`.
    n_boot
        Number of bootstrap replicates (>= 2). 100 gives sigma_X to about 7 %
        (the relative standard error of a standard deviation is ``1/sqrt(2 (B-1))``).

    Returns
    -------
    BootstrapResult
    """
    if isinstance(key, int | float) or key is None:
        raise ParameterError(
            f"expected a JAX PRNG key, got {key!r}",
            where="bootstrap_composition: key",
            fix="pass jax.random.key(seed)",
        )
    if int(n_boot) < 2:
        raise ParameterError(
            f"n_boot={n_boot}", where="bootstrap_composition: n_boot", fix="use n_boot >= 2"
        )
    a, e = _od_stack(od, energies, "bootstrap_composition: od")
    r, keep = references.on(e, energy_offset=energy_offset, outside=outside)
    m = _mask2d(mask, a.shape[1:], "bootstrap_composition: mask")
    y = a[keep][:, m]
    _check_finite(y, "bootstrap_composition: od")
    ek = e[keep]
    free = _baseline_columns(ek, baseline)
    n = ek.size
    idx = np.asarray(jax.random.randint(key, (int(n_boot), n), 0, n))
    xs = np.empty((int(n_boot), y.shape[1]))
    for i, sel in enumerate(idx):
        c, _, _ = nnls_kernel(r[sel], free[sel], y[sel])
        xs[i] = _fractions(c)
    with warnings.catch_warnings():  # all-NaN pixels (no signal) give NaN, as documented
        warnings.simplefilter("ignore", RuntimeWarning)
        sigma = np.nanstd(xs, axis=0, ddof=1) if xs.shape[1] else np.zeros(0)
        mean = np.nanmean(xs, axis=0) if xs.shape[1] else np.zeros(0)
    return BootstrapResult(
        sigma=_scatter(sigma, m), mean=_scatter(mean, m), n_boot=int(n_boot), n_energies=n
    )
