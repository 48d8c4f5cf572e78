"""Validated pipeline configurations for ``operando run`` (pydantic, one model per stage).

A run is described by one YAML file::

    run:                      # optional: name and the seed every random step derives from
      name: my-run
      seed: 0
    input:                    # exactly one of file / simulate
      file: data/particles.nc
    stages:                   # any subset; they run in the canonical order below
      composition: {method: nnls, references: model}
      denoise: {method: n2v, epochs: 20}
      learn_kinetics: {max_iter: 10}
      report: {}

Canonical order (one stage per group at most): input -> analyze (``composition`` |
``neutron`` | ``optical``) -> ``enhance`` -> ``denoise`` -> ``strain`` -> learn
(``learn_ch`` | ``learn_kinetics``) -> ``uq`` -> ``report``. Every option not given takes
the default documented on its model (``docs/pipelines.md`` lists them). Unknown keys are
errors (``extra="forbid"``), and every validation error names the offending key and its line
in the YAML file.

Stages are looked up in :data:`STAGE_CONFIGS` (name -> (group, order, model)); a module
adding a stage registers its model with :func:`register_stage_config` and its runner with
:func:`operando.pipelines._run.register_stage`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ParameterError

__all__ = [
    "STAGE_CONFIGS",
    "CHSimulation",
    "CompositionConfig",
    "DenoiseConfig",
    "EnhanceConfig",
    "InputConfig",
    "LearnCHConfig",
    "LearnKineticsConfig",
    "NeutronConfig",
    "OpticalConfig",
    "ParticleSimulation",
    "PipelineConfig",
    "ReportConfig",
    "RunSection",
    "StageConfigSpec",
    "StrainConfig",
    "StxmParticleSimulation",
    "UQConfig",
    "dump_config",
    "load_config",
    "parse_config",
    "register_stage_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- run / input


class RunSection(_Strict):
    """``run:``: the run's name and master seed."""

    name: str = Field("run", description="Name shown in the report.")
    seed: int = Field(0, description="Master seed; a stage without its own seed uses it.")


class ParticleSimulation(_Strict):
    """``input.simulate`` with ``kind: particles``: LiFePO4 particle videos (composition)."""

    kind: Literal["particles"] = "particles"
    n_particles: int = Field(3, ge=1, description="Number of particles.")
    mean_area: float = Field(490.0, gt=10, description="Mean particle area (pixels).")
    half_cycles: tuple[int, int] = Field((1, 3), description="Half-cycles per particle.")
    frames: tuple[int, int] = Field((4, 10), description="Frames per half-cycle.")
    noise: float = Field(0.07, ge=0, description="Gaussian pixel noise of the composition.")
    ic_noise: float = Field(
        0.002, ge=0, description="Perturbation of each half-cycle's initial state."
    )
    seed: int | None = Field(None, description="Seed (default: run.seed).")


class StxmParticleSimulation(ParticleSimulation):
    """``kind: stxm-particles``: particle videos rendered as noisy STXM energy stacks.

    Every frame's composition (clean, ``noise`` is set to 0) is rendered with the model
    LFP/FP references (:func:`operando.modalities.stxm.model_references`) into a Poisson
    transmission stack at ``n_energies`` energies in ``energy_range``.
    """

    kind: Literal["stxm-particles"] = "stxm-particles"  # type: ignore[assignment]
    noise: float = Field(0.0, ge=0, description="Extra Gaussian noise of the composition.")
    n_energies: int = Field(12, ge=3, description="Energies per stack.")
    energy_range: tuple[float, float] = Field((702.0, 714.0), description="Energies (eV).")
    i0: float = Field(2.0e4, gt=0, description="Incident counts per pixel and energy.")
    thickness: float = Field(0.6, gt=0, description="Amount h in the particle (OD units).")


class CHSimulation(_Strict):
    """``kind: ch``: the Cahn–Hilliard benchmark series (seed 000 S2.1), optionally noisy."""

    kind: Literal["ch"] = "ch"
    size: int = Field(32, ge=8, description="Grid side (pixels).")
    frames: int = Field(13, ge=3, description="Frames.")
    length: float = Field(0.5, gt=0, description="Domain side length.")
    t_end: float = Field(0.12, gt=0, description="Final time.")
    noise: str | None = Field(None, description="Noise spec (operando corrupt), e.g. gaussian:0.1.")
    seed: int | None = Field(None, description="Seed (default: run.seed).")


