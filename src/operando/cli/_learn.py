"""``operando learn``: learn constitutive laws from image series.

Register in :mod:`operando.cli` with::

    from ._learn import app as learn_app
    app.add_typer(learn_app, name="learn")
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
    progress,
)

__all__ = ["app"]

app = typer.Typer(
    name="learn",
    help="Learn constitutive laws (chemical potential, diffusivity, ...) from image series "
    "by PDE-constrained optimisation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _learn() -> None:
    """Learn constitutive laws from image series by PDE-constrained optimisation."""


@app.command("ch")
def ch(
    data: Annotated[
        str,
        typer.Argument(
            help="Dataset file with a Cahn–Hilliard image series (t, y, x) or "
            "(realization, t, y, x) of concentrations in (0, 1) on a periodic grid, e.g. "
            "the output of 'operando simulate ch'."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output directory: fit.nc, laws.png, snapshots.png, summary.json.",
        ),
    ],
    degree: Annotated[
        int,
        typer.Option(
            "--degree",
            min=1,
            help="Degree N of the Legendre expansions of mu_h(c) and ln D(c).",
        ),
    ] = 11,
    prior: Annotated[
        bool,
        typer.Option(
            "--prior/--no-prior",
            help="Include the ideal-mixing entropy ln(c/(1-c)) in mu_h (the physical prior).",
        ),
    ] = True,
    snapshots: Annotated[
        int,
        typer.Option(
            "--snapshots",
            min=2,
            help="Number K of snapshots (K-1 multiple-shooting intervals), evenly spaced "
            "over the second half of the series (the coarsening regime).",
        ),
    ] = 7,
    realization: Annotated[
        int,
        typer.Option("--realization", min=0, help="Which realisation of a multi-series file."),
    ] = 0,
    clip: Annotated[
        bool,
        typer.Option(
            "--clip/--no-clip",
            help="Clip values to [0.01, 0.99] first (noisy data; seed 000 S2.1). Without it, "
            "values outside (0, 1) are an error.",
        ),
    ] = False,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=1, help="Maximum Levenberg–Marquardt steps.")
    ] = 50,
    dt: Annotated[
        float | None,
        typer.Option(
            "--dt",
            help="Largest solver time step (default: shortest snapshot interval / 40).",
        ),
    ] = None,
    regularization: Annotated[
        float | None,
        typer.Option(
            "--regularization",
            help="L2 weight on the coefficients, relative to the mean squared pixel error.",
        ),
    ] = None,
    bootstrap: Annotated[
        int,
        typer.Option(
            "--bootstrap",
            min=0,
            help="Also fit every realisation (one job each) and bootstrap the "
            "realisation-averaged laws B times over realisations: 99 % bands of mu_h and D "
            "in OUT/bootstrap/ (0: off; needs a (realization, t, y, x) file).",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resamples.")] = 0,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cluster: ClusterOpt = None,
    cluster_config: ClusterConfigOpt = None,
) -> None:
    """Learn mu_h(c) and D(c) of the Cahn–Hilliard equation from snapshots.

    Fits Legendre expansions of the homogeneous chemical potential and of ln D by
    Levenberg–Marquardt on a multiple-shooting residual (each interval starts from its
    measured snapshot), with exact Jacobians by forward-mode autodiff through the solver.
    kappa is taken from the file's truth parameters when recorded, else 2e-3. Exits with
    code 3 if the fit fails (e.g. the forward model diverges); outputs and summary.json
    are still written, with the explanation.
    """
    from ..pipelines._learn_ch import run_learn_ch

    with progress("learning") as update:

        def callback(info: object) -> None:
            # Steps of the current stage (low-degree warm-up stages restart the count).
            step, cost = info.step, info.cost  # type: ignore[attr-defined]
            update(step, max_steps, description=f"learning (cost {cost:.3g})")

        record = run_learn_ch(
            data,
            out,
            degree=degree,
            prior=prior,
            snapshots=snapshots,
            realization=realization,
            clip=clip,
            max_steps=max_steps,
            dt=dt,
            regularization=regularization,
            callback=callback,
        )
    r = record["results"]
    line = f"{r['status']}: final MSE {r['final_mse']:.3g} after {r['iterations']} steps"
    if "mu_rmse" in r:
        line += f"; mu_rmse {r['mu_rmse']:.3g}, D_rmse {r['D_rmse']:.3g}"
    console.print(f"{line} ({r['wall_s']:.1f} s); wrote {out}")
    if r["status"] != "converged":
        console.print(f"[yellow]{r['status']}: {r['message']}[/yellow]")
    if r["status"] == "failed":
        raise typer.Exit(code=3)
    if bootstrap:
        from ..pipelines._uq import bootstrap_ch
        from ._common import executor_from_options, print_dashboard

        cfg = executor_from_options(workers, scheduler, cluster, cluster_config).resolved()
        opts = {"degree": degree, "prior": prior, "snapshots": snapshots, "clip": clip,
                "max_steps": max_steps}  # fmt: skip
        if dt is not None:
            opts["dt"] = dt
        if regularization is not None:
            opts["regularization"] = regularization
        with progress(f"realisation fits ({cfg.kind})") as update:
            b = bootstrap_ch(
                data, out / "bootstrap", n_boot=bootstrap, seed=seed, executor=cfg,
                progress=update, on_cluster=print_dashboard, **opts,
            )  # fmt: skip
        br = b["results"]
        line = (
            f"bootstrap over {br['n_realizations']} realisations: mean 99 % band width "
            f"mu_h {br['mu_h_band_mean_width']:.3g}, D {br['D_band_mean_width']:.3g}"
        )
        console.print(f"{line}; wrote {out / 'bootstrap'}")
