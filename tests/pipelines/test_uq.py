"""Cross-validation, bootstrap and HMC workflows, serial vs a local cluster, and resuming.

Every test here runs real fits (compilation of the forward models dominates), so all are
``slow``; the numerical building blocks are tested fast in tests/inverse/test_uq.py and
tests/inverse/test_hmc.py.
"""

import json

import numpy as np
import pytest

from operando.errors import ParameterError
from operando.io import write_dataset
from operando.pipelines._parallel import ExecutorConfig
from operando.pipelines._uq import (
    bootstrap_ch,
    bootstrap_kinetics,
    cross_validate_kinetics,
    hmc_kinetics,
    train_denoiser_ensemble,
)
from operando.simulate import simulate_ch_dataset, simulate_particles

# Two particles with two half-cycles each, three frames: the smallest kinetics problem
# with something to validate; few LM steps (the numbers only need to be reproducible).
TINY = dict(mean_area=40, half_cycles=(2, 2), frames=(3, 3), dt_max=0.05)
TINY_FIT = dict(n_kl=4, degree_mu=4, degree_j0=3, dt_max=0.05, max_iter=3)


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("uq") / "tiny.nc"
    write_dataset(simulate_particles(2, noise=0.02, seed=3, **TINY), path)
    return path


@pytest.mark.slow  # ~1-2 min idle: MAP + 4 CV jobs + 3 bootstrap refits, twice
def test_cv_and_bootstrap_local_cluster_equal_serial(tiny_path, tmp_path):
    kw = dict(k=2, rho2_grid=[1e-3, 1e-1], seed=1, **TINY_FIT)
    ser = cross_validate_kinetics(tiny_path, tmp_path / "s", executor=ExecutorConfig("serial"),
                                  **kw)  # fmt: skip
    par = cross_validate_kinetics(
        tiny_path, tmp_path / "p", executor=ExecutorConfig("local", workers=2), **kw
    )
    assert ser["pairs"] == par["pairs"] == ["cv-p0-f0", "cv-p0-f1", "cv-p1-f0", "cv-p1-f1"]
    # same float64 code in another process (XLA single-threaded there): equal to round-off
    np.testing.assert_allclose(par["errors"], ser["errors"], rtol=1e-9)
    assert par["chosen_rho2"] == ser["chosen_rho2"]
    assert np.all(np.isfinite(ser["errors"])) and np.all(ser["errors"] < 0.5)
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["results"]["chosen_rho2"] in (1e-3, 1e-1)
    assert (tmp_path / "s" / "cv.png").is_file() and (tmp_path / "s" / "cv.csv").is_file()

    bkw = dict(n_boot=3, seed=2, **TINY_FIT)
    b_ser = bootstrap_kinetics(tiny_path, tmp_path / "bs", executor=ExecutorConfig("serial"),
                               **bkw)  # fmt: skip
    b_par = bootstrap_kinetics(
        tiny_path, tmp_path / "bp", executor=ExecutorConfig("local", workers=2), **bkw
    )
    # Workers run XLA single-threaded (another summation order than this process), and
    # round-off of ~1e-12 in the parameters grows through the (unconverged, max_iter=3)
    # LM steps to ~1e-8 in a curve (measured 7.8e-9): far below any band width (~0.1).
    for name in ("mu_h", "j0"):
        np.testing.assert_allclose(b_par["samples"][name], b_ser["samples"][name], atol=1e-7)
    lo, hi = b_ser["bands"]["j0_norm"]
    assert np.all(lo <= hi + 1e-15) and np.all(hi <= 1.0 + 1e-12)
    assert b_ser["ln_k_lo"].shape == (2, *b_ser["ln_k_map"].shape[1:])


@pytest.mark.slow  # ~1 min idle
def test_resume_skips_finished_jobs(tiny_path, tmp_path):
    kw = dict(n_boot=2, seed=0, executor=ExecutorConfig("serial"), **TINY_FIT)
    first = bootstrap_kinetics(tiny_path, tmp_path / "b", **kw)
    stored = sorted((tmp_path / "b" / "jobs").glob("*.npz"))
    assert len(stored) == 2 + 2  # map, map-curves, boot0000, boot0001
    mtimes = [p.stat().st_mtime_ns for p in stored]
    again = bootstrap_kinetics(tiny_path, tmp_path / "b", **kw)
    assert [p.stat().st_mtime_ns for p in stored] == mtimes  # nothing recomputed
    np.testing.assert_array_equal(again["samples"]["j0"], first["samples"]["j0"])
    # one more sample: only that job runs, the first ones are reused
    more = bootstrap_kinetics(tiny_path, tmp_path / "b", **{**kw, "n_boot": 3})
    assert len(list((tmp_path / "b" / "jobs").glob("*.npz"))) == 5
    np.testing.assert_array_equal(more["samples"]["j0"][:2], first["samples"]["j0"])


