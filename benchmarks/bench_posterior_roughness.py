"""How rough is the kinetics posterior at its MAP? (why NUTS adapts to tiny steps)

Issue 6's HMC chains on the 3-particle acceptance problem adapt to step sizes of ~0.01-0.1
(in units whitened by the Gauss-Newton covariance, which is their initial inverse mass
matrix) and do not mix. For a posterior that is close to Gaussian at the scale of its
Gauss-Newton standard deviations, curvatures in whitened units are ~1 and NUTS would take
steps of order 1. This script measures the curvature actually met at several length
scales, at the MAP of the acceptance problem:

1. simulates the 3 particles of the acceptance test (``--seed``, ``sigma_e = 0.07``) and fits
   the MAP with one start of the noisy-data recipe (docs/kinetics.md);
2. builds the single-shooting objective ``f = (|r|^2 + sum w p^2) / 2 sigma^2`` (minus the
   log posterior that ``hmc_kinetics`` samples, sigma = the MAP's training RMSE) and its
   Gauss-Newton Hessian ``H_GN = (J^T J + W) / sigma^2``; whitened directions ``d = L v``
   with ``L^T H_GN L = I`` and ``v`` random unit vectors;
3. for each scale ``h`` (in whitened standard deviations) the secant curvature
   ``d.(g(x + h d) - g(x - h d)) / 2h`` (``g`` the gradient) over ``--directions``
   directions: 1 for a Gaussian posterior, the same at every scale for a smooth one;
4. the spectrum of the exact Hessian in whitened units (forward over reverse mode).

Writes ``benchmarks/results/posterior_roughness.json``. Usage::

    .venv/bin/python benchmarks/bench_posterior_roughness.py [--seed 3] [--directions 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "posterior_roughness.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.07)
    ap.add_argument("--directions", type=int, default=8)
    ap.add_argument(
        "--scales", type=float, nargs="+", default=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
    )
    ap.add_argument(
        "--damping-smoothing",
        type=float,
        nargs="+",
        default=[0.0, 10.0],
        help="values of learn_kinetics(damping_smoothing=...) to measure (0: the default)",
    )
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()

    from operando.config import enable_x64

    enable_x64()
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from operando.inverse import learn_kinetics, least_squares_log_posterior
    from operando.inverse._kinetics import kinetics_setup
    from operando.simulate import simulate_particles

    sigma_e = float(args.noise)
    ds = simulate_particles(
        3, noise=sigma_e, seed=args.seed, mean_area=80, half_cycles=(1, 2), frames=(4, 6),
        dt_max=0.01, ic_noise=0.0,
    )  # fmt: skip
    model_opts = dict(n_kl=20, degree_mu=5, degree_j0=8, dt_max=0.01, smooth_initial=10.0)
    t0 = time.perf_counter()
    fit = learn_kinetics(
        ds, rho2=sigma_e**2, max_iter=40, max_iter_single=200, continuation=(2, 4),
        smooth_segments=1.5, **model_opts,
    )  # fmt: skip
    t_fit = time.perf_counter() - t0
    sigma = float(fit.metrics["train_rmse"])
    p0 = {k: jnp.asarray(v, dtype=float) for k, v in fit.params.items()}
    x0, unravel = ravel_pytree(p0)
    # the prior weights of hmc_kinetics (rho1 = 0, rho2 = sigma_e^2)
    reg = {
        "mu": jnp.zeros(p0["mu"].shape),
        "j0": jnp.zeros(p0["j0"].shape),
        "Z": jnp.full(p0["Z"].shape, sigma_e**2),
    }
    wv = np.asarray(ravel_pytree(reg)[0])
    variants = []
    t1 = time.perf_counter()
    for eps in args.damping_smoothing:
        S = kinetics_setup(ds, params0=p0, shooting="single", damping_smoothing=eps, **model_opts)

        def res(x: jax.Array, S: Any = S) -> jax.Array:
            return S.residual(unravel(x))

        # minus the log density that hmc_kinetics samples
        log_p = least_squares_log_posterior(
            lambda p, _, S=S: S.residual(p), None, sigma=sigma, regularization=reg
        )

        def cost(x: jax.Array, log_p: Any = log_p) -> jax.Array:
            return -log_p(unravel(x))

        J = np.asarray(jax.jacfwd(res)(x0))
        h_gn = (J.T @ J + np.diag(wv)) / sigma**2
        ev_gn, V = np.linalg.eigh(h_gn)
        L = V / np.sqrt(ev_gn)  # L^T H_GN L = I
        H = np.asarray(jax.jacfwd(jax.grad(cost))(x0))
        H = 0.5 * (H + H.T)
        ev = np.linalg.eigvalsh(L.T @ H @ L)
        grad = jax.jit(jax.grad(cost))
        g0 = np.asarray(grad(x0))
        rng = np.random.default_rng(0)
        dirs = [
            L @ (v / np.linalg.norm(v)) for v in rng.standard_normal((args.directions, x0.size))
        ]
        scales = []
        for h in args.scales:
            vals = []
            for d in dirs:
                gp, gm = np.asarray(grad(x0 + h * d)), np.asarray(grad(x0 - h * d))
                vals.append(float(d @ (gp - gm) / (2 * h)))
            a = np.asarray(vals)
            fin = a[np.isfinite(a)]
            scales.append(
                {
                    "h_whitened_std": h,
                    "secant_curvature": [round(v, 4) for v in vals],
                    "median_abs": float(np.median(np.abs(fin))) if fin.size else None,
                    "max_abs": float(np.max(np.abs(fin))) if fin.size else None,
                    "non_finite": int(a.size - fin.size),
                }
            )
            print(json.dumps({"damping_smoothing": eps, **scales[-1]}), flush=True)
        variants.append(
            {
                "damping_smoothing": eps,
                "cost": float(cost(x0)),
                "whitened_gradient_norm": float(np.linalg.norm(L.T @ g0)),
                "exact_hessian_whitened": {
                    "min": float(ev[0]), "max": float(ev[-1]), "top5": ev[-5:].tolist(),
                    "bottom5": ev[:5].tolist(), "n_negative": int(np.sum(ev < 0)),
                },
                "scales": scales,
                "nuts_stable_step_estimate": {
                    str(q["h_whitened_std"]): 2.0 / np.sqrt(q["max_abs"]) for q in scales
                    if q["max_abs"]
                },
            }
        )  # fmt: skip
    rec = {
        "what": "curvature of -log posterior of the kinetics acceptance problem at its MAP, "
        "in Gauss-Newton-whitened units (1 = Gaussian at the GN scale)",
        "settings": {**vars(args), "fit": {**model_opts, "rho2": sigma_e**2,
                                           "smooth_segments": 1.5}},
        "map": {**fit.metrics, "wall_s": t_fit, "sigma": sigma},
        "n_params": int(x0.size),
        "n_residuals": int(J.shape[0]),
        "point": "all variants are measured at the MAP of the default model (damping_smoothing=0)",
        "variants": variants,
        "wall_s": time.perf_counter() - t1,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=2))
    os.replace(tmp, out)
    for v in variants:
        print(v["damping_smoothing"], json.dumps(v["exact_hessian_whitened"]))
    print("wrote", out)


if __name__ == "__main__":
    main()
