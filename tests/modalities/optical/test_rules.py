"""Each physical rule of seed 000 S2.3, switched on alone, on hand-made phase series."""

from dataclasses import replace

import numpy as np
import pytest

from operando.modalities import optical as op

B, BL, R, G = op.BACKGROUND, op.BLUE, op.RED, op.GOLD
NONE = op.PhaseRules.none()


def series(*cols):
    """(t, 1, n) phase array from per-pixel time series."""
    return np.array(cols, dtype=np.int8).T[:, None, :]


def apply(p, **on):
    out, info = op.apply_phase_rules(p, np.ones(p.shape[1:], bool), replace(NONE, **on))
    return out[:, 0, :].T.tolist(), info


def test_no_rules_is_identity_outside_mask_background():
    p = series([R, BL, G], [G, G, R])
    mask = np.array([[True, False]])
    out, _ = op.apply_phase_rules(p, mask, NONE)
    assert out[:, 0, 0].tolist() == [R, BL, G] and out[:, 0, 1].tolist() == [B, B, B]


def test_solid_solution_all_blue_before_onset():
    p = series([B, R, R, G], [G, BL, R, G])
    out, info = apply(p, solid_solution=True, solid_solution_end=2)
    assert out == [[BL, BL, R, G], [BL, BL, R, G]] and info["solid_solution_end"] == 2
    # detected: red+gold share [0, 2/3, 0, 2/3, 1] reaches onset_fraction at frame 1, but
    # the 3-frame median ([0, 0, 2/3, 2/3, 1]) ignores the one-frame spike: onset at frame 2
    p = series([BL, G, BL, R, R], [BL, R, BL, R, R], [BL, BL, BL, BL, R])
    _, info = apply(p, solid_solution=True, onset_fraction=0.5)
    assert info["solid_solution_end"] == 2


def test_final_blue_becomes_background_everywhere():
    out, _ = apply(series([BL, R, BL], [BL, R, G]), final_blue_to_background=True)
    assert out == [[B, B, B], [BL, R, G]]


def test_no_blue_after_stage2():
    out, info = apply(
        series([BL, BL, BL, G], [BL, R, R, R]), no_blue_after_stage2=True, stage2_end=2
    )
    assert out == [[BL, BL, R, G], [BL, R, R, R]] and info["stage2_end"] == 2


def test_blue_to_red_irreversible():
    out, _ = apply(series([BL, R, BL, R, BL]), irreversible_red=True, persistence=1)
    assert out == [[BL, R, R, R, R]]
    # with persistence 2 a single-frame red flicker does not lock the pixel
    out, _ = apply(series([BL, R, BL, R, R, BL]), irreversible_red=True, persistence=2)
    assert out == [[BL, R, BL, R, R, R]]


def test_gold_irreversible():
    out, _ = apply(series([R, G, R, BL, G]), irreversible_gold=True, persistence=1)
    assert out == [[R, G, G, G, G]]


def test_background_persists():
    out, _ = apply(series([BL, B, R, G]), background_persists=True, persistence=1)
    assert out == [[BL, B, B, B]]
    out, _ = apply(series([BL, B, R, G, B, B]), background_persists=True, persistence=2)
    assert out == [[BL, B, R, G, B, B]]


def test_all_rules_on_noisy_lithiation():
    rng = np.random.default_rng(1)
    true = np.repeat(np.array([BL] * 4 + [R] * 4 + [G] * 4, np.int8)[:, None, None], 50, axis=2)
    noisy = true.copy()
    flip = rng.random(true.shape) < 0.15  # 15 % of labels redrawn: ~91 % stay right
    noisy[flip] = rng.integers(1, 4, flip.sum())
    mask = np.ones((1, 50), bool)
    base = (noisy == true).mean()
    # the paper's literal rules (persistence 1) make every pixel's history monotone
    out, info = op.apply_phase_rules(noisy, mask, op.PhaseRules(persistence=1, onset_fraction=0.3))
    assert (np.diff(out[:, 0, :].astype(int), axis=0) >= 0).all()
    assert info["solid_solution_end"] == 4  # true onset; noise alone gives ~10 % red+gold
    # persistence 2 ignores one-frame flickers: most of the label noise is repaired
    out, _ = op.apply_phase_rules(noisy, mask, op.PhaseRules(persistence=2, onset_fraction=0.3))
    assert base < 0.92 and (out == true).mean() > 0.95


def test_bad_persistence():
    with pytest.raises(ValueError):
        op.apply_phase_rules(series([BL]), np.ones((1, 1), bool), op.PhaseRules(persistence=0))