def test_recipe_bootstrap_refits_from_the_default_start(tiny_path, tmp_path):
    # refit="recipe": every replicate is the whole fit of its resample from the default
    # initial guess, i.e. exactly fit_kinetics on the resampled particles; resamples
    # holding the same particles share one fit.
    from operando.inverse import subset_particles
    from operando.inverse._uq import bootstrap_indices
    from operando.io import read_dataset
    from operando.pipelines._kinetics import fit_kinetics

    kw = dict(n_boot=4, seed=4, executor=ExecutorConfig("serial"), **TINY_FIT)
    idx = np.sort(bootstrap_indices(2, 4, seed=4), axis=1)
    unique = {tuple(r) for r in idx.tolist()}
    assert len(unique) < 4  # the seed draws a repeated resample
    b = bootstrap_kinetics(tiny_path, tmp_path / "b", refit="recipe", **kw)
    stored = [p.stem for p in (tmp_path / "b" / "jobs").glob("cold-*.npz")]
    assert len(stored) == len(unique) == b["results"]["n_fits"]
    assert b["results"]["refit"] == "recipe" and b["samples"]["j0"].shape[0] == 4
    direct = fit_kinetics(subset_particles(read_dataset(tiny_path), list(idx[1])), **TINY_FIT)
    np.testing.assert_allclose(b["samples"]["j0"][1], direct.j0, rtol=1e-9)
    with pytest.raises(ParameterError):
        bootstrap_kinetics(tiny_path, tmp_path / "c", refit="cold", **kw)


def test_parametric_bootstrap_refits_replicates_of_the_map(tiny_path, tmp_path):
    # kind="parametric": sample b = the MAP's prediction + noise of the MAP's RMS residual
    # (seed drawn from the bootstrap seed), all particles kept, refit warm from the MAP.
    from operando.inverse import resimulate_kinetics
    from operando.io import read_dataset
    from operando.pipelines._kinetics import fit_kinetics
    from operando.pipelines._uq import _refit_options

    fit_kw = {**TINY_FIT, "max_iter": 10}  # (with 3 steps LM accepts none from the MAP)
    kw = dict(n_boot=2, seed=7, executor=ExecutorConfig("serial"), **fit_kw)
    b = bootstrap_kinetics(tiny_path, tmp_path / "b", kind="parametric", **kw)
    res = b["results"]
    assert res["kind"] == "parametric" and res["n_failed"] == 0
    ds = read_dataset(tiny_path)
    m = fit_kinetics(ds, **fit_kw)  # the MAP job
    m_params = {k: np.asarray(v) for k, v in m.params.items()}
    again = fit_kinetics(ds, params0=m_params, **_refit_options(fit_kw))  # map-curves
    assert res["sigma"] == pytest.approx(again.metrics["train_rmse"], rel=1e-9)
    seed1 = int(np.random.SeedSequence(7).generate_state(2)[1])
    model = {k: v for k, v in fit_kw.items() if k != "max_iter"}
    rep = resimulate_kinetics(
        again.params, ds, sigma=res["sigma"], seed=seed1, inputs="noisy", **model
    )
    direct = fit_kinetics(rep, params0=m_params, **_refit_options(fit_kw))
    np.testing.assert_allclose(b["samples"]["j0"][1], direct.j0, rtol=1e-9)
    assert not np.allclose(b["samples"]["j0"][0], b["samples"]["j0"][1])
    # every sample holds every particle: per-pixel ln k bands for both
    assert np.all(np.isfinite(b["ln_k_lo"][b["ln_k_map"] == b["ln_k_map"]]))
    # the basic band reflects the same samples about the MAP curves
    from operando.inverse import basic_band

    bb = bootstrap_kinetics(tiny_path, tmp_path / "b", kind="parametric", interval="basic", **kw)
    assert bb["results"]["interval"] == "basic"
    np.testing.assert_array_equal(bb["samples"]["j0"], b["samples"]["j0"])  # jobs reused
    lo, hi = basic_band(b["samples"]["mu_h"], b["map"]["mu_h"], 0.99)
    np.testing.assert_allclose(bb["bands"]["mu_h"][0], lo)
    np.testing.assert_allclose(bb["bands"]["mu_h"][1], hi)
    with pytest.raises(ParameterError, match="kind"):
        bootstrap_kinetics(tiny_path, tmp_path / "c", kind="noise", **kw)
    with pytest.raises(ParameterError, match="sigma"):
        bootstrap_kinetics(tiny_path, tmp_path / "c", kind="parametric", sigma=-1.0, **kw)


