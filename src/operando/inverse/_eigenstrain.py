r"""Learning the composition–eigenstrain law under stress equilibrium (seed 003).

Given, for one or several particles, a composition map :math:`X(x)` and a measured lattice
strain map :math:`\varepsilon(x)` (aa, cc, ac; tensor shear), learn
:math:`f_i(X) = \sum_{n=0}^{N} a_{n,i} P_n(X)`, :math:`i \in \{a, c\}`, with
:math:`P_n` the orthonormal Legendre polynomials on [0, 1]
(:func:`operando.physics.legendre`). The composition-induced ac shear is zero (orthorhombic
symmetry).

Models (seed 003 eq. 2–3, Fig. 3e):

* **M0** (direct regression, baseline): :math:`\varepsilon_{ii}(x) \approx f_i(X(x))`
  pixel by pixel, no mechanics.
* **M1** (coherency strain): :math:`\varepsilon(x) \approx \varepsilon[u]` where ``u``
  solves :math:`\nabla\cdot C:(\varepsilon[u] - f(X)) = 0` with zero traction on the
  particle edge (:class:`operando.physics.ElasticParticle`). The map ``a -> eps[u]`` is
  linear, so its design matrix is built with one sparse solve per basis function and the
  Gauss–Newton (here: exact) fit is done by :func:`operando.inverse.least_squares`;
  pointwise 95 % bands of ``f`` and ``df/dX`` come from
  the delta method (as in :func:`operando.inverse.propagate_covariance`; exact here,
  the law being linear in its coefficients).
* **M2** (dislocations): on top of M1, a plastic slip field :math:`\gamma(x)` of the
  edge-dislocation system [001](100) (Burgers vector along c, slip-plane normal along a),
  plastic strain :math:`\varepsilon^p_{ac} = \gamma/2`; the lattice strain is
  :math:`\varepsilon[u] - \varepsilon^p` with ``u`` in equilibrium with
  :math:`f(X) + \varepsilon^p`. ``gamma`` (one value per mask pixel) is fitted to the M1
  residual with a smoothness (gradient) penalty whose weight is chosen by generalised
  cross-validation; the signed density of geometrically necessary dislocations is
  :math:`\rho\,b = -\partial_c\gamma` (per pixel; divide by ``b * pixel size`` for a
  physical density). ``f`` is kept at its M1 value (two-stage fit).

Cut-off: ``degree`` is the highest Legendre degree (``degree = 1`` is Vegard's law with
two coefficients per direction, the paper's "N = 2"). :func:`select_degree` chooses it by
K-fold validation (over particles when there are several, else over 8x8-pixel blocks)
with the one-standard-error rule.

Model error (seed 003 Fig. 3e): the mean over particle pixels of the Frobenius norm of the
residual strain tensor, :math:`\sqrt{r_{aa}^2 + r_{cc}^2 + 2 r_{ac}^2}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ..errors import DataError, ParameterError
from ..physics._bases import legendre
from ..physics._elasticity import ElasticParticle, lfp_stiffness, strain_incompatibility
from ._least_squares import least_squares

Array = jax.Array

__all__ = [
    "EigenstrainData",
    "EigenstrainFit",
    "check_eigenstrain_data",
    "fit_eigenstrain",
    "incompatibility_rms",
    "model_error",
    "select_degree",
]

Model = Literal["m0", "m1", "m2"]
_Z95 = 1.959963984540054


@dataclass
class EigenstrainData:
    """Validated inputs: per particle a mask, a composition map and a strain map."""

    masks: list[np.ndarray]
    composition: list[np.ndarray]
    strain: list[np.ndarray]
    particles: list[ElasticParticle] = field(default_factory=list, repr=False)

    @property
    def n_pixels(self) -> int:
        return int(sum(m.sum() for m in self.masks))


def check_eigenstrain_data(
    composition: Sequence[np.ndarray] | np.ndarray,
    strain: Sequence[np.ndarray] | np.ndarray,
    masks: Sequence[np.ndarray] | np.ndarray | None = None,
    *,
    stiffness: np.ndarray | None = None,
) -> EigenstrainData:
    """Validate composition/strain maps and build the elastic operators.

    Parameters
    ----------
    composition
        One ``(rows, cols)`` map or a list (one per particle); X in [0, 1] inside the
        particle, NaN (or anything, with ``masks``) outside.
    strain
        One ``(rows, cols, 3)`` map (aa, cc, ac; tensor shear) or a list.
    masks
        Particle masks; default: pixels where the composition and all strain components
        are finite.
    stiffness
        ``(3, 3)`` Voigt stiffness (default: LiFePO4, plane stress).

    Raises
    ------
    DataError
        Shape mismatch (register the maps first), composition outside [0, 1], empty
        masks, non-finite values inside a mask.
    """
    comp = [composition] if isinstance(composition, np.ndarray) else list(composition)
    strn = [strain] if isinstance(strain, np.ndarray) else list(strain)
    if masks is None:
        mks: list[Any] = [None] * len(comp)
    else:
        mks = [masks] if isinstance(masks, np.ndarray) and masks.ndim == 2 else list(masks)
    if not (len(comp) == len(strn) == len(mks)):
        raise DataError(
            f"{len(comp)} composition maps, {len(strn)} strain maps, {len(mks)} masks",
            where="eigenstrain data",
            fix="pass one composition, strain map and mask per particle",
        )
    q = lfp_stiffness() if stiffness is None else np.asarray(stiffness, float)
    out = EigenstrainData([], [], [])
    for k, (x, e, m) in enumerate(zip(comp, strn, mks, strict=True)):
        where = f"particle {k}"
        x = np.asarray(x, dtype=float)
        e = np.asarray(e, dtype=float)
        if x.ndim != 2:
            raise DataError(f"composition has shape {x.shape}", where=where, fix="(rows, cols)")
        if e.shape != (*x.shape, 3):
            raise DataError(
                f"strain map shape {e.shape} does not match composition shape {x.shape} + (3,)",
                where=where,
                fix="register the two modalities onto one grid first "
                "(operando.modalities.strain.register_affine)",
            )
        if m is None:
            m = np.isfinite(x) & np.all(np.isfinite(e), axis=-1)
        m = np.asarray(m, dtype=bool)
        if m.shape != x.shape:
            raise DataError(f"mask shape {m.shape} != map shape {x.shape}", where=where)
        if not m.any():
            raise DataError("mask is empty (no particle pixels)", where=where, fix="check the mask")
        if not (np.all(np.isfinite(x[m])) and np.all(np.isfinite(e[m]))):
            raise DataError("non-finite values inside the mask", where=where, fix="mask them out")
        lo, hi = float(x[m].min()), float(x[m].max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise DataError(
                f"composition spans [{lo:.3g}, {hi:.3g}], outside [0, 1]",
                where=where,
                fix="pass the Li fraction X (e.g. from `operando stxm`), not percent or OD",
            )
        out.masks.append(m)
        out.composition.append(np.clip(np.where(m, x, 0.0), 0.0, 1.0))
        out.strain.append(np.where(m[..., None], e, 0.0))
        out.particles.append(ElasticParticle(m, q))
    return out


def _basis_fields(x: np.ndarray, m: np.ndarray, degree: int) -> np.ndarray:
    """Eigenstrain fields of the basis: ``(2 (N+1), rows, cols, 3)``, order (n, i)."""
    p = np.asarray(legendre(x, degree)) * m[..., None]  # (h, w, N+1)
    f = np.zeros((2 * (degree + 1), *x.shape, 3))
    for n in range(degree + 1):
        f[2 * n, ..., 0] = p[..., n]
        f[2 * n + 1, ..., 1] = p[..., n]
    return f


def _design(data: EigenstrainData, degree: int, model: Model) -> list[np.ndarray]:
    """Per particle, ``(n_pix * 3, 2 (N+1))`` design matrices of the strain model."""
    out = []
    for x, m, part in zip(data.composition, data.masks, data.particles, strict=True):
        f = _basis_fields(x, m, degree)
        resp = f if model == "m0" else part.solve_direct_many(f)
        out.append(resp[:, m, :].reshape(len(f), -1).T)
    return out


def _frob(r: np.ndarray) -> np.ndarray:
    return np.sqrt(r[..., 0] ** 2 + r[..., 1] ** 2 + 2 * r[..., 2] ** 2)


def model_error(residuals: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """Mean Frobenius norm of the residual strain over all particle pixels."""
    vals = np.concatenate([_frob(r[m]) for r, m in zip(residuals, masks, strict=True)])
    return float(np.mean(vals))


def _weights(model: Model) -> np.ndarray:
    # M0 has no model of the ac shear (it predicts zero): it is not a fitted observable.
    return np.array([1.0, 1.0, 0.0]) if model == "m0" else np.array([1.0, 1.0, np.sqrt(2.0)])


def _solve_linear(design: np.ndarray, y: np.ndarray) -> Any:
    d = jnp.asarray(design)
    yy = jnp.asarray(y)
    p0 = jnp.asarray(np.linalg.lstsq(design, y, rcond=None)[0])
    return least_squares(lambda p, a: d @ p - yy, p0, max_steps=5)


@dataclass
class EigenstrainFit:
    """A learned composition–eigenstrain law and its diagnostics.

    Attributes
    ----------
    model, degree
        ``"m0" | "m1" | "m2"`` and the highest Legendre degree ``N``.
    coef
        ``(N + 1, 2)`` Legendre coefficients of ``(f_a, f_c)``.
    covariance
        ``(2 (N + 1), 2 (N + 1))`` covariance of ``coef.ravel()`` (row-major (n, i)).
    predicted, residual
        Per particle ``(rows, cols, 3)`` model lattice strain and residual strain
        (measured - model), zero outside the mask.
    model_error
        Mean Frobenius norm of the residual strain (see module docstring).
    slip, density
        M2 only: per particle plastic slip ``gamma`` and signed dislocation density
        ``-d gamma / d c`` (per pixel, in units of ``1/b``).
    reg
        M2 only: the smoothness weight chosen by GCV.
    """

    model: Model
    degree: int
    coef: np.ndarray
    covariance: np.ndarray
    predicted: list[np.ndarray]
    residual: list[np.ndarray]
    model_error: float
    sigma: float
    slip: list[np.ndarray] | None = None
    density: list[np.ndarray] | None = None
    reg: float | None = None

    def _basis(self, x: np.ndarray, derivative: bool) -> np.ndarray:
        """``(k, N + 1)`` values (or X-derivatives) of the orthonormal Legendre basis."""
        t = 2.0 * np.asarray(x, float) - 1.0
        cols = []
        for n in range(self.degree + 1):
            p = np.polynomial.legendre.Legendre.basis(n)
            cols.append(np.sqrt(2 * n + 1) * (2.0 * p.deriv()(t) if derivative else p(t)))
        return np.stack(cols, axis=-1)

    def law(self, x: np.ndarray) -> np.ndarray:
        """``f(X)`` ``(k, 2)`` (a, c)."""
        return self._basis(x, False) @ self.coef

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """Chemical expansion coefficient ``df/dX`` ``(k, 2)``."""
        return self._basis(x, True) @ self.coef

    def band(
        self, x: np.ndarray, *, derivative: bool = False, level: float = 0.95
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise ``(lower, upper)`` band ``(k, 2)`` of ``f`` (or ``df/dX``).

        Delta method ``var = diag(G C G^T)`` (as :func:`operando.inverse.propagate_covariance`),
        exact here because the law is linear in its coefficients.
        """
        if abs(level - 0.95) > 1e-12:
            from scipy.stats import norm

            z = float(norm.ppf(0.5 + level / 2))
        else:
            z = _Z95
        g = self._basis(x, derivative)  # (k, N+1)
        centre = g @ self.coef
        sd = np.empty_like(centre)
        for i in range(2):
            c = self.covariance[i::2, i::2]  # coefficients are ordered (n, i)
            sd[:, i] = np.sqrt(np.clip(np.einsum("kn,nm,km->k", g, c, g), 0.0, None))
        return centre - z * sd, centre + z * sd

    def summary(self) -> dict[str, Any]:
        """JSON-friendly scalars."""
        xs = np.linspace(0, 1, 101)
        d = self.derivative(xs)
        return {
            "model": self.model,
            "degree": self.degree,
            "coef_a": self.coef[:, 0].tolist(),
            "coef_c": self.coef[:, 1].tolist(),
            "model_error": self.model_error,
            "sigma": self.sigma,
            "dfdx_mean": d.mean(axis=0).tolist(),
            "dfdx_range": (d.max(axis=0) - d.min(axis=0)).tolist(),
            "reg": self.reg,
        }


