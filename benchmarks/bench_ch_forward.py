"""Forward Cahn–Hilliard solver throughput: JAX (operando.pde) vs NumPy, same scheme.

Both implementations run the pseudo-spectral, linearly stabilised SBDF2 scheme of
:mod:`operando.pde._ch` (7 real FFTs per step, adaptive stabiliser, benchmark functions
``D = 1 - c``, ``mu_h = ln(c/(1-c)) + 3(1 - 2c)``, κ = 2e-3) from the same initial
condition, in the same process. Reported per grid size:

* JAX compile time (``lower().compile()``), separately from run time;
* run time of ``STEPS`` steps (best of ``REPEATS``) and grid-point updates per second;
* NumPy (``numpy.fft``) run time of the same steps and the speed-up;
* the largest difference between the two final fields (both float64: round-off only).

Run: ``.venv/bin/python benchmarks/bench_ch_forward.py [--sizes 64 128 256] [--steps 400]``.
Writes ``benchmarks/results/ch_forward.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from operando.config import enable_x64

OMEGA, KAPPA, LENGTH, DT = 3.0, 2e-3, 2.0, 5e-4
EPS = 1e-12


# ------------------------------------------------------------------ NumPy reference


def _np_mu(c):
    cc = np.clip(c, EPS, 1 - EPS)
    return np.log(cc) - np.log1p(-cc) + OMEGA * (1 - 2 * c)


def _np_dmu(c):
    cc = np.clip(c, EPS, 1 - EPS)
    inside = (c > EPS) & (c < 1 - EPS)
    return np.where(inside, 1 / (cc * (1 - cc)), 0.0) - 2 * OMEGA


def numpy_solve(c0: np.ndarray, n_steps: int, dt: float) -> np.ndarray:
    """The SBDF2 scheme of operando.pde.solve_ch, in NumPy (uniform steps, IMEX Euler start)."""
    ny, nx = c0.shape
    h = LENGTH / nx
    ky_f = 2 * np.pi * np.fft.fftfreq(ny, d=h)
    kx_f = 2 * np.pi * np.fft.rfftfreq(nx, d=h)
    k2 = ky_f[:, None] ** 2 + kx_f[None, :] ** 2
    k4 = k2 * k2
    ky, kx = ky_f.copy(), kx_f.copy()
    ky[ny // 2] = 0.0
    kx[nx // 2] = 0.0
    ky, kx = ky[:, None], kx[None, :]
    rfft2, irfft2 = np.fft.rfft2, np.fft.irfft2

    c, c_hat = c0.copy(), rfft2(c0)
    delta, delta_hat = np.zeros_like(c0), np.zeros_like(c_hat)
    for i in range(n_steps):
        omega = 0.0 if i == 0 else 1.0
        c_star = c + omega * delta
        cs_hat = c_hat + omega * delta_hat
        lap = irfft2(-k2 * cs_hat, s=c0.shape)
        mu_hat = rfft2(_np_mu(c_star) - KAPPA * lap)
        gx = irfft2(1j * kx * mu_hat, s=c0.shape)
        gy = irfft2(1j * ky * mu_hat, s=c0.shape)
        m = (1 - c_star) * c_star
        n_hat = 1j * kx * rfft2(m * gx) + 1j * ky * rfft2(m * gy)
        a = max(float(np.max(m * _np_dmu(c_star))), 0.0)
        b = KAPPA * float(np.max(np.abs(m)))
        s = dt * (a * k2 + b * k4)
        a0 = (1 + 2 * omega) / (1 + omega)
        a2 = omega**2 / (1 + omega)
        delta_hat = ((a2 + omega * s) * delta_hat + dt * n_hat) / (a0 + s)
        delta = irfft2(delta_hat, s=c0.shape)
        c, c_hat = c + delta, c_hat + delta_hat
    return c


# ------------------------------------------------------------------------ JAX solver


def jax_runner(c0: np.ndarray, n_steps: int, dt: float):
    """(compile seconds, compiled callable) for ``n_steps`` steps of operando's solver."""
    from operando.pde._ch import _init_carry, _integrate
    from operando.physics import linear_D, regular_solution_mu

    def run(c, params, kappa):
        _, frames = _integrate(
            _init_carry(c, 0.0),
            params,
            kappa,
            jnp.full((1,), dt),
            mu_h=regular_solution_mu,
            D=linear_D,
            forcing=None,
            n_steps=n_steps,
            order=2,
            stab=None,
            length=LENGTH,
        )
        return frames[-1]

    args = (jnp.asarray(c0), jnp.asarray(OMEGA), jnp.asarray(KAPPA))
    t = time.perf_counter()
    compiled = jax.jit(run).lower(*args).compile()
    return time.perf_counter() - t, lambda: compiled(*args).block_until_ready()


def _best(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "ch_forward.json"
    )
    args = parser.parse_args()
    enable_x64()

    rows = []
    for n in args.sizes:
        rng = np.random.default_rng(0)
        c0 = 0.5 + 0.01 * rng.uniform(-1, 1, (n, n))
        # Start from a partly separated state (after 200 steps) so that both codes time
        # the regime the benchmark spends most of its steps in.
        c0 = numpy_solve(c0, 200, DT)
        compile_s, run_jax = jax_runner(c0, args.steps, DT)
        jax_s, c_jax = _best(run_jax, args.repeats)
        np_s, c_np = _best(lambda c0=c0: numpy_solve(c0, args.steps, DT), args.repeats)
        updates = n * n * args.steps
        rows.append(
            {
                "size": n,
                "steps": args.steps,
                "jax_compile_s": round(compile_s, 3),
                "jax_run_s": round(jax_s, 4),
                "numpy_run_s": round(np_s, 4),
                "jax_ms_per_step": round(1e3 * jax_s / args.steps, 4),
                "numpy_ms_per_step": round(1e3 * np_s / args.steps, 4),
                "jax_updates_per_s": round(updates / jax_s),
                "numpy_updates_per_s": round(updates / np_s),
                "speedup": round(np_s / jax_s, 2),
                "max_abs_diff": float(np.max(np.abs(np.asarray(c_jax) - c_np))),
            }
        )
    head = (
        f"{'size':>5} {'compile s':>10} {'JAX ms/step':>12} {'NumPy ms/step':>14} "
        f"{'JAX Mupd/s':>11} {'NumPy Mupd/s':>13} {'speed-up':>9} {'max|diff|':>10}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['size']:>5} {r['jax_compile_s']:>10.2f} {r['jax_ms_per_step']:>12.3f} "
            f"{r['numpy_ms_per_step']:>14.3f} {r['jax_updates_per_s'] / 1e6:>11.2f} "
            f"{r['numpy_updates_per_s'] / 1e6:>13.2f} {r['speedup']:>9.2f} "
            f"{r['max_abs_diff']:>10.1e}"
        )
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    record = {
        "benchmark": "ch_forward",
        "scheme": "pseudo-spectral linearly stabilised SBDF2, 7 real FFTs/step, float64",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "jax": jax.__version__,
            "numpy": np.__version__,
            "jax_backend": jax.default_backend(),
            "loadavg_at_end": load,
        },
        "dt": DT,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
