"""STXM readers: ALS SDF (real and synthetic), NXstxm, CXI, TIFF + energies, spectra."""

import re

import h5py
import numpy as np
import pytest
import tifffile

from operando.errors import DataError, FileFormatError
from operando.io import read_dataset, write_dataset
from operando.modalities import stxm
from operando.modalities.stxm import ELEMENTARY_CHARGE

# ------------------------------------------------------------------------ real ALS data


def test_real_header_energies_exactly_as_written(als):
    hdr = als / "71214078.hdr"
    h = stxm.parse_sdf_header(hdr)
    text = hdr.read_text()
    block = re.search(r"StackAxis = \{.*?Points = \((.*?)\);", text, re.S).group(1)
    values = [float(v) for v in block.split(",")]
    assert int(values[0]) == 123
    np.testing.assert_array_equal(h.energies, np.asarray(values[1:]))  # bit-exact
    assert h.energies[0] == 700.0 and h.energies[-1] == 730.353
    assert (h.y.size, h.x.size) == (125, 125)
    assert h.pixel_size_nm == (80.0, 80.0)
    assert h.dwell_ms == 0.433
    assert h.scan_type == "NEXAFS Image Scan"
    assert h.ring_current is not None and h.ring_current.shape == (123,)


def test_real_stack_through_read_dataset(als):
    ds = read_dataset(als / "71214078.hdr")
    assert ds["images"].dims == ("energy", "y", "x")
    assert ds["images"].shape == (123, 125, 125)
    assert ds.attrs["pixel_size"] == 80.0 and ds.attrs["pixel_unit"] == "nm"
    assert float(ds["images"].min()) > 0


# ------------------------------------------------------------------- synthetic SDF files


def _tiny():
    rng = np.random.default_rng(0)
    return rng.uniform(50, 100, (3, 6, 5)), [700.0, 700.5, 701.25]


def test_sdf_roundtrip(tmp_path, write_sdf):
    imgs, e = _tiny()
    hdr = write_sdf(tmp_path, imgs, e)
    ds = read_dataset(hdr)
    np.testing.assert_allclose(ds["images"].values, imgs, atol=1e-6)
    np.testing.assert_array_equal(ds["energy"].values, e)
    assert ds.attrs["pixel_size"] == 40.0
    np.testing.assert_array_equal(ds["ring_current"].values, [500.1, 499.0, 498.0])


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda t: t.replace("});\n\tStackAxis", "};\n\tStackAxis"), "malformed"),
        (lambda t: t.replace("Points = (3,", "Points = (4,"), "declares"),
        (lambda t: t.replace("StackAxis", "Stack Axis"), "malformed"),
        (lambda t: t.replace("Regions", "Areas"), "Regions"),
    ],
)
def test_malformed_header(tmp_path, write_sdf, damage, words):
    imgs, e = _tiny()
    hdr = write_sdf(tmp_path, imgs, e)
    hdr.write_text(damage(hdr.read_text()))
    with pytest.raises(FileFormatError, match=words) as err:
        read_dataset(hdr)
    assert str(hdr) in str(err.value) and "fix:" in str(err.value)


def test_missing_xim_names_the_file(tmp_path, write_sdf):
    imgs, e = _tiny()
    hdr = write_sdf(tmp_path, imgs, e)
    (tmp_path / "t_a001.xim").unlink()
    with pytest.raises(FileFormatError, match=r"t_a001\.xim.*missing"):
        read_dataset(hdr)


def test_mismatched_image_size_names_the_file(tmp_path, write_sdf):
    imgs, e = _tiny()
    hdr = write_sdf(tmp_path, imgs, e)
    np.savetxt(tmp_path / "t_a002.xim", imgs[2][:, :4], delimiter="\t")
    with pytest.raises(FileFormatError, match=r"t_a002\.xim.*\(6, 4\).*\(6, 5\)"):
        read_dataset(hdr)


def test_nan_in_xim_names_the_file(tmp_path, write_sdf):
    imgs, e = _tiny()
    imgs[1, 2, 3] = np.nan
    hdr = write_sdf(tmp_path, imgs, e)
    with pytest.raises(DataError, match=r"t_a001\.xim.*NaN"):
        read_dataset(hdr)


# ------------------------------------------------------------------------------ NXstxm


def _write_nxstxm(path, data, energies, *, i0=None):
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry1")
        entry.attrs["NX_class"] = "NXentry"
        entry["definition"] = "NXstxm"
        g = entry.create_group("counter0")
        g.attrs["NX_class"] = "NXdata"
        g.attrs["signal"] = "data"
        g["data"] = data
        g["energy"] = energies
        g["sample_y"] = np.arange(data.shape[1]) * 0.05
        g["sample_x"] = np.arange(data.shape[2]) * 0.05
        g["sample_x"].attrs["units"] = "um"
        g["stxm_scan_type"] = "sample image stack"
        if i0 is not None:
            c = entry.create_group("control")
            c.attrs["NX_class"] = "NXmonitor"
            c["data"] = i0


