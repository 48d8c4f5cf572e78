r"""Model selection and uncertainty at scale: cross-validation, bootstrap and HMC workflows.

Every fit here is an independent job run by :func:`~operando.pipelines._parallel.map_jobs`
with a checkpointed :class:`~operando.pipelines._parallel.JobStore` under ``OUT/jobs``:
re-running the same call with the same ``out_dir`` loads finished fits (same input file
checksum and parameters) and computes only the missing ones. Job functions are the
module-level ``_*_job`` functions below (spawned workers import them by name); they take
the dataset *path* (workers read the file themselves; on a cluster it must be on a shared
filesystem) and return NumPy arrays.

Kinetics (seed 002, Methods "Cross-validation" and Supplementary Information 9.1):

* :func:`cross_validate_kinetics`: :math:`p_{global}` fixed at the MAP, so only
  :math:`Z_i` is refitted and the folds of different particles are independent jobs;
  one job per (particle, fold) runs the whole :math:`\rho_2` grid, from the most to the
  least regularised, each fit warm-started from the previous one; validation RMSE over
  the held-out half-cycle's pixels; mean and standard error over all (particle, fold)
  pairs and the one-standard-error choice.
* :func:`bootstrap_kinetics`: resample particles with replacement (or, parametric,
  redraw the pixel noise around the MAP's prediction), refit everything warm-started
  from the MAP, pointwise 99 % bands (percentile or basic) of :math:`\mu_h` and
  :math:`j_0` (and of :math:`j_0/\max j_0`) and per-pixel bands of :math:`\ln k` (each
  particle over the samples that contain it).
* :func:`hmc_kinetics`: NUTS on the posterior of the same objective (small problems), one
  chain per job, started at the MAP with the Gauss–Newton covariance as mass matrix.

Cahn–Hilliard: :func:`bootstrap_ch` fits every realisation once (one job each) and
bootstraps the realisation-averaged laws over realisations.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.figure import Figure

from ..errors import DataError, ParameterError, check_choice
from ..io import atomic_path, file_sha256, read_dataset, write_summary
from ._figures import save_figure
from ._kinetics import gauss_newton_bands
from ._parallel import ExecutorConfig, map_jobs

__all__ = [
    "bootstrap_ch",
    "bootstrap_kinetics",
    "bootstrap_selftest_fit",
    "cross_validate_kinetics",
    "curve_bands",
    "cv_figure",
    "gauss_newton_bands",
    "hmc_kinetics",
    "run_kinetics_uq",
    "train_denoiser_ensemble",
    "uq_bands_figure",
]

#: Concentration range of the band statistics (the laws are poorly determined at the ends).
BAND_RANGE = (0.1, 0.9)


# ------------------------------------------------------------------------ helpers


def _salt(data_path: str | os.PathLike[str]) -> dict[str, str]:
    return {"data_sha256": file_sha256(data_path)}


def _json_options(options: dict[str, Any], where: str) -> dict[str, Any]:
    """Fit options must be JSON values: they are hashed into the job digests and sent."""
    try:
        json.dumps(options)
    except TypeError as e:
        raise ParameterError(
            f"fit options must be plain numbers/strings/lists ({e})",
            where=where,
            fix="pass callables such as strain= only to the single-fit API",
        ) from e
    return dict(options)


def _save_npz(path: Path, **arrays: Any) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items() if v is not None})
    return path


def _save_csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    names = list(columns)
    table = np.column_stack([np.asarray(columns[n], dtype=float) for n in names])
    with atomic_path(path) as tmp:
        np.savetxt(tmp, table, delimiter=",", header=",".join(names), comments="")
    return path


def _in_range(c: np.ndarray) -> np.ndarray:
    return (c >= BAND_RANGE[0]) & (c <= BAND_RANGE[1])


# ------------------------------------------------------------------ kinetics jobs


def _np_params(params: Any) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=float) for k, v in dict(params).items()}


def _refit_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options of a refit warm-started from the MAP: single shooting, no continuation.

    The MAP is an optimum of the single-shooting objective (seed 002's formulation); a
    multiple-shooting stage would first move every refit away to a different optimum (and
    on noisy data start it from noisy segment frames).
    """
    return {**options, "shooting": "single", "continuation": [], "smooth_segments": None}


