"""``operando enhance``: InDI super-resolution of tomography volumes (seed 001).

Registered by the CLI root as::

    app.add_typer(_enhance_app, name="enhance")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._common import console, progress

__all__ = ["app"]

app = typer.Typer(
    help="Generative enhancement of tomography: train InDI on one low/high-quality pair, "
    "apply it to unseen volumes, evaluate it with honest metrics.",
    no_args_is_help=True,
)


def _steps_list(text: str) -> tuple[int, ...]:
    from ..errors import ParameterError

    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if not vals or min(vals) < 1:
        raise ParameterError(
            f"--steps {text!r} is not a comma-separated list of positive integers",
            where="--steps",
            fix="e.g. --steps 1,2,4,8,16",
        )
    return vals


@app.command()
def train(
    lq: Annotated[
        str, typer.Option("--lq", help="Low-quality volume (z, y, x), any readable file.")
    ],
    hq: Annotated[
        str,
        typer.Option(
            "--hq", help="High-quality volume of the central field of view at half the voxel size."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs.")] = 20,
    method: Annotated[
        str, typer.Option("--method", help="indi, or regression (the CNN baseline).")
    ] = "indi",
    steps_per_epoch: Annotated[
        int | None,
        typer.Option("--steps-per-epoch", help="Default: one pass over non-overlapping crops."),
    ] = None,
    crop: Annotated[int, typer.Option("--crop", help="Random crop side (pixels).")] = 48,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Crops per step.")] = 4,
    learning_rate: Annotated[
        float, typer.Option("--lr", help="Peak learning rate of the one-cycle cosine schedule.")
    ] = 5e-4,
    filters: Annotated[
        int, typer.Option("--filters", help="U-Net first-level filters (the paper: 64).")
    ] = 16,
    depth: Annotated[int, typer.Option("--depth", help="U-Net down-sampling levels.")] = 2,
    loss: Annotated[str, typer.Option("--loss", help="mae_mse (paper), l1 or l2.")] = "mae_mse",
    p_one: Annotated[
        float, typer.Option("--p-one", help="Probability of sampling t = 1 in training.")
    ] = 0.05,
    register: Annotated[
        str, typer.Option("--register", help="translation, affine or none (sub-voxel).")
    ] = "translation",
    steps: Annotated[
        int, typer.Option("--steps", help="Default InDI steps stored with the model.")
    ] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Train InDI (or the CNN baseline) on one paired low/high-quality scan.

    The LQ volume is cropped to the HQ field of view (centred), up-sampled x2 with the
    fixed cubic resampler, registered sub-voxel, sliced into xy pairs (the last ~10 % held
    out) and normalised to [-1, 1]. Writes OUT/weights.eqx, OUT/config.json (architecture,
    normalisation, training) and OUT/summary.json.
    """
    from ..pipelines._enhance import enhance_train

    with progress(f"enhance train {method}") as bar:
        res = enhance_train(
            lq,
            hq,
            out,
            method=method,
            epochs=epochs,
            seed=seed,
            register=register,
            steps_per_epoch=steps_per_epoch,
            crop=crop,
            batch_size=batch_size,
            learning_rate=learning_rate,
            base_filters=filters,
            depth=depth,
            loss=loss,
            p_one=p_one,
            steps=steps if method == "indi" else 1,
            callback=lambda i, n, loss: bar(
                i, n, description=f"enhance train {method} (loss {loss:.4f})"
            ),
        )
    console.print(
        f"model -> {out}  (loss {res['final_loss']:.4f}, {res['training_time_s']:.0f} s, "
        f"registration shift {[round(v, 2) for v in res['registration']['shift']]})"
    )


@app.command()
def apply(
    volume: Annotated[str, typer.Argument(help="Low-quality volume (z, y, x) to enhance.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory (enhance train).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output dataset file (.nc).")],
    steps: Annotated[
        int | None, typer.Option("--steps", help="InDI steps N (default: the model's, 8).")
    ] = None,
    tile: Annotated[
        int | None, typer.Option("--tile", help="Tile side for large slices (pixels).")
    ] = None,
    no_z: Annotated[
        bool, typer.Option("--no-z", help="Skip the cubic interpolation along z.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Skip the check that the grey values match the training."),
    ] = False,
) -> None:
    """Enhance VOLUME slice by slice (xy), then interpolate along z to isotropic voxels.

    Writes OUT (dims z, y, x at half the voxel size) and OUT.summary.json with the
    slice-consistency report (ratio of neighbouring-slice differences enhanced vs
    up-sampled input: values well above 1 flag slice-wise invented detail).
    """
    from ..pipelines._enhance import enhance_apply

    res = enhance_apply(
        volume,
        model,
        out,
        steps=steps,
        tile=tile,
        z_interpolate=not no_z,
        check_normalisation=not force,
    )
    c = res["slice_consistency"]
    console.print(
        f"enhanced {res['shape']} -> {out} in {res['time_s']:.1f} s; slice consistency ratio "
        f"{c['ratio']:.2f}, neighbour correlation {c['neighbour_correlation']:.3f}"
    )


