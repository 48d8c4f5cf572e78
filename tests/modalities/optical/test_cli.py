"""``operando simulate optical`` and ``operando optical analyze``: files, summary, errors."""

import json

import numpy as np
import pytest
import tifffile

from operando.cli import main


def run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    with pytest.raises(SystemExit) as e:
        main(
            [
                "simulate",
                "optical",
                "--out",
                str(d),
                "--size",
                "80",
                "--frames",
                "10",
                "--particles",
                "8",
                "--seed",
                "3",
            ]
        )
    assert e.value.code == 0
    return d


def test_simulate_then_analyze(simulated, tmp_path, capsys):
    truth = json.loads((simulated / "truth.json").read_text())
    out = tmp_path / "res"
    code, _, err = run(
        capsys,
        "optical",
        "analyze",
        simulated / "video.tif",
        "--out",
        out,
        "--pixel-size",
        "0.1",
        "--echem",
        simulated / "echem_soc.csv",
        "--reference-labels",
        simulated / "truth_labels.tif",
    )
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())
    r = s["results"]
    assert r["n_particles"] == truth["n_particles"]
    assert r["soc_vs_echem"]["rmse"] < 0.06  # 8-bit video of 8 particles: a bit noisier
    for name in (
        "labels.tif",
        "labels.npy",
        "phases.npy",
        "soc.csv",
        "particles.csv",
        "optical_phases.png",
        "optical_soc.png",
        "optical_population.png",
    ):
        assert (out / name).exists(), name
    assert len(s["inputs"]) == 3  # video, echem, reference labels with checksums
    # expert loop: feed the exported labels back (napari edits leave gaps in the numbers)
    lab = tifffile.imread(out / "labels.tif")
    np.save(tmp_path / "edited.npy", lab * 3)
    code, _, err = run(
        capsys,
        "optical",
        "analyze",
        simulated / "video.tif",
        "--out",
        tmp_path / "again",
        "--labels",
        tmp_path / "edited.npy",
        "--no-figures",
        "--no-rule",
        "background_persists",
    )
    assert code == 0, err
    s2 = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert s2["results"]["labels_source"] == "user"
    assert s2["results"]["n_particles"] == r["n_particles"]  # renumbered 1..N
    assert s2["parameters"]["rules"]["background_persists"] is False


def test_bad_inputs_exit_2(simulated, tmp_path, capsys):
    video = tifffile.imread(simulated / "video.tif")
    tifffile.imwrite(tmp_path / "one.tif", video[:1], photometric="rgb")
    code, _, err = run(capsys, "optical", "analyze", tmp_path / "one.tif", "--out", tmp_path / "o")
    assert code == 2 and "1 frame" in err
    tifffile.imwrite(tmp_path / "grey.tif", video[..., 1])
    code, _, err = run(capsys, "optical", "analyze", tmp_path / "grey.tif", "--out", tmp_path / "o")
    assert code == 2 and "grey-scale" in err
    np.save(tmp_path / "lab.npy", np.zeros((40, 40), np.int32))
    code, _, err = run(
        capsys,
        "optical",
        "analyze",
        simulated / "video.tif",
        "--out",
        tmp_path / "o",
        "--labels",
        tmp_path / "lab.npy",
    )
    assert code == 2 and "40x40 but the video frames are 80x80" in err
    code, _, err = run(
        capsys,
        "optical",
        "analyze",
        simulated / "video.tif",
        "--out",
        tmp_path / "o",
        "--no-rule",
        "bogus",
    )
    assert code == 2 and "unknown rule" in err
