"""``operando simulate neutron`` and ``operando neutron analyze`` end to end, and bad inputs."""

import csv
import json

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from operando.cli._neutron import app
from operando.cli._simulate import app as simulate_app
from operando.errors import DataError
from operando.io import read_dataset


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("neutron")
    res = CliRunner().invoke(
        simulate_app,
        ["neutron", "--out", str(tmp / "sim.nc"), "--ny", "48", "--nx", "64", "--counts", "20000",
         "--frames-per-half-cycle", "3", "--seed", "2"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return tmp


def test_analyze_simulated_dataset(simulated):
    out = simulated / "res"
    res = CliRunner().invoke(app, ["analyze", str(simulated / "sim.nc"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "sequestered lithium" in res.output
    summary = json.loads((out / "summary.json").read_text())
    r = summary["results"]
    assert summary["command"] == "neutron analyze" and r["frames"] == 24
    assert r["half_cycles"] == ["C1", "D1", "C2", "D2", "C3", "D3", "C4", "D4"]
    truth = json.loads((simulated / "sim.nc.summary.json").read_text())["results"]
    # 15 anode rows, 20000 counts: the first charge's fraction to within 0.1
    assert abs(r["active_fraction"]["C1/anode"] - truth["active_fraction"]["anode"][0]) < 0.1
    assert r["truth_sequestered_rows"] == truth["sequestered_rows_first_discharge"]
    assert np.abs(np.subtract(r["sequestered_rows"], r["truth_sequestered_rows"])).max() <= 1
    assert summary["inputs"] and summary["parameters"]["pixels_per_cm"] == 1289.8
    maps = read_dataset(out / "attenuation.nc")
    assert maps["delta_sigma"].shape == (24, 48, 64) and "valid" in maps
    with open(out / "activity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and {r["electrode"] for r in rows} == {"anode", "cathode"}
    with open(out / "profiles.csv", newline="") as f:
        assert sum(1 for _ in csv.DictReader(f)) == 8 * 48
    for name in ("neutron_delta_maps.png", "neutron_activity.png", "neutron_sequestration.png"):
        assert (out / name).stat().st_size > 1000


@pytest.fixture
def tiffs(tmp_path):
    rng = np.random.default_rng(0)
    i = rng.uniform(300, 900, size=(4, 20, 24))
    tifffile.imwrite(tmp_path / "i.tif", i.astype(np.float32), photometric="minisblack")
    tifffile.imwrite(
        tmp_path / "ob.tif", np.full((2, 20, 24), 1100, np.float32), photometric="minisblack"
    )
    tifffile.imwrite(
        tmp_path / "dc.tif", np.full((2, 20, 24), 100, np.float32), photometric="minisblack"
    )
    return tmp_path


def test_tiff_frames_flat_thickness_and_half_cycles(tiffs):
    out = tiffs / "r"
    res = CliRunner().invoke(
        app,
        ["analyze", str(tiffs / "i.tif"), "--open-beam", str(tiffs / "ob.tif"), "--dark",
         str(tiffs / "dc.tif"), "--out", str(out), "--thickness", "0.2", "--half-cycles",
         "0,2", "--anode", "0:10", "--cathode", "10:20", "--no-figures"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    maps = read_dataset(out / "attenuation.nc")
    i = tifffile.imread(tiffs / "i.tif").astype(np.float64)
    from scipy import ndimage as ndi

    t = (ndi.median_filter(i, size=(1, 3, 3), mode="nearest") - 100) / 1000
    np.testing.assert_allclose(maps["images"].values, -np.log(t) / 0.2, rtol=1e-6)


def test_bad_inputs_give_clear_errors(tiffs):
    run = CliRunner().invoke
    base = ["analyze", str(tiffs / "i.tif"), "--out", str(tiffs / "o"), "--thickness", "0.1"]
    res = run(app, [*base, "--dark", str(tiffs / "dc.tif")])
    assert isinstance(res.exception, DataError) and "--open-beam" in str(res.exception)
    res = run(app, [*base, "--open-beam", str(tiffs / "ob.tif")])
    assert isinstance(res.exception, DataError) and "--dark" in str(res.exception)
    tifffile.imwrite(
        tiffs / "ob_small.tif", np.full((2, 20, 20), 1100, np.float32), photometric="minisblack"
    )
    res = run(app, [*base, "--open-beam", str(tiffs / "ob_small.tif"), "--dark",
                    str(tiffs / "dc.tif")])  # fmt: skip
    assert isinstance(res.exception, DataError) and "(20, 20)" in str(res.exception)
    # a region where the intensity is at or below the dark current: T <= 0
    i = tifffile.imread(tiffs / "i.tif")
    i[1, 5:10, 5:10] = 50
    tifffile.imwrite(tiffs / "i_bad.tif", i, photometric="minisblack")
    bad = [
        "analyze",
        str(tiffs / "i_bad.tif"),
        "--out",
        str(tiffs / "o"),
        "--thickness",
        "0.1",
        "--open-beam",
        str(tiffs / "ob.tif"),
        "--dark",
        str(tiffs / "dc.tif"),
        "--no-figures",
    ]
    res = run(app, bad)
    assert isinstance(res.exception, DataError) and "T <= 0" in str(res.exception)
    assert "--mask-nonpositive" in str(res.exception)
    res = run(app, [*bad, "--mask-nonpositive"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tiffs / "o" / "summary.json").read_text())
    assert summary["results"]["nonpositive_values"] > 0
