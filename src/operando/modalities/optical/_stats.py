r"""Image state of charge, particle sizes, log-normal fits and population densities.

* Image SOC (seed 000 Methods; Fig. S11): :math:`\mathrm{SOC} = \sum_i c_i a_i`, ``a_i`` the
  area fraction of phase ``i`` among the particle pixels classified blue/red/gold in a frame
  and ``c_blue = 0.26``, ``c_red = 0.55``, ``c_gold = 1.0`` (configurable).
* Characteristic size :math:`V/A`: for platelets of uniform thickness, area over perimeter
  (perimeter from :func:`skimage.measure.regionprops`), times the pixel size.
* Log-normal fit (maximum likelihood, location 0): reported as the fitted distribution's
  mean and standard deviation in µm (the paper's :math:`\mu, \sigma`: expert 0.40 / 0.13 µm)
  and as the log-space parameters.
* Population density in (size, concentration) per frame (seed 000 Fig. 4e): a 2D Gaussian
  kernel density with Scott's bandwidth per axis (floored, so that identical concentrations,
  e.g. all particles at 0.26 before the transition, still give a density).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ...errors import DataError, ParameterError
from ._segment import PHASES

__all__ = [
    "DEFAULT_CONCENTRATIONS",
    "LogNormalFit",
    "PopulationDensity",
    "compare_soc",
    "fit_lognormal",
    "image_soc",
    "particle_concentrations",
    "particle_sizes",
    "population_density",
]

#: Characteristic Li fraction of each stage (seed 000 S2.3, after ref. 13).
DEFAULT_CONCENTRATIONS: dict[str, float] = {"blue": 0.26, "red": 0.55, "gold": 1.0}


def _weights(concentrations: Mapping[str, float] | None) -> np.ndarray:
    c = dict(DEFAULT_CONCENTRATIONS)
    c.update(concentrations or {})
    bad = set(c) - set(PHASES[1:])
    if bad:
        raise ParameterError(
            f"unknown phase(s) {sorted(bad)}", where="concentrations", fix="use blue, red, gold"
        )
    return np.array([np.nan, c["blue"], c["red"], c["gold"]])


def image_soc(
    phases: np.ndarray, mask: np.ndarray, *, concentrations: Mapping[str, float] | None = None
) -> np.ndarray:
    """Image state of charge ``(t,)``: ``sum_i c_i a_i`` over the non-background mask pixels.

    Frames without any classified particle pixel give NaN.
    """
    w = _weights(concentrations)
    p = np.asarray(phases)[:, np.asarray(mask, bool)]
    out = np.full(p.shape[0], np.nan)
    for t, row in enumerate(p):
        sel = row[row > 0]
        if sel.size:
            out[t] = w[sel].mean()
    return out


def compare_soc(
    image: np.ndarray, reference: np.ndarray, *, frames: np.ndarray | None = None
) -> dict[str, float]:
    """Agreement of the image SOC with an electrochemical SOC series.

    Parameters
    ----------
    image
        ``(t,)`` image SOC.
    reference
        Electrochemical SOC, either ``(t,)`` (one value per frame) or ``(m, 2)`` rows
        ``(frame, soc)`` (interpolated linearly onto the frames).
    frames
        Frame coordinate of ``image`` (default ``0..t-1``).

    Returns
    -------
    dict
        ``rmse``, ``max_abs``, ``mean_bias`` (image minus reference) and ``pearson_r``.
    """
    img = np.asarray(image, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    f = np.arange(img.size, dtype=np.float64) if frames is None else np.asarray(frames, float)
    if ref.ndim == 2 and ref.shape[1] == 2:
        order = np.argsort(ref[:, 0])
        ref = np.interp(f, ref[order, 0], ref[order, 1])
    if ref.shape != img.shape:
        raise DataError(
            f"electrochemical SOC has {ref.shape} values for {img.size} frames",
            where="compare_soc: reference",
            fix="give one SOC per frame or (frame, soc) rows",
        )
    ok = np.isfinite(img) & np.isfinite(ref)
    d = img[ok] - ref[ok]
    r = float(np.corrcoef(img[ok], ref[ok])[0, 1]) if ok.sum() > 2 else float("nan")
    return {
        "rmse": float(np.sqrt(np.mean(d**2))),
        "max_abs": float(np.abs(d).max()),
        "mean_bias": float(d.mean()),
        "pearson_r": r,
    }


def particle_sizes(labels: np.ndarray, *, pixel_size: float = 1.0) -> dict[str, np.ndarray]:
    """Per-particle area, perimeter and characteristic size ``V/A = area / perimeter``.

    Returns
    -------
    dict
        ``label``, ``area_px``, ``perimeter_px``, ``size`` (``V/A`` in the units of
        ``pixel_size``, e.g. µm), ``centroid_y``, ``centroid_x``.
    """
    from skimage.measure import regionprops

    if pixel_size <= 0:
        raise ParameterError(f"pixel_size={pixel_size}", where="pixel_size", fix="use > 0")
    props = regionprops(np.asarray(labels).astype(np.int32))
    lab = np.array([p.label for p in props], int)
    area = np.array([p.area for p in props], float)
    per = np.array([max(p.perimeter, 1.0) for p in props], float)
    cen = np.array([p.centroid for p in props], float).reshape(-1, 2)
    return {
        "label": lab,
        "area_px": area,
        "perimeter_px": per,
        "size": area / per * pixel_size,
        "centroid_y": cen[:, 0],
        "centroid_x": cen[:, 1],
    }


@dataclass(frozen=True)
class LogNormalFit:
    """Maximum-likelihood log-normal fit of positive sizes.

    ``mean``/``std``: of the fitted distribution (units of the data; the paper's mu/sigma);
    ``mu_log``/``sigma_log``: of ``ln(size)``; ``n``: sample size.
    """

    mean: float
    std: float
    mu_log: float
    sigma_log: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return {
            "mean": self.mean,
            "std": self.std,
            "mu_log": self.mu_log,
            "sigma_log": self.sigma_log,
            "n": self.n,
        }

    def pdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (np.log(x) - self.mu_log) / self.sigma_log
            out = np.exp(-0.5 * z**2) / (x * self.sigma_log * np.sqrt(2 * np.pi))
        return np.where(x > 0, out, 0.0)


def fit_lognormal(sizes: np.ndarray) -> LogNormalFit:
    """Log-normal fit (MLE: mean and SD of ``ln x``) of positive ``sizes``.

    Examples
    --------
    >>> x = np.random.default_rng(0).lognormal(np.log(0.4), 0.3, 20000)
    >>> f = fit_lognormal(x)
    >>> round(f.mu_log, 2), round(f.sigma_log, 2)  # ln 0.4 = -0.916
    (-0.91, 0.3)
    """
    x = np.asarray(sizes, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2 or (x <= 0).any():
        raise DataError(
            f"need at least 2 positive sizes, got {x.size}",
            where="fit_lognormal",
            fix="check the segmentation (too few particles?)",
        )
    lx = np.log(x)
    mu, s = float(lx.mean()), float(lx.std())
    mean = float(np.exp(mu + s**2 / 2))
    std = float(mean * np.sqrt(np.expm1(s**2)))
    return LogNormalFit(mean, std, mu, s, int(x.size))


def particle_concentrations(
    phases: np.ndarray,
    labels: np.ndarray,
    *,
    concentrations: Mapping[str, float] | None = None,
) -> np.ndarray:
    """``(t, N)`` mean concentration of each particle (labels 1..N) per frame.

    The mean of ``c_i`` over the particle's pixels classified blue/red/gold; NaN when none is.
    """
    w = _weights(concentrations)
    lab = np.asarray(labels).astype(np.int64)
    n = int(lab.max())
    p = np.asarray(phases)
    out = np.full((p.shape[0], n), np.nan)
    inside = lab > 0
    idx = lab[inside] - 1
    for t in range(p.shape[0]):
        ph = p[t][inside]
        ok = ph > 0
        cnt = np.bincount(idx[ok], minlength=n)
        tot = np.bincount(idx[ok], weights=w[ph[ok]], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[t] = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
    return out


@dataclass(frozen=True)
class PopulationDensity:
    """Population density over (size, concentration) per frame.

    ``density`` ``(t, n_conc, n_size)`` (each frame integrates to 1 over the grid),
    ``size_grid`` ``(n_size,)``, ``conc_grid`` ``(n_conc,)``, ``bandwidth`` ``(size, conc)``.
    """

    density: np.ndarray
    size_grid: np.ndarray
    conc_grid: np.ndarray
    bandwidth: tuple[float, float]


def population_density(
    sizes: np.ndarray,
    concentrations: np.ndarray,
    *,
    n_grid: int = 64,
    size_range: tuple[float, float] | None = None,
    conc_range: tuple[float, float] = (0.0, 1.1),
    min_bandwidth: tuple[float, float] = (0.0, 0.03),
) -> PopulationDensity:
    """2D Gaussian kernel density of the particles in (size, concentration), per frame.

    Parameters
    ----------
    sizes
        ``(N,)`` characteristic sizes.
    concentrations
        ``(t, N)`` per-particle mean concentrations (NaN particles are left out of a frame).
    n_grid
        Grid points per axis.
    size_range, conc_range
        Grid extents (default size range: 0 to 1.25 x the largest size).
    min_bandwidth
        Floors of the (size, concentration) bandwidths; the size floor defaults to 2 % of
        the size range when 0.
    """
    s = np.asarray(sizes, dtype=np.float64)
    c = np.atleast_2d(np.asarray(concentrations, dtype=np.float64))
    if c.shape[1] != s.size or s.size < 2:
        raise DataError(
            f"sizes {s.shape} and concentrations {c.shape} do not match (or < 2 particles)",
            where="population_density",
            fix="pass (N,) sizes and (t, N) concentrations of the same particles",
        )
    lo, hi = size_range if size_range is not None else (0.0, 1.25 * float(s.max()))
    sg = np.linspace(lo, hi, n_grid)
    cg = np.linspace(*conc_range, n_grid)
    fac = s.size ** (-1.0 / 6.0)  # Scott's rule in 2D
    hs = max(fac * s.std(ddof=1), min_bandwidth[0] or 0.02 * (hi - lo))
    dens = np.zeros((c.shape[0], n_grid, n_grid))
    hc_all = []
    for t, row in enumerate(c):
        ok = np.isfinite(row)
        if ok.sum() == 0:
            continue
        hc = max(fac * (row[ok].std(ddof=1) if ok.sum() > 1 else 0.0), min_bandwidth[1])
        hc_all.append(hc)
        ks = np.exp(-0.5 * ((sg[None, :] - s[ok, None]) / hs) ** 2)  # (n, size)
        kc = np.exp(-0.5 * ((cg[None, :] - row[ok, None]) / hc) ** 2)  # (n, conc)
        d = kc.T @ ks
        area = d.sum() * (sg[1] - sg[0]) * (cg[1] - cg[0])
        dens[t] = d / area if area > 0 else d
    return PopulationDensity(dens, sg, cg, (float(hs), float(np.median(hc_all or [0.0]))))
