"""Colour optical microscopy of graphite: video in, particles/phases/SOC/statistics out.

The workflow of seed 000 (Methods "Optical Microscopy Image Processing", S2.3): optional
self-supervised video denoising (UMVD or N2V), drift correction, LAB k-means segmentation (or
expert labels), per-pixel phase classification with the physical rules, image SOC, particle
sizes with a log-normal fit, per-particle concentrations and the population density in
(size, concentration). See ``docs/optical.md``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, FileFormatError, ParameterError
from ..io import atomic_path, write_summary
from ..modalities import optical as op

__all__ = ["denoise_video", "optical_analyze", "optical_figures", "read_soc_series"]

DENOISE_METHODS = ("none", "umvd", "n2v")


def denoise_video(
    video: np.ndarray,
    *,
    method: str = "umvd",
    seed: int = 0,
    epochs: int = 20,
    steps_per_epoch: int = 8,
    patch_size: int = 64,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Denoise an RGB video ``(t, y, x, 3)`` with a self-supervised denoiser trained on it.

    UMVD (``window = 5``) uses neighbouring frames; N2V treats frames independently. The
    budget (``epochs`` x ``steps_per_epoch`` steps of 4 or 16 patches) is small by default so
    that it runs on a laptop CPU; the paper trained far longer on a GPU.

    Returns
    -------
    video, info
        The denoised video clipped to [0, 1], and training information.
    """
    from ..denoise import train_denoiser

    if method not in ("umvd", "n2v"):
        raise ParameterError(
            f"denoise method {method!r}", where="--denoise", fix="use none, umvd or n2v"
        )
    x = np.ascontiguousarray(np.asarray(video, dtype=np.float64).transpose(0, 3, 1, 2))
    patch = min(patch_size, 1 << (min(x.shape[2:]).bit_length() - 1))
    den = train_denoiser(
        x,
        method=method,
        key=seed,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        patch_size=patch,
    )
    y = np.clip(den.predict(x).transpose(0, 2, 3, 1), 0.0, 1.0)
    info = {
        "method": method,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "patch_size": patch,
        "train_time_s": float(den.training.get("time_s", float("nan"))),
        "final_loss": float(den.training.get("final_loss", float("nan"))),
    }
    return y, info


