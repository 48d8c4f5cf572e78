"""Pixel-level phase classification of graphite particles with physical rules (seed 000 S2.3).

The masked particle pixels of all frames are clustered again by k-means in LAB (``k = 4``),
each cluster named background/blue/red/gold (:func:`~._segment.name_clusters`), and the
per-pixel phase series are corrected by the heuristic rules of the paper, each switchable
in :class:`PhaseRules` and applied in this order (codes 0 background, 1 blue, 2 red, 3 gold):

1. ``solid_solution``: every particle pixel is blue before the end of the solid-solution
   regime (frame ``solid_solution_end``; detected as the first frame where the red + gold
   share of the particle pixels reaches ``onset_fraction``, after a 3-frame median);
2. ``final_blue_to_background``: pixels still blue in the last frame (and in more than half
   of the last ``persistence`` frames) never lithiated: they become background in all frames;
3. ``no_blue_after_stage2``: from the end of the stage III -> II transition (frame
   ``stage2_end``; detected as the first frame after the onset where the blue share falls to
   ``blue_fraction``) no pixel is blue: blue -> red;
4. ``irreversible_red``: once a pixel has turned red (or gold) it never returns to blue
   (blue -> red is irreversible);
5. ``irreversible_gold``: once a pixel has turned gold it never returns to red or blue
   (the paper's gold/red transition is irreversible);
6. ``background_persists``: once a particle pixel is background, it stays background.

A transition counts in rules 4-6 once it has lasted ``persistence`` consecutive frames (1:
the paper's literal rule; 2-3 make the rules robust to single-frame noise). The rules describe
lithiation; a delithiation video is classified in reversed time (``direction``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi

from ...errors import DataError, ParameterError
from ._segment import PHASES, kmeans_lab, name_clusters, rgb_to_lab

__all__ = [
    "BACKGROUND",
    "BLUE",
    "GOLD",
    "RED",
    "PhaseResult",
    "PhaseRules",
    "apply_phase_rules",
    "classify_phases",
    "phase_fractions",
]

BACKGROUND, BLUE, RED, GOLD = 0, 1, 2, 3


@dataclass(frozen=True)
class PhaseRules:
    """Switches and settings of the physical rules (see the module docstring).

    ``solid_solution_end`` / ``stage2_end``: frame indices, or ``None`` to detect them from
    the phase fractions with ``onset_fraction`` / ``blue_fraction``.
    """

    solid_solution: bool = True
    final_blue_to_background: bool = True
    no_blue_after_stage2: bool = True
    irreversible_red: bool = True
    irreversible_gold: bool = True
    background_persists: bool = True
    solid_solution_end: int | None = None
    stage2_end: int | None = None
    onset_fraction: float = 0.1
    blue_fraction: float = 0.05
    persistence: int = 3

    @classmethod
    def none(cls) -> PhaseRules:
        """All rules off (plain k-means classification)."""
        return cls(False, False, False, False, False, False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def phase_fractions(phases: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(t, 4)`` fraction of the ``mask`` pixels in each phase, per frame."""
    p = np.asarray(phases)[:, np.asarray(mask, bool)]
    n = max(p.shape[1], 1)
    return np.stack([(p == c).sum(axis=1) / n for c in range(len(PHASES))], axis=1)


def _locked(event: np.ndarray, persistence: int) -> np.ndarray:
    """True from the first frame of the first run of ``persistence`` consecutive events on."""
    run = event.copy()
    for j in range(1, persistence):
        run[:-j] &= event[j:]
        run[-j:] = False
    return np.logical_or.accumulate(run, axis=0)


def _smoothed(x: np.ndarray) -> np.ndarray:
    return ndi.median_filter(x, size=3, mode="nearest") if x.size >= 3 else x


