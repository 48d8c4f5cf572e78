r"""Learn reaction kinetics, free energy and surface heterogeneity from particle videos.

Full-image inversion of seed 002 (Zhao et al., Nature 2023), "Full-image inverse problem"
and Methods. For every half-cycle of every particle the reaction-limited Allen–Cahn model
(:func:`operando.physics.reaction_allen_cahn`) is started from the measured first frame,
with Dirichlet values on the particle edge taken from the images (linear in time) and the
interfacial voltage :math:`\Delta\tilde\phi(t)` solved at every step so that the mean rate
of the evolving (interior) pixels equals the measured :math:`d\bar c/dt` (piecewise linear
:math:`\bar c(t)` between frames). The objective (seed 002, eq. 2)

.. math::

    \sum_{i,j}\|c_{ij}(p, Z_i) - c_{\mathrm{data},ij}\|^2
    + \rho_1\|p\|^2 + \rho_2\sum_i\|Z_i\|^2

(pixel sums over the interior pixels of all frames after each half-cycle's first) is
minimised by :func:`operando.inverse.least_squares` (Levenberg–Marquardt, forward-mode
Jacobians through the time stepper and, implicitly, through the voltage constraint).

Unknowns
--------
* :math:`\mu_h(c) = \ln\frac{c}{1-c} + \sum_{n=1}^{N_\mu} a_n P_n(c)` with
  :math:`a = a_\delta + N q`: the two linear conditions that put the binodal (common
  tangent) at :math:`c = \delta, 1-\delta` (equal chemical potential and equal area) are
  satisfied exactly; ``q`` (``N_mu - 2`` numbers) is free. No constant: it is absorbed by
  :math:`\Delta\tilde\phi`.
* :math:`\ln j_0(c) = \sum_{n=0}^{N_j} b_n P_n(c)` (1/h).
* :math:`\psi_i = \ln k_i = \sigma_{\psi_0} Z_{i0} + \sum_m \sqrt{\lambda_{im}}\,\phi_{im} Z_{im}`
  (Karhunen–Loève modes of the squared-exponential covariance on particle ``i``'s interior
  pixels), then the area-weighted mean over all particles is subtracted (gauge: ``k`` and
  ``j_0`` share a scale, which ``b_0`` carries).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from scipy import ndimage

from ..config import require_x64
from ..data import get_truth, validate_dataset
from ..errors import ConvergenceError, DataError, ParameterError, check_choice
from ..physics._bases import LegendreChemicalPotential, LegendreLogDiffusivity, legendre
from ..physics._kinetics import mask_graph, reaction_allen_cahn
from ._least_squares import (
    LeastSquaresResult,
    Status,
    block_least_squares,
    propagate_covariance,
)

__all__ = [
    "MODEL_OPTIONS",
    "KineticsFit",
    "KineticsProblem",
    "binodal_constraint",
    "karhunen_loeve",
    "kinetics_errors",
    "kinetics_rmse",
    "kinetics_setup",
    "learn_kinetics",
    "learn_kinetics_multistart",
    "normalise_j0",
    "pixel_correlation",
    "predict_kinetics",
    "prepare_kinetics",
    "resimulate_kinetics",
    "step_groups",
    "subset_half_cycles",
    "subset_particles",
]

HOUR = 3600.0
#: Range of ``j0_rel_rmse`` and ``mu_rmse`` (issue 5).
METRIC_RANGE = (0.05, 0.95)
#: Default binodal composition of LiFePO4 when the data do not record one.
DELTA_LFP = 0.035


# ------------------------------------------------------------------- parameterisation


def binodal_constraint(degree: int, delta: float) -> tuple[np.ndarray, np.ndarray]:
    r"""``(a_delta, N)`` such that ``a = a_delta + N q`` puts the binodal at ``delta, 1 - delta``.

    For :math:`\mu_h = \ln\frac{c}{1-c} + s(c)`, :math:`s = \sum_{n=1}^{N} a_n P_n`, the
    common tangent of :math:`g_h` touches at :math:`\delta` and :math:`1-\delta` iff

    .. math::

        s(1-\delta) - s(\delta) = 2\ln\tfrac{\delta}{1-\delta}, \qquad
        \int_\delta^{1-\delta} s\,dc - (1-2\delta)\,s(\delta)
        = (1-2\delta)\ln\tfrac{\delta}{1-\delta}

    (equal chemical potential; equal area). ``a_delta`` is the minimum-norm solution and
    the columns of ``N`` (``degree x (degree - 2)``) span the null space.
    """
    if degree < 3:
        raise ParameterError(
            f"degree_mu is {degree}; the binodal constraint leaves degree - 2 free coefficients",
            where="learn_kinetics: degree_mu",
            fix="pass degree_mu >= 3",
        )
    if not 0.0 < delta < 0.5:
        raise ParameterError(
            f"delta is {delta}", where="learn_kinetics: delta", fix="0 < delta < 0.5"
        )
    p_lo = np.asarray(legendre(np.array(delta), degree))[1:]
    p_hi = np.asarray(legendre(np.array(1.0 - delta), degree))[1:]
    x, w = np.polynomial.legendre.leggauss(64)
    cq = delta + (1.0 - 2.0 * delta) * (x + 1.0) / 2.0
    wq = w * (1.0 - 2.0 * delta) / 2.0
    integ = (np.asarray(legendre(cq, degree))[:, 1:] * wq[:, None]).sum(axis=0)
    ln_d = np.log(delta / (1.0 - delta))
    C = np.stack([p_hi - p_lo, integ - (1.0 - 2.0 * delta) * p_lo])
    rhs = np.array([2.0 * ln_d, (1.0 - 2.0 * delta) * ln_d])
    a_p = np.linalg.pinv(C) @ rhs
    _, _, vt = np.linalg.svd(C)
    return a_p, vt[2:].T


def karhunen_loeve(
    mask: np.ndarray, n_modes: int, corr_length: float, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    r"""Leading Karhunen–Loève modes of a squared-exponential Gaussian field on a mask.

    Covariance :math:`C(x_1, x_2) = \sigma^2 e^{-|x_1-x_2|^2/2l^2}` (pixel units) on the
    mask pixels; eigenpairs of the pixel covariance matrix (the Nyström discretisation of
    seed 002 eq. 5 with unit pixel weights).

    Returns
    -------
    (modes, eigenvalues)
        ``modes`` ``(n, y, x)``: :math:`\sqrt{\lambda_m}\phi_m` (zero off the mask), so
        :math:`\psi = \sum_m Z_m\,\mathrm{modes}_m` has the prior covariance (truncated)
        for :math:`Z \sim N(0, I)`; ``eigenvalues`` ``(n,)`` descending.
    """
    pts = np.argwhere(mask)
    n_modes = int(min(n_modes, len(pts)))
    d2 = np.sum((pts[:, None, :] - pts[None, :, :]).astype(float) ** 2, axis=-1)
    cov = sigma**2 * np.exp(-d2 / (2.0 * corr_length**2))
    w, v = np.linalg.eigh(cov)
    order = np.argsort(w)[::-1][:n_modes]
    w, v = np.clip(w[order], 0.0, None), v[:, order]
    # Deterministic signs (eigenvectors are defined up to sign): the largest entry > 0.
    v = v * np.where(v[np.argmax(np.abs(v), axis=0), np.arange(v.shape[1])] < 0, -1.0, 1.0)
    modes = np.zeros((n_modes, *mask.shape))
    modes[:, pts[:, 0], pts[:, 1]] = (v * np.sqrt(w)).T
    return modes, w


def _interior(mask: np.ndarray) -> np.ndarray:
    """Mask pixels whose four neighbours are all in the mask (the others are Dirichlet)."""
    return ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(2, 1))


# ------------------------------------------------------------------------- problem


@dataclass(frozen=True)
class KineticsProblem:
    """Validated arrays of a kinetics inversion (see :func:`prepare_kinetics`).

    ``H`` half-cycles padded to ``F`` frames, ``P`` particles on a common ``(y, x)`` box.
    """

    masks: np.ndarray  # (P, y, x) bool
    interior: np.ndarray  # (P, y, x) bool
    particle_of: np.ndarray  # (H,) int
    frames: np.ndarray  # (H, F, y, x) data, 0 outside masks/padding, clipped
    targets: np.ndarray  # (H, F, y, x) data, 0 outside masks/padding, not clipped
    valid: np.ndarray  # (H, F) bool
    times_h: np.ndarray  # (H, F) hours since first frame (NaN padding)
    dts: np.ndarray  # (H, F-1) hours, 0 in padding
    rates: np.ndarray  # (H, F-1) interior mean rate 1/h
    weights: np.ndarray  # (H, F, y, x) 1 where a residual is taken
    pixel_size: float
    pixel_unit: str


def prepare_kinetics(
    data: xr.Dataset, *, clip: tuple[float, float] = (0.005, 0.995)
) -> KineticsProblem:
    """Validate a particle-video dataset and convert it into a :class:`KineticsProblem`.

    Accepted layouts: ``images (realization, t, y, x)`` with ``frame_time``
    ``(realization, t)`` in seconds, ``particle_of`` ``(realization,)`` and ``masks``
    (what :func:`operando.simulate.simulate_particles` writes; ``frame_valid`` optional,
    default: frames with finite time), or a single half-cycle ``images (t, y, x)`` with
    ``t`` in seconds and a one-particle ``masks``.

    Raises
    ------
    DataError
        Missing masks or variables, an empty interior, non-finite pixels inside a mask,
        unsorted frame times, fewer than 2 frames.
    """
    where = "learn_kinetics: data"
    if not isinstance(data, xr.Dataset):
        raise DataError(
            f"expected an operando dataset, got {type(data).__name__}",
            where=where,
            fix="read one with operando.io.read_dataset",
        )
    ds = validate_dataset(data, source=where, allow_nonfinite=True)
    if "masks" not in ds:
        raise DataError(
            "no 'masks' variable: the particle domains are needed",
            where=where,
            fix="segment the particles and store masks (particle, y, x)",
        )
    masks = np.asarray(ds["masks"].values, dtype=bool)
    img = ds["images"]
    if img.dims == ("t", "y", "x"):
        if masks.shape[0] != 1:
            raise DataError(
                f"a single image series needs exactly one mask, got {masks.shape[0]}",
                where=where,
                fix="store one half-cycle per realization with 'particle_of'",
            )
        frames = np.asarray(img.values, dtype=float)[None]
        times = np.asarray(ds["t"].values, dtype=float)[None]
        valid = np.ones(times.shape, dtype=bool)
        pidx = np.zeros(1, dtype=int)
    elif img.dims == ("realization", "t", "y", "x"):
        for var in ("frame_time", "particle_of"):
            if var not in ds:
                raise DataError(
                    f"no '{var}' variable",
                    where=where,
                    fix="see docs/kinetics.md for the layout (operando simulate particles)",
                )
        frames = np.asarray(img.values, dtype=float)
        times = np.asarray(ds["frame_time"].values, dtype=float)
        valid = (
            np.asarray(ds["frame_valid"].values, dtype=bool)
            if "frame_valid" in ds
            else np.isfinite(times)
        )
        pidx = np.asarray(ds["particle_of"].values, dtype=int)
        if pidx.min() < 0 or pidx.max() >= masks.shape[0]:
            raise DataError(
                f"'particle_of' refers to particles outside 0..{masks.shape[0] - 1}", where=where
            )
    else:
        raise DataError(
            f"images have dims {img.dims}; expected (realization, t, y, x) or (t, y, x)",
            where=where,
            fix="see docs/kinetics.md for the particle-video layout",
        )
    interior = np.stack([_interior(m) for m in masks])
    empty = [int(i) for i in np.flatnonzero(interior.reshape(len(masks), -1).sum(1) == 0)]
    if empty:
        raise DataError(
            f"particle(s) {empty} have no interior pixels (every pixel is on the edge)",
            where=f"{where}: masks",
            fix="drop particles smaller than 3x3 pixels",
        )
    n_h, n_f = frames.shape[:2]
    dts = np.zeros((n_h, n_f - 1))
    rates = np.zeros((n_h, n_f - 1))
    times_h = np.full((n_h, n_f), np.nan)
    for h in range(n_h):
        v = valid[h]
        nv = int(v.sum())
        if nv < 2 or not np.all(v[:nv]):
            raise DataError(
                f"half-cycle {h} has {nv} valid frame(s) (valid frames must come first)",
                where=where,
                fix="each half-cycle needs at least 2 frames; drop shorter ones",
            )
        th = times[h, :nv]
        if not np.all(np.isfinite(th)) or np.any(np.diff(th) <= 0):
            raise DataError(
                f"frame times of half-cycle {h} are not finite and strictly increasing",
                where=f"{where}: frame_time",
                fix="sort the frames by time and drop duplicates",
            )
        m = masks[pidx[h]]
        fr = frames[h, :nv][:, m]
        bad = int(np.sum(~np.isfinite(fr)))
        if bad:
            raise DataError(
                f"half-cycle {h} has {bad} NaN/inf pixel(s) inside particle {pidx[h]}'s mask",
                where=where,
                fix="interpolate or inpaint them, or shrink the mask",
            )
        times_h[h, :nv] = (th - th[0]) / HOUR
        dts[h, : nv - 1] = np.diff(times_h[h, :nv])
        cbar = frames[h, :nv][:, interior[pidx[h]]].mean(axis=1)
        rates[h, : nv - 1] = np.diff(cbar) / dts[h, : nv - 1]
    frames = np.where(np.isfinite(frames), frames, 0.0)
    targets = np.where(masks[pidx][:, None], frames, 0.0)
    frames = np.where(masks[pidx][:, None], np.clip(frames, *clip), 0.0)
    weights = (interior[pidx][:, None] & valid[:, :, None, None]).astype(float)
    weights[:, 0] = 0.0
    return KineticsProblem(
        masks=masks,
        interior=interior,
        particle_of=pidx,
        frames=frames,
        targets=targets,
        valid=valid,
        times_h=times_h,
        dts=dts,
        rates=rates,
        weights=weights,
        pixel_size=float(ds.attrs.get("pixel_size", 1.0)),
        pixel_unit=str(ds.attrs.get("pixel_unit", "px")),
    )


def split_intervals(prob: KineticsProblem) -> KineticsProblem:
    """Multiple shooting: every frame interval becomes its own two-frame segment.

    Segment ``(h, j)`` starts from the *measured* frame ``j`` of half-cycle ``h`` and is
    compared with frame ``j + 1``. Short horizons keep the residual far less nonlinear
    than one trajectory per half-cycle (pixels that flip between phases early or late
    are corrected at every frame), which widens the basin of convergence.
    """
    rows = [(h, j) for h in range(prob.frames.shape[0]) for j in range(prob.frames.shape[1] - 1)
            if prob.valid[h, j + 1]]  # fmt: skip
    hh = np.array([h for h, _ in rows])
    jj = np.array([j for _, j in rows])
    frames = np.stack([prob.frames[hh, jj], prob.frames[hh, jj + 1]], axis=1)
    targets = np.stack([prob.targets[hh, jj], prob.targets[hh, jj + 1]], axis=1)
    times = np.stack([np.zeros(len(rows)), prob.dts[hh, jj]], axis=1)
    weights = np.stack([np.zeros_like(prob.weights[hh, jj]), prob.weights[hh, jj + 1]], axis=1)
    return KineticsProblem(
        masks=prob.masks, interior=prob.interior, particle_of=prob.particle_of[hh],
        frames=frames, targets=targets, valid=np.ones((len(rows), 2), dtype=bool),
        times_h=times,
        dts=prob.dts[hh, jj][:, None], rates=prob.rates[hh, jj][:, None], weights=weights,
        pixel_size=prob.pixel_size, pixel_unit=prob.pixel_unit,
    )  # fmt: skip


# ---------------------------------------------------------------------------- model


@dataclass(frozen=True)
class _Model:
    """Static pieces of the forward model shared by the fit and its diagnostics."""

    mu_law: LegendreChemicalPotential
    j0_law: LegendreLogDiffusivity
    a_delta: np.ndarray
    null: np.ndarray
    sigma_psi0: float
    kappa: float
    n_sub: int
    alpha: float
    strain: Callable[[jax.Array, jax.Array], jax.Array] | None
    subgrid: int = 1
    damping_smoothing: float = 0.0

    @property
    def n_j0(self) -> int:
        return self.j0_law.degree + 1

    def split(self, g: jax.Array) -> dict[str, jax.Array]:
        """Shared vector ``g = [j0, mu]`` (the order of ``ravel_pytree``) as a dict."""
        return {"j0": g[: self.n_j0], "mu": g[self.n_j0 :]}

    def mu_coefficients(self, q: jax.Array) -> jax.Array:
        return jnp.asarray(self.a_delta) + jnp.asarray(self.null) @ q

    def mu_h(self, c: jax.Array, params: Any) -> jax.Array:
        return self.mu_law(c, self.mu_coefficients(params["mu"]))

    def log_j0(self, c: jax.Array, params: Any) -> jax.Array:
        return self.j0_law.log(c, params["j0"])

    def psi(self, Z: jax.Array, modes: jax.Array, interior: jax.Array) -> jax.Array:
        """Uncentred ``ln k`` on the pixel lists, ``Z (..., m+1)``, ``modes (..., m, n)``."""
        psi = self.sigma_psi0 * Z[..., :1] + jnp.einsum("...m,...mn->...n", Z[..., 1:], modes)
        return psi * interior

    def psi_mean(self, Z: jax.Array, modes: jax.Array, interior: jax.Array) -> jax.Array:
        """Area-weighted mean of ``psi`` over the interiors of all particles."""
        return jnp.sum(self.psi(Z, modes, interior)) / jnp.sum(interior)

    def log_k(self, Z: jax.Array, modes: jax.Array, interior: jax.Array) -> jax.Array:
        """``ln k`` on the pixel lists ``(P, n)`` in the gauge of zero area-weighted mean."""
        psi = self.psi(Z, modes, interior)
        return (psi - jnp.sum(psi) / jnp.sum(interior)) * interior

    def log_j0_gauged(self, c: jax.Array, params: Any, arrays: dict[str, Any]) -> jax.Array:
        """``ln j0`` in the gauge of zero mean ``ln k`` (invariant under the k-j0 scale)."""
        return self.log_j0(c, params) + self.psi_mean(
            params["Z"], arrays["modes"], arrays["interior"]
        )

    def block(
        self, g: jax.Array, z: jax.Array, b: dict[str, jax.Array], n_sub: int | None = None
    ) -> jax.Array:
        """Model of one half-cycle (or segment) on its coarse pixel list, ``(F, n)``.

        Depends only on the shared ``g`` and the particle's own ``z``: ``ln k`` is not
        centred here (the k–j0 scale is pinned by the prior on ``Z`` and removed after
        the fit by :meth:`gauge`), so the Jacobian is block-structured. ``n_sub``
        (static) overrides the model's sub-steps per frame interval (a block's group).
        """
        params = self.split(g)
        psi = self.psi(z, b["modes"], b["interior"])
        par = b["parent"]
        frames_f = b["frames"][:, par]
        pred_f = reaction_allen_cahn(
            frames_f[0], b["dts"], b["rates"], psi[par], b["neighbours"], b["evolve"],
            params, mu_h=self.mu_h, log_j0=self.log_j0, kappa=self.kappa * self.subgrid**2,
            n_sub=self.n_sub if n_sub is None else int(n_sub), boundary=frames_f,
            valid=b["valid_f"], alpha=self.alpha, strain=self.strain,
            damping_smoothing=self.damping_smoothing,
        )  # fmt: skip
        if self.subgrid == 1:
            return pred_f
        n_c = b["frames"].shape[-1]
        summed = jax.ops.segment_sum((pred_f * b["valid_f"]).T, par, num_segments=n_c).T
        return summed / jnp.maximum(b["count"], 1.0)

    def block_residual(
        self, g: jax.Array, z: jax.Array, b: dict[str, jax.Array], n_sub: int | None = None
    ) -> jax.Array:
        """Weighted residual of one block, flattened (0 where no residual is taken)."""
        return ((self.block(g, z, b, n_sub) - b["targets"]) * b["weights"]).ravel()

    def predict(
        self, params: Any, blocks: dict[str, jax.Array], owner: Any, n_sub: int | None = None
    ) -> jax.Array:
        """Model frames of the given blocks on the coarse pixel lists, ``(B, F, n)``."""
        g = jnp.concatenate([jnp.asarray(params["j0"]), jnp.asarray(params["mu"])])
        Z = jnp.asarray(params["Z"])[jnp.asarray(owner)]
        return jax.vmap(lambda z, b: self.block(g, z, b, n_sub))(Z, blocks)

    def gauge(self, params: Any, arrays: dict[str, Any]) -> dict[str, np.ndarray]:
        """Exact reparametrisation to zero mean ``ln k`` (``Z_0 -= m/sigma_psi0``, ``b_0 += m``).

        ``k`` and ``j0`` enter the model only as the product ``k j0``, so this leaves
        every prediction unchanged.
        """
        out = {k: np.array(v, dtype=float) for k, v in params.items()}
        if self.sigma_psi0 <= 0:
            return out
        m = float(self.psi_mean(jnp.asarray(out["Z"]), arrays["modes"], arrays["interior"]))
        out["Z"][:, 0] -= m / self.sigma_psi0
        out["j0"][0] += m
        return out


# ---------------------------------------------------------------------------- metrics


def pixel_correlation(
    a: Any, b: Any, *, mask: Any | None = None, thickness: Any | None = None
) -> float:
    r"""Pearson correlation of two maps over the pixels of ``mask`` (seed 002 Fig. 3c).

    With ``thickness`` (e.g. the optical density), ``a`` is taken to be :math:`k(x, y)` and
    the correlation is of :math:`j_s = k\,h` with ``b``, where :math:`h` is the thickness
    divided by its mean over the mask. Arrays of shape ``(..., y, x)`` are pooled over
    all leading dims (several particles at once). Non-finite pixels are skipped.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise DataError(
            f"maps have shapes {a.shape} and {b.shape}", where="pixel_correlation",
            fix="pass maps on the same pixel grid",
        )  # fmt: skip
    m = (
        np.ones(a.shape, dtype=bool)
        if mask is None
        else np.broadcast_to(np.asarray(mask, bool), a.shape)
    )
    if thickness is not None:
        h = np.asarray(thickness, dtype=float)
        hm = np.nanmean(np.where(m, h, np.nan), axis=(-2, -1), keepdims=True)
        a = a * h / hm
    sel = m & np.isfinite(a) & np.isfinite(b)
    if sel.sum() < 3:
        raise DataError("fewer than 3 common finite pixels", where="pixel_correlation")
    x, y = a[sel] - a[sel].mean(), b[sel] - b[sel].mean()
    den = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / den) if den > 0 else float("nan")


