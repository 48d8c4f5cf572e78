"""Enhancement workflows (seed 001): train, apply and evaluate InDI on tomography volumes.

Functions the CLI (``operando enhance``) and the ``operando run`` stage call:

* :func:`evaluate_outputs`: the metric table (PSNR, SSIM, SIFT congruent points and the
  unpaired-keypoint fraction, edge-spread FWHM in physical units, CNR) of several
  enhanced stacks against a reference stack;
* :func:`metrics_vs_steps`: InDI at several step counts ``N`` beside the bicubic and
  (optionally) regression-CNN baselines on the same slices;
* :func:`enhance_train`, :func:`enhance_apply`, :func:`enhance_evaluate`: the file-level
  workflows writing models, volumes, figures and ``summary.json``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .. import metrics
from ..data import add_provenance, make_dataset
from ..enhance import Enhancer, PairedData, load_enhancer, prepare_pairs, train_on_pairs
from ..errors import DataError
from ..io import atomic_path, read_dataset, write_dataset, write_json, write_summary

__all__ = [
    "enhance_apply",
    "enhance_evaluate",
    "enhance_train",
    "evaluate_outputs",
    "figure_crops",
    "figure_profiles",
    "metrics_vs_steps",
    "particle_mask",
    "read_volume",
]


def read_volume(spec: str | os.PathLike[str]) -> tuple[np.ndarray, float, str]:
    """Read a volume ``(z, y, x)`` from any operando-readable file; returns the array,
    the voxel size and its unit (from the dataset's ``pixel_size``/``pixel_unit``)."""
    ds = read_dataset(spec)
    arr = np.asarray(ds["images"].values, dtype=np.float64)
    if arr.ndim != 3:
        raise DataError(
            f"has shape {arr.shape}; a volume (z, y, x) is required",
            where=str(spec),
            fix="pass a 3D tomography volume (a stack of xy slices), not a single slice",
        )
    return arr, float(ds.attrs.get("pixel_size", 1.0)), str(ds.attrs.get("pixel_unit", "px"))


def particle_mask(reference: np.ndarray, *, dark_particles: bool = True) -> np.ndarray:
    """Particle mask of a reference stack by Otsu thresholding after a light Gaussian
    smoothing (particles darker than the matrix by default, as for SiO_x in seed 001)."""
    from skimage.filters import threshold_otsu

    sm = ndi.gaussian_filter(np.asarray(reference, np.float64), (0, 1.0, 1.0))
    thr = threshold_otsu(sm)
    return sm < thr if dark_particles else sm > thr


def evaluate_outputs(
    outputs: dict[str, np.ndarray],
    reference: np.ndarray,
    mask: np.ndarray,
    *,
    pixel_size: float,
    intensity_range: tuple[float, float],
    n_profiles: int = 100,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Metrics of each stack in ``outputs`` (``(n, y, x)``, reference grey values).

    PSNR and SSIM use ``data_range = hi - lo`` of ``intensity_range``; SIFT uses the same
    fixed range. ``congruent`` is summed over slices, ``unpaired_fraction`` pooled over
    slices; ``fwhm`` is the median of the per-slice median edge FWHM (``pixel_size``
    units) and ``fwhm_spread`` its standard deviation over the pooled profiles; CNR
    (pooled definition, :func:`operando.metrics.cnr`) between particles and matrix, each
    eroded by 2 pixels to leave out partial-volume edges. The reference itself is scored
    as ``"reference"``.
    """
    ref = np.asarray(reference, np.float64)
    m = np.asarray(mask, bool)
    lo, hi = intensity_range
    sig = np.stack([ndi.binary_erosion(s, iterations=2) for s in m])
    bg = np.stack([ndi.binary_erosion(~s, iterations=2) for s in m])
    table: dict[str, dict[str, float]] = {}
    for name, out in {"reference": ref, **outputs}.items():
        out = np.asarray(out, np.float64)
        if out.shape != ref.shape:
            raise DataError(f"{name} has shape {out.shape}, reference {ref.shape}", where=name)
        cong = kx = unpaired = 0
        fw, fw_all = [], []
        for i in range(ref.shape[0]):
            s = metrics.sift_congruent_points(ref[i], out[i], intensity_range=(lo, hi))
            cong += s["congruent"]
            kx += s["keypoints_x"]
            unpaired += s["unpaired_fraction"] * s["keypoints_x"]
            e = metrics.edge_fwhm(
                out[i], m[i], pixel_size=pixel_size, n_profiles=n_profiles, seed=seed + i
            )
            if e["n_profiles"]:
                fw.append(e["fwhm"])
                fw_all.append(e["fwhm_std"])
        table[name] = {
            "psnr": metrics.psnr(ref, out, data_range=hi - lo),
            "ssim": metrics.ssim(ref, out, data_range=hi - lo),
            "sift_congruent": int(cong),
            "sift_keypoints": int(kx),
            "sift_unpaired_fraction": float(unpaired / kx) if kx else float("nan"),
            "fwhm": float(np.median(fw)) if fw else float("nan"),
            "fwhm_spread": float(np.median(fw_all)) if fw_all else float("nan"),
            "cnr": metrics.cnr(out, sig, bg),
        }
    return table


def metrics_vs_steps(
    enhancer: Enhancer,
    lq_up_norm: np.ndarray,
    reference: np.ndarray,
    mask: np.ndarray,
    *,
    steps: tuple[int, ...] = (1, 2, 4, 8, 16),
    cnn: Enhancer | None = None,
    pixel_size: float,
    intensity_range: tuple[float, float] | None = None,
    n_profiles: int = 100,
    tile: int | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """InDI at every ``N`` in ``steps`` plus the baselines, on normalised up-sampled
    low-quality slices ``(n, y, x)`` against ``reference`` (grey values).

    Returns the metric table (rows ``"bicubic"``, ``"cnn"`` when given, ``"indi_N"`` and
    ``"reference"``) and the enhanced stacks (grey values).
    """
    norm = enhancer.config.norm
    ref = np.asarray(reference, np.float64)
    if intensity_range is None:
        intensity_range = tuple(float(v) for v in np.percentile(ref, [0.5, 99.5]))
    outs: dict[str, np.ndarray] = {"bicubic": norm.hq_inverse(lq_up_norm)}
    if cnn is not None:
        outs["cnn"] = cnn.config.norm.hq_inverse(
            cnn.restore_normalised(lq_up_norm, steps=1, tile=tile)
        )
    for n in steps:
        outs[f"indi_{n}"] = norm.hq_inverse(
            enhancer.restore_normalised(lq_up_norm, steps=n, tile=tile)
        )
    table = evaluate_outputs(
        outs,
        ref,
        mask,
        pixel_size=pixel_size,
        intensity_range=intensity_range,
        n_profiles=n_profiles,
    )
    return table, outs


def figure_crops(
    stacks: dict[str, np.ndarray], index: int, box: tuple[slice, slice], path: Path
) -> Path:
    """LQ / enhanced / reference crops side by side (one slice, common grey scale)."""
    from ._figures import image_panels, save_figure

    ims = [np.asarray(v[index])[box] for v in stacks.values()]
    lo, hi = np.percentile(ims[-1], [0.5, 99.5])
    fig = image_panels(ims, list(stacks), cmaps=["gray"] * len(ims), limits=[(lo, hi)] * len(ims))
    return save_figure(fig, path)


def figure_profiles(
    stacks: dict[str, np.ndarray],
    index: int,
    row: int,
    cols: slice,
    pixel_size: float,
    unit: str,
    path: Path,
) -> Path:
    """Grey-value line profiles along one row of one slice (seed 001, Fig. 3B)."""
    from matplotlib.figure import Figure

    from ._figures import save_figure

    fig = Figure(figsize=(6.4, 3.2))
    ax = fig.subplots()
    x = np.arange(cols.start, cols.stop) * pixel_size
    for name, v in stacks.items():
        ax.plot(x, np.asarray(v[index])[row, cols], label=name, lw=1.2)
    ax.set_xlabel(f"position ({unit})")
    ax.set_ylabel("grey value")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def enhance_train(
    lq: str | os.PathLike[str],
    hq: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    method: str = "indi",
    epochs: int = 20,
    seed: int = 0,
    register: str = "translation",
    offset: tuple[int, int, int] | None = None,
    callback: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """Train on the files ``lq``/``hq`` and save the model directory ``out`` (with
    ``summary.json``). Returns the summary's results."""
    lq_v, lq_px, _unit = read_volume(lq)
    hq_v, hq_px, _hq_unit = read_volume(hq)
    pairs = prepare_pairs(lq_v, hq_v, offset=offset, register=register)
    t0 = time.perf_counter()
    enh = train_on_pairs(
        pairs,
        key=seed,
        method=method,
        epochs=epochs,
        lq_voxel=lq_px,
        hq_voxel=hq_px,
        callback=callback,
        **options,
    )
    out = Path(out)
    enh.save(out)
    results = {
        "training_time_s": time.perf_counter() - t0,
        "final_loss": enh.config.training["final_loss"],
        "steps": enh.config.training["steps"],
        "registration": pairs.registration,
        "n_train_slices": len(pairs.train),
        "held_out_slices": [int(i) for i in pairs.test],
        "normalisation": pairs.norm.to_dict(),
    }
    write_summary(
        out / "summary.json",
        command="enhance train",
        parameters={
            "method": method,
            "epochs": epochs,
            "seed": seed,
            "register": register,
            "offset": offset,
            **{k: v for k, v in options.items()},
        },
        results=results,
        inputs=[lq, hq],
    )
    return results


def enhance_apply(
    volume: str | os.PathLike[str],
    model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    steps: int | None = None,
    tile: int | None = None,
    z_interpolate: bool = True,
    check_normalisation: bool = True,
) -> dict[str, Any]:
    """Enhance the volume file ``volume`` with the model directory ``model``; writes the
    enhanced dataset ``out`` (dims ``z, y, x``, half the voxel size) and
    ``OUT.summary.json`` with the slice-consistency report."""
    enh = load_enhancer(model)
    v, px, unit = read_volume(volume)
    t0 = time.perf_counter()
    res, report = enh.enhance_volume(
        v,
        steps=steps,
        tile=tile,
        z_interpolate=z_interpolate,
        check_normalisation=check_normalisation,
    )
    ds = make_dataset(res, dims=("z", "y", "x"), pixel_size=px / 2, pixel_unit=unit)
    ds = add_provenance(ds, "enhance", model=str(model), steps=steps or enh.config.steps)
    write_dataset(ds, out)
    results = {
        "time_s": time.perf_counter() - t0,
        "shape": list(res.shape),
        "slice_consistency": report,
    }
    write_summary(
        Path(str(out) + ".summary.json"),
        command="enhance apply",
        parameters={
            "model": str(model),
            "steps": steps or enh.config.steps,
            "tile": tile,
            "z_interpolate": z_interpolate,
        },
        results=results,
        inputs=[volume],
    )
    return results


def enhance_evaluate(
    lq: str | os.PathLike[str],
    hq: str | os.PathLike[str],
    model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    cnn: str | os.PathLike[str] | None = None,
    steps: tuple[int, ...] = (1, 2, 4, 8, 16),
    mask: str | os.PathLike[str] | None = None,
    n_profiles: int = 100,
) -> dict[str, Any]:
    """Evaluate a model on the held-out slices of a paired scan (the last ~10 % of the
    registered pairs, as in training); writes ``metrics.json``, ``metrics.md``,
    ``crops.png``, ``profiles.png`` and ``summary.json`` to the directory ``out``.

    ``mask``: a file with the particle mask on the high-quality grid (default: Otsu
    threshold of the high-quality reference)."""
    enh = load_enhancer(model)
    cnn_m = load_enhancer(cnn) if cnn is not None else None
    lq_v, _, unit = read_volume(lq)
    hq_v, hq_px, _ = read_volume(hq)
    reg = enh.config.training.get("registration", {}).get("method", "translation")
    pairs: PairedData = prepare_pairs(lq_v, hq_v, register=reg)
    # the pairs were normalised with ranges fitted on these files: map to the model's
    y = enh.config.norm.lq(pairs.norm.lq_inverse(pairs.lq_up[pairs.test]))
    ref = pairs.norm.hq_inverse(pairs.hq[pairs.test])
    if mask is not None:
        mv, _, _ = read_volume(mask)
        m = mv.astype(bool)[4:-4, 4:-4, 4:-4][pairs.test]
    else:
        m = particle_mask(ref)
    table, outs = metrics_vs_steps(
        enh, y, ref, m, steps=steps, cnn=cnn_m, pixel_size=hq_px, n_profiles=n_profiles
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(table, out / "metrics.json")
    with atomic_path(out / "metrics.md") as tmp:
        tmp.write_text(metrics_markdown(table, unit))
    n_best = enh.config.steps if enh.config.steps in steps else steps[-1]
    show = {"LQ (bicubic)": outs["bicubic"], f"InDI N={n_best}": outs[f"indi_{n_best}"], "HQ": ref}
    k = len(ref) // 2
    h, w = ref.shape[1:]
    box = (slice(0, min(h, 96)), slice(0, min(w, 96)))
    figure_crops(show, k, box, out / "crops.png")
    figure_profiles(show, k, h // 2, slice(0, w), hq_px, unit, out / "profiles.png")
    results = {
        "metrics": table,
        "held_out_slices": [int(i) for i in pairs.test],
        "unit": unit,
    }
    write_summary(
        out / "summary.json",
        command="enhance evaluate",
        parameters={
            "model": str(model),
            "cnn": None if cnn is None else str(cnn),
            "steps": list(steps),
            "n_profiles": n_profiles,
        },
        results=results,
        inputs=[lq, hq],
    )
    return results


def metrics_markdown(table: dict[str, dict[str, float]], unit: str) -> str:
    """The metric table as Markdown."""
    lines = [
        f"| method | PSNR (dB) | SSIM | SIFT congruent | unpaired kp. | FWHM ({unit}) | CNR |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in table.items():
        lines.append(
            f"| {name} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['sift_congruent']} | "
            f"{r['sift_unpaired_fraction']:.2f} | {r['fwhm']:.0f} ± {r['fwhm_spread']:.0f} | "
            f"{r['cnr']:.2f} |"
        )
    return "\n".join(lines) + "\n"
