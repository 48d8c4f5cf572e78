"""Enhancer inference: tiling, receptive field, volumes, save/load, bad inputs."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from operando.enhance import (
    Enhancer,
    EnhancerConfig,
    InDIUNet,
    load_enhancer,
    receptive_radius,
    slice_consistency,
)
from operando.errors import DataError, FileFormatError, ParameterError


def _enhancer(method="indi", steps=3):
    cfg = EnhancerConfig(
        method=method,
        base_filters=4,
        depth=2,
        bottleneck_blocks=2,
        steps=steps if method == "indi" else 1,
        lq_range=(0.2, 0.8),
        hq_range=(0.25, 0.75),
        lq_stats=(-0.9, 0.9),
    )
    net = InDIUNet(base_filters=4, depth=2, bottleneck_blocks=2, key=jr.PRNGKey(1))
    return Enhancer(cfg, net)


def test_network_shape_dtype_range_and_time_dependence():
    net = InDIUNet(base_filters=4, depth=2, key=jr.PRNGKey(0))
    x = jr.normal(jr.PRNGKey(1), (1, 24, 32))
    f = eqx.filter_jit(lambda m, v, t: m(v, t))  # one compilation instead of eager ops
    a, b = f(net, x, jnp.float32(0.2)), f(net, x, jnp.float32(0.9))
    assert a.shape == (1, 24, 32) and a.dtype == jnp.float32  # float32 under x64
    assert float(jnp.max(jnp.abs(a))) < 1
    assert float(jnp.max(jnp.abs(a - b))) > 1e-4  # the time embedding reaches the output


@pytest.mark.slow
def test_receptive_radius_bounds_the_influence_of_a_pixel():
    net = InDIUNet(base_filters=4, depth=2, bottleneck_blocks=2, key=jr.PRNGKey(0))
    n = 128
    c = n // 2
    x = jr.normal(jr.PRNGKey(2), (1, n, n))
    g = jax.grad(lambda v: net(v, 0.5)[0, c, c])(x)[0]
    ys, xs = np.nonzero(np.abs(np.asarray(g)) > 0)
    reach = max(np.abs(ys - c).max(), np.abs(xs - c).max())
    r = receptive_radius(2, 2)
    assert reach <= r
    assert reach >= r // 3  # the bound is not absurdly loose


def test_tiled_equals_untiled_inference():
    enh = _enhancer()
    y = np.asarray(jr.uniform(jr.PRNGKey(3), (2, 72, 88), minval=-1, maxval=1), np.float32)
    full = enh.restore_normalised(y, steps=2)
    tiled = enh.restore_normalised(y, steps=2, tile=32)
    assert full.shape == y.shape
    # float32 convolutions summed in a different order; the outputs are O(1)
    np.testing.assert_allclose(tiled, full, atol=2e-5)
    # a too-small margin breaks the agreement: the test can fail
    bad = enh.restore_normalised(y, steps=2, tile=32, margin=4)
    assert np.max(np.abs(bad - full)) > 1e-3


def test_enhance_image_and_volume_shapes_and_units():
    enh = _enhancer()
    rng = np.random.default_rng(0)
    vol = 0.5 + 0.15 * rng.normal(size=(4, 20, 24))
    img = enh.enhance_image(vol[0])
    assert img.shape == (40, 48)
    out, report = enh.enhance_volume(vol)
    assert out.shape == (8, 40, 48)
    assert set(report) >= {"ratio", "neighbour_correlation"}
    # HQ grey values: tanh output mapped back into hq_range
    assert out.min() >= 0.25 - 0.25 * 0.25 and out.max() <= 0.75 + 0.25 * 0.25  # cubic z overshoot
    flat, _ = enh.enhance_volume(vol, z_interpolate=False)
    assert flat.shape == (4, 40, 48)
    np.testing.assert_allclose(flat[0], img, atol=1e-9)


def test_bad_inputs_raise_clear_errors():
    enh = _enhancer()
    rng = np.random.default_rng(0)
    vol = 0.5 + 0.15 * rng.normal(size=(4, 16, 16))
    with pytest.raises(DataError, match="volume"):
        enh.enhance_volume(vol[0])  # 2D where a volume is required
    with pytest.raises(DataError, match="normalisation"):
        enh.enhance_volume(vol * 255)  # 8-bit grey values vs a model trained on 0..1
    with pytest.raises(DataError, match="normalisation"):
        enh.enhance_image(vol[0] + 3.0)
    out, _ = enh.enhance_volume(vol * 255, check_normalisation=False)  # explicit override
    assert np.all(np.isfinite(out))
    with pytest.raises(ParameterError):
        enh.enhance_image(vol[0], steps=0)
    with pytest.raises(ParameterError, match="one step"):
        _enhancer("regression").enhance_image(vol[0], steps=4)
    with pytest.raises(ParameterError):
        EnhancerConfig(method="gan")


def test_save_load_round_trip(tmp_path):
    enh = _enhancer()
    enh.save(tmp_path / "m")
    back = load_enhancer(tmp_path / "m")
    assert back.config == enh.config
    y = np.asarray(jr.uniform(jr.PRNGKey(4), (1, 32, 32), minval=-1, maxval=1), np.float32)
    np.testing.assert_array_equal(
        back.restore_normalised(y, steps=2), enh.restore_normalised(y, steps=2)
    )
    with pytest.raises(FileFormatError):
        load_enhancer(tmp_path / "missing")
    (tmp_path / "m" / "config.json").write_text('{"schema": "other"}')
    with pytest.raises(FileFormatError):
        load_enhancer(tmp_path / "m")


def test_slice_consistency_detects_flicker():
    rng = np.random.default_rng(0)
    smooth = np.cumsum(rng.normal(size=(6, 16, 16)) * 0.01, axis=0) + rng.normal(size=(16, 16))
    r = slice_consistency(smooth, smooth)
    assert abs(r["ratio"] - 1) < 1e-12
    flicker = smooth + 0.2 * rng.normal(size=smooth.shape)
    assert slice_consistency(flicker, smooth)["ratio"] > 5
    with pytest.raises(DataError):
        slice_consistency(smooth[:1], smooth[:1])
