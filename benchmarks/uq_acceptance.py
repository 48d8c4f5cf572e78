"""Issue 6 acceptance: bootstrap and HMC bands of j0(c) on 3 noisy synthetic particles.

The "Done when" of issue 6: on 3 synthetic particles with ``sigma_e = 0.07`` the bootstrap
99 % band contains the true ``j0(c)`` (normalised by its maximum: ``k`` and ``j0`` share
a scale) over most of ``c`` in [0.1, 0.9], and the HMC band agrees with it in width to
within a factor of 2. Steps:

1. simulate the particles of the kinetics acceptance test (``seed``, ``mean_area=80``,
   one or two half-cycles of 4-6 frames, ``ic_noise=0``) and write them to ``OUT/data.nc``;
2. the MAP by the noisy-data recipe of docs/kinetics.md (multistart over the blur of the
   multiple-shooting segment starts, then single shooting from the first frames' mean);
3. ``bootstrap_kinetics``: ``--n-boot`` refits on particles resampled with replacement,
   each warm-started from the MAP (single shooting, ``--boot-iter`` steps), or with
   ``--boot-refit recipe`` each the whole recipe from the default start (results then in
   ``uq_acceptance_recipe.json`` and ``uq_acceptance_bands_recipe.png``);
4. ``hmc_kinetics``: ``--chains`` NUTS chains started at the MAP with the Gauss-Newton
   covariance as inverse mass matrix, ``--warmup``/``--samples`` steps, trees of at most
   ``2**--tree-depth`` gradients (each gradient is forward-mode through the time stepper);
5. writes ``benchmarks/results/uq_acceptance.json`` (coverage, band widths, their ratio,
   R-hat, ESS, wall times, settings) and ``docs/figures/uq_acceptance_bands.png``
   (Gauss-Newton, bootstrap and HMC bands against the truth).

Usage::

    .venv/bin/python benchmarks/uq_acceptance.py [--out /tmp/uq_acc] [--n-boot 20]
        [--chains 2 --warmup 150 --samples 150 --tree-depth 6] [--workers 1]

``--boot-kind parametric`` makes every bootstrap sample a parametric replicate instead
(all particles; every pixel redrawn as the MAP's prediction plus Gaussian noise of the
MAP's RMS residual, or with ``--boot-inputs measured`` only the residual pixels);
``--boot-interval basic`` takes the basic band ``2 MAP - q`` instead of the percentile
band (the record also holds the other band of the same replicates). Results in
``uq_acceptance_parametric_<inputs>[_basic][_recipe].json``.

Results of runs with ``--no-hmc`` get the suffix ``_nohmc``, and with ``--seed S`` other
than 3 (the data of the acceptance tests) ``_seedS``, with ``--n-boot B`` other than 20
``_bB``.

``--damping-smoothing EPS`` runs every fit, refit and chain with
``learn_kinetics(damping_smoothing=EPS)`` (a smooth time-stepper damping; results in
``uq_acceptance_smooth<EPS>.json``). Jobs are checkpointed under ``OUT`` (re-running
resumes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "uq_acceptance.json"
FIGURE = HERE.parent / "docs" / "figures" / "uq_acceptance_bands.png"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/uq_acceptance")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.07)
    ap.add_argument("--n-boot", type=int, default=20)
    ap.add_argument("--boot-iter", type=int, default=40)
    ap.add_argument(
        "--boot-refit",
        choices=("map", "recipe"),
        default="map",
        help="bootstrap refits warm-started from the MAP, or the whole recipe",
    )
    ap.add_argument(
        "--boot-kind",
        choices=("particles", "parametric"),
        default="particles",
        help="resample particles, or redraw the pixel noise around the MAP's prediction",
    )
    ap.add_argument(
        "--boot-inputs",
        choices=("noisy", "measured"),
        default="noisy",
        help="parametric replicates: redraw the first frames and edges too, or keep them",
    )
    ap.add_argument(
        "--boot-interval",
        choices=("percentile", "basic"),
        default="percentile",
        help="percentile band, or basic (reverse-percentile) band 2 MAP - q",
    )
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--samples", type=int, default=150)
    ap.add_argument("--tree-depth", type=int, default=6)
    ap.add_argument("--workers", type=int, default=1, help="1: serial; >1: local Dask cluster")
    ap.add_argument("--no-hmc", action="store_true")
    ap.add_argument(
        "--damping-smoothing",
        type=float,
        default=0.0,
        help="learn_kinetics(damping_smoothing=...) for the MAP, refits and HMC (results "
        "then in uq_acceptance[_recipe]_smooth<value>.json)",
    )
    args = ap.parse_args()

    from operando.config import enable_x64

    enable_x64()
    from operando.inverse import normalise_j0
    from operando.inverse._uq import band_coverage
    from operando.io import write_dataset
    from operando.pipelines._figures import save_figure
    from operando.pipelines._kinetics import fit_kinetics
    from operando.pipelines._parallel import ExecutorConfig
    from operando.pipelines._uq import (
        bootstrap_kinetics,
        curve_bands,
        gauss_newton_bands,
        hmc_kinetics,
        uq_bands_figure,
    )
    from operando.simulate import simulate_particles

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sigma = float(args.noise)
    path = out / "data.nc"
    ds = simulate_particles(
        3, noise=sigma, seed=args.seed, mean_area=80, half_cycles=(1, 2), frames=(4, 6),
        dt_max=0.01, ic_noise=0.0,
    )  # fmt: skip
    write_dataset(ds, path)
    opts = dict(
        rho2=sigma**2, n_kl=20, degree_mu=5, degree_j0=8, dt_max=0.01, max_iter=40,
        max_iter_single=200, continuation=[2, 4], smooth_initial=10.0,
        smooth_segments=[1.0, 1.5, 2.0],
    )  # fmt: skip
    if args.damping_smoothing > 0:
        opts["damping_smoothing"] = float(args.damping_smoothing)
    rec: dict = {
        "settings": {**vars(args), "fit": opts},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_before": os.getloadavg()},
    }  # fmt: skip
    t0 = time.perf_counter()
    fit = fit_kinetics(ds, **opts)
    rec["map"] = {
        "wall_s": time.perf_counter() - t0, **fit.metrics,
        "chosen_start": fit.settings.get("chosen_start"),
        "multistart": fit.settings.get("multistart"),
    }  # fmt: skip
    print("MAP", json.dumps(rec["map"]), flush=True)
    map_params = {k: np.asarray(v) for k, v in fit.params.items()}
    executor = (
        ExecutorConfig("serial") if args.workers <= 1
        else ExecutorConfig("local", workers=args.workers)
    )  # fmt: skip
    boot_opts = {**opts, "max_iter_single": int(args.boot_iter)}
    if args.boot_refit == "recipe":
        boot_opts = opts  # every refit: the whole recipe, as the MAP
    boot_dir = out / f"bootstrap_{args.boot_kind}_{args.boot_refit}"
    if args.boot_kind == "parametric":
        boot_dir = boot_dir.with_name(f"{boot_dir.name}_{args.boot_inputs}")
    boot_kw = dict(
        n_boot=args.n_boot, seed=0, map_params=map_params, refit=args.boot_refit,
        kind=args.boot_kind, inputs=args.boot_inputs, executor=executor, **boot_opts,
    )  # fmt: skip
    b = bootstrap_kinetics(path, boot_dir, interval=args.boot_interval, **boot_kw)
    rec["bootstrap"] = b["results"]
    print("bootstrap", json.dumps(b["results"]), flush=True)
    # the other band of the same replicates
    other = "basic" if args.boot_interval == "percentile" else "percentile"
    sel_b = (b["c"] >= 0.1) & (b["c"] <= 0.9)
    smp = {"mu_h": b["samples"]["mu_h"], "j0_norm": normalise_j0(b["c"], b["samples"]["j0"])}
    rec["bootstrap_other_interval"] = {"interval": other}
    for name, (lo, hi) in curve_bands(smp, b["map"], other, 0.99).items():
        rec["bootstrap_other_interval"][f"{name}_band_mean_width"] = float(
            np.mean((hi - lo)[sel_b])
        )
        rec["bootstrap_other_interval"][f"{name}_coverage"] = band_coverage(
            lo[sel_b], hi[sel_b], b["truth"][name][sel_b]
        )
    print("bootstrap", other, json.dumps(rec["bootstrap_other_interval"]), flush=True)
    c = np.asarray(fit.c_grid)
    bands = {"Gauss–Newton": gauss_newton_bands(fit, 0.99)}
    bands["bootstrap"] = {k: b["bands"][k] for k in ("mu_h", "j0_norm")}
    truth = b["truth"]
    sel = (c >= 0.1) & (c <= 0.9)
    gn = bands["Gauss–Newton"]
    rec["gauss_newton"] = {
        f"{k}_band_mean_width": float(np.mean((gn[k][1] - gn[k][0])[sel])) for k in gn
    }
    for k in gn:
        if truth.get(k) is not None:
            rec["gauss_newton"][f"{k}_coverage"] = band_coverage(
                gn[k][0][sel], gn[k][1][sel], truth[k][sel]
            )
    if not args.no_hmc:
        h = hmc_kinetics(
            path, out / "hmc", sigma=None, chains=args.chains, num_warmup=args.warmup,
            num_samples=args.samples, seed=0, max_tree_depth=args.tree_depth,
            map_params=map_params, executor=executor, **boot_opts,
        )  # fmt: skip
        rec["hmc"] = h["results"]
        bands["HMC"] = h["bands"]
        wb = b["results"]["j0_norm_band_mean_width"]
        rec["hmc_over_bootstrap_j0_width"] = h["results"]["j0_norm_band_mean_width"] / wb
        print("HMC", json.dumps(h["results"]), flush=True)
    map_curves = {"mu_h": np.asarray(fit.mu), "j0_norm": normalise_j0(c, fit.j0)}
    sfx = "" if args.boot_kind == "particles" else f"_{args.boot_kind}_{args.boot_inputs}"
    sfx += "" if args.boot_interval == "percentile" else f"_{args.boot_interval}"
    sfx += "" if args.boot_refit == "map" else f"_{args.boot_refit}"
    if args.damping_smoothing > 0:
        sfx += f"_smooth{args.damping_smoothing:g}"
    if args.no_hmc:
        sfx += "_nohmc"  # (keeps a record with chains)
    if args.seed != 3:
        sfx += f"_seed{args.seed}"  # (the acceptance test's data: seed 3)
    if args.n_boot != 20:
        sfx += f"_b{args.n_boot}"
    figure = FIGURE.with_name(f"{FIGURE.stem}{sfx}.png")
    results = RESULTS.with_name(f"{RESULTS.stem}{sfx}.json")
    figure.parent.mkdir(parents=True, exist_ok=True)
    save_figure(uq_bands_figure(c, map_curves, bands, truth, level=0.99), figure)
    rec["machine"]["load_after"] = os.getloadavg()
    rec["wall_s"] = time.perf_counter() - t0
    results.parent.mkdir(parents=True, exist_ok=True)
    tmp = results.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rec, indent=2, default=float))
    tmp.replace(results)
    print(f"wrote {results} and {figure}")


if __name__ == "__main__":
    main()
