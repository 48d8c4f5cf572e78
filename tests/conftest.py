"""Test configuration: float64 on (as every operando entry point does), headless plots."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax
import pytest

jax.config.update("jax_enable_x64", True)

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture
def shared_data():
    """Path to ../shared/data (real measured data); skips the test when absent."""
    path = os.path.abspath(os.environ.get("OPERANDO_SHARED_DATA", SHARED_DATA))
    if not os.path.isdir(path):
        pytest.skip(f"real data folder {path} is absent (set OPERANDO_SHARED_DATA to point at it)")
    return path
