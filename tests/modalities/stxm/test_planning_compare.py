"""Beamtime planning (analytic sigma_X vs Monte Carlo) and comparison with a reference."""

import jax
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.transform import resize

from operando.errors import ParameterError
from operando.modalities import stxm


def test_plan_energies_matches_monte_carlo_and_favours_edges():
    refs = stxm.model_references()
    plan = stxm.plan_energies(
        refs, noise=0.01, n_values=(11, 21, 65), n_trials=400, key=jax.random.key(0)
    )
    # 400 trials estimate a standard deviation to 1/sqrt(2*399) ~ 3.5 %; 15 % is > 4 SE
    np.testing.assert_allclose(plan.mc_uniform, plan.sigma_uniform, rtol=0.15)
    np.testing.assert_allclose(plan.mc_edge, plan.sigma_edge, rtol=0.15)
    # Fig. S4: at equal n, edge-focused sampling beats uniform; more energies help
    assert np.all(plan.sigma_edge < plan.sigma_uniform)
    assert plan.sigma_uniform[-1] < plan.sigma_uniform[0]
    # sigma_X scales linearly with the OD noise
    half = stxm.plan_energies(refs, noise=0.005, n_values=(11, 21, 65))
    np.testing.assert_allclose(half.sigma_uniform, plan.sigma_uniform / 2, rtol=1e-12)
    assert {r["strategy"] for r in plan.rows()} == {"uniform", "edge"}
    with pytest.raises(ParameterError, match="noise"):
        stxm.plan_energies(refs, noise=0.0)


def test_compare_to_higher_resolution_reference():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:160, 0:160]
    hi = 0.2 + ((yy - 80) ** 2 / 50**2 + (xx - 80) ** 2 / 60**2 < 1) * (
        0.8 + 0.3 * np.sin(xx / 9.0)
    )  # 10 nm pixels
    # "STXM": the same field at 40 nm, displaced by (1.4, -0.6) px, noisy, with a bias
    lo = resize(hi, (40, 40), order=1, anti_aliasing=True, mode="edge")
    lo = ndi.shift(lo, (1.4, -0.6), mode="nearest")
    stxm_img = 1.1 * lo + 0.05 + rng.normal(0, 0.01, lo.shape)
    res = stxm.compare_to_reference(stxm_img, hi, scale=0.25)
    assert res.reference.shape == (40, 40)
    np.testing.assert_allclose(res.shift, (1.4, -0.6), atol=0.15)
    assert res.r > 0.98
    assert res.slope == pytest.approx(1.1, abs=0.05)
    assert res.intercept == pytest.approx(0.05, abs=0.03)
    assert res.psnr > 15 and res.ssim > 0.5
    d = res.as_dict()
    assert set(d) >= {"psnr", "ssim", "rmse", "slope", "intercept", "r"}
    # a smaller reference is padded with its background mean
    padded = stxm.reference_on_grid(hi, (60, 60), scale=0.25, background=0.2)
    assert padded.shape == (60, 60) and padded[0, 0] == 0.2
