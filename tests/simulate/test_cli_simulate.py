"""The ``simulate ch`` sub-command (invoked on its own Typer app; the lead registers it)."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from operando.cli._simulate import app
from operando.data import get_truth
from operando.io import read_dataset


def test_simulate_ch_writes_dataset_and_summary(tmp_path):
    out = tmp_path / "ch.nc"
    res = CliRunner().invoke(
        app, ["ch", "--out", str(out), "--size", "16", "--frames", "3", "--realizations", "1"]
    )
    assert res.exit_code == 0, res.output
    ds = read_dataset(str(out))
    assert ds.images.shape == (1, 3, 16, 16)
    np.testing.assert_allclose(ds.t.values, [0.0, 2.5, 5.0])
    assert get_truth(ds).parameters["omega"] == 3.0
    summary = json.loads((tmp_path / "ch.nc.summary.json").read_text())
    assert summary["command"] == "simulate ch" and summary["results"]["shape"] == [1, 3, 16, 16]
    assert summary["parameters"]["seed"] == 0 and summary["parameters"]["kappa"] == 2e-3
