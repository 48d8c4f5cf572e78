"""``operando simulate``: generate synthetic benchmark datasets with ground truth."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from ._common import console, progress

__all__ = ["app"]

app = typer.Typer(
    help="Simulate benchmark datasets with known ground truth (Cahn–Hilliard, ...).",
    no_args_is_help=True,
)


@app.callback()
def _simulate() -> None:
    """Simulate benchmark datasets with known ground truth."""
    # A callback keeps ``simulate`` a command group even while it has a single command.


@app.command()
def ch(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output dataset file (.nc).")],
    size: Annotated[int, typer.Option("--size", help="Grid points per side.")] = 128,
    frames: Annotated[int, typer.Option("--frames", help="Frames per realisation.")] = 501,
    realizations: Annotated[
        int, typer.Option("--realizations", help="Independent initial conditions.")
    ] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the initial conditions.")] = 0,
) -> None:
    """Simulate the Cahn–Hilliard benchmark (Ω = 3, κ = 2e-3, D = 1 - c) to OUT.

    Writes OUT (NetCDF, clean images + true mu_h, D and parameters as ground truth) and
    OUT.summary.json. The defaults are the paper's benchmark: 10 × 501 × 128 × 128.
    """
    from ..io import write_dataset, write_summary
    from ..simulate import simulate_ch_dataset

    params = {"size": size, "frames": frames, "realizations": realizations, "seed": seed}
    start = time.perf_counter()
    with progress("simulate ch") as update:
        ds = simulate_ch_dataset(
            size=size, frames=frames, realizations=realizations, seed=seed, progress=update
        )
    elapsed = time.perf_counter() - start
    write_dataset(ds, out)
    images = ds["images"].values
    write_summary(
        Path(f"{out}.summary.json"),
        command="simulate ch",
        parameters={**json.loads(ds.attrs["truth_parameters"]), **params},
        results={
            "output": str(out),
            "shape": list(images.shape),
            "t_end": float(ds["t"].values[-1]),
            "value_min": float(images.min()),
            "value_max": float(images.max()),
            "seconds": round(elapsed, 2),
        },
    )
    console.print(
        f"wrote {out} ({' x '.join(map(str, images.shape))}, "
        f"c in [{images.min():.3f}, {images.max():.3f}], {elapsed:.1f} s)"
    )


from ._particles import particles_command  # noqa: E402

app.command("particles")(particles_command)

from ._neutron import simulate_neutron_command  # noqa: E402

app.command("neutron")(simulate_neutron_command)

from ._optical import simulate_optical_command  # noqa: E402

app.command("optical")(simulate_optical_command)
