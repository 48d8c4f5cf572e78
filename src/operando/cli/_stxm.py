"""``operando stxm``: STXM / spectro-ptychography stacks to composition maps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._common import console, progress

__all__ = ["app"]

app = typer.Typer(
    help=(
        "STXM and spectro-ptychography: multi-energy X-ray stacks (ALS .hdr/.xim, NXstxm, "
        "CXI, TIFF + energies) to lithium-fraction (Fe2+/Fe3+) maps with bootstrap "
        "uncertainty, and beamtime planning. See docs/stxm.md."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def composition(
    stack: Annotated[
        str,
        typer.Argument(
            help="Stack file: ALS SDF header (.hdr, with its .xim images), NXstxm (.nxs/.h5), "
            "CXI ptychography (.cxi), operando dataset (.nc) or TIFF (with --energies)."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output dataset (.nc): composition X (images), sigma_composition, "
            "coefficients, residual_rms, thickness_proxy, masks, registration shifts. "
            "OUT.summary.json is written beside it.",
        ),
    ],
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="nnls: non-negative least squares over all energies (needs --references); "
            "two-energy: the 2x2 system of seed 000 S2.2 at 706/713 eV after pre-edge (703 eV) "
            "subtraction, with the paper's LFP/FP values unless --references are given.",
        ),
    ] = "nnls",
    references: Annotated[
        tuple[Path, Path] | None,
        typer.Option(
            "--references",
            help="Two reference spectra (two columns: energy eV, OD): first the lithiated "
            "LiFePO4 / Fe(II) phase whose fraction X is reported, then FePO4 / Fe(III).",
        ),
    ] = None,
    i0: Annotated[
        Path | None,
        typer.Option(
            "--i0",
            help="I0 spectrum (two columns: energy eV, counts), interpolated onto the stack "
            "energies. Default: the dataset's i0 variable, else the median of the background "
            "selected by Otsu thresholding.",
        ),
    ] = None,
    energy_offset: Annotated[
        str,
        typer.Option(
            "--energy-offset",
            help="Energy calibration offset in eV, stack minus references (a feature at E in "
            "the references appears at E + offset in the stack), or 'auto' to fit it by a "
            "grid search (-3..3 eV) minimising the mean NNLS residual.",
        ),
    ] = "0",
    bootstrap: Annotated[
        int,
        typer.Option(
            "--bootstrap",
            help="Bootstrap replicates over energies for the per-pixel sigma_X (0: none; "
            "100 gives sigma_X to ~7 %). NNLS only.",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the bootstrap.")] = 0,
    register: Annotated[
        bool,
        typer.Option(
            "--register/--no-register",
            help="Align the energy planes by sub-pixel phase cross-correlation first.",
        ),
    ] = True,
    reference_frame: Annotated[
        str,
        typer.Option(
            "--reference-frame",
            help="Registration reference: a plane index, first, middle, last or mean.",
        ),
    ] = "mean",
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline",
            help="NNLS baseline fitted with free sign: none, constant or linear in energy "
            "(absorbs non-resonant absorption and I0 drift).",
        ),
    ] = "linear",
    restrict_energies: Annotated[
        bool,
        typer.Option(
            "--restrict-energies",
            help="Fit only the stack energies inside the references' range instead of "
            "stopping with an error.",
        ),
    ] = False,
    min_size: Annotated[
        int, typer.Option("--min-size", help="Smallest particle (pixels) kept by segmentation.")
    ] = 20,
    two_energies: Annotated[
        tuple[float, float, float],
        typer.Option(
            "--two-energies",
            help="Pre-edge, low and high energies (eV, reference scale) of --method two-energy.",
        ),
    ] = (703.0, 706.0, 713.0),
    energies: Annotated[
        Path | None,
        typer.Option("--energies", help="Energy list (one eV value per line) for a TIFF stack."),
    ] = None,
    figures: Annotated[
        Path | None,
        typer.Option(
            "--figures",
            help="Directory for stxm_fraction_map.png and stxm_mean_fit.png.",
        ),
    ] = None,
) -> None:
    """Composition map(s) with uncertainty from a raw multi-energy STXM stack.

    Registers the planes, converts to optical density OD = -ln(I/I0), segments particles
    (Otsu on the mean OD), fits the fraction X of the first reference in every particle
    pixel, bootstraps sigma_X over energies, and writes OUT and OUT.summary.json (mean X
    and sigma_X per particle, registration shifts, energy offset).
    """
    from ..pipelines._stxm import stxm_composition_file

    frame: int | str = (
        int(reference_frame) if reference_frame.lstrip("-").isdigit() else (reference_frame)
    )
    with progress("stxm composition") as update:
        res = stxm_composition_file(
            stack,
            out,
            method=method,  # type: ignore[arg-type]
            references=list(references) if references else None,
            i0=i0,
            energy_offset=energy_offset,
            bootstrap=bootstrap,
            seed=seed,
            register=register,
            reference_frame=frame,
            baseline=baseline,
            restrict_energies=restrict_energies,
            min_size=min_size,
            two_energies=two_energies,
            energies=energies,
            figures=figures,
            progress=update,
        )
    r = res["results"]
    console.print(
        f"wrote {out}: {len(r['particles'])} particle(s), mean X {r['mean_composition']:.3f}"
        + (
            f", mean sigma_X {r['mean_sigma_composition']:.4f}"
            if r["mean_sigma_composition"] is not None
            else ""
        )
        + f", energy offset {r['energy_offset_eV']:+.3f} eV"
    )
    for p in r["particles"]:
        sig = p.get("mean_sigma_composition")
        console.print(
            f"  particle {p['particle']}: {p['pixels']} px, X = {p['mean_composition']:.3f}"
            + (f" ± {sig:.4f}" if sig is not None else "")
        )
    console.print(f"summary: {res['summary']}")


@app.command("plan-energies")
def plan_energies(
    noise: Annotated[
        float,
        typer.Option(
            "--noise",
            help="OD noise per energy (standard deviation); about 1/sqrt(counts).",
        ),
    ],
    references: Annotated[
        tuple[Path, Path] | None,
        typer.Option(
            "--references",
            help="Two reference spectra (energy eV, OD per unit amount). Default: analytic "
            "LFP/FP-like model spectra.",
        ),
    ] = None,
    composition: Annotated[
        float, typer.Option("--composition", help="True fraction X of the first reference.")
    ] = 0.5,
    amount: Annotated[
        float,
        typer.Option("--amount", help="Total amount c1 + c2 (edge-jump scale, thickness)."),
    ] = 1.0,
    n: Annotated[
        list[int] | None,
        typer.Option("--n", help="Number of energies to evaluate (repeat: --n 11 --n 65)."),
    ] = None,
    uniform_range: Annotated[
        tuple[float, float] | None,
        typer.Option(
            "--uniform-range",
            help="Energy range (eV) of uniform sampling. Default: the references' range.",
        ),
    ] = None,
    pre_edge: Annotated[
        float | None,
        typer.Option("--pre-edge", help="Pre-edge energy of edge sampling (default range start)."),
    ] = None,
    rising: Annotated[
        tuple[float, float],
        typer.Option("--rising", help="Rising-edge window (eV) of edge-focused sampling."),
    ] = (705.0, 707.0),
    falling: Annotated[
        tuple[float, float],
        typer.Option("--falling", help="Falling-edge window (eV) of edge-focused sampling."),
    ] = (711.0, 714.0),
    baseline: Annotated[
        str, typer.Option("--baseline", help="Baseline fitted: none, constant or linear.")
    ] = "constant",
    trials: Annotated[
        int,
        typer.Option(
            "--trials", help="Monte-Carlo trials per point to check the formula (0: off)."
        ),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the Monte Carlo.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the table as JSON to this file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Predict sigma_X for uniform vs edge-focused energy sampling (seed 000 Fig. S4).

    Linearised least-squares error propagation: sigma_X for n evenly spaced energies and
    for n = 2k+1 edge-focused ones (one pre-edge, k on each edge), given the reference
    spectra and the OD noise level; optionally checked by Monte Carlo.
    """
    from ..pipelines._stxm import stxm_plan_energies

    rec = stxm_plan_energies(
        references=list(references) if references else None,
        noise=noise,
        composition=composition,
        amount=amount,
        n_values=tuple(n) if n else (5, 11, 21, 33, 45, 65),
        uniform_range=uniform_range,
        pre_edge=pre_edge,
        rising=rising,
        falling=falling,
        baseline=baseline,
        trials=trials,
        seed=seed,
        out=out,
    )
    if as_json:
        typer.echo(json.dumps(rec, indent=2))
        return
    from rich.table import Table

    t = Table(title=f"sigma_X at OD noise {noise:g}, X = {composition:g}")
    for col in ("strategy", "n", "sigma_X", "sigma_X (MC)"):
        t.add_column(col)
    for row in rec["rows"]:
        mc = row["sigma_X_mc"]
        t.add_row(
            row["strategy"],
            str(row["n"]),
            f"{row['sigma_X']:.4g}",
            "-" if mc is None else f"{mc:.4g}",
        )
    console.print(t)
