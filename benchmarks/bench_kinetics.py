"""Benchmark: learning kinetics from synthetic particle videos vs the number of particles.

Issue 5 asks for the wall time, iterations and errors vs truth of ``learn_kinetics`` on
synthetic datasets of 4, 8, 16 and 39 particles (sigma_e = 0.07), on 2 CPU cores. Each
size simulates its dataset (``simulate_particles``, seed = size), fits it, and records
compile and run time separately.

Usage::

    .venv/bin/python benchmarks/bench_kinetics.py --sizes 4 8 [--mean-area 490] [--max-iter 30]

writes ``benchmarks/results/kinetics_scaling.json`` (one record per size, appended to what
is there). The per-iteration cost currently grows faster than linearly with the number of
particles because the engine forms the dense Jacobian with ``jax.jacfwd`` over all
parameters (see docs/kinetics.md, "block solver").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "kinetics_scaling.json"


def run(size: int, *, mean_area: float, max_iter: int, noise: float, n_kl: int) -> dict:
    """Simulate ``size`` particles and fit them; return timings and metrics."""
    from operando.inverse import learn_kinetics
    from operando.simulate import simulate_particles

    t0 = time.perf_counter()
    ds = simulate_particles(size, noise=noise, seed=size, mean_area=mean_area)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit = learn_kinetics(
        ds, rho2=max(noise, 1e-2) ** 2, degree_mu=5, degree_j0=8, n_kl=n_kl, max_iter=max_iter
    )
    wall = time.perf_counter() - t0
    stages = fit.settings["stages"]
    return {
        "particles": size,
        "half_cycles": int(ds.sizes["realization"]),
        "mean_area": mean_area,
        "pixels": int(ds["masks"].values.sum()),
        "noise": noise,
        "n_params": fit.result.n_params,
        "n_residuals": fit.result.n_residuals,
        "iterations": fit.settings["iterations"],
        "status": fit.status.value,
        "simulate_s": t_sim,
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
    ap.add_argument("--mean-area", type=float, default=490.0)
    ap.add_argument("--max-iter", type=int, default=30)
    ap.add_argument("--noise", type=float, default=0.07)
    ap.add_argument("--n-kl", type=int, default=20)
    args = ap.parse_args()
    records = json.loads(RESULTS.read_text())["runs"] if RESULTS.exists() else []
    for size in args.sizes:
        rec = run(
            size,
            mean_area=args.mean_area,
            max_iter=args.max_iter,
            noise=args.noise,
            n_kl=args.n_kl,
        )
        rec["cpu_count"] = os.cpu_count()
        rec["machine"] = platform.machine()
        records.append(rec)
        print(json.dumps(rec), flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        tmp = RESULTS.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"benchmark": "learn_kinetics scaling", "runs": records}, indent=2)
        )
        os.replace(tmp, RESULTS)


if __name__ == "__main__":
    main()
