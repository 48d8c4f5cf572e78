"""N2V on BSD68 (Gaussian noise, sigma = 25/255), self-supervised on the noisy test images.

The 68 grey-level BSD68 photographs (``../shared/data/bsd68/*.png``; portrait images are
transposed so all are 321x481) are scaled to [0, 1] and corrupted with Gaussian noise of
standard deviation 25/255 (seed 0, no clipping). An N2V model with the paper's defaults
(U-Net depth 2, 32 first-layer filters, 64x64 patches, 0.2 % masked pixels, 11x11
replacement window, flips/rotations, Adam with lr 1e-3 and cosine decay, batch 16) is
trained on the noisy images themselves, then applied to them. Reported: the mean of the
per-image PSNRs (data range 1) of the noisy and denoised images, the training/prediction
wall times and the step budget.

The published N2V result on BSD68 (Krull et al. 2019, trained on BSD400 for hours on a
GPU) is about 27.7 dB; on 2 CPU cores we can only afford a short run, so expect less.

Run: ``.venv/bin/python benchmarks/bench_bsd68_n2v.py [--steps 300] [--data DIR]``.
Writes ``benchmarks/results/denoise_bsd68_n2v.json``; exits with a message when the data
folder is absent.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

from operando.config import enable_x64
from operando.denoise import train_denoiser
from operando.metrics import psnr

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bsd68"
REFERENCE_DB = 27.71  # Krull et al. 2019, Table 1 (N2V, BSD68, sigma 25)


def load(folder: Path) -> np.ndarray:
    from skimage.io import imread

    files = sorted(glob.glob(str(folder / "*.png")))
    imgs = []
    for f in files:
        im = imread(f).astype(np.float64) / 255.0
        if im.ndim == 3:
            im = im[..., :3].mean(axis=-1)
        imgs.append(im.T if im.shape[0] > im.shape[1] else im)
    return np.stack(imgs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--steps", type=int, default=300, help="training steps (the budget)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/denoise_bsd68_n2v.json")
    args = ap.parse_args()
    if not args.data.is_dir() or not glob.glob(str(args.data / "*.png")):
        print(f"BSD68 data not found in {args.data}; skipping (pass --data DIR)")
        sys.exit(0)
    enable_x64()
    clean = load(args.data)
    rng = np.random.default_rng(args.seed)
    noisy = clean + rng.normal(0, 25 / 255, clean.shape)
    print(f"{len(clean)} images {clean.shape[1:]}, training {args.steps} steps ...", flush=True)
    last = [time.perf_counter()]

    def report(step: int, total: int, loss: float) -> None:
        if step % 100 == 0 or step == total:
            now = time.perf_counter()
            print(f"  step {step}/{total} loss {loss:.4f} ({now - last[0]:.1f} s)", flush=True)
            last[0] = now

    t0 = time.perf_counter()
    den = train_denoiser(
        noisy,
        method="n2v",
        key=args.seed,
        epochs=1,
        steps_per_epoch=args.steps,
        batch_size=args.batch,
        learning_rate=args.lr,
        callback=report,
    )
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    pred = den.predict(noisy)
    predict_s = time.perf_counter() - t1
    p_noisy = [psnr(c, n, data_range=1.0) for c, n in zip(clean, noisy, strict=True)]
    p_den = [psnr(c, d, data_range=1.0) for c, d in zip(clean, pred, strict=True)]
    record = {
        "benchmark": "bsd68_n2v",
        "images": len(clean),
        "noise": f"gaussian sigma=25/255, seed {args.seed}, no clipping",
        "training": {
            "steps": args.steps,
            "batch_size": args.batch,
            "patch_size": den.config.patch_size,
            "learning_rate": args.lr,
            "lr_schedule": den.config.lr_schedule,
            "base_filters": den.config.base_filters,
            "depth": den.config.depth,
            "patches_seen": args.steps * args.batch,
            "final_loss": den.training["final_loss"],
        },
        "psnr_noisy_db": float(np.mean(p_noisy)),
        "psnr_denoised_db": float(np.mean(p_den)),
        "reference_n2v_db": REFERENCE_DB,
        "train_wall_s": train_s,
        "predict_wall_s": predict_s,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "device": f"{jax.devices()[0]} ({jax.devices()[0].device_kind})",
    }
    print(json.dumps(record, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