def read_soc_series(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an electrochemical SOC series: one column (SOC per frame) or ``frame, soc`` rows.

    A header line is skipped. Returns ``(t,)`` or ``(m, 2)``.
    """
    p = Path(path)
    if not p.exists():
        raise FileFormatError("file not found", where=str(p), fix="check the path")
    rows: list[list[float]] = []
    with open(p, newline="") as f:
        for i, rec in enumerate(csv.reader(f)):
            if not rec or not "".join(rec).strip():
                continue
            try:
                rows.append([float(v) for v in rec])
            except ValueError as e:
                if i == 0:  # header
                    continue
                raise FileFormatError(
                    f"line {i + 1} is not numeric: {rec}", where=str(p), fix="CSV of numbers"
                ) from e
    if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) not in (1, 2):
        raise FileFormatError(
            "expected one column (SOC per frame) or two (frame, soc)",
            where=str(p),
            fix="write frame,soc rows",
        )
    a = np.array(rows)
    return a[:, 0] if a.shape[1] == 1 else a


def _write_csv(path: Path, header: list[str], rows: Any) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in r])


def _write_npy(path: Path, a: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, a)


def optical_analyze(
    video: str | os.PathLike[str] | np.ndarray,
    out: str | os.PathLike[str],
    *,
    pixel_size: float = 1.0,
    denoise: str = "none",
    denoise_epochs: int = 20,
    denoise_steps: int = 8,
    labels: str | os.PathLike[str] | np.ndarray | None = None,
    drift: bool = True,
    k: int = 4,
    seed: int = 0,
    min_size: int = 15,
    min_fraction: float = 0.5,
    rules: op.PhaseRules | None = None,
    concentrations: Mapping[str, float] | None = None,
    echem_soc: str | os.PathLike[str] | np.ndarray | None = None,
    reference_labels: str | os.PathLike[str] | np.ndarray | None = None,
    figures: bool = True,
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Analyse an operando colour video of a graphite electrode; write results to ``out``.

    Parameters
    ----------
    video
        Path (any format of :func:`operando.modalities.optical.read_video`) or array
        ``(t, y, x, 3)`` in [0, 1].
    out
        Output directory.
    pixel_size
        µm per pixel (sizes are reported in µm; 1 gives pixels).
    denoise
        ``"none"``, ``"umvd"`` or ``"n2v"`` (trained on the video itself, budget
        ``denoise_epochs`` x ``denoise_steps``).
    labels
        Particle labels (file or array ``(y, x)``, e.g. refined in napari) used instead of
        the automatic segmentation; must match the frame size and drift-corrected frame 0.
    drift
        Correct stage drift (cumulative sub-pixel phase correlation).
    k, seed, min_size, min_fraction
        Segmentation / classification settings (see :func:`segment_particles`).
    rules, concentrations
        Phase rules and stage concentrations (defaults: all rules; 0.26/0.55/1.0).
    echem_soc
        Electrochemical SOC (CSV path or array: one value per frame or ``(frame, soc)``).
    reference_labels
        Reference labels (expert or truth) to score the segmentation against.
    figures
        Write the PNG figures.
    progress
        ``progress(done, total)`` after each stage.

    Returns
    -------
    dict
        ``results`` (what summary.json holds) and ``summary`` (its path).
    """
    out = Path(out)
    total = 7
    step = 0

    def tick() -> None:
        nonlocal step
        step += 1
        if progress:
            progress(step, total)

    src = None if isinstance(video, np.ndarray) else str(video)
    raw = op.read_video(video) if src is not None else np.asarray(video, dtype=np.float64)
    v = op.validate_video(raw, where=src or "video")
    if denoise not in DENOISE_METHODS:
        raise ParameterError(f"{denoise!r}", where="--denoise", fix="use none, umvd or n2v")
    if pixel_size <= 0:
        raise ParameterError(f"{pixel_size}", where="--pixel-size", fix="use µm per pixel > 0")
    user_labels = None
    if labels is not None:
        user_labels = (
            op.read_labels(labels, shape=v.shape[1:3])
            if not isinstance(labels, np.ndarray)
            else np.asarray(labels)
        )
        if user_labels.shape != v.shape[1:3]:
            raise DataError(
                f"labels are {user_labels.shape} but the frames are {v.shape[1:3]}",
                where="--labels",
                fix="use labels made for this video",
            )
        if user_labels.max() < 1:
            raise DataError("the label image has no particles", where="--labels")
    ref_labels = None
    if reference_labels is not None:
        ref_labels = (
            op.read_labels(reference_labels, shape=v.shape[1:3])
            if not isinstance(reference_labels, np.ndarray)
            else np.asarray(reference_labels)
        )
    echem = None
    if echem_soc is not None:
        echem = (
            read_soc_series(echem_soc)
            if not isinstance(echem_soc, np.ndarray)
            else np.asarray(echem_soc, float)
        )
    tick()

    den_info: dict[str, Any] | None = None
    if denoise != "none":
        v, den_info = denoise_video(
            v, method=denoise, seed=seed, epochs=denoise_epochs, steps_per_epoch=denoise_steps
        )
    tick()

    shifts = np.zeros((v.shape[0], 2))
    if drift:
        d = op.correct_drift(v)
        v, shifts = d.video, d.shifts
    tick()

    if user_labels is not None:
        from skimage.segmentation import relabel_sequential

        # napari edits leave gaps in the label numbers: renumber 1..N (order kept)
        lab = relabel_sequential(user_labels.astype(np.int32))[0]
    else:
        lab = op.segment_particles(
            v, k=k, seed=seed, min_fraction=min_fraction, min_size=min_size
        ).labels
    if lab.max() < 1:
        raise DataError(
            "no particles were found",
            where=src or "video",
            fix="check the colours (REFERENCE_COLORS), lower --min-size, or pass --labels",
        )
    mask = lab > 0
    tick()

    ph = op.classify_phases(v, lab, k=k, seed=seed, rules=rules)
    tick()

    soc = op.image_soc(ph.phases, mask, concentrations=concentrations)
    sizes = op.particle_sizes(lab, pixel_size=pixel_size)
    conc = op.particle_concentrations(ph.phases, lab, concentrations=concentrations)
    fit = op.fit_lognormal(sizes["size"]) if sizes["size"].size >= 2 else None
    pop = op.population_density(sizes["size"], conc) if sizes["size"].size >= 2 else None
    soc_cmp = op.compare_soc(soc, echem) if echem is not None else None
    quality = (
        op.segmentation_quality(lab, ref_labels, pixel_size=pixel_size)
        if ref_labels is not None
        else None
    )
    tick()

    out.mkdir(parents=True, exist_ok=True)
    op.write_labels(lab, out / "labels.tif")
    op.write_labels(lab, out / "labels.npy")
    _write_npy(out / "phases.npy", ph.phases)
    echem_per_frame = None
    if echem is not None:
        f = np.arange(v.shape[0], dtype=float)
        echem_per_frame = (
            np.interp(f, *echem[np.argsort(echem[:, 0])].T) if echem.ndim == 2 else echem
        )
    _write_csv(
        out / "soc.csv",
        ["frame", "image_soc", "echem_soc", "background", "blue", "red", "gold"],
        (
            [
                t,
                float(soc[t]),
                "" if echem_per_frame is None else float(echem_per_frame[t]),
                *(float(x) for x in ph.fractions[t]),
            ]
            for t in range(v.shape[0])
        ),
    )
    _write_csv(
        out / "particles.csv",
        ["label", "area_px", "perimeter_px", "size_um", "centroid_y", "centroid_x"],
        zip(
            sizes["label"].tolist(),
            sizes["area_px"].tolist(),
            sizes["perimeter_px"].tolist(),
            sizes["size"].tolist(),
            sizes["centroid_y"].tolist(),
            sizes["centroid_x"].tolist(),
            strict=True,
        ),
    )
    _write_csv(
        out / "concentration.csv",
        ["frame", *[f"particle_{int(i)}" for i in sizes["label"]]],
        ([t, *(float(c) for c in conc[t])] for t in range(conc.shape[0])),
    )
    _write_csv(
        out / "drift.csv",
        ["frame", "dy", "dx"],
        ([t, *map(float, s)] for t, s in enumerate(shifts)),
    )
    if pop is not None:
        with atomic_path(out / "population.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, density=pop.density, size_grid=pop.size_grid, conc_grid=pop.conc_grid)

    results: dict[str, Any] = {
        "frames": int(v.shape[0]),
        "frame_shape": [int(v.shape[1]), int(v.shape[2])],
        "n_particles": int(lab.max()),
        "labels_source": "user" if user_labels is not None else "kmeans",
        "size_fit_um": fit.to_dict() if fit else None,
        "soc_first": float(soc[0]),
        "soc_last": float(soc[-1]),
        "soc": [None if not np.isfinite(x) else float(x) for x in soc],
        "phase_fractions_last": dict(zip(op.PHASES, map(float, ph.fractions[-1]), strict=True)),
        "rule_frames": ph.info,
        "drift_max_px": float(np.abs(shifts).max()),
        "drift_final_px": [float(x) for x in shifts[-1]],
        "soc_vs_echem": soc_cmp,
        "segmentation_quality": quality,
        "denoise": den_info,
    }
    if figures:
        optical_figures(out, v, lab, ph, soc, echem_per_frame, sizes["size"], fit, pop)
    tick()
    params = {
        "pixel_size_um": pixel_size,
        "denoise": denoise,
        "denoise_epochs": denoise_epochs,
        "denoise_steps": denoise_steps,
        "drift": drift,
        "k": k,
        "seed": seed,
        "min_size": min_size,
        "min_fraction": min_fraction,
        "rules": (rules or op.PhaseRules()).to_dict(),
        "concentrations": {**op.DEFAULT_CONCENTRATIONS, **(concentrations or {})},
    }
    inputs = [
        x for x in (src, labels, echem_soc, reference_labels) if isinstance(x, (str, os.PathLike))
    ]
    path = write_summary(
        out, command="optical analyze", parameters=params, results=results, inputs=inputs
    )
    return {"results": results, "summary": str(path)}


def optical_figures(
    out: Path,
    video: np.ndarray,
    labels: np.ndarray,
    ph: op.PhaseResult,
    soc: np.ndarray,
    echem: np.ndarray | None,
    sizes: np.ndarray,
    fit: op.LogNormalFit | None,
    pop: op.PopulationDensity | None,
    *,
    prefix: str = "optical_",
) -> list[Path]:
    """Write the pipeline's figures (segmentation, phase maps, SOC, sizes, population)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from skimage.segmentation import find_boundaries

    from ._figures import save_figure

    paths = []
    n = video.shape[0]
    picks = sorted({0, n // 3, (2 * n) // 3, n - 1})
    # segmentation
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots(1, 2)
    ax[0].imshow(video[n // 2])
    ax[0].set_title(f"frame {n // 2}")
    over = video[n // 2].copy()
    over[find_boundaries(labels)] = (1.0, 1.0, 0.0)
    ax[1].imshow(over)
    ax[1].set_title(f"{int(labels.max())} particles")
    for a in ax:
        a.set_axis_off()
    paths.append(save_figure(fig, out / f"{prefix}segmentation.png"))
    # phase maps
    cmap = ListedColormap(["#1a1024", "#3b5bd6", "#c0392b", "#e0b030"])
    fig = Figure(figsize=(2.6 * len(picks), 5.2))
    ax = fig.subplots(2, len(picks), squeeze=False)
    for j, t in enumerate(picks):
        ax[0, j].imshow(video[t])
        ax[0, j].set_title(f"frame {t}", fontsize=9)
        ax[1, j].imshow(ph.phases[t], cmap=cmap, vmin=0, vmax=3, interpolation="nearest")
        ax[1, j].set_title(f"phases, SOC {soc[t]:.2f}", fontsize=9)
    for a in ax.ravel():
        a.set_axis_off()
    paths.append(save_figure(fig, out / f"{prefix}phases.png"))
    # SOC and fractions
    fig = Figure(figsize=(8, 3.4))
    ax = fig.subplots(1, 2)
    ax[0].plot(soc, "k-o", ms=3, label="image SOC")
    if echem is not None:
        ax[0].plot(echem, "g--", label="electrochemical SOC")
    ax[0].set_xlabel("frame")
    ax[0].set_ylabel("SOC")
    ax[0].legend(fontsize=8)
    for c, name, col in zip(range(1, 4), op.PHASES[1:], ("b", "r", "goldenrod"), strict=True):
        ax[1].plot(ph.fractions[:, c], color=col, label=name)
    ax[1].plot(ph.fractions[:, 0], color="0.4", label="background")
    ax[1].set_xlabel("frame")
    ax[1].set_ylabel("area fraction of particle mask")
    ax[1].legend(fontsize=8)
    paths.append(save_figure(fig, out / f"{prefix}soc.png"))
    # sizes
    if fit is not None:
        fig = Figure(figsize=(4.2, 3.2))
        a = fig.subplots()
        a.hist(sizes, bins=max(8, int(np.sqrt(sizes.size)) + 2), density=True, color="0.7")
        x = np.linspace(1e-6, sizes.max() * 1.3, 200)
        a.plot(x, fit.pdf(x), "k-", label=f"log-normal: mean {fit.mean:.3f}, sd {fit.std:.3f}")
        a.set_xlabel("V/A (µm)")
        a.set_ylabel("density")
        a.legend(fontsize=8)
        paths.append(save_figure(fig, out / f"{prefix}sizes.png"))
    # population density
    if pop is not None:
        fig = Figure(figsize=(2.6 * len(picks), 2.8))
        ax = fig.subplots(1, len(picks), squeeze=False)[0]
        for j, t in enumerate(picks):
            ax[j].pcolormesh(pop.conc_grid, pop.size_grid, pop.density[t].T, shading="auto")
            ax[j].set_title(f"frame {t}", fontsize=9)
            ax[j].set_xlabel("particle mean c")
        ax[0].set_ylabel("V/A (µm)")
        paths.append(save_figure(fig, out / f"{prefix}population.png"))
    return paths