@pytest.mark.slow  # ~1-2 min idle (NUTS with forward-mode gradients through the stepper)
def test_hmc_kinetics_runs_and_reports_diagnostics(tiny_path, tmp_path):
    r = hmc_kinetics(tiny_path, tmp_path / "h", chains=2, num_warmup=20, num_samples=20,
                     max_tree_depth=4, executor=ExecutorConfig("serial"), **TINY_FIT)  # fmt: skip
    res = r["results"]
    assert r["samples"]["mu_h"].shape == (40, 99)
    assert np.isfinite(res["max_rhat"]) and res["min_ess"] > 0
    lo, hi = r["bands"]["mu_h"]
    assert np.all(hi >= lo)
    assert (tmp_path / "h" / "summary.json").is_file()


@pytest.mark.slow  # ~1-2 min idle: three small Cahn-Hilliard fits
def test_bootstrap_ch_over_realisations(tmp_path):
    path = tmp_path / "ch.nc"
    write_dataset(
        simulate_ch_dataset(size=32, length=0.5, t_end=0.12, frames=13, realizations=3), path
    )
    r = bootstrap_ch(path, tmp_path / "b", n_boot=200, executor=ExecutorConfig("serial"),
                     degree=4, snapshots=4, max_steps=40)  # fmt: skip
    res = r["results"]
    assert res["n_failed"] == 0 and r["mu_h"].shape == (3, len(r["c"]))
    # clean data: every fit recovers D within ~0.02 (tests/inverse/test_learn_ch.py), so
    # the band of the mean is narrow and near the truth
    c = r["c"]
    sel = (c >= 0.1) & (c <= 0.9)
    lo, hi = r["bands"]["D"]
    assert np.max((hi - lo)[sel]) < 0.05
    assert np.max(np.abs(0.5 * (lo + hi) - r["truth"]["D"])[sel]) < 0.05


@pytest.mark.slow  # compile-dominated: ~20 s idle, minutes on busy cores
def test_denoiser_ensemble_jobs_equal_in_process_training(tmp_path):
    from operando.denoise import train_denoiser

    x = np.random.default_rng(0).normal(size=(4, 32, 32)).astype(np.float32)
    opts = dict(epochs=1, steps_per_epoch=3, patch_size=16, batch_size=2, base_filters=4)
    ref = train_denoiser(x, key=1, ensemble=3, **opts)
    ens = train_denoiser_ensemble(x, ensemble=3, key=1, executor=ExecutorConfig("serial"),
                                  store=tmp_path / "jobs", **opts)  # fmt: skip
    assert ens.ensemble_size == 3
    np.testing.assert_array_equal(ens.predict(x), ref.predict(x))  # the same networks
    np.testing.assert_array_equal(ens.training["losses"], ref.training["losses"])


def _acceptance_data(noise: float, seed: int = 3):
    # the configuration of tests/inverse/test_kinetics.py's noisy acceptance test
    return simulate_particles(
        3, noise=noise, seed=seed, mean_area=80, half_cycles=(1, 2), frames=(4, 6),
        dt_max=0.01, ic_noise=0.0,
    )  # fmt: skip


def _acceptance_map(tmp_path):
    """Data file, MAP (the noisy-data recipe) and refit options of the acceptance run.

    Same steps as benchmarks/uq_acceptance.py; refits: single shooting, 40 steps.
    """
    from operando.pipelines._kinetics import fit_kinetics

    sigma = 0.07
    path = tmp_path / "acc.nc"
    ds = _acceptance_data(sigma)
    write_dataset(ds, path)
    fit = dict(n_kl=20, degree_mu=5, degree_j0=8, dt_max=0.01, max_iter=40,
               max_iter_single=200, continuation=[2, 4], smooth_initial=10.0,
               smooth_segments=[1.0, 1.5, 2.0], rho2=sigma**2)  # fmt: skip
    m = fit_kinetics(ds, **fit)
    return path, {k: np.asarray(v) for k, v in m.params.items()}, dict(fit, max_iter_single=40)


