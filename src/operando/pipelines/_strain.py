"""Chemo-mechanics workflow: composition + strain maps -> eigenstrain law, residuals, figures.

``operando strain learn`` (seed 003): read per-particle composition and strain maps,
optionally register the composition map onto the strain grid, fit M0 (direct
regression), M1 (stress equilibrium) and optionally M2 (+ dislocation slip), and write
the learned law with 95 % bands, ``df/dX``, residual maps, the model-error table, figures
in the style of seed 003 Fig. 2g-h and Fig. 3, and ``summary.json``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..errors import ParameterError
from ..inverse._eigenstrain import (
    EigenstrainFit,
    check_eigenstrain_data,
    fit_eigenstrain,
    incompatibility_rms,
    select_degree,
)
from ..io import atomic_path, write_json, write_summary
from ..modalities.strain import (
    apply_affine,
    load_composition_map,
    load_strain_map,
    register_affine,
)
from ..physics._elasticity import lfp_stiffness, strain_incompatibility
from ..simulate._strain import simulate_strain
from ._figures import image_panels, save_figure

__all__ = ["strain_figures", "strain_learn", "strain_simulate"]

_XS = np.linspace(0.0, 1.0, 101)


def _law_table(fit: EigenstrainFit) -> dict[str, np.ndarray]:
    f = fit.law(_XS)
    lo, hi = fit.band(_XS)
    d = fit.derivative(_XS)
    dlo, dhi = fit.band(_XS, derivative=True)
    out = {"X": _XS}
    for i, ax in enumerate(("a", "c")):
        out[f"f_{ax}"] = f[:, i]
        out[f"f_{ax}_lo95"] = lo[:, i]
        out[f"f_{ax}_hi95"] = hi[:, i]
        out[f"df_{ax}_dX"] = d[:, i]
        out[f"df_{ax}_dX_lo95"] = dlo[:, i]
        out[f"df_{ax}_dX_hi95"] = dhi[:, i]
    return out


def _write_csv(table: dict[str, np.ndarray], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        keys = list(table)
        w.writerow(keys)
        for row in zip(*(table[k] for k in keys), strict=True):
            w.writerow([f"{v:.8g}" for v in row])


def strain_figures(
    fits: dict[str, EigenstrainFit],
    composition: Sequence[np.ndarray],
    strain: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    out: Path,
    *,
    particle: int = 0,
    prefix: str = "strain_",
) -> list[Path]:
    """Seed 003-style figures: law (Fig. 2g), df/dX (2h), residuals (3a-c), model errors (3e)."""
    paths = []
    colours = {"a": "tab:purple", "c": "tab:green"}
    fig = Figure(figsize=(9.5, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    for name, style in (("m1", "-"), ("m0", "--")):
        if name not in fits:
            continue
        f = fits[name]
        y = f.law(_XS)
        d = f.derivative(_XS)
        lo, hi = f.band(_XS)
        dlo, dhi = f.band(_XS, derivative=True)
        for i, axn in enumerate(("a", "c")):
            lab = f"{name.upper()} {axn}"
            ax1.plot(_XS, y[:, i], style, color=colours[axn], label=lab)
            ax2.plot(_XS, d[:, i], style, color=colours[axn], label=lab)
            if name == "m1":
                ax1.fill_between(_XS, lo[:, i], hi[:, i], color=colours[axn], alpha=0.25)
                ax2.fill_between(_XS, dlo[:, i], dhi[:, i], color=colours[axn], alpha=0.25)
    ax1.set(xlabel="Li fraction X", ylabel="eigenstrain f(X)", title="composition-eigenstrain law")
    ax2.set(xlabel="Li fraction X", ylabel="df/dX", title="chemical expansion coefficient")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    paths.append(save_figure(fig, out / f"{prefix}law.png"))

    k = particle
    m = masks[k]
    # seed 003 Fig. 3b: residual = total - compositional eigenstrain - coherency strain (M1)
    best = fits["m1"]
    res = best.residual[k]
    nan = np.where(m, 1.0, np.nan)
    eta = strain_incompatibility(res, m)
    imgs = [composition[k] * nan] + [strain[k][..., i] * nan for i in range(3)]
    imgs += [res[..., i] * nan for i in range(3)] + [eta]
    titles = ["X", "total e_aa", "total e_cc", "total e_ac"]
    titles += [f"residual ({best.model.upper()}) e_aa", "residual e_cc", "residual e_ac"]
    titles += ["residual incompatibility"]
    cm = ["viridis"] + ["RdBu_r"] * 7
    lim = np.nanmax(np.abs(np.stack(imgs[1:4])))
    rl = np.nanmax(np.abs(np.stack(imgs[4:7])))
    el = np.nanmax(np.abs(eta)) if np.isfinite(eta).any() else 1.0
    limits = [(0.0, 1.0)] + [(-lim, lim)] * 3 + [(-rl, rl)] * 3 + [(-el, el)]
    fig = image_panels(imgs, titles, cmaps=cm, limits=limits, ncols=4)
    paths.append(save_figure(fig, out / f"{prefix}residual.png"))

    if "m2" in fits and fits["m2"].slip is not None:
        s = fits["m2"].slip[k] * nan
        d = fits["m2"].density[k] * nan  # type: ignore[index]
        sl, dl = np.nanmax(np.abs(s)), np.nanmax(np.abs(d))
        fig = image_panels(
            [s, d],
            ["M2 slip gamma [001](100)", "dislocation density (1/(b px))"],
            cmaps=["RdBu_r", "RdBu_r"],
            limits=[(-sl, sl), (-dl, dl)],
        )
        paths.append(save_figure(fig, out / f"{prefix}dislocations.png"))

    fig = Figure(figsize=(3.8, 3.2))
    ax = fig.subplots()
    names = [n for n in ("m0", "m1", "m2") if n in fits]
    errs = [fits[n].model_error for n in names]
    ax.bar(
        [n.upper() for n in names], errs, color=["0.6", "tab:purple", "tab:orange"][: len(names)]
    )
    for i, e in enumerate(errs):
        ax.text(i, e, f"{e:.2e}", ha="center", va="bottom", fontsize=8)
    ax.set(ylabel="model error (mean |residual strain|)", title="model error")
    paths.append(save_figure(fig, out / f"{prefix}model_error.png"))
    return paths


def strain_learn(
    composition: Sequence[str | os.PathLike[str]],
    strain: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    model: str = "m1",
    degree: int | None = None,
    max_degree: int = 4,
    masks: Sequence[str | os.PathLike[str]] | None = None,
    register: bool = False,
    mode: str = "plane_stress",
    strain_format: str = "array",
    figures: bool = True,
) -> dict[str, Any]:
    """Learn the eigenstrain law from files and write all outputs into directory ``out``.

    Parameters
    ----------
    composition, strain
        One composition map (X; NaN outside the particle) and one strain map
        ((rows, cols, 3) or (3, rows, cols): aa, cc, ac) per particle.
    out
        Output directory.
    model
        ``m0``, ``m1`` or ``m2``: the model whose residual maps are written. M0 and M1
        are always fitted (for the comparison); M2 only when asked.
    degree
        Highest Legendre degree; ``None`` selects it by validation (each model separately).
    masks
        Optional particle masks (default: finite pixels of both maps).
    register
        Register each composition map onto its strain map (correlation of X with e_aa,
        pixels >= 4 from the edge, plus the outline overlap) before fitting.
    mode
        ``plane_stress`` (platelet, default) or ``plane_strain``.
    """
    if model not in ("m0", "m1", "m2"):
        raise ParameterError(f"model {model!r}", where="--model", fix="m0, m1 or m2")
    if len(composition) != len(strain):
        raise ParameterError(
            f"{len(composition)} composition and {len(strain)} strain files",
            where="--composition/--strain",
            fix="give one of each per particle, in the same order",
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    comps = [load_composition_map(p) for p in composition]
    strs = [load_strain_map(p, fmt=strain_format) for p in strain]
    mks = None
    if masks:
        mks = [np.asarray(load_composition_map(p)) > 0.5 for p in masks]
    regs = []
    if register:
        for k, (x, e) in enumerate(zip(comps, strs, strict=True)):
            ref_mask = np.all(np.isfinite(e), axis=-1) if mks is None else mks[k]
            reg = register_affine(x, e[..., 0], ref_mask)
            comps[k] = apply_affine(x, reg, e.shape[:2])
            regs.append(reg.summary())
    q = lfp_stiffness(mode)  # type: ignore[arg-type]
    data = check_eigenstrain_data(comps, strs, mks, stiffness=q)
    validation = {}
    fits: dict[str, EigenstrainFit] = {}
    for name in ("m0", "m1"):
        deg = degree
        if deg is None:
            deg, table = select_degree(data, name, max_degree=max_degree)  # type: ignore[arg-type]
            validation[name] = table
        fits[name] = fit_eigenstrain(data, name, degree=deg)  # type: ignore[arg-type]
    if model == "m2":
        fits["m2"] = fit_eigenstrain(data, "m2", degree=fits["m1"].degree)
    chosen = fits[model]
    for name, f in fits.items():
        _write_csv(_law_table(f), out / f"law_{name}.csv")
    arrays: dict[str, np.ndarray] = {}
    for k in range(len(data.masks)):
        arrays[f"residual_{k}"] = chosen.residual[k]
        arrays[f"predicted_{k}"] = chosen.predicted[k]
        arrays[f"incompatibility_{k}"] = strain_incompatibility(chosen.residual[k], data.masks[k])
        arrays[f"composition_{k}"] = np.where(data.masks[k], data.composition[k], np.nan)
        if chosen.slip is not None:
            arrays[f"slip_{k}"] = chosen.slip[k]
            arrays[f"density_{k}"] = chosen.density[k]  # type: ignore[index]
    with atomic_path(out / "residuals.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    errors = {
        name: {
            "model_error": f.model_error,
            "degree": f.degree,
            "n_law_params": 2 * (f.degree + 1),
            "incompatibility_rms": incompatibility_rms(f, data),
        }
        for name, f in fits.items()
    }
    if "m0" in fits and "m1" in fits:
        errors["m1_vs_m0_reduction"] = 1 - fits["m1"].model_error / fits["m0"].model_error
    if "m2" in fits:
        errors["m2_vs_m1_reduction"] = 1 - fits["m2"].model_error / fits["m1"].model_error
    write_json(errors, out / "model_errors.json")
    paths = []
    if figures:
        paths = strain_figures(fits, data.composition, strs, data.masks, out)
    results = {
        "model": model,
        "fits": {n: f.summary() for n, f in fits.items()},
        "model_errors": errors,
        "validation": validation,
        "registration": regs,
        "n_particles": len(data.masks),
        "n_pixels": data.n_pixels,
        "figures": [p.name for p in paths],
    }
    write_summary(
        out,
        command="strain learn",
        parameters={
            "model": model,
            "degree": degree,
            "max_degree": max_degree,
            "register": register,
            "mode": mode,
            "strain_format": strain_format,
        },
        results=results,
        inputs=[*map(str, composition), *map(str, strain), *map(str, masks or [])],
    )
    return results


def strain_simulate(
    out: str | os.PathLike[str],
    *,
    n_particles: int = 3,
    shape: tuple[int, int] = (48, 32),
    law: str = "linear",
    noise: float = 1e-3,
    dislocations: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Write synthetic ``composition_k.npy``, ``strain_k.npy`` and ``truth_k.npz`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts = simulate_strain(
        n_particles,
        shape,
        law=law,
        noise=noise,
        dislocations=dislocations,
        seed=seed,  # type: ignore[arg-type]
    )
    files = []
    for k, p in enumerate(parts):
        for name, arr in (("composition", p.composition), ("strain", p.strain)):
            with atomic_path(out / f"{name}_{k}.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, arr)
            files.append(f"{name}_{k}.npy")
        with atomic_path(out / f"truth_{k}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, mask=p.mask, **p.truth)
    results = {"files": files, "n_particles": n_particles}
    write_summary(
        out,
        command="strain simulate",
        parameters={
            "n_particles": n_particles,
            "shape": list(shape),
            "law": law,
            "noise": noise,
            "dislocations": dislocations,
            "seed": seed,
        },
        results=results,
    )
    return results
