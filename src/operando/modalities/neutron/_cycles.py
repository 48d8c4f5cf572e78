"""Half-cycles of an operando series: from frame boundaries or an electrochemistry CSV."""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...errors import DataError, FileFormatError, ParameterError

__all__ = [
    "HalfCycle",
    "half_cycles_from_boundaries",
    "half_cycles_from_current",
    "read_electrochemistry_csv",
]

Kind = Literal["charge", "discharge"]


@dataclass(frozen=True)
class HalfCycle:
    """Frames ``start .. stop-1`` of one charge or discharge; ``index`` counts from 0."""

    index: int
    kind: Kind
    start: int
    stop: int

    @property
    def last(self) -> int:
        """The final frame (where activity is thresholded)."""
        return self.stop - 1

    @property
    def label(self) -> str:
        """E.g. ``"C1"`` (first charge) or ``"D2"`` (second discharge)."""
        return f"{'C' if self.kind == 'charge' else 'D'}{self.index // 2 + 1}"


def _other(kind: Kind) -> Kind:
    return "discharge" if kind == "charge" else "charge"


def half_cycles_from_boundaries(
    boundaries: Sequence[int], n_frames: int, *, first: Kind = "charge"
) -> list[HalfCycle]:
    """Half-cycles from their first frames, alternating charge/discharge.

    Parameters
    ----------
    boundaries
        Strictly increasing first-frame indices, e.g. ``[0, 6, 12, 18]``; a last value equal
        to ``n_frames`` marks the end, otherwise the last half-cycle runs to the end.
    n_frames
        Frames in the series.
    first
        Kind of the first half-cycle.
    """
    if first not in ("charge", "discharge"):
        raise ParameterError(
            f"first half-cycle kind {first!r}", where="--first", fix="use charge or discharge"
        )
    b = [int(v) for v in boundaries]
    if not b:
        raise ParameterError(
            "no half-cycle boundaries", where="half-cycles", fix="give first frames such as 0,6,12"
        )
    if b[-1] != n_frames:
        b.append(n_frames)
    if b[0] < 0 or any(y <= x for x, y in itertools.pairwise(b)) or b[-1] > n_frames:
        raise ParameterError(
            f"boundaries {list(boundaries)} are not strictly increasing within 0..{n_frames}",
            where="half-cycles",
            fix=f"give increasing frame indices below {n_frames}",
        )
    out: list[HalfCycle] = []
    kind = first
    for i, (a, c) in enumerate(itertools.pairwise(b)):
        if c - a < 2:
            raise ParameterError(
                f"half-cycle {i} has {c - a} frame(s); differential imaging needs >= 2",
                where="half-cycles",
                fix="merge it with a neighbour",
            )
        out.append(HalfCycle(i, kind, a, c))
        kind = _other(kind)
    return out


