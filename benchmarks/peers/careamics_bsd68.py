"""Peer: CAREamics N2V on BSD68 with the same data and budget as ``bench_bsd68_n2v.py``.

Runs in its own environment (``bash benchmarks/peers/setup_careamics.sh``), never in
operando's. The noisy images are built exactly as in ``benchmarks/bench_bsd68_n2v.py``
(same files, order, transposition, ``default_rng(seed).normal(0, 25/255)``, no
clipping), and the model is trained self-supervised on them with CAREamics' own N2V
defaults (U-Net depth 2, 32 first-layer filters, 0.2 % masked pixels, Adam) for the same
number of steps and batch size, then applied with tiling. Reported: mean per-image PSNR
(data range 1), train and predict wall times, versions.

Run: ``.peers/careamics/bin/python benchmarks/peers/careamics_bsd68.py [--steps 300]``.
Writes ``benchmarks/results/peer_careamics_bsd68.json``.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "bsd68"


def load(folder: Path) -> np.ndarray:
    from skimage.io import imread

    imgs = []
    for f in sorted(glob.glob(str(folder / "*.png"))):
        im = imread(f).astype(np.float64) / 255.0
        if im.ndim == 3:
            im = im[..., :3].mean(axis=-1)
        imgs.append(im.T if im.shape[0] > im.shape[1] else im)
    return np.stack(imgs)


def psnr(clean: np.ndarray, x: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((clean - x) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/peer_careamics_bsd68.json")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"BSD68 data not found in {args.data}; skipping (pass --data DIR)")
        sys.exit(0)
    import careamics
    import torch
    from careamics import CAREamist
    from careamics.config import create_n2v_config

    torch.manual_seed(args.seed)
    clean = load(args.data)
    noisy = clean + np.random.default_rng(args.seed).normal(0, 25 / 255, clean.shape)
    # CAREamics counts training in epochs over the patches it extracts from the array
    # (161 batches of 16 for BSD68 at 64x64), and ``num_steps`` only caps an epoch: ask
    # for enough epochs of at most 150 batches to run exactly ``--steps`` steps.
    epochs = math.ceil(args.steps / 150)
    cfg = create_n2v_config(
        experiment_name="bsd68",
        data_type="array",
        axes="SYX",
        patch_size=[64, 64],
        batch_size=args.batch,
        num_epochs=epochs,
        num_steps=math.ceil(args.steps / epochs),
    )
    # the masking is otherwise unseeded (CAREamics wants a seed > 0)
    cfg.algorithm_config.n2v_config.seed = args.seed + 1
    with tempfile.TemporaryDirectory() as work:
        cam = CAREamist(cfg, work_dir=work, enable_progress_bar=False)
        t0 = time.perf_counter()
        cam.train(train_data=noisy.astype(np.float32))
        train_s = time.perf_counter() - t0
        steps_run = int(cam.trainer.global_step)
        t1 = time.perf_counter()
        pred = cam.predict(
            noisy.astype(np.float32), data_type="array", axes="SYX", tile_size=(128, 128),
            tile_overlap=(48, 48),
        )  # fmt: skip
        predict_s = time.perf_counter() - t1
    pred = pred[0] if isinstance(pred, tuple) else pred
    pred = np.concatenate([np.asarray(p).reshape(-1, *clean.shape[1:]) for p in pred])
    record = {
        "benchmark": "peer_careamics_bsd68",
        "images": len(clean),
        "noise": f"gaussian sigma=25/255, seed {args.seed}, no clipping",
        "training": {
            "steps": args.steps,
            "steps_run": steps_run,
            "epochs": epochs,
            "batch_size": args.batch,
            "patch_size": 64,
            "config": json.loads(cfg.model_dump_json()),
        },
        "psnr_noisy_db": float(np.mean([psnr(c, n) for c, n in zip(clean, noisy, strict=True)])),
        "psnr_denoised_db": float(np.mean([psnr(c, d) for c, d in zip(clean, pred, strict=True)])),
        "train_wall_s": train_s,
        "predict_wall_s": predict_s,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "careamics": careamics.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps({k: v for k, v in record.items() if k != "training"}, indent=2))
    print(f"optimizer steps run: {steps_run} (asked: {args.steps})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
