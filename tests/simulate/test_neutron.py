"""The synthetic neutron radiography generator: geometry, noise and truth are consistent."""

import json

import numpy as np
import pytest

from operando.data import get_truth
from operando.errors import ParameterError
from operando.simulate import simulate_neutron


@pytest.fixture(scope="module")
def sim():
    return simulate_neutron(seed=3)


def test_layout_geometry_and_clean_signal(sim):
    tp = get_truth(sim).parameters
    rows = tp["layout_rows"]
    assert rows["anode"] == [10, 40] and rows["separator"] == [40, 48]
    assert sim["images"].shape == (48, 96, 128)
    sig = sim["truth_sigma"].values
    x0 = round(tp["centre_px"])
    # pristine anode = base 6/cm, cathode base 5/cm + full lithium 0.8/cm
    assert sig[0, 20, x0] == pytest.approx(6.0) and sig[0, 60, x0] == pytest.approx(5.8)
    # after the first charge the anode is lithiated over its first 80 % from the separator
    assert sig[5, 39, x0] == pytest.approx(7.5) and sig[5, 15, x0] == pytest.approx(6.0)
    # noise-free intensity = open beam x exp(-Sigma delta) + dark; outside the cell T = 1
    clean = sim["truth_images"].values
    ob = sim["open_beam"].values.mean(0)
    dc = sim["dark"].values.mean(0)
    t_edge = (clean[:, :, 0] - dc[:, 0]) / (ob[:, 0] - dc[:, 0])
    assert abs(np.median(t_edge) - 1.0) < 0.02  # OB averaged over 5 noisy frames
    assert tp["radius_cm"] == pytest.approx(0.44 * 128 / 1289.8)


def test_truth_activity_and_sequestration(sim):
    tp = get_truth(sim).parameters
    # C1 fills 24 of 30 anode rows; D1 empties 12; C2 only refills those 12
    assert tp["active_fraction"]["anode"][:3] == pytest.approx([0.8, 0.4, 0.4])
    assert tp["active_window"]["anode"][0] == [16, 40]
    assert tp["sequestered_rows_first_discharge"] == [16, 28]
    assert tp["half_cycle_kinds"][:2] == ["charge", "discharge"]
    assert json.loads(sim.attrs["half_cycle_starts"]) == list(range(0, 48, 6))


def test_noise_level_and_reproducibility(sim):
    ob = sim["open_beam"].values
    # shot noise of ~1500 counts: std across the 5 frames ~ sqrt(1500 + read^2) ~ 39
    s = np.median(ob.std(axis=0, ddof=1))
    assert 30 < s < 48
    small = {"ny": 32, "nx": 24, "frames_per_half_cycle": 2}
    a, b, c = (simulate_neutron(seed=s, **small)["images"].values for s in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_parameters():
    with pytest.raises(ParameterError):
        simulate_neutron(anode_reach=(0.5,), cathode_reach=(0.5, 0.5))
    with pytest.raises(ParameterError):
        simulate_neutron(frames_per_half_cycle=1)
