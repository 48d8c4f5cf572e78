"""Paired-data preparation: crop, x2 up-sampling, sub-voxel registration, hold-out."""

import numpy as np
import pytest

from operando.enhance import prepare_pairs
from operando.errors import DataError, ParameterError
from operando.simulate import simulate_enhancement_pair


@pytest.fixture(scope="module")
def pair():
    return simulate_enhancement_pair((16, 48, 48), seed=3, shift=(0.5, 1.25, -0.75))


def test_registration_recovers_the_known_shift(pair):
    d = prepare_pairs(pair.lq, pair.hq)
    # the LQ is 2x blurrier and noisy: a quarter of a fine voxel is the stated accuracy
    np.testing.assert_allclose(d.registration["shift"], pair.shift, atol=0.3)
    d0 = prepare_pairs(pair.lq, pair.hq, register="none")

    def corr(p):
        return np.corrcoef(p.lq_up.ravel(), p.hq.ravel())[0, 1]

    assert corr(d) > corr(d0) + 0.02


def test_split_shapes_and_normalisation(pair):
    d = prepare_pairs(pair.lq, pair.hq, holdout=0.1)
    n = d.lq_up.shape[0]
    assert d.lq_up.shape == d.hq.shape == (16 - 8, 48 - 8, 48 - 8)  # margin 4 dropped
    assert d.lq_up.dtype == np.float32
    assert len(d.test) == round(0.1 * n) and set(d.train).isdisjoint(d.test)
    assert d.test.min() == d.train.max() + 1  # contiguous held-out block at the end
    assert d.hq.min() >= -1 and d.hq.max() <= 1
    lo, hi = np.percentile(d.lq_up[d.train], [0.05, 99.95])
    assert abs(lo + 1) < 1e-3 and abs(hi - 1) < 1e-3
    assert d.offset == pair.hq_offset  # centred by default


def test_incompatible_sizes_and_dimensions_raise(pair):
    with pytest.raises(DataError, match="incompatible"):
        prepare_pairs(pair.lq[:, :20, :20], pair.hq)  # HQ field of view larger than the LQ scan
    with pytest.raises(DataError, match="incompatible"):
        prepare_pairs(pair.lq, pair.hq, offset=(0, 30, 0))
    with pytest.raises(DataError, match="volume"):
        prepare_pairs(pair.lq[0], pair.hq)  # a 2D slice where a volume is required
    with pytest.raises(DataError, match="odd"):
        prepare_pairs(pair.lq, pair.hq[:, :47])
    with pytest.raises(DataError, match="non-finite"):
        bad = pair.hq.copy()
        bad[0, 0, 0] = np.nan
        prepare_pairs(pair.lq, bad)
    with pytest.raises(ParameterError):
        prepare_pairs(pair.lq, pair.hq, register="bspline")
