"""SOC, particle size V/A, log-normal fit, concentrations, KDE, segmentation quality."""

import numpy as np
import pytest

from operando.errors import DataError
from operando.modalities import optical as op


def test_image_soc_formula_and_weights():
    # 4 particle pixels: 2 blue, 1 red, 1 gold -> (2*0.26 + 0.55 + 1) / 4
    p = np.array([[[1, 1, 2, 3, 0]]], np.int8)
    mask = np.array([[True, True, True, True, True]])
    np.testing.assert_allclose(op.image_soc(p, mask), [(2 * 0.26 + 0.55 + 1.0) / 4])
    np.testing.assert_allclose(
        op.image_soc(p, mask, concentrations={"gold": 0.9}), [(2 * 0.26 + 0.55 + 0.9) / 4]
    )
    assert np.isnan(op.image_soc(np.zeros((1, 1, 5), np.int8), mask)[0])


def test_compare_soc_interpolates_frame_rows():
    img = np.array([0.26, 0.4, 0.6, 0.8])
    ref = np.array([[0, 0.26], [3, 0.86]])  # linear: 0.26, 0.46, 0.66, 0.86
    c = op.compare_soc(img, ref)
    assert c["mean_bias"] == pytest.approx(-0.045)
    assert c["max_abs"] == pytest.approx(0.06)
    with pytest.raises(DataError):
        op.compare_soc(img, np.ones(3))


def test_particle_size_of_discs():
    yy, xx = np.mgrid[0:200, 0:200]
    lab = np.zeros((200, 200), np.int32)
    for i, (cy, cx, r) in enumerate(((50, 50, 10), (50, 140, 20), (150, 100, 40)), 1):
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = i
    s = op.particle_sizes(lab, pixel_size=0.1)
    # V/A of a disc = r / 2; the digital perimeter estimate is within 6 %
    np.testing.assert_allclose(s["size"], [0.5, 1.0, 2.0], rtol=0.06)
    assert s["label"].tolist() == [1, 2, 3]


def test_fit_lognormal_recovers_paper_values():
    # expert distribution of seed 000: mean 0.40 µm, SD 0.13 µm
    s2 = np.log1p((0.13 / 0.40) ** 2)
    x = np.random.default_rng(0).lognormal(np.log(0.40) - s2 / 2, np.sqrt(s2), 5000)
    f = op.fit_lognormal(x)
    assert f.mean == pytest.approx(0.40, rel=0.02)  # sampling error ~0.5 %
    assert f.std == pytest.approx(0.13, rel=0.05)
    grid = np.linspace(1e-4, 2, 4000)
    assert np.trapezoid(f.pdf(grid), grid) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(DataError):
        op.fit_lognormal([0.3])


def test_particle_concentrations_and_population_density():
    lab = np.array([[1, 1, 0, 2, 2]])
    ph = np.array([[[1, 1, 0, 1, 1]], [[2, 3, 0, 1, 0]]], np.int8)
    c = op.particle_concentrations(ph, lab)
    np.testing.assert_allclose(c, [[0.26, 0.26], [(0.55 + 1.0) / 2, 0.26]])
    sizes = np.array([0.3, 0.5])
    pop = op.population_density(sizes, c, n_grid=101, conc_range=(0.0, 1.0))
    ds = pop.size_grid[1] - pop.size_grid[0]
    dc = pop.conc_grid[1] - pop.conc_grid[0]
    np.testing.assert_allclose(pop.density.sum(axis=(1, 2)) * ds * dc, 1.0, rtol=1e-9)
    # frame 0: all particles at c = 0.26, density peaks there
    assert abs(pop.conc_grid[pop.density[0].sum(1).argmax()] - 0.26) < 0.02
    with pytest.raises(DataError):
        op.population_density(sizes, c[:, :1])


def test_segmentation_quality_counts_and_overlap():
    ref = np.zeros((40, 40), np.int32)
    ref[2:12, 2:12] = 1  # 100 px
    ref[20:30, 20:30] = 2
    ref[35:37, 35:37] = 3  # small, missed
    pred = np.zeros_like(ref)
    pred[2:12, 2:12] = 5
    pred[20:30, 22:32] = 1  # 80 % overlap -> IoU 80/120
    q = op.segmentation_quality(pred, ref, pixel_size=0.1)
    inter, a, b = 180, 200, 204
    assert q["dice"] == pytest.approx(2 * inter / (a + b))
    assert q["iou"] == pytest.approx(inter / (a + b - inter))
    assert (q["n_detected"], q["n_reference"], q["n_matched"]) == (2, 3, 2)
    assert (q["missed_small"], q["missed_large"]) == (1, 0)
    with pytest.raises(DataError, match="shape"):
        op.dice_iou(pred, ref[:10])
