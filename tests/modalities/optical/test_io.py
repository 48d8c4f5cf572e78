"""Readers of colour videos and label images, and the checks of the colour pipeline."""

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from operando.errors import DataError, FileFormatError
from operando.modalities import optical as op


@pytest.fixture
def rgb8():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(3, 16, 20, 3), dtype=np.uint8)


def test_tiff_stack_and_npy(tmp_path, rgb8):
    tifffile.imwrite(tmp_path / "v.tif", rgb8, photometric="rgb")
    v = op.read_video(tmp_path / "v.tif")
    assert v.shape == (3, 16, 20, 3) and v.dtype == np.float64
    np.testing.assert_allclose(v, rgb8 / 255.0)  # integers scaled by the dtype maximum
    np.save(tmp_path / "v.npy", rgb8.astype(np.uint16) * 257)
    np.testing.assert_allclose(op.read_video(tmp_path / "v.npy"), rgb8 / 255.0)


def test_image_sequence_natural_order(tmp_path, rgb8):
    d = tmp_path / "frames"
    d.mkdir()
    for i, name in enumerate(("f2.png", "f10.png", "f1.png")):  # lexical order would differ
        iio.imwrite(d / name, rgb8[i])
    v = op.read_video(d)
    np.testing.assert_allclose(v[0], rgb8[2] / 255.0)  # f1
    np.testing.assert_allclose(v[1], rgb8[0] / 255.0)  # f2
    np.testing.assert_allclose(v[2], rgb8[1] / 255.0)  # f10
    g = op.read_video(str(d / "f*.png"))
    np.testing.assert_allclose(g, v)
    with pytest.raises(FileFormatError, match="no image files"):
        op.read_video(str(d / "none*.png"))


def test_rgba_dropped_and_missing_file(tmp_path, rgb8):
    rgba = np.concatenate([rgb8, np.full((*rgb8.shape[:3], 1), 255, np.uint8)], axis=-1)
    tifffile.imwrite(tmp_path / "a.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    assert op.read_video(tmp_path / "a.tif").shape == (3, 16, 20, 3)
    with pytest.raises(FileFormatError, match="not found"):
        op.read_video(tmp_path / "nope.tif")


def test_video_container_without_plugin_names_fix(tmp_path):
    p = tmp_path / "movie.mp4"
    p.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))  # not decodable without PyAV
    with pytest.raises(FileFormatError) as e:
        op.read_video(p)
    assert "pip install av" in str(e.value) or "cannot read" in str(e.value)


def test_gif_through_pillow(tmp_path, rgb8):
    iio.imwrite(tmp_path / "v.gif", rgb8, loop=0)
    v = op.read_video(tmp_path / "v.gif")
    assert v.shape == (3, 16, 20, 3)  # GIF is palettised: values are close, not exact
    assert np.abs(v - rgb8 / 255.0).mean() < 0.1


def test_validate_rejects_grey_single_frame_nonfinite(rgb8):
    v = rgb8 / 255.0
    assert op.validate_video(v).shape == v.shape
    with pytest.raises(DataError, match="grey-scale"):
        op.validate_video(v[..., 0])  # (t, y, x)
    with pytest.raises(DataError, match="identical"):
        op.validate_video(np.repeat(v[..., :1], 3, axis=-1))  # grey saved as RGB
    with pytest.raises(DataError, match="1 frame"):
        op.validate_video(v[:1])
    bad = v.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        op.validate_video(bad)


def test_labels_round_trip_and_shape_check(tmp_path):
    lab = np.zeros((16, 20), np.int32)
    lab[2:6, 3:9] = 1
    lab[10:14, 10:18] = 7
    for name in ("l.npy", "l.tif"):
        op.write_labels(lab, tmp_path / name)
        np.testing.assert_array_equal(op.read_labels(tmp_path / name, shape=(16, 20)), lab)
    with pytest.raises(DataError, match="16x20 but the video frames are 32x32"):
        op.read_labels(tmp_path / "l.tif", shape=(32, 32))
    with pytest.raises(FileFormatError, match="unknown label format"):
        op.read_labels(tmp_path / "x.txt") if (tmp_path / "x.txt").write_text("1") else None
