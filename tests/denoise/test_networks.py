"""U-Net / UMVD networks: float32 under x64, receptive field, the temporal blind spot."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from operando.denoise import window_indices
from operando.denoise._umvd import umvd_batch
from operando.denoise._unet import UMVDNet, UNet, receptive_radius


@pytest.mark.parametrize("n2v2", [False, True])
def test_unet_is_float32_and_receptive_field_is_bounded(n2v2):
    net = UNet(1, 1, depth=2, base_filters=4, n2v2=n2v2, key=jr.PRNGKey(0))
    assert {leaf.dtype for leaf in jax.tree.leaves(eqx.filter(net, eqx.is_array))} == {
        jnp.dtype(jnp.float32)
    }
    size, c = 80, 40
    x = jr.normal(jr.PRNGKey(1), (1, size, size), dtype=jnp.float32)
    out, grad = jax.jit(jax.value_and_grad(lambda x: net(x)[0, c, c]))(x)
    assert out.dtype == jnp.float32
    ys, xs = np.nonzero(np.asarray(grad)[0])
    reach = max(np.abs(ys - c).max(), np.abs(xs - c).max())
    # the bound used for tiling margins must contain the true receptive field
    assert reach <= receptive_radius(2, n2v2=n2v2)
    assert reach >= receptive_radius(2, n2v2=n2v2) - 8  # and not be wildly loose


def test_n2v2_has_no_top_level_skip():
    plain = UNet(1, 1, depth=2, base_filters=4, key=jr.PRNGKey(0))
    n2v2 = UNet(1, 1, depth=2, base_filters=4, n2v2=True, key=jr.PRNGKey(0))
    # top decoder block input: up-sampled (8) + skip (4) channels, vs up-sampled only
    assert plain.decoders[-1].conv1.in_channels == 12
    assert n2v2.decoders[-1].conv1.in_channels == 8


@pytest.mark.parametrize("window", [3, 5, 7])
def test_window_never_contains_the_target_frame_except_at_the_centre(window):
    half = window // 2
    for n_frames in range(window, window + 4):
        for t in range(n_frames):
            idx = np.asarray(window_indices(t, n_frames, window))
            assert idx[half] == t
            others = np.delete(idx, half)
            assert t not in others
            assert others.min() >= 0 and others.max() < n_frames


def test_umvd_output_does_not_depend_on_the_centre_frame():
    """Temporal blind spot: a NaN or huge centre frame changes nothing in the output."""
    window, c = 5, 1
    net = UMVDNet(c, n_frames=window, features=4, base_filters=4, key=jr.PRNGKey(0))
    x = jr.normal(jr.PRNGKey(1), (window * c, 32, 32), dtype=jnp.float32)
    f = eqx.filter_jit(net)
    ref = np.asarray(f(x))
    for bad in (jnp.nan, 1e30):
        y = np.asarray(f(x.at[window // 2].set(bad)))
        assert np.all(np.isfinite(y))
        np.testing.assert_array_equal(y, ref)
    g = jax.jit(jax.grad(lambda x: jnp.sum(net(x))))(x)
    assert np.all(np.asarray(g[window // 2]) == 0.0)
    assert np.any(np.asarray(g[window // 2 + 1]) != 0.0)


def test_umvd_training_input_never_contains_the_target_frame():
    """Frames of constant value = frame index, the target frame NaN: the non-centre
    window slots of every training sample are finite and never show the target."""
    n, window, target = 7, 5, 1
    frames = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 1, 24, 24))
    data = jnp.asarray(frames).at[target].set(jnp.nan)
    weights = jnp.zeros(n, jnp.float32).at[target].set(1.0)  # always train on frame 1
    batch = jax.jit(
        lambda k: umvd_batch(k, data, weights, batch_size=16, patch=16, window=window, augment=True)
    )
    for seed in range(3):
        x, y = batch(jr.PRNGKey(seed))
        x = np.asarray(x).reshape(16, window, 16, 16)
        assert np.all(np.isnan(np.asarray(y)))  # the target is frame 1
        others = np.delete(x, window // 2, axis=1)
        assert np.all(np.isfinite(others))
        assert np.all(np.isnan(x[:, window // 2]))  # ... which sits only at the centre
