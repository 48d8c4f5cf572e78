"""``operando optical``: colour optical microscopy of graphite electrodes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import console, progress

__all__ = ["app"]

app = typer.Typer(
    help=(
        "Colour optical microscopy of graphite electrodes: particle segmentation, stage "
        "III/II/I phase maps, image state of charge and particle-resolved statistics "
        "(seed 000 S2.3). See docs/optical.md."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.callback()
def _optical() -> None:
    """Colour optical microscopy of graphite electrodes."""


@app.command()
def analyze(
    video: Annotated[
        str,
        typer.Argument(
            help="RGB video: TIFF stack, .npy (t, y, x, 3), a folder or glob of images "
            "(natural order), or a video container (.mp4/.avi/..., needs `pip install av`)."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output directory: labels.tif/.npy, phases.npy, soc.csv, particles.csv, "
            "concentration.csv, drift.csv, population.npz, optical_*.png, summary.json.",
        ),
    ],
    pixel_size: Annotated[
        float, typer.Option("--pixel-size", help="Pixel size in µm (sizes are reported in µm).")
    ] = 1.0,
    denoise: Annotated[
        str,
        typer.Option(
            "--denoise",
            help="Denoise the video first with a self-supervised model trained on it: "
            "none, umvd (video, uses neighbouring frames) or n2v (frame by frame).",
        ),
    ] = "none",
    denoise_epochs: Annotated[
        int, typer.Option("--denoise-epochs", help="Training epochs of the denoiser.")
    ] = 20,
    denoise_steps: Annotated[
        int, typer.Option("--denoise-steps", help="Training steps per epoch of the denoiser.")
    ] = 8,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="Particle labels (.npy/.tif/.png, 0 = background) to use instead of the "
            "automatic k-means segmentation, e.g. OUT/labels.tif refined in napari. Must "
            "match the frame size (coordinates of the drift-corrected frame 0).",
        ),
    ] = None,
    reference_labels: Annotated[
        Path | None,
        typer.Option(
            "--reference-labels",
            help="Reference labels (expert or ground truth) to score the segmentation "
            "against: Dice/IoU, counts, missed particles, size-distribution fits.",
        ),
    ] = None,
    echem: Annotated[
        Path | None,
        typer.Option(
            "--echem",
            help="Electrochemical SOC CSV (one SOC per frame, or frame,soc rows) to compare "
            "with the image SOC.",
        ),
    ] = None,
    drift: Annotated[
        bool,
        typer.Option(
            "--drift/--no-drift",
            help="Correct stage drift by cumulative sub-pixel phase cross-correlation.",
        ),
    ] = True,
    min_size: Annotated[
        int, typer.Option("--min-size", help="Smallest particle kept (pixels).")
    ] = 15,
    min_fraction: Annotated[
        float,
        typer.Option(
            "--min-fraction",
            help="A pixel is particle when non-background in at least this fraction of frames.",
        ),
    ] = 0.5,
    persistence: Annotated[
        int,
        typer.Option(
            "--persistence",
            help="Frames a phase change must last before the irreversibility and "
            "background rules lock it in (1: the paper's literal rules).",
        ),
    ] = 3,
    no_rule: Annotated[
        list[str] | None,
        typer.Option(
            "--no-rule",
            help="Switch a physical rule off (repeatable): solid_solution, "
            "final_blue_to_background, no_blue_after_stage2, irreversible_red, "
            "irreversible_gold, background_persists.",
        ),
    ] = None,
    c_blue: Annotated[float, typer.Option("--c-blue", help="Li fraction of stage III.")] = 0.26,
    c_red: Annotated[float, typer.Option("--c-red", help="Li fraction of stage II.")] = 0.55,
    c_gold: Annotated[float, typer.Option("--c-gold", help="Li fraction of stage I.")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of k-means and denoising.")] = 0,
    figures: Annotated[
        bool, typer.Option("--figures/--no-figures", help="Write the optical_*.png figures.")
    ] = True,
) -> None:
    """Segment particles, classify stage III/II/I per pixel and frame, and compute SOC.

    Steps: read and check the RGB video, optional self-supervised denoising, drift
    correction, LAB k-means segmentation (k = 4) with small-object removal (or --labels),
    phase classification with the physical rules of seed 000 S2.3, image SOC
    sum_i c_i a_i, particle sizes V/A (area/perimeter) with a log-normal fit, per-particle
    mean concentration over time and its (size, concentration) population density.
    """
    from dataclasses import fields, replace

    from ..errors import ParameterError
    from ..modalities.optical import PhaseRules
    from ..pipelines._optical import optical_analyze

    rules = PhaseRules(persistence=persistence)
    switches = {f.name for f in fields(PhaseRules) if f.type in ("bool", bool)}
    for name in no_rule or []:
        if name not in switches:
            raise ParameterError(
                f"unknown rule {name!r}", where="--no-rule", fix=f"use one of {sorted(switches)}"
            )
        rules = replace(rules, **{name: False})
    with progress("optical analyze") as update:
        res = optical_analyze(
            video,
            out,
            pixel_size=pixel_size,
            denoise=denoise,
            denoise_epochs=denoise_epochs,
            denoise_steps=denoise_steps,
            labels=labels,
            drift=drift,
            seed=seed,
            min_size=min_size,
            min_fraction=min_fraction,
            rules=rules,
            concentrations={"blue": c_blue, "red": c_red, "gold": c_gold},
            echem_soc=echem,
            reference_labels=reference_labels,
            figures=figures,
            progress=update,
        )
    r = res["results"]
    fit = r["size_fit_um"]
    console.print(
        f"wrote {out}: {r['n_particles']} particles ({r['labels_source']}), "
        f"SOC {r['soc_first']:.3f} -> {r['soc_last']:.3f}, drift up to {r['drift_max_px']:.2f} px"
        + (f", V/A mean {fit['mean']:.3f} sd {fit['std']:.3f}" if fit else "")
    )
    if r["soc_vs_echem"]:
        e = r["soc_vs_echem"]
        console.print(
            f"  image vs electrochemical SOC: RMSE {e['rmse']:.4f}, r {e['pearson_r']:.4f}"
        )
    if r["segmentation_quality"]:
        q = r["segmentation_quality"]
        console.print(
            f"  vs reference: Dice {q['dice']:.3f}, IoU {q['iou']:.3f}, "
            f"{q['n_detected']} detected / {q['n_reference']} reference, {q['n_matched']} matched"
        )
    console.print(f"summary: {res['summary']}")


def simulate_optical_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output directory: video.tif (RGB stack), truth_labels.tif, "
            "truth_phases.npy, echem_soc.csv (true SOC per frame), truth.json, summary.json.",
        ),
    ],
    size: Annotated[int, typer.Option("--size", help="Frame side in pixels.")] = 256,
    frames: Annotated[int, typer.Option("--frames", help="Number of frames.")] = 40,
    particles: Annotated[int, typer.Option("--particles", help="Particles to place.")] = 60,
    pixel_size: Annotated[float, typer.Option("--pixel-size", help="µm per pixel.")] = 0.1,
    photons: Annotated[
        float,
        typer.Option("--photons", help="Photons at intensity 1 (shot noise; lower = noisier)."),
    ] = 60.0,
    flicker: Annotated[
        float, typer.Option("--flicker", help="Relative SD of the per-frame illumination gain.")
    ] = 0.08,
    drift_step: Annotated[
        float, typer.Option("--drift-step", help="SD of the frame-to-frame stage drift (pixels).")
    ] = 0.6,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Simulate an operando colour video of lithiating platelet graphite with ground truth.

    Particles with log-normal V/A (mean 0.40 µm, SD 0.13 µm) go blue -> red -> gold
    (stage III -> II stochastically, II -> I small particles first), with optical blur,
    illumination flicker and cloudiness, stage drift and shot noise.
    """
    import numpy as np
    import tifffile

    from ..io import atomic_path, write_json, write_summary
    from ..modalities.optical import write_labels
    from ..simulate import simulate_optical

    sim = simulate_optical(
        seed=seed,
        shape=(size, size),
        n_frames=frames,
        n_particles=particles,
        pixel_size=pixel_size,
        photons=photons,
        flicker=flicker,
        drift_step=drift_step,
    )
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "video.tif") as tmp:
        tifffile.imwrite(tmp, np.round(sim.video * 255).astype(np.uint8), photometric="rgb")
    write_labels(sim.labels, out / "truth_labels.tif")
    with atomic_path(out / "truth_phases.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, sim.phases)
    with atomic_path(out / "echem_soc.csv") as tmp:
        tmp.write_text("frame,soc\n" + "".join(f"{t},{s:.6f}\n" for t, s in enumerate(sim.soc)))
    truth = {
        "n_particles": int(sim.labels.max()),
        "sizes_um": sim.sizes_um.tolist(),
        "soc": sim.soc.tolist(),
        "shifts": sim.shifts.tolist(),
        "parameters": sim.parameters,
    }
    write_json(truth, out / "truth.json")
    write_summary(
        out,
        command="simulate optical",
        parameters=sim.parameters,
        results={"n_particles": truth["n_particles"], "frames": frames, "output": str(out)},
    )
    console.print(
        f"wrote {out}: {frames} frames of {size}x{size}, {truth['n_particles']} particles "
        f"(V/A mean {np.mean(sim.sizes_um):.3f} µm); ground truth in truth.json"
    )
