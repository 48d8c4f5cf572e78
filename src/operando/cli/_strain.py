"""``operando strain``: learn the composition–eigenstrain law from strain + composition maps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._common import console

__all__ = ["app"]

app = typer.Typer(
    help=(
        "Chemo-mechanics (seed 003): learn the composition-eigenstrain law f(X) from a "
        "composition map and a 4D-STEM strain map under stress equilibrium (M1), compare with "
        "direct regression (M0) and a dislocation model (M2), map residual strain. "
        "See docs/strain.md."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def learn(
    composition: Annotated[
        list[Path],
        typer.Option(
            "--composition",
            "-x",
            help="Composition map X (rows, cols), NaN outside the particle (.npy, .npz[:key], "
            ".tif, .h5[:/key], .nc; e.g. from `operando stxm composition`). Repeat once per "
            "particle.",
        ),
    ],
    strain: Annotated[
        list[Path],
        typer.Option(
            "--strain",
            "-s",
            help="Lattice strain map (rows, cols, 3) or (3, rows, cols) with components "
            "(e_aa, e_cc, e_ac), tensor shear, a along columns and c along rows. Repeat once "
            "per particle, in the order of --composition.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output directory: law_m*.csv, residuals.npz, "
            "model_errors.json, strain_*.png figures, summary.json.",
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="m0: direct pixel-wise regression; m1: stress equilibrium (coherency "
            "strain); m2: m1 plus a [001](100) edge-dislocation slip field. M0 and M1 are "
            "always fitted for the comparison; the residual maps are those of this model.",
        ),
    ] = "m1",
    degree: Annotated[
        str,
        typer.Option(
            "--degree",
            help="Highest Legendre degree N of f(X) (1 = Vegard, the paper's two terms), or "
            "'auto' to choose it by 5-fold validation with the one-standard-error rule.",
        ),
    ] = "auto",
    max_degree: Annotated[
        int, typer.Option("--max-degree", help="Largest degree tried by --degree auto.")
    ] = 4,
    mask: Annotated[
        list[Path] | None,
        typer.Option(
            "--mask",
            help="Particle mask per particle (nonzero inside); default: finite pixels.",
        ),
    ] = None,
    register: Annotated[
        bool,
        typer.Option(
            "--register/--no-register",
            help="Affinely register each composition map onto its strain map first "
            "(maximise the correlation of X with e_aa over pixels >= 4 from the particle "
            "edge, plus the overlap of the particle outlines).",
        ),
    ] = False,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="plane_stress (thin platelet, sigma_bb = 0; default) or plane_strain.",
        ),
    ] = "plane_stress",
    strain_format: Annotated[
        str,
        typer.Option(
            "--strain-format",
            help="array, or py4dstem: a strain map saved by py4DSTEM (EMD/HDF5; read without "
            "py4DSTEM; e_xx, e_yy, e_xy taken as aa, cc, ac; mask 0 -> outside).",
        ),
    ] = "array",
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Learn f(X) with 95 % bands and df/dX; write residual maps and the model-error table."""
    from ..errors import ParameterError
    from ..pipelines._strain import strain_learn

    if degree == "auto":
        deg = None
    else:
        try:
            deg = int(degree)
        except ValueError:
            raise ParameterError(
                f"degree {degree!r}", where="--degree", fix="an integer >= 0 or 'auto'"
            ) from None
    res = strain_learn(
        [str(p) for p in composition],
        [str(p) for p in strain],
        out,
        model=model,
        degree=deg,
        max_degree=max_degree,
        masks=[str(p) for p in mask] if mask else None,
        register=register,
        mode=mode,
        strain_format=strain_format,
    )
    if as_json:
        console.print_json(json.dumps(res, default=float))
        return
    errs = res["model_errors"]
    for name, f in res["fits"].items():
        console.print(
            f"{name.upper()}: degree {f['degree']}, model error {f['model_error']:.3e}, "
            f"mean df/dX (a, c) = ({f['dfdx_mean'][0]:.4f}, {f['dfdx_mean'][1]:.4f}), "
            f"range ({f['dfdx_range'][0]:.4f}, {f['dfdx_range'][1]:.4f})"
        )
    if "m1_vs_m0_reduction" in errs:
        console.print(
            f"M1 lowers the model error by {100 * errs['m1_vs_m0_reduction']:.1f} % vs M0"
        )
    if "m2_vs_m1_reduction" in errs:
        console.print(f"M2 lowers it by a further {100 * errs['m2_vs_m1_reduction']:.1f} %")
    console.print(f"outputs in {out}")


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    particles: Annotated[int, typer.Option("--particles", help="Number of particles.")] = 3,
    law: Annotated[str, typer.Option("--law", help="linear (Vegard) or nonlinear.")] = "linear",
    noise: Annotated[
        float, typer.Option("--noise", help="Strain noise standard deviation (4D-STEM ~1e-3).")
    ] = 1e-3,
    dislocations: Annotated[
        int, typer.Option("--dislocations", help="Slip patches per particle (0: none).")
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Synthetic phase-separated LiFePO4 particles: composition_k.npy, strain_k.npy, truth_k.npz."""
    from ..pipelines._strain import strain_simulate

    res = strain_simulate(
        out, n_particles=particles, law=law, noise=noise, dislocations=dislocations, seed=seed
    )
    console.print(f"wrote {len(res['files'])} files to {out}")
