"""``operando learn ch``: learn mu_h(c) and D(c) from a Cahn–Hilliard image series.

Reads a dataset, runs :func:`operando.inverse.learn_ch`, and writes into ``out_dir``:

* ``fit.nc``: the measured and predicted snapshots, the learned coefficients and the
  learned laws on a c-grid with 1-sigma bands (operando dataset, written atomically);
* ``laws.png``: learned vs true mu_h(c) and D(c) with ±2 sigma bands from the Gauss–Newton
  covariance;
* ``snapshots.png``: measured vs predicted snapshots and their difference;
* ``summary.json``: status, ``final_mse``, ``iterations``, ``wall_s`` and, when the data
  carry ground truth, ``mu_rmse``, ``D_rmse``, ``mu_rmse_full``, ``D_rmse_full``.

A failed fit still writes its outputs, with ``status: "failed"`` and the explanation in
``summary.json``; the caller decides whether that is an error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..io import read_dataset, write_dataset, write_summary
from ._figures import image_panels, save_figure

__all__ = ["laws_figure", "run_learn_ch", "snapshots_figure"]


def laws_figure(fit: Any) -> Figure:
    """Learned vs true mu_h(c) and D(c), with ±2 sigma linearised bands."""
    fig = Figure(figsize=(10, 4))
    ax_mu, ax_d = fig.subplots(1, 2)
    c = fit.c_grid
    for ax, val, std, true, name in (
        (ax_mu, fit.mu, fit.mu_std, fit.mu_true, r"$\mu_h(c)$"),
        (ax_d, fit.D, fit.D_std, fit.D_true, r"$D(c)$"),
    ):
        if np.all(np.isfinite(std)):
            ax.fill_between(c, val - 2 * std, val + 2 * std, alpha=0.3, label=r"$\pm 2\sigma$")
        ax.plot(c, val, lw=2, label="learned")
        if true is not None:
            ax.plot(c, true, "k--", lw=1.5, label="true")
        ax.axvspan(0.1, 0.9, color="0.9", zorder=-1)
        ax.set_xlabel("c")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    m = fit.metrics
    title = f"{'with' if fit.settings['prior'] else 'without'} prior, N={fit.settings['degree']}"
    if "mu_rmse" in m:
        title += f": mu_rmse={m['mu_rmse']:.3g}, D_rmse={m['D_rmse']:.3g} on [0.1, 0.9] (shaded)"
    fig.suptitle(title, fontsize=10)
    return fig


def snapshots_figure(fit: Any, *, max_intervals: int = 6) -> Figure:
    """Measured vs predicted snapshots (rows) for up to ``max_intervals`` intervals."""
    k = min(fit.predicted.shape[0], max_intervals)
    sel = np.unique(np.rint(np.linspace(0, fit.predicted.shape[0] - 1, k)).astype(int))
    panels, titles, cmaps, limits = [], [], [], []
    err = float(np.max(np.abs(fit.predicted - fit.measured[1:]))) or 1.0
    for row in ("measured", "predicted", "difference"):
        for i in sel:
            t = float(fit.snapshot_times[i + 1])
            if row == "measured":
                panels.append(fit.measured[i + 1])
                cmaps.append("viridis")
                limits.append((0.0, 1.0))
            elif row == "predicted":
                panels.append(fit.predicted[i])
                cmaps.append("viridis")
                limits.append((0.0, 1.0))
            else:
                panels.append(fit.predicted[i] - fit.measured[i + 1])
                cmaps.append("RdBu_r")
                limits.append((-err, err))
            titles.append(f"{row}, t={t:.3g}")
    return image_panels(
        panels,
        titles,
        cmaps=cmaps,
        limits=limits,
        ncols=len(sel),
        suptitle=f"multiple shooting: final MSE {fit.metrics['final_mse']:.3g}",
    )


def run_learn_ch(
    data_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    degree: int = 11,
    prior: bool = True,
    snapshots: int = 7,
    realization: int = 0,
    clip: bool = False,
    max_steps: int = 50,
    regularization: float | None = None,
    dt: float | None = None,
    callback: Callable[..., None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Learn mu_h and D from the dataset at ``data_path``; write results into ``out_dir``.

    Parameters
    ----------
    data_path
        Dataset file (any format :func:`operando.io.read_dataset` reads).
    out_dir
        Output directory (created).
    degree, prior, snapshots, realization, clip, max_steps, regularization, dt
        See :func:`operando.inverse.learn_ch` (``None`` keeps its default).
    callback
        Progress callback for the optimiser (:class:`operando.inverse.IterationInfo`).
    **options
        Further keyword arguments for :func:`~operando.inverse.learn_ch`.

    Returns
    -------
    dict
        ``{"results": ..., "parameters": ..., "fit": CHFit}``; the first two are what
        ``summary.json`` holds.
    """
    from ..config import enable_x64
    from ..inverse import learn_ch

    enable_x64()
    t0 = time.perf_counter()
    out = Path(out_dir)
    ds = read_dataset(data_path)
    kwargs: dict[str, Any] = dict(options)
    if regularization is not None:
        kwargs["regularization"] = regularization
    if dt is not None:
        kwargs["dt"] = dt
    fit = learn_ch(
        ds,
        degree=degree,
        prior=prior,
        snapshots=snapshots,
        realization=realization,
        clip=clip,
        max_steps=max_steps,
        callback=callback,
        **kwargs,
    )
    out.mkdir(parents=True, exist_ok=True)
    write_dataset(fit.to_dataset(), out / "fit.nc")
    save_figure(laws_figure(fit), out / "laws.png")
    save_figure(snapshots_figure(fit), out / "snapshots.png")
    wall = time.perf_counter() - t0
    res = fit.result
    results: dict[str, Any] = {
        "status": res.status.value,
        "message": res.message,
        **fit.metrics,
        "iterations": res.iterations,
        "n_accepted": res.n_accepted,
        "wall_s": wall,
        "fit_s": res.wall_s,
        "compile_s": res.compile_s,
        "final_cost": res.cost,
        "grad_norm": res.grad_norm,
        "n_residuals": res.n_residuals,
        "n_params": res.n_params,
        "snapshot_indices": fit.snapshot_indices.tolist(),
        "snapshot_times": fit.snapshot_times.tolist(),
        "mu_coefficients": fit.mu_coefficients.tolist(),
        "D_coefficients": fit.D_coefficients.tolist(),
        "outputs": ["fit.nc", "laws.png", "snapshots.png"],
    }
    params = {"data": os.fspath(data_path), "out": os.fspath(out), **fit.settings}
    write_summary(
        out / "summary.json",
        command="operando learn ch",
        parameters=params,
        results=results,
        inputs=[data_path],
        status="ok" if fit.success else res.status.value,
    )
    return {"results": results, "parameters": params, "fit": fit}
