"""``operando run CONFIG.yaml``: a reproducible chain of stages with a per-stage cache.

The chain (see :mod:`operando.pipelines._config` for the YAML) runs ``input`` (read a
file or simulate), then the configured stages in canonical order. Every stage reads the
dataset its predecessor produced and writes into its own directory::

    OUT/
      config.yaml                      the fully resolved config (all defaults filled in)
      run.json                         stages, cache keys, directories, computed or cached
      summary.json                     the run record (write_summary: versions, checksums)
      stages/input-1a2b3c4d5e6f/       one directory per stage and cache key
        DONE.json                      completion marker, written last
        summary.json                   the stage's record (options + resolved config)
        data.nc ...                    the stage's outputs

Caching
-------
A stage's key is the SHA-256 of its name, its resolved options, the run seed it uses and
its inputs: the key and output checksum of the stage before it (for ``input``: the input
file's SHA-256 or the simulation options). A stage is computed in
``stages/.NAME-KEY.partial/``; ``DONE.json`` is written last (atomically) and the directory
is then renamed to ``stages/NAME-KEY/``. A directory with ``DONE.json`` is reused, so
editing a late stage recomputes only that stage and those after it, and an interrupted run
resumes after the last finished stage (a half-written ``.partial`` directory is discarded).
The ``report`` stage is not cached: it is rendered by the caller (``operando run`` passes
:func:`operando.report.write_report`) after the chain.

Extending
---------
A new stage registers its options model (:func:`register_stage_config`) and its runner
(:func:`register_stage`); the runner receives a :class:`StageContext` and its validated
options and returns a :class:`StageOutput`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from pydantic import BaseModel

from ..errors import DataError, ParameterError
from ..io import file_sha256, read_dataset, write_dataset, write_json, write_summary
from ._config import (
    STAGE_CONFIGS,
    CHSimulation,
    CompositionConfig,
    DenoiseConfig,
    LearnCHConfig,
    LearnKineticsConfig,
    ParticleSimulation,
    PipelineConfig,
    StxmParticleSimulation,
    UQConfig,
    dump_config,
    load_config,
    parse_config,
)

__all__ = [
    "STAGES",
    "StageContext",
    "StageOutput",
    "register_stage",
    "run_pipeline",
    "stage_available",
]

MARKER = "DONE.json"


@dataclass(frozen=True)
class StageContext:
    """What a stage runner gets besides its options.

    Attributes
    ----------
    name
        Stage name.
    directory
        Directory to write into (empty; renamed into place after success).
    input
        Dataset file produced by the previous stage (``None`` for ``input``).
    upstream
        Finished stages so far: name -> directory.
    seed
        The stage's seed (its own ``seed`` option, else ``run.seed``).
    config
        The fully resolved run config (plain data).
    progress
        ``update(done, total)`` callback or ``None``.
    """

    name: str
    directory: Path
    input: Path | None
    upstream: dict[str, Path]
    seed: int
    config: dict[str, Any]
    progress: Callable[..., None] | None = None


@dataclass
class StageOutput:
    """What a stage returns: the dataset handed on (``None``: pass the input on), results."""

    dataset: Path | None
    results: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)


StageRunner = Callable[[StageContext, Any], StageOutput]

#: Stage name -> runner; see :func:`register_stage`.
STAGES: dict[str, StageRunner] = {}


def register_stage(name: str, runner: StageRunner) -> StageRunner:
    """Register (or replace) the runner of stage ``name`` (its config via ``STAGE_CONFIGS``)."""
    if name not in STAGE_CONFIGS:
        raise ParameterError(
            f"stage '{name}' has no options model",
            where="register_stage",
            fix="call operando.pipelines._config.register_stage_config first",
        )
    STAGES[name] = runner
    return runner


def stage_available(name: str) -> bool:
    """Whether stage ``name`` can run in this installation."""
    return name == "report" or name in STAGES


# --------------------------------------------------------------------------- helpers


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _seed(opts: BaseModel | None, run_seed: int) -> int:
    s = getattr(opts, "seed", None)
    return int(run_seed if s is None else s)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: getattr(o, "tolist", lambda: str(o))()))


# ---------------------------------------------------------------------------- input


def _run_input(ctx: StageContext, opts: Any) -> StageOutput:
    from ..data import add_provenance

    out = ctx.directory / "data.nc"
    inp = ctx.config["input"]
    if "file" in inp:
        # the file itself is handed on (no copy); reading it here checks it early
        from ..errors import OperandoError

        try:
            ds = read_dataset(inp["file"])
        except OperandoError as e:  # e.g. a colour video: only its own stage reads it
            return StageOutput(Path(inp["file"]), {"readable": False, "reason": str(e)},
                               {"file": inp["file"]}, [inp["file"]])  # fmt: skip
        img = ds["images"]
        results = {"dims": list(img.dims), "shape": list(img.shape),
                   "has_truth": any(str(k).startswith("truth_") for k in ds.data_vars)}  # fmt: skip
        return StageOutput(Path(inp["file"]), results, {"file": inp["file"]}, [inp["file"]])
    else:
        sim = opts
        if isinstance(sim, StxmParticleSimulation):
            ds = _simulate_stxm_particles(sim, ctx.seed)
        elif isinstance(sim, ParticleSimulation):
            from ..simulate import simulate_particles

            ds = simulate_particles(
                sim.n_particles, noise=sim.noise, seed=ctx.seed, mean_area=sim.mean_area,
                half_cycles=tuple(sim.half_cycles), frames=tuple(sim.frames),
                ic_noise=sim.ic_noise,
            )  # fmt: skip
        elif isinstance(sim, CHSimulation):
            ds = _simulate_ch(sim, ctx.seed)
        else:  # pragma: no cover - the union is closed
            raise ParameterError(f"simulation {sim!r}", where="input.simulate")
        params = {"simulate": sim.model_dump(mode="json"), "seed": ctx.seed}
        inputs = []
    ds = add_provenance(ds, "operando run: input", **params)
    write_dataset(ds, out)
    img = ds["images"]
    results = {
        "dims": list(img.dims),
        "shape": list(img.shape),
        "has_truth": any(str(k).startswith("truth_") for k in ds.data_vars),
    }
    return StageOutput(out, results, params, inputs)


def _simulate_ch(sim: CHSimulation, seed: int) -> xr.Dataset:
    from ..simulate import simulate_ch_dataset

    ds = simulate_ch_dataset(
        size=sim.size, length=sim.length, t_end=sim.t_end, frames=sim.frames, realizations=1,
        seed=seed,
    )  # fmt: skip
    if sim.noise:
        import jax

        from ..noise import apply_noise

        clean = np.asarray(ds["images"].values)
        key = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
        noisy = np.asarray(apply_noise(key, clean, sim.noise))
        ds = ds.copy()
        ds["images"] = (ds["images"].dims, noisy)
        ds["truth_images"] = (ds["images"].dims, clean)
    return ds


def _simulate_stxm_particles(sim: StxmParticleSimulation, seed: int) -> xr.Dataset:
    """Particle videos whose every frame is rendered as a Poisson STXM energy stack."""
    import jax

    from ..modalities.stxm import model_references, synthetic_stxm
    from ..simulate import simulate_particles

    comp = simulate_particles(
        sim.n_particles, noise=sim.noise, seed=seed, mean_area=sim.mean_area,
        half_cycles=tuple(sim.half_cycles), frames=tuple(sim.frames), ic_noise=sim.ic_noise,
    )  # fmt: skip
    refs = model_references()
    energies = np.linspace(sim.energy_range[0], sim.energy_range[1], sim.n_energies)
    x = np.asarray(comp["images"].values)
    truth_x = np.asarray(comp["truth_images"].values)
    masks = np.asarray(comp["masks"].values, dtype=bool)
    pof = np.asarray(comp["particle_of"].values)
    valid = np.asarray(comp["frame_valid"].values, dtype=bool)
    n_r, n_t, ny, nx = x.shape
    stacks = np.full((n_r, n_t, energies.size, ny, nx), np.nan)
    clean = np.full_like(stacks, np.nan)
    key = jax.random.PRNGKey(seed)
    for r in range(n_r):
        for t in range(n_t):
            if not valid[r, t]:
                continue
            m = masks[pof[r]]
            xr_ = np.where(m, np.clip(x[r, t], 0.0, 1.0), np.nan)
            s = synthetic_stxm(
                jax.random.fold_in(key, r * n_t + t), xr_, refs, energies, mask=m,
                thickness=sim.thickness, i0=sim.i0, pixel_size=float(comp.attrs["pixel_size"]),
            )  # fmt: skip
            stacks[r, t] = s["images"].values
            clean[r, t] = s["truth_images"].values
    ds = comp.drop_vars(["images", "truth_images"])
    ds = ds.assign_coords(energy=("energy", energies))
    ds["energy"].attrs["units"] = "eV"
    dims = ("realization", "t", "energy", "y", "x")
    ds["images"] = (dims, stacks)
    ds["images"].attrs["units"] = "counts"
    ds["truth_images"] = (dims, clean)
    ds["truth_composition"] = (("realization", "t", "y", "x"), truth_x)
    ds["i0"] = ("energy", np.full(energies.size, sim.i0))
    ds.attrs["description"] = (
        "synthetic LiFePO4 particle videos rendered as STXM transmission stacks "
        "(model LFP/FP references, Poisson counts)"
    )
    return ds[["images", *[v for v in ds.data_vars if v != "images"]]]


# ---------------------------------------------------------------------- composition


def _write_model_references(directory: Path) -> list[str]:
    from ..modalities.stxm import model_references

    refs = model_references()
    paths = []
    for j, name in enumerate(refs.names):
        p = directory / f"reference_{name}.txt"
        np.savetxt(p, np.column_stack([refs.energies[j], refs.values[j]]), header=f"energy {name}")
        paths.append(os.fspath(p))
    return paths


def _run_composition(ctx: StageContext, opts: CompositionConfig) -> StageOutput:
    assert ctx.input is not None
    refs = (
        _write_model_references(ctx.directory)
        if opts.references == "model"
        else list(opts.references)
    )
    ds = read_dataset(ctx.input)
    dims = tuple(ds["images"].dims)
    if dims == ("energy", "y", "x"):
        from ._stxm import stxm_composition_file

        out = ctx.directory / "composition.nc"
        res = stxm_composition_file(
            ctx.input, out, method=opts.method, references=refs, i0=opts.i0,
            energy_offset=opts.energy_offset, bootstrap=opts.bootstrap, seed=ctx.seed,
            register=opts.registration, baseline=opts.baseline, min_size=opts.min_size,
            figures=ctx.directory,
        )  # fmt: skip
        results = dict(res["results"])
        if "truth_composition" in ds:
            x = read_dataset(out)["images"].values
            truth = np.asarray(ds["truth_composition"].values)
            ok = np.isfinite(x) & np.isfinite(truth)
            if ok.any():
                results["composition_rmse"] = float(np.sqrt(np.mean((x[ok] - truth[ok]) ** 2)))
        return StageOutput(out, results, {"references": refs}, refs)
    if dims != ("realization", "t", "energy", "y", "x") or "masks" not in ds:
        raise DataError(
            f"images have dims {dims}; composition needs one stack (energy, y, x) or a "
            "particle video of stacks (realization, t, energy, y, x) with masks",
            where=os.fspath(ctx.input),
            fix="check the input dataset (operando info FILE)",
        )
    return _composition_video(ctx, opts, ds, refs)


def _composition_video(
    ctx: StageContext, opts: CompositionConfig, ds: xr.Dataset, refs: list[str]
) -> StageOutput:
    from ..data import add_provenance
    from ..modalities import stxm
    from ._figures import image_panels, save_figure

    references = stxm.load_references(refs)
    energies = np.asarray(ds["energy"].values, dtype=np.float64)
    images = np.asarray(ds["images"].values, dtype=np.float64)
    masks = np.asarray(ds["masks"].values, dtype=bool)
    pof = np.asarray(ds["particle_of"].values) if "particle_of" in ds else None
    n_r, n_t = images.shape[:2]
    frac = np.full((n_r, n_t, *images.shape[-2:]), np.nan)
    rms = np.full_like(frac, np.nan)
    if opts.i0 is not None:
        e0, v0 = stxm.read_spectrum(opts.i0)
        i0 = stxm.interpolate_i0(e0, v0, energies, source=opts.i0)
    else:
        i0 = np.asarray(ds["i0"].values) if "i0" in ds else None
    for r in range(n_r):
        m = masks[pof[r]] if pof is not None else masks.any(axis=0)
        for t in range(n_t):
            stack = images[r, t]
            if not np.all(np.isfinite(stack)):
                continue  # padding frame
            i0v = i0 if i0 is not None else stxm.estimate_i0_otsu(stack)[0]
            od = stxm.optical_density(stack, i0v)
            if opts.method == "nnls":
                res = stxm.nnls_composition(
                    od, energies, references, energy_offset=opts.energy_offset,
                    baseline=opts.baseline, mask=m, outside="restrict",
                )  # fmt: skip
                rms[r, t] = np.where(m, res.residual_rms, np.nan)
            else:
                system = stxm.two_energy_matrix(references)
                res = stxm.two_energy_composition(
                    od, energies, system=system, energy_offset=opts.energy_offset, mask=m
                )
            frac[r, t] = np.where(m, res.fraction, np.nan)
        if ctx.progress:
            ctx.progress(r + 1, n_r)
    keep = [v for v in ds.data_vars if v not in ("images", "truth_images", "i0")]
    out = ds[keep].drop_dims("energy", errors="ignore")
    out["images"] = (("realization", "t", "y", "x"), frac)
    out["images"].attrs["quantity"] = f"fraction of {references.names[0]} (Li fraction)"
    if opts.method == "nnls":
        out["residual_rms"] = (("realization", "t", "y", "x"), rms)
    if "truth_composition" in out:
        out["truth_images"] = out["truth_composition"]
        out = out.drop_vars("truth_composition")
    out = out[["images", *[v for v in out.data_vars if v != "images"]]]
    out = add_provenance(out, "operando run: composition", **opts.model_dump(mode="json"))
    path = ctx.directory / "composition.nc"
    write_dataset(out, path)
    results: dict[str, Any] = {
        "method": opts.method,
        "frames": int(np.isfinite(frac).any(axis=(2, 3)).sum()),
        "mean_composition": float(np.nanmean(frac)),
    }
    if "truth_images" in out:
        truth = np.asarray(out["truth_images"].values)
        ok = np.isfinite(truth) & np.isfinite(frac)
        results["composition_rmse"] = float(np.sqrt(np.mean((frac[ok] - truth[ok]) ** 2)))
    # figure: a few frames of the first realization
    sel = [t for t in range(n_t) if np.isfinite(frac[0, t]).any()][:4]
    fig = image_panels(
        [frac[0, t] for t in sel],
        [f"X, realization 0, frame {t}" for t in sel],
        limits=[(0.0, 1.0)] * len(sel),
        suptitle="composition from the STXM stacks (NNLS per pixel)",
    )
    save_figure(fig, ctx.directory / "composition_frames.png")
    return StageOutput(path, results, {"references": refs}, refs)


# ---------------------------------------------------------------------------- denoise


def _run_denoise(ctx: StageContext, opts: DenoiseConfig) -> StageOutput:
    from ..data import add_provenance, get_truth
    from ..denoise import train_denoiser
    from ._figures import image_panels, save_figure

    assert ctx.input is not None
    ds = read_dataset(ctx.input)
    img = ds["images"]
    if img.dims[-2:] != ("y", "x") or "energy" in img.dims or "channel" in img.dims:
        raise DataError(
            f"denoise works on image series; images have dims {img.dims}",
            where=os.fspath(ctx.input),
            fix="put a composition stage before denoise for energy stacks",
        )
    arr = np.asarray(img.values, dtype=np.float64)
    ny, nx = arr.shape[-2:]
    frames = arr.reshape(-1, ny, nx)
    finite = np.isfinite(frames)
    use = finite.any(axis=(1, 2))
    if not use.any():
        raise DataError("no finite pixels", where=os.fspath(ctx.input))
    sub = frames[use]
    fill = np.array([np.nanmean(f) for f in sub])
    filled = np.where(np.isfinite(sub), sub, fill[:, None, None])
    patch = max(8, min(opts.patch, ny, nx) // 8 * 8)
    t0 = time.perf_counter()
    den = train_denoiser(
        filled, method=opts.method, key=ctx.seed, epochs=opts.epochs, patch_size=patch,
        batch_size=opts.batch_size, steps_per_epoch=opts.steps_per_epoch,
        learning_rate=opts.learning_rate, base_filters=opts.filters, ensemble=opts.ensemble,
    )  # fmt: skip
    train_s = time.perf_counter() - t0
    unc = None
    if den.ensemble_size >= 2:
        pred, unc = den.predict_with_uncertainty(filled)
    else:
        pred = den.predict(filled)
    pred = np.where(np.isfinite(sub), np.asarray(pred, dtype=np.float64), np.nan)
    out_frames = np.full_like(frames, np.nan)
    out_frames[use] = pred
    out = ds.copy()
    out["images"] = (img.dims, out_frames.reshape(arr.shape))
    out["images"].attrs.update(img.attrs)
    if unc is not None:
        u = np.full_like(frames, np.nan)
        u[use] = np.where(np.isfinite(sub), np.asarray(unc), np.nan)
        out["uncertainty"] = (img.dims, u.reshape(arr.shape))
    out = add_provenance(
        out, "operando run: denoise", method=opts.method, config=den.config.to_dict()
    )
    path = ctx.directory / "denoised.nc"
    write_dataset(out, path)
    results: dict[str, Any] = {
        "method": opts.method,
        "frames": int(use.sum()),
        "patch": patch,
        "training_time_s": train_s,
        "final_loss": den.training["final_loss"],
        "loss_history": np.nanmean(np.atleast_2d(den.training["losses"]), axis=0).tolist(),
    }
    truth = get_truth(ds)
    clean = None
    if truth is not None and truth.clean is not None:
        clean = np.asarray(truth.clean.values, dtype=np.float64).reshape(-1, ny, nx)[use]
        ok = np.isfinite(clean) & np.isfinite(sub)
        rng = float(np.nanmax(clean) - np.nanmin(clean)) or 1.0
        for tag, a in (("noisy", sub), ("denoised", pred)):
            mse = float(np.mean((a[ok] - clean[ok]) ** 2))
            results[f"rmse_{tag}"] = mse**0.5
            results[f"psnr_{tag}"] = float(10 * np.log10(rng**2 / mse)) if mse > 0 else None
        results["data_range"] = rng
    k = min(3, sub.shape[0])
    sel = np.unique(np.rint(np.linspace(0, sub.shape[0] - 1, k)).astype(int))
    panels, titles = [], []
    lo, hi = float(np.nanpercentile(sub, 1)), float(np.nanpercentile(sub, 99))
    for i in sel:
        panels += [sub[i], pred[i]] + ([clean[i]] if clean is not None else [])
        titles += [f"noisy {i}", f"denoised {i}"] + (["truth"] if clean is not None else [])
    fig = image_panels(
        panels, titles, limits=[(lo, hi)] * len(panels), ncols=3 if clean is not None else 2,
        suptitle=f"denoising ({opts.method})"
        + (f": PSNR {results['psnr_noisy']:.2f} -> {results['psnr_denoised']:.2f} dB"
           if results.get("psnr_denoised") else ""),
    )  # fmt: skip
    save_figure(fig, ctx.directory / "denoise.png")
    results["passed_on"] = opts.pass_on
    return StageOutput(path if opts.pass_on == "denoised" else None, results)


# ------------------------------------------------------------------------------ learn


def _run_learn_ch(ctx: StageContext, opts: LearnCHConfig) -> StageOutput:
    from ._learn_ch import run_learn_ch

    assert ctx.input is not None
    res = run_learn_ch(ctx.input, ctx.directory, **opts.model_dump())
    return StageOutput(None, _jsonable(res["results"]), _jsonable(res["parameters"]))


def _run_learn_kinetics(ctx: StageContext, opts: LearnKineticsConfig) -> StageOutput:
    from ._kinetics import run_learn_kinetics

    assert ctx.input is not None
    res = run_learn_kinetics(ctx.input, ctx.directory, **opts.model_dump())
    # the MAP parameters, so that a uq stage can start from them instead of refitting
    np.savez(ctx.directory / "map_params.npz",
             **{k: np.asarray(v) for k, v in res["fit"].params.items()})  # fmt: skip
    return StageOutput(None, _jsonable(res["results"]), _jsonable(res["parameters"]))


def _run_uq(ctx: StageContext, opts: UQConfig) -> StageOutput:
    from ._uq import bootstrap_kinetics

    learn = ctx.upstream.get("learn_kinetics")
    if learn is None or ctx.input is None:
        raise ParameterError(
            "the uq stage bootstraps a kinetics fit; this run has no learn_kinetics stage",
            where="stages.uq",
            fix="add a learn_kinetics stage (Cahn–Hilliard bootstrap: operando learn ch)",
        )
    learn_opts = dict(ctx.config["stages"]["learn_kinetics"])
    if opts.refit == "map":
        learn_opts["max_iter"] = opts.max_iter
        learn_opts["max_iter_single"] = opts.max_iter  # refits: single shooting from the MAP
    with np.load(learn / "map_params.npz") as z:
        map_params = {k: z[k] for k in z.files}
    from ._parallel import ExecutorConfig

    executor = ExecutorConfig("auto", opts.workers, opts.scheduler, opts.cluster_config)
    res = bootstrap_kinetics(
        ctx.input, ctx.directory, n_boot=opts.replicates, seed=ctx.seed, level=opts.level,
        map_params=map_params, refit=opts.refit, kind=opts.kind, interval=opts.interval,
        executor=executor,
        **learn_opts,
    )  # fmt: skip
    return StageOutput(None, _jsonable(res["results"]), {"learn_kinetics": learn_opts})


register_stage("composition", _run_composition)
register_stage("denoise", _run_denoise)
register_stage("learn_ch", _run_learn_ch)
register_stage("learn_kinetics", _run_learn_kinetics)
if importlib.util.find_spec("operando.pipelines._uq") is not None:
    register_stage("uq", _run_uq)


def _source_file(ctx: StageContext) -> str:
    """The run's input file (neutron/optical stages read it with their own readers)."""
    f = ctx.config["input"].get("file")
    if f is None:
        raise ParameterError(
            f"the {ctx.name} stage reads measured files; this run simulates its input",
            where=f"stages.{ctx.name}",
            fix="use input: {file: ...} (e.g. the output of operando simulate neutron)",
        )
    return f


