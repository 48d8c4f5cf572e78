"""Tests of operando.metrics against exact values, brute force and scikit-image."""

import math

import numpy as np
import pytest
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from operando import metrics
from operando.errors import DataError, ParameterError

# Our SSIM/PSNR run the same float64 operations as scikit-image (same scipy Gaussian
# filter, same formula); only summation order may differ, so they agree to round-off.
# 1e-10 leaves ample margin over float64 round-off (~1e-15) while any difference in
# window, constants or covariance normalisation shows at >= 1e-4.
SKIMAGE_TOL = 1e-10


def camera_pair():
    ref = skimage.data.camera().astype(np.float64) / 255.0
    rng = np.random.default_rng(0)
    noisy = np.clip(ref + 0.1 * rng.standard_normal(ref.shape), 0.0, 1.0)
    return ref, noisy


# ------------------------------------------------------------------------------ mse


def test_mse_exact():
    ref = np.array([[0.0, 1.0], [2.0, 3.0]])
    x = np.array([[1.0, 1.0], [0.0, 3.0]])
    assert metrics.mse(ref, x) == (1.0 + 0.0 + 4.0 + 0.0) / 4


# ----------------------------------------------------------------------------- psnr


def test_psnr_exact_for_constant_offset():
    ref = np.zeros((8, 8))
    # MSE = 0.01, L = 1 -> 10 log10(1 / 0.01) = 20 dB; with L = 2 add 20 log10(2).
    assert metrics.psnr(ref, ref + 0.1, data_range=1.0) == pytest.approx(20.0, abs=1e-12)
    assert metrics.psnr(ref, ref + 0.1, data_range=2.0) == pytest.approx(
        20.0 + 20 * math.log10(2), abs=1e-12
    )
    assert metrics.psnr(ref, ref, data_range=1.0) == math.inf


def test_psnr_matches_skimage():
    ref, noisy = camera_pair()
    expected = peak_signal_noise_ratio(ref, noisy, data_range=1.0)
    assert metrics.psnr(ref, noisy, data_range=1.0) == pytest.approx(expected, abs=SKIMAGE_TOL)
    rng = np.random.default_rng(1)
    a, b = rng.uniform(size=(3, 40, 50)), rng.uniform(size=(3, 40, 50))
    expected = peak_signal_noise_ratio(a, b, data_range=1.0)  # whole-array MSE
    assert metrics.psnr(a, b, data_range=1.0) == pytest.approx(expected, abs=SKIMAGE_TOL)


def test_psnr_requires_a_valid_data_range():
    ref, noisy = camera_pair()
    with pytest.raises(TypeError):
        metrics.psnr(ref, noisy)  # data_range is required
    with pytest.raises(ParameterError, match="data_range"):
        metrics.psnr(ref, noisy, data_range=0.0)


# ----------------------------------------------------------------------------- ssim


def skimage_ssim(ref, x, data_range, sigma=1.5):
    return structural_similarity(
        ref,
        x,
        data_range=data_range,
        gaussian_weights=True,
        sigma=sigma,
        use_sample_covariance=False,
    )


def test_ssim_matches_skimage_on_camera():
    ref, noisy = camera_pair()
    ours = metrics.ssim(ref, noisy, data_range=1.0)
    assert ours == pytest.approx(skimage_ssim(ref, noisy, 1.0), abs=SKIMAGE_TOL)
    assert metrics.ssim(ref, ref, data_range=1.0) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("shape", "sigma"), [((11, 11), 1.5), ((37, 64), 1.5), ((30, 20), 0.8)])
def test_ssim_matches_skimage_on_random_images(shape, sigma):
    rng = np.random.default_rng(2)
    a = rng.uniform(size=shape)
    b = np.clip(a + 0.2 * rng.standard_normal(shape), 0, 1)
    ours = metrics.ssim(a, b, data_range=2.0, sigma=sigma)
    assert ours == pytest.approx(skimage_ssim(a, b, 2.0, sigma), abs=SKIMAGE_TOL)


def test_ssim_of_series_is_mean_over_frames():
    rng = np.random.default_rng(3)
    a = rng.uniform(size=(4, 24, 32))
    b = 0.5 * a + 0.5 * rng.uniform(size=a.shape)
    expected = np.mean([skimage_ssim(a[i], b[i], 1.0) for i in range(4)])
    assert metrics.ssim(a, b, data_range=1.0) == pytest.approx(expected, abs=SKIMAGE_TOL)


def test_ssim_rejects_frames_smaller_than_window():
    with pytest.raises(DataError, match="11"):
        metrics.ssim(np.zeros((10, 40)), np.zeros((10, 40)), data_range=1.0)


# ------------------------------------------------------------------------------ cnr


