"""Tests of operando.noise: statistics of every model against its defining equation.

Tolerances are multiples of the standard error of the estimated statistic for the sample
size used (5 SE unless stated), so a correct implementation fails with probability
< 1e-6 per check, while a wrong scale, order or axis shifts the statistic by many SE.
Every test uses fixed keys, so the outcome is deterministic anyway.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage as ndi

from operando import noise
from operando.errors import DataError, ParameterError

KEY = jax.random.key(20240601)
# Few distinct shapes, so that each jitted kernel compiles only a couple of times.
STAT_SHAPE = (4, 64, 64)  # 16384 pixels for the statistical checks
SHAPE = (2, 32, 32)
ALL_SPECS = ("gaussian:0.3", "poisson:100", "impulse:0.4", "composite", "scanline:0.2:3")


def smooth_field(shape=STAT_SHAPE):
    """Clean (t, y, x) field in (0.1, 0.9) with different contrast per frame."""
    t, ny, nx = shape
    yy, xx = np.meshgrid(
        np.linspace(0, 2 * np.pi, ny), np.linspace(0, 2 * np.pi, nx), indexing="ij"
    )
    frames = [0.5 + (0.1 + 0.08 * k) * np.sin(xx + k) * np.cos(yy - k) for k in range(t)]
    return np.stack(frames)


# ------------------------------------------------------------------------- gaussian


def test_gaussian_relative_amplitude_per_frame():
    x = smooth_field()  # frame stds differ (amplitudes 0.1 to 0.34)
    rel = 0.3
    y = np.asarray(noise.gaussian(KEY, x, rel, clip=None))
    d = y - x
    n = x.shape[-1] * x.shape[-2]
    for f in range(x.shape[0]):
        target = rel * x[f].std()
        # The sample std of n normals has relative standard error 1/sqrt(2n).
        assert d[f].std() / target == pytest.approx(1.0, abs=5 / math.sqrt(2 * n))
        # The mean of n draws has standard error target/sqrt(n).
        assert abs(d[f].mean()) < 5 * target / math.sqrt(n)


def test_gaussian_zero_amplitude_is_identity():
    x = smooth_field()
    np.testing.assert_array_equal(np.asarray(noise.gaussian(KEY, x, 0.0, clip=None)), x)


# -------------------------------------------------------------------------- poisson


@pytest.mark.parametrize("lam", [1e2, 1e3, 1e4])
@pytest.mark.parametrize("c", [0.2, 0.7])
def test_poisson_mean_and_variance_scale_as_x_over_lambda(lam, c):
    x = np.full(STAT_SHAPE, c)
    n = x.size
    y = np.asarray(noise.poisson(KEY, x, lam, clip=None))
    var = c / lam
    # Mean: standard error sqrt(var / n).
    assert abs(y.mean() - c) < 5 * math.sqrt(var / n)
    # Variance: relative standard error sqrt(2 / n) (counts >= 20, so nearly Gaussian;
    # the Poisson excess kurtosis 1/(lam c) <= 0.05 adds < 3 % to that SE).
    assert y.var() / var == pytest.approx(1.0, abs=5 * math.sqrt(2 / n))


def test_poisson_values_are_counts_over_lambda_and_negative_is_zero():
    x = np.full(SHAPE, 0.3)
    x[0, 0, :5] = -0.5
    x[0, 1, :5] = 0.0
    y = np.asarray(noise.poisson(KEY, x, 100.0, clip=None))
    np.testing.assert_allclose(y * 100, np.round(y * 100), atol=1e-9)
    assert np.all(y[0, :2, :5] == 0.0)


# -------------------------------------------------------------------------- impulse


@pytest.mark.parametrize("alpha", [0.2, 0.3, 0.4])
def test_impulse_fraction_before_median(alpha):
    rng = np.random.default_rng(1)
    x = rng.uniform(0.2, 0.8, size=STAT_SHAPE)  # never exactly 0 or 1
    y = np.asarray(noise.impulse(KEY, x, alpha, median=False, clip=None))
    n = x.size
    hit = y != x
    salt = y == 1.0
    pepper = y == 0.0
    np.testing.assert_array_equal(hit, salt | pepper)  # a hit pixel is salt or pepper
    # Binomial fractions: standard error sqrt(p (1 - p) / n).
    assert abs(hit.mean() - alpha) < 5 * math.sqrt(alpha * (1 - alpha) / n)
    assert abs(salt.mean() - alpha / 2) < 5 * math.sqrt(alpha / 2 * (1 - alpha / 2) / n)


def test_impulse_custom_values():
    x = np.full(SHAPE, 5.0)
    y = np.asarray(noise.impulse(KEY, x, 1.0, median=False, low=-1.0, high=9.0, clip=None))
    assert set(np.unique(y)) == {-1.0, 9.0}


def test_median_removes_isolated_outliers():
    x = np.full((2, 20, 20), 0.5)
    spiky = x.copy()
    spiky[0, 5, 5] = 1.0
    spiky[0, 0, 0] = 0.0  # corner: reflected boundary
    spiky[1, 10, 19] = 1.0  # edge
    spiky[1, 2, 14] = 0.0
    np.testing.assert_array_equal(np.asarray(noise.median3x3(spiky)), x)


def test_impulse_with_median_restores_sparse_corruption():
    x = np.full((64, 64), 0.5)
    y = np.asarray(noise.impulse(KEY, x, 0.02, clip=None))
    # With 2 % impulses a 3x3 window holds >= 5 corrupted pixels with probability
    # ~ C(9,5) 0.02^5 = 4e-7 per pixel, so essentially every pixel is restored.
    assert np.mean(y == 0.5) > 0.999


@pytest.mark.parametrize("shape", [(3, 17, 23), (9, 9), (1, 1), (2, 1, 5), (2, 2, 4, 6)])
def test_median3x3_matches_scipy(shape):
    x = np.random.default_rng(2).uniform(size=shape)
    expected = ndi.median_filter(x, size=(1,) * (len(shape) - 2) + (3, 3), mode="reflect")
    np.testing.assert_array_equal(np.asarray(noise.median3x3(x)), expected)


# ------------------------------------------------------------------------ composite


def test_composite_is_impulse_poisson_gaussian_median_in_that_order():
    x = smooth_field(SHAPE)
    k_imp, k_poi, k_gau = jax.random.split(KEY, 3)
    manual = noise.impulse(k_imp, x, 0.2, median=False, clip=None)
    manual = noise.poisson(k_poi, manual, 1e4, clip=None)
    manual = noise.gaussian(k_gau, manual, 0.1, clip=None)
    manual = jnp.clip(noise.median3x3(manual), 0.01, 0.99)
    np.testing.assert_array_equal(np.asarray(noise.composite(KEY, x)), np.asarray(manual))
    np.testing.assert_array_equal(
        np.asarray(noise.apply_noise(KEY, x, "composite")), np.asarray(manual)
    )


# ------------------------------------------------------------------------- scanline


def test_scanline_is_correlated_along_x_only():
    x = smooth_field()
    sigma, length = 0.5, 4.0
    y = np.asarray(noise.scanline(KEY, x, sigma, length, clip=None))
    e = (y - x) / (sigma * x.std(axis=(-2, -1), keepdims=True))  # unit-variance AR(1)

    def lag1(a, axis):
        a0 = np.moveaxis(a, axis, -1)
        return np.mean(a0[..., 1:] * a0[..., :-1])

    phi = math.exp(-1 / length)
    # Unit variance by construction: SE of a variance estimate ~ sqrt(2/n) = 0.011,
    # inflated by the correlation (factor sqrt((1 + phi^2)/(1 - phi^2)) ~ 2) -> 5 SE ~ 0.11.
    assert e.var() == pytest.approx(1.0, abs=0.11)
    # Lag-1 autocorrelation along x is phi = exp(-1/length) = 0.78; its SE for n = 16384
    # AR(1) samples is ~ sqrt((1 - phi^2) / n) = 0.005, so 0.03 is ~ 6 SE.
    assert lag1(e, -1) == pytest.approx(phi, abs=0.03)
    # Rows are independent: lag-1 along y is 0 with SE ~ sqrt((1+phi^2)/(1-phi^2)/n)
    # = 0.016, so 0.08 is 5 SE.
    assert abs(lag1(e, -2)) < 0.08
    assert lag1(e, -1) > 10 * abs(lag1(e, -2))


def test_scanline_zero_length_is_white():
    x = smooth_field()
    y = np.asarray(noise.scanline(KEY, x, 1.0, 0.0, clip=None))
    e = (y - x) / x.std(axis=(-2, -1), keepdims=True)
    # Lag-1 product mean of white noise has SE 1/sqrt(n) = 0.008.
    assert abs(np.mean(e[..., 1:] * e[..., :-1])) < 0.04


# ------------------------------------------------------------- clipping, keys, dtypes


@pytest.mark.parametrize(
    "spec", ["gaussian:0.3", "poisson:100", "impulse:0.4", "composite", "scanline:1:3"]
)
def test_clip_default_and_disabled(spec):
    # A clean ramp spanning [0, 1] (like a phase-separated concentration field): every
    # model pushes some pixels beyond [0.01, 0.99], so the clip is active.
    x = np.broadcast_to(np.linspace(0.0, 1.0, SHAPE[-1]), SHAPE)
    y = np.asarray(noise.apply_noise(KEY, x, spec))
    assert y.min() >= 0.01 and y.max() <= 0.99
    assert y.min() == 0.01 and y.max() == 0.99
    raw = np.asarray(noise.apply_noise(KEY, x, spec, clip=None))
    assert raw.min() < 0.01 or raw.max() > 0.99
    np.testing.assert_array_equal(np.clip(raw, 0.01, 0.99), y)
    custom = np.asarray(noise.apply_noise(KEY, x, spec, clip=(0.2, 0.8)))
    assert custom.min() >= 0.2 and custom.max() <= 0.8


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_same_key_same_output_other_key_other_output(spec):
    x = smooth_field(SHAPE)
    a = np.asarray(noise.apply_noise(jax.random.key(7), x, spec))
    b = np.asarray(noise.apply_noise(jax.random.key(7), x, spec))
    c = np.asarray(noise.apply_noise(jax.random.key(8), x, spec))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("spec", "direct"),
    [
        ("gaussian:0.2", lambda k, x: noise.gaussian(k, x, 0.2)),
        ("poisson:1e3", lambda k, x: noise.poisson(k, x, 1e3)),
        ("impulse:0.3", lambda k, x: noise.impulse(k, x, 0.3)),
        ("scanline:0.1:2.5", lambda k, x: noise.scanline(k, x, 0.1, 2.5)),
    ],
)
def test_apply_noise_dispatches_to_the_model(spec, direct):
    x = smooth_field(SHAPE)
    np.testing.assert_array_equal(
        np.asarray(noise.apply_noise(KEY, x, spec)), np.asarray(direct(KEY, x))
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dtype_is_preserved(dtype):
    x = smooth_field(SHAPE).astype(dtype)
    # float32 compiles every kernel anew; two models (impulse includes the median) keep
    # this test fast, float64 covers all five.
    specs = ["gaussian:0.3", "impulse:0.4"] if dtype == np.float32 else list(ALL_SPECS)
    for spec in specs:
        assert noise.apply_noise(KEY, x, spec).dtype == dtype


def test_integer_images_become_float():
    x = np.ones(SHAPE, dtype=np.int32)
    assert noise.gaussian(KEY, x, 0.1, clip=None).dtype == jnp.float64


def test_models_work_under_jit():
    x = jnp.asarray(smooth_field(SHAPE))
    f = jax.jit(lambda k, a: noise.composite(k, a))
    # XLA may fuse and reorder the arithmetic differently: agree to float64 round-off.
    np.testing.assert_allclose(
        np.asarray(f(KEY, x)), np.asarray(noise.composite(KEY, x)), rtol=1e-14, atol=0
    )


# ------------------------------------------------------------------------------ specs


@pytest.mark.parametrize(
    ("text", "name", "params", "canonical"),
    [
        ("gaussian:0.3", "gaussian", (0.3,), "gaussian:0.3"),
        ("poisson:100", "poisson", (100.0,), "poisson:100"),
        ("Poisson:1e4", "poisson", (1e4,), "poisson:10000"),
        (" impulse : 0.4 ", "impulse", (0.4,), "impulse:0.4"),
        ("composite", "composite", (), "composite"),
        ("scanline:0.05:3.5", "scanline", (0.05, 3.5), "scanline:0.05:3.5"),
    ],
)
def test_parse_noise_spec_and_round_trip(text, name, params, canonical):
    spec = noise.parse_noise_spec(text)
    assert spec == noise.NoiseSpec(name, params)
    assert str(spec) == spec.describe() == canonical
    assert noise.parse_noise_spec(str(spec)) == spec
    assert spec.as_dict()["noise"] == canonical


@pytest.mark.parametrize(
    "bad",
    [
        "gauss:0.3",
        "",
        "gaussian",
        "gaussian:0.1:2",
        "gaussian:abc",
        "gaussian:-0.1",
        "gaussian:nan",
        "poisson:0",
        "poisson:-5",
        "impulse:1.5",
        "impulse:-0.1",
        "composite:0.2",
        "scanline:0.1",
        "scanline:0.1:-1",
    ],
)
def test_bad_specs_raise_parameter_error_naming_spec_and_forms(bad):
    with pytest.raises(ParameterError) as info:
        noise.parse_noise_spec(bad)
    msg = str(info.value)
    assert repr(bad) in msg
    assert "gaussian:REL" in msg and "scanline:SIGMA:LEN" in msg


def test_noise_spec_validates_on_construction():
    with pytest.raises(ParameterError):
        noise.NoiseSpec("poisson", (0.0,))
    with pytest.raises(ParameterError):
        noise.NoiseSpec("blur", ())


# ------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_with_where_and_fix():
    x = smooth_field(SHAPE)
    bad = x.copy()
    bad[0, 1, 1] = np.nan
    with pytest.raises(DataError, match="NaN/inf"):
        noise.gaussian(KEY, bad, 0.1)
    with pytest.raises(DataError, match="NaN/inf"):
        noise.apply_noise(KEY, np.where(bad > 0, np.inf, 0.0), "poisson:10")
    with pytest.raises(DataError, match="dimension"):
        noise.gaussian(KEY, np.ones(5), 0.1)
    with pytest.raises(ParameterError, match="rel"):
        noise.gaussian(KEY, x, -0.1)
    with pytest.raises(ParameterError, match="lam"):
        noise.poisson(KEY, x, 0.0)
    with pytest.raises(ParameterError, match="alpha"):
        noise.impulse(KEY, x, 1.1)
    with pytest.raises(ParameterError, match="length"):
        noise.scanline(KEY, x, 0.1, -2.0)
    with pytest.raises(ParameterError, match="clip"):
        noise.gaussian(KEY, x, 0.1, clip=(0.9, 0.1))
    with pytest.raises(ParameterError, match="key"):
        noise.gaussian(0, x, 0.1)
    err = None
    try:
        noise.gaussian(KEY, bad, 0.1)
    except DataError as e:
        err = e
    assert err is not None and err.where and err.fix
