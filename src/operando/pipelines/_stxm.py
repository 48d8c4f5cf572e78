"""STXM workflows: a stack file in, a composition dataset, summary and figures out."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from ..data import add_provenance, make_dataset
from ..errors import DataError, ParameterError
from ..io import file_sha256, read_dataset, split_spec, write_dataset, write_json, write_summary
from ._files import summary_path_for

__all__ = [
    "STXM_FIGURES",
    "stxm_composition",
    "stxm_composition_file",
    "stxm_figures",
    "stxm_plan_energies",
]

#: File names of the figures written by :func:`stxm_composition_file` with ``figures=DIR``.
STXM_FIGURES = ("stxm_fraction_map.png", "stxm_mean_fit.png")

Method = Literal["nnls", "two-energy"]


def _parse_offset(energy_offset: float | str) -> float | None:
    """A number, or ``None`` for ``"auto"`` (fit it)."""
    if isinstance(energy_offset, str):
        if energy_offset.strip().lower() == "auto":
            return None
        try:
            return float(energy_offset)
        except ValueError:
            raise ParameterError(
                f"energy offset {energy_offset!r} is neither a number nor 'auto'",
                where="--energy-offset",
                fix="give the offset in eV (stack minus references), e.g. 1.5, or 'auto'",
            ) from None
    return float(energy_offset)


def _load_stack(stack: str | os.PathLike[str], energies: Any | None) -> xr.Dataset:
    from ..modalities import stxm

    path, _ = split_spec(stack)
    if energies is not None:
        return stxm.read_tiff_stack(path, energies)
    ds = read_dataset(stack, dims=("energy", "y", "x"))
    if "energy" not in ds["images"].dims or ds["images"].ndim != 3:
        raise DataError(
            f"images have dims {ds['images'].dims}; an STXM stack is (energy, y, x)",
            where=os.fspath(stack),
            fix="read a multi-energy stack (for a TIFF, pass its energies with --energies)",
        )
    return ds


def stxm_composition(
    ds: xr.Dataset,
    *,
    method: Method = "nnls",
    references: Sequence[str | os.PathLike[str]] | None = None,
    i0: str | os.PathLike[str] | None = None,
    energy_offset: float | str = 0.0,
    bootstrap: int = 0,
    seed: int = 0,
    register: bool = True,
    reference_frame: int | str = "mean",
    baseline: str = "linear",
    restrict_energies: bool = False,
    min_size: int = 20,
    two_energies: tuple[float, float, float] = (703.0, 706.0, 713.0),
    source: str = "stack",
    progress: Callable[..., None] | None = None,
) -> tuple[xr.Dataset, dict[str, Any], dict[str, Any]]:
    """Run the STXM chain on an energy stack of transmitted intensity.

    Register -> I0 -> OD -> segment particles -> composition (NNLS or two-energy) ->
    bootstrap ``sigma_X`` -> thickness proxy. Returns ``(result dataset, results record,
    extras for figures)``. See :func:`stxm_composition_file` for the parameters.
    """
    import jax

    from ..modalities import stxm

    if method not in ("nnls", "two-energy"):
        raise ParameterError(
            f"method {method!r}", where="--method", fix="use 'nnls' or 'two-energy'"
        )
    if bootstrap < 0:
        raise ParameterError(f"bootstrap={bootstrap}", where="--bootstrap", fix="use B >= 0")
    offset = _parse_offset(energy_offset)
    refs = None
    if references:
        if len(references) != 2:
            raise ParameterError(
                f"{len(references)} reference files",
                where="--references",
                fix="pass two files: the lithiated/Fe(II) then the delithiated/Fe(III) spectrum",
            )
        refs = stxm.load_references(references)
    if method == "nnls" and refs is None:
        raise ParameterError(
            "NNLS needs reference spectra",
            where="--references",
            fix="pass --references LFP.txt FP.txt (two-column energy/OD files), or use "
            "--method two-energy with the paper's LFP/FP values",
        )
    if offset is None and refs is None:
        raise ParameterError(
            "--energy-offset auto fits the offset against reference spectra",
            where="--energy-offset",
            fix="pass --references, or give the offset in eV",
        )
    energies = np.asarray(ds["energy"].values, dtype=np.float64)
    images = np.asarray(ds["images"].values, dtype=np.float64)
    shifts = np.zeros((energies.size, 2))
    if register and energies.size > 1:
        reg = stxm.register_stack(images, reference=reference_frame)
        images, shifts = reg.images, reg.shifts
    if progress:
        progress(1, 4)
    if i0 is not None:
        e0, v0 = stxm.read_spectrum(i0)
        i0v = stxm.interpolate_i0(e0, v0, energies, source=os.fspath(i0))
        i0_source = os.fspath(i0)
    elif "i0" in ds and ds["i0"].dims == ("energy",):
        i0v = np.asarray(ds["i0"].values, dtype=np.float64)
        i0_source = "dataset variable 'i0'"
    else:
        i0v, _ = stxm.estimate_i0_otsu(images)
        i0_source = "Otsu background"
    od = stxm.optical_density(images, i0v)
    masks, threshold = stxm.segment_particles(od, min_size=min_size)
    if masks.shape[0] == 0:
        raise DataError(
            f"no particle of at least {min_size} pixels above the Otsu threshold "
            f"{threshold:.4g} of the mean OD",
            where=source,
            fix="lower --min-size, or check the I0 and the stack",
        )
    union = masks.any(axis=0)
    if progress:
        progress(2, 4)
    offset_fit = None
    outside = "restrict" if (restrict_energies or offset is None) else "error"
    if offset is None:
        offset_fit = stxm.fit_energy_offset(od, energies, refs, baseline=baseline, mask=union)
        offset = offset_fit.offset
    if method == "nnls":
        res = stxm.nnls_composition(
            od, energies, refs, energy_offset=offset, baseline=baseline, mask=union,
            outside=outside,
        )  # fmt: skip
    else:
        pre, low, high = two_energies
        system = (
            stxm.two_energy_matrix(refs, pre_edge=pre, low=low, high=high)
            if refs is not None
            else stxm.TwoEnergyMatrix(pre_edge=pre, low=low, high=high)
            if (pre, low, high) == (703.0, 706.0, 713.0)
            else None
        )
        if system is None:
            raise ParameterError(
                "the paper's LFP/FP values are for 703/706/713 eV only",
                where="--two-energies",
                fix="pass --references to compute the matrix at other energies",
            )
        res = stxm.two_energy_composition(
            od, energies, system=system, energy_offset=offset, mask=union
        )
    if progress:
        progress(3, 4)
    sigma = None
    if bootstrap > 0 and method == "nnls":
        boot = stxm.bootstrap_composition(
            jax.random.key(seed), od, energies, refs, n_boot=bootstrap, energy_offset=offset,
            baseline=baseline, mask=union, outside=outside,
        )  # fmt: skip
        sigma = boot.sigma
    background = float(np.median(od[0][~union])) if (~union).any() else 0.0
    thickness = stxm.thickness_proxy(od, energies, background=background)
    if progress:
        progress(4, 4)

    # ---- mean spectrum fit (for the record and the figure)
    mean_spec = od[:, union].mean(axis=1)
    mean_fit = None
    if refs is not None:
        mres = stxm.nnls_composition(
            mean_spec, energies, refs, energy_offset=offset, baseline=baseline, outside=outside
        )
        r_on, keep = refs.on(energies, energy_offset=offset, outside=outside)
        from ..modalities.stxm._composition import _baseline_columns

        model = r_on @ mres.coefficients[:, 0, 0] + (
            _baseline_columns(energies[keep], baseline) @ mres.baseline[:, 0, 0]
        )
        mean_fit = {
            "energies": energies[keep],
            "od": mean_spec[keep],
            "model": model,
            "components": r_on * mres.coefficients[:, 0, 0],
            "fraction": float(mres.fraction[0, 0]),
            "rms": float(mres.residual_rms[0, 0]),
            "signal_range": float(np.ptp(mean_spec[keep])),
        }

    # ---- result dataset
    pixel_size = float(ds.attrs.get("pixel_size", 1.0))
    pixel_unit = str(ds.attrs.get("pixel_unit", "px"))
    attrs = {
        "quantity": f"fraction of {res.names[0]} (X = c1 / (c1 + c2))",
        "method": method,
        "energy_offset_eV": float(offset),
        "references": list(res.names),
        "i0_source": i0_source,
        "baseline": baseline if method == "nnls" else "pre-edge subtraction",
    }
    out = make_dataset(
        res.fraction,
        dims=("y", "x"),
        pixel_size=pixel_size,
        pixel_unit=pixel_unit,
        masks=masks,
        attrs=attrs,
        source=source,
        allow_nonfinite=True,
    )
    out = out.assign_coords(component=("component", list(res.names)))
    out["coefficients"] = (("component", "y", "x"), res.coefficients)
    if method == "nnls":
        out["residual_rms"] = (("y", "x"), res.residual_rms)
    if sigma is not None:
        out["sigma_composition"] = (("y", "x"), sigma)
    out["thickness_proxy"] = (("y", "x"), thickness)
    out["thickness_proxy"].attrs["description"] = (
        f"OD at {energies[0]:.3f} eV (pre-edge) minus background OD {background:.4g}"
    )
    out["od_mean"] = (("y", "x"), od.mean(axis=0))
    out = out.assign_coords(energy=("energy", energies), axis=("axis", ["y", "x"]))
    out["registration_shift"] = (("energy", "axis"), shifts)
    out["registration_shift"].attrs["units"] = "px"
    out["i0"] = ("energy", i0v)

    particles = []
    for i, m in enumerate(masks):
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        entry: dict[str, Any] = {
            "particle": i,
            "pixels": int(m.sum()),
            "bbox_yx": [int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1],
            "mean_composition": _nanmean(res.fraction[m]),
            "mean_thickness_proxy": float(np.mean(thickness[m])),
        }
        if sigma is not None:
            entry["mean_sigma_composition"] = _nanmean(sigma[m])
        particles.append(entry)
    results: dict[str, Any] = {
        "method": method,
        "references": list(res.names),
        "energies": int(energies.size),
        "energies_used": int(res.energies.size),
        "energy_range_eV": [float(energies[0]), float(energies[-1])],
        "energy_offset_eV": float(offset),
        "energy_offset_fitted": offset_fit is not None,
        "i0_source": i0_source,
        "otsu_threshold_od": float(threshold),
        "particles": particles,
        "mean_composition": _nanmean(res.fraction[union]),
        "mean_sigma_composition": None if sigma is None else _nanmean(sigma[union]),
        "bootstrap": int(bootstrap) if method == "nnls" else 0,
        "registration": {
            "applied": bool(register),
            "reference": str(reference_frame),
            "max_abs_shift_px": float(np.abs(shifts).max()),
            "rms_shift_px": float(np.sqrt(np.mean(np.sum(shifts**2, axis=1)))),
            "shifts_yx_px": shifts.round(4).tolist(),
        },
    }
    if method == "nnls":
        results["mean_residual_rms_od"] = _nanmean(res.residual_rms[union])
    if mean_fit is not None:
        results["mean_spectrum_fit"] = {
            "fraction": mean_fit["fraction"],
            "rms_residual_od": mean_fit["rms"],
            "od_range": mean_fit["signal_range"],
            "relative_rms": mean_fit["rms"] / mean_fit["signal_range"],
        }
    if offset_fit is not None:
        results["energy_offset_search"] = {
            "grid_eV": [float(offset_fit.offsets[0]), float(offset_fit.offsets[-1])],
            "at_edge": bool(offset_fit.at_edge),
            "min_mean_rms_od": float(np.nanmin(offset_fit.rms)),
        }
    extras = {"mean_fit": mean_fit, "masks": masks, "fraction": res.fraction, "sigma": sigma}
    return out, results, extras


def _nanmean(v: np.ndarray) -> float | None:
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None


def stxm_figures(
    extras: dict[str, Any],
    directory: str | os.PathLike[str],
    *,
    pixel_size: float = 1.0,
    pixel_unit: str = "px",
    title: str = "",
) -> list[Path]:
    """Write the composition map (with sigma) and the mean-spectrum fit as PNGs."""
    from matplotlib.figure import Figure

    from ._figures import save_figure

    directory = Path(directory)
    written = []
    frac, sigma = extras["fraction"], extras["sigma"]
    n = 2 if sigma is not None else 1
    fig = Figure(figsize=(4.0 * n, 3.4))
    axes = fig.subplots(1, n, squeeze=False)[0]
    ny, nx = frac.shape
    extent = (0, nx * pixel_size, ny * pixel_size, 0)
    im = axes[0].imshow(frac, vmin=0, vmax=1, cmap="viridis", extent=extent)
    axes[0].set_title(f"X ({title})" if title else "composition X", fontsize=9)
    fig.colorbar(im, ax=axes[0], fraction=0.046, pad=0.04)
    if sigma is not None:
        vmax = float(np.nanpercentile(sigma, 99)) if np.isfinite(sigma).any() else 1.0
        im2 = axes[1].imshow(sigma, vmin=0, vmax=vmax, cmap="magma", extent=extent)
        axes[1].set_title("bootstrap sigma_X", fontsize=9)
        fig.colorbar(im2, ax=axes[1], fraction=0.046, pad=0.04)
    for ax in axes:
        ax.set_xlabel(pixel_unit, fontsize=8)
        ax.tick_params(labelsize=7)
    written.append(save_figure(fig, directory / STXM_FIGURES[0], dpi=100))
    mf = extras["mean_fit"]
    if mf is not None:
        fig = Figure(figsize=(5.5, 3.6))
        ax = fig.subplots()
        ax.plot(mf["energies"], mf["od"], "k.", ms=3, label="mean OD (particles)")
        ax.plot(mf["energies"], mf["model"], "C3-", lw=1.2, label="NNLS fit")
        resid = mf["od"] - mf["model"]
        ax.plot(mf["energies"], resid + mf["od"].min() - 0.05, "C7-", lw=0.8, label="residual")
        ax.set_xlabel("energy (eV)")
        ax.set_ylabel("optical density")
        ax.set_title(
            f"mean spectrum: X = {mf['fraction']:.3f}, rms residual {mf['rms']:.4f}", fontsize=9
        )
        ax.legend(fontsize=7)
        written.append(save_figure(fig, directory / STXM_FIGURES[1], dpi=100))
    return written


def stxm_composition_file(
    stack: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    method: Method = "nnls",
    references: Sequence[str | os.PathLike[str]] | None = None,
    i0: str | os.PathLike[str] | None = None,
    energy_offset: float | str = 0.0,
    bootstrap: int = 0,
    seed: int = 0,
    register: bool = True,
    reference_frame: int | str = "mean",
    baseline: str = "linear",
    restrict_energies: bool = False,
    min_size: int = 20,
    two_energies: tuple[float, float, float] = (703.0, 706.0, 713.0),
    energies: str | os.PathLike[str] | None = None,
    figures: str | os.PathLike[str] | None = None,
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Composition map(s) from an STXM stack file: dataset + ``OUT.summary.json``.

    Parameters
    ----------
    stack
        Stack file: ALS ``.hdr``, NXstxm ``.nxs``/``.h5``, ``.cxi``, operando ``.nc``, or a
        TIFF (with ``energies`` or a ``STACK.energies.txt`` sidecar).
    out
        Output dataset (``.nc``): ``images`` = X ``(y, x)`` (NaN outside particles),
        ``sigma_composition``, ``coefficients``, ``residual_rms``, ``thickness_proxy``,
        ``od_mean``, ``masks``, ``registration_shift``, ``i0``.
    method
        ``"nnls"`` (all energies, needs ``references``) or ``"two-energy"`` (seed 000 S2.2).
    references
        Two two-column spectra files (first: lithiated / Fe(II)).
    i0
        I0 spectrum file; default the dataset's ``i0`` variable, else the Otsu background.
    energy_offset
        Stack minus reference calibration (eV), or ``"auto"`` to fit it (energies outside
        the shifted references are then dropped).
    bootstrap, seed
        Bootstrap replicates over energies for ``sigma_X`` (0: none) and the seed.
    register, reference_frame
        Phase-correlation registration of the planes and the reference plane.
    baseline
        NNLS baseline: ``"none"``, ``"constant"`` or ``"linear"`` (default).
    restrict_energies
        Fit only the energies inside the references' range instead of raising.
    min_size
        Smallest particle (pixels) kept by the segmentation.
    two_energies
        ``(pre-edge, low, high)`` energies of the two-energy method (reference scale).
    energies
        Energy list for a TIFF stack.
    figures
        Directory for :data:`STXM_FIGURES` PNGs (optional).
    progress
        ``update(done, total)`` callback.

    Returns
    -------
    dict
        ``{"results": ..., "summary": path, "figures": [...]}``.
    """
    out = Path(out)
    ds = _load_stack(stack, energies)
    source = os.fspath(stack)
    result, results, extras = stxm_composition(
        ds,
        method=method,
        references=references,
        i0=i0,
        energy_offset=energy_offset,
        bootstrap=bootstrap,
        seed=seed,
        register=register,
        reference_frame=reference_frame,
        baseline=baseline,
        restrict_energies=restrict_energies,
        min_size=min_size,
        two_energies=two_energies,
        source=source,
        progress=progress,
    )
    file_part, _ = split_spec(stack)
    params: dict[str, Any] = {
        "stack": source,
        "out": os.fspath(out),
        "method": method,
        "references": [os.fspath(r) for r in references] if references else None,
        "i0": None if i0 is None else os.fspath(i0),
        "energy_offset": energy_offset,
        "bootstrap": bootstrap,
        "seed": seed,
        "register": register,
        "reference_frame": reference_frame,
        "baseline": baseline,
        "restrict_energies": restrict_energies,
        "min_size": min_size,
        "two_energies": list(two_energies),
        "energies": None if energies is None else os.fspath(energies),
    }
    result = add_provenance(
        result,
        "stxm composition",
        **{k: v for k, v in params.items() if k != "out"},
        input_sha256=file_sha256(file_part) if file_part.is_file() else None,
    )
    write_dataset(result, out)
    written = []
    if figures is not None:
        written = stxm_figures(
            extras,
            figures,
            pixel_size=float(result.attrs["pixel_size"]),
            pixel_unit=str(result.attrs["pixel_unit"]),
            title=method,
        )
        results["figures"] = [os.fspath(p) for p in written]
    inputs = [source] + [os.fspath(r) for r in references or []]
    if i0 is not None:
        inputs.append(os.fspath(i0))
    summary = summary_path_for(out)
    write_summary(
        summary,
        command="operando stxm composition",
        parameters=params,
        results=results,
        inputs=inputs,
    )
    return {"results": results, "summary": summary, "figures": written}


