"""Activity, active windows and sequestered lithium recovered from the synthetic cell.

Tolerances: the synthetic cell (``simulate_neutron`` defaults, 1500 open-beam counts) is
analysed with the median-filtered chain, no network denoising. Over seeds 0-4 the anode
fractions are within 0.045 of the truth and the cathode fractions 0.03-0.08 low: the
cathode's lithium contrast (0.8/cm) is about 2.5x the in-plane noise of ``ΔΣ`` (0.3/cm),
so Otsu on ``|ΔΣ|`` misses part of the active pixels. Hence 0.06 (anode) and 0.10
(cathode). Windows and the sequestered rows are exact on every seed; we allow 1 row.
"""

import numpy as np
import pytest

from operando.data import get_truth
from operando.errors import DataError
from operando.modalities import neutron as nn
from operando.pipelines._neutron import analyze_neutron
from operando.simulate import simulate_neutron


def _run(ds, **kw):
    tp = get_truth(ds).parameters
    hc = nn.half_cycles_from_boundaries(tp["half_cycle_starts"], ds.sizes["t"])
    rows = tp["layout_rows"]
    return tp, analyze_neutron(
        ds["images"].values, ds["open_beam"].values, ds["dark"].values,
        radius_cm=tp["radius_cm"], centre_px=tp["centre_px"], pixels_per_cm=tp["pixels_per_cm"],
        half_cycles=hc, regions={"anode": rows["anode"], "cathode": rows["cathode"]}, **kw,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sim():
    return simulate_neutron(seed=0)


def test_otsu_and_active_window():
    v = np.concatenate([np.zeros(70), np.ones(30)])
    assert 0.0 < nn.otsu_threshold(v) < 1.0
    with pytest.raises(DataError, match="cannot threshold"):
        nn.otsu_threshold(np.ones(5))
    f = np.array([np.nan, 0.1, 0.3, 0.9, 0.5, 0.1, 0.25, np.nan])
    assert nn.active_window(f) == (2, 5)  # the longest run >= 20 %
    assert nn.active_window(f, level=0.95) is None


def test_recovers_active_fractions_windows_and_sequestration(sim):
    tp, res = _run(sim)
    assert len(res.activity) == 16
    for a in res.activity:
        true_f = tp["active_fraction"][a.electrode][a.half_cycle.index]
        tol = 0.06 if a.electrode == "anode" else 0.10
        assert abs(a.active_fraction - true_f) < tol, (a.half_cycle.label, a.electrode)
        true_w = tp["active_window"][a.electrode][a.half_cycle.index]
        assert a.window is not None and np.abs(np.subtract(a.window, true_w)).max() <= 1
    # first charge fills 80 % of the anode, the first discharge empties only 40 % of it
    first = {(a.half_cycle.label, a.electrode): a.active_fraction for a in res.activity}
    assert first["C1", "anode"] > 0.7 and first["D1", "anode"] < 0.45
    # lithium kept after the first discharge, on the current-collector side of the anode
    seq = res.sequestration
    assert seq is not None and seq.rows is not None
    assert np.abs(np.subtract(seq.rows, tp["sequestered_rows_first_discharge"])).max() <= 1
    anode_rows = tp["layout_rows"]["anode"]
    assert anode_rows[0] <= seq.rows[0] and seq.rows[1] < (anode_rows[0] + anode_rows[1]) / 2 + 4
    # depth profile at the end of C1: about +1.5/cm (the anode's lithium contrast) inside
    # the active window, 0 in the separator
    mean, std = res.profiles["C1"]
    assert abs(np.nanmean(mean[20:38]) - tp["sigma_li_anode"]) < 0.1
    assert abs(np.nanmean(mean[41:47])) < 0.1
    assert np.all(std[20:38] > 0)


def test_denoiser_hook_gets_all_three_series(sim):
    seen = []

    def identity(frames, role):
        seen.append((role, frames.shape))
        return frames

    _, hooked = _run(sim, denoiser=identity)
    assert [r for r, _ in seen] == ["intensity", "open_beam", "dark"]
    assert seen[0][1] == (48, 96, 128) and seen[1][1][0] == 5
    assert hooked.raw is not None  # the undenoised chain, run alongside for comparison
    np.testing.assert_array_equal(hooked.delta_sigma, hooked.raw.delta_sigma)
    assert hooked.variability == hooked.raw.variability


@pytest.mark.slow
def test_n2v_denoising_lowers_dynamic_variability(sim):
    """Seed 000 Fig. 5b: denoising lowers the mean 3x3x3 local std of ``ΔΣ`` (0.0247 ->
    0.005 there). Here short N2V training (100 steps per series) must cut it by a third
    or more without degrading the recovered activity."""
    tp, res = _run(
        sim, denoiser=nn.train_frame_denoiser("n2v", key=0, epochs=4, steps_per_epoch=25)
    )
    assert res.raw is not None
    assert res.variability < (2 / 3) * res.raw.variability

    def err(r):
        return max(
            abs(a.active_fraction - tp["active_fraction"][a.electrode][a.half_cycle.index])
            for a in r.activity
        )

    assert err(res) <= err(res.raw) + 0.01
    assert res.sequestration is not None and res.sequestration.rows is not None
    assert (
        np.abs(np.subtract(res.sequestration.rows, tp["sequestered_rows_first_discharge"])).max()
        <= 1
    )