def _run_neutron(ctx: StageContext, opts: Any) -> StageOutput:
    from ._neutron import analyze_neutron_files

    kw = opts.model_dump()
    kw["seed"] = ctx.seed
    res = analyze_neutron_files(_source_file(ctx), ctx.directory, figures=True, **kw)
    return StageOutput(None, _jsonable(res["results"]), kw)


def _run_optical(ctx: StageContext, opts: Any) -> StageOutput:
    from ._optical import optical_analyze

    kw = opts.model_dump()
    kw["seed"] = ctx.seed
    res = optical_analyze(_source_file(ctx), ctx.directory, figures=True, **kw)
    return StageOutput(None, _jsonable(res["results"]), kw)


def _run_enhance(ctx: StageContext, opts: Any) -> StageOutput:
    from ._enhance import enhance_apply

    assert ctx.input is not None
    out = ctx.directory / "data.nc"
    kw = opts.model_dump()
    res = enhance_apply(ctx.input, kw.pop("model"), out, **kw)
    return StageOutput(out, _jsonable(res), opts.model_dump(), [opts.model])


def _run_strain(ctx: StageContext, opts: Any) -> StageOutput:
    from ._strain import strain_learn

    kw = opts.model_dump()
    comp = kw.pop("composition") or [_source_file(ctx)]
    strain = kw.pop("strain")
    kw["register"] = kw.pop("registration")
    res = strain_learn(comp, strain, ctx.directory, figures=True, **kw)
    inputs = [*comp, *strain, *(opts.masks or [])]
    return StageOutput(None, _jsonable(res), {**kw, "composition": comp, "strain": strain}, inputs)


