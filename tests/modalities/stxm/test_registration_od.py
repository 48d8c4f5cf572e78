"""Registration (sub-pixel shifts), optical density, I0, segmentation, cropping, thickness."""

import jax
import numpy as np
import pytest
from scipy import ndimage as ndi

from operando.errors import DataError
from operando.modalities import stxm


def _scene(shape=(64, 64), seed=0):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape), 2.0) * 10


def _fourier_shift(img, shift):
    return np.fft.ifftn(ndi.fourier_shift(np.fft.fftn(img), shift)).real


@pytest.mark.parametrize("reference", ["first", 0, "mean"])
def test_recovers_known_subpixel_shifts(reference):
    rng = np.random.default_rng(1)
    base = _scene()
    true = np.array([[0.0, 0.0], [1.3, -0.7], [-2.45, 0.35], [0.6, 3.15]])
    planes = [_fourier_shift(base, s) for s in true]
    stack = np.stack(planes) + rng.normal(0, 0.02, (4, 64, 64))  # ~1 % noise
    res = stxm.register_stack(stack, reference=reference, interpolation="fourier")
    recovered = res.shifts - res.shifts[0]  # relative to plane 0
    # shifts are applied to undo the displacement: recovered = -true (to 0.1 px)
    np.testing.assert_allclose(recovered, -true, atol=0.1)
    # the aligned planes match plane 0 (inside, away from wrapped edges)
    aligned = res.images
    assert np.abs(aligned[1:, 8:-8, 8:-8] - aligned[0, 8:-8, 8:-8]).mean() < 0.05


def test_series_chained_registration():
    base = _scene(seed=3)
    drift = np.cumsum(np.full((6, 2), [0.4, -0.3]), axis=0) - [0.4, -0.3]
    series = np.stack([_fourier_shift(base * (1 + 0.05 * t), s) for t, s in enumerate(drift)])
    res = stxm.register_series(series)
    np.testing.assert_allclose(res.shifts, -drift, atol=0.1)


def test_optical_density_and_i0():
    i0 = np.array([1000.0, 2000.0])
    img = np.empty((2, 10, 10))
    img[:] = i0[:, None, None]
    img[:, 3:7, 3:7] *= np.exp(-0.5)
    od = stxm.optical_density(img, i0)
    np.testing.assert_allclose(od[:, 4, 4], 0.5)
    np.testing.assert_allclose(od[:, 0, 0], 0.0, atol=1e-15)
    est, background = stxm.estimate_i0_otsu(img)
    np.testing.assert_allclose(est, i0)
    assert background.sum() == 100 - 16
    with pytest.raises(DataError, match="I0 has 3 values for 2 energies"):
        stxm.optical_density(img, [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match=r"i0\.xsp.*outside the I0 spectrum"):
        stxm.interpolate_i0([700, 710], [1, 1], [699, 705, 720], source="i0.xsp")
    bad = img.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        stxm.optical_density(bad, i0)


def test_segment_crop_and_thickness():
    refs = stxm.model_references()
    e = np.linspace(700.0, 730.0, 65)
    x, mask, h = stxm.synthetic_particle((32, 40))
    ds = stxm.synthetic_stxm(jax.random.key(0), x, refs, e, mask=mask, thickness=h, i0=1e5)
    od = stxm.optical_density(ds["images"].values, ds["i0"].values)
    masks, _ = stxm.segment_particles(od, min_size=5)
    assert masks.shape[0] == 1
    overlap = (masks[0] & mask).sum() / mask.sum()
    assert overlap > 0.8 and not (masks[0] & ~mask).any()  # thin rim may fall below Otsu
    crops = stxm.crop_particles(od, masks, pad=1)
    y0, y1, x0, x1 = crops[0].box
    assert crops[0].images.shape == (65, y1 - y0, x1 - x0)
    assert crops[0].mask.sum() == masks[0].sum()
    proxy = stxm.thickness_proxy(od, e, background=0.05)
    r = np.corrcoef(proxy[mask], h[mask])[0, 1]
    assert r > 0.99  # pre-edge OD is proportional to the amount h