def _fit_linear(
    data: EigenstrainData, degree: int, model: Model, design: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, float, list[np.ndarray], list[np.ndarray]]:
    w = _weights(model)
    design = design if design is not None else _design(data, degree, model)
    rows_d, rows_y = [], []
    for dm, e, m in zip(design, data.strain, data.masks, strict=True):
        wt = np.tile(w, int(m.sum()))
        rows_d.append(dm * wt[:, None])
        rows_y.append(e[m].ravel() * wt)
    dd, yy = np.concatenate(rows_d), np.concatenate(rows_y)
    keep = np.any(dd != 0, axis=1) | (yy != 0)
    res = _solve_linear(dd[keep], yy[keep])
    p = np.asarray(res.params)
    preds, resid = [], []
    for dm, e, m in zip(design, data.strain, data.masks, strict=True):
        pr = np.zeros_like(e)
        pr[m] = (dm @ p).reshape(-1, 3)
        preds.append(pr)
        resid.append(np.where(m[..., None], e - pr, 0.0))
    return p.reshape(-1, 2), np.asarray(res.covariance), float(np.sqrt(res.sigma2)), preds, resid


def _folds(data: EigenstrainData, k: int) -> list[list[np.ndarray]]:
    """Validation masks per fold: whole particles, or 8x8 blocks of a single particle."""
    n = len(data.masks)
    if n >= 2:
        folds = []
        for f in range(min(k, n)):
            folds.append(
                [m if (i % min(k, n)) == f else np.zeros_like(m) for i, m in enumerate(data.masks)]
            )
        return folds
    m = data.masks[0]
    yy, xx = np.mgrid[: m.shape[0], : m.shape[1]]
    block = (yy // 8) * 1000 + (xx // 8)
    ids = np.unique(block[m])
    rng = np.random.default_rng(0)
    lab = rng.permutation(len(ids)) % k
    assign = dict(zip(ids.tolist(), lab.tolist(), strict=True))
    fold_of = np.vectorize(lambda b: assign.get(b, -1))(block)
    return [[m & (fold_of == f)] for f in range(k)]


def select_degree(
    data: EigenstrainData,
    model: Literal["m0", "m1"] = "m1",
    *,
    max_degree: int = 4,
    folds: int = 5,
) -> tuple[int, dict[str, list[float]]]:
    """Choose ``N`` by K-fold validation with the one-standard-error rule.

    Returns the chosen degree and a table ``{"degree", "val_mse", "val_se"}``.
    """
    fold_masks = _folds(data, folds)
    table: dict[str, list[float]] = {"degree": [], "val_mse": [], "val_se": []}
    w = _weights(model)
    full = {d: _design(data, d, model) for d in range(max_degree + 1)}
    for d in range(max_degree + 1):
        errs = []
        for fm in fold_masks:
            rows_d, rows_y, vd, vy = [], [], [], []
            for dm, e, m, v in zip(full[d], data.strain, data.masks, fm, strict=True):
                sel = np.repeat(v[m], 3)
                wt = np.tile(w, int(m.sum()))
                rows_d.append((dm * wt[:, None])[~sel])
                rows_y.append((e[m].ravel() * wt)[~sel])
                vd.append((dm * wt[:, None])[sel])
                vy.append((e[m].ravel() * wt)[sel])
            p = np.linalg.lstsq(np.concatenate(rows_d), np.concatenate(rows_y), rcond=None)[0]
            r = np.concatenate(vy) - np.concatenate(vd) @ p
            errs.append(float(np.mean(r**2)))
        table["degree"].append(d)
        table["val_mse"].append(float(np.mean(errs)))
        table["val_se"].append(float(np.std(errs, ddof=1) / np.sqrt(len(errs))))
    mse = np.array(table["val_mse"])
    best = int(np.argmin(mse))
    chosen = int(np.nonzero(mse <= mse[best] + table["val_se"][best])[0][0])
    return chosen, table


def _slip_basis(m: np.ndarray, spacing: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear (tent) functions on a coarse node grid, and their neighbour differences.

    Returns ``phi`` ``(k, rows, cols)`` (masked) and ``diff`` ``(pairs, k)`` (node-grid
    forward differences between active neighbours, the smoothness operator).
    """
    h, w = m.shape
    ny, nx = -(-(h - 1) // spacing) + 1, -(-(w - 1) // spacing) + 1
    yy, xx = np.mgrid[:h, :w]
    ty = np.clip(1 - np.abs(yy[None] / spacing - np.arange(ny)[:, None, None]), 0, None)
    tx = np.clip(1 - np.abs(xx[None] / spacing - np.arange(nx)[:, None, None]), 0, None)
    phi = (ty[:, None] * tx[None, :]) * m  # (ny, nx, h, w)
    active = phi.reshape(ny, nx, -1).sum(-1) > 0
    idx = -np.ones((ny, nx), int)
    idx[active] = np.arange(int(active.sum()))
    pairs = []
    for a, b in ((idx[:-1, :], idx[1:, :]), (idx[:, :-1], idx[:, 1:])):
        ok = (a >= 0) & (b >= 0)
        pairs.append(np.stack([a[ok], b[ok]], axis=1))
    pr = np.concatenate(pairs)
    diff = np.zeros((len(pr), int(active.sum())))
    diff[np.arange(len(pr)), pr[:, 0]] = -1.0
    diff[np.arange(len(pr)), pr[:, 1]] = 1.0
    return phi[active], diff


def _fit_slip(
    part: ElasticParticle,
    m: np.ndarray,
    resid: np.ndarray,
    regs: Sequence[float],
    spacing: int,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Regularised slip field on one particle (GCV over ``regs``)."""
    phi, d = _slip_basis(m, spacing)
    n = len(phi)
    unit = np.zeros((n, *m.shape, 3))
    unit[..., 2] = 0.5 * phi
    lat = part.solve_direct_many(unit) - unit  # lattice strain response to unit slip
    w = _weights("m1")
    g = (lat[:, m, :] * w).reshape(n, -1).T  # (3 n_pix, n)
    y = (resid[m] * w).ravel()
    gtg, gty = g.T @ g, g.T @ y
    ltl = d.T @ d + 1e-6 * np.trace(d.T @ d) / n * np.eye(n)
    # Generalised eigenbasis V^T ltl V = I, V^T gtg V = diag(s): every candidate weight
    # then costs O(n^2) (solution and GCV trace sum s / (s + lam)).
    s, v = scipy.linalg.eigh(gtg, ltl)
    s = np.clip(s, 0.0, None)
    vty = v.T @ gty
    best = None
    for lam in regs:
        gam = v @ (vty / (s + lam))
        r = y - g @ gam
        dof = len(y) - float(np.sum(s / (s + lam)))
        gcv = len(y) * float(r @ r) / dof**2
        if best is None or gcv < best[0]:
            best = (gcv, gam, lam)
    assert best is not None
    _, gam, lam = best
    gamma = np.einsum("k,khw->hw", gam, phi)
    pred = np.einsum("k,khwc->hwc", gam, lat) * m[..., None]
    return gamma, pred, float(lam)


def fit_eigenstrain(
    data: EigenstrainData,
    model: Model = "m1",
    *,
    degree: int | None = 1,
    max_degree: int = 4,
    regs: Sequence[float] = tuple(10.0 ** np.arange(-4.0, 2.5, 0.5)),
    slip_spacing: int = 3,
) -> EigenstrainFit:
    """Fit the eigenstrain law with model M0, M1 or M2.

    Parameters
    ----------
    data
        From :func:`check_eigenstrain_data`.
    model
        ``"m0"`` (direct regression), ``"m1"`` (equilibrium), ``"m2"`` (M1 + slip field).
    degree
        Highest Legendre degree ``N``; ``None`` selects it by validation
        (:func:`select_degree`, up to ``max_degree``).
    regs
        Candidate smoothness weights of the M2 slip field (chosen by GCV).
    slip_spacing
        Node spacing (pixels) of the bilinear M2 slip field; coarser means fewer
        parameters (less noise fitting) and faster fits.

    Returns
    -------
    EigenstrainFit
    """
    if model not in ("m0", "m1", "m2"):
        raise ParameterError(f"model {model!r}", where="fit_eigenstrain", fix="m0|m1|m2")
    base: Literal["m0", "m1"] = "m0" if model == "m0" else "m1"
    if degree is None:
        degree, _ = select_degree(data, base, max_degree=max_degree)
    if isinstance(degree, bool) or int(degree) < 0:
        raise ParameterError(f"degree {degree!r}", where="fit_eigenstrain", fix="degree >= 0")
    degree = int(degree)
    coef, cov, sigma, pred, resid = _fit_linear(data, degree, base)
    slip = dens = None
    lam = None
    if model == "m2":
        slip, dens, lams = [], [], []
        for part, m, r, p in zip(data.particles, data.masks, resid, pred, strict=True):
            gamma, extra, lam_k = _fit_slip(part, m, r, regs, slip_spacing)
            slip.append(gamma)
            dens.append(-np.gradient(gamma, axis=0) * m)
            p += extra
            r -= extra * m[..., None]
            lams.append(lam_k)
        lam = float(np.median(lams))
    err = model_error(resid, data.masks)
    return EigenstrainFit(model, degree, coef, cov, pred, resid, err, sigma, slip, dens, lam)


def incompatibility_rms(fit: EigenstrainFit, data: EigenstrainData) -> list[float]:
    """RMS strain incompatibility of the residual strain per particle (seed 003 Fig. 3d)."""
    out = []
    for r, m in zip(fit.residual, data.masks, strict=True):
        eta = strain_incompatibility(r, m)
        out.append(float(np.sqrt(np.nanmean(eta**2))) if np.isfinite(eta).any() else float("nan"))
    return out
