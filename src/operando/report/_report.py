"""Self-contained HTML report of an ``operando run`` directory.

The report reads what a run wrote (``config.yaml``, ``run.json``, ``summary.json`` and the
stage directories) and renders one HTML file with every figure embedded as base64 PNG
(no external assets, no JavaScript). Figures are also written as PNG files into
``report_figures/`` next to the report. Sections appear only for the stages the run has:

* overview with an automatically written "what was learned" paragraph;
* configuration and provenance (version, input checksums, seeds, machine);
* input data frames; composition maps (STXM); denoising before/after with metrics and
  the training loss; learned laws with uncertainty bands against reference theory (CIET,
  regular solution) and the truth when present, data vs model frames, ``k(x, y)`` maps,
  convergence history (kinetics or Cahn–Hilliard);
* any other stage (UQ, neutron, optical, ...): its figures and key results, or a custom
  section registered with :func:`register_section`.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..errors import FileFormatError
from ..io import atomic_path

__all__ = [
    "REPORT_SECTIONS",
    "Report",
    "Section",
    "build_report",
    "register_section",
    "render_html",
    "write_report",
]

#: z-value of a two-sided 99 % normal band (the bands drawn by the kinetics figures).
Z99 = 2.5758


@dataclass
class Section:
    """One report section: an id, a title, HTML body and named PNG figures."""

    id: str
    title: str
    body: str = ""
    figures: list[tuple[str, bytes, str]] = field(default_factory=list)  # (name, png, caption)


@dataclass
class Report:
    """A rendered report: sections, the 'what was learned' lines and the key numbers."""

    title: str
    sections: list[Section]
    learned: list[str]
    numbers: dict[str, Any]

    def section_ids(self) -> list[str]:
        """Ids of the sections, in order."""
        return [s.id for s in self.sections]


SectionBuilder = Callable[[Path, dict[str, Any], "_RunView"], Section | None]

#: Stage name -> section builder; stages without one get the generic section.
REPORT_SECTIONS: dict[str, SectionBuilder] = {}


def register_section(stage: str, builder: SectionBuilder) -> SectionBuilder:
    """Register the report section builder for ``stage`` (replaces the generic one)."""
    REPORT_SECTIONS[stage] = builder
    return builder


# ----------------------------------------------------------------------------- helpers


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(rows: list[tuple[str, Any]], head: tuple[str, str] | None = None) -> str:
    h = f"<tr><th>{_esc(head[0])}</th><th>{_esc(head[1])}</th></tr>" if head else ""
    body = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{h}{body}</table>"


def _scalars(results: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in results.items() if isinstance(v, int | float | str | bool)]


def _fig_png(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _png_file(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@dataclass
class _RunView:
    """What a section builder may need about the whole run."""

    root: Path
    config: dict[str, Any]
    record: dict[str, Any]
    summary: dict[str, Any]
    stage_dirs: dict[str, Path]


def _open(path: Path) -> Any:
    import xarray as xr

    return xr.open_dataset(path, engine="h5netcdf").load()


# ---------------------------------------------------------------------------- sections


def _overview(view: _RunView, learned: list[str]) -> Section:
    rows = "".join(
        f"<tr><td>{_esc(s['name'])}</td><td>{'cached' if s['cached'] else 'computed'}</td>"
        f"<td>{s['wall_s']:.1f} s</td><td><code>{_esc(s['key'][:12])}</code></td></tr>"
        for s in view.record.get("stages", [])
    )
    para = " ".join(_esc(x) for x in learned) or "No learning stage in this run."
    body = (
        f"<p class='learned'>{para}</p>"
        "<table><tr><th>stage</th><th>this run</th><th>wall time</th><th>cache key</th></tr>"
        f"{rows}</table>"
    )
    return Section("overview", "What was learned", body)


def _provenance(view: _RunView) -> Section:
    s = view.summary
    cfg_text = (
        (view.root / "config.yaml").read_text() if (view.root / "config.yaml").is_file() else ""
    )
    seeds = [("run.seed", view.config.get("run", {}).get("seed"))]
    inputs: dict[str, str] = dict(s.get("inputs", {}))
    for name, d in view.stage_dirs.items():
        ss = _read_json(d / "summary.json")
        seeds.append((name, ss.get("parameters", {}).get("seed")))
        for k, v in ss.get("inputs", {}).items():
            if name == "input" or "/stages/" not in k:
                inputs[k] = v
    versions = s.get("versions", {})
    plat = s.get("platform", {})
    prov = [(f"version {k}", v) for k, v in versions.items()]
    prov += [("machine", plat.get("system")), ("cpu count", plat.get("cpu_count")),
             ("created", s.get("created"))]  # fmt: skip
    body = (
        "<h3>Provenance</h3>" + _table(prov)
        + "<h3>Seeds</h3>" + _table(seeds, ("stage", "seed"))
        + "<h3>Input checksums (SHA-256)</h3>"
        + (_table(list(inputs.items()), ("file", "sha256")) if inputs else
           "<p>Synthetic input (no files): the simulation options above define it.</p>")
        + "<h3>Resolved configuration</h3>"
        + f"<pre>{_esc(cfg_text)}</pre>"
    )  # fmt: skip
    return Section("config", "Configuration and provenance", body)


def _input_section(d: Path, summary: dict[str, Any], view: _RunView) -> Section | None:
    from ..data import get_truth
    from ..errors import OperandoError
    from ..io import read_dataset

    rec = next((s for s in view.record["stages"] if s["name"] == "input"), {})
    path = view.root / rec["dataset"] if rec.get("dataset") else d / "data.nc"
    if not path.is_file():
        return None
    try:
        ds = read_dataset(path)
    except OperandoError:
        return None
    img = ds["images"]
    arr = np.asarray(img.values, dtype=np.float64)
    dims = list(img.dims)
    label = "images"
    if "energy" in dims:  # show the plane nearest the middle energy
        e = np.asarray(ds["energy"].values)
        arr = np.take(arr, int(np.argmin(np.abs(e - np.median(e)))), axis=dims.index("energy"))
        label = f"counts at {float(np.median(e)):.1f} eV"
    frames = arr.reshape(-1, *arr.shape[-2:])
    keep = [i for i in range(frames.shape[0]) if np.isfinite(frames[i]).any()]
    sel = [keep[round(j)] for j in np.linspace(0, len(keep) - 1, min(6, len(keep)))]
    fig = Figure(figsize=(2.0 * len(sel), 2.2))
    axes = fig.subplots(1, len(sel), squeeze=False)[0]
    for ax, i in zip(axes, sel, strict=True):
        ax.imshow(frames[i], cmap="viridis", interpolation="nearest")
        ax.set_title(f"frame {i}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"input data ({label})", fontsize=9)
    truth = get_truth(ds)
    rows = [
        ("dims", " x ".join(f"{k}={v}" for k, v in zip(dims, img.shape, strict=True))),
        ("ground truth", "present" if truth is not None else "absent"),
        ("pixel size", f"{ds.attrs.get('pixel_size')} {ds.attrs.get('pixel_unit')}"),
    ]
    if truth is not None and truth.parameters:
        rows.append(("true parameters", json.dumps(truth.parameters)[:400]))
    return Section("data", "Input data", _table(rows), [("input_frames", _fig_png(fig), "")])


def _composition_section(d: Path, summary: dict[str, Any], view: _RunView) -> Section:
    res = summary.get("results", {})
    figs = []
    for name in ("composition_frames", "stxm_fraction_map", "stxm_mean_fit"):
        png = _png_file(d / f"{name}.png")
        if png:
            figs.append((name, png, ""))
    return Section("composition", "Composition (STXM)", _table(_scalars(res)), figs)


def _denoise_section(d: Path, summary: dict[str, Any], view: _RunView) -> Section:
    res = summary.get("results", {})
    figs = []
    png = _png_file(d / "denoise.png")
    if png:
        figs.append(("denoise_before_after", png, "noisy, denoised and (when known) true frames"))
    loss = res.get("loss_history") or []
    if loss:
        fig = Figure(figsize=(5, 3))
        ax = fig.subplots()
        ax.plot(np.arange(1, len(loss) + 1), loss, lw=1)
        ax.set_xlabel("training step")
        ax.set_ylabel("masked-pixel loss")
        ax.set_yscale("log")
        ax.set_title("denoiser training loss", fontsize=9)
        figs.append(("denoise_loss", _fig_png(fig), ""))
    rows = [(k, v) for k, v in _scalars(res) if k != "loss_history"]
    return Section("denoise", "Denoising: before and after", _table(rows), figs)


def _band_coverage(fit: Any) -> dict[str, float]:
    """Fraction of c in [0.05, 0.95] where the truth lies inside the 99 % band."""
    from ..inverse import normalise_j0

    out: dict[str, float] = {}
    c = np.asarray(fit["c"].values)
    sel = (c >= 0.05) & (c <= 0.95)
    if "j0_true" in fit and "ln_j0_std" in fit:
        j0, jt = np.asarray(fit["j0"].values), np.asarray(fit["j0_true"].values)
        s = np.asarray(fit["ln_j0_std"].values)
        # the figure compares shapes (normalised by the maximum on [0.05, 0.95])
        d = np.log(normalise_j0(c, j0)) - np.log(normalise_j0(c, jt))
        out["j0_in_band"] = float(np.mean(np.abs(d[sel]) <= Z99 * s[sel] + 1e-12))
    if "mu_h_true" in fit:
        mu, mt = np.asarray(fit["mu_h"].values), np.asarray(fit["mu_h_true"].values)
        s = np.asarray(fit["mu_h_std"].values)
        out["mu_in_band"] = float(np.mean(np.abs(mu[sel] - mt[sel]) <= Z99 * s[sel] + 1e-12))
    return out


def _convergence_figure(cost: np.ndarray, title: str) -> bytes:
    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    ax.semilogy(np.arange(cost.size), cost, "o-", ms=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel("cost")
    ax.set_title(title, fontsize=9)
    return _fig_png(fig)


def _learn_kinetics_section(d: Path, summary: dict[str, Any], view: _RunView) -> Section:
    res = summary.get("results", {})
    figs = []
    for name, cap in (
        ("laws", "learned j0(c) and mu_h(c) with 99 % Gauss–Newton bands, CIET and regular "
                 "solution references, and the truth when known"),
        ("frames", "data (upper) vs model (lower) frames"),
        ("k_maps", "learned (and true) ln k(x, y) per particle"),
    ):  # fmt: skip
        png = _png_file(d / f"{name}.png")
        if png:
            figs.append((f"kinetics_{name}", png, cap))
    rows = _scalars(res)
    if (d / "fit.nc").is_file():
        fit = _open(d / "fit.nc")
        cov = _band_coverage(fit)
        rows += list(cov.items())
        res.update(cov)
        if "cost_history" in fit:
            cost = np.asarray(fit["cost_history"].values)
            figs.append(("kinetics_convergence", _convergence_figure(cost, "kinetics fit"), ""))
    for st in res.get("stages", []) if isinstance(res.get("stages"), list) else []:
        rows.append((f"{st.get('shooting')} shooting", f"{st.get('status')}, "
                     f"{st.get('iterations')} it, cost {_fmt(st.get('cost'))}"))  # fmt: skip
    return Section(
        "learn_kinetics", "Learned kinetics: j0(c), mu_h(c), k(x, y)", _table(rows), figs
    )


def _learn_ch_section(d: Path, summary: dict[str, Any], view: _RunView) -> Section:
    res = summary.get("results", {})
    figs = []
    for name, cap in (("laws", "learned vs true mu_h(c) and D(c) with ±2σ bands"),
                      ("snapshots", "measured vs predicted snapshots")):  # fmt: skip
        png = _png_file(d / f"{name}.png")
        if png:
            figs.append((f"ch_{name}", png, cap))
    if (d / "fit.nc").is_file():
        fit = _open(d / "fit.nc")
        if "cost_history" in fit:
            cost = np.asarray(fit["cost_history"].values)
            figs.append(("ch_convergence", _convergence_figure(cost, "Cahn–Hilliard fit"), ""))
    rows = [(k, v) for k, v in _scalars(res)]
    return Section("learn_ch", "Learned Cahn–Hilliard laws: mu_h(c), D(c)", _table(rows), figs)


def _generic_section(name: str, d: Path, summary: dict[str, Any]) -> Section:
    figs = [(f"{name}_{p.stem}", p.read_bytes(), "") for p in sorted(d.glob("*.png"))]
    return Section(name, f"Stage: {name}", _table(_scalars(summary.get("results", {}))), figs)


def _uq_section(d: Path, summary: dict[str, Any], view: _RunView) -> Section:
    sec = _generic_section("uq", d, summary)
    sec.title = "Uncertainty: bootstrap bands of the learned laws"
    return sec


def _strain_section(d: Path, summary: dict[str, Any], view: _RunView) -> Section:
    res = summary.get("results", {})
    fits = res.get("fits", {})
    errors = res.get("model_errors", {})
    head = (
        "<tr><th>model</th><th>degree</th><th>model error</th><th>incompatibility RMS</th>"
        "<th>df/dX mean (a, c)</th><th>df/dX range over X (a, c)</th></tr>"
    )
    rows = []
    for name in ("m0", "m1", "m2"):
        f = fits.get(name)
        if f is None:
            continue
        e = errors.get(name, {})
        dm = ", ".join(f"{v:.4g}" for v in f.get("dfdx_mean", []))
        dr = ", ".join(f"{v:.3g}" for v in f.get("dfdx_range", []))
        rows.append(
            f"<tr><td>{name.upper()}</td><td>{_esc(f.get('degree'))}</td>"
            f"<td>{_esc(_fmt(f.get('model_error')))}</td>"
            f"<td>{_esc(_fmt(e.get('incompatibility_rms')))}</td>"
            f"<td>{_esc(dm)}</td><td>{_esc(dr)}</td></tr>"
        )
    body = (
        "<p>Eigenstrain law f(X) = (f_a, f_c) learned from composition and strain maps; M0: "
        "pixel-wise regression, M1: under stress equilibrium, M2: M1 plus a dislocation "
        "field. df/dX is the chemical expansion coefficient; a flat law has a small range."
        f"</p><table>{head}{''.join(rows)}</table>"
    )
    extra = [(k, v) for k, v in errors.items() if k.endswith("_reduction")]
    if extra:
        body += _table(extra)
    figs = [(f"strain_{p.stem}", p.read_bytes(), "") for p in sorted(d.glob("*.png"))]
    return Section("strain", "Chemo-mechanics: eigenstrain law and residual strain", body, figs)


def _enhance_section(d: Path, summary: dict[str, Any], view: _RunView) -> Section:
    res = summary.get("results", {})
    rows = [("output shape", res.get("shape")), ("time (s)", res.get("time_s"))]
    rows += [(f"slice consistency: {k}", v) for k, v in res.get("slice_consistency", {}).items()]
    figs = []
    if (d / "data.nc").is_file():
        vol = np.asarray(_open(d / "data.nc")["images"].values)
        fig = Figure(figsize=(4, 4))
        ax = fig.subplots()
        ax.imshow(vol[vol.shape[0] // 2], cmap="gray")
        ax.set_title(f"enhanced, slice {vol.shape[0] // 2}", fontsize=9)
        ax.axis("off")
        figs.append(("enhance_slice", _fig_png(fig), "middle slice of the enhanced volume"))
    return Section("enhance", "InDI enhancement", _table(rows), figs)


def _neutron_section(d: Path, summary: dict[str, Any], view: _RunView) -> Section:
    res = summary.get("results", {})
    af, win = res.get("active_fraction", {}), res.get("active_window_rows", {})
    raw = res.get("active_fraction_raw", {})
    head = "<tr><th>half-cycle / electrode</th><th>active fraction</th><th>active rows</th>"
    head += "<th>raw (before denoising)</th></tr>" if raw else "</tr>"
    rows = "".join(
        f"<tr><td>{_esc(k)}</td><td>{_esc(_fmt(v))}</td><td>{_esc(win.get(k))}</td>"
        + (f"<td>{_esc(_fmt(raw.get(k)))}</td>" if raw else "")
        + "</tr>"
        for k, v in af.items()
    )
    keys = ("frames", "half_cycles", "sequestered_rows", "dynamic_variability",
            "dynamic_variability_raw", "variability_reduction",
            "truth_active_fraction_max_abs_error", "truth_sequestered_rows")  # fmt: skip
    body = (
        "<p>Neutron radiography: attenuation maps, per-half-cycle change of the macroscopic "
        "cross-section (profiles), electrode activity (Otsu) and sequestered lithium.</p>"
        f"<table>{head}{rows}</table>" + _table([(k, res[k]) for k in keys if k in res])
    )
    figs = [(f"neutron_{p.stem}", p.read_bytes(), "") for p in sorted(d.glob("*.png"))]
    return Section("neutron", "Neutron radiography: transport, activity, sequestration", body, figs)


def _optical_section(d: Path, summary: dict[str, Any], view: _RunView) -> Section:
    res = summary.get("results", {})
    rows: list[tuple[str, Any]] = [
        (k, res[k])
        for k in (
            "frames",
            "n_particles",
            "labels_source",
            "soc_first",
            "soc_last",
            "drift_max_px",
        )
        if k in res
    ]
    fit = res.get("size_fit_um") or {}
    rows += [(f"size distribution (V/A, µm): {k}", v) for k, v in fit.items() if k != "n"]
    rows += [(f"phase fraction, last frame: {k}", v)
             for k, v in (res.get("phase_fractions_last") or {}).items()]  # fmt: skip
    cmp = res.get("soc_vs_echem") or {}
    rows += [(f"image SOC vs electrochemistry: {k}", v) for k, v in cmp.items()
             if isinstance(v, int | float)]  # fmt: skip
    q = res.get("segmentation_quality") or {}
    rows += [(f"segmentation vs reference: {k}", v) for k, v in q.items()
             if isinstance(v, int | float)]  # fmt: skip
    body = (
        "<p>Colour optical video of graphite: particle segmentation, stage phase maps, "
        "image state of charge and particle statistics.</p>" + _table(rows)
    )
    figs = [(f"optical_{p.stem}", p.read_bytes(), "") for p in sorted(d.glob("*.png"))]
    return Section("optical", "Optical microscopy: phases, SOC, particles", body, figs)


register_section("neutron", _neutron_section)
register_section("optical", _optical_section)
register_section("strain", _strain_section)
register_section("enhance", _enhance_section)
register_section("uq", _uq_section)
register_section("input", _input_section)
register_section("composition", _composition_section)
register_section("denoise", _denoise_section)
register_section("learn_kinetics", _learn_kinetics_section)
register_section("learn_ch", _learn_ch_section)


# ------------------------------------------------------------------------- what learned


def _what_was_learned(view: _RunView, numbers: dict[str, Any]) -> list[str]:
    out = []
    st = {s["name"]: s.get("results", {}) for s in view.record.get("stages", [])}
    if "composition" in st and "composition_rmse" in st["composition"]:
        r = st["composition"]
        n = f" ({r['frames']} frames)" if r.get("frames") else ""
        out.append(
            f"Composition maps from the STXM stacks{n} have an RMSE "
            f"of {r['composition_rmse']:.3f} against the true Li fraction."
        )
    if "denoise" in st and st["denoise"].get("psnr_denoised") is not None:
        r = st["denoise"]
        out.append(
            f"Denoising ({r.get('method')}) changed the PSNR from {r['psnr_noisy']:.1f} dB to "
            f"{r['psnr_denoised']:.1f} dB (RMSE {r['rmse_noisy']:.3g} -> {r['rmse_denoised']:.3g})"
            + ("; the next stage used the data before denoising." if r.get("passed_on") == "input"
               else ".")
        )  # fmt: skip
    if "learn_kinetics" in st:
        r = {**st["learn_kinetics"], **numbers.get("learn_kinetics", {})}
        s = (
            f"The kinetics fit ({r.get('status')}, {r.get('iterations')} iterations) reproduces "
            f"the frames with RMSE {r.get('train_rmse', float('nan')):.3g}"
        )
        if "j0_rel_rmse" in r:
            s += (
                f"; against the truth, j0(c) has a relative RMSE of {r['j0_rel_rmse']:.3g}, "
                f"mu_h(c) an RMSE of {r['mu_rmse']:.3g} kT and ln k(x, y) a pixel correlation "
                f"of {r['lnk_corr']:.2f}"
            )
        if "j0_in_band" in r:
            s += (
                f"; the truth lies inside the 99 % band for {100 * r['j0_in_band']:.0f} % of "
                f"c in [0.05, 0.95] for j0 (shape) and {100 * r['mu_in_band']:.0f} % for mu_h"
            )
        out.append(s + ".")
    if "learn_ch" in st:
        r = st["learn_ch"]
        mse = r.get("final_mse", float("nan"))
        s = f"The Cahn–Hilliard fit ({r.get('status')}) reached MSE {mse:.3g}"
        if "mu_rmse" in r:
            s += f"; mu_h RMSE {r['mu_rmse']:.3g}, D RMSE {r['D_rmse']:.3g} on [0.1, 0.9]"
        out.append(s + ".")
    if "uq" in st and "n_boot" in st["uq"]:
        r = st["uq"]
        what = "parametric" if r.get("kind") == "parametric" else "particle"
        band = " basic" if r.get("interval") == "basic" else ""
        s = (
            f"A {what} bootstrap ({r['n_boot']} refits, {r.get('n_failed', 0)} failed) gives "
            f"{100 * r.get('level', 0.99):.0f} %{band} bands of mean width "
            f"{r.get('mu_h_band_mean_width', float('nan')):.3g} kT for mu_h and "
            f"{r.get('j0_norm_band_mean_width', float('nan')):.3g} for j0/max j0"
        )
        if "mu_h_coverage" in r:
            s += (
                f"; they contain the truth at {100 * r['mu_h_coverage']:.0f} % (mu_h) and "
                f"{100 * r.get('j0_norm_coverage', float('nan')):.0f} % (j0 shape) of c in "
                "[0.1, 0.9]"
            )
        out.append(s + ".")
    if "strain" in st and "fits" in st["strain"]:
        fits = st["strain"]["fits"]
        s = "The composition–eigenstrain law"
        for name in ("m0", "m1", "m2"):
            if name in fits:
                f = fits[name]
                dm, dr = f["dfdx_mean"], f["dfdx_range"]
                s += (
                    f"; {name.upper()}: df/dX = ({dm[0]:.4g}, {dm[1]:.4g}) varying by "
                    f"({dr[0]:.2g}, {dr[1]:.2g}) over X, model error {f['model_error']:.3g}"
                )
        red = st["strain"].get("model_errors", {}).get("m1_vs_m0_reduction")
        if red is not None:
            s += f"; equilibrium (M1) lowers the model error by {100 * red:.0f} % against M0"
        out.append(s + ".")
    if "neutron" in st and "active_fraction" in st["neutron"]:
        r = st["neutron"]
        af = r["active_fraction"]
        s = (
            f"Neutron radiography over {len(r.get('half_cycles', []))} half-cycles: active "
            f"electrode fraction from {min(af.values()):.2f} to {max(af.values()):.2f}"
            if af
            else "Neutron radiography"
        )
        if r.get("sequestered_rows"):
            s += f"; sequestered lithium in rows {r['sequestered_rows']}"
        if "variability_reduction" in r:
            s += (
                f"; denoising lowered the dynamic variability by "
                f"{100 * r['variability_reduction']:.0f} %"
            )
        out.append(s + ".")
    if "optical" in st and "n_particles" in st["optical"]:
        r = st["optical"]
        s = (
            f"Optical video: {r['n_particles']} particles; image SOC from "
            f"{r.get('soc_first', float('nan')):.2f} to {r.get('soc_last', float('nan')):.2f}"
        )
        rm = (r.get("soc_vs_echem") or {}).get("rmse")
        if rm is not None:
            s += f" (RMSE {rm:.3f} against the electrochemical SOC)"
        out.append(s + ".")
    if "enhance" in st and "slice_consistency" in st["enhance"]:
        r = st["enhance"]
        out.append(
            f"InDI enhanced the volume to {r.get('shape')} voxels; slice-to-slice consistency "
            f"ratio {r['slice_consistency'].get('ratio', float('nan')):.2f} (1: as smooth "
            "along z as the data)."
        )
    for name, r in st.items():
        if name not in (
            "input",
            "composition",
            "denoise",
            "learn_kinetics",
            "learn_ch",
            "uq",
            "strain",
            "enhance",
            "neutron",
            "optical",
        ):
            keys = [f"{k} {_fmt(v)}" for k, v in _scalars(r)][:4]
            if keys:
                out.append(f"Stage {name}: " + ", ".join(keys) + ".")
    return out


# ------------------------------------------------------------------------------ build


def build_report(run_dir: str | os.PathLike[str]) -> Report:
    """Collect the sections of the report of run directory ``run_dir``.

    Raises
    ------
    FileFormatError
        When ``run_dir`` is not an ``operando run`` output directory.
    """
    root = Path(run_dir)
    record = _read_json(root / "run.json")
    if not record.get("stages"):
        raise FileFormatError(
            "not an operando run directory (no run.json with stages)",
            where=os.fspath(root),
            fix="pass the --out directory of 'operando run'",
        )
    view = _RunView(
        root=root,
        config=record.get("config", {}),
        record=record,
        summary=_read_json(root / "summary.json"),
        stage_dirs={s["name"]: root / s["dir"] for s in record["stages"]},
    )
    body_sections: list[Section] = []
    numbers: dict[str, Any] = {}
    for name, d in view.stage_dirs.items():
        summary = _read_json(d / "summary.json")
        builder = REPORT_SECTIONS.get(name)
        sec = builder(d, summary, view) if builder else _generic_section(name, d, summary)
        if sec is None:
            continue
        if name == "learn_kinetics" and (d / "fit.nc").is_file():
            numbers[name] = _band_coverage(_open(d / "fit.nc"))
        body_sections.append(sec)
    learned = _what_was_learned(view, numbers)
    title = f"operando run report: {view.config.get('run', {}).get('name', root.name)}"
    sections = [_overview(view, learned), *body_sections, _provenance(view)]
    return Report(title, sections, learned, numbers)


_PAGE = string.Template(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>$title</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;
background:#fafafa}
header{background:#1d3557;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;opacity:.85;font-size:13px}
nav{padding:8px 28px;background:#e9eef5;font-size:13px} nav a{margin-right:14px;color:#1d3557}
main{padding:8px 28px;max-width:1200px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:16px 0;padding:12px 18px}
h2{font-size:18px;color:#1d3557;margin:6px 0 10px} h3{font-size:14px;margin:12px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f7} pre{background:#f6f8fa;padding:8px;font-size:12px;overflow:auto}
figure{display:inline-block;margin:8px 12px 8px 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:12px;color:#555;max-width:560px}
p.learned{font-size:15px;line-height:1.5;background:#f1f8e9;border-left:4px solid #7cb342;
padding:8px 12px}
</style></head><body>
<header><h1>$title</h1><p>$subtitle</p></header>
<nav>$nav</nav>
<main>
$sections
</main></body></html>
"""
)