Simulation = Annotated[
    ParticleSimulation | StxmParticleSimulation | CHSimulation, Field(discriminator="kind")
]


class InputConfig(_Strict):
    """``input:``: exactly one of ``file`` (any format ``operando info`` reads) or ``simulate``."""

    file: str | None = Field(None, description="Dataset file (relative to the YAML file).")
    simulate: Simulation | None = Field(None, description="Built-in synthetic data.")

    @model_validator(mode="after")
    def _exactly_one(self) -> InputConfig:
        if (self.file is None) == (self.simulate is None):
            raise ValueError("give exactly one of 'file' or 'simulate'")
        return self


# ---------------------------------------------------------------------------------- stages


class CompositionConfig(_Strict):
    """``stages.composition``: STXM stacks to Li-fraction maps (``operando stxm composition``).

    A single stack ``(energy, y, x)`` gives one map; a video of stacks
    ``(realization, t, energy, y, x)`` with ``masks`` gives one map per frame, in the
    particle-video layout ``learn_kinetics`` reads.
    """

    method: Literal["nnls", "two-energy"] = Field("nnls", description="Composition method.")
    references: Literal["model"] | list[str] = Field(
        "model", description="'model' (analytic LFP/FP spectra) or two spectra files."
    )
    i0: str | None = Field(None, description="I0 spectrum file (default: dataset 'i0').")
    energy_offset: float = Field(0.0, description="Stack minus reference energy (eV).")
    baseline: Literal["none", "constant", "linear"] = Field("none", description="NNLS baseline.")
    bootstrap: int = Field(0, ge=0, description="Bootstrap replicates (single stacks).")
    registration: bool = Field(True, description="Register the planes (single stacks).")
    min_size: int = Field(20, ge=1, description="Smallest particle (pixels, single stacks).")
    seed: int | None = Field(None, description="Seed (default: run.seed).")


class DenoiseConfig(_Strict):
    """``stages.denoise``: self-supervised denoising (``operando denoise``) of every frame.

    Pixels outside the particles (NaN) are filled with the frame's mean for training and
    prediction and set back to NaN afterwards.
    """

    method: Literal["n2v", "n2v2", "structn2v"] = Field("n2v", description="Method.")
    epochs: int = Field(20, ge=1, description="Training epochs.")
    patch: int = Field(32, ge=8, description="Training patch side (clipped to the image).")
    batch_size: int | None = Field(None, ge=1, description="Patches per step.")
    steps_per_epoch: int | None = Field(None, ge=1, description="Steps per epoch.")
    filters: int = Field(16, ge=4, description="U-Net first-layer filters.")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    ensemble: int = Field(1, ge=1, description="Bootstrap models (uncertainty if >= 2).")
    pass_on: Literal["denoised", "input"] = Field(
        "denoised",
        description="Dataset handed to the next stage: the denoised one, or the input "
        "(denoising then only evaluated and shown).",
    )
    seed: int | None = Field(None, description="Seed (default: run.seed).")


class LearnCHConfig(_Strict):
    """``stages.learn_ch``: mu_h(c) and D(c) from snapshots (``operando learn ch``)."""

    degree: int = Field(11, ge=1, description="Legendre degree of both laws.")
    prior: bool = Field(True, description="Regular-solution prior on mu_h.")
    snapshots: int = Field(7, ge=2, description="Snapshots used.")
    realization: int = Field(0, ge=0, description="Realization fitted.")
    max_steps: int = Field(50, ge=1, description="Levenberg–Marquardt steps.")


