"""``operando denoise``: self-supervised denoising of a dataset (N2V, N2V2, structN2V, UMVD).

Registered by the CLI root as::

    app.command("denoise")(denoise_command)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ._common import (
    ClusterConfigOpt,
    ClusterOpt,
    SchedulerOpt,
    console,
    err_console,
)

__all__ = ["denoise_command"]


def denoise_command(
    input: Annotated[str, typer.Argument(help="Noisy dataset file (or FILE.h5:/path).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output dataset file (.nc).")],
    method: Annotated[
        str,
        typer.Option(
            "--method",
            "-m",
            help="n2v | n2v2 | structn2v (images; structn2v for line-correlated noise) "
            "or umvd (videos; best for impulse noise).",
        ),
    ] = "n2v",
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs.")] = 100,
    patch: Annotated[int, typer.Option("--patch", help="Training patch side (pixels).")] = 64,
    ensemble: Annotated[
        int, typer.Option("--ensemble", help="Number of bootstrap models (uncertainty if >= 2).")
    ] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    model_out: Annotated[
        Path | None, typer.Option("--model-out", help="Save the trained model to this directory.")
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model", help="Apply a saved model (no training); training options ignored."
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Patches per step (default 16; UMVD 4).")
    ] = None,
    steps_per_epoch: Annotated[
        int | None,
        typer.Option("--steps-per-epoch", help="Default: one pass over non-overlapping patches."),
    ] = None,
    learning_rate: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 1e-3,
    filters: Annotated[
        int, typer.Option("--filters", help="U-Net first-layer filters (N2V default 32).")
    ] = 32,
    masked_fraction: Annotated[
        float, typer.Option("--masked-fraction", help="N2V masked pixels per patch (0.2 %).")
    ] = 0.002,
    window: Annotated[int, typer.Option("--window", help="UMVD frames (odd: 5 or 7).")] = 5,
    struct_span: Annotated[int, typer.Option("--struct-span", help="structN2V mask length.")] = 7,
    struct_orientation: Annotated[
        str, typer.Option("--struct-orientation", help="horizontal | vertical.")
    ] = "horizontal",
    tile: Annotated[
        int | None, typer.Option("--tile", help="Predict in tiles of this side (pixels).")
    ] = None,
    tta: Annotated[bool, typer.Option("--tta", help="Test-time flip/rotation averaging.")] = False,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint-dir", help="Checkpoint here; rerun to resume an interrupted run."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Train ensemble members as parallel jobs on N worker processes (--ensemble "
            ">= 2; without --workers/--scheduler/--cluster members train one after another "
            "in this process). Finished members are kept in CHECKPOINT_DIR/ensemble-jobs.",
        ),
    ] = None,
    scheduler: SchedulerOpt = None,
    cluster: ClusterOpt = None,
    cluster_config: ClusterConfigOpt = None,
) -> None:
    """Denoise a dataset with a self-supervised network trained on the noisy data itself.

    Writes OUT (the denoised images; for --ensemble >= 2 also the per-pixel ensemble
    spread as variable 'uncertainty'; ground truth kept) and OUT.summary.json (training
    time, final loss and, when the input carries clean truth, PSNR/SSIM before and after).
    """
    from ..data import add_provenance, get_truth
    from ..denoise import load_denoiser, train_denoiser
    from ..io import read_dataset, write_dataset, write_summary

    ds = read_dataset(input)
    images = ds["images"]
    params: dict[str, Any] = {"input": input, "out": str(out)}
    start = time.perf_counter()
    if model is not None:
        den = load_denoiser(model)
        arr, restore = _to_denoiser_layout(images, den.config.method, input)
        params.update({"model": str(model), "method": den.config.method})
        train_info: dict[str, Any] = {}
    else:
        arr, restore = _to_denoiser_layout(images, method, input)
        params.update(
            {
                "method": method,
                "epochs": epochs,
                "patch": patch,
                "ensemble": ensemble,
                "seed": seed,
                "batch_size": batch_size,
                "steps_per_epoch": steps_per_epoch,
                "learning_rate": learning_rate,
                "filters": filters,
                "masked_fraction": masked_fraction,
                "window": window,
                "struct_span": struct_span,
                "struct_orientation": struct_orientation,
            }
        )
        parallel = ensemble >= 2 and any(
            v is not None for v in (workers, scheduler, cluster, cluster_config)
        )
        if parallel:
            den = _train_ensemble_jobs(
                arr, method, seed, epochs, patch, batch_size, steps_per_epoch, learning_rate,
                filters, masked_fraction, ensemble, window, struct_span, struct_orientation,
                checkpoint_dir, (workers, scheduler, cluster, cluster_config),
            )  # fmt: skip
            params["executor"] = "jobs"
        else:
            with _TrainingBar(f"denoise {method}") as bar:
                den = train_denoiser(
                    arr,
                    method=method,
                    key=seed,
                    epochs=epochs,
                    patch_size=patch,
                    batch_size=batch_size,
                    steps_per_epoch=steps_per_epoch,
                    learning_rate=learning_rate,
                    base_filters=filters,
                    masked_fraction=masked_fraction,
                    ensemble=ensemble,
                    window=window,
                    struct_span=struct_span,
                    struct_orientation=struct_orientation,
                    callback=bar.update,
                    checkpoint_dir=checkpoint_dir,
                )
        train_info = {
            "training_time_s": den.training["time_s"],
            "steps": den.training["steps"],
            "final_loss": den.training["final_loss"],
        }
        if model_out is not None:
            den.save(model_out)
            params["model_out"] = str(model_out)
    t_pred = time.perf_counter()
    uncertainty = None
    if den.ensemble_size >= 2:
        pred, uncertainty = den.predict_with_uncertainty(arr, tile=tile, tta=tta)
    else:
        pred = den.predict(arr, tile=tile, tta=tta)
    predict_time = time.perf_counter() - t_pred

    out_ds = ds.copy()
    out_ds["images"] = (images.dims, restore(pred))
    out_ds["images"].attrs.update(images.attrs)
    if uncertainty is not None:
        out_ds["uncertainty"] = (images.dims, restore(uncertainty))
        out_ds["uncertainty"].attrs["description"] = (
            f"standard deviation over the {den.ensemble_size} ensemble members' predictions"
        )
    out_ds = add_provenance(
        out_ds, "denoise", method=den.config.method, config=den.config.to_dict(), **train_info
    )
    write_dataset(out_ds, out)

    results: dict[str, Any] = {
        "output": str(out),
        "method": den.config.method,
        "ensemble": den.ensemble_size,
        **train_info,
        "predict_time_s": predict_time,
        "total_time_s": time.perf_counter() - start,
    }
    truth = get_truth(ds)
    if truth is not None and truth.clean is not None:
        results.update(_quality(np.asarray(truth.clean.values), images.values, out_ds))
    write_summary(
        Path(f"{out}.summary.json"),
        command="denoise",
        parameters=params,
        results=results,
        inputs=[input],
    )
    msg = f"wrote {out}"
    if "psnr_denoised" in results:
        msg += f" (PSNR {results['psnr_noisy']:.2f} -> {results['psnr_denoised']:.2f} dB)"
    console.print(msg)


def _train_ensemble_jobs(
    arr: np.ndarray,
    method: str,
    seed: int,
    epochs: int,
    patch: int,
    batch_size: int | None,
    steps_per_epoch: int | None,
    learning_rate: float,
    filters: int,
    masked_fraction: float,
    ensemble: int,
    window: int,
    struct_span: int,
    struct_orientation: str,
    checkpoint_dir: Path | None,
    parallel: tuple,
) -> Any:
    """Ensemble members as jobs of the shared executor (one member per job)."""
    from ..pipelines._uq import train_denoiser_ensemble
    from ._common import executor_from_options, print_dashboard, progress

    cfg = executor_from_options(*parallel).resolved()
    store = None if checkpoint_dir is None else Path(checkpoint_dir) / "ensemble-jobs"
    with progress(f"ensemble members ({cfg.kind})") as update:
        return train_denoiser_ensemble(
            arr, ensemble=ensemble, key=seed, executor=cfg, store=store, progress=update,
            on_cluster=print_dashboard, method=method, epochs=epochs, patch_size=patch,
            batch_size=batch_size, steps_per_epoch=steps_per_epoch,
            learning_rate=learning_rate, base_filters=filters,
            masked_fraction=masked_fraction, window=window, struct_span=struct_span,
            struct_orientation=struct_orientation,
        )  # fmt: skip


def _quality(clean: np.ndarray, noisy: np.ndarray, out_ds: Any) -> dict[str, float]:
    from ..metrics import psnr, ssim

    rng = float(clean.max() - clean.min()) or 1.0
    den = out_ds["images"].values
    return {
        "data_range": rng,
        "psnr_noisy": psnr(clean, noisy, data_range=rng),
        "psnr_denoised": psnr(clean, den, data_range=rng),
        "ssim_noisy": ssim(clean, noisy, data_range=rng),
        "ssim_denoised": ssim(clean, den, data_range=rng),
    }


def _to_denoiser_layout(
    images: Any, method: str | None, where: str
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The images as ``(y, x)``, ``(t, y, x)`` or ``(t, c, y, x)``, and the inverse map.

    For the N2V family all leading dims except ``channel`` are flattened into independent
    frames. UMVD needs exactly one video: dims ``(t, y, x)`` or ``(t, channel, y, x)``.
    """
    from ..errors import DataError

    dims = tuple(str(d) for d in images.dims)
    sizes = {str(k): int(v) for k, v in images.sizes.items()}
    lead = [d for d in dims[:-2] if d != "channel"]
    has_c = "channel" in dims
    if method == "umvd" and lead != ["t"]:
        raise DataError(
            f"UMVD denoises one video, dims (t, y, x) or (t, channel, y, x); got {dims}",
            where=where,
            fix="select one series (e.g. one realization) or use --method n2v",
        )
    src = [*lead, *(["channel"] if has_c else []), dims[-2], dims[-1]]
    v = np.transpose(np.asarray(images.values), [dims.index(d) for d in src])
    inner = v.shape[len(lead) :]
    n = int(np.prod([sizes[d] for d in lead])) if lead else 1
    if has_c or lead:
        v = v.reshape(n, *inner)

    def restore(pred: np.ndarray) -> np.ndarray:
        p = np.asarray(pred).reshape([sizes[d] for d in lead] + list(inner))
        return np.transpose(p, [src.index(d) for d in dims])

    return v, restore


class _TrainingBar:
    """Rich progress bar for training: loss, steps/s, elapsed and ETA (on stderr)."""

    def __init__(self, description: str):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4g}"),
            TextColumn("{task.fields[rate]:.1f} step/s"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err_console,
        )
        self._task = self._progress.add_task(description, total=None, loss=float("nan"), rate=0.0)
        self._times: list[tuple[float, int]] = []

    def __enter__(self) -> _TrainingBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, step: int, total: int, loss: float) -> None:
        now = time.perf_counter()
        self._times.append((now, step))
        self._times = self._times[-50:]
        (t0, s0), (t1, s1) = self._times[0], self._times[-1]
        rate = (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0
        self._progress.update(self._task, completed=step, total=total, loss=loss, rate=rate)
