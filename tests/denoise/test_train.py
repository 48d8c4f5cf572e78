"""End-to-end N2V training, checkpoint/resume, ensembles, save/load, tiling, bad input."""

import json

import jax.random as jr
import numpy as np
import pytest

from operando.denoise import Denoiser, DenoiserConfig, load_denoiser, train_denoiser
from operando.denoise._config import build_model
from operando.errors import DataError, FileFormatError, ParameterError


def blobs(size=96, seed=0):
    """Smooth Gaussian blobs in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    img = np.zeros((size, size))
    for _ in range(8):
        cy, cx = rng.uniform(0, size, 2)
        s = rng.uniform(6, 14)
        img += rng.uniform(0.3, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return img / img.max()


def psnr(ref, x):
    return 10 * np.log10(1.0 / np.mean((ref - x) ** 2))


# Small but real settings shared by the tests below, so that the jitted training step is
# compiled once per test session (the step is cached on these settings).
TINY = dict(patch_size=32, batch_size=8, base_filters=8, masked_fraction=0.02, learning_rate=2e-3)


@pytest.fixture(scope="module")
def problem():
    clean = blobs()
    noisy = clean + np.random.default_rng(1).normal(0, 0.15, clean.shape)
    return clean, noisy


@pytest.fixture(scope="module")
def trained(problem):
    _, noisy = problem
    return train_denoiser(noisy, method="n2v", key=0, epochs=1, steps_per_epoch=300, **TINY)


def test_n2v_raises_psnr(problem, trained):
    """300 steps on one 96x96 image of smooth blobs + Gaussian noise (sigma 0.15).

    Measured (seeds 0-2, 2 CPU cores): noisy 16.5 dB, denoised 30.6-31.6 dB, a gain of
    about 14 dB. The required 8 dB leaves ~6 dB headroom for seed/platform variation while
    still failing for anything that merely copies its input (0 dB) or blurs lightly.
    """
    clean, noisy = problem
    out = trained.predict(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float64
    assert psnr(clean, out) > psnr(clean, noisy) + 8.0
    assert np.isfinite(trained.training["final_loss"])
    assert trained.training["losses"].shape == (1, 300)


def test_tiled_prediction_equals_untiled(problem, trained):
    _, noisy = problem
    frames = np.stack([noisy[:88, :80], noisy[8:, 16:]])  # (2, 88, 80): not tile multiples
    full = trained.predict(frames)
    tiled = trained.predict(frames, tile=32)
    # Same context within the receptive field; differences are float32 summation order.
    np.testing.assert_allclose(tiled, full, rtol=0, atol=1e-4)
    tta = trained.predict(frames, tile=32, tta=True)
    assert tta.shape == frames.shape and np.all(np.isfinite(tta))


def test_save_load_round_trip(tmp_path, problem, trained):
    _, noisy = problem
    path = trained.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "weights.eqx"]
    meta = json.loads((path / "config.json").read_text())
    assert meta["schema"] == "operando.denoiser/1" and meta["method"] == "n2v"
    loaded = load_denoiser(path)
    assert loaded.config == trained.config
    other = noisy[::-1, :64]  # new data of another shape
    np.testing.assert_array_equal(loaded.predict(other), trained.predict(other))


def test_loaded_model_rejects_wrong_channels_and_bad_files(tmp_path, trained):
    trained.save(tmp_path / "m")
    loaded = load_denoiser(tmp_path / "m")
    with pytest.raises(DataError, match="3 channel"):
        loaded.predict(np.zeros((2, 3, 32, 32)))
    with pytest.raises(DataError, match="NaN"):
        loaded.predict(np.full((32, 32), np.nan))
    with pytest.raises(FileFormatError, match=r"config\.json not found"):
        load_denoiser(tmp_path / "missing")
    (tmp_path / "m" / "weights.eqx").write_bytes(b"garbage")
    with pytest.raises(FileFormatError, match="weights do not match"):
        load_denoiser(tmp_path / "m")


def test_checkpoint_resume_equals_uninterrupted_run(tmp_path, problem):
    _, noisy = problem
    opts = dict(method="n2v", key=3, epochs=2, steps_per_epoch=10, **TINY)
    reference = train_denoiser(noisy, **opts)

    class Killed(Exception):
        pass

    def die_at_13(step, total, loss):
        if step == 13:
            raise Killed  # like a kill -9: nothing after the last checkpoint survives

    with pytest.raises(Killed):
        train_denoiser(
            noisy, checkpoint_dir=tmp_path, checkpoint_every=5, callback=die_at_13, **opts
        )
    seen = []
    resumed = train_denoiser(
        noisy,
        checkpoint_dir=tmp_path,
        checkpoint_every=5,
        callback=lambda step, total, loss: seen.append(step),
        **opts,
    )
    assert seen[0] == 11  # resumed after the checkpoint at step 10
    np.testing.assert_array_equal(resumed.predict(noisy), reference.predict(noisy))
    np.testing.assert_array_equal(resumed.training["losses"], reference.training["losses"])
    with pytest.raises(ParameterError, match="different data or settings"):
        train_denoiser(noisy[:80], checkpoint_dir=tmp_path, **opts)


def test_ensemble_mean_and_uncertainty(problem):
    _, noisy = problem
    frames = noisy[None]  # same shape as the other tests: the jitted step is reused
    ens = train_denoiser(
        frames, method="n2v", key=5, ensemble=2, epochs=1, steps_per_epoch=10, **TINY
    )
    assert ens.ensemble_size == 2
    mean, spread = ens.predict_with_uncertainty(frames)
    assert mean.shape == spread.shape == frames.shape
    assert np.all(spread >= 0) and spread.mean() > 0
    np.testing.assert_allclose(mean, ens.predict(frames), atol=1e-12)
    single = Denoiser(ens.config, ens.models[:1])
    with pytest.raises(ParameterError, match="at least 2"):
        single.predict_with_uncertainty(frames)


@pytest.mark.parametrize("method", ["n2v2", "umvd"])
def test_tiling_matches_for_other_architectures(method):
    cfg = DenoiserConfig(method=method, base_filters=4, umvd_features=4, window=3)
    den = Denoiser(cfg, (build_model(cfg, jr.PRNGKey(0)),))
    video = np.random.default_rng(0).normal(size=(4, 72, 56))
    np.testing.assert_allclose(den.predict(video, tile=32), den.predict(video), atol=1e-4)


def test_bad_input_raises_clear_errors():
    img = np.random.default_rng(0).normal(size=(40, 40))
    with pytest.raises(DataError, match="smaller than the 64x64 patch"):
        train_denoiser(img, key=0)
    with pytest.raises(DataError, match="NaN"):
        train_denoiser(np.where(img > 2, np.nan, img), key=0, patch_size=32)
    with pytest.raises(DataError, match="fewer than the temporal window"):
        train_denoiser(np.stack([img] * 4), method="umvd", key=0, patch_size=32)
    with pytest.raises(DataError, match="single image"):
        train_denoiser(img, method="umvd", key=0, patch_size=32)
    with pytest.raises(ParameterError, match="ensemble"):
        train_denoiser(img, key=0, patch_size=32, ensemble=0)
    with pytest.raises(ParameterError, match="unknown method"):
        train_denoiser(img, key=0, method="bm3d")
    with pytest.raises(ParameterError, match="window"):
        train_denoiser(np.stack([img] * 8), method="umvd", key=0, window=4)
    with pytest.raises(DataError, match="constant"):
        train_denoiser(np.ones((40, 40)), key=0, patch_size=32)


def moving_blobs(frames=12, size=64, seed=0):
    """A video of six Gaussian blobs drifting by up to 1 pixel per frame, in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    blobs_ = [
        (rng.uniform(0, size, 2), rng.uniform(-1, 1, 2), rng.uniform(5, 10), rng.uniform(0.3, 1))
        for _ in range(6)
    ]
    video = np.zeros((frames, size, size))
    for t in range(frames):
        for c0, v, s, a in blobs_:
            cy, cx = c0 + v * t
            video[t] += a * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return video / video.max()