for _name, _runner in (
    ("neutron", _run_neutron),
    ("optical", _run_optical),
    ("enhance", _run_enhance),
    ("strain", _run_strain),
):
    if importlib.util.find_spec(f"operando.pipelines._{_name}") is not None:
        register_stage(_name, _runner)


# ------------------------------------------------------------------------------- run


def _renamed(obj: Any, old: Path, new: Path) -> Any:
    text = json.dumps(_jsonable(obj))
    return json.loads(text.replace(json.dumps(os.fspath(old))[1:-1], os.fspath(new)))


def _rel(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when inside it, else absolute."""
    try:
        return os.fspath(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return os.fspath(Path(path).resolve())


def _stage_dir(out: Path, name: str, key: str) -> Path:
    return out / "stages" / f"{name}-{key[:12]}"


def _finished(d: Path, key: str) -> dict[str, Any] | None:
    m = d / MARKER
    if not m.is_file():
        return None
    try:
        rec = json.loads(m.read_text())
    except (OSError, ValueError):
        return None
    return rec if rec.get("key") == key else None


def run_pipeline(
    config: PipelineConfig | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    progress: Callable[..., None] | None = None,
    report_writer: Callable[[Path, Any], Path] | None = None,
) -> dict[str, Any]:
    """Run a pipeline config into directory ``out``, reusing finished stages.

    Parameters
    ----------
    config
        A :class:`PipelineConfig` or the path of a YAML file.
    out
        Run directory (created); see the module docstring for its layout.
    progress
        ``update(done, total, stage=NAME)``, called before and after every stage.
    report_writer
        ``writer(run_dir, ReportConfig) -> path``: renders the ``report`` stage (the CLI
        passes :func:`operando.report.write_report`); without it the stage is skipped.

    Returns
    -------
    dict
        The run record (``run.json``): per stage its key, directory, whether it was
        computed or taken from the cache, its wall time and results.
    """
    from ..config import enable_x64

    enable_x64()
    cfg = config if isinstance(config, PipelineConfig) else load_config(config)
    names = cfg.stage_names()
    missing = [n for n in names if not stage_available(n)]
    if missing:
        raise ParameterError(
            f"stage(s) {missing} not available yet in this version of operando",
            where=cfg.source or "config: stages",
            fix="remove them from the config",
        )
    out = Path(out)
    (out / "stages").mkdir(parents=True, exist_ok=True)
    resolved = cfg.resolved()
    config_text = dump_config(cfg)
    (out / "config.yaml.tmp").write_text(config_text)
    os.replace(out / "config.yaml.tmp", out / "config.yaml")

    run_seed = cfg.run.seed
    inp = cfg.input
    if inp.file is not None:
        if not Path(inp.file).is_file():
            raise ParameterError("input file not found", where=inp.file, fix="check input.file")
        input_id: dict[str, Any] = {"file_sha256": file_sha256(inp.file)}
        input_opts: Any = None
    else:
        input_opts = inp.simulate
        input_id = {"simulate": input_opts.model_dump(mode="json")}
    plan: list[tuple[str, Any]] = [("input", input_opts)]
    plan += [(n, cfg.stages[n]) for n in names if n != "report"]
    total = len(plan) + (1 if "report" in names else 0)
    record: dict[str, Any] = {"config": resolved, "stages": []}
    upstream: dict[str, Path] = {}
    prev: dict[str, Any] = input_id
    dataset: Path | None = None
    t_run = time.perf_counter()
    for i, (name, opts) in enumerate(plan):
        if progress:
            progress(i, total, stage=name)
        seed = _seed(opts, run_seed)
        opt_data = opts.model_dump(mode="json") if isinstance(opts, BaseModel) else None
        key = _digest({"stage": name, "options": opt_data, "seed": seed, "upstream": prev})
        final = _stage_dir(out, name, key)
        done = _finished(final, key)
        cached = done is not None
        t0 = time.perf_counter()
        if done is None:
            partial = final.parent / f".{final.name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            if final.exists():  # a directory without a valid marker: discard
                shutil.rmtree(final)
            partial.mkdir(parents=True)
            ctx = StageContext(
                name=name, directory=partial, input=dataset, upstream=dict(upstream), seed=seed,
                config=resolved, progress=None,
            )  # fmt: skip
            runner = _run_input if name == "input" else STAGES[name]
            res = runner(ctx, opts)
            wall = time.perf_counter() - t0
            # records name the final directory, not the temporary one
            res.parameters = _renamed(res.parameters, partial, final)
            res.results = _renamed(res.results, partial, final)
            ds_rel = None if res.dataset is None else _rel(res.dataset, partial)
            write_summary(
                partial / "summary.json",
                command=f"operando run: {name}",
                parameters={"stage": name, "options": opt_data, "seed": seed,
                            "pipeline": res.parameters, "config": resolved},
                results={**res.results, "wall_s": wall},
                inputs=[os.fspath(p) for p in ([dataset] if dataset else [])] + res.inputs,
            )  # fmt: skip
            done = {
                "stage": name,
                "key": key,
                "dataset": ds_rel,
                "dataset_sha256": None if res.dataset is None else file_sha256(res.dataset),
                "results": _jsonable(res.results),
                "wall_s": wall,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            write_json(done, partial / MARKER)  # the completion marker, written last
            os.replace(partial, final)
        upstream[name] = final
        if done["dataset"] is not None:
            dataset = final / done["dataset"]
        prev = {"key": key, "dataset_sha256": done["dataset_sha256"]}
        record["stages"].append(
            {"name": name, "key": key, "dir": os.fspath(final.relative_to(out)),
             "cached": cached, "wall_s": time.perf_counter() - t0,
             "dataset": None if dataset is None else _rel(dataset, out),
             "results": done["results"]}
        )  # fmt: skip
        write_json(record, out / "run.json")
    record["wall_s"] = time.perf_counter() - t_run
    _write_run_records(out, record, resolved, inp.file)
    if "report" in names:
        if progress:
            progress(len(plan), total, stage="report")
        record["report"] = None
        if report_writer is not None:
            path = report_writer(out, cfg.stages["report"])
            record["report"] = os.path.relpath(path, out)
        record["wall_s"] = time.perf_counter() - t_run
        _write_run_records(out, record, resolved, inp.file)
    if progress:
        progress(total, total, stage="done")
    return record


def _write_run_records(
    out: Path, record: dict[str, Any], resolved: dict[str, Any], input_file: str | None
) -> None:
    write_json(record, out / "run.json")
    write_summary(
        out / "summary.json",
        command="operando run",
        parameters=resolved,
        results={
            "stages": [
                {k: s[k] for k in ("name", "key", "dir", "cached", "wall_s")}
                for s in record["stages"]
            ],
            "report": record.get("report"),
            "wall_s": record["wall_s"],
        },
        inputs=[input_file] if input_file else [],
    )


def config_from_text(text: str, *, base: str | os.PathLike[str] = ".") -> PipelineConfig:
    """Validate YAML text (paths relative to ``base``)."""
    return parse_config(text, source="<config>", base=Path(base).resolve())