@pytest.mark.parametrize("suffix", [".nxs", ".h5"])
def test_nxstxm(tmp_path, suffix):
    imgs, e = _tiny()
    p = tmp_path / f"scan{suffix}"
    _write_nxstxm(p, imgs, e, i0=np.array([900.0, 910, 920]))
    ds = read_dataset(p)
    np.testing.assert_array_equal(ds["images"].values, imgs)
    np.testing.assert_array_equal(ds["energy"].values, e)
    assert ds.attrs["pixel_size"] == 50.0 and ds.attrs["pixel_unit"] == "nm"
    np.testing.assert_array_equal(ds["i0"].values, [900.0, 910, 920])


def test_plain_h5_still_uses_the_generic_reader(tmp_path):
    imgs, _ = _tiny()
    p = tmp_path / "plain.h5"
    with h5py.File(p, "w") as f:
        f["/exchange/data"] = imgs
    ds = read_dataset(f"{p}:/exchange/data")
    assert ds["images"].shape == imgs.shape
    q = tmp_path / "ds.h5"
    write_dataset(read_dataset(f"{p}:/exchange/data"), q)
    assert read_dataset(q)["images"].shape == imgs.shape


def test_nxstxm_wrong_shape(tmp_path):
    imgs, e = _tiny()
    p = tmp_path / "bad.nxs"
    _write_nxstxm(p, imgs, e[:2])
    with pytest.raises(FileFormatError, match=r"bad\.nxs"):
        read_dataset(p)


# -------------------------------------------------------------------------------- CXI


def test_cxi_complex_energy_in_joules(tmp_path):
    rng = np.random.default_rng(1)
    p = tmp_path / "ptycho.cxi"
    amps, evs = [], [710.0, 706.0]  # stored out of order on purpose
    with h5py.File(p, "w") as f:
        for i, ev in enumerate(evs, 1):
            amp = rng.uniform(0.3, 0.9, (8, 7))
            amps.append(amp)
            t = amp * np.exp(1j * rng.uniform(-1, 1, amp.shape))
            img = f.create_group(f"entry_{i}/image_1")
            img["data"] = t
            img["x_pixel_size"] = 10e-9
            f[f"entry_{i}/instrument_1/source_1/energy"] = ev * ELEMENTARY_CHARGE
    ds = read_dataset(p)
    np.testing.assert_allclose(ds["energy"].values, [706.0, 710.0], rtol=1e-12)
    np.testing.assert_allclose(ds["images"].values[0], amps[1] ** 2)
    assert ds.attrs["pixel_size"] == pytest.approx(10.0) and ds.attrs["pixel_unit"] == "nm"
    od = stxm.read_cxi(p, representation="od")
    np.testing.assert_allclose(od["images"].values[1], -2 * np.log(amps[0]))


# ------------------------------------------------------------------------------- TIFF


def test_tiff_stack_with_energy_list(tmp_path):
    imgs, e = _tiny()
    p = tmp_path / "stack.tif"
    tifffile.imwrite(p, imgs.astype(np.float32), photometric="minisblack")
    ds = stxm.read_tiff_stack(p, e)
    np.testing.assert_array_equal(ds["energy"].values, e)
    (tmp_path / "stack.energies.txt").write_text("\n".join(str(v) for v in e))
    ds2 = read_dataset(p)  # sidecar picked up by the registry
    assert ds2["images"].dims == ("energy", "y", "x")
    with pytest.raises(DataError, match=r"stack\.tif.*4 energies were given"):
        stxm.read_tiff_stack(p, [1.0, 2.0, 3.0, 4.0])


# ---------------------------------------------------------------------------- spectra


def test_spectrum_errors(tmp_path):
    p = tmp_path / "ref.txt"
    p.write_text("# energy od\n700 0.1\n701 nan\n")
    with pytest.raises(DataError, match=r"ref\.txt.*NaN"):
        stxm.read_spectrum(p)
    p.write_text("700 0.1\n700 0.2\n")
    with pytest.raises(DataError, match=r"ref\.txt.*duplicated or unsorted"):
        stxm.read_spectrum(p)
    p.write_text("700\n")
    with pytest.raises(FileFormatError, match=r"ref\.txt"):
        stxm.read_spectrum(p)
    with pytest.raises(FileFormatError, match=r"nope\.txt"):
        stxm.read_spectrum(tmp_path / "nope.txt")
