"""Benchmark: cost of learning kinetics vs the number of particles (block vs dense Jacobian).

Issue 5 asks for the wall time, iterations and errors vs truth of ``learn_kinetics`` on a
39-particle, ~62-half-cycle synthetic dataset with sigma_e = 0.07 on 2 CPU cores, and for
how the time scales with the number of particles (4, 8, 16, 39).

For every size the script simulates a dataset (``simulate_particles``, seed = size,
sigma_e = 0.07), builds the single- and the multiple-shooting problem (suffix
``_multiple``) and times, after compilation:

* ``block_jac_s``: one evaluation of the block normal-equation pieces the solver uses
  (per half-cycle forward-mode Jacobian over ``globals + own Z_i``, reduced to
  ``J^T J`` blocks), i.e. the dominant cost of one Levenberg–Marquardt iteration, with
  the blocks in their step groups (``step_groups``: ``[n_sub, frames, blocks]``);
* ``block_jac_one_group_s`` (reference in the same run): the same with every block at
  the longest interval's sub-step count and the longest half-cycle's frames (the
  engine before step groups); ``step_groups_speedup`` is their ratio;
* ``residual_s``: one residual evaluation (the cost of a trial step);
* ``dense_jac_s`` (reference, sizes up to ``--dense-max``): the full ``jax.jacfwd`` of the
  residual over all parameters (what the engine did before the block solver), whose
  cost grows quadratically with the number of particles.

``*_first_call_s`` include compilation. With ``--fit-sizes`` it also runs
``learn_kinetics`` end to end with the documented noisy-data recipe (one start,
``RECIPE``; ``--fit-smooth-initial mean`` starts every half-cycle from its first
frame's interior mean exactly, which the ~490 px particles need;
``--fit-damping-smoothing EPS`` fits with the smooth damping of docs/kinetics.md) on data without
initial-condition noise, and records wall time, iterations
and the errors vs truth; every iteration is logged to
``results/kinetics_fit<N>_progress.jsonl`` as it happens.

Usage::

    .venv/bin/python benchmarks/bench_kinetics.py [--sizes 4 8 16 39] [--fit-sizes 39]

writes ``benchmarks/results/kinetics_scaling.json``. The machine this runs on may be
shared: the record includes the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "kinetics_scaling.json"


def _timed(fn, *args, repeat: int = 2) -> tuple[float, float]:
    """(first call incl. compile, best of ``repeat`` later calls) in seconds."""
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return first, best


def per_iteration(size: int, *, mean_area: float, noise: float, n_kl: int, dense: bool) -> dict:
    """Time the Jacobian pieces and residual of a ``size``-particle problem."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.flatten_util import ravel_pytree

    from operando.inverse import kinetics_setup
    from operando.inverse._least_squares import _block_pieces
    from operando.simulate import simulate_particles

    t0 = time.perf_counter()
    ds = simulate_particles(size, noise=noise, seed=size, mean_area=mean_area)
    t_sim = time.perf_counter() - t0
    rec: dict = {
        "particles": size,
        "half_cycles": int(ds.sizes["realization"]),
        "frames": int(np.asarray(ds["frame_valid"].values).sum()),
        "pixels": int(ds["masks"].values.sum()),
        "mean_area": mean_area,
        "simulate_s": t_sim,
    }
    for shooting in ("single", "multiple"):
        S = kinetics_setup(ds, rho2=noise**2, degree_mu=5, degree_j0=8, n_kl=n_kl,
                           shooting=shooting)  # fmt: skip
        g = jnp.asarray(np.concatenate([S.p0["j0"], S.p0["mu"]]))
        Z = jnp.asarray(S.p0["Z"])
        sfx = "" if shooting == "single" else "_multiple"
        # Reference: every block with the longest interval's sub-step count (one group).
        _, piece_1 = _block_pieces(S.model.block_residual, g.size, S.n_p, True)
        first_1, t_1 = _timed(piece_1, g, Z, S.blocks, jnp.asarray(S.owner), repeat=1)
        res_fn, piece_fn = _block_pieces(S.group_fns, g.size, S.n_p, True)
        first, t_jac = _timed(piece_fn, g, Z, S.group_args, S.group_owner, repeat=1)
        _, t_res = _timed(res_fn, g, Z, S.group_args, S.group_owner)
        rec.update({
            f"blocks{sfx}": len(S.owner),
            f"n_sub_max{sfx}": int(S.n_sub),
            f"step_groups{sfx}": [[int(n), int(f), len(i)] for n, f, i in S.groups],
            f"block_jac_first_call_s{sfx}": first,
            f"block_jac_s{sfx}": t_jac,
            f"block_jac_one_group_s{sfx}": t_1,
            f"block_jac_one_group_first_call_s{sfx}": first_1,
            f"step_groups_speedup{sfx}": t_1 / t_jac,
            f"residual_s{sfx}": t_res,
        })  # fmt: skip
        if shooting == "single":
            rec["n_params"] = int(g.size + Z.size)
            rec["n_residuals"] = int(S.n_residuals)
            if dense:
                flat, unravel = ravel_pytree({k: jnp.asarray(v) for k, v in S.p0.items()})
                dense_jac = jax.jit(jax.jacfwd(lambda z, S=S, u=unravel: S.residual(u(z))))
                first_d, t_d = _timed(dense_jac, flat, repeat=1)
                rec["dense_jac_s"] = t_d
                rec["dense_jac_first_call_s"] = first_d
                rec["block_speedup"] = t_d / t_jac
    return rec


