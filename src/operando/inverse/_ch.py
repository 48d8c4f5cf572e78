r"""Learn :math:`\mu_h(c)` and :math:`D(c)` of the Cahn–Hilliard equation from image snapshots.

Model (seed 000, Eq. 1 and S2.1), on a periodic grid:

.. math::

    \partial_t c = \nabla\cdot\bigl(D(c)\,c\,\nabla\mu\bigr), \qquad
    \mu = \mu_h(c) - \kappa\nabla^2 c,

with :math:`\kappa` known, :math:`\mu_h` a :class:`~operando.physics.LegendreChemicalPotential`
(with or without the entropy prior) and :math:`D` a
:class:`~operando.physics.LegendreLogDiffusivity`.

Multiple shooting
-----------------
``K`` snapshots :math:`S_0, \dots, S_{K-1}` at times :math:`t_0 < \dots < t_{K-1}` are taken
from the coarsening part of the series. For every interval :math:`k` the forward model
:func:`operando.pde.solve_ch` is started from the *measured* frame :math:`S_k` and run to
:math:`t_{k+1}`; the residual is :math:`r_k = \hat c(t_{k+1}; S_k, p) - S_{k+1}` for all
pixels of all :math:`K - 1` intervals jointly (without the Nyquist mode, which the
spectral solver does not evolve physically). Starting each interval from data keeps the
residual a nearly linear function of the parameters (no long, chaotic trajectories), and
the intervals are independent, so they are batched with ``jax.vmap``.

To batch intervals of *different* lengths :math:`T_k = t_{k+1} - t_k` in one ``vmap``, each
interval is integrated over unit time with the diffusivity multiplied by :math:`T_k`
(the equation is autonomous: :math:`s = (t - t_k)/T_k` gives
:math:`\partial_s c = \nabla\cdot(T_k D\,c\,\nabla\mu)`). Every interval then takes the same
number of steps ``n = ceil(max_k T_k / dt)``, i.e. a physical step :math:`T_k/n \le dt`.

Objective: :math:`\frac{1}{2}\,\mathrm{MSE} + \frac{\lambda}{2}\sum_n w_n p_n^2` (residuals
scaled by :math:`1/\sqrt{m}`, ``m`` pixels in all intervals; ``w_n`` a smoothness prior,
:func:`smoothness_weights`), minimised by
:func:`~operando.inverse.least_squares` (Levenberg–Marquardt, forward-mode Jacobian through
the solver).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..config import require_x64
from ..data import get_truth, validate_dataset
from ..errors import DataError, ParameterError
from ..physics import LegendreChemicalPotential, LegendreLogDiffusivity
from ._least_squares import LeastSquaresResult, Status, least_squares, propagate_covariance

__all__ = [
    "CHFit",
    "ch_function_errors",
    "coarsening_onset",
    "learn_ch",
    "select_snapshots",
    "smoothness_weights",
]

#: Range on which ``mu_rmse`` and ``D_rmse`` are computed (the paper notes that D is poorly
#: identified near c = 0, where the mobility D(c) c vanishes).
METRIC_RANGE = (0.1, 0.9)
#: Range of the ``*_full`` metrics.
FULL_RANGE = (0.01, 0.99)
#: Clip range for noisy data (seed 000, S2.1).
CLIP_RANGE = (0.01, 0.99)


# ------------------------------------------------------------------ solver adapters


class _IntervalMu(eqx.Module):
    """``mu_h`` for one shooting interval: reads ``params["theta"]``."""

    inner: LegendreChemicalPotential = eqx.field(static=True)

    def __call__(self, c: jax.Array, params: Any) -> jax.Array:
        return self.inner(c, params["theta"])


class _IntervalD(eqx.Module):
    """``D`` for one shooting interval in unit time: ``T_k * D(c)``."""

    inner: LegendreLogDiffusivity = eqx.field(static=True)

    def __call__(self, c: jax.Array, params: Any) -> jax.Array:
        return params["T"] * self.inner(c, params["theta"])


# ----------------------------------------------------------------------- snapshots


#: Coarsening onset: the first frame whose spatial standard deviation reaches this fraction
#: of its maximum over the series (the interfaces have formed).
ONSET_FRACTION = 0.75


def coarsening_onset(frames: np.ndarray) -> int:
    """Index of the first frame of the coarsening regime.

    Spinodal decomposition grows the spatial standard deviation of ``c`` from the small
    initial noise to nearly its two-phase value; afterwards coarsening only sharpens and
    enlarges domains, so the standard deviation creeps up slowly. The onset is the first
    frame whose standard deviation reaches ``ONSET_FRACTION = 0.75`` of the maximum over
    the series (0.9 would land late in coarsening on series whose std keeps creeping).

    Parameters
    ----------
    frames
        Image series ``(t, y, x)``.
    """
    std = np.asarray(frames, dtype=float).reshape(frames.shape[0], -1).std(axis=1)
    return int(np.argmax(std >= ONSET_FRACTION * std.max()))


def select_snapshots(
    frames: np.ndarray,
    snapshots: int = 7,
    *,
    stride: int | None = None,
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """Frame indices of ``snapshots`` evenly spaced frames in the coarsening regime.

    Default rule: start at the coarsening onset ``i0`` (:func:`coarsening_onset`) and take
    every ``stride``-th frame, ``stride = ceil(i0 / 2)`` (half the time the pattern took to
    phase-separate: each interval then changes the field appreciably without taking the
    forward model far from its measured start). If that runs past the end of the series,
    the snapshots are spread evenly from ``i0`` to the last frame instead.

    Why early coarsening: once the interfaces are sharp, coarsening is controlled by bulk
    diffusion at the two binodal compositions, and the interfaces sit at local
    equilibrium; the images then determine ``mu_h(c)`` (through the interface profiles)
    and ``D`` at the binodals, but barely ``D`` at intermediate ``c``. Just after
    phase separation the field still passes through intermediate compositions out of
    equilibrium, which is what makes ``D(c)`` on ``[0.1, 0.9]`` identifiable.

    Parameters
    ----------
    frames
        Image series ``(t, y, x)``.
    snapshots
        Number ``K >= 2`` of snapshots.
    stride
        Frames between snapshots (overrides the default rule's stride).
    window
        ``(lo, hi)`` fractions of the frame-index range: instead of the rule, spread the
        snapshots evenly over ``[lo, hi] * (n_frames - 1)``.

    Raises
    ------
    DataError
        Fewer frames than ``snapshots`` after the onset (or in the window).
    """
    if snapshots < 2:
        raise ParameterError(
            f"snapshots is {snapshots}; multiple shooting needs at least 2",
            where="learn_ch: snapshots",
            fix="pass snapshots >= 2 (the paper uses 7)",
        )
    n_frames = int(frames.shape[0])
    if window is not None:
        lo, hi = float(window[0]), float(window[1])
        if not (0.0 <= lo < hi <= 1.0):
            raise ParameterError(
                f"window {window} is not a sub-interval of [0, 1]",
                where="learn_ch: window",
                fix="pass fractions of the series, e.g. (0.5, 1.0) for its second half",
            )
        first = round(lo * (n_frames - 1))
        last = round(hi * (n_frames - 1))
        what = f"in the window {window}"
    else:
        first = coarsening_onset(frames)
        last = n_frames - 1
        what = f"from the coarsening onset (frame {first}) on"
    if last - first + 1 < snapshots:
        raise DataError(
            f"{n_frames} frames give only {last - first + 1} {what}, fewer than "
            f"snapshots={snapshots}",
            where="learn_ch: data",
            fix="request fewer snapshots, pass times= explicitly, or use a longer series",
        )
    if window is None:
        step = 1 if stride is None else int(stride)
        if step < 1:
            raise ParameterError(f"stride is {stride}", where="learn_ch: stride", fix="pass >= 1")
        if first + step * (snapshots - 1) <= last:
            return first + step * np.arange(snapshots)
    return np.rint(np.linspace(first, last, snapshots)).astype(int)


def _indices_for_times(t: np.ndarray, times: Sequence[float]) -> np.ndarray:
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size < 2:
        raise ParameterError(
            f"times has shape {times.shape}; expected at least 2 snapshot times",
            where="learn_ch: times",
        )
    span = float(t[-1] - t[0]) if t.size > 1 else 1.0
    idx = np.array([int(np.argmin(np.abs(t - v))) for v in times])
    bad = [float(v) for v, i in zip(times, idx, strict=True) if abs(t[i] - v) > 1e-9 * span]
    if bad:
        raise DataError(
            f"times {bad} are not frame times of the data",
            where="learn_ch: times",
            fix="pass values of the data's 't' coordinate",
        )
    if np.any(np.diff(idx) <= 0):
        raise ParameterError("times must be strictly increasing", where="learn_ch: times")
    return idx


def _check_periodic(frames: np.ndarray, where: str) -> None:
    """Heuristic: the wrap-around jumps of a periodic field look like interior jumps."""
    for axis, name in ((-1, "x"), (-2, "y")):
        interior = np.mean(np.abs(np.diff(frames, axis=axis)))
        wrap = np.mean(np.abs(np.take(frames, 0, axis=axis) - np.take(frames, -1, axis=axis)))
        if interior > 0 and wrap > 4.0 * interior:
            raise DataError(
                f"the images are not periodic along {name}: the mean jump across the "
                f"boundary ({wrap:.3g}) is {wrap / interior:.1f}x the mean jump between "
                "neighbouring pixels",
                where=where,
                fix="the Cahn–Hilliard model is periodic: crop to a periodic region, or "
                "pass check_periodic=False if you know the field is periodic",
            )


# ------------------------------------------------------------------------ metrics


def ch_function_errors(
    mu_fn: Any,
    D_fn: Any,
    truth: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    n: int = 401,
) -> dict[str, float]:
    """RMS errors of learned laws against true ones sampled on a grid.

    ``mu_rmse``: RMS of ``mu_learned - mu_true - mean(mu_learned - mu_true)`` on
    ``c in [0.1, 0.9]`` (the constant is unidentifiable and removed); ``D_rmse``: RMS of
    ``D_learned - D_true`` on ``[0.1, 0.9]``; ``mu_rmse_full``, ``D_rmse_full``: the same on
    ``[0.01, 0.99]``. Each on ``n`` equispaced points; the truth is linearly interpolated
    from its grid. A metric whose range the truth grid does not cover is omitted.

    Parameters
    ----------
    mu_fn, D_fn
        Vectorised learned laws ``c -> values``.
    truth
        ``{"mu_h": (grid, values), "D": (grid, values)}`` (:attr:`operando.data.Truth.functions`).
    """
    out: dict[str, float] = {}
    for suffix, (lo, hi) in (("", METRIC_RANGE), ("_full", FULL_RANGE)):
        c = np.linspace(lo, hi, n)
        if "mu_h" in truth:
            g, v = (np.asarray(a, dtype=float) for a in truth["mu_h"])
            if g.min() <= lo + 1e-12 and g.max() >= hi - 1e-12:
                d = np.asarray(mu_fn(c), dtype=float) - np.interp(c, g, v)
                out[f"mu_rmse{suffix}"] = float(np.sqrt(np.mean((d - d.mean()) ** 2)))
        if "D" in truth:
            g, v = (np.asarray(a, dtype=float) for a in truth["D"])
            if g.min() <= lo + 1e-12 and g.max() >= hi - 1e-12:
                d = np.asarray(D_fn(c), dtype=float) - np.interp(c, g, v)
                out[f"D_rmse{suffix}"] = float(np.sqrt(np.mean(d**2)))
    return out


# ---------------------------------------------------------------------------- fit


@dataclass(frozen=True)
class CHFit:
    """Result of :func:`learn_ch`. Failure is a value: check :attr:`status`.

    Attributes
    ----------
    mu_coefficients
        ``a_1 .. a_N`` of :math:`\\mu_h`, shape ``(N,)``.
    D_coefficients
        ``b_0 .. b_N`` of :math:`\\ln D`, shape ``(N + 1,)``.
    mu_law, D_law
        The parameterisations (callables ``law(c, params)``).
    c_grid
        Concentrations on which the learned laws are tabulated, ``[0.01, 0.99]``.
    mu, mu_std
        Learned :math:`\\mu_h` on ``c_grid`` and its linearised 1-sigma uncertainty. The
        additive constant is arbitrary; when truth is present ``mu`` is shifted to match
        the truth on ``[0.1, 0.9]`` on average (the ``mu_rmse`` convention).
    D, D_std
        Learned :math:`D` and its linearised 1-sigma uncertainty (``D * std(ln D)``).
    mu_true, D_true
        Truth interpolated on ``c_grid`` (``None`` without truth).
    snapshot_indices, snapshot_times
        Frames used as snapshots.
    measured
        Snapshots, ``(K, y, x)``.
    predicted
        Model prediction at snapshots ``1 .. K-1``, each from the previous measured one,
        ``(K - 1, y, x)``; for even sizes the Nyquist row/column is the measured one
        (the solver does not evolve that mode physically, so it is left out of the
        residual, see ``_drop_nyquist``).
    metrics
        ``final_mse`` (mean squared pixel misfit ``predicted - measured`` over all
        intervals, Nyquist mode excluded, i.e. the fitted residual) and, with truth,
        ``mu_rmse``, ``D_rmse``, ``mu_rmse_full``, ``D_rmse_full`` (see
        :func:`ch_function_errors`) and ``final_mse_clean`` (fit vs the clean truth
        images).
    result
        The :class:`~operando.inverse.LeastSquaresResult`.
    settings
        The resolved options (degree, prior, kappa, length, dt, ...).
    timings
        ``init_s`` (initial grid search, including compilation when not cached),
        ``compile_s`` (all compilation: residual and Jacobian), ``solve_s`` (the
        Levenberg–Marquardt iterations), ``total_s``.
    """

    mu_coefficients: np.ndarray
    D_coefficients: np.ndarray
    mu_law: LegendreChemicalPotential
    D_law: LegendreLogDiffusivity
    c_grid: np.ndarray
    mu: np.ndarray
    mu_std: np.ndarray
    D: np.ndarray
    D_std: np.ndarray
    mu_true: np.ndarray | None
    D_true: np.ndarray | None
    snapshot_indices: np.ndarray
    snapshot_times: np.ndarray
    measured: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    metrics: dict[str, float]
    result: LeastSquaresResult = field(repr=False)
    settings: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        """Status of the least-squares solve."""
        return self.result.status

    @property
    def success(self) -> bool:
        """Whether the fit converged."""
        return self.result.success

    @property
    def params(self) -> dict[str, np.ndarray]:
        """``{"mu": a, "D": b}``, the parameter pytree the laws read."""
        return {"mu": self.mu_coefficients, "D": self.D_coefficients}

    def mu_h(self, c: Any) -> np.ndarray:
        """Learned :math:`\\mu_h(c)` (raw, without the display shift)."""
        return np.asarray(self.mu_law(jnp.asarray(c), self.params))

    def diffusivity(self, c: Any) -> np.ndarray:
        """Learned :math:`D(c)`."""
        return np.asarray(self.D_law(jnp.asarray(c), self.params))

    def to_dataset(self) -> xr.Dataset:
        """The fit as an operando dataset.

        ``images`` are the measured snapshots ``(t, y, x)`` (``t`` = snapshot times);
        ``predicted`` has the same dims (NaN for the first snapshot, which starts the first
        interval); the coefficients, the learned laws on ``c`` (with 1-sigma bands), the
        truth when known and the cost history are extra variables.
        """
        from ..data import make_dataset

        ny, nx = self.measured.shape[-2:]
        pred = np.concatenate([np.full((1, ny, nx), np.nan), self.predicted], axis=0)
        ds = make_dataset(
            self.measured,
            dims=("t", "y", "x"),
            coords={"t": self.snapshot_times},
            pixel_size=float(self.settings["length"]) / nx,
            pixel_unit="1",
            source="CHFit",
        )
        ds["predicted"] = (("t", "y", "x"), pred)
        ds["predicted"].attrs["description"] = (
            "prediction of snapshot k from measured snapshot k-1 (multiple shooting); "
            "NaN for the first snapshot"
        )
        ds["snapshot_index"] = (("t",), self.snapshot_indices)
        ds = ds.assign_coords(
            c=("c", self.c_grid),
            mu_degree=("mu_degree", np.arange(1, self.mu_coefficients.size + 1)),
            D_degree=("D_degree", np.arange(self.D_coefficients.size)),
        )
        ds["mu_coefficients"] = (("mu_degree",), self.mu_coefficients)
        ds["D_coefficients"] = (("D_degree",), self.D_coefficients)
        ds["mu_h"] = (("c",), self.mu)
        ds["mu_h_std"] = (("c",), self.mu_std)
        ds["D"] = (("c",), self.D)
        ds["D_std"] = (("c",), self.D_std)
        if self.mu_true is not None:
            ds["mu_h_true"] = (("c",), self.mu_true)
        if self.D_true is not None:
            ds["D_true"] = (("c",), self.D_true)
        ds["cost_history"] = (("iteration",), self.result.cost_history)
        ds["mu_h"].attrs["description"] = (
            "learned homogeneous chemical potential (additive constant arbitrary; shifted to "
            "the truth on [0.1, 0.9] when truth is known)"
        )
        ds["mu_coefficients"].attrs["description"] = (
            "a_n of mu_h, n = 1..N (P_n orthonormal on [0,1])"
        )
        ds["D_coefficients"].attrs["description"] = "b_n of ln D, n = 0..N"
        ds.attrs.update(
            {
                "status": self.status.value,
                "message": self.result.message,
                "basis": "orthonormal shifted Legendre polynomials on [0, 1]",
                "prior": int(self.settings["prior"]),
                **{
                    k: v
                    for k, v in self.settings.items()
                    if isinstance(v, int | float | str) and not isinstance(v, bool)
                },
            }
        )
        return ds


def _select_series(data: Any, realization: int, where: str) -> tuple[np.ndarray, np.ndarray, Any]:
    """``(frames (t, y, x), times, dataset or None)``."""
    if isinstance(data, xr.Dataset):
        ds = validate_dataset(data, source=where)
        img = ds["images"]
        if "realization" in img.dims:
            n_r = img.sizes["realization"]
            if not (0 <= realization < n_r):
                raise ParameterError(
                    f"realization {realization} is out of range; the data hold {n_r}",
                    where=f"{where}: realization",
                    fix=f"pass 0 <= realization < {n_r}",
                )
            img = img.isel(realization=realization)
        extra = [d for d in img.dims if d not in ("t", "y", "x")]
        if extra or "t" not in img.dims:
            raise DataError(
                f"images have dims {img.dims}; learning needs an image series (t, y, x)",
                where=where,
                fix="select one energy/channel first, or pass a (t, y, x) series",
            )
        return np.asarray(img.values, dtype=float), np.asarray(ds["t"].values, float), ds
    raise DataError(
        f"expected an operando dataset (xarray.Dataset), got {type(data).__name__}",
        where=where,
        fix="build one with operando.data.image_series(frames, times)",
    )


class _CHProblem(eqx.Module):
    """Static description of a multiple-shooting problem (hashable: compiled once)."""

    mu_h: _IntervalMu = eqx.field(static=True)
    D: _IntervalD = eqx.field(static=True)
    kappa: float = eqx.field(static=True)
    length: float = eqx.field(static=True)
    n_sub: int = eqx.field(static=True)
    weight: float = eqx.field(static=True)

    def predict(self, theta: Any, starts: jax.Array, widths: jax.Array) -> jax.Array:
        """Prediction of each interval's end from its start, ``(K-1, y, x)``."""
        from ..pde import solve_ch

        t_unit = np.array([1.0])

        def one(c0: jax.Array, w: jax.Array) -> jax.Array:
            out = solve_ch(
                c0,
                t_unit,
                {"theta": theta, "T": w},
                mu_h=self.mu_h,
                D=self.D,
                kappa=self.kappa,
                length=self.length,
                dt=1.0 / self.n_sub,
            )
            return out[-1]

        return jax.vmap(one)(starts, widths)


def _drop_nyquist(r: jax.Array) -> jax.Array:
    """Remove the Nyquist row/column (even sizes) of fields ``(..., y, x)``.

    :func:`operando.pde.solve_ch` drops the Nyquist mode from first derivatives, so the
    model does not evolve that mode physically: a run restarted from a measured frame and
    the uninterrupted run that produced the data differ there by a checkerboard that no
    constitutive law can fit. Comparing without it removes that floor.
    """
    ny, nx = r.shape[-2:]
    if ny % 2 and nx % 2:
        return r
    rh = jnp.fft.rfft2(r)
    if ny % 2 == 0:
        rh = rh.at[..., ny // 2, :].set(0.0)
    if nx % 2 == 0:
        rh = rh.at[..., :, nx // 2].set(0.0)
    return jnp.fft.irfft2(rh, s=(ny, nx))


def _ch_residual(theta: Any, args: tuple[Any, ...]) -> jax.Array:
    """Scaled multiple-shooting residual ``(predicted - measured) / sqrt(m)``."""
    starts, targets, widths, problem = args
    return _drop_nyquist(problem.predict(theta, starts, widths) - targets) * problem.weight


def smoothness_weights(degree: int, lam: float) -> dict[str, np.ndarray]:
    """L2 weights ``lam * max(1, n(n+1))^2`` for ``{"mu": a_1..a_N, "D": b_0..b_N}``.

    ``n(n+1)`` is the eigenvalue of the Legendre operator ``d/dx((1 - x^2) d/dx)`` on
    ``P_n``, so ``sum_n (n(n+1))^2 p_n^2`` is the squared L2 norm of that second-order
    differential operator applied to the expanded function: a curvature (Sobolev-type)
    penalty that leaves constants and low orders nearly free and damps the high orders
    the images constrain weakly. Equivalent to a Gaussian prior whose standard deviation
    falls like ``1 / n^2``.
    """
    n_mu = np.arange(1, degree + 1, dtype=float)
    n_d = np.arange(0, degree + 1, dtype=float)
    return {
        "mu": lam * np.maximum(1.0, n_mu * (n_mu + 1)) ** 2,
        "D": lam * np.maximum(1.0, n_d * (n_d + 1)) ** 2,
    }


#: Relative tolerance of the intermediate (lower-degree) stages: they only warm-start the next.
_STAGE_RTOL = 1e-4


def _continuation_degrees(degree: int, continuation: Any) -> list[int]:
    """Degrees of the coarse-to-fine stages ending at ``degree``."""
    if continuation is None or continuation is False:
        return [degree]
    if continuation == "auto":
        continuation = (2, 5)
    stages = sorted({int(d) for d in continuation if 1 <= int(d) < degree})
    return [*stages, degree]


#: Candidate time-scale offsets ``b_0`` tried before the fit (``D = exp(b_0)`` uniformly).
_B0_CANDIDATES = (2.0, 0.0, -2.0, -4.0, -6.0, -8.0)
#: Candidate ``a_1`` (with the prior: regular-solution Omega = -sqrt(3) a_1 = 0 .. 5.2).
_A1_CANDIDATES = (0.0, -1.0, -2.0, -3.0)


def learn_ch(
    data: xr.Dataset,
    *,
    degree: int = 11,
    prior: bool = True,
    snapshots: int = 7,
    realization: int = 0,
    kappa: float | None = None,
    length: float | None = None,
    regularization: float = 1e-9,
    dt: float | None = None,
    steps_per_interval: int = 40,
    max_steps: int = 50,
    rtol: float = 1e-6,
    atol: float = 0.0,
    times: Sequence[float] | None = None,
    stride: int | None = None,
    window: tuple[float, float] | None = None,
    clip: bool = False,
    check_periodic: bool = True,
    mu0: Any = None,
    D0: Any = None,
    continuation: Any = "auto",
    callback: Any = None,
    throw: bool = False,
) -> CHFit:
    r"""Learn :math:`\mu_h(c)` and :math:`D(c)` from a Cahn–Hilliard image series.

    Parameters
    ----------
    data
        Operando dataset with an image series ``(t, y, x)`` or ``(realization, t, y, x)`` of
        concentrations in (0, 1) on a periodic grid. ``t`` are the frame times in the
        model's time unit; the domain width is ``nx * pixel_size`` unless ``length`` is
        given. Ground truth (:func:`operando.data.get_truth`), when present, is used only
        for the reported metrics.
    degree
        Polynomial degree ``N >= 1`` of both laws (``N`` coefficients for
        :math:`\mu_h`, ``N + 1`` for :math:`\ln D`).
    prior
        Include the entropy prior ``ln(c/(1-c))`` in :math:`\mu_h`.
    snapshots
        Number ``K >= 2`` of snapshots (``K - 1`` shooting intervals); see
        :func:`select_snapshots` for how they are chosen.
    realization
        Which realisation of a ``(realization, t, y, x)`` dataset.
    kappa
        Gradient-energy coefficient (known, not fitted). Default: the data's
        ``truth_parameters["kappa"]`` if recorded, else ``2e-3`` (the benchmark value).
    length
        Domain width along x in the model's length unit (default ``nx * pixel_size``).
    regularization
        :math:`\lambda` of the smoothness prior, relative to the mean squared pixel
        error: the objective is ``MSE/2 + lambda/2 sum_n w_n p_n^2`` with
        ``w_n = max(1, n(n+1))^2`` (:func:`smoothness_weights`). The default ``1e-9``
        costs the true benchmark laws (``sum w_n p_n^2 ~ 50``) about half the clean-data
        misfit floor (MSE ~1e-7, set by the time discretisation of the data) and stops
        degree-11 fits from fitting that floor with wiggles in the weakly identified
        high-order terms of ``D`` (with ``1e-10``, D_rmse ~0.06 instead of ~0.02 on a
        32x32 series).
    dt
        Largest solver time step. Default: the shortest interval between snapshots
        divided by ``steps_per_interval``.
    steps_per_interval
        Used only to derive the default ``dt``.
    max_steps, rtol, atol
        Passed to :func:`~operando.inverse.least_squares`.
    times
        Explicit snapshot times (values of the ``t`` coordinate) instead of the default
        selection.
    stride, window
        Override the default snapshot selection, see :func:`select_snapshots`.
    clip
        Clip values to ``[0.01, 0.99]`` first (seed 000, S2.1). Without it, values
        outside (0, 1) raise :class:`~operando.errors.DataError`.
    check_periodic
        Raise if the images do not look periodic (the model is).
    mu0, D0
        Initial coefficients. Defaults: ``mu0 = 0`` (with the prior: the ideal-solution
        law; without: ``mu_h = 0``, i.e. learning from scratch as in the paper). ``D0``:
        ``b_1..b_N = 0`` and ``b_0`` (the time scale) chosen from
        ``(2, 0, -2, -4, -6, -8)`` by the lowest initial cost; with the prior and no
        ``mu0``, ``a_1`` (the regular-solution interaction, ``-Omega/sqrt(3)``) is
        searched jointly over ``(0, -1, -2, -3)``. This matters: with a convex initial
        ``mu_h`` (no double well yet), ``D = 1`` diffuses the measured pattern away
        within one interval, a flat, uninformative region of the cost where
        Levenberg–Marquardt crawls; the grid search (24 residual evaluations, no
        Jacobians) starts it in the right basin.
    continuation
        Coarse-to-fine degrees: ``"auto"`` fits degree 2, then 5, then ``degree`` (stages
        below ``degree`` only), each warm-started from the previous one padded with
        zeros; a sequence of degrees; or ``None`` for a single fit. The low-degree stages
        are cheap (fewer Jacobian columns) and put the high-degree fit, whose top
        coefficients the data constrain weakly, in the right basin. Ignored when ``mu0``
        or ``D0`` is given (those are for the final degree).
    callback
        Progress callback, see :func:`~operando.inverse.least_squares`.
    throw
        Raise :class:`~operando.errors.ConvergenceError` unless the fit converged.

    Returns
    -------
    CHFit
        Check ``fit.status``; a diverging forward model gives ``failed`` with an
        explanation in ``fit.result.message``.

    Raises
    ------
    DataError
        Too few frames, values outside (0, 1) without ``clip``, non-periodic images,
        too small a grid.
    ParameterError
        Degree < 1, snapshots < 2, non-positive ``kappa``/``dt``/``length``.

    Examples
    --------
    >>> from operando.config import enable_x64
    >>> from operando.simulate import simulate_ch_dataset
    >>> enable_x64()
    >>> ds = simulate_ch_dataset(size=32, length=0.5, t_end=0.3, frames=31, realizations=1)
    >>> fit = learn_ch(ds, degree=3, snapshots=3)  # doctest: +SKIP
    >>> fit.status.value, fit.metrics["mu_rmse"] < 0.05  # doctest: +SKIP
    ('converged', True)
    """
    require_x64("operando.learn_ch")
    t_start = time.perf_counter()
    where = "learn_ch: data"
    mu_law = LegendreChemicalPotential(degree=degree, prior=prior, key="mu")
    D_law = LegendreLogDiffusivity(degree=degree, key="D")
    frames, t, ds = _select_series(data, realization, where)
    _, ny, nx = frames.shape
    if min(ny, nx) < 8:
        raise DataError(
            f"the grid is {ny}x{nx}; the spectral solver needs at least 8x8 pixels",
            where=where,
        )
    if times is not None:
        idx = _indices_for_times(t, times)
    else:
        idx = select_snapshots(
            np.clip(frames, *CLIP_RANGE) if clip else frames,
            snapshots,
            stride=stride,
            window=window,
        )
    snaps = frames[idx]
    lo, hi = float(snaps.min()), float(snaps.max())
    if clip:
        snaps = np.clip(snaps, *CLIP_RANGE)
    elif lo <= 0.0 or hi >= 1.0:
        raise DataError(
            f"snapshot values span [{lo:.4g}, {hi:.4g}], outside the open interval (0, 1) "
            "where ln(c/(1-c)) and the mobility D(c) c are defined",
            where=where,
            fix="clip noisy data to [0.01, 0.99] (operando.noise.clip_values) or pass "
            "clip=True (--clip on the command line)",
        )
    if check_periodic:
        _check_periodic(snaps, where)
    truth = get_truth(ds) if ds is not None else None
    if kappa is None:
        kappa = float((truth.parameters if truth else {}).get("kappa", 2e-3))
    if length is None:
        length = nx * float(ds.attrs.get("pixel_size", 1.0))
    if not (np.isfinite(kappa) and kappa > 0):
        raise ParameterError(f"kappa is {kappa}", where="learn_ch: kappa", fix="pass kappa > 0")
    if not (np.isfinite(length) and length > 0):
        raise ParameterError(f"length is {length}", where="learn_ch: length", fix="pass > 0")
    t_snap = t[idx]
    widths = np.diff(t_snap)
    if dt is None:
        dt = float(widths.min()) / int(steps_per_interval)
    if not (np.isfinite(dt) and dt > 0):
        raise ParameterError(f"dt is {dt}", where="learn_ch: dt", fix="pass dt > 0")
    n_sub = max(1, math.ceil(float(widths.max()) / dt * (1 - 1e-9)))

    starts = jnp.asarray(snaps[:-1])
    targets = jnp.asarray(snaps[1:])
    weight = 1.0 / math.sqrt(targets.size)

    def make_args(deg: int) -> tuple[Any, ...]:
        prob = _CHProblem(
            mu_h=_IntervalMu(LegendreChemicalPotential(degree=deg, prior=prior, key="mu")),
            D=_IntervalD(LegendreLogDiffusivity(degree=deg, key="D")),
            kappa=float(kappa),
            length=float(length),
            n_sub=int(n_sub),
            weight=weight,
        )
        return (starts, targets, jnp.asarray(widths), prob)

    user_init = mu0 is not None or D0 is not None
    stages = [degree] if user_init else _continuation_degrees(degree, continuation)
    a0 = jnp.asarray(mu_law.zeros() if mu0 is None else mu0, dtype=float)
    init_s = init_compile_s = 0.0
    if D0 is None:
        d_first = LegendreLogDiffusivity(degree=stages[0], key="D")
        a_first = a0 if mu0 is not None else jnp.zeros(stages[0])
        a0, b0, init_s, init_compile_s = _initial_guess(
            a_first, d_first, make_args(stages[0]), scan_a1=prior and mu0 is None
        )
    else:
        b0 = jnp.asarray(D0, dtype=float)
    params0 = {"mu": a0, "D": b0}
    for name, n_coef in (("mu", stages[0]), ("D", stages[0] + 1)):
        if params0[name].shape != (n_coef,):
            raise ParameterError(
                f"initial {name} coefficients have shape {params0[name].shape}; expected "
                f"({n_coef},) for degree {degree}",
                where=f"learn_ch: {name}0",
            )
    initial_guess = {
        "mu": np.pad(np.asarray(params0["mu"]), (0, degree - stages[0])).tolist(),
        "D": np.pad(np.asarray(params0["D"]), (0, degree - stages[0])).tolist(),
    }
    stage_log: list[dict[str, Any]] = []
    compile_total = init_compile_s
    solve_total = 0.0
    res: LeastSquaresResult | None = None
    for k, deg in enumerate(stages):
        if res is not None:  # warm start: pad the previous stage's coefficients with zeros
            params0 = {
                "mu": jnp.pad(jnp.asarray(res.params["mu"]), (0, deg - stages[k - 1])),
                "D": jnp.pad(jnp.asarray(res.params["D"]), (0, deg - stages[k - 1])),
            }
        last = k == len(stages) - 1
        args = make_args(deg)
        res = least_squares(
            _ch_residual,
            params0,
            args,
            regularization=smoothness_weights(deg, float(regularization)),
            max_steps=max_steps,
            rtol=rtol if last else max(rtol, _STAGE_RTOL),
            atol=atol,
            callback=callback,
            throw=False,
        )
        compile_total += res.compile_s
        solve_total += res.wall_s - res.compile_s
        stage_log.append(
            {
                "degree": deg,
                "status": res.status.value,
                "iterations": res.iterations,
                "cost": res.cost,
            }
        )
        if res.status is Status.FAILED:
            break
    if res.params["mu"].shape[0] != degree:  # an early stage failed: report at degree N
        from dataclasses import replace

        pad = degree - res.params["mu"].shape[0]
        n_par = 2 * degree + 1
        res = replace(
            res,
            params={k: jnp.pad(jnp.asarray(v), (0, pad)) for k, v in res.params.items()},
            covariance=np.full((n_par, n_par), np.nan),
            n_params=n_par,
        )
    problem = args[3]
    if res.status is Status.FAILED and "finite" in res.message:
        res = _explain_divergence(res, dt)
    params = jax.tree_util.tree_map(np.asarray, res.params)
    # The final residuals are (predicted - measured) * weight: no extra forward solve.
    predicted = np.asarray(res.residuals) / problem.weight + np.asarray(targets)

    c_grid = np.linspace(FULL_RANGE[0], FULL_RANGE[1], 197)
    cg = jnp.asarray(c_grid)
    mu_vals = np.asarray(mu_law(cg, res.params))
    D_vals = np.asarray(D_law(cg, res.params))
    cov = res.covariance
    if np.all(np.isfinite(cov)):
        mu_std = np.sqrt(
            np.clip(propagate_covariance(lambda p: mu_law(cg, p), res.params, cov), 0, None)
        )
        D_std = np.sqrt(
            np.clip(propagate_covariance(lambda p: D_law(cg, p), res.params, cov), 0, None)
        )
    else:
        mu_std = np.full_like(c_grid, np.nan)
        D_std = np.full_like(c_grid, np.nan)

    final_mse = float(np.mean((predicted - np.asarray(targets)) ** 2))
    metrics: dict[str, float] = {"final_mse": final_mse}
    mu_true = D_true = None
    if truth is not None:
        fns = truth.functions

        def mu_fn(c: np.ndarray) -> np.ndarray:
            return np.asarray(mu_law(jnp.asarray(c), res.params))

        def D_fn(c: np.ndarray) -> np.ndarray:
            return np.asarray(D_law(jnp.asarray(c), res.params))

        metrics.update(ch_function_errors(mu_fn, D_fn, fns))
        if "mu_h" in fns:
            g, v = fns["mu_h"]
            mu_true = np.interp(c_grid, g, v)
            sel = (c_grid >= METRIC_RANGE[0]) & (c_grid <= METRIC_RANGE[1])
            mu_vals = mu_vals - np.mean(mu_vals[sel] - mu_true[sel])
        if "D" in fns:
            g, v = fns["D"]
            D_true = np.interp(c_grid, g, v)
        if truth.clean is not None:
            clean = np.asarray(truth.clean.values, dtype=float)
            if clean.ndim == 4:
                clean = clean[realization]
            metrics["final_mse_clean"] = float(np.mean((predicted - clean[idx[1:]]) ** 2))

    settings = {
        "degree": int(degree),
        "prior": bool(prior),
        "snapshots": len(idx),
        "realization": int(realization),
        "kappa": float(kappa),
        "length": float(length),
        "regularization": float(regularization),
        "dt": float(dt),
        "steps_per_interval": int(n_sub),
        "max_steps": int(max_steps),
        "rtol": float(rtol),
        "window": None if window is None else list(window),
        "stride": None if stride is None else int(stride),
        "clip": bool(clip),
        "grid": [int(ny), int(nx)],
        "initial_guess": initial_guess,
        "stages": stage_log,
        "iterations_total": int(sum(st["iterations"] for st in stage_log)),
    }
    fit = CHFit(
        mu_coefficients=params["mu"],
        D_coefficients=params["D"],
        mu_law=mu_law,
        D_law=D_law,
        c_grid=c_grid,
        mu=mu_vals,
        mu_std=mu_std,
        D=D_vals,
        D_std=D_std,
        mu_true=mu_true,
        D_true=D_true,
        snapshot_indices=np.asarray(idx),
        snapshot_times=np.asarray(t_snap),
        measured=np.asarray(snaps),
        predicted=predicted,
        metrics=metrics,
        result=res,
        settings=settings,
        timings={
            "init_s": init_s,
            "compile_s": compile_total,
            "solve_s": solve_total,
            "total_s": time.perf_counter() - t_start,
        },
    )
    if throw and not fit.success:
        from ..errors import ConvergenceError

        raise ConvergenceError(
            f"learning failed ({res.status.value}): {res.message}",
            where="learn_ch",
            fix="increase max_steps, reduce dt, or increase regularization",
        )
    return fit


def _initial_guess(
    a0: jax.Array, D_law: LegendreLogDiffusivity, args: Any, scan_a1: bool
) -> tuple[jax.Array, jax.Array, float, float]:
    """Coarse grid search over ``b_0`` (time scale) and, optionally, ``a_1``.

    Returns ``(a, b, seconds, compile_seconds)``; compiling here also compiles the
    Jacobian for the fit that follows (cached by the engine). ``a_1`` multiplies
    ``P_1(c) = sqrt(3)(2c - 1)``: with the prior, ``a_1 = -Omega / sqrt(3)`` is the
    regular-solution interaction, so the candidates span no interaction to a deep double well.
    """
    from ._least_squares import _as_flat_params, _compiled

    t0 = time.perf_counter()
    compile_s = 0.0
    best, best_cost = (a0, D_law.zeros()), np.inf
    dyn, static = eqx.partition(args, eqx.is_array)
    a1_values = _A1_CANDIDATES if scan_a1 else (None,)
    for a1 in a1_values:
        a = a0 if a1 is None else a0.at[0].set(a1)
        for b0 in _B0_CANDIDATES:
            b = D_law.zeros().at[0].set(b0)
            flat, unravel = _as_flat_params({"mu": a, "D": b})
            ones = jnp.ones(flat.size)
            tc = time.perf_counter()
            res_c, _ = _compiled(_ch_residual, unravel, "fwd", jnp.asarray(flat), ones, dyn, static)
            compile_s += time.perf_counter() - tc
            r = np.asarray(res_c(jnp.asarray(flat), ones, dyn))
            cost = float(r @ r) if np.all(np.isfinite(r)) else np.inf
            if cost < best_cost:
                best, best_cost = (a, b), cost
    return best[0], best[1], time.perf_counter() - t0, compile_s


def _explain_divergence(res: LeastSquaresResult, dt: float) -> LeastSquaresResult:
    from dataclasses import replace

    msg = (
        f"{res.message}. The Cahn–Hilliard forward model diverged (non-finite prediction); "
        f"try a smaller dt (now {dt:.3g}), more regularization, or a closer initial guess"
    )
    return replace(res, message=msg)