def normalise_j0(c: Any, j0: Any) -> np.ndarray:
    """``j0 / max j0`` with the maximum taken over ``c`` in [0.05, 0.95] (``METRIC_RANGE``).

    ``k`` and ``j0`` share a scale, so shapes are compared normalised. The maximum is
    taken where the data constrain ``j0`` (the range of ``j0_rel_rmse``): a learned
    ``ln j0`` polynomial can grow without bound near ``c = 0`` or ``1``, where no pixel
    sits, and a maximum there would rescale the whole curve. Works on ``(..., n_c)``
    arrays (one maximum per curve).
    """
    c = np.asarray(c, dtype=float)
    j = np.asarray(j0, dtype=float)
    inside = (c >= METRIC_RANGE[0]) & (c <= METRIC_RANGE[1])
    if c.ndim != 1 or c.shape[0] != j.shape[-1] or not inside.any():
        raise DataError(
            f"c grid of shape {c.shape} for j0 of shape {j.shape}",
            where="normalise_j0",
            fix=f"pass the 1D c grid of the curves, covering part of {METRIC_RANGE}",
        )
    return j / j[..., inside].max(axis=-1, keepdims=True)


def kinetics_errors(
    mu_fn: Callable[[np.ndarray], np.ndarray],
    j0_fn: Callable[[np.ndarray], np.ndarray],
    truth: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    n: int = 181,
) -> dict[str, float]:
    """``mu_rmse`` (constant removed) and ``j0_rel_rmse`` (of ``j0 / max j0``) on [0.05, 0.95]."""
    c = np.linspace(*METRIC_RANGE, n)
    out: dict[str, float] = {}
    if "mu_h" in truth:
        g, v = truth["mu_h"]
        d = np.asarray(mu_fn(c)) - np.interp(c, g, v)
        out["mu_rmse"] = float(np.sqrt(np.mean((d - d.mean()) ** 2)))
    if "j0" in truth:
        g, v = truth["j0"]
        jt = normalise_j0(c, np.interp(c, g, v))
        jl = normalise_j0(c, np.asarray(j0_fn(c)))
        out["j0_rel_rmse"] = float(np.sqrt(np.mean((jl - jt) ** 2)))
    return out