@app.command()
def evaluate(
    lq: Annotated[str, typer.Option("--lq", help="Low-quality volume of the training pair.")],
    hq: Annotated[str, typer.Option("--hq", help="High-quality volume of the training pair.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="InDI model directory.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    cnn: Annotated[
        Path | None, typer.Option("--cnn", help="Also score a regression (CNN) model directory.")
    ] = None,
    steps: Annotated[
        str, typer.Option("--steps", help="Comma-separated InDI step counts N.")
    ] = "1,2,4,8,16",
    mask: Annotated[
        str | None,
        typer.Option("--mask", help="Particle mask on the HQ grid (default: Otsu of the HQ scan)."),
    ] = None,
    profiles: Annotated[int, typer.Option("--profiles", help="Edge profiles per slice.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Score InDI (as a function of N), bicubic and optionally the CNN on held-out slices.

    Metrics: PSNR, SSIM, SIFT congruent points and unpaired-keypoint fraction, edge-spread
    FWHM (physical units), CNR. Writes OUT/metrics.json, OUT/metrics.md, OUT/crops.png,
    OUT/profiles.png and OUT/summary.json.
    """
    from ..pipelines._enhance import enhance_evaluate, metrics_markdown

    res = enhance_evaluate(
        lq, hq, model, out, cnn=cnn, steps=_steps_list(steps), mask=mask, n_profiles=profiles
    )
    if as_json:
        typer.echo(json.dumps(res["metrics"], indent=2))
    else:
        console.print(metrics_markdown(res["metrics"], res["unit"]), markup=False)


@app.command()
def phantom(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    size: Annotated[int, typer.Option("--size", help="LQ slice side (voxels, even).")] = 64,
    slices: Annotated[int, typer.Option("--slices", help="LQ slices (even).")] = 24,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Write a synthetic SiO_x phantom pair for trying the workflow.

    OUT/lq.nc (LQ scan, 100 nm voxels), OUT/hq.nc (HQ scan of the central eighth, 50 nm,
    slightly misaligned), OUT/mask.nc (particle mask on the HQ grid, as moved),
    OUT/insitu_lq.nc (the unseen in-situ sample: grown, cracked particles) and
    OUT/summary.json.
    """
    import numpy as np
    from scipy import ndimage as ndi

    from ..data import make_dataset
    from ..io import write_dataset, write_summary
    from ..simulate import simulate_enhancement_pair

    shape = (slices, size, size)
    pair = simulate_enhancement_pair(shape, seed=seed)
    insitu = simulate_enhancement_pair(shape, seed=seed, insitu=True)
    out.mkdir(parents=True, exist_ok=True)
    fine = tuple(2 * s for s in shape)
    sl = tuple(slice(f // 4, f // 4 + s) for f, s in zip(fine, shape, strict=True))
    moved = ndi.shift(pair.phantom.mask.astype(float), pair.shift, order=1)[sl] > 0.5
    dims = ("z", "y", "x")
    for name, arr, px in (
        ("lq", pair.lq, pair.lq_voxel),
        ("hq", pair.hq, pair.hq_voxel),
        ("mask", moved.astype(np.float64), pair.hq_voxel),
        ("insitu_lq", insitu.lq, insitu.lq_voxel),
    ):
        write_dataset(
            make_dataset(arr, dims=dims, pixel_size=px, pixel_unit="nm"), out / f"{name}.nc"
        )
    write_summary(
        out / "summary.json",
        command="enhance phantom",
        parameters={"size": size, "slices": slices, "seed": seed, **pair.settings},
        results={"shift": pair.shift, "hq_offset": pair.hq_offset, "phantom": pair.phantom.info},
    )
    console.print(f"phantom pair -> {out}/ (lq.nc, hq.nc, mask.nc, insitu_lq.nc)")
