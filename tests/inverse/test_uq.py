"""Folds, the one-standard-error rule, bootstrap resamples and percentile bands."""

import numpy as np
import pytest

from operando.errors import DataError, ParameterError
from operando.inverse._uq import (
    band_coverage,
    basic_band,
    bootstrap_indices,
    cv_statistics,
    kfold_half_cycles,
    kfold_splits,
    one_standard_error,
    percentile_band,
)


def test_one_standard_error_rule_on_a_constructed_curve():
    # U-shaped validation curve over rho2: minimum at rho2 = 0.1 (mean 1.00, SE 0.05).
    # Candidates within 1 SE (<= 1.05): rho2 = 0.03 (1.04), 0.1, 0.3 (1.03), 1 (1.049);
    # rho2 = 3 (1.2) is outside. The rule picks the most regularised inside: rho2 = 1.
    grid = np.array([0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0])
    mean = np.array([1.30, 1.10, 1.04, 1.00, 1.03, 1.049, 1.20])
    se = np.array([0.06, 0.05, 0.05, 0.05, 0.04, 0.05, 0.08])
    chosen, best = one_standard_error(grid, mean, se)
    assert (grid[best], grid[chosen]) == (0.1, 1.0)
    # just outside: 1.051 > 1.05 moves the choice back to 0.3
    mean2 = mean.copy()
    mean2[5] = 1.051
    assert grid[one_standard_error(grid, mean2, se)[0]] == 0.3
    # order of the grid does not matter; NaN candidates (failed fits) are skipped
    perm = np.array([6, 2, 0, 5, 3, 1, 4])
    c, b = one_standard_error(grid[perm], mean[perm], se[perm])
    assert grid[perm][c] == 1.0 and grid[perm][b] == 0.1
    mean3 = mean.copy()
    mean3[5] = np.nan
    assert grid[one_standard_error(grid, mean3, se)[0]] == 0.3
    # where smaller values regularise more
    assert grid[one_standard_error(grid, mean, se, most_regularised="smallest")[0]] == 0.03
    with pytest.raises(DataError):
        one_standard_error(grid, np.full(7, np.nan), se)


def test_cv_statistics():
    e = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 4.0]])
    mean, se = cv_statistics(e)
    np.testing.assert_allclose(mean, [3.0, 3.0])
    np.testing.assert_allclose(se, [2.0 / np.sqrt(3), np.sqrt(2.0) / np.sqrt(2)])


def test_kfold_half_cycles_per_particle():
    p = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 3])
    f = kfold_half_cycles(p, 3, seed=4)
    assert np.array_equal(f, kfold_half_cycles(p, 3, seed=4))  # seeded
    assert not all(np.array_equal(f, kfold_half_cycles(p, 3, seed=s)) for s in range(5, 10))
    assert sorted(f[p == 0]) == [0, 1, 2]
    assert sorted(f[p == 1]) == [0, 1]
    assert f[p == 2].tolist() == [-1]  # one half-cycle: cannot be validated
    assert sorted(f[p == 3]) == [0, 0, 1, 1, 2]
    splits = kfold_splits(p, 3, seed=4)
    assert len(splits) == 3 + 2 + 3
    for particle, fold, train, val in splits:
        assert set(p[train]) == {particle} and set(p[val]) == {particle}
        assert not set(train) & set(val)
        assert set(train) | set(val) == set(np.flatnonzero(p == particle))
        assert np.all(f[val] == fold)
    with pytest.raises(ParameterError):
        kfold_half_cycles(p, 1, seed=0)


def test_bootstrap_indices_and_bands():
    idx = bootstrap_indices(5, 200, seed=3)
    assert idx.shape == (200, 5) and idx.min() == 0 and idx.max() == 4
    assert np.array_equal(bootstrap_indices(5, 10, seed=3), idx[:10])  # extendable
    # with replacement: about 1 - (4/5)^5 = 67 % distinct members per sample
    distinct = np.mean([len(set(r)) for r in idx]) / 5
    assert 0.6 < distinct < 0.75
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 3)) * np.array([1.0, 2.0, 0.5])
    lo, hi = percentile_band(x, 0.99)
    # normal 99 % quantile 2.5758; sampling error of the 0.5 % quantile ~ 2 %
    np.testing.assert_allclose(hi / np.array([1.0, 2.0, 0.5]), 2.5758, rtol=0.05)
    np.testing.assert_allclose(lo / np.array([1.0, 2.0, 0.5]), -2.5758, rtol=0.05)
    maps = np.full((4, 2, 2), np.nan)
    maps[:, 0, 0] = [1.0, 2.0, 3.0, 4.0]
    lo, hi = percentile_band(maps, 0.5)
    assert lo[0, 0] == pytest.approx(1.75) and hi[0, 0] == pytest.approx(3.25)
    assert np.isnan(lo[1, 1]) and np.isnan(hi[0, 1])
    assert band_coverage([0, 0, 0, 0], [1, 1, 1, 1], [0.5, 1.5, 1.0, np.nan]) == pytest.approx(
        2 / 3
    )


def test_basic_band_reflects_a_reproduced_bias():
    # A biased estimator: theta_hat = truth + 0.5 and its bootstrap replicates scatter
    # about theta_hat + 0.5 (the bias repeats). Percentile band misses the truth, the
    # basic band 2 theta_hat - q covers it: [truth - 2.58 s, truth + 2.58 s].
    rng = np.random.default_rng(1)
    truth, s = np.array([1.0, 3.0]), np.array([0.1, 0.2])
    est = truth + 0.5
    boot = est + 0.5 + s * rng.normal(size=(20000, 2))
    lo, hi = percentile_band(boot, 0.99)
    assert band_coverage(lo, hi, truth) == 0.0
    blo, bhi = basic_band(boot, est, 0.99)
    np.testing.assert_allclose((blo - truth) / s, -2.5758, rtol=0.05)
    np.testing.assert_allclose((bhi - truth) / s, 2.5758, rtol=0.05)
    # log scale: a multiplicative bias (estimate = 1.5 x truth, replicates = 1.5 x the
    # estimate) is reflected back to the truth, and the band stays positive
    lboot = est * 1.5 * np.exp(s * rng.normal(size=(20000, 2)))
    llo, lhi = basic_band(lboot, est, 0.99, log=True)
    np.testing.assert_allclose(np.log(llo / (est / 1.5)) / s, -2.5758, rtol=0.05)
    np.testing.assert_allclose(np.log(lhi / (est / 1.5)) / s, 2.5758, rtol=0.05)
    with pytest.raises(DataError, match="positive"):
        basic_band(-lboot, est, log=True)
