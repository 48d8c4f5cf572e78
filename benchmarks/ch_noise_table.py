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

**Denoised columns** (issue 4, seed 000 Tables S3–S6 "denoised"): each noisy series is
also denoised self-supervised (``--denoise umvd``, the default, or ``n2v``) and the laws
are learned from the denoised series (clipped to [0.01, 0.99]) with and without prior.
The images are periodic, so the denoiser is trained on and applied to the 3x3 periodic
tiling of each frame and the centre is kept (no artificial borders; random patches of
the tiling are random periodic shifts). Budget: ``--denoise-steps`` Adam steps (default
300, cosine decay from lr 2e-3), 32x32 patches, U-Net depth 2 with 16 filters (UMVD:
batch 4, window 5; N2V: batch 8, masked fraction 0.02). The PSNR/SSIM of the noisy and
denoised series against the clean one are recorded too.

Every finished fit is appended to ``<stem>.runs.jsonl``; a rerun with ``--resume`` skips
those, and ``--reuse JSON`` imports the fits of an earlier run with the same settings
(e.g. the committed noisy-only table: same seeds, hence identical noisy data).

Usage (the full experiment is 10 realisations x 11 noise levels x 2 priors = 220 fits)::

    python benchmarks/ch_noise_table.py                              # full: 128x128, 10 real.
    python benchmarks/ch_noise_table.py --size 32 --realizations 2   # quick
    python benchmarks/ch_noise_table.py --size 32 --realizations 1 \
        --reuse benchmarks/results/ch_noise_table_32px_1real.json      # add denoised columns

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
SOURCES = ("noisy", "denoised")


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
    ap.add_argument(
        "--denoise",
        choices=("umvd", "n2v", "none"),
        default="umvd",
        help="denoiser for the denoised columns ('none': noisy columns only)",
    )
    ap.add_argument("--denoise-steps", type=int, default=300, help="training steps per series")
    ap.add_argument("--denoise-filters", type=int, default=None, help="U-Net first-layer filters")
    ap.add_argument("--denoise-patch", type=int, default=None, help="training patch size")
    ap.add_argument("--denoise-batch", type=int, default=None, help="training batch size")
    ap.add_argument(
        "--denoise-noise",
        nargs="*",
        default=None,
        help="labels (as --noise) that get denoised columns (default: all noisy ones)",
    )
    ap.add_argument("--reuse", type=Path, default=None, help="import fits from this JSON")
    ap.add_argument("--resume", action="store_true", help="skip fits already in the .jsonl")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    overrides = (("filters", "base_filters"), ("patch", "patch_size"), ("batch", "batch_size"))
    budget = dict(DENOISE_BUDGET.get(args.denoise, {}))
    for name, key in overrides:
        if getattr(args, f"denoise_{name}") is not None:
            budget[key] = getattr(args, f"denoise_{name}")

    from operando.config import enable_x64

    enable_x64()
    import jax

    from operando.inverse import learn_ch
    from operando.metrics import psnr, ssim
    from operando.noise import apply_noise
    from operando.simulate import simulate_ch_dataset

    def wanted(label: str, names: list[str] | None) -> bool:
        return names is None or label.split()[0] in names or label in names

    # the noise key uses the index in NOISE_LEVELS, so subsets reproduce the full run's data
    levels = [(i, *lv) for i, lv in enumerate(NOISE_LEVELS) if wanted(lv[0], args.noise)]
    stem = f"ch_noise_table_{args.size}px_{args.realizations}real"
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / f"{stem}.runs.jsonl"
    settings = {
        k: getattr(args, k) for k in ("size", "frames", "degree", "snapshots", "max_steps", "seed")
    }
    runs: list[dict] = []
    if args.reuse is not None:
        old = json.loads(args.reuse.read_text())
        for k, v in settings.items():
            if old["meta"].get(k) != v:
                raise SystemExit(f"--reuse {args.reuse}: {k} = {old['meta'].get(k)} != {v}")
        runs += [{"data": "noisy", **x} if "data" not in x else x for x in old["runs"]]
    if args.resume and log_path.exists():
        runs += [json.loads(line) for line in log_path.read_text().splitlines() if line]
    elif not args.resume:
        log_path.unlink(missing_ok=True)
    done = {(x["realization"], x["noise"], x["data"], x["prior"]) for x in runs}
    quality: dict = {}
    for x in runs:
        if "psnr_denoised" in x:
            quality[(x["realization"], x["noise"])] = {
                k: x[k] for k in x if k.startswith(("psnr_", "ssim_"))
            }

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

    def fit_and_log(r: int, label: str, spec: str | None, src: str, images, extra: dict):
        ds = base.copy()
        ds["images"] = (base["images"].dims, images)
        for prior in (True, False):
            if (r, label, src, prior) in done:
                continue
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
                "data": src,
                "prior": prior,
                "status": fit.status.value,
                "iterations": fit.result.iterations,
                "wall_s": time.perf_counter() - t0,
                **fit.metrics,
                **extra,
            }
            runs.append(rec)
            with log_path.open("a") as fh:
                fh.write(json.dumps(rec, default=float) + "\n")
            print(
                f"r={r} {label:14s} {src:8s} prior={prior!s:5s} {rec['status']:9s} "
                f"mse={rec['final_mse']:.3g} mu={rec.get('mu_rmse', np.nan):.3g} "
                f"D={rec.get('D_rmse', np.nan):.3g} ({rec['wall_s']:.0f} s)",
                flush=True,
            )

    for r in range(args.realizations):
        clean = ds_all["images"].values[r]
        base = ds_all.isel(realization=r)
        for li, label, spec in levels:
            if spec is None:
                images = clean
            else:
                key = jax.random.fold_in(jax.random.key(args.seed + 1), r * 100 + li)
                images = np.asarray(apply_noise(key, clean, spec, clip=(0.01, 0.99)))
            fit_and_log(r, label, spec, "noisy", images, {})
            if spec is None or args.denoise == "none" or not wanted(label, args.denoise_noise):
                continue
            if all((r, label, "denoised", p) in done for p in (True, False)):
                continue
            t0 = time.perf_counter()
            den = _denoise_periodic(
                images, args.denoise, args.denoise_steps, budget, seed=args.seed + r
            )
            den = np.clip(den, 0.01, 0.99)
            q = {
                "denoiser": args.denoise,
                "denoise_steps": args.denoise_steps,
                "denoise_s": time.perf_counter() - t0,
                "psnr_noisy": psnr(clean, images, data_range=1.0),
                "psnr_denoised": psnr(clean, den, data_range=1.0),
                "ssim_noisy": ssim(clean, images, data_range=1.0),
                "ssim_denoised": ssim(clean, den, data_range=1.0),
            }
            quality[(r, label)] = q
            print(
                f"r={r} {label:14s} {args.denoise}: PSNR {q['psnr_noisy']:.2f} -> "
                f"{q['psnr_denoised']:.2f} dB ({q['denoise_s']:.0f} s)",
                flush=True,
            )
            fit_and_log(r, label, spec, "denoised", den, q)
    table = _table(runs, [lv[1] for lv in levels], args.realizations)
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
        "denoise": args.denoise,
        "denoise_steps": args.denoise_steps,
        "denoise_budget": budget or None,
        "reused": str(args.reuse) if args.reuse else None,
        "simulate_s": sim_s,
        "total_s": total_s,
        # fits (this run and reused ones) + denoising (recorded on both fits of a series)
        "total_s_all_runs": float(
            sum(x.get("wall_s", 0) + x.get("denoise_s", 0) * x["prior"] for x in runs)
        ),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_avg_1min_at_end": os.getloadavg()[0],
            "jax": jax.__version__,
            "device": jax.devices()[0].device_kind,
        },
    }
    (args.out / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "table": table, "runs": runs}, indent=2, default=float) + "\n"
    )
    (args.out / f"{stem}.md").write_text(_markdown(meta, table))
    print(f"wrote {args.out / stem}.json/.md in {total_s:.0f} s")


