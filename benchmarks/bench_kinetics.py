"""Benchmark: cost of learning kinetics vs the number of particles (block vs dense Jacobian).

Issue 5 asks for the wall time, iterations and errors vs truth of ``learn_kinetics`` on a
39-particle, ~62-half-cycle synthetic dataset with sigma_e = 0.07 on 2 CPU cores, and for
how the time scales with the number of particles (4, 8, 16, 39).

For every size the script simulates a dataset (``simulate_particles``, seed = size,
sigma_e = 0.07), builds the single-shooting problem and times, after compilation:

* ``block_jac_s``: one evaluation of the block normal-equation pieces the solver uses
  (per half-cycle forward-mode Jacobian over ``globals + own Z_i``, reduced to
  ``J^T J`` blocks), i.e. the dominant cost of one Levenberg–Marquardt iteration;
* ``residual_s``: one residual evaluation (the cost of a trial step);
* ``dense_jac_s`` (reference, sizes up to ``--dense-max``): the full ``jax.jacfwd`` of the
  residual over all parameters (what the engine did before the block solver), whose
  cost grows quadratically with the number of particles.

With ``--fit-sizes`` it also runs ``learn_kinetics`` end to end (``--max-iter`` per stage)
and records wall time, iterations and the errors vs truth.

Usage::

    .venv/bin/python benchmarks/bench_kinetics.py [--sizes 4 8 16 39] [--fit-sizes 4]

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
    S = kinetics_setup(ds, rho2=noise**2, degree_mu=5, degree_j0=8, n_kl=n_kl)
    g = jnp.asarray(np.concatenate([S.p0["j0"], S.p0["mu"]]))
    Z = jnp.asarray(S.p0["Z"])
    res_fn, piece_fn = _block_pieces(S.model.block_residual, g.size, S.n_p, True)
    owner = jnp.asarray(S.owner)
    c_jac, t_jac = _timed(piece_fn, g, Z, S.blocks, owner, repeat=1)
    _, t_res = _timed(res_fn, g, Z, S.blocks, owner)
    rec = {
        "particles": size,
        "half_cycles": int(ds.sizes["realization"]),
        "frames": int(np.asarray(ds["frame_valid"].values).sum()),
        "pixels": int(ds["masks"].values.sum()),
        "mean_area": mean_area,
        "n_sub": int(S.n_sub),
        "n_params": int(g.size + Z.size),
        "n_residuals": int(S.n_residuals),
        "simulate_s": t_sim,
        "block_jac_compile_s": c_jac - t_jac,
        "block_jac_s": t_jac,
        "residual_s": t_res,
    }
    if dense:
        flat, unravel = ravel_pytree({k: jnp.asarray(v) for k, v in S.p0.items()})
        dense_jac = jax.jit(jax.jacfwd(lambda z: S.residual(unravel(z))))
        c_d, t_d = _timed(dense_jac, flat, repeat=1)
        rec["dense_jac_s"] = t_d
        rec["dense_jac_compile_s"] = c_d - t_d
        rec["block_speedup"] = t_d / t_jac
    return rec


def full_fit(size: int, *, mean_area: float, noise: float, n_kl: int, max_iter: int) -> dict:
    """Simulate ``size`` particles and fit them; return timings and metrics."""
    from operando.inverse import learn_kinetics
    from operando.simulate import simulate_particles

    ds = simulate_particles(size, noise=noise, seed=size, mean_area=mean_area)
    t0 = time.perf_counter()
    fit = learn_kinetics(
        ds, rho2=noise**2, degree_mu=5, degree_j0=8, n_kl=n_kl, max_iter=max_iter,
        shooting="single", smooth_initial=1.5 if noise > 0 else 0.0,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    stages = fit.settings["stages"]
    return {
        "particles": size,
        "half_cycles": int(ds.sizes["realization"]),
        "mean_area": mean_area,
        "noise": noise,
        "max_iter": max_iter,
        "n_params": fit.result.n_params,
        "n_residuals": fit.result.n_residuals,
        "iterations": fit.settings["iterations"],
        "status": fit.status.value,
        "wall_s": wall,
        "compile_s": sum(s["compile_s"] for s in stages),
        **fit.metrics,
    }


def main() -> None:
    """Command-line entry point."""
    from operando.config import enable_x64

    enable_x64()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 39])
    ap.add_argument("--dense-max", type=int, default=8, help="largest size for the reference")
    ap.add_argument("--fit-sizes", type=int, nargs="*", default=[])
    ap.add_argument("--mean-area", type=float, default=490.0)
    ap.add_argument("--fit-mean-area", type=float, default=80.0)
    ap.add_argument("--max-iter", type=int, default=30)
    ap.add_argument("--noise", type=float, default=0.07)
    ap.add_argument("--n-kl", type=int, default=20)
    args = ap.parse_args()
    out = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    out = {"benchmark": "learn_kinetics scaling", "scaling": [], "fits": [], **out}
    out.pop("runs", None)  # records of the pre-block-solver engine are not comparable
    common = {
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "note": "shared 2-core machine, heavily loaded by other jobs (see load)",
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
        rec = full_fit(
            size, mean_area=args.fit_mean_area, noise=args.noise, n_kl=args.n_kl,
            max_iter=args.max_iter,
        )  # fmt: skip
        rec.update(common, load_start=load0, load_end=os.getloadavg()[0])
        out["fits"].append(rec)
        print(json.dumps(rec), flush=True)
        _save(out)


def _save(out: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2))
    os.replace(tmp, RESULTS)


if __name__ == "__main__":
    main()
