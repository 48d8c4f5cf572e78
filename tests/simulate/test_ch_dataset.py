"""Tests of the Cahn–Hilliard benchmark generator (small grids; the full run is slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from operando.data import get_provenance, get_truth, validate_dataset
from operando.errors import ParameterError
from operando.physics import linear_D, regular_solution_mu
from operando.simulate import simulate_ch_dataset

SMALL = {"size": 32, "frames": 6, "realizations": 2, "length": 1.0, "t_end": 0.5, "dt": 2e-3}


@pytest.fixture(scope="module")
def small():
    calls = []
    ds = simulate_ch_dataset(**SMALL, seed=3, progress=lambda d, n: calls.append((d, n)))
    return ds, calls


def test_schema_truth_and_progress(small):
    ds, calls = small
    validate_dataset(ds)
    assert ds.images.dims == ("realization", "t", "y", "x")
    assert ds.images.shape == (2, 6, 32, 32)
    np.testing.assert_allclose(ds.t.values, np.linspace(0, 0.5, 6))
    assert ds.attrs["pixel_size"] == pytest.approx(1 / 32) and ds.attrs["pixel_unit"] == "1"
    truth = get_truth(ds)
    np.testing.assert_array_equal(truth.clean.values, ds.images.values)
    c, mu = truth.functions["mu_h"]
    assert c.shape == (197,) and c[0] == pytest.approx(0.01) and c[-1] == pytest.approx(0.99)
    np.testing.assert_allclose(mu, regular_solution_mu(c, 3.0))
    np.testing.assert_allclose(truth.functions["D"][1], linear_D(c))
    assert truth.parameters["omega"] == 3.0 and truth.parameters["kappa"] == 2e-3
    assert truth.parameters["model"] == "cahn-hilliard" and truth.seed == 3
    assert get_provenance(ds)[-1]["step"] == "simulate_ch_dataset"
    json.loads(ds.attrs["truth_parameters"])
    # progress: monotone, ends at total, one call per chunk per realisation
    assert calls[-1][0] == calls[-1][1] and [d for d, _ in calls] == list(range(1, len(calls) + 1))


def test_physics_mass_bounds_and_separation(small):
    ds, _ = small
    im = ds.images.values
    # initial condition: exact mean c_mean, amplitude <= 2 a (mean removed)
    np.testing.assert_allclose(im[:, 0].mean(axis=(1, 2)), 0.5, atol=1e-15)
    assert np.abs(im[:, 0] - 0.5).max() <= 0.02
    # mass conserved to round-off in every frame
    assert np.abs(im.mean(axis=(2, 3)) - 0.5).max() < 1e-12
    assert im.min() > 0 and im.max() < 1
    assert im[:, -1].std(axis=(1, 2)).min() > 0.25  # phase separated
    # realisations differ
    assert np.abs(im[0, -1] - im[1, -1]).max() > 0.1


def test_seeded_and_reproducible(small):
    ds, _ = small
    again = simulate_ch_dataset(**{**SMALL, "realizations": 1}, seed=3)
    # realisation 0 does not depend on how many realisations are generated
    np.testing.assert_allclose(again.images.values[0], ds.images.values[0], atol=1e-12)
    other = simulate_ch_dataset(**{**SMALL, "realizations": 1, "frames": 2, "t_end": 0.1}, seed=4)
    assert np.abs(other.images.values[0, 0] - ds.images.values[0, 0]).max() > 1e-3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"c_mean": 0.995},
        {"c_mean": 0.0},
        {"noise_amplitude_ic": 0.6},
        {"size": 0},
        {"frames": 1},
        {"dt": 0.0},
        {"kappa": -1.0},
        {"t_end": float("nan")},
    ],
)
def test_bad_parameters(kwargs):
    with pytest.raises(ParameterError) as info:
        simulate_ch_dataset(**{**SMALL, **kwargs})
    assert info.value.where and info.value.fix