#: The documented noisy-data recipe (docs/kinetics.md "Noisy data"), one start.
RECIPE = dict(
    degree_mu=5, degree_j0=8, n_kl=20, max_iter=40, max_iter_single=200,
    continuation=(2, 4), smooth_initial=10.0, smooth_segments=1.5,
)  # fmt: skip


STAGE_KEYS = ("shooting", "status", "iterations", "wall_s", "compile_s")


def full_fit(size: int, *, mean_area: float, noise: float, progress: Path, budget: dict) -> dict:
    """Simulate ``size`` particles (no initial-condition noise) and fit them by the recipe.

    Every Levenberg–Marquardt iteration is appended to ``progress`` (JSON lines), so a
    run that is stopped early still documents how far it got.
    """
    import numpy as np

    from operando.inverse import learn_kinetics
    from operando.simulate import simulate_particles

    ds = simulate_particles(size, noise=noise, seed=size, mean_area=mean_area, ic_noise=0.0)
    progress.parent.mkdir(parents=True, exist_ok=True)
    progress.write_text("")
    t0 = time.perf_counter()

    def log(info) -> None:
        with progress.open("a") as fh:
            fh.write(json.dumps({
                "step": info.step, "cost": info.cost, "accepted": info.accepted,
                "damping": info.damping, "wall_s": time.perf_counter() - t0,
            }) + "\n")  # fmt: skip

    recipe = {**RECIPE, **budget}
    fit = learn_kinetics(ds, rho2=noise**2, callback=log, **recipe)
    wall = time.perf_counter() - t0
    stages = fit.settings["stages"]
    return {
        "particles": size,
        "half_cycles": int(ds.sizes["realization"]),
        "frames": int(np.asarray(ds["frame_valid"].values).sum()),
        "pixels": int(ds["masks"].values.sum()),
        "mean_area": mean_area,
        "noise": noise,
        "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in recipe.items()},
        "n_params": fit.result.n_params,
        "n_residuals": fit.result.n_residuals,
        "iterations": fit.settings["iterations"],
        "stages": [{k: st.get(k) for k in STAGE_KEYS} for st in stages],
        "status": fit.status.value,
        "wall_s": wall,
        **fit.metrics,
    }


def main() -> None:
    """Command-line entry point."""
    from operando.config import enable_x64

    enable_x64()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[4, 8, 16, 39])
    ap.add_argument("--dense-max", type=int, default=4, help="largest size for the reference")
    ap.add_argument("--fit-sizes", type=int, nargs="*", default=[])
    ap.add_argument("--mean-area", type=float, default=490.0)
    ap.add_argument("--fit-mean-area", type=float, default=490.0)
    ap.add_argument(
        "--fit-max-iter",
        type=int,
        default=RECIPE["max_iter"],
        help="steps per multiple-shooting stage of the fit",
    )
    ap.add_argument("--fit-max-iter-single", type=int, default=RECIPE["max_iter_single"],
                    help="steps of the single-shooting stage of the fit")  # fmt: skip
    ap.add_argument(
        "--fit-smooth-initial",
        default=str(RECIPE["smooth_initial"]),
        help="smooth_initial of the fit: a blur (px) or 'mean' (the first frames' interior "
        "mean exactly); records of both are kept side by side",
    )
    ap.add_argument(
        "--fit-damping-smoothing",
        type=float,
        default=0.0,
        help="learn_kinetics(damping_smoothing=...) of the fit (0: the exact switch); "
        "records of each value are kept side by side",
    )
    ap.add_argument("--noise", type=float, default=0.07)
    ap.add_argument("--n-kl", type=int, default=20)
    args = ap.parse_args()
    out = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    out = {"benchmark": "learn_kinetics scaling", "scaling": [], "fits": [], **out}
    out.pop("runs", None)  # records of the pre-block-solver engine are not comparable
    common = {
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "note": "2-core machine; load average at start and end recorded",
    }
    for size in args.sizes:
        load0 = os.getloadavg()[0]
        rec = per_iteration(
            size, mean_area=args.mean_area, noise=args.noise, n_kl=args.n_kl,
            dense=size <= args.dense_max,
        )  # fmt: skip
        rec.update(common, load_start=load0, load_end=os.getloadavg()[0])
        out["scaling"] = [r for r in out["scaling"] if r["particles"] != size] + [rec]
        print(json.dumps(rec), flush=True)
        _save(out)
    for size in args.fit_sizes:
        load0 = os.getloadavg()[0]
        tag = "" if args.fit_smooth_initial != "mean" else "_mean"
        eps = float(args.fit_damping_smoothing)
        tag += f"_smooth{eps:g}" if eps > 0 else ""
        prog = RESULTS.parent / f"kinetics_fit{size}{tag}_progress.jsonl"
        sm = args.fit_smooth_initial
        budget = {"max_iter": args.fit_max_iter, "max_iter_single": args.fit_max_iter_single,
                  "smooth_initial": sm if sm == "mean" else float(sm)}  # fmt: skip
        if eps > 0:
            budget["damping_smoothing"] = eps
        rec = full_fit(
            size, mean_area=args.fit_mean_area, noise=args.noise, progress=prog, budget=budget
        )  # fmt: skip
        rec.update(common, load_start=load0, load_end=os.getloadavg()[0])

        def key(r: dict) -> tuple:
            rc = r["recipe"]
            return r["particles"], rc["smooth_initial"], rc.get("damping_smoothing", 0.0)

        out["fits"] = [r for r in out["fits"] if key(r) != key(rec)] + [rec]
        print(json.dumps(rec), flush=True)
        _save(out)


def _save(out: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2))
    os.replace(tmp, RESULTS)


if __name__ == "__main__":
    main()
