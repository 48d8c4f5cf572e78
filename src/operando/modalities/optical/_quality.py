"""Segmentation quality against a reference label image (seed 000 Fig. 4c, S8).

Pixel overlap of the particle masks (Dice, IoU), object counts, object matching (a reference
particle is *detected* when one predicted particle covers it with IoU >= ``match_iou``),
missed particles split into small and large (below / above the reference median size) and
the log-normal size-distribution parameters of both segmentations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import DataError
from ._stats import fit_lognormal, particle_sizes

__all__ = ["dice_iou", "segmentation_quality"]


def dice_iou(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Dice ``2|A∩B|/(|A|+|B|)`` and IoU ``|A∩B|/|A∪B|`` of two masks (non-zero = object)."""
    a, b = np.asarray(pred) > 0, np.asarray(ref) > 0
    if a.shape != b.shape:
        raise DataError(
            f"segmentation {a.shape} and reference {b.shape} differ in shape",
            where="dice_iou",
            fix="compare label images of the same frame size",
        )
    inter = float((a & b).sum())
    tot = float(a.sum() + b.sum())
    union = float((a | b).sum())
    return (2 * inter / tot if tot else 1.0), (inter / union if union else 1.0)


def segmentation_quality(
    pred: np.ndarray, ref: np.ndarray, *, pixel_size: float = 1.0, match_iou: float = 0.5
) -> dict[str, Any]:
    """Compare a predicted label image with a reference (e.g. expert or synthetic truth).

    Returns
    -------
    dict
        ``dice``, ``iou``, ``n_detected`` (predicted objects), ``n_reference``,
        ``n_matched``, ``missed_small``, ``missed_large``, ``recall`` (matched/reference),
        ``size_fit`` and ``reference_size_fit`` (log-normal :class:`LogNormalFit` dicts in
        the units of ``pixel_size``).
    """
    from skimage.segmentation import relabel_sequential

    p = relabel_sequential(np.asarray(pred).astype(np.int64))[0]  # labels 1..N, no gaps
    r = relabel_sequential(np.asarray(ref).astype(np.int64))[0]
    dice, iou = dice_iou(p, r)
    n_ref, n_pred = int(r.max()), int(p.max())
    ref_area = np.bincount(r.ravel(), minlength=n_ref + 1)
    pred_area = np.bincount(p.ravel(), minlength=n_pred + 1)
    both = (r > 0) & (p > 0)
    pairs = np.bincount(
        r[both] * (n_pred + 1) + p[both], minlength=(n_ref + 1) * (n_pred + 1)
    ).reshape(n_ref + 1, n_pred + 1)
    matched = np.zeros(n_ref + 1, bool)
    for i in range(1, n_ref + 1):
        if pairs[i].max() == 0:
            continue
        j = int(pairs[i].argmax())
        inter = pairs[i, j]
        if inter / (ref_area[i] + pred_area[j] - inter) >= match_iou:
            matched[i] = True
    med = np.median(ref_area[1:]) if n_ref else 0.0
    missed = ~matched[1:]
    ps = particle_sizes(p, pixel_size=pixel_size)["size"]
    rs = particle_sizes(r, pixel_size=pixel_size)["size"]
    return {
        "dice": dice,
        "iou": iou,
        "n_detected": n_pred,
        "n_reference": n_ref,
        "n_matched": int(matched.sum()),
        "recall": float(matched.sum() / n_ref) if n_ref else float("nan"),
        "missed_small": int((missed & (ref_area[1:] < med)).sum()),
        "missed_large": int((missed & (ref_area[1:] >= med)).sum()),
        "size_fit": fit_lognormal(ps).to_dict() if ps.size >= 2 else None,
        "reference_size_fit": fit_lognormal(rs).to_dict() if rs.size >= 2 else None,
    }
