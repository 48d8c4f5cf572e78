"""Composition: exact NNLS kernel, synthetic recovery at the bootstrap's level, two-energy
system, energy-offset fit, error cases, and the real ALS Fe(II)/Fe(III) map."""

import jax
import numpy as np
import pytest
from scipy.optimize import lsq_linear

from operando.errors import DataError, ParameterError
from operando.modalities import stxm


def test_nnls_kernel_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 3))
    free = np.stack([np.ones(30), np.linspace(-1, 1, 30)], axis=1)
    y = rng.normal(size=(30, 25))
    c, b, rss = stxm.nnls_kernel(a, free, y)
    design = np.concatenate([a, free], axis=1)
    lo = np.r_[np.zeros(3), -np.inf, -np.inf]
    for p in range(y.shape[1]):
        ref = lsq_linear(design, y[:, p], bounds=(lo, np.inf), tol=1e-12, method="bvls")
        np.testing.assert_allclose(np.r_[c[:, p], b[:, p]], ref.x, atol=1e-8)
        np.testing.assert_allclose(rss[p], 2 * ref.cost, rtol=1e-8)


@pytest.fixture(scope="module")
def synthetic():
    refs = stxm.model_references()
    e = np.linspace(700.0, 730.0, 65)  # 65 energies, as in seed 000
    x, mask, h = stxm.synthetic_particle((32, 40))
    ds = stxm.synthetic_stxm(jax.random.key(0), x, refs, e, mask=mask, thickness=h, i0=1e4)
    od = stxm.optical_density(ds["images"].values, ds["i0"].values)
    return refs, e, x, mask, od


def test_synthetic_recovery_at_bootstrap_level(synthetic):
    refs, e, x, mask, od = synthetic
    res = stxm.nnls_composition(od, e, refs, mask=mask, baseline="constant")
    boot = stxm.bootstrap_composition(
        jax.random.key(1), od, e, refs, n_boot=60, mask=mask, baseline="constant"
    )
    err = res.fraction[mask] - x[mask]
    rms_err = float(np.sqrt(np.mean(err**2)))
    rms_sigma = float(np.sqrt(np.nanmean(boot.sigma[mask] ** 2)))
    # ~1000 independent pixels estimate both RMS values to ~3 %; the per-pixel bootstrap
    # sigma from 60 replicates scatters by ~9 % but averages out; the pairs bootstrap with
    # 65 energies and 3 parameters is biased by O(p/n) ~ 5 %. A 20 % band catches a wrong
    # noise model or a broken fit (e.g. a missing baseline gives errors 10x larger).
    assert 0.8 < rms_err / rms_sigma < 1.25, (rms_err, rms_sigma)
    assert rms_err < 0.03  # Poisson noise at 1e4 counts: sigma_X ~ 0.01
    assert abs(float(err.mean())) < 3 * rms_err / np.sqrt(mask.sum()) + 2e-3  # unbiased
    assert np.all(np.isnan(res.fraction[~mask]))
    assert np.nanmin(res.fraction) >= 0 and np.nanmax(res.fraction) <= 1


def test_noise_free_recovery_is_exact():
    refs = stxm.model_references()
    e = np.linspace(700.0, 730.0, 40)
    x, mask, h = stxm.synthetic_particle((12, 14))
    ds = stxm.synthetic_stxm(jax.random.key(0), x, refs, e, mask=mask, thickness=h, poisson=False)
    od = stxm.optical_density(ds["truth_images"].values, ds["i0"].values)
    res = stxm.nnls_composition(od, e, refs, mask=mask, baseline="constant")
    np.testing.assert_allclose(res.fraction[mask], x[mask], atol=1e-9)


def test_two_energy_paper_system():
    # OD built from the paper's pre-edge-normalised values: X = a / (a + b) exactly.
    e = np.array([700.0, 703.0, 706.0, 713.0, 720.0])
    a = np.array([[0.3, 0.0], [0.1, 1.0]])
    b = np.array([[0.1, 0.2], [0.3, 0.0]])
    bg = 0.4
    od = np.zeros((5, 2, 2))
    od[:] = bg
    od[2] += 0.64 * a + 0.05 * b
    od[3] += 0.11 * a + 0.60 * b
    res = stxm.two_energy_composition(od, e)
    np.testing.assert_allclose(res.fraction, a / (a + b), atol=1e-12)
    # energy offset: the same data measured 2 eV higher
    res2 = stxm.two_energy_composition(od, e + 2.0, energy_offset=2.0)
    np.testing.assert_allclose(res2.fraction, res.fraction, atol=1e-12)
    with pytest.raises(ParameterError, match="outside the stack's range"):
        stxm.two_energy_composition(od, e, energy_offset=20.0)


