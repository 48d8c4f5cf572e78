"""Tiled prediction with overlapping context and seamless stitching.

Every input ``(c_in, y, x)`` is first padded by ``margin`` pixels of mirror reflection on
each side (for tiled *and* untiled prediction, so both see the same context at the image
border). A tile is a ``(tile + 2 margin)``-wide window of the padded image starting at a
multiple of ``tile``; only its central ``tile x tile`` block is kept. When ``margin`` is at
least the network's receptive-field radius, the kept block does not depend on where the
tile ends, so tiled and untiled predictions agree up to floating-point reordering; and
since ``tile`` and ``margin`` are multiples of ``2**depth``, the pooling grid is the same
in every tile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["predict_tiled"]


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def predict_tiled(
    apply: Callable[[np.ndarray], np.ndarray],
    inputs: Callable[[int], np.ndarray],
    n_items: int,
    out_channels: int,
    shape: tuple[int, int],
    *,
    tile: int | None,
    margin: int,
    multiple: int,
    batch_size: int,
) -> np.ndarray:
    """Predict ``n_items`` images through ``apply`` tile by tile.

    Parameters
    ----------
    apply
        Maps a batch ``(b, c_in, h, w)`` (float32) to ``(b, out_channels, h, w)``.
    inputs
        ``inputs(i)`` returns item ``i`` as ``(c_in, y, x)``.
    n_items, out_channels, shape
        Number of items, output channels and the ``(y, x)`` size of every item.
    tile
        Side of the kept block of each tile (rounded up to ``multiple``); ``None`` or a
        value covering the image: one tile per image (untiled).
    margin
        Context on each side (rounded up to ``multiple``).
    multiple
        ``2**depth`` of the network.
    batch_size
        Tiles per call of ``apply``; the last batch is zero-padded so that ``apply``
        always sees the same shape (one compilation).

    Returns
    -------
    numpy.ndarray
        ``(n_items, out_channels, y, x)`` float32.
    """
    h, w = shape
    margin = _round_up(margin, multiple)
    if tile is None or tile >= max(h, w):
        th, tw = _round_up(h, multiple), _round_up(w, multiple)
        ny = nx = 1
    else:
        th = tw = _round_up(max(tile, multiple), multiple)
        ny, nx = -(-h // th), -(-w // tw)
    full_h, full_w = ny * th + 2 * margin, nx * tw + 2 * margin
    out = np.zeros((n_items, out_channels, h, w), dtype=np.float32)

    def tasks() -> Iterator[tuple[int, int, int, np.ndarray]]:
        for i in range(n_items):
            x = np.asarray(inputs(i), dtype=np.float32)
            xp = _reflect_pad(x, margin, full_h - h - margin, full_w - w - margin)
            for iy in range(ny):
                for ix in range(nx):
                    y0, x0 = iy * th, ix * tw
                    yield i, y0, x0, xp[:, y0 : y0 + th + 2 * margin, x0 : x0 + tw + 2 * margin]

    batch: list[tuple[int, int, int, np.ndarray]] = []

    def flush() -> None:
        arrs = np.stack([b[3] for b in batch])
        if len(batch) < batch_size:
            pad = np.zeros((batch_size - len(batch), *arrs.shape[1:]), dtype=np.float32)
            arrs = np.concatenate([arrs, pad])
        pred = np.asarray(apply(arrs))
        for (i, y0, x0, _), p in zip(batch, pred, strict=False):
            core = p[:, margin : margin + th, margin : margin + tw]
            hh, ww = min(th, h - y0), min(tw, w - x0)
            out[i, :, y0 : y0 + hh, x0 : x0 + ww] = core[:, :hh, :ww]
        batch.clear()

    for task in tasks():
        batch.append(task)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return out


def _reflect_pad(x: np.ndarray, before: int, after_y: int, after_x: int) -> np.ndarray:
    """Mirror padding (NumPy ``reflect``); falls back to ``symmetric`` for 1-pixel sides."""
    mode = "reflect" if min(x.shape[-2:]) > 1 else "symmetric"
    return np.pad(x, ((0, 0), (before, after_y), (before, after_x)), mode=mode)
