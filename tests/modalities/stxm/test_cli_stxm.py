"""``operando stxm`` commands on a small synthetic stack (the lead registers the sub-app)."""

import json

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from operando.cli._stxm import app
from operando.errors import FileFormatError, ParameterError
from operando.io import read_dataset, write_dataset
from operando.modalities import stxm


@pytest.fixture
def files(tmp_path):
    refs = stxm.model_references()
    e = np.linspace(700.0, 730.0, 65)
    x, mask, h = stxm.synthetic_particle((32, 40))
    ds = stxm.synthetic_stxm(jax.random.key(0), x, refs, e, mask=mask, thickness=h, i0=1e4)
    write_dataset(ds, tmp_path / "stack.nc")
    paths = []
    for name, ev, v in zip(refs.names, refs.energies, refs.values, strict=True):
        p = tmp_path / f"{name}.txt"
        np.savetxt(p, np.stack([ev, v], axis=1))
        paths.append(str(p))
    return tmp_path, paths, x, mask


def test_composition_command(files):
    tmp, refs, x, mask = files
    out = tmp / "x.nc"
    result = CliRunner().invoke(
        app,
        ["composition", str(tmp / "stack.nc"), "--out", str(out), "--references", *refs,
         "--bootstrap", "20", "--seed", "1", "--baseline", "constant",
         "--figures", str(tmp / "figs")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ds = read_dataset(out)
    assert ds["images"].dims == ("y", "x") and "sigma_composition" in ds and "masks" in ds
    summary = json.loads((tmp / "x.nc.summary.json").read_text())
    r = summary["results"]
    assert summary["command"] == "operando stxm composition"
    assert r["i0_source"] == "dataset variable 'i0'"
    assert len(r["registration"]["shifts_yx_px"]) == 65
    assert abs(r["particles"][0]["mean_composition"] - np.nanmean(x[mask])) < 0.03
    assert 0 < r["mean_sigma_composition"] < 0.05
    assert (tmp / "figs" / "stxm_fraction_map.png").exists()
    assert (tmp / "figs" / "stxm_mean_fit.png").exists()


def test_composition_errors(files):
    tmp, _, _, _ = files
    runner = CliRunner()
    res = runner.invoke(app, ["composition", str(tmp / "stack.nc"), "--out", str(tmp / "o.nc")])
    assert isinstance(res.exception, ParameterError) and "--references" in str(res.exception)
    res = runner.invoke(
        app, ["composition", str(tmp / "missing.hdr"), "--out", str(tmp / "o.nc"), "--method",
              "two-energy"],
    )  # fmt: skip
    assert isinstance(res.exception, FileFormatError) and "missing.hdr" in str(res.exception)


def test_plan_energies_command(tmp_path):
    out = tmp_path / "plan.json"
    res = CliRunner().invoke(
        app, ["plan-energies", "--noise", "0.01", "--n", "11", "--n", "21", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())["rows"]
    assert [r["n"] for r in rows] == [11, 21, 11, 21]
