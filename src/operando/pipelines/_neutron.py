"""Neutron radiography workflow: raw frames in, attenuation maps, profiles, activity out.

:func:`analyze_neutron` runs the chain of seed 000 S2.4 on arrays (median filter, optional
denoising, normalisation, Beer–Lambert, half-cycles, ``ΔΣ``, Otsu activity, sequestered
lithium, dynamic variability); :func:`analyze_neutron_files` reads the inputs, writes
``attenuation.nc``, ``profiles.csv``, ``activity.csv``, figures like Fig. 5d–f and
``summary.json`` into a directory.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..data import add_provenance, get_truth, make_dataset
from ..errors import DataError, FileFormatError, ParameterError
from ..io import atomic_path, read_dataset, split_spec, write_dataset, write_summary
from ..modalities import neutron as nn

__all__ = [
    "NEUTRON_FIGURES",
    "NeutronAnalysis",
    "analyze_neutron",
    "analyze_neutron_files",
    "neutron_figures",
    "parse_half_cycles",
    "parse_region",
]

NEUTRON_FIGURES = ("neutron_delta_maps.png", "neutron_activity.png", "neutron_sequestration.png")


@dataclass(frozen=True)
class NeutronAnalysis:
    """Everything :func:`analyze_neutron` computes for one processing variant."""

    transmission: nn.Transmission
    attenuation: nn.Attenuation
    delta_sigma: np.ndarray
    half_cycles: list[nn.HalfCycle]
    activity: list[nn.ElectrodeActivity]
    profiles: dict[str, tuple[np.ndarray, np.ndarray]]
    sequestration: nn.Sequestration | None
    variability: float
    raw: NeutronAnalysis | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def analyze_neutron(
    intensity: Any,
    open_beam: Any,
    dark: Any,
    *,
    radius_cm: float | None = None,
    centre_px: float | None = None,
    pixels_per_cm: float = nn.PAPER_PIXELS_PER_CM,
    thickness_cm: float | None = None,
    half_cycles: Sequence[nn.HalfCycle] | None = None,
    regions: Mapping[str, Any] | None = None,
    sequester_region: str | None = "anode",
    median: int = 3,
    denoiser: nn.FrameDenoiser | None = None,
    min_thickness_fraction: float = 0.1,
    nonpositive: str = "raise",
    min_threshold: float = 0.0,
    window_level: float = 0.2,
) -> NeutronAnalysis:
    """Raw intensity, open-beam and dark frames to differential attenuation and activity.

    Parameters
    ----------
    intensity, open_beam, dark
        Frames ``(t, y, x)``, ``(n_ob, y, x)``, ``(n_dc, y, x)`` (raw counts).
    radius_cm, centre_px, pixels_per_cm
        Cylindrical cell geometry for ``δ(x)``; or give ``thickness_cm`` (flat sample).
    half_cycles
        Default: the whole series as one charge.
    regions
        Electrode name -> rows ``(y0, y1)`` or a boolean ``(y, x)`` mask.
    sequester_region
        Region in which to locate lithium kept after the first discharge (None: skip).
    median, denoiser, min_thickness_fraction, nonpositive, min_threshold, window_level
        See :func:`operando.modalities.neutron.normalise`, :func:`~.attenuation`,
        :func:`~.electrode_activity`. With a ``denoiser`` the undenoised ("raw") chain is
        run too and returned as ``.raw`` for comparison.
    """
    i = np.asarray(intensity, dtype=np.float64)
    if i.ndim == 2:
        i = i[None]
    if thickness_cm is None and radius_cm is None:
        raise ParameterError(
            "no sample thickness",
            where="geometry",
            fix="give the cell radius (cm) for the cylindrical chord, or a flat thickness",
        )
    if thickness_cm is not None:
        if not thickness_cm > 0:
            raise ParameterError(
                f"thickness {thickness_cm} cm",
                where="thickness",
                fix="give a positive thickness in cm",
            )
        th: Any = float(thickness_cm)
    else:
        th = nn.chord_thickness(
            i.shape[-1],
            radius_cm=float(radius_cm),
            centre_px=centre_px,
            pixels_per_cm=pixels_per_cm,
        )
    hcs = list(half_cycles) if half_cycles else [nn.HalfCycle(0, "charge", 0, i.shape[0])]
    if hcs[-1].stop > i.shape[0]:
        raise ParameterError(
            f"half-cycles run to frame {hcs[-1].stop} but the series has {i.shape[0]}",
            where="half-cycles",
            fix="check the boundaries or the electrochemistry time origin",
        )
    params = {
        "radius_cm": radius_cm,
        "centre_px": centre_px,
        "pixels_per_cm": pixels_per_cm,
        "thickness_cm": thickness_cm,
        "median": median,
        "min_thickness_fraction": min_thickness_fraction,
        "nonpositive": nonpositive,
        "min_threshold": min_threshold,
        "window_level": window_level,
        "half_cycles": [[h.label, h.kind, h.start, h.stop] for h in hcs],
    }

    def chain(den: nn.FrameDenoiser | None) -> NeutronAnalysis:
        tr = nn.normalise(i, open_beam, dark, median=median, denoiser=den)
        thick = np.asarray(th)
        mt = min_thickness_fraction * float(np.max(thick))
        at = nn.attenuation(tr.transmission, th, min_thickness=mt, nonpositive=nonpositive)  # type: ignore[arg-type]
        d = nn.delta_attenuation(at.sigma, [h.start for h in hcs], [h.stop for h in hcs])
        masks: dict[str, np.ndarray] = {}
        for name, r in (regions or {}).items():
            arr = np.asarray(r)
            if arr.dtype == bool or arr.ndim == 2:
                m = arr.astype(bool)
                if m.shape != at.valid.shape:
                    raise DataError(
                        f"mask is {m.shape}, frames {at.valid.shape}",
                        where=f"region '{name}'",
                        fix="give a mask of frame size",
                    )
                masks[name] = m & at.valid
            else:
                masks[name] = nn.region_mask(at.valid.shape, tuple(arr.tolist()), at.valid)
        act = (
            nn.electrode_activity(
                d, hcs, masks, min_threshold=min_threshold, window_level=window_level
            )
            if masks
            else []
        )
        profiles = {h.label: nn.depth_profile(d[h.last], at.valid) for h in hcs}
        seq = None
        first_dis = next((h for h in hcs if h.kind == "discharge"), None)
        if sequester_region and sequester_region in masks and first_dis is not None:
            seq = nn.sequestered_region(
                at.sigma,
                masks[sequester_region],
                reference_frame=hcs[0].start,
                frame=first_dis.last,
                min_threshold=min_threshold,
            )
        var = nn.dynamic_variability(d, hcs, at.valid)
        return NeutronAnalysis(tr, at, d, hcs, act, profiles, seq, var, None, params)

    result = chain(denoiser)
    if denoiser is not None:
        raw = chain(None)
        result = NeutronAnalysis(
            result.transmission,
            result.attenuation,
            result.delta_sigma,
            hcs,
            result.activity,
            result.profiles,
            result.sequestration,
            result.variability,
            raw,
            params,
        )
    return result


# --------------------------------------------------------------------------- parsing


def parse_half_cycles(
    spec: str | None,
    n_frames: int,
    *,
    frame_times: Any | None = None,
    first: str = "charge",
    charge_sign: int = 1,
    rest_tolerance: float = 0.0,
) -> list[nn.HalfCycle] | None:
    """``"0,6,12"`` (first frames) or a CSV file with time and current -> half-cycles."""
    if spec is None or not str(spec).strip():
        return None
    s = str(spec).strip()
    if re.fullmatch(r"\d+(\s*,\s*\d+)*", s):
        return nn.half_cycles_from_boundaries([int(v) for v in s.split(",")], n_frames, first=first)  # type: ignore[arg-type]
    p = Path(s)
    if not p.exists():
        raise ParameterError(
            f"--half-cycles {s!r} is neither a list of frame indices nor an existing CSV file",
            where="--half-cycles",
            fix="give first frames such as 0,6,12 or an electrochemistry CSV (time, current)",
        )
    t, c = nn.read_electrochemistry_csv(p)
    ft = np.arange(n_frames, dtype=np.float64) if frame_times is None else frame_times
    return nn.half_cycles_from_current(
        t, c, ft, charge_sign=charge_sign, rest_tolerance=rest_tolerance
    )


def parse_region(spec: str | os.PathLike[str], shape: tuple[int, int], name: str) -> Any:
    """``"Y0:Y1"`` (rows) or a mask file (``.npy``, ``.tif``; non-zero = inside)."""
    s = os.fspath(spec).strip()
    m = re.fullmatch(r"(\d+)\s*:\s*(\d+)", s)
    if m:
        return (int(m.group(1)), int(m.group(2)))
    p = Path(s)
    if not p.exists():
        raise ParameterError(
            f"{s!r} is neither rows Y0:Y1 nor a mask file",
            where=f"--{name}",
            fix="give rows such as 10:40 or a .npy/.tif mask",
        )
    if p.suffix.lower() == ".npy":
        arr = np.load(p, allow_pickle=False)
    else:
        arr = np.asarray(read_dataset(p)["images"].values)
    arr = np.squeeze(arr)
    if arr.shape != shape:
        raise DataError(
            f"mask is {arr.shape}, frames are {shape}",
            where=str(p),
            fix="give a mask of the (cropped) frame size",
        )
    return arr != 0


# --------------------------------------------------------------------------- files


def _load_frames(
    spec: str | os.PathLike[str] | Sequence[str], what: str
) -> tuple[np.ndarray, xr.Dataset | None]:
    if isinstance(spec, str | os.PathLike):
        path, _ = split_spec(spec)
        if path.suffix.lower() in (".nc", ".nc4", ".h5", ".hdf5", ".hdf") and path.exists():
            ds = read_dataset(spec)
            img = np.asarray(ds["images"].values)
            if img.ndim == 2:
                img = img[None]
            if img.ndim != 3:
                raise DataError(
                    f"images have dims {ds['images'].dims}; expected (t, y, x)",
                    where=os.fspath(spec),
                )
            return img, ds
    try:
        return nn.read_frames(spec), None
    except FileFormatError as e:
        raise FileFormatError(e.what, where=f"{what}: {e.where}", fix=e.fix) from None


def _write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return path


def analyze_neutron_files(
    frames: str | os.PathLike[str] | Sequence[str],
    out: str | os.PathLike[str],
    *,
    open_beam: str | os.PathLike[str] | Sequence[str] | None = None,
    dark: str | os.PathLike[str] | Sequence[str] | None = None,
    radius_cm: float | None = None,
    centre_px: float | None = None,
    pixels_per_cm: float | None = None,
    thickness_cm: float | None = None,
    half_cycles: str | None = None,
    first: str = "charge",
    frame_interval_s: float | None = None,
    charge_sign: int = 1,
    anode: str | None = None,
    cathode: str | None = None,
    denoise: str | None = None,
    denoise_epochs: int = 10,
    denoise_steps: int | None = 50,
    seed: int = 0,
    median: int = 3,
    mask_nonpositive: bool = False,
    min_thickness_fraction: float = 0.1,
    min_threshold: float = 0.0,
    figures: bool = True,
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Run :func:`analyze_neutron` on files and write the results into directory ``out``.

    ``frames`` may be a TIFF/FITS series (file, directory, glob), a Data Exchange HDF5
    (open beam and dark inside) or an operando dataset with ``open_beam``/``dark`` variables
    (``operando simulate neutron``); its attributes ``radius_cm``, ``centre_px``,
    ``pixels_per_cm``, ``half_cycle_starts``, ``electrode_rows`` supply defaults for the
    geometry, half-cycles and regions. Returns ``{"summary": path, "results": {...}}``.
    """
    step = progress or (lambda *a, **k: None)
    total = 5
    step(0, total, stage="reading")
    img, ds = _load_frames(frames, "frames")
    attrs = dict(ds.attrs) if ds is not None else {}
    if open_beam is not None:
        ob, _ = _load_frames(open_beam, "open beam")
    elif ds is not None and "open_beam" in ds:
        ob = np.asarray(ds["open_beam"].values)
    else:
        raise DataError(
            "no open-beam frames",
            where="--open-beam",
            fix="give the open-beam (flat-field) frames with --open-beam FILE",
        )
    if dark is not None:
        dc, _ = _load_frames(dark, "dark")
    elif ds is not None and "dark" in ds:
        dc = np.asarray(ds["dark"].values)
    else:
        raise DataError(
            "no dark-current frames",
            where="--dark",
            fix="give the dark-current frames with --dark FILE",
        )
    ny, nx = img.shape[1:]
    if radius_cm is None and thickness_cm is None and "radius_cm" in attrs:
        radius_cm = float(attrs["radius_cm"])
        if centre_px is None and "centre_px" in attrs:
            centre_px = float(attrs["centre_px"])
    if pixels_per_cm is None:
        pixels_per_cm = float(attrs.get("pixels_per_cm", nn.PAPER_PIXELS_PER_CM))
    if half_cycles is None and "half_cycle_starts" in attrs:
        half_cycles = ",".join(str(v) for v in json.loads(attrs["half_cycle_starts"]))
        first = str(attrs.get("first_half_cycle", first))
    if ds is not None and "t" in ds["images"].dims:
        ft = np.asarray(ds["t"].values, dtype=np.float64)
    else:
        ft = np.arange(img.shape[0], dtype=np.float64)
    if frame_interval_s is not None:
        ft = np.arange(img.shape[0], dtype=np.float64) * frame_interval_s
    hcs = parse_half_cycles(
        half_cycles, img.shape[0], frame_times=ft, first=first, charge_sign=charge_sign
    )
    rows = json.loads(attrs["electrode_rows"]) if "electrode_rows" in attrs else {}
    regions: dict[str, Any] = {}
    for name, spec in (("anode", anode), ("cathode", cathode)):
        if spec is not None:
            regions[name] = parse_region(spec, (ny, nx), name)
        elif name in rows:
            regions[name] = tuple(rows[name])
    den = None
    if denoise:
        if denoise not in ("n2v", "n2v2", "umvd"):
            raise ParameterError(
                f"--denoise {denoise!r}", where="--denoise", fix="use n2v, n2v2 or umvd"
            )
        den = nn.train_frame_denoiser(
            denoise, key=seed, epochs=denoise_epochs, steps_per_epoch=denoise_steps
        )
    step(1, total, stage="normalising" + (" + denoising" if den else ""))
    res = analyze_neutron(
        img,
        ob,
        dc,
        radius_cm=radius_cm,
        centre_px=centre_px,
        pixels_per_cm=pixels_per_cm,
        thickness_cm=thickness_cm,
        half_cycles=hcs,
        regions=regions,
        median=median,
        denoiser=den,
        min_thickness_fraction=min_thickness_fraction,
        nonpositive="mask" if mask_nonpositive else "raise",
        min_threshold=min_threshold,
    )
    step(3, total, stage="writing")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    at = res.attenuation
    maps = make_dataset(
        at.sigma,
        dims=("t", "y", "x"),
        coords={"t": ft},
        pixel_size=1e4 / pixels_per_cm,
        pixel_unit="um",
        attrs={"quantity": "attenuation coefficient Sigma (1/cm)"},
        allow_nonfinite=True,
        source="attenuation",
    )
    maps["transmission"] = (("t", "y", "x"), res.transmission.transmission)
    maps["delta_sigma"] = (("t", "y", "x"), res.delta_sigma)
    maps["thickness_cm"] = (("y", "x"), at.thickness)
    maps["valid"] = (("y", "x"), at.valid.astype(np.uint8))
    maps["open_beam_mean"] = (("y", "x"), res.transmission.open_beam)
    maps["dark_mean"] = (("y", "x"), res.transmission.dark)
    if res.raw is not None:
        maps["delta_sigma_raw"] = (("t", "y", "x"), res.raw.delta_sigma)
    maps = add_provenance(maps, "neutron analyze", denoise=denoise, median=median)
    write_dataset(maps, out / "attenuation.nc")

    prof_rows: list[dict[str, Any]] = []
    for h in res.half_cycles:
        mean, std = res.profiles[h.label]
        rm, rs = res.raw.profiles[h.label] if res.raw is not None else (None, None)
        for y in range(ny):
            r: dict[str, Any] = {
                "half_cycle": h.label,
                "kind": h.kind,
                "row": y,
                "depth_um": y * 1e4 / pixels_per_cm,
                "delta_sigma_mean": float(mean[y]),
                "delta_sigma_std": float(std[y]),
            }
            if rm is not None and rs is not None:
                r["raw_mean"] = float(rm[y])
                r["raw_std"] = float(rs[y])
            prof_rows.append(r)
    _write_csv(prof_rows, out / "profiles.csv")
    act_rows = [{"variant": "denoised" if den else "raw", **a.as_row()} for a in res.activity]
    if res.raw is not None:
        act_rows += [{"variant": "raw", **a.as_row()} for a in res.raw.activity]
    _write_csv(act_rows, out / "activity.csv")

    truth = get_truth(ds) if ds is not None else None
    tp = truth.parameters if truth is not None else {}
    figs: list[str] = []
    if figures:
        for name, fig in neutron_figures(res, truth=tp).items():
            from ._figures import save_figure

            save_figure(fig, out / name)
            figs.append(name)

    def seq_rows(r: NeutronAnalysis) -> list[int] | None:
        s = r.sequestration
        return None if s is None or s.rows is None else list(s.rows)

    results: dict[str, Any] = {
        "frames": img.shape[0],
        "frame_shape": [ny, nx],
        "masked_pixels": res.transmission.n_masked,
        "nonpositive_values": at.n_nonpositive,
        "valid_pixels": int(at.valid.sum()),
        "half_cycles": [h.label for h in res.half_cycles],
        "active_fraction": {
            f"{a.half_cycle.label}/{a.electrode}": round(a.active_fraction, 4) for a in res.activity
        },
        "active_window_rows": {
            f"{a.half_cycle.label}/{a.electrode}": (None if a.window is None else list(a.window))
            for a in res.activity
        },
        "sequestered_rows": seq_rows(res),
        "dynamic_variability": res.variability,
        "figures": figs,
    }
    if res.raw is not None:
        results["dynamic_variability_raw"] = res.raw.variability
        results["variability_reduction"] = 1.0 - res.variability / res.raw.variability
        results["active_fraction_raw"] = {
            f"{a.half_cycle.label}/{a.electrode}": round(a.active_fraction, 4)
            for a in res.raw.activity
        }
        results["sequestered_rows_raw"] = seq_rows(res.raw)
    if "active_fraction" in tp:
        errs = [
            abs(a.active_fraction - tp["active_fraction"][a.electrode][a.half_cycle.index])
            for a in res.activity
            if a.electrode in tp["active_fraction"]
            and a.half_cycle.index < len(tp["active_fraction"][a.electrode])
        ]
        if errs:
            results["truth_active_fraction_max_abs_error"] = float(max(errs))
        results["truth_sequestered_rows"] = tp.get("sequestered_rows_first_discharge")
    inputs = [
        os.fspath(x)
        for x in ([frames] if isinstance(frames, str | os.PathLike) else list(frames))
        if Path(os.fspath(x)).is_file()
    ]
    for extra in (open_beam, dark):
        if isinstance(extra, str | os.PathLike) and Path(extra).is_file():
            inputs.append(os.fspath(extra))
    if half_cycles and Path(str(half_cycles)).is_file():
        inputs.append(str(half_cycles))
    summary = write_summary(
        out,
        command="neutron analyze",
        parameters={
            **res.parameters,
            "denoise": denoise,
            "denoise_epochs": denoise_epochs,
            "denoise_steps": denoise_steps,
            "seed": seed,
            "regions": {
                k: (list(v) if isinstance(v, tuple) else "mask") for k, v in regions.items()
            },
        },
        results=results,
        inputs=inputs,
    )
    step(total, total, stage="done")
    return {"summary": str(summary), "results": results, "analysis": res}