# -------------------------------------------------------------------------------- fit


@dataclass(frozen=True)
class KineticsFit:
    """Result of :func:`learn_kinetics`. Failure is a value: check :attr:`status`.

    Attributes
    ----------
    params
        ``{"mu": q, "j0": b, "Z": (P, n_kl + 1)}`` at the optimum.
    c_grid
        Concentrations ``[0.01, 0.99]`` on which the laws are tabulated.
    mu, mu_std, j0, j0_std, ln_j0_std
        Learned :math:`\\mu_h` and :math:`j_0` (1/h) on ``c_grid`` with linearised
        (Gauss–Newton) 1-sigma uncertainties.
    mu_true, j0_true
        Truth on ``c_grid`` when the data carry it (else ``None``).
    ln_k, ln_k_std
        ``(P, y, x)`` learned :math:`\\ln k` (NaN off the interior) and its 1-sigma.
    ln_k_true
        ``(P, y, x)`` true :math:`\\ln k` or ``None``.
    predicted, measured
        ``(H, F, y, x)`` model and data (NaN where no residual is taken, except frame 0).
    metrics
        ``train_rmse`` and, with truth, ``j0_rel_rmse``, ``mu_rmse``, ``lnk_corr``,
        ``train_rmse_clean``.
    result
        The :class:`~operando.inverse.LeastSquaresResult`.
    settings
        Resolved options.
    problem
        The :class:`KineticsProblem`.
    """

    params: dict[str, np.ndarray]
    c_grid: np.ndarray
    mu: np.ndarray
    mu_std: np.ndarray
    j0: np.ndarray
    j0_std: np.ndarray
    ln_j0_std: np.ndarray
    mu_true: np.ndarray | None
    j0_true: np.ndarray | None
    ln_k: np.ndarray
    ln_k_std: np.ndarray
    ln_k_true: np.ndarray | None
    predicted: np.ndarray = field(repr=False)
    measured: np.ndarray = field(repr=False)
    metrics: dict[str, float] = field(default_factory=dict)
    result: LeastSquaresResult | None = field(default=None, repr=False)
    settings: dict[str, Any] = field(default_factory=dict)
    problem: KineticsProblem | None = field(default=None, repr=False)
    model: Any = field(default=None, repr=False)

    @property
    def status(self) -> Status:
        """Status of the least-squares solve."""
        return self.result.status  # type: ignore[union-attr]

    @property
    def success(self) -> bool:
        """Whether the fit converged."""
        return self.status is Status.CONVERGED

    def mu_h(self, c: Any) -> np.ndarray:
        """Learned :math:`\\mu_h(c)` (kT)."""
        return np.asarray(self.model.mu_h(jnp.asarray(c), self.params))

    def exchange_current(self, c: Any) -> np.ndarray:
        """Learned :math:`j_0(c)` (1/h)."""
        return np.asarray(jnp.exp(self.model.log_j0(jnp.asarray(c), self.params)))

    def to_dataset(self) -> xr.Dataset:
        """The fit as an operando dataset: data/model frames, laws on ``c``, ``ln k`` maps."""
        from ..data import make_dataset

        ds = make_dataset(
            self.measured,
            dims=("realization", "t", "y", "x"),
            pixel_size=self.problem.pixel_size,  # type: ignore[union-attr]
            pixel_unit=self.problem.pixel_unit,  # type: ignore[union-attr]
            masks=self.problem.masks,  # type: ignore[union-attr]
            source="KineticsFit",
            allow_nonfinite=True,
        )
        ds["t"].attrs["units"] = "frame"
        ds["predicted"] = (("realization", "t", "y", "x"), self.predicted)
        ds["frame_time"] = (("realization", "t"), self.problem.times_h * HOUR)  # type: ignore[union-attr]
        ds["frame_time"].attrs["units"] = "s"
        ds["particle_of"] = (("realization",), self.problem.particle_of)  # type: ignore[union-attr]
        ds = ds.assign_coords(c=("c", self.c_grid))
        for name, val in (
            ("mu_h", self.mu), ("mu_h_std", self.mu_std), ("j0", self.j0),
            ("j0_std", self.j0_std), ("ln_j0_std", self.ln_j0_std),
        ):  # fmt: skip
            ds[name] = (("c",), val)
        if self.mu_true is not None:
            ds["mu_h_true"] = (("c",), self.mu_true)
        if self.j0_true is not None:
            ds["j0_true"] = (("c",), self.j0_true)
        ds["ln_k"] = (("particle", "y", "x"), self.ln_k)
        ds["ln_k_std"] = (("particle", "y", "x"), self.ln_k_std)
        if self.ln_k_true is not None:
            ds["ln_k_true"] = (("particle", "y", "x"), self.ln_k_true)
        ds["cost_history"] = (("iteration",), self.result.cost_history)  # type: ignore[union-attr]
        ds["j0"].attrs["units"] = "1/h"
        ds["mu_h"].attrs["units"] = "kT"
        ds.attrs.update(
            {
                "status": self.status.value,
                "message": self.result.message,  # type: ignore[union-attr]
                **{k: v for k, v in self.settings.items() if isinstance(v, int | float | str)
                   and not isinstance(v, bool)},
            }
        )  # fmt: skip
        return ds