def test_two_energy_on_synthetic(synthetic):
    refs, e, x, mask, od = synthetic
    system = stxm.two_energy_matrix(refs)
    res = stxm.two_energy_composition(od, e, system=system, mask=mask)
    rms = float(np.sqrt(np.nanmean((res.fraction[mask] - x[mask]) ** 2)))
    assert rms < 0.05  # two energies only: a few times the NNLS error (interpolated planes)


def test_energy_offset_fit():
    refs = stxm.model_references()
    e = np.linspace(700.0, 730.0, 65)  # same shapes as the fixture: one JAX compile
    x, mask, h = stxm.synthetic_particle((32, 40))
    ds = stxm.synthetic_stxm(
        jax.random.key(2), x, refs, e, mask=mask, thickness=h, energy_offset=1.3
    )
    od = stxm.optical_density(ds["images"].values, ds["i0"].values)
    fit = stxm.fit_energy_offset(od, e, refs, mask=mask)
    # grid step 0.05 eV with parabolic refinement; noise shifts the minimum by << 0.05 eV
    assert abs(fit.offset - 1.3) < 0.05 and not fit.at_edge


def test_energies_outside_references(tmp_path):
    e = np.linspace(700, 710, 11)
    (tmp_path / "lfp.txt").write_text("\n".join(f"{v} {np.sin(v)}" for v in e))
    (tmp_path / "fp.txt").write_text("\n".join(f"{v} {np.cos(v)}" for v in e[:8]))
    refs = stxm.load_references([tmp_path / "lfp.txt", tmp_path / "fp.txt"])
    od = np.ones((11, 3, 3))
    with pytest.raises(DataError, match=r"fp\.txt.*outside reference 'fp\.txt'"):
        stxm.nnls_composition(od, e, refs)
    res = stxm.nnls_composition(od, e, refs, outside="restrict")
    assert res.energies.size == 8 and res.info["energies_dropped"] == 3


def test_nan_od_is_rejected():
    refs = stxm.model_references()
    e = np.linspace(700, 720, 10)
    od = np.ones((10, 4, 4))
    od[3, 1, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        stxm.nnls_composition(od, e, refs)
    mask = np.ones((4, 4), bool)
    mask[1, 1] = False  # excluded pixel: fine
    assert np.isnan(stxm.nnls_composition(od, e, refs, mask=mask).fraction[1, 1])


def test_bootstrap_needs_a_key(synthetic):
    refs, e, _, mask, od = synthetic
    with pytest.raises(ParameterError, match="PRNG key"):
        stxm.bootstrap_composition(0, od, e, refs, mask=mask)


# ----------------------------------------------------------------------- real ALS stack


def test_real_fe_fraction_map(als):
    ds = stxm.read_sdf(als / "71214078.hdr")
    e = ds["energy"].values
    e0, v0 = stxm.read_spectrum(als / "i0.xsp")
    i0 = stxm.interpolate_i0(e0, v0, e, source="i0.xsp")
    od = stxm.optical_density(ds["images"].values, i0)
    assert 0.5 < np.median(od) < 1.5  # thin-sample OD range
    masks, _ = stxm.segment_particles(od, min_size=20)
    assert masks.shape[0] >= 1
    union = masks.any(axis=0)
    refs = stxm.load_references([als / "reduced.r", als / "oxidized.r"], names=("Fe2", "Fe3"))
    res = stxm.nnls_composition(od, e, refs, mask=union, baseline="linear")
    x = res.fraction
    inside = x[union]
    assert np.all(np.isfinite(inside)) and inside.min() >= 0 and inside.max() <= 1
    assert np.all(np.isnan(x[~union]))  # background excluded
    assert np.nanstd(inside) > 0.05  # a map with contrast, not a constant
    # the mean particle spectrum is explained by the two references: residual < 3 % of the
    # OD range (measured: 1.4 %)
    mean = stxm.nnls_composition(od[:, union].mean(axis=1), e, refs, baseline="linear")
    assert mean.residual_rms[0, 0] < 0.03 * np.ptp(od[:, union].mean(axis=1))
    # the references were recorded on this beamline's calibration: the best offset is ~0
    fit = stxm.fit_energy_offset(od, e, refs, mask=union, offsets=np.arange(-1, 1.01, 0.1))
    assert abs(fit.offset) < 0.2
