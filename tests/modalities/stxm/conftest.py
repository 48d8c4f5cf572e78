"""Shared helpers for the STXM tests: the real ALS stack (skipped when absent) and tiny files."""

import os
from pathlib import Path

import numpy as np
import pytest

ALS = "stxm-fe-l-edge-als"


@pytest.fixture
def als(shared_data):
    """Folder of the real ALS Fe L-edge stack; skips when absent."""
    path = os.path.join(shared_data, ALS)
    if not os.path.isdir(path):
        pytest.skip(f"real STXM data {path} is absent")
    return Path(path)


@pytest.fixture
def write_sdf():
    """The helper :func:`_write_sdf` (importlib test mode cannot import conftest)."""
    return _write_sdf


def _write_sdf(folder: Path, images: np.ndarray, energies, *, step_um: float = 0.04) -> Path:
    """Write a minimal ALS SDF scan (header + one .xim per energy); return the .hdr path."""
    n, ny, nx = images.shape
    xs = ", ".join(f"{-10 + i * step_um:.3f}" for i in range(nx))
    ys = ", ".join(f"{5 + i * step_um:.3f}" for i in range(ny))
    es = ", ".join(f"{e:.3f}" for e in energies)
    text = (
        'ScanDefinition = { Label = "t.hdr"; Type = "NEXAFS Image Scan"; Dwell = 1.5;\n'
        "\tRegions = (1,\n{\n"
        f'\t\t\tPAxis = {{ Name = "Sample X"; Unit = "um"; Points = ({nx}, {xs});\n}};\n'
        f'\t\t\tQAxis = {{ Name = "Sample Y"; Unit = "um"; Points = ({ny}, {ys});\n}};\n'
        "});\n"
        f'\tStackAxis = {{ Name = "Energy"; Unit = "eV"; Points = ({n}, {es});\n}};\n'
        '\tChannels = (1,\n{ Name = "counter1"; Unit = "counts";});\n};\n'
        " StorageRingCurrent = 500.1;\n"
        + "".join(
            f'Image{i + 1} = {{StorageRingCurrent = {500 - i}.0; Time = "t";}};\n'
            for i in range(1, n)
        )
    )
    hdr = folder / "t.hdr"
    hdr.write_text(text)
    for i, img in enumerate(images):
        np.savetxt(folder / f"t_a{i:03d}.xim", img, fmt="%.6f", delimiter="\t")
    return hdr