# --------------------------------------------------------------------------- figures


def _profile_axes(ax: Any, r: NeutronAnalysis, label: str, color: str, name: str) -> None:
    mean, std = r.profiles[label]
    y = np.arange(mean.size)
    ok = np.isfinite(mean)
    ax.plot(y[ok], mean[ok], color=color, lw=1.2, label=name)
    ax.fill_between(y[ok], (mean - std)[ok], (mean + std)[ok], color=color, alpha=0.25, lw=0)


def neutron_figures(
    res: NeutronAnalysis, *, truth: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Figures like seed 000 Fig. 5d (maps + profiles), 5e (activity), 5f (sequestration)."""
    from matplotlib.figure import Figure

    figs: dict[str, Any] = {}
    hcs = res.half_cycles
    n = len(hcs)
    valid = res.attenuation.valid
    d = res.delta_sigma
    vals = np.concatenate([d[h.last][valid] for h in hcs])
    lim = float(np.nanpercentile(np.abs(vals), 99)) or 1.0
    nrow = 3 if res.raw is not None else 2
    fig = Figure(figsize=(2.3 * n, 2.4 * nrow), layout="constrained")
    axes = fig.subplots(nrow, n, squeeze=False)
    for j, h in enumerate(hcs):
        rows_maps = [(res, "denoised" if res.raw is not None else "ΔΣ")]
        if res.raw is not None:
            rows_maps.insert(0, (res.raw, "raw"))
        for k, (r, name) in enumerate(rows_maps):
            ax = axes[k, j]
            im = ax.imshow(
                np.where(valid, r.delta_sigma[h.last], np.nan),
                cmap="RdBu_r",
                vmin=-lim,
                vmax=lim,
                aspect="auto",
                interpolation="nearest",
            )
            ax.set_title(f"{h.label} ({name})", fontsize=8)
            ax.set_xticks([])
            if j == 0:
                ax.set_ylabel("depth (row)", fontsize=8)
            else:
                ax.set_yticks([])
        ax = axes[nrow - 1, j]
        if res.raw is not None:
            _profile_axes(ax, res.raw, h.label, "0.5", "raw")
        _profile_axes(ax, res, h.label, "purple", "denoised" if res.raw is not None else "ΔΣ")
        for a in res.activity:
            if a.half_cycle == h and a.window is not None:
                for b in a.window:
                    ax.axvline(b, color="green", ls="--", lw=0.8)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("depth (row)", fontsize=8)
        ax.tick_params(labelsize=7)
        if j == 0:
            ax.set_ylabel("ΔΣ (1/cm)", fontsize=8)
            ax.legend(fontsize=6)
    fig.colorbar(
        im, ax=axes[: nrow - 1, :].ravel().tolist(), fraction=0.02, pad=0.01, label="ΔΣ (1/cm)"
    )
    fig.suptitle("Differential attenuation at the end of each half-cycle", fontsize=10)
    figs[NEUTRON_FIGURES[0]] = fig

    if res.activity:
        fig = Figure(figsize=(1.0 + 0.9 * n, 3.2), layout="constrained")
        ax = fig.subplots()
        names = sorted({a.electrode for a in res.activity})
        width = 0.8 / len(names)
        colours = {"anode": "tab:blue", "cathode": "tab:red"}
        for k, name in enumerate(names):
            xs = np.arange(n) + (k - (len(names) - 1) / 2) * width
            fr = [a.active_fraction for a in res.activity if a.electrode == name]
            ax.bar(xs, fr, width, color=colours.get(name, f"C{k}"), label=name, alpha=0.85)
            if res.raw is not None:
                fr_raw = [a.active_fraction for a in res.raw.activity if a.electrode == name]
                ax.plot(
                    xs, fr_raw, "o", mfc="none", color="k", ms=4, label="raw" if k == 0 else None
                )
            tf = (truth or {}).get("active_fraction", {}).get(name)
            if tf:
                ax.plot(xs, tf[:n], "_", color="k", ms=14, mew=2, label="truth" if k == 0 else None)
        ax.set_xticks(np.arange(n), [h.label for h in hcs])
        ax.set_ylim(0, 1)
        ax.set_ylabel("active area fraction")
        ax.legend(fontsize=7, ncol=2)
        ax.set_title("Electrode activity per half-cycle (Otsu at last frame)", fontsize=9)
        figs[NEUTRON_FIGURES[1]] = fig

    sigma = res.attenuation.sigma
    ref = hcs[0].start
    ends = [h for h in hcs if h.kind == "discharge"] or hcs[-1:]
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax0, ax1 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    first_end = ends[0].last
    cum = np.where(valid, sigma[first_end] - sigma[ref], np.nan)
    lim2 = float(np.nanpercentile(np.abs(cum), 99)) or 1.0
    im = ax0.imshow(
        cum, cmap="RdBu_r", vmin=-lim2, vmax=lim2, aspect="auto", interpolation="nearest"
    )
    ax0.set_title(f"Σ({ends[0].label} end) − Σ(start)", fontsize=9)
    ax0.set_ylabel("depth (row)")
    fig.colorbar(im, ax=ax0, fraction=0.046)
    cmap = __import__("matplotlib").colormaps["viridis"]
    for k, h in enumerate(ends):
        mean, std = nn.depth_profile(sigma[h.last] - sigma[ref], valid)
        y = np.arange(mean.size)
        ok = np.isfinite(mean)
        c = cmap(k / max(len(ends) - 1, 1))
        ax1.plot(y[ok], mean[ok], color=c, label=f"{h.label} end")
        ax1.fill_between(y[ok], (mean - std)[ok], (mean + std)[ok], color=c, alpha=0.2, lw=0)
    if res.sequestration is not None and res.sequestration.rows is not None:
        a, b = res.sequestration.rows
        ax1.axvspan(a - 0.5, b - 0.5, color="orange", alpha=0.2, label="sequestered (found)")
    ts = (truth or {}).get("sequestered_rows_first_discharge")
    if ts:
        for v in ts:
            ax1.axvline(v - 0.5, color="k", ls=":", lw=1)
    ax1.axhline(0, color="k", lw=0.5)
    ax1.set_xlabel("depth (row)")
    ax1.set_ylabel("ΔΣ vs start (1/cm)")
    ax1.legend(fontsize=7)
    ax1.set_title("Lithium kept after each discharge (depth profiles ± in-plane std)", fontsize=9)
    figs[NEUTRON_FIGURES[2]] = fig
    return figs
