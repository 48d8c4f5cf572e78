"""End to end on the synthetic generator: the pipeline recovers the known quantities.

One noisy, flickering, drifting video (16 particles, 16 frames) is analysed by
:func:`operando.pipelines._optical.optical_analyze` exactly as the CLI does. Tolerances were
set from seeds 0-2 (worst case in brackets) with margin: particle count exact (16/16), size
mean within 5 % (1.7 %) and SD within 15 % (2 %) of the fit to the true labels, SOC RMSE
< 0.05 (0.034), phase-fraction error < 0.08 mean (0.045), drift within 0.4 px (0.30).
"""

import json

import numpy as np
import pytest

from operando.modalities import optical as op
from operando.pipelines._optical import optical_analyze
from operando.simulate import simulate_optical


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    sim = simulate_optical(seed=1, shape=(112, 112), n_frames=16, n_particles=16)
    out = tmp_path_factory.mktemp("optical")
    res = optical_analyze(
        sim.video,
        out,
        pixel_size=0.1,
        echem_soc=sim.soc,
        reference_labels=sim.labels,
        figures=False,
    )
    return sim, out, res["results"]


def test_particles_and_sizes(run):
    sim, out, r = run
    q = r["segmentation_quality"]
    assert r["n_particles"] == sim.labels.max() == q["n_matched"]
    assert q["dice"] > 0.95
    ref = q["reference_size_fit"]
    assert r["size_fit_um"]["mean"] == pytest.approx(ref["mean"], rel=0.05)
    assert r["size_fit_um"]["std"] == pytest.approx(ref["std"], rel=0.15)
    labels = op.read_labels(out / "labels.tif", shape=(112, 112))
    assert labels.max() == r["n_particles"]


def test_soc_and_phase_fractions(run):
    sim, out, r = run
    assert r["soc_vs_echem"]["rmse"] < 0.05
    assert r["soc_vs_echem"]["pearson_r"] > 0.99
    phases = np.load(out / "phases.npy")
    labels = np.load(out / "labels.npy")
    est = op.phase_fractions(phases, labels > 0)[:, 1:]
    true = op.phase_fractions(sim.phases, sim.labels > 0)[:, 1:]
    est = est / est.sum(axis=1, keepdims=True)  # shares of the blue/red/gold area
    assert np.abs(est - true).mean() < 0.08


def test_drift_and_outputs(run):
    sim, out, r = run
    drift = np.loadtxt(out / "drift.csv", delimiter=",", skiprows=1)[:, 1:]
    np.testing.assert_allclose(drift, -sim.shifts, atol=0.4)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"] == "optical analyze"
    assert summary["parameters"]["concentrations"] == {"blue": 0.26, "red": 0.55, "gold": 1.0}
    conc = np.loadtxt(out / "concentration.csv", delimiter=",", skiprows=1)
    assert conc.shape == (16, 1 + r["n_particles"])
    pop = np.load(out / "population.npz")
    assert pop["density"].shape == (16, 64, 64)
