"""The full-chain demo: simulated LiFePO4 particles -> STXM stacks -> physics -> report.

The demo is an ordinary :func:`~operando.pipelines._run.run_pipeline` config (printed by
:func:`demo_config_yaml`, the starting point for a user's own run):

1. simulate a few LiFePO4 platelets through (dis)charge with known CIET ``j0(c)``,
   regular-solution ``mu_h(c)`` and heterogeneous ``k(x, y)``
   (:func:`operando.simulate.simulate_particles`) and render every frame as a Poisson STXM
   transmission stack at 12 energies across the Fe L3 edge (model LFP/FP spectra);
2. ``composition``: per-pixel NNLS of every stack -> Li-fraction videos;
3. ``denoise``: Noise2Void on the composition frames, shown before/after with metrics
   (``pass_on: input``: the kinetics fit uses the NNLS maps, because on these small
   particles N2V blurs the sharp phase interfaces more than it removes their noise; the
   report says by how much);
4. ``learn_kinetics``: ``mu_h(c)``, ``j0(c)`` and ``ln k(x, y)`` by PDE-constrained least
   squares (seed 002);
5. ``uq``: a small particle bootstrap of the laws (when :mod:`operando.pipelines._uq` is
   installed);
6. ``report``: the HTML report (rendered by the ``report_writer`` the caller passes, e.g.
   :func:`operando.report.write_report`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DEMO_CHAIN_SETTINGS", "demo_config_yaml", "run_demo_chain"]

#: Sizes of the two variants (full: < 10 min on 2 CPU cores; quick: a first look).
DEMO_CHAIN_SETTINGS: dict[str, dict[str, Any]] = {
    "full": {
        "n_particles": 3, "mean_area": 200, "half_cycles": "[1, 2]", "frames": "[4, 6]",
        "i0": 5000.0, "epochs": 5, "steps": 100, "max_iter": 40, "max_iter_single": 200,
        "degree_j0": 8, "n_kl": 20, "shooting": "both", "smooth_segments": "[0.5, 1.0]",
        "continuation": "[2, 4]", "replicates": 3, "uq_iter": 20,
    },
    "quick": {
        "n_particles": 2, "mean_area": 120, "half_cycles": "[1, 1]", "frames": "[4, 5]",
        "i0": 5000.0, "epochs": 4, "steps": 50, "max_iter": 10, "max_iter_single": 30,
        "degree_j0": 4, "n_kl": 5, "shooting": "both", "smooth_segments": "0.5",
        "continuation": "[2]", "replicates": 0, "uq_iter": 0,
    },
}  # fmt: skip


def demo_config_yaml(quick: bool = False, seed: int = 0) -> str:
    """The YAML config the demo runs (``operando demo --config`` prints it).

    Parameters
    ----------
    quick
        The small variant (two tiny particles, no bootstrap).
    seed
        ``run.seed`` (simulation, noise, denoiser and bootstrap seeds derive from it).

    Returns
    -------
    str
        A config for ``operando run``; every option not listed takes its documented
        default (``operando run CONFIG --print-config`` shows them all).
    """
    s = DEMO_CHAIN_SETTINGS["quick" if quick else "full"]
    uq = ""
    if s["replicates"] and importlib.util.find_spec("operando.pipelines._uq") is not None:
        uq = (
            "  uq:                       # particle bootstrap of the laws (99 % bands)\n"
            f"    replicates: {s['replicates']}\n"
            f"    max_iter: {s['uq_iter']}\n"
        )
    return f"""\
# operando demo{" --quick" if quick else ""}: LiFePO4 particles seen by STXM, to kinetics.
# Run your own copy with: operando run demo.yaml --out runs/demo
run:
  name: demo{"-quick" if quick else ""}
  seed: {seed}
input:
  simulate:
    kind: stxm-particles       # simulate_particles rendered as Poisson STXM stacks
    n_particles: {s["n_particles"]}
    mean_area: {s["mean_area"]}              # pixels per particle
    half_cycles: {s["half_cycles"]}
    frames: {s["frames"]}
    n_energies: 12
    energy_range: [702.0, 714.0]   # eV, across the Fe L3 edge
    i0: {s["i0"]}                 # incident counts per pixel and energy
    thickness: 0.6
    ic_noise: 0.0              # half-cycles start uniform (a particle at rest); k seeds
                               # the phase mosaic
# For measured data replace the simulate block by:  file: path/to/stack_video.nc
stages:
  composition:               # per-pixel NNLS against the LFP/FP references
    method: nnls
    references: model          # or [lfp.txt, fp.txt]
    baseline: constant
  denoise:                   # Noise2Void on the composition frames
    method: n2v
    epochs: {s["epochs"]}
    steps_per_epoch: {s["steps"]}
    learning_rate: 0.003
    patch: 16
    pass_on: input             # fit the NNLS maps: on these small particles N2V blurs the
                               # sharp phase interfaces more than it removes noise (report)
  learn_kinetics:            # mu_h(c), j0(c), k(x, y) by PDE-constrained least squares
    rho2: 0.0008               # ~ the variance of the NNLS maps' noise (0.0285^2): the MAP
    max_iter: {s["max_iter"]}               # steps of each multiple-shooting stage
    max_iter_single: {s["max_iter_single"]}       # steps of the final single-shooting fit
    degree_mu: 5
    degree_j0: {s["degree_j0"]}
    n_kl: {s["n_kl"]}
    shooting: {s["shooting"]}
    continuation: {s["continuation"]}        # lower ln j0 degrees first
    smooth_initial: 10.0       # half-cycles start from their first frame's mean
    smooth_segments: {s["smooth_segments"]}  # blur (px) of multiple-shooting starts; a list:
                               # one fit per value, the lowest objective wins
{uq}  report:
    filename: report.html
"""


def run_demo_chain(
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    seed: int = 0,
    progress: Callable[..., None] | None = None,
    report_writer: Callable[[Path, Any], Path] | None = None,
) -> dict[str, Any]:
    """Run the full-chain demo into directory ``out`` (cached: a re-run reuses stages).

    Parameters
    ----------
    out
        Run directory.
    quick
        The small variant.
    seed
        The run seed (see :func:`demo_config_yaml`).
    progress
        ``update(done, total, stage=NAME)``.
    report_writer
        Renders the report (e.g. :func:`operando.report.write_report`); the pipelines
        layer cannot import the report face itself.

    Returns
    -------
    dict
        The run record (see :func:`~operando.pipelines._run.run_pipeline`).
    """
    from ._config import parse_config
    from ._run import run_pipeline

    cfg = parse_config(demo_config_yaml(quick, seed), source="operando demo config")
    return run_pipeline(cfg, out, progress=progress, report_writer=report_writer)
