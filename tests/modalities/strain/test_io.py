"""Strain-map readers: a py4DSTEM strain-map file written by py4DSTEM itself."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from operando.errors import FileFormatError
from operando.modalities.strain import load_strain_map, read_py4dstem_strain

#: Written by py4DSTEM 0.14.18 (py4DSTEM.save of a RealSlice named "strainmap" with the
#: slice labels of a StrainMap): e_xx = 0.01 * row, e_yy = -0.002 * col, e_xy = 0.001,
#: mask 0 on the first row. See tests/modalities/strain/data/README.md.
P4 = Path(__file__).parent / "data" / "py4dstem_strainmap.h5"


def test_reads_the_py4dstem_layout_with_mask():
    e = load_strain_map(P4, fmt="py4dstem")
    assert e.shape == (6, 5, 3)
    assert np.all(np.isnan(e[0]))  # mask 0 -> outside the particle
    r, c = np.mgrid[1:6, 0:5]
    np.testing.assert_allclose(e[1:, :, 0], 0.01 * r)
    np.testing.assert_allclose(e[1:, :, 1], -0.002 * c)
    np.testing.assert_allclose(e[1:, :, 2], 0.001)
    np.testing.assert_array_equal(read_py4dstem_strain(f"{P4}:/strainmap_root/strainmap"), e)


def test_py4dstem_errors_name_the_file(tmp_path):
    with pytest.raises(FileFormatError, match="no strain map at '/nope'"):
        read_py4dstem_strain(f"{P4}:/nope")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros((3, 4, 4))
    with pytest.raises(FileFormatError, match="holds no py4DSTEM strain map") as e:
        load_strain_map(plain, fmt="py4dstem")
    assert "plain.h5" in str(e.value)
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(FileFormatError, match="cannot be opened as HDF5"):
        read_py4dstem_strain(bad)
    with pytest.raises(FileFormatError, match="unknown strain format"):
        load_strain_map(P4, fmt="mrc")