#: Denoiser budgets of the denoised columns (see the module docstring).
DENOISE_BUDGET: dict[str, dict] = {
    "umvd": {"patch_size": 32, "batch_size": 4, "base_filters": 16, "window": 5},
    "n2v": {"patch_size": 32, "batch_size": 8, "base_filters": 16, "masked_fraction": 0.02},
}


def _denoise_periodic(
    images: np.ndarray, method: str, steps: int, budget: dict, *, seed: int
) -> np.ndarray:
    """Denoise a periodic series ``(t, y, x)`` via its 3x3 periodic tiling."""
    from operando.denoise import train_denoiser

    _, ny, nx = images.shape
    tiled = np.tile(images, (1, 3, 3))
    den = train_denoiser(
        tiled,
        method=method,
        key=seed,
        epochs=1,
        steps_per_epoch=steps,
        learning_rate=2e-3,
        **budget,
    )
    return den.predict(tiled)[:, ny : 2 * ny, nx : 2 * nx]


def _table(runs: list[dict], labels: list[str], realizations: int) -> list[dict]:
    rows = []
    for label in labels:
        row: dict = {"noise": label}
        for src in SOURCES:
            for prior in (True, False):
                sel = [
                    x
                    for x in runs
                    if x["noise"] == label
                    and x.get("data", "noisy") == src
                    and x["prior"] == prior
                    and x["realization"] < realizations
                ]
                tag = ("prior" if prior else "no_prior") + ("" if src == "noisy" else "_denoised")
                row[f"{tag}_n"] = len(sel)
                row[f"{tag}_converged"] = sum(x["status"] == "converged" for x in sel)
                for m in METRICS:
                    v = np.array([x.get(m, np.nan) for x in sel], dtype=float)
                    row[f"{tag}_{m}_mean"] = float(np.nanmean(v)) if v.size else None
                    row[f"{tag}_{m}_std"] = float(np.nanstd(v)) if v.size else None
        q = [x for x in runs if x["noise"] == label and "psnr_denoised" in x and x["prior"]]
        for k in ("psnr_noisy", "psnr_denoised", "ssim_noisy", "ssim_denoised"):
            row[k] = float(np.mean([x[k] for x in q])) if q else None
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
        "the measured snapshots it was fitted to (noisy or denoised; raw MSE of values in "
        "[0, 1]; the paper's Tables S3–S6 use another scale). mu/D RMSE on c in [0.1, 0.9]. "
        "Converged: fits that met the LM tolerance (the others hit max steps).",
        "",
        f"Machine: {meta['machine']['platform']}, {meta['machine']['cpu_count']} CPUs "
        f"(load {meta['machine']['load_avg_1min_at_end']:.1f} at the end), "
        f"JAX {meta['machine']['jax']} on {meta['machine'].get('device', 'cpu')}; "
        "sum of fit and denoising wall times "
        f"{meta.get('total_s_all_runs', meta['total_s']) / 60:.1f} min.",
        "",
        "## From the noisy data",
        "",
    ]
    lines += _rows(table, "", pm)
    if any(row.get("prior_denoised_n") for row in table):
        b = meta.get("denoise_budget") or {}
        lines += [
            "",
            f"## From the denoised data ({meta['denoise'].upper()})",
            "",
            f"Each noisy series denoised self-supervised by {meta['denoise'].upper()} "
            f"({meta['denoise_steps']} Adam steps, lr 2e-3 cosine, "
            f"{b.get('patch_size')}x{b.get('patch_size')} patches of the 3x3 periodic "
            f"tiling, batch {b.get('batch_size')}, U-Net depth 2 with {b.get('base_filters')} "
            "filters), clipped to [0.01, 0.99], then fitted like the noisy data. PSNR/SSIM: "
            "whole series vs the clean one, data range 1.",
            "",
        ]
        lines += _rows(table, "_denoised", pm, quality=True)
        lines += [
            "",
            "## Noisy vs denoised (with prior / without prior)",
            "",
            "| noise | mu RMSE noisy | mu RMSE denoised | D RMSE noisy | D RMSE denoised |",
            "|---|---|---|---|---|",
        ]
        for row in table:
            if not row.get("prior_denoised_n"):
                continue

            def two(tag: str, m: str, row: dict = row) -> str:
                a, b_ = row[f"prior{tag}_{m}_mean"], row[f"no_prior{tag}_{m}_mean"]
                return f"{a:.3g} / {b_:.3g}"

            lines.append(
                f"| {row['noise']} | {two('', 'mu_rmse')} | {two('_denoised', 'mu_rmse')} | "
                f"{two('', 'D_rmse')} | {two('_denoised', 'D_rmse')} |"
            )
    return "\n".join(lines) + "\n"


def _rows(table: list[dict], suffix: str, pm, *, quality: bool = False) -> list[str]:
    head = "| noise | "
    sep = "|---|"
    if quality:
        head += "PSNR noisy → denoised | SSIM noisy → denoised | "
        sep += "---|---|"
    head += (
        "final MSE (prior) | mu RMSE (prior) | D RMSE (prior) | conv. | "
        "final MSE (no prior) | mu RMSE (no prior) | D RMSE (no prior) | conv. |"
    )
    sep += "---|---|---|---|---|---|---|---|"
    lines = [head, sep]
    for row in table:
        if not row.get(f"prior{suffix}_n") and not row.get(f"no_prior{suffix}_n"):
            continue
        cells = [row["noise"]]
        if quality:
            cells += [
                f"{row['psnr_noisy']:.2f} → {row['psnr_denoised']:.2f} dB",
                f"{row['ssim_noisy']:.3f} → {row['ssim_denoised']:.3f}",
            ]
        for tag in ("prior", "no_prior"):
            cells += [pm(row, tag + suffix, m) for m in METRICS]
            cells.append(f"{row[f'{tag}{suffix}_converged']}/{row[f'{tag}{suffix}_n']}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    main()