class LearnKineticsConfig(_Strict):
    """``stages.learn_kinetics``: j0(c), mu_h(c), k(x, y) (``operando learn kinetics``)."""

    rho2: float = Field(4.9e-3, ge=0, description="Weight of the ln k prior.")
    degree_mu: int = Field(5, ge=3, description="Degree of mu_h.")
    degree_j0: int = Field(8, ge=1, description="Degree of ln j0.")
    max_iter: int = Field(30, ge=1, description="Levenberg–Marquardt steps per stage.")
    max_iter_single: int | None = Field(
        None, ge=1, description="Steps of the single-shooting stage (null: max_iter)."
    )
    n_kl: int = Field(20, ge=0, description="Karhunen–Loève modes of ln k per particle.")
    shooting: Literal["both", "single", "multiple"] = Field("both", description="Shooting.")
    dt_max: float = Field(0.01, gt=0, description="Largest Euler step (hours).")
    damping_smoothing: float = Field(
        0.0,
        ge=0,
        description="Smoothing (1/h) of the time stepper's damping switch (0: exact; > 0 "
        "removes its kinks from the objective, e.g. 10 for HMC).",
    )
    smooth_initial: Annotated[float, Field(ge=0)] | Literal["mean"] = Field(
        0.0,
        description="Gaussian blur (px) of each half-cycle's first frame (noisy data); "
        "'mean': its interior mean exactly (noisy half-cycles that start near-uniform).",
    )
    smooth_segments: float | list[float] | None = Field(
        None,
        description="Gaussian blur (px) of the multiple-shooting segment starts "
        "(null: smooth_initial); a list runs one fit per value and keeps the lowest "
        "objective (multistart), e.g. [1.0, 1.5, 2.0] for noisy data.",
    )
    continuation: list[int] = Field(
        [], description="Lower ln j0 degrees fitted first (e.g. [2, 4]); [] for none."
    )

    @model_validator(mode="after")
    def _check_smoothing(self) -> LearnKineticsConfig:
        sm = self.smooth_segments
        values = sm if isinstance(sm, list) else [] if sm is None else [sm]
        if any(v < 0 for v in values) or (isinstance(sm, list) and not sm):
            raise ValueError("smooth_segments must be >= 0 (or a non-empty list of such)")
        return self


class UQConfig(_Strict):
    """``stages.uq``: bootstrap bands of the learned kinetics (resample, refit).

    Runs :func:`operando.pipelines._uq.bootstrap_kinetics` on the data the
    ``learn_kinetics`` stage fitted, with its options, warm-started from its MAP.
    """

    method: Literal["bootstrap"] = Field("bootstrap", description="UQ method.")
    replicates: int = Field(4, ge=2, description="Bootstrap replicates.")
    max_iter: int = Field(10, ge=1, description="Optimiser steps per replicate (refit: map).")
    refit: Literal["map", "recipe"] = Field(
        "map",
        description="Replicates warm-started from the MAP (single shooting, max_iter "
        "steps), or each one the whole learn_kinetics fit from the default start (slower; "
        "shows which optimum a fit ends in when there are several).",
    )
    kind: Literal["particles", "parametric"] = Field(
        "particles",
        description="What a replicate redraws: the particles (with replacement), or, "
        "'parametric', the noise (all particles; every pixel = the MAP's prediction plus "
        "Gaussian noise of its RMS residual, first frames and edges included).",
    )
    interval: Literal["percentile", "basic"] = Field(
        "percentile",
        description="Band of the replicates: their percentiles, or 'basic': 2 MAP - "
        "percentiles (log scale for j0), which moves the band against the bias the "
        "replicates reproduce (use with kind: parametric).",
    )
    level: float = Field(0.99, gt=0, lt=1, description="Band coverage.")
    seed: int | None = Field(None, description="Seed (default: run.seed).")
    workers: int | None = Field(
        None, ge=1, description="Worker processes (default: one per core; 1: serial)."
    )
    scheduler: str | None = Field(None, description="Existing Dask scheduler address or file.")
    cluster_config: str | None = Field(None, description="SLURMCluster options (YAML file).")


class ReportConfig(_Strict):
    """``stages.report``: the self-contained HTML report (``operando report``)."""

    filename: str = Field("report.html", description="File name inside the run directory.")


class NeutronConfig(_Strict):
    """``stages.neutron``: neutron radiography of a cell (``operando neutron analyze``).

    Reads the input file itself (TIFF/FITS series, Data Exchange HDF5, or an operando
    dataset with ``open_beam``/``dark``); options left ``null`` come from the file's
    attributes. See :func:`operando.pipelines._neutron.analyze_neutron_files`.
    """

    open_beam: str | None = Field(None, description="Open-beam frames (file or glob).")
    dark: str | None = Field(None, description="Dark frames (file or glob).")
    radius_cm: float | None = Field(None, gt=0, description="Cell radius (cm).")
    centre_px: float | None = Field(None, description="Cell centre (pixel row).")
    pixels_per_cm: float | None = Field(None, gt=0, description="Pixels per cm.")
    thickness_cm: float | None = Field(None, gt=0, description="Cell thickness (cm).")
    half_cycles: str | None = Field(None, description="Half-cycle start frames, '0,40,80'.")
    first: Literal["charge", "discharge"] = Field("charge", description="First half-cycle.")
    frame_interval_s: float | None = Field(None, gt=0, description="Seconds per frame.")
    anode: str | None = Field(None, description="Anode region (rows 'a:b').")
    cathode: str | None = Field(None, description="Cathode region (rows 'a:b').")
    denoise: str | None = Field(None, description="Denoise the frames first (n2v | umvd).")
    denoise_epochs: int = Field(10, ge=1, description="Denoiser epochs.")
    median: int = Field(3, ge=1, description="Median filter size.")
    seed: int | None = Field(None, description="Seed (default: run.seed).")


