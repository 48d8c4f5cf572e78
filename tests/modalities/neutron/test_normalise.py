"""Normalisation, Beer–Lambert with the cylindrical chord, differential imaging: exact cases."""

import numpy as np
import pytest

from operando.errors import DataError, ParameterError
from operando.modalities import neutron as nn


def _frames(t_true, ob=1000.0, dc=100.0):
    i = dc + ob * np.asarray(t_true)
    return i, np.full((3, *i.shape[1:]), dc + ob), np.full((2, *i.shape[1:]), dc)


def test_transmission_is_exact_on_noise_free_frames():
    rng = np.random.default_rng(1)
    t_true = rng.uniform(0.2, 0.9, size=(4, 10, 12))
    i, ob, dc = _frames(t_true)
    tr = nn.normalise(i, ob, dc, median=1)
    np.testing.assert_allclose(tr.transmission, t_true, rtol=1e-13)
    assert tr.valid.all() and tr.n_masked == 0


def test_near_zero_denominator_is_masked_and_counted():
    t_true = np.full((2, 6, 6), 0.5)
    i, ob, dc = _frames(t_true)
    ob[:, 2, 3] = dc[0, 2, 3] + 1.0  # OB - DC = 1 << 1 % of the median 1000
    tr = nn.normalise(i, ob, dc, median=1)
    assert tr.n_masked == 1 and not tr.valid[2, 3]
    assert np.isnan(tr.transmission[:, 2, 3]).all()
    assert np.isfinite(tr.transmission[:, tr.valid]).all()
    with pytest.raises(DataError, match="not brighter than dark"):
        nn.normalise(i, dc[:1].repeat(3, 0), ob, median=1)  # swapped references


def test_bad_reference_inputs():
    i, ob, dc = _frames(np.full((2, 6, 6), 0.5))
    with pytest.raises(DataError, match=r"open beam frames are \(6, 7\)"):
        nn.normalise(i, np.ones((3, 6, 7)), dc)
    with pytest.raises(DataError, match=r"dark current"):
        nn.normalise(i, ob, np.zeros((0, 6, 6)))


def test_median_filter_removes_a_spike():
    a = np.full((1, 7, 7), 10.0)
    a[0, 3, 3] = 1e4
    np.testing.assert_array_equal(nn.median_filter_frames(a), np.full((1, 7, 7), 10.0))


def test_chord_thickness_geometry():
    # r = 1 cm at 10 px/cm: chord 2 sqrt(1 - d^2) with d = |x - 10| / 10
    th = nn.chord_thickness(21, radius_cm=1.0, centre_px=10, pixels_per_cm=10)
    d = np.abs(np.arange(21) - 10) / 10
    np.testing.assert_allclose(th, 2 * np.sqrt(1 - d**2), atol=1e-15)
    assert th[10] == 2.0 and th[0] == 0.0 and th[20] == 0.0
    # seed 000 calibration, default centre: symmetric, 2r in the middle of an odd frame
    th2 = nn.chord_thickness(101, radius_cm=0.03, pixels_per_cm=nn.PAPER_PIXELS_PER_CM)
    np.testing.assert_allclose(th2, th2[::-1])
    assert th2[50] == pytest.approx(0.06)
    with pytest.raises(ParameterError, match="radius"):
        nn.chord_thickness(10, radius_cm=-1.0)


def test_beer_lambert_round_trip_cylinder_and_flat():
    th = nn.chord_thickness(32, radius_cm=0.019, pixels_per_cm=800)  # 15.2 px
    sigma = np.random.default_rng(2).uniform(2.0, 8.0, size=(3, 5, 32))
    t = np.exp(-sigma * th[None, None, :])
    at = nn.attenuation(t, th)
    v = at.valid
    assert v[:, 1:-1].all() and not v[:, 0].any()  # outside the cell (delta = 0) masked
    np.testing.assert_allclose(at.sigma[:, v], sigma[:, v], rtol=1e-12)
    flat = nn.attenuation(np.exp(-sigma * 0.1), 0.1)
    np.testing.assert_allclose(flat.sigma, sigma, rtol=1e-12)


def test_nonpositive_transmission_raises_or_masks():
    t = np.full((3, 4, 4), 0.5)
    t[1, 2, 2] = -0.01
    t[2, 0, 0] = 0.0
    with pytest.raises(DataError, match=r"2 pixel value\(s\) with T <= 0.*frame\(s\) \[1, 2\]"):
        nn.attenuation(t, 0.1)
    at = nn.attenuation(t, 0.1, nonpositive="mask")
    assert at.n_nonpositive == 2 and np.isnan(at.sigma[1, 2, 2]) and np.isnan(at.sigma[2, 0, 0])
    assert np.isfinite(at.sigma).sum() == t.size - 2


def test_delta_attenuation_is_eq3_per_half_cycle():
    th = 0.05
    rng = np.random.default_rng(3)
    t = rng.uniform(0.3, 0.8, size=(6, 4, 5))
    sigma = nn.attenuation(t, th).sigma
    d = nn.delta_attenuation(sigma, [0, 3])
    # eq. 3 with the sign of Sigma = -ln T / delta: (1/delta) ln(T_ref / T)
    np.testing.assert_allclose(d[:3], np.log(t[0] / t[:3]) / th, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d[3:], np.log(t[3] / t[3:]) / th, rtol=1e-12, atol=1e-12)
    assert np.all(d[[0, 3]] == 0)
    with pytest.raises(ParameterError, match="outside"):
        nn.delta_attenuation(sigma, [0, 3], [3, 9])


def test_depth_profile_mean_and_in_plane_std():
    img = np.array([[1.0, 3.0, np.nan], [2.0, 2.0, 2.0]])
    mean, std = nn.depth_profile(img)
    np.testing.assert_allclose(mean, [2.0, 2.0])
    np.testing.assert_allclose(std, [1.0, 0.0])
    m2, _ = nn.depth_profile(img, valid=np.array([[True, False, False], [False, False, False]]))
    assert m2[0] == 1.0 and np.isnan(m2[1])
