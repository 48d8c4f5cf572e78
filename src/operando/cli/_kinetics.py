"""``operando learn kinetics``: learn j0(c), mu_h(c) and k(x, y) from particle videos.

Register under the ``learn`` sub-app (:mod:`operando.cli._learn`) with::

    app.command("kinetics")(kinetics_command)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    ClusterConfigOpt,
    ClusterOpt,
    SchedulerOpt,
    WorkersOpt,
    console,
    parse_list,
    progress,
)

__all__ = ["kinetics_command"]


def kinetics_command(
    data: Annotated[
        str,
        typer.Argument(
            help="Particle-video dataset: images (realization, t, y, x) of Li fraction with "
            "frame_time, particle_of and masks, e.g. the output of "
            "'operando simulate particles' (layout: docs/kinetics.md)."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output directory: fit.nc, laws.csv, laws.png, frames.png, k_maps.png, "
            "summary.json.",
        ),
    ],
    rho2: Annotated[
        float,
        typer.Option(
            "--rho2",
            min=0.0,
            help="Weight of sum |Z_i|^2, the prior on ln k (objective in squared pixel "
            "errors; sigma_e^2 is the Bayesian choice).",
        ),
    ] = 4.9e-3,
    degree_mu: Annotated[
        int,
        typer.Option(
            "--degree-mu",
            min=3,
            help="Legendre degree of mu_h (degree - 2 free coefficients after the binodal "
            "constraint).",
        ),
    ] = 5,
    degree_j0: Annotated[
        int, typer.Option("--degree-j0", min=1, help="Legendre degree of ln j0(c).")
    ] = 8,
    max_iter: Annotated[
        int,
        typer.Option(
            "--max-iter",
            min=1,
            help="Maximum Levenberg–Marquardt steps per stage (multiple, then single shooting).",
        ),
    ] = 30,
    subgrid: Annotated[
        int,
        typer.Option(
            "--subgrid",
            min=1,
            help="Solver grid refinement: the model runs on subgrid x subgrid sub-pixels per "
            "pixel and is averaged onto the pixels (1: the pixel grid).",
        ),
    ] = 1,
    damping_smoothing: Annotated[
        float,
        typer.Option(
            "--damping-smoothing",
            min=0.0,
            help="Smoothing (1/h) of the time stepper's damping switch max(0, -f_c): > 0 "
            "removes the switch's kinks from the objective (for HMC); 0: the exact switch.",
        ),
    ] = 0.0,
    smooth_initial: Annotated[
        str,
        typer.Option(
            "--smooth-initial",
            help="Gaussian blur (pixels, >= 0) of the interior of each half-cycle's first "
            "frame, the initial condition (0: as measured), or 'mean': the interior's "
            "measured mean exactly (noisy data whose half-cycles start near-uniform).",
        ),
    ] = "0",
    smooth_segments: Annotated[
        str,
        typer.Option(
            "--smooth-segments",
            help="Gaussian blur (pixels) of the segment starts of the multiple-shooting "
            "stages, mid-half-cycle frames ('': as --smooth-initial). Several "
            "comma-separated values run one fit each and keep the lowest objective "
            "(multistart). Noisy data: --smooth-segments 1,1.5,2 --smooth-initial 10 "
            "--continuation 2,4 --rho2 sigma_e^2 --max-iter-single 200.",
        ),
    ] = "",
    max_iter_single: Annotated[
        int | None,
        typer.Option(
            "--max-iter-single",
            min=1,
            help="Maximum steps of the final single-shooting stage (default: --max-iter).",
        ),
    ] = None,
    continuation: Annotated[
        str,
        typer.Option(
            "--continuation",
            help="Lower ln j0 degrees fitted first, comma-separated and increasing (e.g. "
            "'2,4'), each by multiple shooting from the previous optimum; recommended from "
            "the default start with --degree-j0 >= 6 ('': off).",
        ),
    ] = "",
    cv: Annotated[
        int,
        typer.Option(
            "--cv",
            min=0,
            help="K-fold cross-validation of rho2 over half-cycles per particle (K >= 2; "
            "0: off), with mu_h and j0 fixed at the MAP for --rho2; the main fit then uses "
            "the one-standard-error choice. Writes OUT/cv/.",
        ),
    ] = 0,
    rho2_grid: Annotated[
        str,
        typer.Option("--rho2-grid", help="Comma-separated rho2 candidates for --cv."),
    ] = "0.001,0.0049,0.02,0.1,0.5",
    bootstrap: Annotated[
        int,
        typer.Option(
            "--bootstrap",
            min=0,
            help="B bootstrap refits (particles resampled with replacement, warm-started "
            "from the MAP): 99 % bands of mu_h, j0 and per-pixel ln k in OUT/bootstrap/.",
        ),
    ] = 0,
    bootstrap_refit: Annotated[
        str,
        typer.Option(
            "--bootstrap-refit",
            help="How bootstrap refits start: 'map' (warm start from the MAP, single "
            "shooting) or 'recipe' (each one the whole fit from the default start with "
            "these options: slower, also shows which optimum a fit ends in).",
        ),
    ] = "map",
    bootstrap_kind: Annotated[
        str,
        typer.Option(
            "--bootstrap-kind",
            help="What a bootstrap sample redraws: 'particles' (resampled with "
            "replacement, seed 002) or 'parametric' (all particles; every pixel, first "
            "frames and edges included, redrawn as the MAP's prediction plus Gaussian "
            "noise of its RMS residual: for datasets with few particles).",
        ),
    ] = "particles",
    bootstrap_interval: Annotated[
        str,
        typer.Option(
            "--bootstrap-interval",
            help="Band of the bootstrap samples: 'percentile' (their 0.5/99.5 "
            "percentiles, seed 002) or 'basic' (2 MAP - percentiles, on a log scale for "
            "j0: moves the band against the bias the replicates reproduce; use with "
            "--bootstrap-kind parametric).",
        ),
    ] = "percentile",
    hmc: Annotated[
        bool,
        typer.Option(
            "--hmc",
            help="NUTS sampling of the posterior (4 chains; small problems: a few "
            "particles), with R-hat and ESS, in OUT/hmc/.",
        ),
    ] = False,
    hmc_samples: Annotated[
        int, typer.Option("--hmc-samples", min=10, help="Warm-up and kept draws per chain.")
    ] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Seed of folds, resamples and HMC.")] = 0,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cluster: ClusterOpt = None,
    cluster_config: ClusterConfigOpt = None,
) -> None:
    """Learn the exchange current j0(c), the free energy mu_h(c) and ln k(x, y) per particle.

    Fits the reaction-limited Allen–Cahn model with Butler–Volmer kinetics to every pixel
    of every frame (seed 002), by Levenberg–Marquardt with forward-mode Jacobians. Exits
    with code 3 if the fit fails; outputs and summary.json are still written. --cv,
    --bootstrap and --hmc run many fits through the executor chosen by --workers,
    --scheduler or --cluster (docs/parallel.md); re-running with the same --out resumes.
    """
    from ..errors import ParameterError, check_choice
    from ..pipelines._kinetics import run_learn_kinetics

    degrees = tuple(parse_list(continuation, "--continuation", int, example="2,4"))
    smooth_init = _parse_blur(smooth_initial)
    smooth = parse_list(smooth_segments, "--smooth-segments", float, example="1,1.5,2")
    if any(v < 0 for v in smooth):
        raise ParameterError(f"{smooth}", where="--smooth-segments", fix="values >= 0")
    smooth_opt: float | list[float] | None = (
        None if not smooth else smooth[0] if len(smooth) == 1 else smooth
    )
    check_choice(bootstrap_refit, ("map", "recipe"), where="--bootstrap-refit")
    check_choice(bootstrap_kind, ("particles", "parametric"), where="--bootstrap-kind")
    check_choice(bootstrap_interval, ("percentile", "basic"), where="--bootstrap-interval")
    uq = _uq_options(cv, rho2_grid, workers, scheduler, cluster, cluster_config)
    model_opts = {"subgrid": subgrid, "damping_smoothing": damping_smoothing,
                  "smooth_initial": smooth_init,
                  "smooth_segments": smooth_opt, "max_iter_single": max_iter_single,
                  "continuation": list(degrees)}  # fmt: skip
    if cv:
        rho2 = _run_cv(data, out, cv, rho2, degree_mu, degree_j0, max_iter, seed, uq,
                       model_opts)  # fmt: skip

    with progress("learning kinetics") as update:

        def callback(info: object) -> None:
            update(info.step, (2 + len(degrees)) * max_iter)  # type: ignore[attr-defined]

        record = run_learn_kinetics(
            data,
            out,
            rho2=rho2,
            degree_mu=degree_mu,
            degree_j0=degree_j0,
            max_iter=max_iter,
            callback=callback,
            subgrid=subgrid,
            damping_smoothing=damping_smoothing,
            smooth_initial=smooth_init,
            smooth_segments=smooth_opt,
            max_iter_single=max_iter_single,
            continuation=degrees,
        )
    r = record["results"]
    line = f"{r['status']}: train RMSE {r['train_rmse']:.4g} after {r['iterations']} steps"
    if "j0_rel_rmse" in r:
        line += (
            f"; j0_rel_rmse {r['j0_rel_rmse']:.3g}, mu_rmse {r['mu_rmse']:.3g}, "
            f"lnk_corr {r.get('lnk_corr', float('nan')):.3g}"
        )
    console.print(f"{line} ({r['wall_s']:.1f} s); wrote {out}")
    if r["status"] == "failed":
        console.print(f"[yellow]failed: {r['message']}[/yellow]")
        raise typer.Exit(code=3)
    if bootstrap or hmc:
        from ..pipelines._uq import run_kinetics_uq

        # the refits use the MAP's model (initial-frame smoothing and solver grid included)
        fit_opts = {"rho2": rho2, "degree_mu": degree_mu, "degree_j0": degree_j0,
                    "max_iter": max_iter, **model_opts}  # fmt: skip
        uq_res = run_kinetics_uq(
            data, out, record["fit"], n_boot=bootstrap, bootstrap_refit=bootstrap_refit,
            bootstrap_kind=bootstrap_kind, bootstrap_interval=bootstrap_interval,
            hmc=hmc, hmc_samples=hmc_samples,
            seed=seed, executor=uq["executor"], progress=progress,
            on_cluster=uq["on_cluster"], **fit_opts,
        )  # fmt: skip
        for text in uq_res["lines"]:
            console.print(text)


def _uq_options(
    cv: int,
    rho2_grid: str,
    workers: int | None,
    scheduler: str | None,
    cluster: str | None,
    cluster_config: str | None,
) -> dict:
    """Validate the UQ flags; the executor of the shared parallel options."""
    from ..errors import ParameterError
    from ._common import executor_from_options, print_dashboard

    if cv == 1:
        raise ParameterError("--cv 1", where="--cv", fix="use K >= 2 folds (or 0: off)")
    grid = parse_list(rho2_grid, "--rho2-grid", float, example="0.001,0.01,0.1")
    if cv and (len(grid) < 2 or min(grid) < 0):
        raise ParameterError(f"{grid}", where="--rho2-grid", fix="give at least two values >= 0")
    executor = executor_from_options(workers, scheduler, cluster, cluster_config).resolved()
    return {"grid": grid, "executor": executor, "on_cluster": print_dashboard}


def _run_cv(
    data: str,
    out: Path,
    k: int,
    rho2: float,
    degree_mu: int,
    degree_j0: int,
    max_iter: int,
    seed: int,
    uq: dict,
    model_opts: dict,
) -> float:
    """Cross-validate rho2 into OUT/cv; return the one-standard-error choice."""
    from ..pipelines._uq import cross_validate_kinetics

    with progress(f"cross-validation ({uq['executor'].kind})") as update:
        cvr = cross_validate_kinetics(
            data, out / "cv", k=k, rho2_grid=uq["grid"], seed=seed,
            executor=uq["executor"], progress=update, on_cluster=uq["on_cluster"],
            rho2=rho2, degree_mu=degree_mu, degree_j0=degree_j0, max_iter=max_iter,
            **model_opts,
        )  # fmt: skip
    r = cvr["results"]
    console.print(
        f"cross-validation: rho2 = {r['chosen_rho2']:.3g} (one-SE rule; minimum at "
        f"{r['best_rho2']:.3g}), validation RMSE {r['val_rmse_at_choice']:.4g} ± "
        f"{r['val_rmse_se_at_choice']:.2g}; wrote {out / 'cv'}"
    )
    return float(r["chosen_rho2"])


def _parse_blur(text: str) -> float | str:
    """``--smooth-initial``: a blur >= 0 (pixels) or ``'mean'``."""
    from ..errors import ParameterError

    if text.strip().lower() == "mean":
        return "mean"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise ParameterError(
            f"{text!r} is neither a blur >= 0 nor 'mean'", where="--smooth-initial",
            fix="e.g. --smooth-initial 1.5, or --smooth-initial mean",
        )  # fmt: skip
    return value