def render_html(report: Report, *, subtitle: str = "") -> str:
    """The report as one self-contained HTML page (figures as base64 data URIs)."""
    nav = "".join(f"<a href='#{_esc(s.id)}'>{_esc(s.title)}</a>" for s in report.sections)
    parts = []
    for s in report.sections:
        figs = "".join(
            f"<figure><img alt='{_esc(name)}' src='data:image/png;base64,"
            f"{base64.b64encode(png).decode()}'>"
            + (f"<figcaption>{_esc(cap)}</figcaption>" if cap else "")
            + "</figure>"
            for name, png, cap in s.figures
        )
        parts.append(f"<section id='{_esc(s.id)}'><h2>{_esc(s.title)}</h2>{s.body}{figs}</section>")
    return _PAGE.substitute(
        title=_esc(report.title), subtitle=_esc(subtitle), nav=nav, sections="\n".join(parts)
    )


def write_report(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    figures_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the HTML report of ``run_dir`` (default ``RUN_DIR/report.html``) and its PNGs.

    Parameters
    ----------
    run_dir
        Output directory of ``operando run``.
    out
        HTML file to write (atomically). A :class:`~operando.pipelines.ReportConfig`
        may be passed instead (its ``filename`` inside ``run_dir`` is used).
    figures_dir
        Where the PNG copies go (default ``report_figures/`` next to the HTML file).

    Returns
    -------
    Path
        The HTML file.
    """
    root = Path(run_dir)
    if out is not None and not isinstance(out, str | os.PathLike):
        out = root / str(getattr(out, "filename", "report.html"))
    path = Path(out) if out is not None else root / "report.html"
    rep = build_report(root)
    fdir = Path(figures_dir) if figures_dir is not None else path.parent / "report_figures"
    fdir.mkdir(parents=True, exist_ok=True)
    for s in rep.sections:
        for name, png, _ in s.figures:
            with atomic_path(fdir / f"{name}.png") as tmp:
                Path(tmp).write_bytes(png)
    summ = _read_json(root / "summary.json")
    subtitle = (
        f"run directory {root} · operando {summ.get('versions', {}).get('operando', '?')} · "
        f"{summ.get('created', '')}"
    )
    text = render_html(rep, subtitle=subtitle)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path
