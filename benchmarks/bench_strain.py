"""Chemo-mechanics benchmark: elasticity solver cost and M0/M1/M2 model errors vs noise.

Part 1 times the two finite-particle back-ends on elliptical LiFePO4 particles of growing
size (sparse LU: factorisation + one solve; JAX CG: compiled, then one solve), with the
LU solution as the reference for the CG strain error.

Part 2 is the synthetic analogue of seed 003 Fig. 3e: three particles with Vegard's law,
coherency strain and [001](100) slip patches, at several 4D-STEM noise levels; it reports
the model errors of M0 (degree by validation), M1 and M2 (degree 1), the reductions, and
the error of M1's df/dX.

Run: ``.venv/bin/python benchmarks/bench_strain.py`` (writes
``benchmarks/results/bench_strain.json``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np


def main() -> None:
    from operando.config import enable_x64

    enable_x64()
    from operando.inverse import check_eigenstrain_data, fit_eigenstrain
    from operando.physics import ElasticParticle, lfp_stiffness
    from operando.simulate import particle_mask, simulate_strain

    q = lfp_stiffness()
    solver = []
    for h, w in ((48, 32), (96, 64), (192, 128)):
        m = particle_mask((h, w))
        yy, _ = np.mgrid[:h, :w]
        x = 0.5 * (1 + np.tanh((yy - h / 2) / 3.0))
        eps0 = np.stack([0.05 * x, -0.025 * x, 0 * x], axis=-1)
        t = time.perf_counter()
        part = ElasticParticle(m, q)
        ref = part.solve_direct(eps0)
        t_lu = time.perf_counter() - t
        t = time.perf_counter()
        part.solve_cg(eps0).strain.block_until_ready()
        t_cg_first = time.perf_counter() - t
        t = time.perf_counter()
        sol = part.solve_cg(eps0)
        sol.strain.block_until_ready()
        t_cg = time.perf_counter() - t
        err = float(np.abs(np.asarray(sol.strain) - np.asarray(ref.strain)).max())
        row = {
            "shape": [h, w],
            "pixels": int(m.sum()),
            "lu_factor_and_solve_s": t_lu,
            "cg_compile_and_solve_s": t_cg_first,
            "cg_solve_s": t_cg,
            "cg_max_strain_error": err,
        }
        solver.append(row)
        print(row)

    models = []
    for noise in (2.5e-4, 5e-4, 1e-3, 2e-3):
        parts = simulate_strain(3, seed=4, noise=noise, dislocations=3)
        data = check_eigenstrain_data([p.composition for p in parts], [p.strain for p in parts])
        t = time.perf_counter()
        m0 = fit_eigenstrain(data, "m0", degree=None, max_degree=3)
        m1 = fit_eigenstrain(data, "m1", degree=1)
        m2 = fit_eigenstrain(data, "m2", degree=1)
        d = m1.derivative(np.linspace(0, 1, 11))
        row = {
            "noise": noise,
            "m0_degree": m0.degree,
            "m0": m0.model_error,
            "m1": m1.model_error,
            "m2": m2.model_error,
            "m1_vs_m0_reduction": 1 - m1.model_error / m0.model_error,
            "m2_vs_m1_reduction": 1 - m2.model_error / m1.model_error,
            "m1_dfdx_max_rel_error": float(
                np.max(np.abs(d - [0.05, -0.025]) / np.array([0.05, 0.025]))
            ),
            "fit_s": time.perf_counter() - t,
        }
        models.append(row)
        print(row)

    out = Path(__file__).parent / "results" / "bench_strain.json"
    out.parent.mkdir(exist_ok=True)
    record = {
        "solver": solver,
        "models": models,
        "jax": jax.__version__,
        "note": "2 shared CPU cores; timings are indicative only",
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