def _blur_sigma(value: float | str, name: str) -> float:
    """A blur option as a float: ``"mean"`` (or ``inf``) is the interior mean exactly."""
    if isinstance(value, str):
        if value.strip().lower() == "mean":
            return float("inf")
        try:
            value = float(value)
        except ValueError:
            value = float("nan")
    value = float(value)
    if not value >= 0:
        raise ParameterError(
            f"{name} is {value!r}", where="learn_kinetics",
            fix="pass a blur >= 0 (pixels) or 'mean' (the interior mean exactly)",
        )  # fmt: skip
    return value


def _blur_setting(value: float | str | None) -> float | str | None:
    """How a blur option is recorded in the settings (JSON-safe: ``inf`` -> ``"mean"``)."""
    if value is None:
        return None
    sigma = _blur_sigma(value, "blur")
    return "mean" if np.isinf(sigma) else sigma


def _smooth_first_frames(
    prob: KineticsProblem, sigma: float, clip: tuple[float, float]
) -> KineticsProblem:
    """Replace the interior of every block's first frame by a mask-normalised Gaussian blur.

    The blurred interior is shifted to keep the measured interior mean, then clipped; edge
    (Dirichlet) pixels and all later frames are unchanged. ``sigma = inf`` sets the interior
    to its measured mean exactly: a finite blur of a particle much wider than ``sigma``
    keeps part of the noise (at ~490 px and ``sigma = 10`` enough to seed a different
    mosaic). For noisy data whose initial frames are nearly uniform (the start of a
    half-cycle), this removes the pixel noise that would otherwise seed the model's phase
    separation differently from the truth.
    """
    frames = prob.frames.copy()
    for h, p in enumerate(prob.particle_of):
        m, inner = prob.masks[p], prob.interior[p]
        f0 = np.where(m, prob.targets[h, 0], 0.0)
        if np.isinf(sigma):  # the interior mean exactly (no residual blurred noise)
            sm = np.full(f0.shape, f0[inner].mean())
        else:
            num = ndimage.gaussian_filter(f0, sigma, mode="constant")
            den = ndimage.gaussian_filter(m.astype(float), sigma, mode="constant")
            sm = num / np.where(den > 0, den, 1.0)
            sm += f0[inner].mean() - sm[inner].mean()
        frames[h, 0] = np.where(inner, np.clip(sm, *clip), frames[h, 0])
    return KineticsProblem(**{**prob.__dict__, "frames": frames})


