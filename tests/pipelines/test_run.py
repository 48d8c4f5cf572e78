"""``operando run``: config validation, the stage chain, the cache and resuming.

The default tests use a single synthetic STXM stack (composition is fast) so that the
cache behaviour is exercised on real stages; the full kinetics chain is marked slow.
"""

import json
import os

import jax
import numpy as np
import pytest

from operando.errors import FileFormatError, ParameterError
from operando.io import read_dataset, write_dataset
from operando.modalities.stxm import model_references, synthetic_particle, synthetic_stxm
from operando.pipelines._config import dump_config, load_config, parse_config
from operando.pipelines._run import run_pipeline


@pytest.fixture
def stack_file(tmp_path):
    """A Poisson STXM stack of one particle with a known composition front."""
    comp, mask, h = synthetic_particle((24, 30), low=0.2, high=0.8)
    e = np.linspace(702.0, 714.0, 10)
    ds = synthetic_stxm(jax.random.PRNGKey(0), comp, model_references(), e, mask=mask,
                        thickness=h, i0=2e4)  # fmt: skip
    path = tmp_path / "stack.nc"
    write_dataset(ds, path)
    return path


def _config(tmp_path, stack, *, bootstrap=0, report="report.html"):
    text = f"""\
run:
  name: tiny
  seed: 3
input:
  file: {stack.name}
stages:
  composition:
    baseline: constant
    bootstrap: {bootstrap}
  report:
    filename: {report}
"""
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def _markers(out):
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "stages").glob("*/DONE.json")}


def test_tiny_config_end_to_end_and_cache(tmp_path, stack_file):
    cfg = _config(tmp_path, stack_file)
    out = tmp_path / "out"
    rec = run_pipeline(cfg, out)
    assert [s["name"] for s in rec["stages"]] == ["input", "composition"]
    assert not any(s["cached"] for s in rec["stages"])
    # the science: composition against the rendered truth (Poisson noise at 2e4 counts and
    # h <= 1 gives per-pixel sigma_X of a few 0.01; 0.05 RMSE leaves room, a wrong sign or
    # swapped references gives > 0.3)
    comp = read_dataset(out / rec["stages"][1]["dataset"])
    truth = read_dataset(stack_file)["truth_composition"].values
    x = comp["images"].values
    ok = np.isfinite(x) & np.isfinite(truth)
    assert ok.sum() > 250
    assert np.sqrt(np.mean((x[ok] - truth[ok]) ** 2)) < 0.05
    # resolved config written and recorded in every summary
    resolved = (out / "config.yaml").read_text()
    assert "min_size: 20" in resolved  # a default filled in
    assert load_config(out / "config.yaml").run.seed == 3  # round-trips
    for d in (out / "stages").iterdir():
        s = json.loads((d / "summary.json").read_text())
        assert s["parameters"]["config"]["stages"]["composition"]["baseline"] == "constant"
    top = json.loads((out / "summary.json").read_text())
    assert str(stack_file) in top["inputs"]  # input checksum recorded
    assert (out / "report.html").is_file() is False  # no report writer passed

    # edit the last stage (report) and re-run: nothing is recomputed
    before = _markers(out)
    rec2 = run_pipeline(_config(tmp_path, stack_file, report="r2.html"), out)
    assert all(s["cached"] for s in rec2["stages"])
    assert _markers(out) == before

    # edit the composition stage: input is reused, composition recomputed in a new dir
    rec3 = run_pipeline(_config(tmp_path, stack_file, bootstrap=2), out)
    assert [s["cached"] for s in rec3["stages"]] == [True, False]
    after = _markers(out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert len(after) == 3
    assert rec3["stages"][1]["results"]["bootstrap"] == 2


def test_failed_run_resumes_after_last_finished_stage(tmp_path, stack_file):
    text = (
        f"input: {{file: {stack_file}}}\nstages:\n  composition: {{references: [a.txt, b.txt]}}\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    out = tmp_path / "out"
    with pytest.raises(FileFormatError):
        run_pipeline(bad, out)
    finished = _markers(out)
    assert list(finished) and all(k.startswith("input-") for k in finished)
    partial = list((out / "stages").glob(".composition-*.partial"))
    assert len(partial) == 1 and not (partial[0] / "DONE.json").exists()
    # fix the config: the input stage is taken from the cache, the partial dir replaced
    good = tmp_path / "good.yaml"
    good.write_text(f"input: {{file: {stack_file}}}\nstages:\n  composition: {{}}\n")
    rec = run_pipeline(good, out)
    assert [s["cached"] for s in rec["stages"]] == [True, False]
    assert _markers(out)[next(iter(finished))] == finished[next(iter(finished))]
    # a stage dir whose marker is missing (killed between rename and marker cannot happen,
    # but a user may delete it) is recomputed
    comp_dir = out / rec["stages"][1]["dir"]
    os.remove(comp_dir / "DONE.json")
    rec = run_pipeline(good, out)
    assert [s["cached"] for s in rec["stages"]] == [True, False]


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("input: {file: x.nc}\nstages:\n  denoise:\n    epochz: 3\n", "stages.denoise.epochz", 4),
        ("input: {file: x.nc}\nstages:\n  denoise:\n    epochs: -1\n", "stages.denoise.epochs", 4),
        ("input: {file: x.nc}\nstages:\n  learn_kinetic: {}\n", "stages.learn_kinetic", 3),
        ("input:\n  simulate:\n    kind: particles\n    n_particles: two\n",
         "input.simulate.n_particles", 4),
        ("run: {seed: 1}\ninput: {file: x.nc}\nstagez: {}\n", "stagez", 3),
        ("input: {file: x.nc}\nstages:\n  learn_ch: {}\n  learn_kinetics: {}\n",
         "stages.learn_kinetics", 4),
        ("input: {file: x.nc}\nstages:\n  learn_kinetics:\n    smooth_segments: [1, -2]\n",
         "stages.learn_kinetics", 3),
        ("input: {file: x.nc}\nstages:\n  learn_kinetics:\n    max_iter_single: 0\n",
         "stages.learn_kinetics.max_iter_single", 4),
        ("input: {file: x.nc}\nstages:\n  learn_kinetics:\n    smooth_initial: median\n",
         "stages.learn_kinetics.smooth_initial", 4),
    ],
)  # fmt: skip
def test_malformed_config_names_key_and_line(text, key, line):
    with pytest.raises(ParameterError) as e:
        parse_config(text, source="cfg.yaml")
    msg = str(e.value)
    assert key in msg and f"line {line}" in msg and msg.startswith("cfg.yaml"), msg


def test_defaults_are_documented_and_resolved():
    cfg = parse_config("input: {simulate: {kind: stxm-particles}}\nstages: {denoise: {}}\n")
    res = cfg.resolved()
    assert res["stages"]["denoise"]["epochs"] == 20
    assert res["input"]["simulate"]["n_energies"] == 12
    assert parse_config(dump_config(cfg)).resolved() == res  # round trip
    mean = parse_config("input: {file: x.nc}\nstages: {learn_kinetics: {smooth_initial: mean}}\n")
    assert mean.resolved()["stages"]["learn_kinetics"]["smooth_initial"] == "mean"


def test_strain_stage_and_report_section(tmp_path):
    """A chemo-mechanics run: strain maps -> M0/M1 laws -> report section with the table."""
    from operando.pipelines._strain import strain_simulate
    from operando.report import build_report

    strain_simulate(tmp_path / "sim", n_particles=1, seed=3)
    (tmp_path / "run.yaml").write_text(
        "input: {file: sim/composition_0.npy}\n"
        "stages:\n  strain: {strain: [sim/strain_0.npy], degree: 1}\n"
    )
    out = tmp_path / "out"
    rec = run_pipeline(tmp_path / "run.yaml", out)
    assert [s["name"] for s in rec["stages"]] == ["input", "strain"]
    res = rec["stages"][1]["results"]
    # Vegard's law (df/dX = 0.05 along a, -0.025 along c) recovered by M1 at 1e-3 noise
    np.testing.assert_allclose(res["fits"]["m1"]["dfdx_mean"], [0.05, -0.025], rtol=0.02)
    assert res["model_errors"]["m1_vs_m0_reduction"] > 0.2
    rep = build_report(out)
    assert "strain" in rep.section_ids()
    sec = rep.sections[rep.section_ids().index("strain")]
    assert "M1" in sec.body and "df/dX" in sec.body and sec.figures
    assert any("eigenstrain" in s for s in rep.learned)
    # the strain stage requires its strain maps: the error names the key and the line
    (tmp_path / "bad.yaml").write_text(
        "input: {file: sim/composition_0.npy}\nstages:\n  strain: {model: m1}\n"
    )
    with pytest.raises(ParameterError, match=r"line 3: stages\.strain\.strain"):
        load_config(tmp_path / "bad.yaml")


@pytest.mark.slow
def test_kinetics_chain_on_stxm_particles(tmp_path):
    """Simulate -> STXM stacks -> composition -> denoise -> learn kinetics -> uq (tiny)."""
    text = """\
run: {seed: 1}
input:
  simulate: {kind: stxm-particles, n_particles: 2, mean_area: 120, half_cycles: [1, 1],
             frames: [4, 5]}
stages:
  composition: {baseline: constant}
  denoise: {epochs: 2, steps_per_epoch: 10, patch: 16}
  report: {}
  learn_kinetics: {max_iter: 5, degree_mu: 4, degree_j0: 3, n_kl: 5, shooting: multiple}
  uq: {replicates: 2, max_iter: 2, workers: 1}
"""
    path = tmp_path / "k.yaml"
    path.write_text(text)
    from operando.report import build_report, write_report

    rec = run_pipeline(path, tmp_path / "out", report_writer=write_report)
    names = [s["name"] for s in rec["stages"]]
    assert names == ["input", "composition", "denoise", "learn_kinetics", "uq"]
    comp = rec["stages"][1]["results"]
    assert comp["composition_rmse"] < 0.05  # Poisson at 2e4 counts: ~0.015 measured
    kin = rec["stages"][3]["results"]
    assert np.isfinite(kin["train_rmse"]) and kin["iterations"] == 5
    rep = build_report(tmp_path / "out")
    assert rep.section_ids() == [
        "overview", "data", "composition", "denoise", "learn_kinetics", "uq", "config"
    ]  # fmt: skip
    assert rec["stages"][4]["results"]["n_boot"] == 2
    assert "j0_in_band" in rep.numbers["learn_kinetics"]
    assert any("kinetics fit" in s and "relative RMSE" in s for s in rep.learned)


def test_docs_list_every_key():
    """docs/pipelines.md documents every option of every stage model (kept in sync)."""
    from pathlib import Path

    from operando.pipelines._config import STAGE_CONFIGS

    doc = (Path(__file__).parents[2] / "docs" / "pipelines.md").read_text()
    for name, spec in STAGE_CONFIGS.items():
        section = doc.split(f"**stages.{name}**", 1)
        assert len(section) == 2, name
        body = section[1].split("**", 1)[0]
        for key in spec.model.model_fields:
            assert f"| `{key}` |" in body, (name, key)


def test_demo_config_prints_a_valid_chain_config(capsys):
    """``operando demo --config`` prints the YAML of the chain demo; it validates."""
    from operando.cli import main

    for flags in (["--config"], ["--config", "--quick"]):
        with pytest.raises(SystemExit) as e:
            main(["demo", *flags])
        assert e.value.code in (0, None)
        cfg = parse_config(capsys.readouterr().out)
        names = cfg.stage_names()
        assert names[:3] == ["composition", "denoise", "learn_kinetics"] and names[-1] == "report"


@pytest.mark.slow  # ~1 min idle: the quick pipeline demo end to end
def test_quick_demo_writes_the_report(tmp_path, capsys):
    """``operando demo --quick``: the whole chain, its report and a cached second run."""
    from operando.cli import main

    out = tmp_path / "demo"
    for _ in range(2):
        with pytest.raises(SystemExit) as e:
            main(["demo", "--quick", "--out", str(out)])
        assert e.value.code in (0, None)
    text = capsys.readouterr().out
    assert "report:" in text and "cached" in text  # the second run reused every stage
    html = (out / "report.html").read_text()
    for title in ("What was learned", "Composition", "Denoising", "Learned kinetics"):
        assert title in html
    rec = json.loads((out / "run.json").read_text())
    kin = next(s for s in rec["stages"] if s["name"] == "learn_kinetics")["results"]
    # the quick fit is rough but must be finite and correlated with the truth
    assert np.isfinite(kin["j0_rel_rmse"]) and kin["lnk_corr"] > 0.3
