"""Affine registration of a composition map onto a strain map; map loading."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, map_coordinates

from operando.errors import DataError, FileFormatError
from operando.modalities.strain import (
    apply_affine,
    edge_excluded_mask,
    load_composition_map,
    load_strain_map,
    register_affine,
)


def _pair(seed=0):
    """Reference (a-strain ~ 0.05 X + noise) and a composition map seen through a known affine."""
    rng = np.random.default_rng(seed)
    h, w = 48, 40
    field = gaussian_filter(rng.standard_normal((h + 20, w + 20)), 4)[10:-10, 10:-10]
    field = (field - field.min()) / np.ptp(field)
    yy, xx = np.mgrid[:h, :w]
    mask = ((yy - 23.5) / 21) ** 2 + ((xx - 19.5) / 17) ** 2 < 1
    ref = np.where(mask, 0.05 * field + 1e-3 * rng.standard_normal((h, w)), np.nan)
    th = np.radians(4)
    a = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]) @ np.diag([1.04, 0.97])
    centre = (np.array(ref.shape) - 1) / 2
    off = np.array([3.0, -2.0])
    y2, x2 = np.mgrid[:56, :48].astype(float)
    src = np.linalg.inv(a) @ (np.stack([y2.ravel(), x2.ravel()]) - (centre + off)[:, None])
    src += centre[:, None]
    mv = map_coordinates(np.where(mask, field, -1.0), src, order=1, cval=-1).reshape(56, 48)
    return np.where(mv < 0, np.nan, mv), ref, mask, field, a, off


def test_register_affine_recovers_transform_and_reports_correlation():
    mv, ref, mask, field, a, off = _pair()
    reg = register_affine(mv, ref, mask, steps=200)
    np.testing.assert_allclose(reg.matrix, a, atol=0.01)  # 1 % of the linear part
    np.testing.assert_allclose(reg.offset, off, atol=0.2)  # sub-pixel
    assert reg.correlation > reg.initial_correlation
    assert reg.correlation > 0.99  # 1e-3 noise on a 0.05-range signal
    assert reg.n_pixels == int(edge_excluded_mask(mask, 4).sum())
    back = apply_affine(mv, reg, ref.shape)
    inner = edge_excluded_mask(mask, 4)
    np.testing.assert_allclose(back[inner], field[inner], atol=0.03)


def test_edge_exclusion():
    m = np.zeros((20, 20), bool)
    m[2:18, 2:18] = True
    assert edge_excluded_mask(m, 4).sum() == 8 * 8


def test_register_rejects_tiny_masks_and_bad_sign():
    mv, ref, mask, *_ = _pair()
    with pytest.raises(DataError, match="inside the particle"):
        register_affine(mv, ref, np.zeros_like(mask))
    with pytest.raises(Exception, match="sign"):
        register_affine(mv, ref, mask, sign=2.0)


def test_load_maps(tmp_path):
    e = np.random.default_rng(0).standard_normal((3, 5, 4))
    np.save(tmp_path / "s.npy", e)
    np.testing.assert_array_equal(load_strain_map(tmp_path / "s.npy"), np.moveaxis(e, 0, -1))
    x = np.full((5, 4), np.nan)
    x[1:4, 1:3] = 0.4
    np.save(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(load_composition_map(tmp_path / "x.npy"), x)  # NaN kept
    np.save(tmp_path / "bad.npy", np.zeros((5, 4)))
    with pytest.raises(DataError, match="strain map has shape"):
        load_strain_map(tmp_path / "bad.npy")
    with pytest.raises(FileFormatError, match="does not exist"):
        load_strain_map(tmp_path / "missing.npy")


@pytest.mark.slow
def test_outline_term_registers_a_single_interface_particle():
    # One straight interface fixes only its own position; the Dice term on the particle
    # outlines makes the affine identifiable (pure correlation drifts to |dA| ~ 0.26 here).
    from operando.simulate import simulate_strain

    p = simulate_strain(1, seed=3, noise=1e-3)[0]
    ref = p.strain[..., 0]
    th = np.radians(3)
    a = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]) @ np.diag([1.03, 0.98])
    centre = (np.array(ref.shape) - 1) / 2
    off = np.array([3.0, 4.0])
    y2, x2 = np.mgrid[:56, :44].astype(float)
    src = np.linalg.inv(a) @ (np.stack([y2.ravel(), x2.ravel()]) - (centre + off)[:, None])
    src += centre[:, None]
    comp = np.nan_to_num(p.composition, nan=-1)
    mv = map_coordinates(comp, src, order=1, cval=-1).reshape(56, 44)
    mv = np.where(mv < 0, np.nan, mv)
    reg = register_affine(mv, ref, p.mask)
    np.testing.assert_allclose(reg.matrix, a, atol=0.03)  # measured 0.017
    np.testing.assert_allclose(reg.offset, off, atol=0.6)  # measured 0.36 px
