"""``optical analyze --denoise``: the denoising step is wired into the pipeline (slow: JAX)."""

import json

import numpy as np
import pytest

from operando.pipelines._optical import optical_analyze
from operando.simulate import simulate_optical


@pytest.mark.slow
@pytest.mark.parametrize("method", ["umvd", "n2v"])
def test_pipeline_with_denoising(tmp_path, method):
    sim = simulate_optical(seed=2, shape=(64, 64), n_frames=8, n_particles=6, drift_step=0.0)
    res = optical_analyze(
        sim.video,
        tmp_path,
        pixel_size=0.1,
        denoise=method,
        denoise_epochs=1,
        denoise_steps=2,
        labels=sim.labels,  # two training steps blur everything: skip segmentation
        figures=False,
    )
    r = res["results"]
    assert r["denoise"]["method"] == method and r["denoise"]["patch_size"] == 64
    assert r["n_particles"] == sim.labels.max() and r["labels_source"] == "user"
    # outputs cover the whole video (an untrained model's values are not checked: 2 steps)
    assert np.load(tmp_path / "phases.npy").shape == (8, 64, 64)
    assert len(r["soc"]) == 8 and np.isfinite(r["denoise"]["final_loss"])
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["parameters"]["denoise"] == method