def test_umvd_raises_psnr_on_a_video():
    """100 steps of UMVD (window 5) on a 12x64x64 video with Gaussian noise sigma 0.15.

    Measured on 2 CPU cores: noisy 16.5 dB, denoised 31.4 dB (+15 dB); with impulse
    noise (20 % of pixels set to 0 or 1) UMVD reached +10.9 dB against +8.6 dB for N2V.
    Requiring +8 dB leaves ~7 dB headroom for seed/platform variation.
    """
    clean = moving_blobs()
    noisy = clean + np.random.default_rng(2).normal(0, 0.15, clean.shape)
    den = train_denoiser(
        noisy,
        method="umvd",
        key=0,
        epochs=1,
        steps_per_epoch=100,
        patch_size=32,
        batch_size=4,
        base_filters=8,
        umvd_features=8,
        learning_rate=2e-3,
    )
    out = den.predict(noisy)
    assert psnr(clean, out) > psnr(clean, noisy) + 8.0


@pytest.mark.slow
@pytest.mark.parametrize(("method", "margin_db"), [("n2v2", 8.0), ("structn2v", 5.0)])
def test_n2v_variants_raise_psnr(problem, method, margin_db):
    """600 steps on the image of ``test_n2v_raises_psnr``.

    Measured: N2V2 +16.4 and +16.6 dB (seeds 0, 1; after 300 steps seed 0 was still at
    +5 dB: max-blur-pool and the missing top-level skip slow early training down);
    structN2V +8.2 dB after 300 steps (its line mask hides more of the signal, which costs
    on i.i.d. noise). The margins leave >= 3 dB headroom.
    """
    clean, noisy = problem
    den = train_denoiser(noisy, method=method, key=0, epochs=1, steps_per_epoch=600, **TINY)
    assert psnr(clean, den.predict(noisy)) > psnr(clean, noisy) + margin_db
