"""Neutron and optical runs through ``operando run``: their stages and report sections."""

import json

import pytest

from operando.cli import main
from operando.pipelines._run import run_pipeline
from operando.report import build_report, write_report


def _cli(*args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    assert e.value.code in (0, None)


def test_neutron_run_and_section(tmp_path):
    _cli("simulate", "neutron", "--out", tmp_path / "sim.nc", "--ny", "48", "--nx", "64",
         "--counts", "20000", "--frames-per-half-cycle", "3", "--seed", "2")  # fmt: skip
    (tmp_path / "run.yaml").write_text(
        "input: {file: sim.nc}\nstages:\n  neutron: {}\n  report: {}\n"
    )
    out = tmp_path / "out"
    rec = run_pipeline(tmp_path / "run.yaml", out, report_writer=write_report)
    res = rec["stages"][1]["results"]
    truth = json.loads((tmp_path / "sim.nc.summary.json").read_text())["results"]
    # the first charge's anode activity to within 0.1 (as the CLI test)
    assert abs(res["active_fraction"]["C1/anode"] - truth["active_fraction"]["anode"][0]) < 0.1
    rep = build_report(out)
    sec = rep.sections[rep.section_ids().index("neutron")]
    assert "C1/anode" in sec.body and "active fraction" in sec.body and sec.figures
    assert any(s.startswith("Neutron radiography over 8 half-cycles") for s in rep.learned)
    assert (out / "report.html").is_file()


def test_optical_run_and_section(tmp_path):
    _cli("simulate", "optical", "--out", tmp_path / "sim", "--size", "80", "--frames", "10",
         "--particles", "8", "--seed", "3")  # fmt: skip
    truth = json.loads((tmp_path / "sim" / "truth.json").read_text())
    (tmp_path / "run.yaml").write_text(
        "input: {file: sim/video.tif}\n"
        "stages:\n  optical: {pixel_size: 0.1, echem_soc: sim/echem_soc.csv}\n  report: {}\n"
    )
    out = tmp_path / "out"
    rec = run_pipeline(tmp_path / "run.yaml", out, report_writer=write_report)
    res = rec["stages"][1]["results"]
    assert res["n_particles"] == truth["n_particles"]
    assert res["soc_vs_echem"]["rmse"] < 0.06
    rep = build_report(out)
    sec = rep.sections[rep.section_ids().index("optical")]
    assert "image SOC vs electrochemistry: rmse" in sec.body and sec.figures
    assert any(
        s.startswith(f"Optical video: {truth['n_particles']} particles") for s in rep.learned
    )
