"""Figures written by pipelines (Matplotlib's object API: no pyplot state, no display)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..io import atomic_path

__all__ = ["image_panels", "save_figure"]


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Save a figure as PNG atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)


def image_panels(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    cmaps: Sequence[str] | None = None,
    limits: Sequence[tuple[float, float] | None] | None = None,
    suptitle: str | None = None,
    ncols: int | None = None,
) -> Figure:
    """A row (or grid) of images with colour bars."""
    n = len(images)
    ncols = ncols or n
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(3.2 * ncols, 3.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        if i >= n:
            ax.set_axis_off()
            continue
        lim = (limits or [None] * n)[i]
        im = ax.imshow(
            images[i],
            cmap=(cmaps or ["viridis"] * n)[i],
            vmin=None if lim is None else lim[0],
            vmax=None if lim is None else lim[1],
            interpolation="nearest",
        )
        ax.set_title(titles[i], fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig
