"""``operando report``: self-contained HTML with the sections of the stages a run has."""

import base64
import json
import re
import shutil
import subprocess

import jax
import numpy as np
import pytest

from operando.errors import FileFormatError
from operando.io import write_dataset
from operando.modalities.stxm import model_references, synthetic_particle, synthetic_stxm
from operando.pipelines._run import run_pipeline
from operando.report import build_report, write_report


@pytest.fixture(scope="module")
def stxm_run(tmp_path_factory):
    """A finished run: one synthetic STXM stack -> composition (the fast chain)."""
    tmp = tmp_path_factory.mktemp("run")
    comp, mask, h = synthetic_particle((24, 30), low=0.2, high=0.8)
    ds = synthetic_stxm(jax.random.PRNGKey(1), comp, model_references(),
                        np.linspace(702.0, 714.0, 10), mask=mask, thickness=h, i0=2e4)  # fmt: skip
    write_dataset(ds, tmp / "stack.nc")
    (tmp / "run.yaml").write_text(
        "run: {name: tiny-stxm, seed: 7}\ninput: {file: stack.nc}\n"
        "stages:\n  composition: {baseline: constant}\n  report: {}\n"
    )
    out = tmp / "out"
    run_pipeline(tmp / "run.yaml", out, report_writer=write_report)
    return out


def test_report_sections_and_self_contained(stxm_run):
    html = (stxm_run / "report.html").read_text()
    rep = build_report(stxm_run)
    # sections appear only for the stages the run has
    assert rep.section_ids() == ["overview", "data", "composition", "config"]
    assert "learn_kinetics" not in html and "Denoising" not in html
    # self-contained: figures are data URIs that decode to PNGs, nothing is fetched
    srcs = re.findall(r"src='([^']*)'", html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert base64.b64decode(srcs[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in html and "https://" not in html
    # figures also saved as PNG
    pngs = sorted(p.name for p in (stxm_run / "report_figures").glob("*.png"))
    assert "input_frames.png" in pngs and "composition_frames.png" not in pngs
    assert "stxm_fraction_map.png" in pngs
    # provenance: version, input checksum, seeds, machine, the resolved config
    summary = json.loads((stxm_run / "summary.json").read_text())
    ((_path, sha),) = summary["inputs"].items()
    assert sha in html and summary["versions"]["operando"] in html
    assert "run.seed" in html and "cpu count" in html
    assert "baseline: constant" in html and "min_size: 20" in html


def test_what_was_learned_quotes_the_numbers(stxm_run):
    rep = build_report(stxm_run)
    run = json.loads((stxm_run / "run.json").read_text())
    comp = run["stages"][1]["results"]
    # Poisson noise at 2e4 counts with h <= 1: composition RMSE of a few 0.01
    assert comp["composition_rmse"] < 0.05
    assert len(rep.learned) == 1
    assert f"RMSE of {comp['composition_rmse']:.3f} against the true Li fraction" in rep.learned[0]
    html = (stxm_run / "report.html").read_text()
    assert rep.learned[0] in html
    assert f"{comp['mean_composition']:.4g}" in html


def test_report_rejects_a_non_run_directory(tmp_path, capsys):
    from operando.cli import main

    with pytest.raises(FileFormatError, match="not an operando run directory"):
        build_report(tmp_path)
    with pytest.raises(SystemExit) as e:  # the CLI: exit code 2 and a one-line message
        main(["report", str(tmp_path)])
    assert e.value.code == 2
    assert "not an operando run directory" in capsys.readouterr().err


def test_report_cli_writes_elsewhere(stxm_run, tmp_path):
    from operando.cli import main

    target = tmp_path / "r" / "copy.html"
    with pytest.raises(SystemExit) as e:
        main(["report", str(stxm_run), "--out", str(target)])
    assert e.value.code == 0
    assert target.is_file() and (tmp_path / "r" / "report_figures" / "input_frames.png").is_file()


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.slow
def test_report_renders_in_headless_chromium(stxm_run, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium / chromium-browser / google-chrome on PATH")
    shot = tmp_path / "first_screen.png"
    subprocess.run(
        [exe, "--headless", "--disable-gpu", "--no-sandbox", f"--screenshot={shot}",
         "--window-size=1280,900", (stxm_run / "report.html").as_uri()],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    from imageio.v3 import imread

    img = imread(shot)
    assert img.shape[0] >= 800 and img.shape[1] >= 1200
    # the page drew something: the dark header band and more than a blank background
    assert img[..., :3].std() > 10