def half_cycles_from_current(
    time: Any,
    current: Any,
    frame_times: Any,
    *,
    rest_tolerance: float = 0.0,
    charge_sign: int = 1,
    min_frames: int = 2,
) -> list[HalfCycle]:
    """Half-cycles from the sign changes of the cell current.

    Samples with ``|I| <= rest_tolerance`` (rests, CV tails) keep the sign of the preceding
    sample. A half-cycle starts at the first frame taken at or after a sign change;
    half-cycles with fewer than ``min_frames`` frames are dropped.

    Parameters
    ----------
    time, current
        Electrochemistry record (same length, time increasing, any unit shared with
        ``frame_times``).
    frame_times
        Acquisition time of each frame, increasing.
    charge_sign
        ``+1`` if charging current is positive, else ``-1``.
    """
    tt = np.asarray(time, dtype=np.float64)
    ii = np.asarray(current, dtype=np.float64)
    ft = np.asarray(frame_times, dtype=np.float64)
    if tt.shape != ii.shape or tt.ndim != 1 or tt.size < 2:
        raise DataError(
            f"time {tt.shape} and current {ii.shape} must be equal-length 1D",
            where="electrochemistry",
        )
    if np.any(np.diff(tt) < 0) or np.any(np.diff(ft) < 0):
        raise DataError(
            "times are not increasing",
            where="electrochemistry / frame times",
            fix="sort the records by time",
        )
    sign = np.sign(ii) * np.where(np.abs(ii) > rest_tolerance, 1, 0)
    nz = np.flatnonzero(sign)
    if nz.size == 0:
        raise DataError(
            "current is zero (rest) throughout",
            where="electrochemistry",
            fix="lower rest_tolerance or check the current column",
        )
    # carry the last non-zero sign forward; leading rest samples take the first sign
    idx = np.maximum.accumulate(np.where(sign != 0, np.arange(sign.size), 0))
    idx[: nz[0]] = nz[0]
    sgn = sign[idx]
    change = np.flatnonzero(np.diff(sgn) != 0) + 1
    seg_start = np.concatenate([[tt[0]], tt[change]])
    seg_sign = np.concatenate([[sgn[0]], sgn[change]])
    # first frame at or after each segment start (the first segment starts at frame 0)
    first_frames = np.searchsorted(ft, seg_start, side="left")
    first_frames[0] = 0
    starts = [*list(first_frames), ft.size]
    out: list[HalfCycle] = []
    for a, b, s in zip(starts[:-1], starts[1:], seg_sign, strict=True):
        if b - a >= min_frames:
            kind: Kind = "charge" if s * charge_sign > 0 else "discharge"
            out.append(HalfCycle(len(out), kind, int(a), int(b)))
    if not out:
        raise DataError(
            "no half-cycle spans enough frames",
            where="electrochemistry",
            fix="check that the frame times and the record share a time origin",
        )
    # index charges/discharges so that labels C1, D1, ... count cycles
    fixed: list[HalfCycle] = []
    counts = {"charge": 0, "discharge": 0}
    for h in out:
        i = 2 * counts[h.kind] + (0 if h.kind == "charge" else 1)
        counts[h.kind] += 1
        fixed.append(HalfCycle(i, h.kind, h.start, h.stop))
    return fixed


_TIME_NAMES = ("time", "t", "time/s", "time_s", "test_time", "elapsed")
_CURRENT_NAMES = ("current", "i", "i/ma", "i/a", "current/ma", "current/a", "current_a")


def _pick(
    header: list[str], wanted: str | None, names: Sequence[str], word: str, where: str
) -> int:
    low = [h.strip().lower() for h in header]
    if wanted is not None:
        if wanted.strip().lower() in low:
            return low.index(wanted.strip().lower())
        raise FileFormatError(f"has no column '{wanted}'", where=where, fix=f"use one of {header}")
    for n in names:
        if n in low:
            return low.index(n)
    hits = [i for i, h in enumerate(low) if word in h]
    if len(hits) == 1:
        return hits[0]
    raise FileFormatError(
        f"cannot tell which column is the {word} ({header})",
        where=where,
        fix=f"name it '{word}' or pass the column name",
    )


def read_electrochemistry_csv(
    path: str | os.PathLike[str],
    *,
    time_column: str | None = None,
    current_column: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(time, current)`` from a CSV with a header row (comma, semicolon or tab).

    Columns are found by name (``time``, ``current``, ``I/mA``, ...) unless given.
    """
    p = Path(path)
    if not p.exists():
        raise FileFormatError("file does not exist", where=str(p), fix="check the path")
    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    except (csv.Error, IndexError) as e:
        raise FileFormatError(
            "is not a delimited text file", where=str(p), fix="write a CSV with a header row"
        ) from e
    rows = [r for r in csv.reader(text.splitlines(), dialect) if r and any(c.strip() for c in r)]
    if len(rows) < 3:
        raise FileFormatError("has fewer than two data rows", where=str(p))
    header = rows[0]
    it = _pick(header, time_column, _TIME_NAMES, "time", str(p))
    ic = _pick(header, current_column, _CURRENT_NAMES, "current", str(p))
    try:
        t = np.array([float(r[it]) for r in rows[1:]])
        c = np.array([float(r[ic]) for r in rows[1:]])
    except (ValueError, IndexError) as e:
        raise FileFormatError(
            f"has a non-numeric or missing value ({e})",
            where=str(p),
            fix="remove comment lines and units from the data rows",
        ) from e
    return t, c