def _kinetics_fit_job(
    data_path: str,
    options: dict[str, Any],
    particles: list[int] | None = None,
    params0: dict[str, Any] | None = None,
    resimulate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One kinetics fit: the MAP or a bootstrap sample.

    ``particles``: a resample of the particles (with replacement). ``resimulate``:
    ``{"params", "sigma", "seed"}`` of a parametric replicate
    (:func:`~operando.inverse.resimulate_kinetics` with the model options of ``options``).
    """
    from ..inverse._kinetics import MODEL_OPTIONS, resimulate_kinetics, subset_particles
    from ._kinetics import fit_kinetics

    ds = read_dataset(data_path)
    if particles is not None:
        ds = subset_particles(ds, list(particles))
    if resimulate is not None:
        model = {k: v for k, v in options.items() if k in MODEL_OPTIONS}
        ds = resimulate_kinetics(
            dict(resimulate["params"]), ds, sigma=float(resimulate["sigma"]),
            seed=int(resimulate["seed"]), inputs=resimulate.get("inputs", "measured"),
            **model,
        )  # fmt: skip
    fit = fit_kinetics(ds, params0=params0, **options)
    p = _np_params(fit.params)
    return {
        "mu": p["mu"],
        "j0": p["j0"],
        "Z": p["Z"],
        "c_grid": fit.c_grid,
        "mu_h": fit.mu,
        "j0_curve": fit.j0,
        "mu_std": fit.mu_std,
        "ln_j0_std": fit.ln_j0_std,
        "ln_k": fit.ln_k,
        "status": fit.status.value,
        "train_rmse": float(fit.metrics["train_rmse"]),
        "metrics": {k: float(v) for k, v in fit.metrics.items()},
    }


def _kinetics_cv_job(
    data_path: str,
    options: dict[str, Any],
    particle: int,
    train: list[int],
    val: list[int],
    rho2_grid: list[float],
    global_params: dict[str, Any],
    z0: Any,
) -> dict[str, Any]:
    """Fit ``Z_particle`` on ``train`` half-cycles over the rho2 grid; RMSE on ``val``."""
    from ..inverse._kinetics import (
        MODEL_OPTIONS,
        kinetics_rmse,
        learn_kinetics,
        subset_half_cycles,
        subset_particles,
    )

    ds = read_dataset(data_path)
    d_train = subset_particles(subset_half_cycles(ds, list(train)), [int(particle)])
    d_val = subset_particles(subset_half_cycles(ds, list(val)), [int(particle)])
    fixed = {"mu": np.asarray(global_params["mu"]), "j0": np.asarray(global_params["j0"])}
    opts = {k: v for k, v in _refit_options(options).items() if k != "rho2"}
    grid = np.asarray(rho2_grid, dtype=float)
    val_rmse = np.full(grid.shape, np.nan)
    train_rmse = np.full(grid.shape, np.nan)
    status: list[str] = [""] * grid.size
    z = np.asarray(z0, dtype=float).reshape(1, -1)
    for i in np.argsort(grid)[::-1]:  # most regularised first, then warm starts
        params0 = {**fixed, "Z": z}
        fit = learn_kinetics(
            d_train, rho2=float(grid[i]), fixed_global=fixed, params0=params0, **opts
        )
        status[i] = fit.status.value
        train_rmse[i] = float(fit.metrics["train_rmse"])
        model_opts = {k: v for k, v in opts.items() if k in MODEL_OPTIONS}
        val_rmse[i] = float(kinetics_rmse(fit.params, d_val, **model_opts))
        if np.all(np.isfinite(fit.params["Z"])):
            z = np.asarray(fit.params["Z"], dtype=float)
    return {"val_rmse": val_rmse, "train_rmse": train_rmse, "status": status}


def _kinetics_hmc_chain_job(
    data_path: str,
    options: dict[str, Any],
    params_map: dict[str, Any],
    sigma: float,
    seed: int,
    chain: int,
    num_warmup: int,
    num_samples: int,
    init_std: float,
    inverse_mass_matrix: Any = None,
    max_tree_depth: int = 8,
    grad: Literal["rev", "fwd"] = "rev",
) -> dict[str, Any]:
    """One NUTS chain on the kinetics posterior; returns flattened samples and curves."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from ..inverse._hmc import least_squares_log_posterior, nuts
    from ..inverse._kinetics import MODEL_OPTIONS, kinetics_setup

    ds = read_dataset(data_path)
    setup_keys = {"rho1", "rho2", *MODEL_OPTIONS}
    opts = {k: v for k, v in options.items() if k in setup_keys}
    S = kinetics_setup(ds, params0=_np_params(params_map), shooting="single", **opts)
    rho1 = float(options.get("rho1", 0.0))
    rho2 = float(options.get("rho2", 4.9e-3))
    p_map = {k: jnp.asarray(v, dtype=float) for k, v in _np_params(params_map).items()}
    reg = {
        "mu": jnp.full(p_map["mu"].shape, rho1),
        "j0": jnp.full(p_map["j0"].shape, rho1),
        "Z": jnp.full(p_map["Z"].shape, rho2),
    }
    lp = least_squares_log_posterior(
        lambda p, _: S.residual(p), None, sigma=float(sigma), regularization=reg
    )
    imm = None if inverse_mass_matrix is None else np.asarray(inverse_mass_matrix)
    _, unravel = ravel_pytree(p_map)
    if imm is not None and imm.ndim == 2:
        std = np.sqrt(np.clip(np.diag(imm), 0.0, None))
    elif imm is not None:
        std = np.sqrt(np.clip(imm, 0.0, None))
    else:
        std = np.ones(ravel_pytree(p_map)[0].size)
    res = nuts(
        lp,
        p_map,
        key=jax.random.fold_in(jax.random.key(int(seed)), int(chain)),
        num_chains=1,
        num_warmup=int(num_warmup),
        num_samples=int(num_samples),
        init_std=unravel(jnp.asarray(init_std * std)),
        inverse_mass_matrix=imm,
        max_tree_depth=int(max_tree_depth),
        grad=grad,
    )
    draws = res.draws()
    flat = np.asarray(jax.vmap(lambda p: ravel_pytree(p)[0])(draws))
    c = jnp.linspace(0.01, 0.99, 99)
    mu_fn = jax.jit(jax.vmap(lambda p: S.model.mu_h(c, p)))
    lnj_fn = jax.jit(jax.vmap(lambda p: S.model.log_j0_gauged(c, p, S.arrays)))
    return {
        "flat": flat,
        "mu_h": np.asarray(mu_fn(draws)),
        "ln_j0": np.asarray(lnj_fn(draws)),
        "acceptance_rate": float(res.acceptance_rate[0]),
        "divergences": int(res.divergences[0]),
        "step_size": float(res.step_size[0]),
        "wall_s": res.wall_s,
    }


# ---------------------------------------------------------------------- figures


def cv_figure(
    grid: np.ndarray,
    errors: np.ndarray,
    labels: Sequence[str],
    mean: np.ndarray,
    se: np.ndarray,
    chosen: int,
    best: int,
    train_mean: np.ndarray | None = None,
) -> Figure:
    """Validation RMSE against rho2: every (particle, fold) curve, mean ± SE, the choice."""
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for e in errors:
        ax.plot(grid, e, "-", color="0.7", lw=0.8)
    ax.errorbar(grid, mean, yerr=se, fmt="o-", color="C0", lw=2, capsize=3,
                label="validation: mean ± SE")  # fmt: skip
    if train_mean is not None:
        ax.plot(grid, train_mean, "s--", color="C2", label="training (mean)")
    ax.axhline(mean[best] + se[best], color="C0", ls=":", lw=1, label="min + 1 SE")
    ax.axvline(grid[chosen], color="C3", lw=1.5, label=f"one-SE choice rho2 = {grid[chosen]:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel(r"$\rho_2$")
    ax.set_ylabel("RMSE (Li fraction)")
    ax.legend(fontsize=7)
    ax.set_title(f"{len(labels)} (particle, fold) validation curves in grey", fontsize=9)
    return fig


def uq_bands_figure(
    c: np.ndarray,
    map_curves: dict[str, np.ndarray],
    bands: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
    truth: dict[str, np.ndarray | None] | None = None,
    *,
    level: float = 0.99,
) -> Figure:
    """Compare band methods: ``bands[method][name] = (lo, hi)`` for ``mu_h`` and ``j0_norm``."""
    fig = Figure(figsize=(5.5, 7))
    ax_j, ax_m = fig.subplots(2, 1, sharex=True)
    colours = {"Gauss–Newton": "C0", "bootstrap": "C1", "HMC": "C2"}
    for ax, name, ylabel in (
        (ax_j, "j0_norm", r"$j_0(c)/\max_{[0.05, 0.95]} j_0$"),
        (ax_m, "mu_h", r"$\mu_h(c)$ [kT]"),
    ):
        for method, b in bands.items():
            if name in b:
                lo, hi = b[name]
                col = colours.get(method)
                ax.fill_between(c, lo, hi, alpha=0.25, color=col,
                                label=f"{method} {100 * level:.0f} %")  # fmt: skip
                ax.plot(c, lo, color=col, lw=0.7)
                ax.plot(c, hi, color=col, lw=0.7)
        ax.plot(c, map_curves[name], "k-", lw=1.5, label="MAP")
        if truth and truth.get(name) is not None:
            ax.plot(c, truth[name], "r--", lw=1.2, label="truth")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    ax_j.set_ylim(0, 1.6)
    ax_m.set_ylim(-6, 6)
    ax_m.set_xlabel("c")
    return fig


# ------------------------------------------------------------------ kinetics flows


def _map_fit(
    data_path: str,
    options: dict[str, Any],
    executor: ExecutorConfig | None,
    store: Path,
    progress: Callable[..., None] | None,
    params: dict[str, Any] | None,
) -> dict[str, Any]:
    """The MAP fit of all particles (a job of its own, so it is checkpointed too)."""
    if params is not None:
        return {k: np.asarray(v) for k, v in params.items()}
    res = map_jobs(
        _kinetics_fit_job,
        {"map": {"data_path": data_path, "options": options}},
        executor=ExecutorConfig("serial") if executor is None else executor,
        store=store,
        salt=_salt(data_path),
        progress=progress,
    )["map"]
    return {k: res[k] for k in ("mu", "j0", "Z")}


def cross_validate_kinetics(
    data_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    k: int = 3,
    rho2_grid: Sequence[float] = (1e-3, 4.9e-3, 2e-2, 0.1, 0.5),
    seed: int = 0,
    map_params: dict[str, Any] | None = None,
    executor: ExecutorConfig | None = None,
    progress: Callable[..., None] | None = None,
    on_cluster: Callable[[Any], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    r"""k-fold cross-validation of :math:`\rho_2` with :math:`p_{global}` fixed at the MAP.

    Parameters
    ----------
    data_path
        Particle-video dataset file (particles with >= 2 half-cycles are validated).
    out_dir
        Output directory: ``cv.csv`` (rho2, mean/SE validation RMSE, mean training RMSE),
        ``cv_curves.npz``, ``cv.png``, ``summary.json`` and the job store ``jobs/``.
    k
        Folds per particle (half-cycles dealt round-robin after a seeded shuffle).
    rho2_grid
        Candidate :math:`\rho_2` values.
    seed
        Seed of the fold assignment.
    map_params
        MAP parameters (``{"mu", "j0", "Z"}``) of all particles; default: fitted here
        (as a checkpointed job) with ``options``.
    executor, progress, on_cluster
        See :func:`~operando.pipelines._parallel.map_jobs`.
    **options
        Options of :func:`~operando.inverse.learn_kinetics` (JSON values); ``rho2`` is the
        value of the MAP fit.

    Returns
    -------
    dict
        ``rho2_grid``, ``mean``, ``se``, ``train_mean``, ``errors`` (pairs x grid),
        ``pairs``, ``chosen_rho2``, ``best_rho2``.
    """
    from ..inverse._uq import cv_statistics, kfold_splits, one_standard_error

    t0 = time.perf_counter()
    data_path = os.fspath(data_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    options = _json_options(options, "cross_validate_kinetics")
    grid = [float(r) for r in rho2_grid]
    if len(grid) < 2 or min(grid) < 0:
        raise ParameterError(
            f"rho2 grid {grid}", where="--rho2-grid", fix="give at least two values >= 0"
        )
    ds = read_dataset(data_path)
    if "particle_of" not in ds:
        raise DataError(
            "no 'particle_of': cross-validation needs several half-cycles per particle",
            where=data_path,
        )
    particle_of = np.asarray(ds["particle_of"].values, dtype=int)
    splits = kfold_splits(particle_of, int(k), seed=int(seed))
    if not splits:
        raise DataError(
            "no particle has 2 or more half-cycles: nothing to validate on",
            where=data_path,
            fix="cross-validation trains on k-1 half-cycles of a particle and validates on one",
        )
    store = out / "jobs"
    gp = _map_fit(data_path, options, executor, store, None, map_params)
    jobs = {
        f"cv-p{p}-f{f}": {
            "data_path": data_path, "options": options, "particle": p,
            "train": train.tolist(), "val": val.tolist(), "rho2_grid": grid,
            "global_params": {"mu": gp["mu"], "j0": gp["j0"]}, "z0": np.asarray(gp["Z"])[p],
        }
        for p, f, train, val in splits
    }  # fmt: skip
    res = map_jobs(
        _kinetics_cv_job, jobs, executor=executor, store=store, salt=_salt(data_path),
        progress=progress, on_cluster=on_cluster,
    )  # fmt: skip
    labels = list(res)
    errors = np.stack([np.asarray(res[j]["val_rmse"], dtype=float) for j in labels])
    train = np.stack([np.asarray(res[j]["train_rmse"], dtype=float) for j in labels])
    mean, se = cv_statistics(errors)
    train_mean, _ = cv_statistics(train)
    g = np.asarray(grid)
    chosen, best = one_standard_error(g, mean, se)
    _save_csv(out / "cv.csv", {"rho2": g, "val_rmse_mean": mean, "val_rmse_se": se,
                               "train_rmse_mean": train_mean})  # fmt: skip
    _save_npz(out / "cv_curves.npz", rho2=g, val_rmse=errors, train_rmse=train,
              pairs=np.array(labels))  # fmt: skip
    order = np.argsort(g)
    save_figure(
        cv_figure(g[order], errors[:, order], labels, mean[order], se[order],
                  int(np.flatnonzero(order == chosen)[0]), int(np.flatnonzero(order == best)[0]),
                  train_mean[order]),
        out / "cv.png",
    )  # fmt: skip
    results = {
        "chosen_rho2": float(g[chosen]),
        "best_rho2": float(g[best]),
        "val_rmse_at_choice": float(mean[chosen]),
        "val_rmse_se_at_choice": float(se[chosen]),
        "train_rmse_at_choice": float(train_mean[chosen]),
        "min_val_rmse": float(mean[best]),
        "n_pairs": len(labels),
        "failed_fits": int(sum(s == "failed" for j in labels for s in res[j]["status"])),
        "wall_s": time.perf_counter() - t0,
        "outputs": ["cv.csv", "cv_curves.npz", "cv.png"],
    }
    params = {"data": data_path, "k": int(k), "rho2_grid": grid, "seed": int(seed), **options}
    write_summary(out / "summary.json", command="operando learn kinetics --cv",
                  parameters=params, results=results, inputs=[data_path])  # fmt: skip
    return {
        "rho2_grid": g, "mean": mean, "se": se, "train_mean": train_mean, "errors": errors,
        "pairs": labels, "chosen_rho2": float(g[chosen]), "best_rho2": float(g[best]),
        "results": results,
    }  # fmt: skip


def _truth_curves(data_path: str, c: np.ndarray) -> dict[str, np.ndarray | None]:
    from ..data import get_truth
    from ..inverse import normalise_j0

    truth = get_truth(read_dataset(data_path))
    out: dict[str, np.ndarray | None] = {"mu_h": None, "j0": None, "j0_norm": None}
    if truth is not None:
        fns = truth.functions
        if "mu_h" in fns:
            out["mu_h"] = np.interp(c, *fns["mu_h"])
        if "j0" in fns:
            j = np.interp(c, *fns["j0"])
            out["j0"], out["j0_norm"] = j, normalise_j0(c, j)
    return out


def curve_bands(
    samples: dict[str, np.ndarray],
    estimate: dict[str, np.ndarray],
    interval: Literal["percentile", "basic"],
    level: float = 0.99,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pointwise bands of bootstrap curves: ``name -> (lo, hi)`` for every name of ``samples``.

    ``interval="percentile"``: :func:`~operando.inverse.percentile_band`; ``"basic"``:
    :func:`~operando.inverse.basic_band` about ``estimate[name]``, on a log scale for the
    positive ``j0`` curves (every name but ``mu_h``), where a value that underflowed to 0
    far outside the data (a steep ``ln j0`` polynomial end) counts as the smallest
    positive float.
    """
    from ..inverse._uq import basic_band, percentile_band

    check_choice(interval, ("percentile", "basic"), where="bootstrap bands", name="interval")
    tiny = np.finfo(float).tiny
    bands = {}
    for name, x in samples.items():
        if interval == "percentile":
            bands[name] = percentile_band(x, level)
        elif name == "mu_h":
            bands[name] = basic_band(x, estimate[name], level)
        else:
            bands[name] = basic_band(
                np.maximum(x, tiny), np.maximum(estimate[name], tiny), level, log=True
            )
    return bands


def bootstrap_kinetics(
    data_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    n_boot: int = 50,
    seed: int = 0,
    level: float = 0.99,
    map_params: dict[str, Any] | None = None,
    refit: Literal["map", "recipe"] = "map",
    kind: Literal["particles", "parametric"] = "particles",
    sigma: float | None = None,
    inputs: Literal["noisy", "measured"] = "noisy",
    interval: Literal["percentile", "basic"] = "percentile",
    executor: ExecutorConfig | None = None,
    progress: Callable[..., None] | None = None,
    on_cluster: Callable[[Any], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    r"""Bootstrap bands: resample (particles or noise), refit from the MAP, B times.

    Parameters
    ----------
    data_path, out_dir
        Dataset file and output directory: ``bands.csv`` (c, MAP and band of ``mu_h``,
        ``j0`` and ``j0/max j0``, truth when known), ``bootstrap.npz`` (all sample curves,
        per-pixel ``ln k`` bands), ``bands.png``, ``summary.json``, ``jobs/``.
    n_boot
        Number B of bootstrap samples.
    seed
        Seed of the resampling (:func:`operando.inverse._uq.bootstrap_indices`).
    level
        Band coverage (0.99: the 0.5 and 99.5 percentiles).
    map_params
        MAP parameters; default: fitted here as a job.
    refit
        ``"map"`` (seed 002): every refit is warm-started from the MAP (single shooting,
        ``max_iter_single`` steps). ``"recipe"``: every refit runs the whole fit of
        ``options`` from the default initial guess (multiple shooting, continuation,
        every start of a ``smooth_segments`` list), as the MAP did. Where the objective
        has several optima of similar cost (small noisy datasets: HMC chains that do not
        mix), warm-started refits stay in the MAP's basin and their band shows only its
        width; cold refits also show which optimum the fit ends in. Costs a full fit per
        sample.
    kind
        ``"particles"`` (seed 002): each sample draws the particles with replacement.
        ``"parametric"``: each sample keeps all particles and redraws their pixels as
        the MAP's prediction plus fresh Gaussian noise of std ``sigma``
        (:func:`~operando.inverse.resimulate_kinetics`). With few particles a particle
        resample has few distinct values (3 particles: 10) and every one shares the
        MAP's systematic error; the parametric bootstrap draws the noise instead, so its
        band shows the estimator's spread (and bias) under noise like the data's.
    sigma
        Noise std of ``kind="parametric"``; default: the MAP's ``train_rmse``.
    inputs
        ``kind="parametric"`` only. ``"noisy"``: the model's inputs (each half-cycle's
        first frame, the edge pixels) are redrawn too, as the model's initial frame and
        the measured edges plus noise, so the replicates carry the error a noisy initial
        condition and noisy boundary values put into the fit (on the 3-particle
        acceptance problem most of the MAP's error). ``"measured"``: they are kept as
        measured (a band conditional on the inputs; narrower).
    interval
        ``"percentile"``: the 0.5/99.5 percentiles of the samples (seed 002).
        ``"basic"``: the reverse-percentile band ``2 MAP - q``
        (:func:`~operando.inverse.basic_band`; on a log scale for ``j0``), which moves
        the band against the bias the replicates reproduce; use it with
        ``kind="parametric"``, whose replicates have the data's noise model.
    executor, progress, on_cluster
        See :func:`~operando.pipelines._parallel.map_jobs`.
    **options
        Options of :func:`~operando.inverse.learn_kinetics` (JSON values).

    Returns
    -------
    dict
        ``c``, ``map`` curves, ``bands`` (name -> (lo, hi)), ``samples`` (name -> (B, n_c)),
        ``ln_k_lo``/``ln_k_hi`` ``(P, y, x)``, ``truth``, ``results``.
    """
    from ..inverse import normalise_j0
    from ..inverse._uq import band_coverage, basic_band, bootstrap_indices, percentile_band

    t0 = time.perf_counter()
    data_path = os.fspath(data_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    options = _json_options(options, "bootstrap_kinetics")
    store = out / "jobs"
    ds = read_dataset(data_path)
    n_p = int(ds["masks"].shape[0]) if "masks" in ds else 0
    for name, value, choices in (
        ("refit", refit, ("map", "recipe")),
        ("kind", kind, ("particles", "parametric")),
        ("inputs", inputs, ("noisy", "measured")),
        ("interval", interval, ("percentile", "basic")),
    ):
        check_choice(value, choices, where="bootstrap_kinetics", name=name)
    if sigma is not None and (not np.isfinite(sigma) or sigma <= 0):
        raise ParameterError(
            f"sigma = {sigma}", where="bootstrap_kinetics", fix="a positive noise std or None"
        )
    if n_p < (2 if kind == "particles" else 1):
        raise DataError(
            f"{n_p} particle(s): the bootstrap resamples particles",
            where=data_path,
            fix="use a dataset with several particles, or kind='parametric'",
        )
    m = _map_fit(data_path, options, executor, store, None, map_params)
    map_res = map_jobs(
        _kinetics_fit_job, {"map-curves": {"data_path": data_path,
                                           "options": _refit_options(options), "params0": m}},
        executor=ExecutorConfig("serial"), store=store, salt=_salt(data_path),
    )["map-curves"]  # fmt: skip
    noise_std = float(map_res["train_rmse"]) if sigma is None else float(sigma)
    if kind == "parametric":
        # The bootstrap world's truth: the MAP curves reported (map-curves, whose RMS
        # residual is the default sigma). Every sample holds every particle once; the
        # noise seeds are drawn from ``seed``.
        world = {k: np.asarray(map_res[k]) for k in ("mu", "j0", "Z")}
        idx = np.tile(np.arange(n_p), (int(n_boot), 1))
        draws = np.random.SeedSequence(int(seed)).generate_state(int(n_boot))
        job_of = [f"param{b:04d}" for b in range(int(n_boot))]
        jobs = {
            name: {
                "data_path": data_path,
                "options": _refit_options(options) if refit == "map" else options,
                "params0": m if refit == "map" else None,
                "resimulate": {"params": world, "sigma": noise_std, "seed": int(draws[b]),
                               "inputs": inputs},
            }
            for b, name in enumerate(job_of)
        }  # fmt: skip
    elif refit == "map":
        idx = bootstrap_indices(n_p, int(n_boot), seed=int(seed))
        job_of = [f"boot{b:04d}" for b in range(int(n_boot))]
        jobs = {
            f"boot{b:04d}": {
                "data_path": data_path, "options": _refit_options(options),
                "particles": idx[b].tolist(),
                "params0": {"mu": m["mu"], "j0": m["j0"], "Z": np.asarray(m["Z"])[idx[b]]},
            }
            for b in range(int(n_boot))
        }  # fmt: skip
    else:
        # A cold fit depends only on which particles a resample holds (their order only
        # permutes the blocks): equal multisets share one job.
        idx = np.sort(bootstrap_indices(n_p, int(n_boot), seed=int(seed)), axis=1)
        job_of = ["cold-" + "-".join(str(int(i)) for i in row) for row in idx]
        jobs = {
            name: {"data_path": data_path, "options": options, "particles": row.tolist()}
            for name, row in zip(job_of, idx, strict=True)
        }  # fmt: skip
    res = map_jobs(_kinetics_fit_job, jobs, executor=executor, store=store, salt=_salt(data_path),
                   progress=progress, on_cluster=on_cluster)  # fmt: skip
    c = np.asarray(map_res["c_grid"])
    ok = [j for j in job_of if res[j]["status"] != "failed"]  # one entry per sample
    mu_s = np.stack([res[j]["mu_h"] for j in ok])
    j0_s = np.stack([res[j]["j0_curve"] for j in ok])
    j0n_s = normalise_j0(c, j0_s)
    map_curves = {
        "mu_h": np.asarray(map_res["mu_h"]),
        "j0": np.asarray(map_res["j0_curve"]),
        "j0_norm": normalise_j0(c, map_res["j0_curve"]),
    }
    samples = {"mu_h": mu_s, "j0": j0_s, "j0_norm": j0n_s}
    bands = curve_bands(samples, map_curves, interval, level)
    # per-pixel ln k bands: particle i over the samples that contain it (first copy)
    lnk_map = np.asarray(map_res["ln_k"])
    lnk_samples: list[list[np.ndarray]] = [[] for _ in range(n_p)]
    for b, j in enumerate(job_of):
        if res[j]["status"] == "failed":
            continue
        seen: set[int] = set()
        for pos, i in enumerate(idx[b]):
            if int(i) not in seen:
                seen.add(int(i))
                lnk_samples[int(i)].append(np.asarray(res[j]["ln_k"])[pos])
    lo_k = np.full(lnk_map.shape, np.nan)
    hi_k = np.full(lnk_map.shape, np.nan)
    for i in range(n_p):
        if len(lnk_samples[i]) >= 2:
            lk = np.stack(lnk_samples[i])
            lo_k[i], hi_k[i] = (
                basic_band(lk, lnk_map[i], level) if interval == "basic"
                else percentile_band(lk, level)
            )  # fmt: skip
    truth = _truth_curves(data_path, c)
    results: dict[str, Any] = {
        "n_boot": int(n_boot), "n_fits": len(jobs), "n_failed": int(n_boot) - len(ok),
        "level": level, "refit": refit, "kind": kind, "interval": interval,
        "wall_s": time.perf_counter() - t0,
        "outputs": ["bands.csv", "bootstrap.npz", "bands.png"],
    }  # fmt: skip
    sel = _in_range(c)
    for name in ("mu_h", "j0_norm"):
        lo, hi = bands[name]
        results[f"{name}_band_mean_width"] = float(np.mean((hi - lo)[sel]))
        if truth.get(name) is not None:
            results[f"{name}_coverage"] = band_coverage(lo[sel], hi[sel], truth[name][sel])
    cols = {"c": c}
    for name in ("mu_h", "j0", "j0_norm"):
        cols[f"{name}_map"] = map_curves[name]
        cols[f"{name}_lo"], cols[f"{name}_hi"] = bands[name]
        if truth.get(name) is not None:
            cols[f"{name}_true"] = truth[name]
    _save_csv(out / "bands.csv", cols)
    _save_npz(out / "bootstrap.npz", c=c, mu_h=mu_s, j0=j0_s, particles=idx, ln_k_map=lnk_map,
              ln_k_lo=lo_k, ln_k_hi=hi_k)  # fmt: skip
    save_figure(
        uq_bands_figure(c, map_curves, {"bootstrap": bands}, truth, level=level),
        out / "bands.png",
    )
    if kind == "parametric":
        results["sigma"], results["inputs"] = noise_std, inputs
    params = {"data": data_path, "n_boot": int(n_boot), "seed": int(seed), "level": level,
              "refit": refit, "kind": kind, "sigma": sigma, "inputs": inputs,
              "interval": interval, **options}  # fmt: skip
    write_summary(out / "summary.json", command="operando learn kinetics --bootstrap",
                  parameters=params, results=results, inputs=[data_path])  # fmt: skip
    return {
        "c": c, "map": map_curves, "bands": bands, "samples": {"mu_h": mu_s, "j0": j0_s},
        "ln_k_lo": lo_k, "ln_k_hi": hi_k, "ln_k_map": lnk_map, "truth": truth,
        "gauss_newton": {"mu_std": np.asarray(map_res["mu_std"]),
                         "ln_j0_std": np.asarray(map_res["ln_j0_std"])},
        "results": results,
    }  # fmt: skip


def hmc_kinetics(
    data_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    sigma: float | None = None,
    chains: int = 4,
    num_warmup: int = 300,
    num_samples: int = 300,
    seed: int = 0,
    level: float = 0.99,
    init_std: float = 0.5,
    max_tree_depth: int = 8,
    grad: Literal["rev", "fwd"] = "rev",
    map_params: dict[str, Any] | None = None,
    executor: ExecutorConfig | None = None,
    progress: Callable[..., None] | None = None,
    on_cluster: Callable[[Any], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    r"""NUTS on the kinetics posterior (small problems: a few particles), one chain per job.

    The log posterior is :math:`-(\|r\|^2 + \rho_1\|p_{global}\|^2 + \rho_2\sum\|Z_i\|^2)
    / 2\sigma^2` (:func:`operando.inverse._hmc.least_squares_log_posterior` on the fit's
    own residual, single shooting). Chains start at the MAP plus ``init_std`` Gauss–Newton
    standard deviations, with the Gauss–Newton covariance as initial inverse mass matrix.

    Parameters
    ----------
    sigma
        Pixel noise :math:`\sigma_e`; default the MAP's training RMSE.
    chains, num_warmup, num_samples
        NUTS chains (jobs) and steps per chain.
    max_tree_depth
        At most ``2**max_tree_depth`` gradient evaluations per NUTS step (bounds the cost
        of a step when the adapted step size is small).
    grad
        ``"rev"`` (default: reverse mode through the time stepper, 2.4x faster than
        forward mode on the 3-particle acceptance problem, equal to 4e-13) or ``"fwd"``
        (one JVP per parameter).
    seed, level, init_std, map_params, executor, progress, on_cluster, **options
        As in :func:`bootstrap_kinetics`.

    Returns
    -------
    dict
        ``c``, ``bands`` (``mu_h``, ``j0_norm``), ``samples``, ``rhat``/``ess`` (flat),
        ``results`` (max R-hat, min ESS, acceptance, divergences).
    """
    from blackjax.diagnostics import effective_sample_size, potential_scale_reduction

    from ..inverse import normalise_j0
    from ..inverse._uq import band_coverage, percentile_band

    t0 = time.perf_counter()
    data_path = os.fspath(data_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    options = _json_options(options, "hmc_kinetics")
    store = out / "jobs"
    m = _map_fit(data_path, options, executor, store, None, map_params)
    map_res = map_jobs(
        _kinetics_fit_job, {"map-curves": {"data_path": data_path,
                                           "options": _refit_options(options), "params0": m}},
        executor=ExecutorConfig("serial"), store=store, salt=_salt(data_path),
    )["map-curves"]  # fmt: skip
    if sigma is None:
        sigma = float(map_res["train_rmse"])
    cov = _map_covariance(data_path, options, m, float(sigma))
    jobs = {
        f"hmc-chain{ch}": {
            "data_path": data_path, "options": options, "params_map": m, "sigma": float(sigma),
            "seed": int(seed), "chain": ch, "num_warmup": int(num_warmup),
            "num_samples": int(num_samples), "init_std": float(init_std),
            "inverse_mass_matrix": cov, "max_tree_depth": int(max_tree_depth), "grad": grad,
        }
        for ch in range(int(chains))
    }  # fmt: skip
    res = map_jobs(_kinetics_hmc_chain_job, jobs, executor=executor, store=store,
                   salt=_salt(data_path), progress=progress, on_cluster=on_cluster)  # fmt: skip
    flat = np.stack([res[j]["flat"] for j in jobs])  # (chains, draws, n)
    rhat = (np.asarray(potential_scale_reduction(flat, 0, 1)) if int(chains) >= 2
            else np.full(flat.shape[-1], np.nan))  # fmt: skip
    ess = np.asarray(effective_sample_size(flat, 0, 1))
    c = np.asarray(map_res["c_grid"])
    mu_s = np.concatenate([res[j]["mu_h"] for j in jobs])
    j0_s = np.exp(np.concatenate([res[j]["ln_j0"] for j in jobs]))
    j0n_s = normalise_j0(c, j0_s)
    bands = {"mu_h": percentile_band(mu_s, level), "j0_norm": percentile_band(j0n_s, level)}
    truth = _truth_curves(data_path, c)
    results: dict[str, Any] = {
        "sigma": float(sigma), "chains": int(chains), "num_warmup": int(num_warmup),
        "num_samples": int(num_samples), "max_rhat": float(np.nanmax(rhat)),
        "min_ess": float(np.min(ess)),
        "acceptance_rate": [float(res[j]["acceptance_rate"]) for j in jobs],
        "divergences": [int(res[j]["divergences"]) for j in jobs],
        "step_size": [float(res[j]["step_size"]) for j in jobs],
        "wall_s": time.perf_counter() - t0,
    }  # fmt: skip
    sel = _in_range(c)
    for name in ("mu_h", "j0_norm"):
        lo, hi = bands[name]
        results[f"{name}_band_mean_width"] = float(np.mean((hi - lo)[sel]))
        if truth.get(name) is not None:
            results[f"{name}_coverage"] = band_coverage(lo[sel], hi[sel], truth[name][sel])
    _save_npz(out / "hmc.npz", c=c, mu_h=mu_s, j0=j0_s, flat=flat, rhat=rhat, ess=ess)
    params = {
        "data": data_path, "chains": int(chains), "num_warmup": int(num_warmup),
        "num_samples": int(num_samples), "seed": int(seed), "level": level, **options,
    }  # fmt: skip
    write_summary(out / "summary.json", command="operando learn kinetics --hmc",
                  parameters=params, results=results, inputs=[data_path])  # fmt: skip
    return {"c": c, "bands": bands, "samples": {"mu_h": mu_s, "j0": j0_s}, "rhat": rhat,
            "ess": ess, "truth": truth, "results": results}  # fmt: skip


def _map_covariance(
    data_path: str, options: dict[str, Any], params: dict[str, Any], sigma: float
) -> np.ndarray | None:
    """Gauss–Newton posterior covariance ``sigma^2 (J^T J + W)^{-1}`` at the MAP."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from ..inverse._kinetics import MODEL_OPTIONS, kinetics_setup

    setup_keys = {"rho1", "rho2", *MODEL_OPTIONS}
    opts = {k: v for k, v in options.items() if k in setup_keys}
    S = kinetics_setup(read_dataset(data_path), params0=_np_params(params), shooting="single",
                       **opts)  # fmt: skip
    p = {k: jnp.asarray(v, dtype=float) for k, v in _np_params(params).items()}
    x, unravel = ravel_pytree(p)
    J = np.asarray(jax.jacfwd(lambda z: S.residual(unravel(z)))(x))
    rho1 = float(options.get("rho1", 0.0))
    rho2 = float(options.get("rho2", 4.9e-3))
    w, _ = ravel_pytree({"mu": jnp.full(p["mu"].shape, rho1), "j0": jnp.full(p["j0"].shape, rho1),
                         "Z": jnp.full(p["Z"].shape, rho2)})  # fmt: skip
    H = J.T @ J + np.diag(np.asarray(w))
    try:
        cov = sigma**2 * np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        return None
    return 0.5 * (cov + cov.T)


# ------------------------------------------------------------------ Cahn–Hilliard


def _ch_fit_job(data_path: str, realization: int, options: dict[str, Any]) -> dict[str, Any]:
    """Fit one Cahn–Hilliard realisation; the laws on the fit's c-grid."""
    from ..inverse import learn_ch

    fit = learn_ch(read_dataset(data_path), realization=int(realization), **options)
    c = np.asarray(fit.c_grid)
    mu = np.asarray(fit.mu, dtype=float)
    if fit.mu_true is None:  # the additive constant is arbitrary: zero mean on BAND_RANGE
        mu = mu - np.mean(mu[_in_range(c)])
    return {
        "c_grid": c,
        "mu_h": mu,
        "D": np.asarray(fit.D, dtype=float),
        "mu_coefficients": np.asarray(fit.mu_coefficients),
        "D_coefficients": np.asarray(fit.D_coefficients),
        "status": fit.status.value,
        "metrics": {k: float(v) for k, v in fit.metrics.items()},
    }


def bootstrap_ch(
    data_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.99,
    realizations: Sequence[int] | None = None,
    executor: ExecutorConfig | None = None,
    progress: Callable[..., None] | None = None,
    on_cluster: Callable[[Any], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    r"""Bootstrap the Cahn–Hilliard recovery over realisations.

    Every realisation is fitted once (one job each, :func:`operando.inverse.learn_ch`);
    a bootstrap sample draws the realisations with replacement and averages their laws,
    so the band is that of the realisation-averaged :math:`\mu_h(c)` and :math:`D(c)`
    (refitting a resample would refit identical series, hence this is exact and cheap).
    The spread of the individual fits (``single_bands``) is reported too.

    Parameters
    ----------
    data_path, out_dir
        ``(realization, t, y, x)`` dataset file and output directory (``bands.csv``,
        ``bootstrap_ch.npz``, ``bands.png``, ``summary.json``, ``jobs/``).
    n_boot
        Number of bootstrap resamples of the per-realisation fits.
    seed, level
        Resampling seed and band coverage.
    realizations
        Which realisations (default all).
    executor, progress, on_cluster
        See :func:`~operando.pipelines._parallel.map_jobs`.
    **options
        Options of :func:`~operando.inverse.learn_ch` (JSON values).
    """
    from ..inverse._uq import band_coverage, bootstrap_indices, percentile_band

    t0 = time.perf_counter()
    data_path = os.fspath(data_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    options = _json_options(options, "bootstrap_ch")
    ds = read_dataset(data_path)
    n_r = int(ds.sizes.get("realization", 1))
    reals = list(range(n_r)) if realizations is None else [int(r) for r in realizations]
    if len(reals) < 2:
        raise DataError(
            f"{len(reals)} realisation(s): the bootstrap resamples realisations",
            where=data_path,
            fix="simulate or measure several realisations (operando simulate ch --realizations)",
        )
    jobs = {f"ch-r{r}": {"data_path": data_path, "realization": r, "options": options}
            for r in reals}  # fmt: skip
    res = map_jobs(_ch_fit_job, jobs, executor=executor, store=out / "jobs",
                   salt=_salt(data_path), progress=progress, on_cluster=on_cluster)  # fmt: skip
    ok = [j for j in jobs if res[j]["status"] != "failed"]
    if len(ok) < 2:
        raise DataError(f"only {len(ok)} realisation fit(s) succeeded", where=data_path)
    c = np.asarray(res[ok[0]]["c_grid"])
    mu = np.stack([res[j]["mu_h"] for j in ok])
    D = np.stack([res[j]["D"] for j in ok])
    idx = bootstrap_indices(len(ok), int(n_boot), seed=int(seed))
    mu_b, D_b = mu[idx].mean(axis=1), D[idx].mean(axis=1)
    bands = {"mu_h": percentile_band(mu_b, level), "D": percentile_band(D_b, level)}
    single = {"mu_h": percentile_band(mu, level), "D": percentile_band(D, level)}
    from ..data import get_truth

    truth_obj = get_truth(ds)
    truth: dict[str, np.ndarray | None] = {"mu_h": None, "D": None}
    if truth_obj is not None:
        for name, key in (("mu_h", "mu_h"), ("D", "D")):
            if key in truth_obj.functions:
                truth[name] = np.interp(c, *truth_obj.functions[key])
    sel = _in_range(c)
    results: dict[str, Any] = {
        "n_realizations": len(reals), "n_failed": len(reals) - len(ok), "n_boot": int(n_boot),
        "level": level, "wall_s": time.perf_counter() - t0,
        "metrics_per_realization": {j: res[j]["metrics"] for j in ok},
        "outputs": ["bands.csv", "bootstrap_ch.npz", "bands.png"],
    }  # fmt: skip
    for name in ("mu_h", "D"):
        lo, hi = bands[name]
        results[f"{name}_band_mean_width"] = float(np.mean((hi - lo)[sel]))
        if truth[name] is not None:
            results[f"{name}_coverage"] = band_coverage(lo[sel], hi[sel], truth[name][sel])
            results[f"{name}_single_coverage"] = band_coverage(*single[name], truth[name])
    cols = {"c": c, "mu_h_mean": mu.mean(0), "D_mean": D.mean(0)}
    for name in ("mu_h", "D"):
        cols[f"{name}_lo"], cols[f"{name}_hi"] = bands[name]
        if truth[name] is not None:
            cols[f"{name}_true"] = truth[name]
    _save_csv(out / "bands.csv", cols)
    _save_npz(out / "bootstrap_ch.npz", c=c, mu_h=mu, D=D, resamples=idx)
    fig = Figure(figsize=(5.5, 6.5))
    axes = fig.subplots(2, 1, sharex=True)
    for ax, name, arr in ((axes[0], "mu_h", mu), (axes[1], "D", D)):
        for a in arr:
            ax.plot(c, a, color="0.75", lw=0.7)
        ax.fill_between(c, *single[name], color="C0", alpha=0.15,
                        label=f"single-realisation {100 * level:.0f} %")  # fmt: skip
        ax.fill_between(c, *bands[name], color="C1", alpha=0.4,
                        label=f"bootstrap mean {100 * level:.0f} %")  # fmt: skip
        ax.plot(c, arr.mean(0), "k-", lw=1.5, label="mean of fits")
        if truth[name] is not None:
            ax.plot(c, truth[name], "r--", label="truth")
        ax.set_ylabel(r"$\mu_h$" if name == "mu_h" else "D")
        ax.legend(fontsize=7)
    axes[1].set_xlabel("c")
    save_figure(fig, out / "bands.png")
    params = {"data": data_path, "n_boot": int(n_boot), "seed": int(seed), "level": level,
              "realizations": reals, **options}  # fmt: skip
    write_summary(out / "summary.json", command="operando learn ch --bootstrap",
                  parameters=params, results=results, inputs=[data_path])  # fmt: skip
    return {"c": c, "bands": bands, "single_bands": single, "mu_h": mu, "D": D,
            "truth": truth, "results": results}  # fmt: skip


# ------------------------------------------------------------ CLI orchestration


def run_kinetics_uq(
    data_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    fit: Any,
    *,
    n_boot: int = 0,
    bootstrap_refit: Literal["map", "recipe"] = "map",
    bootstrap_kind: Literal["particles", "parametric"] = "particles",
    bootstrap_interval: Literal["percentile", "basic"] = "percentile",
    hmc: bool = False,
    hmc_samples: int = 300,
    hmc_chains: int = 4,
    seed: int = 0,
    level: float = 0.99,
    executor: ExecutorConfig | None = None,
    progress: Callable[[str], Any] | None = None,
    on_cluster: Callable[[Any], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Bootstrap and/or HMC around a MAP fit; ``uq_bands.png`` compares them with Gauss–Newton.

    ``progress(description)`` is a context manager yielding ``update(done, total)`` (the
    CLI's Rich bar); ``fit`` the MAP :class:`~operando.inverse.KineticsFit` of ``options``.
    Writes ``OUT/bootstrap/``, ``OUT/hmc/`` and ``OUT/uq_bands.png``; returns the stage
    results and one console line per stage (``lines``).
    """
    import contextlib

    from ..inverse import normalise_j0

    out = Path(out_dir)
    kind = (executor or ExecutorConfig()).resolved().kind

    def bar(text: str) -> Any:
        return progress(text) if progress is not None else contextlib.nullcontext(None)

    c = np.asarray(fit.c_grid)
    map_curves = {"mu_h": np.asarray(fit.mu), "j0_norm": normalise_j0(c, fit.j0)}
    bands: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {
        "Gauss–Newton": gauss_newton_bands(fit, level)
    }
    params = {k: np.asarray(v) for k, v in fit.params.items()}
    lines: list[str] = []
    record: dict[str, Any] = {}
    truth = _truth_curves(os.fspath(data_path), c)
    if n_boot:
        with bar(f"bootstrap ({kind})") as update:
            b = bootstrap_kinetics(
                data_path, out / "bootstrap", n_boot=n_boot, seed=seed, level=level,
                map_params=params, refit=bootstrap_refit, kind=bootstrap_kind,
                interval=bootstrap_interval, executor=executor, progress=update,
                on_cluster=on_cluster, **options,
            )  # fmt: skip
        bands["bootstrap"] = {k: b["bands"][k] for k in ("mu_h", "j0_norm")}
        r = b["results"]
        record["bootstrap"] = r
        line = (
            f"bootstrap ({bootstrap_kind}, {bootstrap_interval} band): "
            f"{n_boot - r['n_failed']}/{n_boot} refits; "
            "mean 99 % band width "
            f"j0/max {r['j0_norm_band_mean_width']:.3g}, mu_h {r['mu_h_band_mean_width']:.3g}"
        )
        if "j0_norm_coverage" in r:
            line += f"; truth inside on {100 * r['j0_norm_coverage']:.0f} % of c in [0.1, 0.9]"
        lines.append(line + f"; wrote {out / 'bootstrap'}")
    if hmc:
        with bar(f"HMC chains ({kind})") as update:
            h = hmc_kinetics(
                data_path, out / "hmc", chains=hmc_chains, num_warmup=hmc_samples,
                num_samples=hmc_samples, seed=seed, level=level, map_params=params,
                executor=executor, progress=update, on_cluster=on_cluster, **options,
            )  # fmt: skip
        bands["HMC"] = h["bands"]
        r = h["results"]
        record["hmc"] = r
        lines.append(
            f"HMC: max R-hat {r['max_rhat']:.3f}, min ESS {r['min_ess']:.0f}, divergences "
            f"{sum(r['divergences'])}; mean 99 % band width j0/max "
            f"{r['j0_norm_band_mean_width']:.3g}; wrote {out / 'hmc'}"
        )
    save_figure(uq_bands_figure(c, map_curves, bands, truth, level=level), out / "uq_bands.png")
    lines.append(f"band comparison: {out / 'uq_bands.png'}")
    return {"results": record, "bands": bands, "c": c, "lines": lines}


# ------------------------------------------------------------- denoiser ensembles


def _denoiser_member_job(data: Any, member: int, options: dict[str, Any]) -> dict[str, Any]:
    """Train ensemble member ``member``; its array leaves, losses and config."""
    import equinox as eqx
    import jax

    from ..denoise import train_denoiser

    den = train_denoiser(np.asarray(data), members=[int(member)], **options)
    leaves = jax.tree_util.tree_leaves(eqx.filter(den.models[0], eqx.is_array))
    out: dict[str, Any] = {f"leaf{i:04d}": np.asarray(v) for i, v in enumerate(leaves)}
    out["losses"] = np.asarray(den.training["losses"][int(member)])
    out["time_s"] = float(den.training["time_s"])
    out["config"] = den.config.to_dict()
    return out


def train_denoiser_ensemble(
    data: Any,
    *,
    ensemble: int,
    key: int = 0,
    executor: ExecutorConfig | None = None,
    store: str | os.PathLike[str] | None = None,
    progress: Callable[..., None] | None = None,
    on_cluster: Callable[[Any], None] | None = None,
    **options: Any,
) -> Any:
    """Train a bootstrap ensemble of denoisers with one job per member (seed 000: 50 models).

    Equivalent to ``train_denoiser(data, ensemble=ensemble, key=key, **options)`` (the
    members are the same networks, see its ``members`` option), but the members are
    trained by :func:`~operando.pipelines._parallel.map_jobs` on the given executor and
    checkpointed in ``store`` (resume skips finished members).

    Parameters
    ----------
    data
        Noisy array, as for :func:`operando.denoise.train_denoiser`.
    ensemble
        Number of members (>= 1).
    key
        Integer seed (a JAX key cannot be hashed into the job store).
    executor, store, progress, on_cluster
        See :func:`~operando.pipelines._parallel.map_jobs`.
    **options
        Other options of ``train_denoiser`` (JSON values; no callbacks or checkpoints).

    Returns
    -------
    operando.denoise.Denoiser
    """
    import equinox as eqx
    import jax

    from ..denoise._config import DenoiserConfig, build_model
    from ..denoise._denoiser import Denoiser

    if int(ensemble) < 1 or isinstance(key, bool) or not isinstance(key, int | np.integer):
        raise ParameterError(
            f"ensemble = {ensemble}, key = {key!r}",
            where="train_denoiser_ensemble",
            fix="ensemble >= 1 and an integer key",
        )
    options = _json_options(options, "train_denoiser_ensemble")
    arr = np.asarray(data)
    opts = {**options, "ensemble": int(ensemble), "key": int(key)}
    jobs = {f"member{m:03d}": {"data": arr, "member": m, "options": opts}
            for m in range(int(ensemble))}  # fmt: skip
    t0 = time.perf_counter()
    # workers copy this process's float64 switch: random draws (e.g. integer dtypes of
    # the frame resampling) depend on it, and members must equal in-process training
    x64 = bool(jax.config.read("jax_enable_x64"))
    res = map_jobs(_denoiser_member_job, jobs, executor=executor, store=store,
                   salt={"x64": x64}, progress=progress, on_cluster=on_cluster,
                   x64=x64)  # fmt: skip
    first = res[next(iter(jobs))]
    cfg = DenoiserConfig.from_dict(first["config"], source="ensemble job")
    template = build_model(cfg, jax.random.PRNGKey(0))
    params, static = eqx.partition(template, eqx.is_array)
    treedef = jax.tree_util.tree_structure(params)
    n_leaves = treedef.num_leaves
    models = []
    for j in jobs:
        leaves = [jax.numpy.asarray(res[j][f"leaf{i:04d}"]) for i in range(n_leaves)]
        models.append(eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), static))
    losses = np.stack([np.asarray(res[j]["losses"]) for j in jobs])
    tail = max(1, min(100, losses.shape[1]))
    training = {
        "time_s": time.perf_counter() - t0,
        "steps": int(losses.shape[1]),
        "final_loss": float(np.nanmean(losses[:, -tail:])),
        "losses": losses,
        "member_time_s": [float(res[j]["time_s"]) for j in jobs],
    }
    return Denoiser(cfg, tuple(models), training)


# ------------------------------------------------------------------ benchmark job


def _exp_residual(p: dict[str, Any], args: tuple[Any, Any]) -> Any:
    import jax.numpy as jnp

    t, y = args
    return p["a"] * jnp.exp(-p["b"] * t) + p["c"] * jnp.sin(p["w"] * t) - y


def bootstrap_selftest_fit(b: int, n: int = 20000, seed: int = 0) -> dict[str, Any]:
    """One bootstrap refit of a small nonlinear model (benchmarks and cluster checks).

    ``y = a exp(-b t) + c sin(w t)`` (true 2, 1.3, 0.5, 7) with 5 % noise on ``n``
    points drawn from ``seed``; sample ``b`` refits the resample
    :func:`~operando.inverse._uq.bootstrap_indices` ``(n, ., seed)[b]`` by
    Levenberg–Marquardt. The residual is a
    module-level function, so a worker compiles it once and reuses it for later jobs.
    """
    import jax.numpy as jnp

    from ..inverse import least_squares

    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.0, 3.0, n))
    y = 2.0 * np.exp(-1.3 * t) + 0.5 * np.sin(7.0 * t) + 0.05 * rng.standard_normal(n)
    idx = np.random.default_rng([int(seed), int(b)]).integers(0, n, n)
    p0 = {k: jnp.asarray(v) for k, v in {"a": 1.0, "b": 1.0, "c": 0.3, "w": 6.8}.items()}
    res = least_squares(_exp_residual, p0, (jnp.asarray(t[idx]), jnp.asarray(y[idx])),
                        max_steps=50)  # fmt: skip
    out = {k: float(v) for k, v in res.params.items()}
    out.update({"iterations": int(res.iterations), "pid": os.getpid()})
    return out