class OpticalConfig(_Strict):
    """``stages.optical``: operando optical video of graphite (``operando optical analyze``).

    Reads the input file itself (any format of
    :func:`operando.modalities.optical.read_video`). See
    :func:`operando.pipelines._optical.optical_analyze`.
    """

    pixel_size: float = Field(1.0, gt=0, description="µm per pixel.")
    denoise: Literal["none", "umvd", "n2v"] = Field("none", description="Denoise the video.")
    denoise_epochs: int = Field(20, ge=1, description="Denoiser epochs.")
    drift: bool = Field(True, description="Correct stage drift.")
    k: int = Field(4, ge=2, description="Colour clusters.")
    min_size: int = Field(15, ge=1, description="Smallest particle (pixels).")
    labels: str | None = Field(None, description="Particle labels file (instead of segmenting).")
    echem_soc: str | None = Field(None, description="Electrochemical SOC CSV.")
    seed: int | None = Field(None, description="Seed (default: run.seed).")


class EnhanceConfig(_Strict):
    """``stages.enhance``: InDI super-resolution of a volume (``operando enhance apply``).

    Applies a model trained with ``operando enhance train`` to the run's volume ``(z, y, x)``;
    the enhanced volume (half the voxel size) is handed on. See
    :func:`operando.pipelines._enhance.enhance_apply`.
    """

    model: str = Field(..., description="Model directory written by 'operando enhance train'.")
    steps: int | None = Field(None, ge=1, description="InDI steps N (default: the model's).")
    tile: int | None = Field(None, ge=16, description="Tile size in pixels (default: automatic).")
    z_interpolate: bool = Field(True, description="Also double the slices along z.")
    check_normalisation: bool = Field(
        True, description="Refuse data whose intensities differ from the training data's."
    )


class StrainConfig(_Strict):
    """``stages.strain``: the composition–eigenstrain law under stress equilibrium.

    Reads one composition map (default: ``input.file``) and one strain map per particle,
    fits M0 and M1 (and M2 when ``model: m2``), and writes the laws with 95 % bands, the
    residual maps and the model-error table (``operando strain learn``; see
    :func:`operando.pipelines._strain.strain_learn`).
    """

    strain: list[str] = Field(
        ..., min_length=1, description="Strain maps (aa, cc, ac), one per particle."
    )
    composition: list[str] | None = Field(
        None, description="Composition maps, one per particle (default: input.file)."
    )
    masks: list[str] | None = Field(None, description="Particle masks (default: finite pixels).")
    model: Literal["m0", "m1", "m2"] = Field("m1", description="Model whose residuals are kept.")
    degree: int | None = Field(None, ge=0, le=8, description="Legendre degree (None: validation).")
    max_degree: int = Field(4, ge=1, le=8, description="Largest degree tried by validation.")
    registration: bool = Field(False, description="Register composition onto strain first.")
    mode: Literal["plane_stress", "plane_strain"] = Field(
        "plane_stress", description="2D elasticity mode."
    )
    strain_format: Literal["array", "py4dstem"] = Field(
        "array", description="Strain files: arrays, or py4DSTEM strain-map files."
    )


# -------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class StageConfigSpec:
    """Where a stage sits in the chain and which model validates its options."""

    group: str
    order: int
    model: type[BaseModel]


