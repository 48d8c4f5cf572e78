"""Training: the loss falls, the baseline is a t = 1 regression, options are checked."""

import numpy as np
import pytest

from operando.enhance import prepare_pairs, train_on_pairs
from operando.errors import ParameterError
from operando.simulate import simulate_enhancement_pair


@pytest.fixture(scope="module")
def pairs():
    p = simulate_enhancement_pair((12, 40, 40), seed=5)
    return prepare_pairs(p.lq, p.hq, register="none")


@pytest.mark.slow
def test_short_training_reduces_the_loss(pairs):
    enh = train_on_pairs(
        pairs,
        key=0,
        epochs=1,
        steps_per_epoch=60,
        batch_size=4,
        crop=16,
        learning_rate=3e-3,
        base_filters=4,
        depth=2,
    )
    losses = enh.history["losses"]
    assert losses.shape == (60,) and np.all(np.isfinite(losses))
    assert losses[-15:].mean() < 0.8 * losses[:15].mean()
    assert enh.config.steps == 8 and enh.config.method == "indi"
    assert enh.config.lq_range == pairs.norm.lq_range


def test_bad_training_options(pairs):
    with pytest.raises(ParameterError, match="crop"):
        train_on_pairs(pairs, crop=18, base_filters=4)  # not a multiple of 2**depth
    with pytest.raises(ParameterError, match="crop"):
        train_on_pairs(pairs, crop=256, base_filters=4)


@pytest.mark.slow
def test_regression_baseline_config(pairs):
    cnn = train_on_pairs(
        pairs, method="regression", epochs=1, steps_per_epoch=1, crop=16, base_filters=4
    )
    assert cnn.config.p_one == 1.0 and cnn.config.steps == 1
