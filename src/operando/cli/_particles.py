"""``operando simulate particles``: synthetic LiFePO4 particle videos with known kinetics.

Register under the ``simulate`` sub-app (:mod:`operando.cli._simulate`) with::

    app.command("particles")(particles_command)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from ._common import console, parse_list

__all__ = ["particles_command"]


def particles_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output dataset file (.nc).")],
    particles: Annotated[int, typer.Option("--particles", min=1, help="Number of particles.")] = 3,
    noise: Annotated[
        float,
        typer.Option("--noise", min=0.0, help="Gaussian pixel noise sigma_e (0: clean)."),
    ] = 0.07,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    mean_area: Annotated[
        float,
        typer.Option("--mean-area", min=10.0, help="Mean particle area in pixels (50 nm)."),
    ] = 490.0,
    half_cycles: Annotated[
        str,
        typer.Option("--half-cycles", help="Range of half-cycles per particle, 'LO,HI'."),
    ] = "1,3",
    frames: Annotated[
        str, typer.Option("--frames", help="Range of frames per half-cycle, 'LO,HI'.")
    ] = "4,10",
    ic_noise: Annotated[
        float,
        typer.Option(
            "--ic-noise",
            min=0.0,
            help="Standard deviation of the iid perturbation of each half-cycle's uniform "
            "initial state (0: a particle at rest; the k heterogeneity alone seeds the "
            "phase mosaic, as in the noisy acceptance test of docs/kinetics.md).",
        ),
    ] = 0.002,
) -> None:
    """Simulate platelet particles (dis)charged at 0.2C–3C, with all truth attached.

    Truth: regular-solution mu_h (Omega = 4.47), CIET j0(c) (lambda = 8.3, c+ = 1), a
    Gaussian random field ln k(x, y) per particle. Writes OUT (NetCDF; layout in
    docs/kinetics.md) and OUT.summary.json.
    """
    from ..config import enable_x64
    from ..io import write_dataset, write_summary
    from ..simulate._particles import simulate_particles

    hc = parse_list(half_cycles, "--half-cycles", int, example="1,2", size=2)
    fr = parse_list(frames, "--frames", int, example="4,6", size=2)
    enable_x64()
    start = time.perf_counter()
    ds = simulate_particles(
        particles, noise=noise, seed=seed, mean_area=mean_area, half_cycles=tuple(hc),
        frames=tuple(fr), ic_noise=ic_noise,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    write_dataset(ds, out)
    write_summary(
        Path(f"{out}.summary.json"),
        command="simulate particles",
        parameters={**json.loads(ds.attrs["truth_parameters"]), "seed": seed},
        results={
            "output": str(out),
            "shape": list(ds["images"].shape),
            "particles": int(ds.sizes["particle"]),
            "half_cycles": int(ds.sizes["realization"]),
            "seconds": round(elapsed, 2),
        },
    )
    console.print(
        f"wrote {out} ({ds.sizes['particle']} particles, {ds.sizes['realization']} "
        f"half-cycles, {elapsed:.1f} s)"
    )
