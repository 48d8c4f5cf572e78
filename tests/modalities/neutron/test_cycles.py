"""Half-cycles from frame boundaries and from an electrochemistry record."""

import numpy as np
import pytest

from operando.errors import DataError, FileFormatError, ParameterError
from operando.modalities import neutron as nn


def test_boundaries_alternate_and_label():
    hc = nn.half_cycles_from_boundaries([0, 5, 9], 14)
    assert [(h.kind, h.start, h.stop, h.label) for h in hc] == [
        ("charge", 0, 5, "C1"),
        ("discharge", 5, 9, "D1"),
        ("charge", 9, 14, "C2"),
    ]
    assert hc[1].last == 8
    # an explicit end marker gives the same; a discharge-first series labels D1 first
    assert nn.half_cycles_from_boundaries([0, 5, 9, 14], 14) == hc
    assert nn.half_cycles_from_boundaries([0, 5], 9, first="discharge")[0].label == "D1"


@pytest.mark.parametrize("bad", [[], [0, 5, 5], [3, 2], [0, 20], [0, 8]])
def test_bad_boundaries(bad):
    with pytest.raises(ParameterError):
        nn.half_cycles_from_boundaries(bad, 9)


def test_current_sign_changes_with_rests():
    # charge 0-100 s, rest, discharge 110-200 s, rest, charge 210-300 s; a frame every 10 s
    t = np.arange(0, 301, 1.0)
    i = np.where(t < 100, 2.0, np.where(t < 110, 0.0, np.where(t < 200, -2.0,
                 np.where(t < 210, 0.0, 2.0))))  # fmt: skip
    frames = np.arange(0, 301, 10.0)
    hc = nn.half_cycles_from_current(t, i, frames, rest_tolerance=0.01)
    # a half-cycle starts at the first frame at or after the sign change (110 s, 210 s);
    # frames taken during a rest belong to the half-cycle before it
    assert [(h.label, h.start, h.stop) for h in hc] == [("C1", 0, 11), ("D1", 11, 21),
                                                        ("C2", 21, 31)]  # fmt: skip
    # a cell cycled with negative charging current
    neg = nn.half_cycles_from_current(t, -i, frames, charge_sign=-1, rest_tolerance=0.01)
    assert [h.kind for h in neg] == [h.kind for h in hc]
    with pytest.raises(DataError, match="rest"):
        nn.half_cycles_from_current(t, 0 * i, frames)


def test_electrochemistry_csv(tmp_path):
    p = tmp_path / "echem.csv"
    p.write_text("Time/s;Voltage/V;I/mA\n0;3.0;1\n10;3.5;1\n20;3.6;-1\n30;3.2;-1\n40;3.1;-1\n")
    t, c = nn.read_electrochemistry_csv(p)
    np.testing.assert_array_equal(t, [0, 10, 20, 30, 40])
    np.testing.assert_array_equal(c, [1, 1, -1, -1, -1])
    hc = nn.half_cycles_from_current(t, c, np.arange(0, 45, 5.0))
    assert [(h.kind, h.start, h.stop) for h in hc] == [("charge", 0, 4), ("discharge", 4, 9)]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(FileFormatError, match="which column is the time"):
        nn.read_electrochemistry_csv(bad)


def test_current_record_of_the_synthetic_cell_gives_its_half_cycles():
    from operando.simulate import simulate_neutron

    ds = simulate_neutron(ny=32, nx=24, frames_per_half_cycle=3, seed=0)
    hc = nn.half_cycles_from_current(
        ds["echem_time"].values, ds["echem_current"].values, ds["t"].values
    )
    expected = nn.half_cycles_from_boundaries(list(range(0, 24, 3)), 24)
    assert hc == expected