#: Stage name -> spec. ``order`` sorts the chain; at most one stage per ``group``.
STAGE_CONFIGS: dict[str, StageConfigSpec] = {
    "composition": StageConfigSpec("analyze", 20, CompositionConfig),
    "neutron": StageConfigSpec("analyze", 21, NeutronConfig),
    "optical": StageConfigSpec("analyze", 22, OpticalConfig),
    "enhance": StageConfigSpec("enhance", 25, EnhanceConfig),
    "denoise": StageConfigSpec("denoise", 30, DenoiseConfig),
    "strain": StageConfigSpec("strain", 35, StrainConfig),
    "learn_ch": StageConfigSpec("learn", 40, LearnCHConfig),
    "learn_kinetics": StageConfigSpec("learn", 41, LearnKineticsConfig),
    "uq": StageConfigSpec("uq", 50, UQConfig),
    "report": StageConfigSpec("report", 90, ReportConfig),
}


def register_stage_config(name: str, group: str, order: int, model: type[BaseModel]) -> None:
    """Add (or replace) a stage's options model; see :data:`STAGE_CONFIGS`."""
    STAGE_CONFIGS[name] = StageConfigSpec(group, order, model)


class PipelineConfig(_Strict):
    """A validated, fully resolved run configuration."""

    run: RunSection = RunSection()
    input: InputConfig
    stages: dict[str, Any] = Field(default_factory=dict)
    source: str | None = Field(None, description="The YAML file (set by load_config).")

    def stage_names(self) -> list[str]:
        """Stages present, in chain order."""
        return sorted(self.stages, key=lambda s: STAGE_CONFIGS[s].order)

    def resolved(self) -> dict[str, Any]:
        """Plain-data form with every default filled in (what is written to config.yaml)."""
        return {
            "run": self.run.model_dump(mode="json"),
            "input": self.input.model_dump(mode="json", exclude_none=True),
            "stages": {n: self.stages[n].model_dump(mode="json") for n in self.stage_names()},
        }


# ------------------------------------------------------------------------- parse + errors