def apply_phase_rules(
    phases: np.ndarray, mask: np.ndarray, rules: PhaseRules = PhaseRules()
) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply the physical rules to per-frame phase codes.

    Parameters
    ----------
    phases
        ``(t, y, x)`` integer phase codes (0 background, 1 blue, 2 red, 3 gold).
    mask
        ``(y, x)`` particle pixels; pixels outside are set to background.
    rules
        Which rules to apply, and their settings.

    Returns
    -------
    phases, info
        Corrected ``(t, y, x)`` int8 codes, and ``solid_solution_end`` / ``stage2_end``
        (frames used, or ``None``).

    Examples
    --------
    >>> p = np.array([[[2]], [[1]], [[2]], [[1]], [[3]], [[2]]])  # one pixel over 6 frames
    >>> r = PhaseRules(solid_solution_end=1, final_blue_to_background=False, persistence=1)
    >>> apply_phase_rules(p, np.ones((1, 1), bool), r)[0].ravel().tolist()
    [1, 1, 2, 2, 3, 3]
    """
    p = np.asarray(phases).astype(np.int8).copy()
    m = np.asarray(mask, bool)
    if p.ndim != 3 or p.shape[1:] != m.shape:
        raise DataError(
            f"phases {p.shape} and mask {m.shape} do not match",
            where="apply_phase_rules",
            fix="pass (t, y, x) phases and a (y, x) mask",
        )
    if rules.persistence < 1:
        raise ParameterError(f"persistence={rules.persistence}", where="PhaseRules", fix="use >= 1")
    n = p.shape[0]
    p[:, ~m] = BACKGROUND
    q = p[:, m]  # (t, n_pixels) view copy, written back at the end
    info: dict[str, Any] = {"solid_solution_end": None, "stage2_end": None}

    def share(x: np.ndarray, codes: tuple[int, ...]) -> np.ndarray:
        nonbg = np.maximum((x != BACKGROUND).sum(axis=1), 1)
        return np.isin(x, codes).sum(axis=1) / nonbg

    t_ss = rules.solid_solution_end
    if t_ss is None:
        s = _smoothed(share(q, (RED, GOLD)))
        hit = np.nonzero(s >= rules.onset_fraction)[0]
        t_ss = int(hit[0]) if hit.size else n
    t_ss = int(np.clip(t_ss, 0, n))
    if rules.solid_solution:
        q[:t_ss] = BLUE
        info["solid_solution_end"] = t_ss
    if rules.final_blue_to_background:
        tail = q[-rules.persistence :]
        q[:, (q[-1] == BLUE) & ((tail == BLUE).mean(axis=0) > 0.5)] = BACKGROUND
    if rules.no_blue_after_stage2:
        t2 = rules.stage2_end
        if t2 is None:
            s = _smoothed(share(q, (BLUE,)))
            hit = np.nonzero((s <= rules.blue_fraction) & (np.arange(n) >= t_ss))[0]
            t2 = int(hit[0]) if hit.size else n
        t2 = int(np.clip(t2, 0, n))
        q[t2:][q[t2:] == BLUE] = RED
        info["stage2_end"] = t2
    k = rules.persistence
    if rules.irreversible_red:
        locked = _locked((q == RED) | (q == GOLD), k)
        q[locked & (q == BLUE)] = RED
    if rules.irreversible_gold:
        locked = _locked(q == GOLD, k)
        q[locked & ((q == BLUE) | (q == RED))] = GOLD
    if rules.background_persists:
        locked = _locked(q == BACKGROUND, k)
        q[locked] = BACKGROUND
    p[:, m] = q
    return p, info


@dataclass(frozen=True)
class PhaseResult:
    """Per-frame phase maps of the particle pixels.

    Attributes
    ----------
    phases
        ``(t, y, x)`` int8 codes after the rules (0 background, 1 blue, 2 red, 3 gold).
    raw_phases
        The same from k-means alone (before the rules).
    fractions
        ``(t, 4)`` share of the mask pixels in each phase (after the rules).
    centers_lab, cluster_phases
        k-means centres (LAB) and the phase each was named after.
    info
        Frames detected by the rules (``solid_solution_end``, ``stage2_end``).
    rules
        The rules used.
    """

    phases: np.ndarray
    raw_phases: np.ndarray
    fractions: np.ndarray
    centers_lab: np.ndarray
    cluster_phases: np.ndarray
    info: dict[str, Any]
    rules: PhaseRules


def classify_phases(
    video: np.ndarray,
    labels: np.ndarray,
    *,
    k: int = 4,
    seed: int = 0,
    rules: PhaseRules | None = None,
    reference_colors: Mapping[str, tuple[float, float, float]] | None = None,
    direction: Literal["lithiation", "delithiation"] = "lithiation",
    max_samples: int = 100_000,
) -> PhaseResult:
    """Classify every particle pixel of every frame as background/blue/red/gold.

    Parameters
    ----------
    video
        ``(t, y, x, 3)`` RGB in [0, 1], aligned with ``labels``.
    labels
        ``(y, x)`` particle labels or mask (non-zero: particle).
    k, seed, max_samples
        k-means settings (paper: ``k = 4``).
    rules
        Physical rules (default: all on, as in the paper); :meth:`PhaseRules.none` for none.
    reference_colors
        Overrides of the colours used to name clusters.
    direction
        ``"delithiation"`` classifies in reversed time, so the rules' order still holds.

    Returns
    -------
    PhaseResult
    """
    v = np.asarray(video, dtype=np.float64)
    m = np.asarray(labels) > 0
    if v.ndim != 4 or v.shape[1:3] != m.shape:
        raise DataError(
            f"video {v.shape} and labels {m.shape} do not match",
            where="classify_phases",
            fix="labels must be (y, x) of the video's frame size",
        )
    if direction not in ("lithiation", "delithiation"):
        raise ParameterError(
            f"direction={direction!r}", where="classify_phases", fix="lithiation|delithiation"
        )
    rules = PhaseRules() if rules is None else rules
    if direction == "delithiation":
        v = v[::-1]
        if rules.solid_solution_end is not None or rules.stage2_end is not None:
            n = v.shape[0]
            rules = replace(
                rules,
                solid_solution_end=None
                if rules.solid_solution_end is None
                else n - rules.solid_solution_end,
                stage2_end=None if rules.stage2_end is None else n - rules.stage2_end,
            )
    lab = rgb_to_lab(v[:, m])  # (t, n_pixels, 3)
    centers, assign = kmeans_lab(lab.reshape(-1, 3), k=k, seed=seed, max_samples=max_samples)
    names = name_clusters(centers, reference_colors)
    raw = np.zeros(v.shape[:3], np.int8)
    raw[:, m] = names[assign].reshape(lab.shape[:2])
    phases, info = apply_phase_rules(raw, m, rules)
    if direction == "delithiation":
        raw, phases = raw[::-1].copy(), phases[::-1].copy()
    return PhaseResult(
        phases=phases,
        raw_phases=raw,
        fractions=phase_fractions(phases, m),
        centers_lab=centers,
        cluster_phases=names,
        info=info,
        rules=rules,
    )
