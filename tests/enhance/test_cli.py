"""``operando enhance``: help, apply with a saved model, clear errors (exit code 2)."""

import json

import jax.random as jr
import numpy as np
import pytest

from operando.cli import main
from operando.data import make_dataset
from operando.enhance import Enhancer, EnhancerConfig, InDIUNet
from operando.io import read_dataset, write_dataset


def _run(argv):
    try:
        main(argv)
    except SystemExit as e:
        return e.code or 0
    return 0


@pytest.fixture
def model_dir(tmp_path):
    cfg = EnhancerConfig(
        base_filters=4, steps=2, lq_range=(0.2, 0.8), hq_range=(0.2, 0.8), lq_stats=(-0.9, 0.9)
    )
    Enhancer(cfg, InDIUNet(base_filters=4, key=jr.PRNGKey(0))).save(tmp_path / "model")
    return tmp_path / "model"


def test_help(capsys):
    assert _run(["enhance", "--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("train", "apply", "evaluate", "phantom"):
        assert cmd in out


def test_apply_writes_volume_and_summary(tmp_path, model_dir):
    rng = np.random.default_rng(0)
    vol = 0.5 + 0.15 * rng.normal(size=(3, 16, 16))
    src = tmp_path / "lq.nc"
    write_dataset(make_dataset(vol, dims=("z", "y", "x"), pixel_size=100.0, pixel_unit="nm"), src)
    out = tmp_path / "enh.nc"
    assert _run(["enhance", "apply", str(src), "--model", str(model_dir), "--out", str(out)]) == 0
    ds = read_dataset(out)
    assert ds["images"].shape == (6, 32, 32) and ds.attrs["pixel_size"] == 50.0
    summary = json.loads((tmp_path / "enh.nc.summary.json").read_text())
    assert "slice_consistency" in summary["results"]


def test_apply_bad_inputs_exit_2(tmp_path, model_dir, capsys):
    rng = np.random.default_rng(0)
    img = tmp_path / "slice.nc"
    write_dataset(make_dataset(0.5 + 0.1 * rng.normal(size=(16, 16))), img)
    code = _run(
        ["enhance", "apply", str(img), "--model", str(model_dir), "--out", str(tmp_path / "o.nc")]
    )
    assert code == 2
    assert "volume (z, y, x) is required" in capsys.readouterr().err
    vol = tmp_path / "v8bit.nc"
    write_dataset(
        make_dataset(255 * (0.5 + 0.1 * rng.normal(size=(3, 16, 16))), dims=("z", "y", "x")), vol
    )
    code = _run(
        ["enhance", "apply", str(vol), "--model", str(model_dir), "--out", str(tmp_path / "o.nc")]
    )
    assert code == 2
    assert "normalisation" in capsys.readouterr().err
    code = _run(
        [
            "enhance",
            "apply",
            str(vol),
            "--model",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "o.nc"),
        ]
    )
    assert code == 2


@pytest.mark.slow
def test_train_apply_evaluate_end_to_end(tmp_path):
    d = tmp_path / "ph"
    assert _run(["enhance", "phantom", "--out", str(d), "--size", "32", "--slices", "12"]) == 0
    m = tmp_path / "model"
    argv = ["enhance", "train", "--lq", str(d / "lq.nc"), "--hq", str(d / "hq.nc"), "--out", str(m)]
    assert (
        _run([*argv, "--epochs", "1", "--steps-per-epoch", "5", "--filters", "4", "--crop", "16"])
        == 0
    )
    assert (m / "weights.eqx").is_file() and (m / "summary.json").is_file()
    out = tmp_path / "enh.nc"
    assert (
        _run(["enhance", "apply", str(d / "insitu_lq.nc"), "--model", str(m), "--out", str(out)])
        == 0
    )
    assert read_dataset(out)["images"].shape == (24, 64, 64)
    ev = tmp_path / "eval"
    argv = ["enhance", "evaluate", "--lq", str(d / "lq.nc"), "--hq", str(d / "hq.nc")]
    argv += ["--model", str(m), "--out", str(ev), "--steps", "1,2", "--mask", str(d / "mask.nc")]
    assert _run([*argv, "--profiles", "20"]) == 0
    table = json.loads((ev / "metrics.json").read_text())
    assert {"bicubic", "indi_1", "indi_2", "reference"} <= set(table)
    assert (ev / "crops.png").is_file() and (ev / "profiles.png").is_file()


def test_enhance_stage_in_a_run_and_its_report_section(tmp_path, model_dir):
    """``stages.enhance`` hands the enhanced volume on; the report gets an InDI section."""
    from operando.pipelines import run_pipeline
    from operando.report import build_report

    rng = np.random.default_rng(1)
    vol = 0.5 + 0.15 * rng.normal(size=(3, 16, 16))
    write_dataset(
        make_dataset(vol, dims=("z", "y", "x"), pixel_size=100.0, pixel_unit="nm"),
        tmp_path / "lq.nc",
    )
    (tmp_path / "run.yaml").write_text(
        "input: {file: lq.nc}\nstages:\n  enhance: {model: model, steps: 2}\n"
    )
    out = tmp_path / "out"
    rec = run_pipeline(tmp_path / "run.yaml", out)
    stage = rec["stages"][1]
    assert stage["name"] == "enhance" and stage["results"]["shape"] == [6, 32, 32]
    ds = read_dataset(out / stage["dir"] / "data.nc")
    assert ds["images"].shape == (6, 32, 32) and ds.attrs["pixel_size"] == 50.0
    rep = build_report(out)
    assert "enhance" in rep.section_ids()
    assert any("InDI enhanced" in s for s in rep.learned)
