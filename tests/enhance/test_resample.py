"""The fixed x2 cubic resampler."""

import numpy as np

from operando.enhance import cubic_weights, upsample2


def test_weights_are_keys_cubic_and_sum_to_one():
    even, odd = cubic_weights()
    np.testing.assert_allclose(even.sum(), 1.0, atol=1e-15)
    np.testing.assert_allclose(odd, even[::-1])
    # Keys a = -0.5 at distances 1.75, 0.75, 0.25, 1.25
    np.testing.assert_allclose(even, [-3 / 128, 29 / 128, 111 / 128, -9 / 128])


def test_constant_and_linear_signals():
    c = np.full((5, 7), 3.25)
    np.testing.assert_allclose(upsample2(c), 3.25, atol=1e-14)
    x = np.arange(10.0)
    up = upsample2(x, axes=(0,))
    j = np.arange(20)
    # half-pixel-centred grid: output j sits at input coordinate j/2 - 1/4 (exact inside)
    np.testing.assert_allclose(up[3:-3], (j / 2 - 0.25)[3:-3], atol=1e-13)


def test_shapes_and_axes():
    v = np.random.default_rng(0).normal(size=(3, 4, 5))
    assert upsample2(v).shape == (3, 8, 10)
    assert upsample2(v, axes=(0, 1, 2)).shape == (6, 8, 10)
    # separable: order of axes does not matter
    np.testing.assert_allclose(upsample2(v, axes=(0, 2)), upsample2(v, axes=(2, 0)), atol=1e-14)
    # block-averaging the up-sampled smooth signal returns close to the original
    s = np.sin(np.linspace(0, 2, 40))
    back = upsample2(s, axes=(0,)).reshape(40, 2).mean(1)
    assert np.max(np.abs(back - s)[2:-2]) < 1e-3