def _node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The deepest YAML node along ``loc`` (keys not in the document are skipped)."""
    best = node
    for key in loc:
        if isinstance(best, yaml.MappingNode):
            nxt = None
            for k, v in best.value:
                if str(k.value) == str(key):
                    # an error about a key itself (extra key) points at the key
                    nxt = v if loc[-1] != key else k
                    break
            if nxt is None:
                continue
            best = nxt
        elif (
            isinstance(best, yaml.SequenceNode)
            and isinstance(key, int)
            and 0 <= key < len(best.value)
        ):
            best = best.value[key]
    return best


def _line(node: yaml.Node | None) -> int | None:
    return None if node is None else node.start_mark.line + 1


def _where(source: str, loc: tuple[Any, ...], root: yaml.Node | None) -> str:
    key = ".".join(str(k) for k in loc) or "(top level)"
    line = _line(_node_at(root, loc))
    return f"{source}: line {line}: {key}" if line else f"{source}: {key}"


def _raise_validation(e: ValidationError, prefix: tuple[Any, ...], source: str, root: Any) -> None:
    errs = e.errors()
    # drop the discriminator tag pydantic inserts into union locations
    first = errs[0]
    loc = prefix + tuple(
        k
        for k in first["loc"]
        if k not in ("particles", "stxm-particles", "ch") or k == first["loc"][-1]
    )
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = f"unknown key '{loc[-1]}'"
    raise ParameterError(
        f"{msg}{more}",
        where=_where(source, loc, root),
        fix="see docs/pipelines.md for the keys and their defaults",
    ) from None


def parse_config(
    data: Mapping[str, Any] | str, *, source: str = "<config>", base: Path | None = None
) -> PipelineConfig:
    """Validate a config (YAML text or a mapping) into a :class:`PipelineConfig`.

    Relative ``input.file`` and reference paths are resolved against ``base``.

    Raises
    ------
    ParameterError
        Naming the offending key and its line in the YAML text.
    """
    root = None
    if isinstance(data, str):
        try:
            root = yaml.compose(data, Loader=yaml.SafeLoader)
            raw = yaml.safe_load(data)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f"line {mark.line + 1}: " if mark is not None else ""
            raise ParameterError(
                f"{line}not valid YAML ({getattr(e, 'problem', e)})",
                where=source,
                fix="check indentation and colons",
            ) from None
    else:
        raw = dict(data)
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ParameterError("the config must be a mapping with 'input' and 'stages'", where=source)
    allowed = {"run", "input", "stages"}
    for k in raw:
        if k not in allowed:
            raise ParameterError(
                f"unknown top-level key '{k}'",
                where=_where(source, (k,), root),
                fix=f"use {sorted(allowed)}",
            )
    if "input" not in raw:
        raise ParameterError(
            "missing 'input' section", where=source, fix="add input: {file: DATA} or simulate"
        )
    stages_raw = raw.get("stages") or {}
    if not isinstance(stages_raw, dict):
        raise ParameterError(
            "'stages' must be a mapping of stage name to options",
            where=_where(source, ("stages",), root),
        )
    stages: dict[str, BaseModel] = {}
    groups: dict[str, str] = {}
    for name, opts in stages_raw.items():
        if name not in STAGE_CONFIGS:
            raise ParameterError(
                f"unknown stage '{name}'",
                where=_where(source, ("stages", name), root),
                fix=f"stages are {sorted(STAGE_CONFIGS)}",
            )
        spec = STAGE_CONFIGS[name]
        if spec.group in groups and spec.group not in ("report",):
            raise ParameterError(
                f"stages '{groups[spec.group]}' and '{name}' both do '{spec.group}'",
                where=_where(source, ("stages", name), root),
                fix="keep one of them",
            )
        groups[spec.group] = name
        if opts is not None and not isinstance(opts, dict):
            raise ParameterError(
                f"options of stage '{name}' must be a mapping (or empty)",
                where=_where(source, ("stages", name), root),
            )
        try:
            stages[name] = spec.model.model_validate(opts or {})
        except ValidationError as e:
            _raise_validation(e, ("stages", name), source, root)
    try:
        cfg = PipelineConfig.model_validate(
            {"run": raw.get("run") or {}, "input": raw["input"], "stages": stages,
             "source": None if source.startswith("<") else source}
        )  # fmt: skip
    except ValidationError as e:
        _raise_validation(e, (), source, root)
    if base is not None:
        cfg = _resolve_paths(cfg, base)
    return cfg


def _abs(p: str, base: Path) -> str:
    q = Path(os.path.expanduser(p))
    return os.fspath(q if q.is_absolute() else (base / q).resolve())


def _resolve_paths(cfg: PipelineConfig, base: Path) -> PipelineConfig:
    inp = cfg.input
    if inp.file is not None:
        inp = inp.model_copy(update={"file": _abs(inp.file, base)})
    stages = dict(cfg.stages)
    comp = stages.get("composition")
    if isinstance(comp, CompositionConfig):
        upd: dict[str, Any] = {}
        if isinstance(comp.references, list):
            upd["references"] = [_abs(r, base) for r in comp.references]
        if comp.i0 is not None:
            upd["i0"] = _abs(comp.i0, base)
        stages["composition"] = comp.model_copy(update=upd)
    for name, keys in (("neutron", ("open_beam", "dark")), ("optical", ("labels", "echem_soc"))):
        st = stages.get(name)
        if st is not None:
            upd = {k: _abs(getattr(st, k), base) for k in keys if getattr(st, k) is not None}
            stages[name] = st.model_copy(update=upd)
    uq = stages.get("uq")
    if isinstance(uq, UQConfig) and uq.cluster_config is not None:
        stages["uq"] = uq.model_copy(update={"cluster_config": _abs(uq.cluster_config, base)})
    enh = stages.get("enhance")
    if isinstance(enh, EnhanceConfig):
        stages["enhance"] = enh.model_copy(update={"model": _abs(enh.model, base)})
    st = stages.get("strain")
    if isinstance(st, StrainConfig):
        upd = {
            k: [_abs(f, base) for f in getattr(st, k)]
            for k in ("strain", "composition", "masks")
            if getattr(st, k) is not None
        }
        stages["strain"] = st.model_copy(update=upd)
    return cfg.model_copy(update={"input": inp, "stages": stages})


def load_config(path: str | os.PathLike[str]) -> PipelineConfig:
    """Read and validate a YAML config file (paths in it are relative to the file)."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(
            "config file not found", where=os.fspath(p), fix="pass the path of a YAML file"
        )
    return parse_config(p.read_text(), source=os.fspath(p), base=p.resolve().parent)


def dump_config(cfg: PipelineConfig) -> str:
    """The resolved config as YAML text (round-trips through :func:`parse_config`)."""
    return yaml.safe_dump(cfg.resolved(), sort_keys=False, default_flow_style=None)