def stxm_plan_energies(
    *,
    references: Sequence[str | os.PathLike[str]] | None,
    noise: float,
    composition: float = 0.5,
    amount: float = 1.0,
    n_values: Sequence[int] = (5, 11, 21, 33, 45, 65),
    uniform_range: tuple[float, float] | None = None,
    pre_edge: float | None = None,
    rising: tuple[float, float] = (705.0, 707.0),
    falling: tuple[float, float] = (711.0, 714.0),
    baseline: str = "constant",
    trials: int = 0,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Beamtime planning table (``sigma_X`` vs number of energies, two strategies).

    Without ``references`` the analytic LFP/FP-like spectra of
    :func:`operando.modalities.stxm.model_references` are used. With ``out`` the table is
    written as JSON (atomically).
    """
    import jax

    from ..modalities import stxm

    refs = stxm.load_references(references) if references else stxm.model_references()
    plan = stxm.plan_energies(
        refs,
        noise=noise,
        composition=composition,
        amount=amount,
        n_values=n_values,
        uniform_range=uniform_range,
        pre_edge=pre_edge,
        rising=rising,
        falling=falling,
        baseline=baseline,  # type: ignore[arg-type]
        n_trials=trials,
        key=jax.random.key(seed) if trials > 0 else None,
    )
    record = {
        "references": [os.fspath(r) for r in references] if references else "model_references",
        "settings": plan.settings,
        "rows": plan.rows(),
    }
    if out is not None:
        write_json(record, out)
    return record
