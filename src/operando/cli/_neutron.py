"""``operando neutron``: operando neutron radiography to lithium transport and activity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import console, progress

__all__ = ["app", "simulate_neutron_command"]

app = typer.Typer(
    help=(
        "Operando neutron radiography: raw intensity, open-beam and dark frames to "
        "attenuation maps, differential (per half-cycle) depth profiles, electrode activity "
        "and sequestered lithium (seed 000 Fig. 5). See docs/neutron.md."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.callback()
def _neutron() -> None:
    """Operando neutron radiography."""


@app.command()
def analyze(
    frames: Annotated[
        str,
        typer.Argument(
            help="Intensity frames: a multi-page TIFF or FITS cube, a directory or glob of "
            "TIFF/FITS frames, a Data Exchange HDF5 (/exchange/data with data_white and "
            "data_dark) or an operando dataset (.nc) with open_beam/dark variables "
            "(operando simulate neutron)."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output directory: attenuation.nc (Sigma, T, Delta Sigma, valid mask), "
            "profiles.csv, activity.csv, neutron_*.png figures, summary.json.",
        ),
    ],
    open_beam: Annotated[
        str | None,
        typer.Option(
            "--open-beam",
            help="Open-beam (flat-field) frames: file, directory or glob (TIFF/FITS). "
            "Averaged after filtering. Not needed when FRAMES holds them.",
        ),
    ] = None,
    dark: Annotated[
        str | None,
        typer.Option(
            "--dark",
            help="Dark-current frames: file, directory or glob. Not needed when FRAMES holds them.",
        ),
    ] = None,
    radius: Annotated[
        float | None,
        typer.Option("--radius", help="Cell radius in cm (cylindrical chord thickness)."),
    ] = None,
    centre: Annotated[
        float | None,
        typer.Option("--centre", help="Column (pixels) of the cell axis; default image centre."),
    ] = None,
    pixels_per_cm: Annotated[
        float | None,
        typer.Option("--pixels-per-cm", help="Pixel calibration (seed 000: 1289.8)."),
    ] = None,
    thickness: Annotated[
        float | None,
        typer.Option("--thickness", help="Flat sample thickness in cm (instead of --radius)."),
    ] = None,
    half_cycles: Annotated[
        str | None,
        typer.Option(
            "--half-cycles",
            help="First frame of each half-cycle ('0,60,120,...'; a last value equal to the "
            "frame count marks the end), or an electrochemistry CSV with time and current "
            "columns (half-cycles start at current sign changes). Default: one half-cycle.",
        ),
    ] = None,
    first: Annotated[
        str,
        typer.Option(
            "--first",
            help="Kind of the first half-cycle with frame boundaries: charge or discharge.",
        ),
    ] = "charge",
    frame_interval: Annotated[
        float | None,
        typer.Option(
            "--frame-interval",
            help="Seconds between frames (frame i at i * interval) to place frames on the "
            "electrochemistry time axis; default the dataset's t coordinate or 0, 1, 2, ...",
        ),
    ] = None,
    charge_sign: Annotated[
        int, typer.Option("--charge-sign", help="+1 if charging current is positive, else -1.")
    ] = 1,
    anode: Annotated[
        str | None,
        typer.Option("--anode", help="Anode region: rows Y0:Y1 or a mask file (.npy/.tif)."),
    ] = None,
    cathode: Annotated[
        str | None,
        typer.Option("--cathode", help="Cathode region: rows Y0:Y1 or a mask file."),
    ] = None,
    denoise: Annotated[
        str | None,
        typer.Option(
            "--denoise",
            help="Denoise intensity, open-beam and dark series after the median filter "
            "with n2v, n2v2 or umvd (trained on the data; the undenoised chain is reported "
            "too for comparison).",
        ),
    ] = None,
    denoise_epochs: Annotated[
        int, typer.Option("--denoise-epochs", help="Training epochs per series.")
    ] = 10,
    denoise_steps: Annotated[
        int, typer.Option("--denoise-steps", help="Training steps per epoch.")
    ] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the denoisers.")] = 0,
    median: Annotated[int, typer.Option("--median", help="Median filter size (odd; 1 = off).")] = 3,
    mask_nonpositive: Annotated[
        bool,
        typer.Option("--mask-nonpositive", help="Mask T <= 0 values instead of stopping."),
    ] = False,
    min_thickness: Annotated[
        float,
        typer.Option(
            "--min-thickness",
            help="Mask pixels with a chord below this fraction of "
            "the largest (the cell rim, where Sigma noise ~ 1/delta).",
        ),
    ] = 0.1,
    min_threshold: Annotated[
        float,
        typer.Option(
            "--min-threshold",
            help="Floor (1/cm) on the Otsu threshold of |Delta "
            "Sigma| (so a half-cycle without change is not split in two).",
        ),
    ] = 0.0,
    figures: Annotated[
        bool, typer.Option("--figures/--no-figures", help="Write the PNG figures.")
    ] = True,
) -> None:
    """Attenuation maps, differential profiles and electrode activity from radiographs.

    3x3 median filter (and optional denoising) of intensity, open-beam and dark frames,
    T = (I - DC)/(OB - DC) with masked near-zero denominators, Sigma = -ln T / delta(x)
    with the cylindrical chord delta(x) = 2 sqrt(r^2 - d(x)^2), Delta Sigma relative to
    each half-cycle's first frame, Otsu activity per electrode at each half-cycle's last
    frame, 20 % active windows, sequestered lithium after the first discharge and the
    dynamic variability (mean 3x3x3 local std).
    """
    from ..pipelines._neutron import analyze_neutron_files

    with progress("neutron analyze") as update:
        res = analyze_neutron_files(
            frames,
            out,
            open_beam=open_beam,
            dark=dark,
            radius_cm=radius,
            centre_px=centre,
            pixels_per_cm=pixels_per_cm,
            thickness_cm=thickness,
            half_cycles=half_cycles,
            first=first,
            frame_interval_s=frame_interval,
            charge_sign=charge_sign,
            anode=anode,
            cathode=cathode,
            denoise=denoise,
            denoise_epochs=denoise_epochs,
            denoise_steps=denoise_steps,
            seed=seed,
            median=median,
            mask_nonpositive=mask_nonpositive,
            min_thickness_fraction=min_thickness,
            min_threshold=min_threshold,
            figures=figures,
            progress=update,
        )
    r = res["results"]
    console.print(
        f"wrote {out}: {r['frames']} frames, {len(r['half_cycles'])} half-cycle(s), "
        f"dynamic variability {r['dynamic_variability']:.4g}"
        + (
            f" (raw {r['dynamic_variability_raw']:.4g}, -{100 * r['variability_reduction']:.0f} %)"
            if "dynamic_variability_raw" in r
            else ""
        )
    )
    for k, v in r["active_fraction"].items():
        console.print(f"  {k}: active fraction {v:.3f}, window {r['active_window_rows'][k]}")
    if r.get("sequestered_rows") is not None:
        console.print(
            f"  sequestered lithium after the first discharge: rows "
            f"{r['sequestered_rows'][0]}:{r['sequestered_rows'][1]}"
        )
    console.print(f"summary: {res['summary']}")


def simulate_neutron_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output dataset file (.nc).")],
    ny: Annotated[int, typer.Option("--ny", help="Rows (depth through the cell).")] = 96,
    nx: Annotated[int, typer.Option("--nx", help="Columns (across the cell).")] = 128,
    frames_per_half_cycle: Annotated[
        int, typer.Option("--frames-per-half-cycle", help="Frames per half-cycle.")
    ] = 6,
    counts: Annotated[
        float, typer.Option("--counts", help="Mean open-beam counts per pixel (noise level).")
    ] = 1500.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the detector noise.")] = 0,
) -> None:
    """Simulate operando neutron radiographs of a cycling cylindrical full cell to OUT.

    Four charge/discharge cycles with lithium sequestered in the anode near the current
    collector; intensity, 5 open-beam and 5 dark frames with shot, read and spot noise;
    ground truth (active fractions, windows, sequestered rows) in the dataset. Analyse with
    'operando neutron analyze OUT --out DIR'. OUT.summary.json is written beside it.
    """
    import json

    from ..io import write_dataset, write_summary
    from ..simulate import simulate_neutron

    ds = simulate_neutron(
        ny=ny,
        nx=nx,
        frames_per_half_cycle=frames_per_half_cycle,
        open_beam_counts=counts,
        seed=seed,
    )
    write_dataset(ds, out)
    tp = json.loads(ds.attrs["truth_parameters"])
    write_summary(
        Path(f"{out}.summary.json"),
        command="simulate neutron",
        parameters={
            "ny": ny,
            "nx": nx,
            "frames_per_half_cycle": frames_per_half_cycle,
            "counts": counts,
            "seed": seed,
        },
        results={
            "output": str(out),
            "shape": list(ds["images"].shape),
            "active_fraction": tp["active_fraction"],
            "sequestered_rows_first_discharge": tp["sequestered_rows_first_discharge"],
        },
    )
    console.print(
        f"wrote {out} ({' x '.join(map(str, ds['images'].shape))} frames, "
        f"sequestered rows {tp['sequestered_rows_first_discharge']})"
    )
