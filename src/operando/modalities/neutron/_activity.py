"""Electrode activity from differential attenuation (seed 000 Fig. 5e, Methods, S2.4).

* At the last frame of each half-cycle, pixels of an electrode whose ``|ΔΣ|`` exceeds the
  Otsu threshold of that electrode's ``|ΔΣ|`` values are *active*; the active-area fraction
  is their share of the electrode's valid pixels.
* The *active window* is the run of rows (cross-sections at one depth ``y``) in which at
  least 20 % of the pixels are active; its ends are where the row fraction falls below 20 %
  (the green lines of Fig. 5). The longest such run is reported.
* Sequestered lithium: rows of the anode whose attenuation rose between two states (e.g. the
  pristine start and the end of the first discharge), found the same way on signed ``ΔΣ``.
* Dynamic variability: the mean 3x3x3 local standard deviation (:func:`operando.metrics.
  local_std`) of the differential series, per half-cycle (Fig. 5b).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ...errors import DataError, ParameterError
from ...metrics import local_std
from ._cycles import HalfCycle

__all__ = [
    "ElectrodeActivity",
    "Sequestration",
    "active_window",
    "dynamic_variability",
    "electrode_activity",
    "otsu_threshold",
    "region_mask",
    "sequestered_region",
]


def otsu_threshold(values: Any) -> float:
    """Otsu's threshold (maximum between-class variance) of the finite values, 256 bins."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2 or v.min() == v.max():
        raise DataError(
            f"cannot threshold {v.size} value(s) with a range of "
            f"{0.0 if v.size == 0 else float(v.max() - v.min())}",
            where="otsu_threshold",
            fix="check the electrode region (empty or constant)",
        )
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(v, nbins=256))


def region_mask(
    shape: tuple[int, int], rows: tuple[int, int], valid: Any | None = None
) -> np.ndarray:
    """Boolean ``(y, x)`` mask of rows ``rows[0] .. rows[1]-1`` (and ``valid``)."""
    ny, nx = shape
    a, b = int(rows[0]), int(rows[1])
    if not 0 <= a < b <= ny:
        raise ParameterError(
            f"rows {a}:{b} outside the frame's 0:{ny}",
            where="region",
            fix="give y-ranges inside the (cropped) frame",
        )
    m = np.zeros((ny, nx), dtype=bool)
    m[a:b] = True
    if valid is not None:
        m &= np.asarray(valid, dtype=bool)
    return m


def active_window(row_fraction: Any, *, level: float = 0.2) -> tuple[int, int] | None:
    """Longest run of rows with ``row_fraction >= level`` as ``(start, stop)``; None if none.

    NaN rows (outside the region) break runs.
    """
    f = np.asarray(row_fraction, dtype=np.float64)
    on = np.isfinite(f) & (f >= level)
    if not on.any():
        return None
    lab, n = ndi.label(on)
    sizes = ndi.sum(on, lab, index=np.arange(1, n + 1))
    k = int(np.argmax(sizes)) + 1
    rows = np.flatnonzero(lab == k)
    return int(rows[0]), int(rows[-1]) + 1


def _row_fraction(active: np.ndarray, mask: np.ndarray) -> np.ndarray:
    n = mask.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = (active & mask).sum(axis=1) / n
    return np.where(n > 0, f, np.nan)


@dataclass(frozen=True)
class ElectrodeActivity:
    """Activity of one electrode in one half-cycle."""

    half_cycle: HalfCycle
    electrode: str
    threshold: float
    active_fraction: float
    window: tuple[int, int] | None
    row_fraction: np.ndarray = field(repr=False)
    active: np.ndarray = field(repr=False)

    def as_row(self) -> dict[str, Any]:
        """A flat record (CSV row)."""
        w = self.window
        return {
            "half_cycle": self.half_cycle.label,
            "kind": self.half_cycle.kind,
            "first_frame": self.half_cycle.start,
            "last_frame": self.half_cycle.last,
            "electrode": self.electrode,
            "threshold": self.threshold,
            "active_fraction": self.active_fraction,
            "window_start_row": "" if w is None else w[0],
            "window_stop_row": "" if w is None else w[1],
        }