def test_cnr_on_constructed_image():
    # Signal pixels alternate m_s +- d_s (mean m_s, population variance d_s^2); the same
    # for the background: the CNR is known in closed form.
    m_s, d_s, m_b, d_b = 0.8, 0.05, 0.2, 0.1
    img = np.zeros((10, 20))
    sig = np.zeros_like(img, dtype=bool)
    sig[:, :10] = True
    bkg = ~sig
    pm = np.where(np.indices(img.shape).sum(axis=0) % 2 == 0, 1.0, -1.0)  # 50 + and 50 -
    img[sig] = m_s + d_s * pm[sig]
    img[bkg] = m_b + d_b * pm[bkg]
    expected = abs(m_s - m_b) / math.sqrt(d_s**2 + d_b**2)
    assert metrics.cnr(img, sig, bkg) == pytest.approx(expected, rel=1e-12)
    assert metrics.cnr(img, sig, bkg, noise="background") == pytest.approx(
        abs(m_s - m_b) / d_b, rel=1e-12
    )
    # A (y, x) mask applies to every frame of a series; pooling identical frames is a no-op.
    series = np.stack([img, img, img])
    assert metrics.cnr(series, sig, bkg) == pytest.approx(expected, rel=1e-12)


def test_cnr_bad_masks():
    img = np.random.default_rng(4).uniform(size=(8, 8))
    sig = np.zeros((8, 8), dtype=bool)
    sig[:4] = True
    with pytest.raises(DataError, match="share"):
        metrics.cnr(img, sig, sig)
    with pytest.raises(DataError, match="no pixels"):
        metrics.cnr(img, sig, np.zeros((8, 8), dtype=bool))
    with pytest.raises(DataError, match="shape"):
        metrics.cnr(img, sig, np.ones((7, 8), dtype=bool))
    with pytest.raises(DataError, match="bool"):
        metrics.cnr(img, sig, (~sig).astype(int))
    with pytest.raises(ParameterError, match="noise"):
        metrics.cnr(img, sig, ~sig, noise="signal")


# ------------------------------------------------------------------------ local_std


def brute_local_std(x, size):
    r = [s // 2 for s in size]
    p = np.pad(x, [(k, k) for k in r], mode="symmetric")  # scipy "reflect"
    out = np.empty_like(x)
    for idx in np.ndindex(*x.shape):
        win = p[tuple(slice(i, i + s) for i, s in zip(idx, size, strict=True))]
        out[idx] = win.std()
    return out


@pytest.mark.parametrize(("shape", "size"), [((4, 5, 6), 3), ((5, 6, 7), (3, 1, 5)), ((6, 7), 3)])
def test_local_std_matches_brute_force(shape, size):
    x = np.random.default_rng(5).uniform(size=shape) + 100.0  # offset: cancellation check
    sizes = (size,) * len(shape) if isinstance(size, int) else size
    # E[x^2] - E[x]^2 after removing the global mean loses ~1e-16 * (window spread)^2
    # relative to the variance; 1e-10 absolute is far above that and far below noise.
    np.testing.assert_allclose(
        metrics.local_std(x, size), brute_local_std(x, sizes), rtol=0, atol=1e-10
    )


def test_local_std_of_constant_is_zero_and_bad_size():
    assert np.all(metrics.local_std(np.full((3, 4, 4), 2.5)) == 0.0)
    with pytest.raises(ParameterError, match="size"):
        metrics.local_std(np.zeros((3, 4, 4)), (3, 3))
    with pytest.raises(ParameterError, match="size"):
        metrics.local_std(np.zeros((3, 4, 4)), 4)


# ---------------------------------------------------------------------- compare, errors


def test_compare_defaults_data_range_to_reference_span_and_records_it():
    ref, noisy = camera_pair()
    out = metrics.compare(ref, noisy)
    span = float(ref.max() - ref.min())
    assert out["data_range"] == span
    assert out["data_range_source"] == "ref.max() - ref.min()"
    assert out["mse"] == metrics.mse(ref, noisy)
    assert out["rmse"] == pytest.approx(math.sqrt(out["mse"]), rel=1e-15)
    assert out["psnr"] == metrics.psnr(ref, noisy, data_range=span)
    assert out["ssim"] == metrics.ssim(ref, noisy, data_range=span)
    assert out["max_abs_error"] == float(np.max(np.abs(noisy - ref)))
    given = metrics.compare(ref, noisy, data_range=2.0)
    assert given["data_range"] == 2.0 and given["data_range_source"] == "argument"


@pytest.mark.parametrize(
    "call",
    [
        lambda a, b: metrics.mse(a, b),
        lambda a, b: metrics.psnr(a, b, data_range=1.0),
        lambda a, b: metrics.ssim(a, b, data_range=1.0),
        lambda a, b: metrics.compare(a, b),
    ],
)
def test_mismatched_shapes_and_nans_raise_data_error(call):
    a = np.random.default_rng(6).uniform(size=(16, 16))
    with pytest.raises(DataError) as info:
        call(a, np.zeros((16, 15)))
    assert "(16, 16)" in str(info.value) and "(16, 15)" in str(info.value)
    b = a.copy()
    b[3, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        call(a, b)
