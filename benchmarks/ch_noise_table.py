"""Reproduce seed 000 Tables S3–S6: Cahn–Hilliard recovery from noisy data, with/without prior.

For each realisation of the benchmark series and each noise level (clean; Gaussian 10/20/30 %;
Poisson lambda = 1e4/1e3/1e2; impulse 0.2/0.3/0.4 then 3x3 median; composite), the images
are corrupted with :func:`operando.noise.apply_noise` (clipped to [0.01, 0.99] as in the
paper), and mu_h(c), D(c) are learned with :func:`operando.inverse.learn_ch` with and
without the physical prior. The table reports, per noise level and prior, the mean ± std
over realisations of

* ``final_mse``: mean squared pixel error of the fit against the (noisy) measured
  snapshots, the quantity of Tables S3–S6 (the paper's numbers are on another scale:
  they grow like the noise variance; ours are raw MSE of values in [0, 1]);
* ``mu_rmse`` / ``D_rmse``: errors of the learned laws on c in [0.1, 0.9] (see
  :func:`operando.inverse.ch_function_errors`).

Usage (the full experiment is 10 realisations x 11 noise levels x 2 priors = 220 fits)::

    python benchmarks/ch_noise_table.py                              # full: 128x128, 10 real.
    python benchmarks/ch_noise_table.py --size 32 --realizations 2   # quick

Writes ``benchmarks/results/ch_noise_table_<size>px_<R>real.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

NOISE_LEVELS = [
    ("clean", None),
    ("gaussian 10 %", "gaussian:0.1"),
    ("gaussian 20 %", "gaussian:0.2"),
    ("gaussian 30 %", "gaussian:0.3"),
    ("poisson 1e4", "poisson:1e4"),
    ("poisson 1e3", "poisson:1e3"),
    ("poisson 1e2", "poisson:1e2"),
    ("impulse 0.2", "impulse:0.2"),
    ("impulse 0.3", "impulse:0.3"),
    ("impulse 0.4", "impulse:0.4"),
    ("composite", "composite"),
]
METRICS = ("final_mse", "mu_rmse", "D_rmse")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=128, help="grid size (pixel size stays 1/64)")
    ap.add_argument("--frames", type=int, default=21, help="frames simulated, 0.01 apart")
    ap.add_argument("--realizations", type=int, default=10)
    ap.add_argument("--degree", type=int, default=11)
    ap.add_argument("--snapshots", type=int, default=7)
    ap.add_argument("--max-steps", type=int, default=40)
    ap.add_argument(
        "--noise", nargs="*", default=None, help="subset of labels, e.g. clean composite"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()

    from operando.config import enable_x64

    enable_x64()
    import jax

    from operando.inverse import learn_ch
    from operando.noise import apply_noise
    from operando.simulate import simulate_ch_dataset

    levels = [lv for lv in NOISE_LEVELS if args.noise is None or lv[0].split()[0] in args.noise]
    t_start = time.perf_counter()
    ds_all = simulate_ch_dataset(
        size=args.size,
        length=2.0 * args.size / 128,
        t_end=0.01 * (args.frames - 1),
        frames=args.frames,
        realizations=args.realizations,
        seed=args.seed,
    )
    sim_s = time.perf_counter() - t_start
    runs = []
    for r in range(args.realizations):
        clean = ds_all["images"].values[r]
        base = ds_all.isel(realization=r)
        for li, (label, spec) in enumerate(levels):
            if spec is None:
                images = clean
            else:
                key = jax.random.fold_in(jax.random.key(args.seed + 1), r * 100 + li)
                images = np.asarray(apply_noise(key, clean, spec, clip=(0.01, 0.99)))
            ds = base.copy()
            ds["images"] = (base["images"].dims, images)
            for prior in (True, False):
                t0 = time.perf_counter()
                fit = learn_ch(
                    ds,
                    degree=args.degree,
                    snapshots=args.snapshots,
                    prior=prior,
                    max_steps=args.max_steps,
                    clip=spec is not None,
                )
                rec = {
                    "realization": r,
                    "noise": label,
                    "spec": spec or "clean",
                    "prior": prior,
                    "status": fit.status.value,
                    "iterations": fit.result.iterations,
                    "wall_s": time.perf_counter() - t0,
                    **fit.metrics,
                }
                runs.append(rec)
                print(
                    f"r={r} {label:14s} prior={prior!s:5s} {rec['status']:9s} "
                    f"mse={rec['final_mse']:.3g} mu={rec.get('mu_rmse', np.nan):.3g} "
                    f"D={rec.get('D_rmse', np.nan):.3g} ({rec['wall_s']:.0f} s)",
                    flush=True,
                )
    table = _table(runs, [lv[0] for lv in levels])
    total_s = time.perf_counter() - t_start
    meta = {
        "size": args.size,
        "pixel_size": 1 / 64,
        "frames": args.frames,
        "realizations": args.realizations,
        "degree": args.degree,
        "snapshots": args.snapshots,
        "max_steps": args.max_steps,
        "seed": args.seed,
        "simulate_s": sim_s,
        "total_s": total_s,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_avg_1min_at_end": os.getloadavg()[0],
            "jax": jax.__version__,
        },
    }
    stem = f"ch_noise_table_{args.size}px_{args.realizations}real"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "table": table, "runs": runs}, indent=2, default=float) + "\n"
    )
    (args.out / f"{stem}.md").write_text(_markdown(meta, table))
    print(f"wrote {args.out / stem}.json/.md in {total_s:.0f} s")


def _table(runs: list[dict], labels: list[str]) -> list[dict]:
    rows = []
    for label in labels:
        row: dict = {"noise": label}
        for prior in (True, False):
            sel = [x for x in runs if x["noise"] == label and x["prior"] == prior]
            tag = "prior" if prior else "no_prior"
            row[f"{tag}_n"] = len(sel)
            row[f"{tag}_converged"] = sum(x["status"] == "converged" for x in sel)
            for m in METRICS:
                v = np.array([x.get(m, np.nan) for x in sel], dtype=float)
                row[f"{tag}_{m}_mean"] = float(np.nanmean(v)) if v.size else None
                row[f"{tag}_{m}_std"] = float(np.nanstd(v)) if v.size else None
        rows.append(row)
    return rows


def _markdown(meta: dict, table: list[dict]) -> str:
    def pm(row: dict, tag: str, m: str) -> str:
        mean, std = row[f"{tag}_{m}_mean"], row[f"{tag}_{m}_std"]
        return "n/a" if mean is None else f"{mean:.3g} ± {std:.2g}"

    lines = [
        f"# Cahn–Hilliard recovery under noise ({meta['size']}x{meta['size']}, "
        f"{meta['realizations']} realisation(s))",
        "",
        f"Grid {meta['size']}x{meta['size']} (pixel 1/64), first {meta['frames']} frames of the "
        f"benchmark series, {meta['snapshots']} snapshots, degree {meta['degree']}, "
        f"max {meta['max_steps']} LM steps. Mean ± std over realisations. final MSE: fit vs "
        "the noisy measured snapshots (raw MSE of values in [0, 1]; the paper's Tables "
        "S3–S6 use another scale). mu/D RMSE on c in [0.1, 0.9]. Converged: fits that met the "
        "LM tolerance (the others hit max steps).",
        "",
        f"Machine: {meta['machine']['platform']}, {meta['machine']['cpu_count']} CPUs, "
        f"JAX {meta['machine']['jax']}; total {meta['total_s'] / 60:.1f} min.",
        "",
        "| noise | final MSE (prior) | mu RMSE (prior) | D RMSE (prior) | conv. | "
        "final MSE (no prior) | mu RMSE (no prior) | D RMSE (no prior) | conv. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table:
        cells = [row["noise"]]
        for tag in ("prior", "no_prior"):
            cells += [pm(row, tag, m) for m in METRICS]
            cells.append(f"{row[f'{tag}_converged']}/{row[f'{tag}_n']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
