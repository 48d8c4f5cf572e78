"""The synthetic SiO_x phantom and its measurement model."""

import numpy as np
import pytest

from operando.errors import ParameterError
from operando.simulate import degrade_volume, simulate_enhancement_pair, sio_phantom
from operando.simulate._phantom import MATRIX, PARTICLE


def test_phantom_fraction_values_and_growth():
    p = sio_phantom((24, 64, 64), seed=0, volume_fraction=0.2)
    assert abs(p.mask.mean() - 0.2) < 0.04
    inside = p.truth[p.mask].mean()
    outside = p.truth[~p.mask].mean()
    assert abs(inside - PARTICLE) < 0.05 and abs(outside - MATRIX) < 0.03
    g = sio_phantom((24, 64, 64), seed=0, volume_fraction=0.2, growth=0.2, crack_fraction=1.0)
    assert g.info["n_particles"] <= p.info["n_particles"]
    with pytest.raises(ParameterError):
        sio_phantom((4, 64, 64))


def test_degradation_operator():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(8, 16, 16))
    d = degrade_volume(v, blur=0.0, downsample=True)
    np.testing.assert_allclose(d[0, 0, 0], v[:2, :2, :2].mean())
    assert d.shape == (4, 8, 8)
    n = degrade_volume(np.zeros((8, 32, 32)), blur=1.0, noise=0.1, seed=1)
    assert abs(n.std() - 0.1) < 0.01
    r = degrade_volume(np.zeros((4, 32, 32)), blur=0.0, rings=0.05, seed=1)
    np.testing.assert_array_equal(r[0], r[3])  # rings constant along z
    assert r.std() > 0
    with pytest.raises(ParameterError):
        degrade_volume(np.zeros((3, 8, 8)), blur=1.0, downsample=True)


def test_enhancement_pair_geometry():
    p = simulate_enhancement_pair(
        (8, 32, 32), seed=0, shift=(0.0, 0.0, 0.0), lq_noise=0, hq_noise=0, rings=0
    )
    assert p.lq.shape == p.hq.shape == (8, 32, 32)
    assert p.hq_offset == (2, 8, 8)
    # the HQ scan shows the central field of view of the truth, blurred
    fine_centre = p.phantom.truth[4:12, 16:48, 16:48]
    assert np.corrcoef(p.hq.ravel(), fine_centre.ravel())[0, 1] > 0.9
    s = simulate_enhancement_pair((8, 32, 32), seed=0, insitu=True)
    assert s.hq is None and s.phantom.info["growth"] == 0.15
