"""Denoiser throughput on CPU: training steps/s and inference megapixels/s per method.

For each method the default architecture (U-Net depth 2, 32 first-layer filters; UMVD
with a 5-frame window and 16 features per frame) is trained on random data with the
default batch (16 patches of 64x64 for the N2V family, 4 windows of 5x64x64 for UMVD):

* compile time: wall time of the first step (tracing + XLA compilation), reported
  separately from the run time;
* training: steps/s and patch-pixels/s over the following ``--steps`` steps;
* inference: megapixels/s of ``Denoiser.predict`` on ``--frames`` frames of
  ``--size`` x ``--size`` (second call, after its compilation), untiled and with
  256-pixel tiles.

Run: ``.venv/bin/python benchmarks/bench_denoise_throughput.py [--steps 20]``.
Writes ``benchmarks/results/denoise_throughput.json``. Numbers depend on the machine and
its load; the JSON records the platform and the CPU count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

from operando.config import enable_x64
from operando.denoise import METHODS, train_denoiser


def bench(method: str, steps: int, size: int, frames: int) -> dict:
    rng = np.random.default_rng(0)
    n_train = 8
    data = rng.normal(size=(n_train, 128, 128))
    stamps: list[float] = []
    t0 = time.perf_counter()
    den = train_denoiser(
        data,
        method=method,
        key=0,
        epochs=1,
        steps_per_epoch=steps + 1,
        callback=lambda s, t, loss: stamps.append(time.perf_counter()),
    )
    compile_s = stamps[0] - t0
    run_s = stamps[-1] - stamps[0]
    cfg = den.config
    px_per_step = cfg.batch_size * cfg.patch_size**2
    test = rng.normal(size=(frames, size, size))
    out: dict = {
        "method": method,
        "batch_size": cfg.batch_size,
        "patch_size": cfg.patch_size,
        "base_filters": cfg.base_filters,
        "window": cfg.window if method == "umvd" else None,
        "compile_s": compile_s,
        "train_steps": steps,
        "train_steps_per_s": steps / run_s,
        "train_megapixels_per_s": steps * px_per_step / run_s / 1e6,
    }
    for label, tile in (("untiled", None), ("tiled256", 256)):
        den.predict(test, tile=tile)  # compile
        t = time.perf_counter()
        den.predict(test, tile=tile)
        dt = time.perf_counter() - t
        out[f"predict_{label}_s"] = dt
        out[f"predict_{label}_megapixels_per_s"] = test.size / dt / 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--out", default="benchmarks/results/denoise_throughput.json")
    args = ap.parse_args()
    enable_x64()  # as the CLI does: the networks must stay float32 regardless
    results = []
    for m in args.methods:
        r = bench(m, args.steps, args.size, args.frames)
        print(json.dumps(r), flush=True)
        results.append(r)
    record = {
        "benchmark": "denoise_throughput",
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_end": os.getloadavg()[0],
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "settings": vars(args),
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