@pytest.mark.slow  # ~45 min on 2 cores: the MAP (3 starts), 20 refits, 2 NUTS chains
@pytest.mark.xfail(
    strict=True,
    reason="measured (benchmarks/results/uq_acceptance_nohmc.json, uq_acceptance.json): "
    "the 20-refit particle bootstrap band contains the true j0/max j0 on 35 % of [0.1, 0.9] "
    "only (the MAP's j0 shape is biased and 3 particles give few distinct resamples); NUTS "
    "chains do not mix (R-hat >> 1.1) on this rugged posterior",
)
def test_acceptance_bootstrap_band_contains_truth_and_matches_hmc(tmp_path):
    # Issue 6 "Done when": 3 synthetic particles, sigma_e = 0.07; the bootstrap 99 % band
    # contains the true j0(c) (normalised by its maximum: the k-j0 scale is a gauge) over
    # most of c in [0.1, 0.9], and the HMC band width agrees within a factor of 2. Same
    # steps as benchmarks/uq_acceptance.py: the MAP by the noisy-data recipe, refits
    # warm-started from it.
    path, map_params, refit = _acceptance_map(tmp_path)
    b = bootstrap_kinetics(path, tmp_path / "b", n_boot=20, seed=0, map_params=map_params,
                           **refit)  # fmt: skip
    assert b["results"]["n_failed"] == 0
    h = hmc_kinetics(path, tmp_path / "h", chains=2, num_warmup=300, num_samples=200,
                     max_tree_depth=5, map_params=map_params, **refit)  # fmt: skip
    assert b["results"]["j0_norm_coverage"] >= 0.8, b["results"]
    assert h["results"]["max_rhat"] < 1.1, h["results"]
    ratio = h["results"]["j0_norm_band_mean_width"] / b["results"]["j0_norm_band_mean_width"]
    assert 0.5 <= ratio <= 2.0, ratio


@pytest.mark.slow  # ~6 min on 2 cores (measured 347 s): the MAP (3 starts), 20 refits
def test_acceptance_parametric_basic_band_contains_truth(tmp_path):
    # Issue 6's bootstrap criterion with the parametric bootstrap (noisy inputs) and the
    # basic band: measured 87.5 % (j0/max j0) and 100 % (mu_h) of [0.1, 0.9] with 20 and
    # with 50 replicates (benchmarks/results/uq_acceptance_parametric_noisy_basic_nohmc.json,
    # ..._nohmc_b50.json).
    # Dataset seed 3 only: on seeds 4 and 5 the same band covers 11 % and 47.5 % of j0
    # (docs/parallel.md, "Not robust across datasets").
    path, map_params, refit = _acceptance_map(tmp_path)
    b = bootstrap_kinetics(path, tmp_path / "b", n_boot=20, seed=0, map_params=map_params,
                           kind="parametric", interval="basic", **refit)  # fmt: skip
    r = b["results"]
    assert r["n_failed"] == 0 and r["inputs"] == "noisy"
    assert r["j0_norm_coverage"] >= 0.8 and r["mu_h_coverage"] >= 0.8, r


def _cli(capsys, *args):
    from operando.cli import main

    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out + out.err


@pytest.mark.parametrize(
    "flags, where",
    [
        (["--cv", "1"], "--cv"),
        (["--cv", "3", "--rho2-grid", "0.1"], "--rho2-grid"),
        (["--cv", "3", "--rho2-grid", "a,b"], "--rho2-grid"),
        (["--bootstrap", "2", "--cluster", "pbs"], "--cluster"),
        (["--bootstrap", "2", "--workers", "0"], "--workers"),
        (["--bootstrap", "2", "--cluster", "slurm"], "--cluster-config"),
        (["--smooth-segments", "1,a"], "--smooth-segments"),
        (["--smooth-segments", "1,-1"], "--smooth-segments"),
        (["--bootstrap", "2", "--bootstrap-refit", "cold"], "--bootstrap-refit"),
        (["--bootstrap", "2", "--bootstrap-kind", "noise"], "--bootstrap-kind"),
        (["--bootstrap", "2", "--bootstrap-interval", "bca"], "--bootstrap-interval"),
    ],
)
def test_kinetics_uq_flags_are_checked_before_any_fit(capsys, tmp_path, flags, where):
    # bad UQ/parallel flags: exit code 2 and a one-line message naming the flag, before
    # the (expensive) fit starts
    code, text = _cli(capsys, "learn", "kinetics", tmp_path / "absent.nc", "--out",
                      tmp_path / "o", *flags)  # fmt: skip
    assert code == 2, text
    assert where in text
    assert not (tmp_path / "o").exists()
