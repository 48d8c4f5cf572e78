"""Synthetic particle videos with known kinetics (``operando simulate particles``)."""

import json

import numpy as np
import pytest

from operando.data import get_truth, validate_dataset
from operando.errors import ParameterError
from operando.simulate import simulate_particles

SMALL = dict(mean_area=60, half_cycles=(1, 2), frames=(3, 5), dt_max=0.05)


@pytest.fixture(scope="module")
def small():
    return simulate_particles(2, noise=0.05, seed=4, **SMALL)


def test_layout_and_truth(small):
    ds = validate_dataset(small, allow_nonfinite=True)
    assert ds["images"].dims == ("realization", "t", "y", "x")
    n_h = ds.sizes["realization"]
    assert 2 <= n_h <= 4 and ds.sizes["particle"] == 2
    masks = ds["masks"].values
    areas = masks.reshape(2, -1).sum(1)
    assert np.all((areas > 0.6 * 60) & (areas < 1.4 * 60))
    img = ds["images"].values
    valid = ds["frame_valid"].values
    for h in range(n_h):
        m = masks[ds["particle_of"].values[h]]
        assert np.all(np.isfinite(img[h][valid[h]][:, m]))
        assert np.all(np.isnan(img[h][:, ~m]))
        assert np.all(np.isnan(img[h][~valid[h]]))
    truth = get_truth(ds)
    assert {"mu_h", "j0", "g_h"} <= set(truth.functions)
    assert truth.parameters["omega"] == 4.47 and truth.parameters["lambda"] == 8.3
    assert truth.seed == 4
    lnk = ds["truth_ln_k"].values
    assert np.all(np.isfinite(lnk[masks])) and np.all(np.isnan(lnk[~masks]))
    assert ds.attrs["binodal_delta"] == pytest.approx(0.0127, abs=5e-4)


def test_mean_concentration_follows_c_rate(small):
    # Galvanostatic truth: the particle mean moves linearly at the signed C-rate (1/h).
    clean = small["truth_images"].values
    for h in range(small.sizes["realization"]):
        v = small["frame_valid"].values[h]
        m = small["masks"].values[small["particle_of"].values[h]]
        cbar = clean[h][v][:, m].mean(axis=1)
        t_h = small["frame_time"].values[h][v] / 3600.0
        slope = np.diff(cbar) / np.diff(t_h)
        # The voltage makes every step exact; pixels that overshoot c = 1 (or 0) within a
        # coarse step (dt_max = 0.05 h here) are clipped, which loses a few % of the
        # increment in intervals where many pixels complete their transformation.
        # (Exactness without clipping: tests/physics/test_kinetics_physics.py.)
        np.testing.assert_allclose(slope, small["c_rate"].values[h], rtol=0.05)
        rate = abs(small["c_rate"].values[h])
        assert 0.2 - 1e-12 <= rate <= 3.0 + 1e-12


def test_noise_level_and_seed(small):
    res = (small["images"] - small["truth_images"]).values
    assert np.nanstd(res) == pytest.approx(0.05, rel=0.1)
    again = simulate_particles(2, noise=0.05, seed=4, **SMALL)
    np.testing.assert_array_equal(again["images"].values, small["images"].values)
    params = json.loads(small.attrs["truth_parameters"])
    assert params["noise"] == 0.05


def test_bad_input():
    with pytest.raises(ParameterError):
        simulate_particles(0)
    with pytest.raises(ParameterError):
        simulate_particles(1, noise=-1.0)
    with pytest.raises(ParameterError):
        simulate_particles(1, frames=(1, 3))


def test_cli_particles(tmp_path):
    import typer
    from typer.testing import CliRunner

    from operando.cli._particles import particles_command
    from operando.io import read_dataset

    app = typer.Typer()
    app.command("particles")(particles_command)
    app.command("noop")(lambda: None)  # keep a command group
    out = tmp_path / "p.nc"
    # Default sizes (490 px particles) for one particle: a few seconds.
    r = CliRunner().invoke(app, ["particles", "--out", str(out), "--particles", "1", "--seed", "2"])
    assert r.exit_code == 0, r.output
    ds = read_dataset(out)
    assert ds.sizes["particle"] == 1
    assert (tmp_path / "p.nc.summary.json").exists()
