"""``operando strain``: simulate -> learn end to end, and bad inputs (exit code 2)."""

import json

import numpy as np
import pytest

from operando.cli import main


def run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_strain_simulate_and_learn(tmp_path, capsys):
    sim = tmp_path / "sim"
    code, _, err = run(
        capsys, "strain", "simulate", "--out", sim, "--particles", "1", "--seed", "3"
    )
    assert code in (0, None), err
    out = tmp_path / "learn"
    code, text, err = run(
        capsys, "strain", "learn", "-x", sim / "composition_0.npy", "-s", sim / "strain_0.npy",
        "--out", out, "--degree", "1",
    )  # fmt: skip
    assert code in (0, None), err
    assert "M1 lowers the model error" in text
    summary = json.loads((out / "summary.json").read_text())
    m1 = summary["results"]["fits"]["m1"]
    # Vegard's law recovered: df/dX = (0.05, -0.025) at 1e-3 strain noise
    np.testing.assert_allclose(m1["dfdx_mean"], [0.05, -0.025], rtol=0.02)
    assert summary["results"]["model_errors"]["m1_vs_m0_reduction"] > 0.2
    for name in ("law_m0.csv", "law_m1.csv", "residuals.npz", "strain_law.png"):
        assert (out / name).exists()
    table = np.genfromtxt(out / "law_m1.csv", delimiter=",", names=True)
    assert np.all(table["f_a_lo95"] <= table["f_a"]) and np.all(table["f_a"] <= table["f_a_hi95"])


def test_strain_learn_bad_inputs(tmp_path, capsys):
    x = np.full((10, 8), np.nan)
    x[2:8, 2:6] = 0.5
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "s.npy", np.zeros((12, 8, 3)))
    code, _, err = run(
        capsys, "strain", "learn", "-x", tmp_path / "x.npy", "-s", tmp_path / "s.npy",
        "--out", tmp_path / "o", "--degree", "1",
    )  # fmt: skip
    assert code == 2 and "register" in err
    np.save(tmp_path / "x2.npy", x * 100)
    np.save(tmp_path / "s2.npy", np.zeros((10, 8, 3)))
    code, _, err = run(
        capsys, "strain", "learn", "-x", tmp_path / "x2.npy", "-s", tmp_path / "s2.npy",
        "--out", tmp_path / "o", "--degree", "1",
    )  # fmt: skip
    assert code == 2 and "outside [0, 1]" in err
    code, _, err = run(
        capsys, "strain", "learn", "-x", tmp_path / "x.npy", "-s", tmp_path / "s2.npy",
        "--out", tmp_path / "o", "--strain-format", "py4dstem",
    )  # fmt: skip
    assert code == 2 and "py4DSTEM" in err
