"""``operando learn kinetics``: learn j0(c), mu_h(c) and k(x, y) from particle videos.

Register under the ``learn`` sub-app (:mod:`operando.cli._learn`) with::

    app.command("kinetics")(kinetics_command)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import console, progress

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
) -> None:
    """Learn the exchange current j0(c), the free energy mu_h(c) and ln k(x, y) per particle.

    Fits the reaction-limited Allen–Cahn model with Butler–Volmer kinetics to every pixel
    of every frame (seed 002), by Levenberg–Marquardt with forward-mode Jacobians. Exits
    with code 3 if the fit fails; outputs and summary.json are still written.
    """
    from ..pipelines._kinetics import run_learn_kinetics

    with progress("learning kinetics") as update:

        def callback(info: object) -> None:
            update(info.step, 2 * max_iter)  # type: ignore[attr-defined]

        record = run_learn_kinetics(
            data,
            out,
            rho2=rho2,
            degree_mu=degree_mu,
            degree_j0=degree_j0,
            max_iter=max_iter,
            callback=callback,
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