def _fine_graphs(
    masks: np.ndarray, interior: np.ndarray, n_c: int, subgrid: int
) -> dict[str, np.ndarray]:
    """Pixel lists of the coarse (data) grid and of the solver grid (``subgrid`` x finer).

    The solver grid splits every mask pixel into ``subgrid**2`` sub-pixels; sub-pixels of
    interior pixels evolve, those of edge pixels carry the measured (Dirichlet) values.
    ``parent`` maps each sub-pixel to its pixel's entry in the coarse list.
    """
    s = int(subgrid)
    n_p = masks.shape[0]
    graphs = [mask_graph(m, n_c) for m in masks]
    pix = np.stack([gr[0] for gr in graphs])
    ok = np.stack([gr[2] for gr in graphs])
    one = np.ones((s, s), dtype=bool)
    fine = [np.kron(m, one).astype(bool) for m in masks]
    n_f = int(max(f.sum() for f in fine))
    parent = np.zeros((n_p, n_f), dtype=int)
    neighbours = np.zeros((n_p, n_f, 4), dtype=int)
    evolve = np.zeros((n_p, n_f))
    valid_f = np.zeros((n_p, n_f))
    for i in range(n_p):
        pf, nb, okf = mask_graph(fine[i], n_f)
        lookup = -np.ones(masks.shape[1:], dtype=int)
        n_i = int(ok[i].sum())
        lookup[pix[i, :n_i, 0], pix[i, :n_i, 1]] = np.arange(n_i)
        par = lookup[pf[:, 0] // s, pf[:, 1] // s]
        parent[i] = np.where(okf, par, 0)
        neighbours[i] = nb
        valid_f[i] = okf
        evolve[i] = okf & interior[i][pf[:, 0] // s, pf[:, 1] // s]
    count = ok * float(s * s)
    return {
        "pix": pix, "ok": ok, "parent": parent, "neighbours": neighbours,
        "evolve": evolve, "valid_f": valid_f, "count": count,
    }  # fmt: skip


#: At most this many groups of blocks (:func:`step_groups`).
MAX_STEP_GROUPS = 4


def step_groups(
    n_sub: np.ndarray,
    n_frames: np.ndarray,
    max_groups: int = MAX_STEP_GROUPS,
    min_gain: float = 0.2,
) -> list[tuple[int, int, np.ndarray]]:
    r"""Partition blocks into groups of one sub-step count and one padded frame count.

    Block ``b`` takes ``n_sub[b]`` sub-steps per interval and has ``n_frames[b]`` valid
    frames; all blocks of a group are integrated with the group's largest of both (one
    traced batch each). The groups are contiguous runs of the blocks sorted by
    ``(n_sub, n_frames)`` that minimise the total work
    :math:`\sum_g |g|\,n_g (F_g - 1)` (dynamic programming); a further group is
    added only while it cuts the work by at least ``min_gain`` (each group is compiled
    separately). Returns ``[(n_sub_g, frames_g, block_indices), ...]``.
    :func:`kinetics_setup` passes one ``n_sub`` for all blocks, so its groups differ in
    frame count only (per-block step counts lose accuracy: docs/kinetics.md, "Time
    stepping").
    """
    n_sub = np.asarray(n_sub, dtype=int)
    n_frames = np.asarray(n_frames, dtype=int)
    if n_sub.size == 0:
        return []
    order = np.lexsort((n_frames, n_sub))
    ns, nf = n_sub[order], np.maximum(n_frames[order] - 1, 1)
    B = ns.size

    def cost_table() -> np.ndarray:
        """``C[i, j]``: work of one group of sorted blocks ``i..j`` (inclusive)."""
        C = np.full((B, B), np.inf)
        for j in range(B):
            fmax = np.maximum.accumulate(nf[: j + 1][::-1])[::-1]
            C[: j + 1, j] = (j + 1 - np.arange(j + 1)) * ns[j] * fmax
        return C

    C = cost_table()
    best = C[0].copy()  # best[j]: optimal work of blocks 0..j in k groups
    cut = [np.zeros(B, dtype=int)]  # cut[k][j]: start of the last group
    plans = [best.copy()]
    for _ in range(1, max(int(max_groups), 1)):
        cand = best[:-1, None] + C[1:, :]  # previous groups end at i - 1, last is i..j
        cand = np.vstack([np.full((1, B), np.inf), cand])
        start = np.argmin(cand, axis=0)
        new = cand[start, np.arange(B)]
        better = new < best
        best = np.where(better, new, best)
        cut.append(np.where(better, start, -1))
        plans.append(best.copy())
    k = 0
    while k + 1 < len(plans) and plans[k + 1][-1] <= (1.0 - min_gain) * plans[k][-1]:
        k += 1
    groups = []
    j = B - 1
    while j >= 0:
        kk = k
        while kk > 0 and cut[kk][j] < 0:
            kk -= 1
        i = int(cut[kk][j]) if kk > 0 else 0
        idx = np.sort(order[i : j + 1])
        groups.append((int(ns[j]), int(np.max(n_frames[idx])), idx))
        j, k = i - 1, kk - 1
    return sorted(groups, key=lambda t: t[0])


def kinetics_setup(
    data: xr.Dataset,
    *,
    rho2: float = 4.9e-3,
    rho1: float = 0.0,
    degree_mu: int = 5,
    degree_j0: int = 8,
    max_iter: int = 30,
    n_kl: int = 20,
    corr_length: float = 3.0,
    sigma_psi: float = 0.3,
    sigma_psi0: float = 0.5,
    delta: float | None = None,
    kappa: float | None = None,
    dt_max: float = 0.01,
    alpha: float = 0.5,
    strain: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    clip: tuple[float, float] = (0.005, 0.995),
    subgrid: int = 1,
    damping_smoothing: float = 0.0,
    smooth_initial: float | str = 0.0,
    smooth_segments: float | str | None = None,
    params0: Any = None,
    shooting: str = "single",
) -> SimpleNamespace:
    """Validate the inputs and build the block residual of :func:`learn_kinetics` (same options).

    Returns a namespace with, among others, ``model`` (``model.block_residual(g, z, b,
    n_sub)`` is the residual of one block, ``g = [j0, mu]``), ``blocks`` (per-block
    arrays), ``owner`` (particle of every block), ``groups`` (:func:`step_groups`:
    ``(n_sub, frames, block indices)``) with ``group_fns``/``group_args``/``group_owner``
    (what :func:`~operando.inverse.block_least_squares` takes), ``predict(params)`` (model
    frames ``(B, F, n)``), ``residual(params)`` (all blocks, flattened; zeros where no
    residual is taken), ``params0``/``p0``, ``arrays`` (per-particle KL modes and
    interiors), ``prob`` and ``n_residuals``; useful for derivative checks and custom
    optimisers.
    """
    require_x64("operando.learn_kinetics")
    prob = prepare_kinetics(data, clip=clip)
    if shooting == "multiple":
        prob = split_intervals(prob)
    elif shooting != "single":
        raise ParameterError(
            f"shooting is {shooting!r}", where="learn_kinetics", fix="'single' or 'multiple'"
        )
    if int(degree_j0) < 1:
        raise ParameterError(f"degree_j0 is {degree_j0}", where="learn_kinetics", fix="pass >= 1")
    if not (rho2 >= 0 and rho1 >= 0):
        raise ParameterError("rho1 and rho2 must be >= 0", where="learn_kinetics")
    if int(max_iter) < 1:
        raise ParameterError(f"max_iter is {max_iter}", where="learn_kinetics", fix="pass >= 1")
    if int(subgrid) < 1:
        raise ParameterError(f"subgrid is {subgrid}", where="learn_kinetics", fix="pass >= 1")
    if not (np.isfinite(damping_smoothing) and float(damping_smoothing) >= 0):
        raise ParameterError(
            f"damping_smoothing is {damping_smoothing}", where="learn_kinetics",
            fix="pass a finite value >= 0 (0: the exact damping switch)",
        )  # fmt: skip
    sm_initial = _blur_sigma(smooth_initial, "smooth_initial")
    sm_segments = (
        None if smooth_segments is None else _blur_sigma(smooth_segments, "smooth_segments")
    )
    # Multiple-shooting segments start from mid-half-cycle (phase-separated) frames: they
    # take their own blur, smooth_initial (meant for near-uniform first frames) otherwise.
    smooth = sm_initial
    if shooting == "multiple" and sm_segments is not None:
        smooth = sm_segments
    if smooth > 0:
        prob = _smooth_first_frames(prob, smooth, clip)
    if not (dt_max > 0 and corr_length > 0 and sigma_psi >= 0 and sigma_psi0 >= 0):
        raise ParameterError(
            "dt_max and corr_length must be > 0, sigma_psi and sigma_psi0 >= 0",
            where="learn_kinetics",
        )
    if delta is None:
        delta = float(data.attrs.get("binodal_delta", DELTA_LFP))
    if kappa is None:
        if "kappa_tilde" in data.attrs:
            kappa = float(data.attrs["kappa_tilde"])
        else:
            from ..physics._kinetics import dimensionless_kappa

            ps = prob.pixel_size if prob.pixel_unit == "nm" else 50.0
            kappa = dimensionless_kappa(ps * 1e-9)
    a_delta, null = binodal_constraint(int(degree_mu), float(delta))
    n_sub = max(1, int(np.ceil(prob.dts.max() / dt_max * (1 - 1e-12))))
    model = _Model(
        mu_law=LegendreChemicalPotential(degree=int(degree_mu), prior=True, key=None),
        j0_law=LegendreLogDiffusivity(degree=int(degree_j0), key=None),
        a_delta=a_delta,
        null=null,
        sigma_psi0=float(sigma_psi0),
        kappa=float(kappa),
        n_sub=n_sub,
        alpha=float(alpha),
        strain=strain,
        subgrid=int(subgrid),
        damping_smoothing=float(damping_smoothing),
    )
    n_p = prob.masks.shape[0]
    n_pix = int(prob.masks.reshape(n_p, -1).sum(1).max())
    G = _fine_graphs(prob.masks, prob.interior, n_pix, int(subgrid))
    pix, ok = G["pix"], G["ok"]
    pr = np.arange(n_p)[:, None]
    interior_l = prob.interior[pr, pix[..., 0], pix[..., 1]] & ok
    modes = np.zeros((n_p, n_kl, n_pix))
    for i, m in enumerate(prob.interior):
        md, _ = karhunen_loeve(m, n_kl, corr_length, sigma_psi)
        modes[i, : md.shape[0]] = md[:, pix[i, :, 0], pix[i, :, 1]] * ok[i]
    owner = np.asarray(prob.particle_of, dtype=int)
    hp = pix[owner]
    hr = np.arange(len(owner))[:, None, None]
    fr = np.arange(prob.frames.shape[1])[None, :, None]
    frames_l = prob.frames[hr, fr, hp[:, None, :, 0], hp[:, None, :, 1]]
    targets_l = prob.targets[hr, fr, hp[:, None, :, 0], hp[:, None, :, 1]]
    weights_l = prob.weights[hr, fr, hp[:, None, :, 0], hp[:, None, :, 1]] * ok[owner][:, None]
    arrays = {
        "modes": jnp.asarray(modes),
        "interior": jnp.asarray(interior_l.astype(float)),
    }
    blocks = {
        "frames": jnp.asarray(frames_l),
        "targets": jnp.asarray(targets_l),
        "weights": jnp.asarray(weights_l),
        "dts": jnp.asarray(prob.dts),
        "rates": jnp.asarray(prob.rates),
        "modes": jnp.asarray(modes[owner]),
        "interior": jnp.asarray(interior_l[owner].astype(float)),
        "parent": jnp.asarray(G["parent"][owner]),
        "neighbours": jnp.asarray(G["neighbours"][owner]),
        "evolve": jnp.asarray(G["evolve"][owner]),
        "valid_f": jnp.asarray(G["valid_f"][owner]),
        "count": jnp.asarray(G["count"][owner]),
    }
    n_residuals = int(np.sum(weights_l > 0))
    # Groups of blocks by frame count (step_groups): no sub-steps on padding frames. All
    # blocks keep the global n_sub: per-block counts (dt_max per half-cycle) were 2-5x
    # faster but lose accuracy on fast half-cycles (docs/kinetics.md "Time stepping").
    groups = step_groups(np.full(len(owner), n_sub), prob.valid.sum(axis=1))
    time_keys = {"frames": 1, "targets": 1, "weights": 1, "dts": 0, "rates": 0}

    def _group_args(idx: np.ndarray, n_f: int) -> dict[str, jax.Array]:
        out = {}
        for k, v in blocks.items():
            v = v[jnp.asarray(idx)]
            if k in time_keys:
                v = v[:, : n_f - 1 + time_keys[k]]
            out[k] = v
        return out

    group_fns = tuple(partial(model.block_residual, n_sub=n) for n, _, _ in groups)
    group_args = tuple(_group_args(idx, n_f) for _, n_f, idx in groups)
    group_owner = tuple(jnp.asarray(owner[idx]) for _, _, idx in groups)
    n_frames_pad = int(prob.frames.shape[1])

    def predict(params: Any) -> jax.Array:
        """Model frames of every block in their order, ``(B, F, n)`` (0 past its frames)."""
        out = jnp.zeros(blocks["frames"].shape)
        for (n, n_f, idx), a_k, o_k in zip(groups, group_args, group_owner, strict=True):
            out = out.at[jnp.asarray(idx), :n_f].set(model.predict(params, a_k, o_k, n_sub=n))
        return out

    def to_box(lists: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        """Scatter ``(..., n)`` list values onto the box (NaN elsewhere)."""
        out = np.full(lists.shape[:-1] + prob.masks.shape[1:], np.nan)
        out[..., pixels[:, 0], pixels[:, 1]] = lists
        return out

    def lists_to_box(pred_l: np.ndarray) -> np.ndarray:
        """``(B, F, n)`` block lists onto ``(B, F, y, x)`` (NaN off the masks)."""
        return np.stack([to_box(pred_l[h][:, ok[p]], pix[p][ok[p]]) for h, p in enumerate(owner)])

    def residual(params: Any) -> jax.Array:
        """Weighted residuals of all blocks in their order, flattened ``(B * F * n,)``."""
        return ((predict(params) - blocks["targets"]) * blocks["weights"]).ravel()

    if params0 is not None and hasattr(params0, "params"):
        params0 = params0.params  # a KineticsFit: warm start from its optimum
    if params0 is None:
        # mu_h: the regular solution whose binodal is delta (satisfies the constraint
        # exactly); j0: constant, the median |d cbar/dt| (overpotentials of order 1 kT).
        omega_d = float(np.log(delta / (1.0 - delta)) / (2.0 * delta - 1.0))
        a_rs = model.mu_law.fit(lambda c: np.log(c / (1 - c)) + omega_d * (1 - 2 * c))
        b0 = np.zeros(int(degree_j0) + 1)
        active = np.abs(prob.rates[prob.dts > 0])
        b0[0] = float(np.log(np.median(active))) if active.size and np.median(active) > 0 else 0.0
        params0 = {
            "mu": null.T @ (a_rs - a_delta),
            "j0": b0,
            "Z": np.zeros((n_p, n_kl + 1)),
        }
    missing = {"mu", "j0", "Z"} - set(params0)
    if missing:
        raise ParameterError(
            f"params0 lacks {sorted(missing)}", where="learn_kinetics: params0",
            fix="pass a previous fit's params ({'mu', 'j0', 'Z'})",
        )  # fmt: skip
    p0 = {k: np.array(params0[k], dtype=float) for k in ("mu", "j0", "Z")}
    expect = {"mu": (null.shape[1],), "j0": (int(degree_j0) + 1,), "Z": (n_p, n_kl + 1)}
    for k, shp in expect.items():
        if p0[k].shape != shp:
            raise ParameterError(
                f"params0[{k!r}] has shape {p0[k].shape}; expected {shp} (degree_mu - 2, "
                "degree_j0 + 1, (particles, n_kl + 1))",
                where="learn_kinetics: params0",
                fix="pass the options the parameters were fitted with",
            )
    return SimpleNamespace(**locals())


#: Options of :func:`learn_kinetics` that define the model (what a prediction must reuse).
MODEL_OPTIONS = (
    "degree_mu", "degree_j0", "n_kl", "corr_length", "sigma_psi", "sigma_psi0", "delta",
    "kappa", "dt_max", "alpha", "strain", "clip", "subgrid", "smooth_initial",
    "damping_smoothing",
)  # fmt: skip


def _fixed_global_params(fixed_global: Any, p0: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if hasattr(fixed_global, "params"):
        fixed_global = fixed_global.params
    if not isinstance(fixed_global, dict) or not {"mu", "j0"} <= set(fixed_global):
        raise ParameterError(
            "fixed_global must be a dict with 'mu' and 'j0' (e.g. a previous fit's params)",
            where="learn_kinetics: fixed_global",
        )
    out = dict(p0)
    for k in ("mu", "j0"):
        v = np.array(fixed_global[k], dtype=float)
        if v.shape != p0[k].shape:
            raise ParameterError(
                f"fixed_global[{k!r}] has shape {v.shape}; expected {p0[k].shape}",
                where="learn_kinetics: fixed_global",
                fix="pass degree_mu/degree_j0 equal to those of the fit that produced it",
            )
        out[k] = v
    return out


def _run_stage(
    S: SimpleNamespace,
    *,
    rho1: float,
    rho2: float,
    fixed: bool,
    max_iter: int,
    rtol: float,
    callback: Callable[..., None] | None,
) -> tuple[LeastSquaresResult, dict[str, np.ndarray]]:
    """One block Levenberg–Marquardt solve; returns the result and ``{"mu", "j0", "Z"}``."""
    model = S.model
    g0 = np.concatenate([S.p0["j0"], S.p0["mu"]])
    key = (
        "kinetics", model.mu_law.degree, model.j0_law.degree, float(S.delta), model.kappa,
        tuple((n, f) for n, f, _ in S.groups), model.alpha, model.strain, model.subgrid,
        model.sigma_psi0, model.damping_smoothing,
    )  # fmt: skip
    res = block_least_squares(
        S.group_fns, g0, S.p0["Z"], S.group_args, S.group_owner, reg_g=rho1, reg_z=rho2,
        fixed_global=fixed, max_steps=int(max_iter), rtol=rtol, atol=0.0,
        n_residuals=S.n_residuals, callback=callback, cache_key=key,
    )  # fmt: skip
    g = np.asarray(res.params["g"])
    n_j = model.n_j0
    params = {"mu": g[n_j:], "j0": g[:n_j], "Z": np.asarray(res.params["Z"])}
    return res, params


def _pad_j0(params: Any, degree: int) -> Any:
    """``params`` with its ln j0 coefficients zero-padded to ``degree`` (None: unchanged)."""
    if params is None:
        return None
    p = dict(getattr(params, "params", params))
    j = np.asarray(p["j0"], dtype=float)
    if j.size < degree + 1:
        p["j0"] = np.concatenate([j, np.zeros(degree + 1 - j.size)])
    return p


def learn_kinetics(
    data: xr.Dataset,
    *,
    rho2: float = 4.9e-3,
    rho1: float = 0.0,
    degree_mu: int = 5,
    degree_j0: int = 8,
    max_iter: int = 30,
    max_iter_single: int | None = None,
    n_kl: int = 20,
    corr_length: float = 3.0,
    sigma_psi: float = 0.3,
    sigma_psi0: float = 0.5,
    delta: float | None = None,
    kappa: float | None = None,
    dt_max: float = 0.01,
    alpha: float = 0.5,
    strain: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    clip: tuple[float, float] = (0.005, 0.995),
    subgrid: int = 1,
    damping_smoothing: float = 0.0,
    smooth_initial: float | str = 0.0,
    smooth_segments: float | str | None = None,
    rtol: float = 1e-6,
    params0: Any = None,
    fixed_global: Any = None,
    shooting: str = "both",
    continuation: Sequence[int] = (),
    callback: Callable[..., None] | None = None,
    throw: bool = False,
) -> KineticsFit:
    r"""Learn :math:`\mu_h(c)`, :math:`j_0(c)` and :math:`\ln k(x, y)` from particle videos.

    Parameters
    ----------
    data
        Particle-video dataset (layout in :func:`prepare_kinetics` and
        ``docs/kinetics.md``). Ground truth, when present, is used only for the metrics.
    rho2
        Weight :math:`\rho_2` of :math:`\sum_i\|Z_i\|^2` (objective in squared pixel
        errors; :math:`\rho_2 = \sigma_e^2` is the Bayesian MAP for the unit-normal prior).
    rho1
        Weight of :math:`\|p_{global}\|^2` (seed 002 uses 0).
    degree_mu
        ``N_mu >= 3`` (``N_mu - 2`` free coefficients after the binodal constraint).
    degree_j0
        ``N_j >= 1`` (``N_j + 1`` coefficients of :math:`\ln j_0`).
    max_iter
        Maximum Levenberg–Marquardt steps per stage.
    max_iter_single
        Maximum steps of the single-shooting stage (default ``max_iter``). The
        multiple-shooting stages only lead the way there; the single-shooting one is the
        fit (seed 002's formulation) and may need more steps to converge.
    n_kl, corr_length, sigma_psi, sigma_psi0
        Karhunen–Loève prior of :math:`\ln k`: modes per particle, correlation length
        (pixels), field and offset standard deviations.
    delta
        Binodal composition; default the data's ``binodal_delta`` attribute, else 0.035.
    kappa
        :math:`\tilde\kappa` (data-pixel units); default the data's ``kappa_tilde``
        attribute, else the LFP value for the data's pixel size (nm) or 50 nm.
    dt_max
        Largest time step (hours).
    alpha
        Butler–Volmer symmetry factor.
    strain
        Optional coherency-strain hook ``strain(c, neighbours) -> mu_el`` (kT).
    clip
        Initial and edge values are clipped into this range (noisy pixels outside
        (0, 1)); the residual compares with the unclipped data.
    subgrid
        Solver grid refinement: the model runs on ``subgrid x subgrid`` sub-pixels per
        pixel (:math:`\tilde\kappa` scaled accordingly; initial and edge values and
        :math:`\ln k` copied from the pixel) and is averaged onto the pixels for the
        residual. 1 (default): the data grid.
    damping_smoothing
        :math:`\epsilon` (1/h) of a smooth form of the time stepper's damping factor
        (:func:`operando.physics.reaction_allen_cahn`); 0 (default): the exact
        :math:`\max(0, -f_c)` switch, which leaves kinks in the objective (docs/parallel.md,
        HMC). A model option: a prediction must reuse it.
    smooth_initial
        Standard deviation (pixels) of a Gaussian blur of the interior of every
        half-cycle's first frame (the initial condition; mean kept), or ``"mean"``: the
        interior's measured mean exactly. 0 (default): the measured frame as in seed 002.
        For noisy data whose half-cycles start nearly uniform, ``"mean"`` (or a blur much
        wider than the particle) removes the pixel noise that would seed a different
        phase-separation mosaic; a 10 px blur of a ~490 px particle leaves enough of it to
        do so. It also applies to every segment start with multiple shooting unless
        ``smooth_segments`` is given.
    smooth_segments
        Blur (pixels) of the segment starts of the multiple-shooting stages (continuation
        and the first stage of ``shooting="both"``), which are mid-half-cycle,
        phase-separated frames; ``None`` (default): ``smooth_initial``. A light blur
        (1-1.5 px at ``sigma_e = 0.07``) keeps the mosaic of the segment starts but damps
        the noise that multiple shooting would otherwise amplify; single shooting then
        fits the raw frames. The noisy-data recipe (docs/kinetics.md "Noisy data") runs
        :func:`learn_kinetics_multistart` over several blurs with ``smooth_initial=10``,
        ``continuation=(2, 4)``, ``rho2 = sigma_e**2`` and ``max_iter_single=200``.
    rtol
        Relative tolerance of the optimiser.
    params0
        Initial parameters ``{"mu", "j0", "Z"}``, e.g. a previous fit's
        :attr:`KineticsFit.params` (or the fit itself) for a warm start. Default:
        binodal-constrained regular solution :math:`\mu_h`, constant :math:`j_0` (the median
        measured rate), :math:`Z = 0`.
    fixed_global
        ``{"mu": ..., "j0": ...}`` (e.g. a previous fit's params): keep :math:`\mu_h`
        and :math:`j_0` fixed and fit only the particles' ``Z_i`` (independent fits, each
        with its own damping; used for cross-validation over particles). ``ln k`` is then
        not re-centred (its level is set relative to the given :math:`j_0`).
    shooting
        ``"both"`` (default): first multiple shooting (every frame interval started from
        its measured frame, a wide basin of convergence), then single shooting (every
        half-cycle from its first frame, seed 002's formulation) from that optimum;
        ``"single"`` or ``"multiple"`` alone. ``max_iter`` applies to each stage.
    continuation
        Lower degrees of :math:`\ln j_0` fitted first, in increasing order, each by
        multiple shooting from the previous optimum (coefficients zero-padded), before the
        fit at ``degree_j0``; e.g. ``(2, 4)``. From the default initial guess a
        high-degree :math:`\ln j_0` can take a first step into a poor basin (on the demo's
        clean particles, degree 8 alone: ``j0_rel_rmse`` 0.64; after 2 and 4: 0.055).
        Default: none (seed 002's single fit). Degrees below that of ``params0`` are
        skipped (a warm start needs no continuation).
    callback
        Progress callback (:class:`~operando.inverse.IterationInfo`).
    throw
        Raise :class:`~operando.errors.ConvergenceError` unless the fit converged.

    Returns
    -------
    KineticsFit
    """
    t0 = time.perf_counter()
    if shooting not in ("single", "multiple", "both"):
        raise ParameterError(
            f"shooting is {shooting!r}", where="learn_kinetics",
            fix="'both' (default), 'single' or 'multiple'",
        )  # fmt: skip
    opts = dict(
        rho2=rho2, rho1=rho1, degree_mu=degree_mu, degree_j0=degree_j0, max_iter=max_iter,
        n_kl=n_kl, corr_length=corr_length, sigma_psi=sigma_psi, sigma_psi0=sigma_psi0,
        delta=delta, kappa=kappa, dt_max=dt_max, alpha=alpha, strain=strain, clip=clip,
        subgrid=subgrid, smooth_initial=smooth_initial, smooth_segments=smooth_segments,
        damping_smoothing=damping_smoothing,
    )  # fmt: skip
    if max_iter_single is not None and int(max_iter_single) < 1:
        raise ParameterError(
            f"max_iter_single is {max_iter_single}", where="learn_kinetics", fix="pass >= 1"
        )
    fixed = fixed_global is not None
    degrees = [int(d) for d in continuation]
    if degrees and (
        fixed
        or any(d < 1 for d in degrees)
        or degrees != sorted(set(degrees))
        or degrees[-1] >= int(degree_j0)
    ):
        raise ParameterError(
            f"continuation {degrees} with degree_j0 {degree_j0}"
            + (" and fixed_global" if fixed else ""),
            where="learn_kinetics",
            fix="increasing degrees >= 1 below degree_j0, without fixed_global",
        )
    stages: list[dict[str, Any]] = []
    plan = {"both": ["multiple", "single"], "multiple": ["multiple"], "single": ["single"]}
    cur = params0
    for d in degrees:
        if cur is not None and np.size(getattr(cur, "params", cur)["j0"]) > d + 1:
            continue  # a warm start of higher degree: nothing to continue from
        S = kinetics_setup(
            data, params0=_pad_j0(cur, d), shooting="multiple", **{**opts, "degree_j0": d}
        )
        res, cur = _run_stage(
            S, rho1=rho1, rho2=rho2, fixed=False, max_iter=max_iter, rtol=rtol,
            callback=callback,
        )  # fmt: skip
        stages.append({"shooting": "multiple", "degree_j0": d, **res.summary()})
    if degrees:
        cur = _pad_j0(cur, int(degree_j0))
    for stage in plan[shooting]:
        S = kinetics_setup(data, params0=cur, shooting=stage, **opts)
        if fixed:
            S.p0 = _fixed_global_params(fixed_global, S.p0)
        n_iter = max_iter if stage == "multiple" or max_iter_single is None else max_iter_single
        res, cur = _run_stage(
            S, rho1=rho1, rho2=rho2, fixed=fixed, max_iter=int(n_iter), rtol=rtol,
            callback=callback,
        )  # fmt: skip
        stages.append({"shooting": stage, **res.summary()})
    prob, model = S.prob, S.model
    arrays, n_p, delta, kappa, n_sub = S.arrays, S.n_p, S.delta, S.kappa, S.n_sub
    params = cur if fixed else model.gauge(cur, arrays)
    pj = {k: jnp.asarray(v) for k, v in params.items()}
    pred = S.lists_to_box(np.asarray(jax.jit(S.predict)(pj)))
    w = prob.weights > 0
    r_all = (pred - prob.targets)[w]
    metrics: dict[str, float] = {"train_rmse": float(np.sqrt(np.mean(r_all**2)))}

    c_grid = np.linspace(0.01, 0.99, 99)
    cg = jnp.asarray(c_grid)
    mu_vals = np.asarray(model.mu_h(cg, pj))
    lnj = np.asarray(model.log_j0(cg, pj))
    cov = res.covariance
    finite_cov = bool(np.all(np.isfinite(cov)))

    def _std(fn: Callable[[Any], jax.Array], shape: tuple[int, ...]) -> np.ndarray:
        if not finite_cov:
            return np.full(shape, np.nan)
        return np.sqrt(np.clip(propagate_covariance(fn, pj, cov), 0.0, None)).reshape(shape)

    if fixed:
        lk_fn = lambda p: model.psi(p["Z"], arrays["modes"], arrays["interior"])  # noqa: E731
        lnj_fn = lambda p: model.log_j0(cg, p)  # noqa: E731
    else:
        lk_fn = lambda p: model.log_k(p["Z"], arrays["modes"], arrays["interior"])  # noqa: E731
        lnj_fn = lambda p: model.log_j0_gauged(cg, p, arrays)  # noqa: E731
    mu_std = _std(lambda p: model.mu_h(cg, p), c_grid.shape)
    lnj_std = _std(lnj_fn, c_grid.shape)
    lk_l = np.asarray(lk_fn(pj))
    lk_std_l = _std(lk_fn, lk_l.shape)
    ok, pix = S.ok, S.pix
    ln_k = np.stack([S.to_box(lk_l[p][ok[p]], pix[p][ok[p]]) for p in range(n_p)])
    ln_k = np.where(prob.interior, ln_k, np.nan)
    ln_k_std = np.stack([S.to_box(lk_std_l[p][ok[p]], pix[p][ok[p]]) for p in range(n_p)])
    ln_k_std = np.where(prob.interior, ln_k_std, np.nan)
    truth = get_truth(data)
    mu_true = j0_true = lnk_true = None
    if truth is not None:
        fns = truth.functions
        metrics.update(
            kinetics_errors(
                lambda c: np.asarray(model.mu_h(jnp.asarray(c), pj)),
                lambda c: np.exp(np.asarray(model.log_j0(jnp.asarray(c), pj))),
                fns,
            )
        )
        if "mu_h" in fns:
            mu_true = np.interp(c_grid, *fns["mu_h"])
        if "j0" in fns:
            j0_true = np.interp(c_grid, *fns["j0"])
        if "truth_ln_k" in data:
            lnk_true = np.where(prob.interior, np.asarray(data["truth_ln_k"].values), np.nan)
            metrics["lnk_corr"] = pixel_correlation(ln_k, lnk_true, mask=prob.interior)
        if truth.clean is not None and truth.clean.dims == data["images"].dims:
            clean = np.asarray(truth.clean.values, dtype=float)
            clean = clean if clean.ndim == 4 else clean[None]
            if clean.shape == pred.shape:  # (not for the segments of shooting="multiple")
                metrics["train_rmse_clean"] = float(np.sqrt(np.mean((pred - clean)[w] ** 2)))
    shown = prob.masks[prob.particle_of][:, None] & prob.valid[:, :, None, None]
    predicted = np.where(shown, pred, np.nan)
    measured = np.where(shown, prob.targets, np.nan)
    settings = {
        "rho1": float(rho1), "rho2": float(rho2), "degree_mu": int(degree_mu),
        "degree_j0": int(degree_j0), "max_iter": int(max_iter),
        "max_iter_single": None if max_iter_single is None else int(max_iter_single),
        "n_kl": int(n_kl),
        "corr_length": float(corr_length), "sigma_psi": float(sigma_psi),
        "sigma_psi0": float(sigma_psi0), "delta": float(delta), "kappa_tilde": float(kappa),
        "dt_max": float(dt_max), "n_sub": int(n_sub),
        "step_groups": [[int(n), int(f), len(i)] for n, f, i in S.groups],
        "alpha": float(alpha),
        "strain": strain is not None, "clip": list(clip), "subgrid": int(subgrid),
        "damping_smoothing": float(damping_smoothing),
        "smooth_initial": _blur_setting(smooth_initial),
        "smooth_segments": _blur_setting(smooth_segments),
        "fixed_global": fixed, "n_particles": int(n_p),
        "n_half_cycles": int(prob.frames.shape[0]), "n_residuals": int(S.n_residuals),
        "time_unit": "h", "shooting": shooting, "continuation": degrees, "stages": stages,
        "iterations": int(sum(st["iterations"] for st in stages)),
        "wall_s": time.perf_counter() - t0,
    }  # fmt: skip
    fit = KineticsFit(
        params=params, c_grid=c_grid, mu=mu_vals, mu_std=mu_std, j0=np.exp(lnj),
        j0_std=np.exp(lnj) * lnj_std, ln_j0_std=lnj_std, mu_true=mu_true, j0_true=j0_true,
        ln_k=ln_k, ln_k_std=ln_k_std, ln_k_true=lnk_true, predicted=predicted,
        measured=measured, metrics=metrics, result=res, settings=settings, problem=prob,
        model=model,
    )  # fmt: skip
    if throw and not fit.success:
        raise ConvergenceError(
            f"learning failed ({res.status.value}): {res.message}",
            where="learn_kinetics",
            fix="increase max_iter, reduce dt_max, or increase rho2",
        )
    return fit


#: Options a start of :func:`learn_kinetics_multistart` may vary: they change the path to
#: the single-shooting optimum, not the objective, so the final costs are comparable.
MULTISTART_OPTIONS = (
    "smooth_segments", "continuation", "params0", "max_iter", "max_iter_single", "rtol",
)  # fmt: skip


def learn_kinetics_multistart(
    data: xr.Dataset,
    starts: Sequence[dict[str, Any]],
    *,
    throw: bool = False,
    **options: Any,
) -> KineticsFit:
    r"""Several :func:`learn_kinetics` fits along different paths; the lowest objective wins.

    The single-shooting objective of the LFP model is rugged far from its optimum (the
    pixel-scale phase separation makes the mosaic, and so the residual, sensitive to every
    parameter), so a local optimiser's result depends on the path that leads to it (seed
    002 "Identifiability" runs its optimiser from different initial guesses for the same
    reason). Each start overrides some of ``options`` with values that change the path but
    not the final objective (``MULTISTART_OPTIONS``: the blur of the multiple-shooting
    segment starts, the degree continuation, the initial guess, the iteration budget);
    every fit must end with single shooting (``shooting`` ``"both"`` or ``"single"``), and
    the fit of lowest final cost (data misfit plus prior) is returned.

    Parameters
    ----------
    data
        Particle-video dataset, as for :func:`learn_kinetics`.
    starts
        One dict of option overrides per start, e.g.
        ``[{"smooth_segments": s} for s in (1.0, 1.5, 2.0)]``.
    throw
        Raise :class:`~operando.errors.ConvergenceError` unless the chosen fit converged.
    **options
        Options of :func:`learn_kinetics` shared by all starts.

    Returns
    -------
    KineticsFit
        The chosen fit; ``settings["multistart"]`` lists every start (its overrides, final
        cost, train RMSE and status), ``settings["chosen_start"]`` its index;
        ``settings["iterations"]`` and ``settings["wall_s"]`` cover all starts.
    """
    import dataclasses

    t0 = time.perf_counter()
    starts = list(starts)
    if not starts:
        raise ParameterError("no starts", where="learn_kinetics_multistart", fix="pass >= 1")
    if options.get("shooting", "both") == "multiple":
        raise ParameterError(
            "shooting='multiple' ends on a different objective for every start",
            where="learn_kinetics_multistart", fix="use 'both' (default) or 'single'",
        )  # fmt: skip
    for i, st in enumerate(starts):
        bad = set(st) - set(MULTISTART_OPTIONS) if isinstance(st, dict) else {"(not a dict)"}
        if bad:
            raise ParameterError(
                f"start {i} sets {sorted(bad)}, which would change the objective",
                where="learn_kinetics_multistart: starts",
                fix=f"vary only {', '.join(MULTISTART_OPTIONS)}; pass the others once",
            )
    fits: list[KineticsFit] = []
    record: list[dict[str, Any]] = []
    for i, st in enumerate(starts):
        fit = learn_kinetics(data, **{**options, **st})
        cost = float(fit.result.cost) if fit.result is not None else float("nan")
        if fit.status is Status.FAILED or not np.isfinite(cost):
            cost = float("inf")
        fits.append(fit)
        shown = {k: "given" if k == "params0" else list(v) if isinstance(v, tuple) else v
                 for k, v in st.items()}  # fmt: skip
        record.append({
            "start": i, "options": shown, "cost": cost,
            "train_rmse": float(fit.metrics["train_rmse"]), "status": fit.status.value,
            "iterations": int(fit.settings["iterations"]),
        })  # fmt: skip
    best = int(np.argmin([r["cost"] for r in record]))
    fit = fits[best]
    settings = {
        **fit.settings, "multistart": record, "chosen_start": best,
        "iterations": int(sum(r["iterations"] for r in record)),
        "wall_s": time.perf_counter() - t0,
    }  # fmt: skip
    fit = dataclasses.replace(fit, settings=settings)
    if throw and not fit.success:
        raise ConvergenceError(
            f"the best of {len(starts)} starts did not converge ({fit.status.value})",
            where="learn_kinetics_multistart",
            fix="increase max_iter or add starts",
        )
    return fit


# ------------------------------------------------------------ held-out validation API


def _model_options(params: Any, options: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """Parameters and model options for a prediction (from a fit, params shapes, options)."""
    opts: dict[str, Any] = {}
    if isinstance(params, KineticsFit):
        st = params.settings
        for k in MODEL_OPTIONS:
            if k == "kappa":
                opts[k] = st.get("kappa_tilde")
            elif k == "clip" and "clip" in st:
                opts[k] = tuple(st["clip"])
            elif k in st and k != "strain":
                opts[k] = st[k]
        params = params.params
    if not isinstance(params, dict) or not {"mu", "j0", "Z"} <= set(params):
        raise ParameterError(
            "params must be a KineticsFit or a dict with 'mu', 'j0' and 'Z'",
            where="predict_kinetics: params",
        )
    opts.setdefault("degree_mu", int(np.size(params["mu"])) + 2)
    opts.setdefault("degree_j0", int(np.size(params["j0"])) - 1)
    opts.setdefault("n_kl", int(np.shape(params["Z"])[-1]) - 1)
    unknown = set(options) - set(MODEL_OPTIONS)
    if unknown:
        raise ParameterError(
            f"unknown model option(s) {sorted(unknown)}", where="predict_kinetics",
            fix=f"use {', '.join(MODEL_OPTIONS)}",
        )  # fmt: skip
    opts.update(options)
    return params, opts


def _predict(params: Any, data: xr.Dataset, options: dict[str, Any]):
    params, opts = _model_options(params, options)
    S = kinetics_setup(data, params0=params, shooting="single", **opts)
    pj = {k: jnp.asarray(v) for k, v in S.p0.items()}
    pred_l = np.asarray(jax.jit(S.predict)(pj))
    pred = S.lists_to_box(pred_l)
    shown = S.prob.masks[S.owner][:, None] & S.prob.valid[:, :, None, None]
    return np.where(shown, pred, np.nan), S


def predict_kinetics(params: Any, data: xr.Dataset, **model_options: Any) -> np.ndarray:
    """Model frames of every half-cycle of ``data`` for given parameters (held-out check).

    Every half-cycle is integrated from its measured first frame with its measured edge
    values and mean concentration, as in the fit (single shooting).

    Parameters
    ----------
    params
        A :class:`KineticsFit` (its model options are reused) or a dict
        ``{"mu", "j0", "Z"}`` whose ``Z`` has one row per particle of ``data``.
    data
        Particle-video dataset (may be a :func:`subset_half_cycles` /
        :func:`subset_particles` selection).
    **model_options
        Options of :func:`learn_kinetics` that define the model (``MODEL_OPTIONS``:
        ``degree_mu``, ``degree_j0``, ``n_kl`` are inferred from ``params``; the others
        must equal the fit's when ``params`` is a plain dict).

    Returns
    -------
    numpy.ndarray
        Shaped like ``data.images``; NaN outside the masks and in padding frames.
    """
    pred, _ = _predict(params, data, model_options)
    return pred if data["images"].ndim == 4 else pred[0]


def resimulate_kinetics(
    params: Any,
    data: xr.Dataset,
    *,
    sigma: float,
    seed: int,
    inputs: Literal["measured", "noisy"] = "measured",
    **model_options: Any,
) -> xr.Dataset:
    r"""A synthetic replicate of ``data`` drawn from a fitted model (parametric bootstrap).

    Every residual pixel of ``data`` (interior pixels of every valid frame except each
    half-cycle's first: the pixels of ``train_rmse``) is replaced by the model's
    prediction (:func:`predict_kinetics`) plus independent Gaussian noise
    :math:`\mathcal N(0, \sigma^2)`. What the model takes *as input* is kept as
    measured (with ``inputs="measured"``): each half-cycle's first frame (the initial
    condition), the edge pixels (the Dirichlet values); padding frames always. The mean
    concentration of a replicate (the ``d(cbar)/dt`` constraint) is that of its own
    frames, so it carries the noise of the replicate, as the measured one carries the
    measurement noise. Fitting many replicates gives the sampling distribution of the
    estimator when the model at ``params`` is the truth (Efron & Tibshirani, *An
    Introduction to the Bootstrap*, 1993, sec. 6.5), the remedy when there are too few
    particles to resample.

    Parameters
    ----------
    params
        A :class:`KineticsFit` or ``{"mu", "j0", "Z"}`` (see :func:`predict_kinetics`).
    data
        The particle-video dataset the parameters were fitted to.
    sigma
        Standard deviation of the pixel noise (e.g. the fit's ``train_rmse``), >= 0.
    seed
        Seed of the noise (NumPy ``default_rng``; one draw per pixel of ``images``).
    inputs
        ``"measured"``: only the residual pixels are redrawn (above; a replicate
        conditional on the measured inputs). ``"noisy"``: every mask pixel of every valid
        frame is, first frames (the model's initial frame, smoothed as the fit smooths it,
        plus noise) and edge pixels (the measured edges plus noise) included, so a fit of
        the replicate also sees noisy inputs, as the fit of the data did.
    **model_options
        Model options of the fit (:data:`MODEL_OPTIONS`), as for :func:`predict_kinetics`.

    Returns
    -------
    xarray.Dataset
        A copy of ``data`` with new ``images`` (same dtype) and a provenance step; the
        truth variables, masks and times are unchanged.

    Raises
    ------
    ParameterError
        ``sigma`` negative or not finite.
    ConvergenceError
        The model's prediction is not finite at a residual pixel (the forward solve
        failed at ``params``).
    """
    from ..data import add_provenance

    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma < 0:
        raise ParameterError(
            f"sigma = {sigma}", where="resimulate_kinetics", fix="use a finite sigma >= 0"
        )
    check_choice(inputs, ("measured", "noisy"), where="resimulate_kinetics", name="inputs")
    pred, S = _predict(params, data, model_options)
    w = S.prob.weights > 0
    if inputs == "noisy":
        w = np.isfinite(pred)  # every mask pixel of every valid frame
    if not np.all(np.isfinite(pred[w])):
        raise ConvergenceError(
            f"{int(np.sum(~np.isfinite(pred[w])))} non-finite model pixel(s)",
            where="resimulate_kinetics",
            fix="resimulate from a converged fit (the forward solve failed at params)",
        )
    img = data["images"]
    values = np.array(img.values, dtype=float, copy=True)
    box = values if values.ndim == 4 else values[None]
    noise = np.random.default_rng(int(seed)).standard_normal(box.shape)
    box[w] = pred[w] + sigma * noise[w]
    out = data.copy()
    out["images"] = img.copy(data=values.astype(img.dtype, copy=False))
    return add_provenance(out, "resimulate_kinetics", sigma=sigma, seed=int(seed), inputs=inputs)


def kinetics_rmse(params: Any, data: xr.Dataset, **model_options: Any) -> float:
    """RMS pixel error of :func:`predict_kinetics` over the residual pixels of ``data``.

    The pixels are those of the fit's ``train_rmse``: interior pixels of every valid frame
    except each half-cycle's first, against the (unclipped) data.
    """
    pred, S = _predict(params, data, model_options)
    w = S.prob.weights > 0
    return float(np.sqrt(np.mean((pred - S.prob.targets)[w] ** 2)))


def _particle_dims(ds: xr.Dataset) -> None:
    if "masks" not in ds or ds["images"].dims != ("realization", "t", "y", "x"):
        raise DataError(
            "expected images (realization, t, y, x) with particle_of and masks",
            where="subset: data",
            fix="see docs/kinetics.md for the particle-video layout",
        )
    if "particle_of" not in ds:
        raise DataError("no 'particle_of' variable", where="subset: data")


def subset_particles(data: xr.Dataset, indices: Any) -> xr.Dataset:
    """The particles ``indices`` of a particle-video dataset with all their half-cycles.

    ``indices`` may repeat (bootstrap resampling): every entry becomes a distinct
    particle (new index = position in ``indices``) with copies of its half-cycles.
    Variables along ``particle`` (masks, ``truth_ln_k``) and ``realization`` are selected
    accordingly. The ``ln k`` truth keeps its values (its mean over the subset need not
    be 0; correlations are unaffected).
    """
    from ..data import add_provenance

    _particle_dims(data)
    idx = np.asarray(indices, dtype=int).ravel()
    n_p = int(data.sizes["particle"])
    if idx.size == 0 or idx.min() < 0 or idx.max() >= n_p:
        raise ParameterError(
            f"particle indices must be non-empty and in 0..{n_p - 1}",
            where="subset_particles: indices",
        )
    pidx = np.asarray(data["particle_of"].values, dtype=int)
    rows = [np.flatnonzero(pidx == i) for i in idx]
    real = np.concatenate(rows)
    new_owner = np.concatenate([np.full(len(r), j) for j, r in enumerate(rows)])
    out = data.isel(particle=idx, realization=real)
    out = out.drop_vars([c for c in ("particle", "realization") if c in out.coords])
    out["particle_of"] = (("realization",), new_owner)
    return add_provenance(out, "subset_particles", indices=idx.tolist())


def subset_half_cycles(data: xr.Dataset, realizations: Any) -> xr.Dataset:
    """Only the half-cycles (realizations) ``realizations``; all particles are kept.

    Particle indices (and so the rows of a fit's ``Z``) are unchanged, so parameters
    fitted on one selection predict another (cross-validation over half-cycles).
    """
    from ..data import add_provenance

    _particle_dims(data)
    idx = np.asarray(realizations, dtype=int).ravel()
    n_r = int(data.sizes["realization"])
    if idx.size == 0 or idx.min() < 0 or idx.max() >= n_r:
        raise ParameterError(
            f"realization indices must be non-empty and in 0..{n_r - 1}",
            where="subset_half_cycles: realizations",
        )
    out = data.isel(realization=idx)
    if "realization" in out.coords:
        out = out.drop_vars("realization")
    return add_provenance(out, "subset_half_cycles", realizations=idx.tolist())