def electrode_activity(
    delta_sigma: Any,
    half_cycles: Sequence[HalfCycle],
    regions: Mapping[str, Any],
    *,
    min_threshold: float = 0.0,
    window_level: float = 0.2,
) -> list[ElectrodeActivity]:
    """Active-area fractions and windows per half-cycle and electrode.

    Parameters
    ----------
    delta_sigma
        ``(t, y, x)`` ``ΔΣ`` relative to each half-cycle's first frame
        (:func:`delta_attenuation`); NaN pixels are ignored.
    half_cycles
        The half-cycles; the last frame of each is thresholded.
    regions
        Electrode name -> boolean ``(y, x)`` mask (see :func:`region_mask`).
    min_threshold
        Floor on the Otsu threshold of ``|ΔΣ|`` (1/cm): a half-cycle in which nothing
        changed is not split into two noise classes. 0 = pure Otsu.
    window_level
        Row fraction that bounds the active window (0.2 in seed 000).
    """
    d = np.asarray(delta_sigma, dtype=np.float64)
    out: list[ElectrodeActivity] = []
    for h in half_cycles:
        last = np.abs(d[h.last])
        for name, m in regions.items():
            mask = np.asarray(m, dtype=bool) & np.isfinite(last)
            if mask.shape != last.shape:
                raise DataError(
                    f"region mask {mask.shape} vs frame {last.shape}", where=f"region '{name}'"
                )
            if mask.sum() < 2:
                raise DataError(
                    f"region '{name}' has {int(mask.sum())} valid pixel(s)",
                    where=f"region '{name}'",
                    fix="check its rows against the cell (valid) region",
                )
            vals = last[mask]
            thr = otsu_threshold(vals) if vals.max() > vals.min() else float(vals.max())
            thr = max(thr, float(min_threshold))
            active = (last > thr) & mask
            rf = _row_fraction(active, mask)
            out.append(
                ElectrodeActivity(
                    half_cycle=h,
                    electrode=name,
                    threshold=thr,
                    active_fraction=float(active.sum() / mask.sum()),
                    window=active_window(rf, level=window_level),
                    row_fraction=rf,
                    active=active,
                )
            )
    return out


@dataclass(frozen=True)
class Sequestration:
    """Rows of a region whose attenuation rose between a reference and a later frame."""

    reference_frame: int
    frame: int
    threshold: float
    rows: tuple[int, int] | None
    profile: np.ndarray = field(repr=False)
    row_fraction: np.ndarray = field(repr=False)


def sequestered_region(
    sigma: Any,
    region: Any,
    *,
    reference_frame: int,
    frame: int,
    level: float = 0.5,
    min_threshold: float = 0.0,
) -> Sequestration:
    """Locate lithium kept in an electrode: rows where ``Σ[frame] - Σ[reference]`` is high.

    Pixels of ``region`` whose signed change exceeds the Otsu threshold (floored at
    ``min_threshold``) are "gained"; the longest run of rows with at least ``level`` of their
    pixels gained is the sequestered region ``(start, stop)``. With ``reference_frame`` the
    pristine start and ``frame`` the end of the first discharge this is the lithium lost to
    the first cycle (seed 000 Fig. 5d/f).
    """
    s = np.asarray(sigma, dtype=np.float64)
    d = s[frame] - s[reference_frame]
    m = np.asarray(region, dtype=bool) & np.isfinite(d)
    if m.sum() < 2:
        raise DataError("region has no valid pixels", where="sequestered_region")
    thr = max(otsu_threshold(d[m]), float(min_threshold))
    gained = (d > thr) & m
    rf = _row_fraction(gained, m)
    n = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = np.where(n > 0, np.where(m, d, 0.0).sum(axis=1) / n, np.nan)
    return Sequestration(
        reference_frame=int(reference_frame),
        frame=int(frame),
        threshold=thr,
        rows=active_window(rf, level=level),
        profile=prof,
        row_fraction=rf,
    )


def dynamic_variability(
    delta_sigma: Any,
    half_cycles: Sequence[HalfCycle],
    valid: Any,
    *,
    size: int = 3,
) -> float:
    """Mean 3x3x3 local standard deviation of ``ΔΣ`` inside ``valid`` (seed 000 Fig. 5b).

    Computed per half-cycle (windows do not straddle the reference change) over pixels whose
    in-plane window lies entirely inside ``valid``; the mean over all such values.
    """
    d = np.asarray(delta_sigma, dtype=np.float64)
    v = np.asarray(valid, dtype=bool)
    inner = ndi.binary_erosion(v, structure=np.ones((size, size)), border_value=1)
    if not inner.any():
        raise DataError(
            "no pixel has a full window inside the valid region", where="dynamic_variability"
        )
    total = 0.0
    count = 0
    for h in half_cycles:
        block = d[h.start : h.stop]
        if block.shape[0] < 1:
            continue
        fill = np.where(np.isfinite(block), block, 0.0)
        ls = local_std(fill, size=(min(size, 2 * (block.shape[0] // 2) + 1), size, size))
        vals = ls[:, inner]
        total += float(vals.sum())
        count += vals.size
    return total / count
