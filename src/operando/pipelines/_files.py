"""File-level workflows shared by the CLI: corrupt a dataset, compare two datasets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..data import add_provenance, get_truth
from ..errors import DataError
from ..io import file_sha256, read_dataset, split_spec, write_dataset, write_json, write_summary

__all__ = ["compare_files", "corrupt_file", "summary_path_for"]


def summary_path_for(out: Path) -> Path:
    """``DIR/summary.json`` for a directory output, ``FILE.summary.json`` for a file."""
    return (
        out / "summary.json"
        if (out.is_dir() or not out.suffix)
        else out.with_name(out.name + ".summary.json")
    )


def corrupt_file(
    input: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    noise: str,
    seed: int = 0,
    clip: bool = True,
) -> dict[str, Any]:
    """Corrupt a dataset file with a noise model and write it (with truth) to ``out``.

    The clean input becomes the output's ``truth_images`` (or, if the input already carries
    clean truth, that is kept). Returns the summary record written beside ``out``.
    """
    import jax

    from .. import metrics
    from .. import noise as noise_mod

    spec = noise_mod.parse_noise_spec(noise)  # fail before reading anything
    out = Path(out)
    ds = read_dataset(input)
    clean = np.asarray(ds["images"].values)
    noisy = np.asarray(
        noise_mod.apply_noise(
            jax.random.PRNGKey(seed), clean, spec, clip=(0.01, 0.99) if clip else None
        )
    )
    res = ds.copy()
    truth = get_truth(ds)
    reference = clean if truth is None or truth.clean is None else np.asarray(truth.clean.values)
    res["images"] = (ds["images"].dims, noisy)
    res["truth_images"] = (ds["images"].dims, reference)
    file_part, _ = split_spec(input)
    res = add_provenance(
        res,
        "corrupt",
        noise=str(spec),
        seed=seed,
        clip=[0.01, 0.99] if clip else None,
        input=os.fspath(input),
        input_sha256=file_sha256(file_part),
    )
    write_dataset(res, out)
    data_range = float(reference.max() - reference.min())
    figures = metrics.compare(_frames(reference), _frames(noisy), data_range=data_range)
    results = {"noise": str(spec), **figures}
    write_summary(
        summary_path_for(out),
        command="operando corrupt",
        parameters={"noise": str(spec), "seed": seed, "clip": clip, "out": os.fspath(out)},
        results=results,
        inputs=[input],
    )
    return {"results": results}


def compare_files(
    reference: str | os.PathLike[str],
    other: str | os.PathLike[str],
    *,
    data_range: float | None = None,
    out: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Compare the ``images`` of two dataset files; optionally write the figures as JSON."""
    from .. import metrics

    ref = read_dataset(reference)
    oth = read_dataset(other)
    a = np.asarray(ref["images"].values)
    b = np.asarray(oth["images"].values)
    if a.shape != b.shape:
        raise DataError(
            f"image shapes differ: reference {a.shape} vs other {b.shape}",
            where=f"{reference} / {other}",
            fix="compare datasets with the same dims and sizes (crop or select frames first)",
        )
    figures = metrics.compare(_frames(a), _frames(b), data_range=data_range)
    record = {
        "reference": os.fspath(reference),
        "other": os.fspath(other),
        "results": figures,
    }
    if out is not None:
        write_json(record, out)
    return record


def _frames(x: np.ndarray) -> np.ndarray:
    """Flatten leading dims to one frame axis: (..., y, x) -> (n, y, x)."""
    return x.reshape((-1, *x.shape[-2:])) if x.ndim > 2 else x
