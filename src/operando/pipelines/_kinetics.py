"""``operando learn kinetics``: learn j0(c), mu_h(c) and k(x, y) from particle videos.

Reads a particle-video dataset, runs :func:`operando.inverse.learn_kinetics` and writes
into ``out_dir``:

* ``fit.nc``: data and model frames ``(realization, t, y, x)``, the learned laws on a
  c-grid with 1-sigma bands, the ``ln k`` maps (and the truth when known);
* ``laws.csv``: ``c, mu_h, mu_h_std, j0, j0_std, j0_norm`` (the learned functions;
  ``j0_norm = j0 / max j0`` with the maximum over c in [0.05, 0.95]);
* ``laws.png`` (seed 002 Fig. 3a): ``j0/max j0`` with the Gauss–Newton 99 % band against
  CIET (eq. 3) and ``sqrt(c(1-c))``; ``mu_h`` against the regular solution (Omega 4.47);
* ``frames.png`` (seed 002 Fig. 2): data vs model frames of a few half-cycles;
* ``k_maps.png``: learned (and true) ``ln k`` per particle;
* ``summary.json``: ``train_rmse``, ``iterations``, ``wall_s`` and, with truth,
  ``j0_rel_rmse``, ``mu_rmse``, ``lnk_corr``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..io import atomic_path, read_dataset, write_dataset, write_summary
from ._figures import save_figure

__all__ = [
    "fit_kinetics", "frames_figure", "gauss_newton_bands", "k_maps_figure",
    "kinetics_laws_figure", "run_learn_kinetics",
]  # fmt: skip


def gauss_newton_bands(fit: Any, level: float = 0.99) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Linearised (Gauss–Newton) bands of a :class:`~operando.inverse.KineticsFit`.

    ``mu_h`` and ``j0 / max j0`` (log-normal in ``j0``); the exponent is clipped at 50 so
    that an unidentified end of ``ln j0`` (huge std) gives a huge, finite band.
    """
    from scipy.stats import norm

    from ..inverse import normalise_j0

    z = float(norm.ppf(0.5 + level / 2.0))
    jn = normalise_j0(fit.c_grid, fit.j0)
    spread = np.clip(z * fit.ln_j0_std, None, 50.0)
    return {
        "mu_h": (fit.mu - z * fit.mu_std, fit.mu + z * fit.mu_std),
        "j0_norm": (jn * np.exp(-spread), jn * np.exp(spread)),
    }


def kinetics_laws_figure(fit: Any) -> Figure:
    """Seed 002 Fig. 3a: normalised ``j0`` and ``mu_h`` with 99 % bands and reference laws."""
    from ..inverse import normalise_j0
    from ..physics._free_energy import regular_solution_mu
    from ..physics._kinetics import ciet_j0, symmetric_j0

    c = fit.c_grid
    fig = Figure(figsize=(5.5, 7))
    ax_j, ax_m = fig.subplots(2, 1, sharex=True)
    bands = gauss_newton_bands(fit, 0.99)
    lo, hi = bands["j0_norm"]
    if np.all(np.isfinite(lo)):
        ax_j.fill_between(c, lo, hi, alpha=0.3, label="99 % band (Gauss–Newton)")
    ax_j.plot(c, normalise_j0(c, fit.j0), lw=2, label="learned")
    ciet = np.asarray(ciet_j0(c))
    ax_j.plot(c, normalise_j0(c, ciet), "k--", label=r"CIET ($\tilde\lambda$=8.3, $\tilde c_+$=1)")
    sym = np.asarray(symmetric_j0(c))
    ax_j.plot(c, normalise_j0(c, sym), "k:", label=r"$\sqrt{c(1-c)}$")
    if fit.j0_true is not None:
        ax_j.plot(c, normalise_j0(c, fit.j0_true), "r-.", lw=1, label="truth")
    ax_j.set_ylabel(r"$j_0(c)/\max_{[0.05, 0.95]} j_0$")
    ax_j.set_ylim(0, 1.6)
    ax_j.legend(fontsize=7)
    if np.all(np.isfinite(fit.mu_std)):
        ax_m.fill_between(c, *bands["mu_h"], alpha=0.3, label="99 % band")
    ax_m.plot(c, fit.mu, lw=2, label="learned")
    ax_m.plot(
        c, np.asarray(regular_solution_mu(c, 4.47)), "k--", label=r"regular solution $\Omega$=4.47"
    )
    ax_m.set_ylim(-6, 6)
    ax_m.set_xlabel("c")
    ax_m.set_ylabel(r"$\mu_h(c)$ [kT]")
    ax_m.legend(fontsize=7)
    m = fit.metrics
    title = f"train RMSE {m['train_rmse']:.3g}"
    if "j0_rel_rmse" in m:
        title += f"; j0 rel RMSE {m['j0_rel_rmse']:.3g}, mu RMSE {m['mu_rmse']:.3g}"
    fig.suptitle(title, fontsize=9)
    return fig


