"""Blind-spot masking: a masked pixel never sees its own noisy value."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from operando.denoise._masking import (
    mask_grid,
    mask_patch,
    masked_coords,
    replacement_offsets,
)


def test_replacement_offset_is_never_the_centre():
    # the extreme uniforms included: 0 and the largest float32 below 1
    u = jnp.concatenate(
        [jnp.linspace(0, 1, 100_001, endpoint=False), jnp.asarray([np.nextafter(1, 0)])]
    ).astype(jnp.float32)
    for radius in (1, 2, 5):
        dy, dx = replacement_offsets(u, radius)
        dy, dx = np.asarray(dy), np.asarray(dx)
        assert not np.any((dy == 0) & (dx == 0))
        assert dy.min() == -radius and dy.max() == radius
        assert dx.min() == -radius and dx.max() == radius
        # every non-centre position of the window is reachable
        side = 2 * radius + 1
        assert len(set(zip(dy.tolist(), dx.tolist(), strict=True))) == side * side - 1


@pytest.mark.parametrize("shape", [(64, 64), (24, 36)])
def test_masked_pixels_are_spaced_by_more_than_the_gap(shape):
    grid = mask_grid(*shape, 0.05, 5)
    coords = jax.jit(jax.vmap(lambda u: masked_coords(u, grid)))(
        jr.uniform(jr.PRNGKey(0), (300, 2 + 2 * grid.n_masked), dtype=jnp.float32)
    )
    ys, xs = (np.asarray(c) for c in coords)
    assert ys.min() >= 0 and ys.max() < shape[0] and xs.min() >= 0 and xs.max() < shape[1]
    dist = np.maximum(
        np.abs(ys[:, :, None] - ys[:, None, :]), np.abs(xs[:, :, None] - xs[:, None, :])
    )
    off_diag = ~np.eye(grid.n_masked, dtype=bool)
    assert dist[:, off_diag].min() >= grid.gap + 1


def test_default_grid_masks_about_0p2_percent():
    grid = mask_grid(64, 64, 0.002, 5)
    assert abs(grid.n_masked / 4096 - 0.002) < 0.0005  # 9 pixels on a 3x3 grid


@pytest.mark.parametrize(
    ("mode", "kwargs"),
    [("n2v", {}), ("n2v2", {}), ("struct", {"span": 7}), ("struct", {"horizontal": False})],
)
def test_masked_input_does_not_depend_on_the_masked_pixels(mode, kwargs):
    """By construction on a small patch: the Jacobian of the network input with respect
    to the original value of every masked pixel is exactly zero (the pixel is neither
    kept nor copied anywhere), and the masked positions hold new values."""
    shape = (2, 24, 28)
    gap = max(5, kwargs.get("span", 7) // 2)
    grid = mask_grid(shape[1], shape[2], 0.03, gap)
    # distinct values in random order (on a ramp the window median equals the centre)
    values = np.random.default_rng(0).permutation(int(np.prod(shape))) / 100.0
    patch = jnp.asarray(values.reshape(shape), dtype=jnp.float32)

    def run(key, p):
        return mask_patch(key, p, grid, mode=mode, **kwargs)

    run_jit = jax.jit(run)
    jac_fn = jax.jit(jax.jacrev(lambda p, key: run(key, p)[0]))  # (c,y,x,c,y,x)
    for seed in range(4):
        key = jr.PRNGKey(seed)
        masked, ys, xs = run_jit(key, patch)
        jac = jac_fn(patch, key)
        ys, xs = np.asarray(ys), np.asarray(xs)
        assert np.all(np.asarray(jac)[..., ys, xs] == 0.0)
        assert np.all(np.asarray(masked)[:, ys, xs] != np.asarray(patch)[:, ys, xs])
        unmasked = np.ones(shape[1:], bool)
        unmasked[ys, xs] = False
        if mode != "struct":  # only the masked pixels change
            assert np.array_equal(np.asarray(masked)[:, unmasked], np.asarray(patch)[:, unmasked])


def test_struct_mask_replaces_the_whole_line():
    grid = mask_grid(32, 32, 0.01, 5)
    patch = jnp.arange(32 * 32, dtype=jnp.float32).reshape(1, 32, 32)
    masked, ys, xs = jax.jit(lambda k, p: mask_patch(k, p, grid, mode="struct", span=7))(
        jr.PRNGKey(3), patch
    )
    changed = np.asarray(masked != patch)[0]
    for y, x in zip(np.asarray(ys), np.asarray(xs), strict=True):
        lo, hi = max(0, x - 3), min(32, x + 4)
        assert changed[y, lo:hi].all()
    assert changed.sum() <= grid.n_masked * 7
    # the fill values lie in the patch's range
    assert float(masked.min()) >= 0.0 and float(masked.max()) <= 32 * 32 - 1