def frames_figure(fit: Any, *, max_half_cycles: int = 4, max_frames: int = 6) -> Figure:
    """Seed 002 Fig. 2: data (upper) and model (lower) rows for a few half-cycles."""
    n_h = min(fit.measured.shape[0], max_half_cycles)
    prob = fit.problem
    n_f = min(fit.measured.shape[1], max_frames)
    fig = Figure(figsize=(1.6 * n_f, 1.7 * 2 * n_h))
    axes = fig.subplots(2 * n_h, n_f, squeeze=False)
    for h in range(n_h):
        nv = int(prob.valid[h].sum())
        sel = np.unique(np.rint(np.linspace(0, nv - 1, min(n_f, nv))).astype(int))
        for j in range(n_f):
            for row, arr, name in ((0, fit.measured, "data"), (1, fit.predicted, "model")):
                ax = axes[2 * h + row, j]
                ax.set_xticks([])
                ax.set_yticks([])
                if j >= len(sel):
                    ax.set_axis_off()
                    continue
                f = sel[j]
                ax.imshow(arr[h, f], vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
                if row == 0:
                    ax.set_title(f"{prob.times_h[h, f] * 60:.0f} min", fontsize=7)
                if j == 0:
                    ax.set_ylabel(f"hc {h} {name}", fontsize=7)
    fig.suptitle("data vs model (first frame: initial condition)", fontsize=9)
    return fig


def k_maps_figure(fit: Any, *, max_particles: int = 8) -> Figure:
    """Learned (and true) ``ln k`` maps, one column per particle."""
    n_p = min(fit.ln_k.shape[0], max_particles)
    rows = 2 if fit.ln_k_true is not None else 1
    fig = Figure(figsize=(2.0 * n_p, 2.0 * rows))
    axes = fig.subplots(rows, n_p, squeeze=False)
    vals = fit.ln_k[np.isfinite(fit.ln_k)]
    lim = float(np.max(np.abs(vals))) if vals.size else 1.0
    for p in range(n_p):
        for r in range(rows):
            ax = axes[r, p]
            arr = fit.ln_k[p] if r == 0 else fit.ln_k_true[p]
            ax.imshow(arr, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"particle {p} {'learned' if r == 0 else 'true'}", fontsize=7)
    corr = fit.metrics.get("lnk_corr")
    fig.suptitle(
        "ln k(x, y)" + (f" (pixel correlation {corr:.3f})" if corr is not None else ""), fontsize=9
    )
    return fig


def fit_kinetics(ds: Any, **options: Any) -> Any:
    """:func:`~operando.inverse.learn_kinetics`, or a multistart when ``smooth_segments`` is a list.

    A list of several ``smooth_segments`` values runs
    :func:`~operando.inverse.learn_kinetics_multistart` with one start per value (the fit
    of lowest final cost wins); one value (or a scalar, or ``None``) is a single fit.
    """
    from ..inverse._kinetics import learn_kinetics, learn_kinetics_multistart

    sm = options.get("smooth_segments")
    if isinstance(sm, list | tuple) and len(sm) > 1:
        rest = {k: v for k, v in options.items() if k != "smooth_segments"}
        return learn_kinetics_multistart(ds, [{"smooth_segments": float(v)} for v in sm], **rest)
    if isinstance(sm, list | tuple):
        options = {**options, "smooth_segments": float(sm[0]) if sm else None}
    return learn_kinetics(ds, **options)


def run_learn_kinetics(
    data_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    rho2: float = 4.9e-3,
    degree_mu: int = 5,
    degree_j0: int = 8,
    max_iter: int = 30,
    callback: Callable[..., None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Learn the kinetics from the dataset at ``data_path``; write results into ``out_dir``.

    Parameters
    ----------
    data_path
        Particle-video dataset file (``operando simulate particles`` output or the same
        layout, see ``docs/kinetics.md``).
    out_dir
        Output directory (created).
    rho2, degree_mu, degree_j0, max_iter
        See :func:`operando.inverse.learn_kinetics`.
    callback
        Progress callback for the optimiser.
    **options
        Further keyword arguments for :func:`~operando.inverse.learn_kinetics`.

    Returns
    -------
    dict
        ``{"results": ..., "parameters": ..., "fit": KineticsFit}``.
    """
    from ..config import enable_x64
    from ..inverse import normalise_j0

    enable_x64()
    t0 = time.perf_counter()
    out = Path(out_dir)
    ds = read_dataset(data_path)
    fit = fit_kinetics(
        ds, rho2=rho2, degree_mu=degree_mu, degree_j0=degree_j0, max_iter=max_iter,
        callback=callback, **options,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    write_dataset(fit.to_dataset(), out / "fit.nc")
    table = np.column_stack(
        [fit.c_grid, fit.mu, fit.mu_std, fit.j0, fit.j0_std, normalise_j0(fit.c_grid, fit.j0)]
    )
    with atomic_path(out / "laws.csv") as tmp:
        np.savetxt(tmp, table, delimiter=",", header="c,mu_h,mu_h_std,j0,j0_std,j0_norm",
                   comments="")  # fmt: skip
    save_figure(kinetics_laws_figure(fit), out / "laws.png")
    save_figure(frames_figure(fit), out / "frames.png")
    save_figure(k_maps_figure(fit), out / "k_maps.png")
    wall = time.perf_counter() - t0
    res = fit.result
    results: dict[str, Any] = {
        "status": res.status.value,
        "message": res.message,
        **fit.metrics,
        "iterations": fit.settings["iterations"],
        "stages": fit.settings["stages"],
        **(
            {"multistart": fit.settings["multistart"], "chosen_start": fit.settings["chosen_start"]}
            if "multistart" in fit.settings
            else {}
        ),
        "wall_s": wall,
        "n_residuals": res.n_residuals,
        "n_params": res.n_params,
        "outputs": ["fit.nc", "laws.csv", "laws.png", "frames.png", "k_maps.png"],
    }
    params = {
        "data": os.fspath(data_path),
        "out": os.fspath(out),
        **{
            k: v
            for k, v in fit.settings.items()
            if k not in ("stages", "iterations", "wall_s", "multistart", "chosen_start")
        },
    }
    write_summary(
        out / "summary.json",
        command="operando learn kinetics",
        parameters=params,
        results=results,
        inputs=[data_path],
        status="ok" if fit.success else res.status.value,
    )
    return {"results": results, "parameters": params, "fit": fit}
