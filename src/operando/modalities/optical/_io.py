"""Reading colour videos and label images.

Video formats (by suffix; a directory or a glob pattern is an image sequence):

* ``.tif``/``.tiff``: a multi-page RGB stack ``(t, y, x, 3)`` (tifffile);
* ``.npy``: an array ``(t, y, x, 3)``;
* a directory or a glob (``frames/*.png``): one RGB image per frame, in natural sort order
  (``f2`` before ``f10``), read with imageio;
* ``.png``/``.jpg``/``.bmp``/``.gif``: a single image (or GIF frames), read with imageio;
* ``.mp4``/``.avi``/``.mov``/``.mkv``/``.webm``: video containers through imageio, which
  needs its PyAV plugin (``pip install av``) or ``imageio-ffmpeg``.

Every reader returns float64 RGB in [0, 1] (integers divided by their dtype's maximum), an
alpha channel dropped. :func:`validate_video` is what the colour pipeline demands: at least
two frames, three channels that are not all equal (a grey-scale video is rejected), finite.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import numpy as np

from ...errors import DataError, FileFormatError
from ...io import atomic_path

__all__ = ["read_labels", "read_video", "validate_video", "write_labels"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
CONTAINER_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".wmv")


def _natural_key(s: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def _to_unit_float(a: np.ndarray, where: str) -> np.ndarray:
    if a.dtype == bool:
        return a.astype(np.float64)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float64) / float(np.iinfo(a.dtype).max)
    out = np.asarray(a, dtype=np.float64)
    if not np.isfinite(out).all():
        raise DataError(
            "contains NaN or infinite values",
            where=where,
            fix="remove or interpolate the non-finite pixels",
        )
    top = float(out.max()) if out.size else 0.0
    if top > 1.0:  # floats in camera counts: scale to [0, 1]
        out = out / top
    return out


def _as_frames(a: np.ndarray) -> np.ndarray:
    """(y, x, 3) -> (1, y, x, 3); (t, y, x, 4) -> RGB; grey stays (t, y, x)."""
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[None]
    if a.ndim == 4 and a.shape[-1] == 4:
        a = a[..., :3]
    if a.ndim == 4 and a.shape[1] in (3, 4) and a.shape[-1] not in (3, 4):  # (t, c, y, x)
        a = np.moveaxis(a[:, :3], 1, -1)
    return a


def _read_container(path: Path) -> np.ndarray:
    import importlib.util

    import imageio.v3 as iio

    if path.suffix.lower() != ".gif" and not any(
        importlib.util.find_spec(m) for m in ("av", "imageio_ffmpeg")
    ):  # checked first: imageio's failed plugin search leaks an open file handle
        raise FileFormatError(
            f"reading {path.suffix} video needs a video plugin of imageio, and none is installed",
            where=str(path),
            fix="pip install av (imageio's PyAV plugin) or imageio-ffmpeg, or convert the "
            "video to a TIFF stack or a folder of PNG frames",
        )
    try:
        return np.asarray(iio.imread(path, index=None))
    except (ImportError, ModuleNotFoundError) as e:
        raise FileFormatError(
            f"reading {path.suffix} video needs a video plugin of imageio ({e})",
            where=str(path),
            fix="pip install av (imageio's PyAV plugin) or imageio-ffmpeg, or convert the "
            "video to a TIFF stack or a folder of PNG frames",
        ) from e
    except Exception as e:  # imageio raises several types when no plugin can read it
        msg = str(e)
        if "plugin" in msg.lower() or "backend" in msg.lower() or "install" in msg.lower():
            raise FileFormatError(
                f"no installed imageio plugin can read {path.suffix} videos",
                where=str(path),
                fix="pip install av (imageio's PyAV plugin) or imageio-ffmpeg, or convert "
                "the video to a TIFF stack or a folder of PNG frames",
            ) from e
        raise FileFormatError(
            f"cannot read the video: {msg}", where=str(path), fix="check the file"
        ) from e


def _read_sequence(files: list[str], where: str) -> np.ndarray:
    import imageio.v3 as iio

    if not files:
        raise FileFormatError(
            "no image files found",
            where=where,
            fix=f"point at a folder or glob of images ({', '.join(IMAGE_SUFFIXES)})",
        )
    frames = []
    for f in files:
        try:
            im = np.asarray(iio.imread(f))
        except Exception as e:
            raise FileFormatError(f"cannot read image: {e}", where=f, fix="check the file") from e
        if im.ndim == 3 and im.shape[-1] == 4:
            im = im[..., :3]
        if frames and im.shape != frames[0].shape:
            raise DataError(
                f"frame shape {im.shape} differs from the first frame's {frames[0].shape}",
                where=f,
                fix="all frames of a sequence must have the same size and channels",
            )
        frames.append(im)
    return np.stack(frames)


def read_video(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a colour video as float64 RGB ``(t, y, x, 3)`` in [0, 1].

    Parameters
    ----------
    path
        A TIFF stack, ``.npy`` array, video container, single image, a directory of
        images or a glob pattern (see the module docstring).

    Returns
    -------
    numpy.ndarray
        ``(t, y, x, 3)`` (or ``(t, y, x)`` for a grey-scale source, which
        :func:`validate_video` rejects for the colour pipeline).

    Raises
    ------
    FileFormatError
        Missing file, unknown format, or a container without an installed plugin.
    """
    s = os.fspath(path)
    p = Path(s)
    if any(ch in s for ch in "*?[") and not p.exists():
        files = sorted(glob.glob(s), key=_natural_key)
        a = _read_sequence(files, s)
    elif p.is_dir():
        files = sorted(
            (str(f) for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES),
            key=_natural_key,
        )
        a = _read_sequence(files, s)
    elif not p.exists():
        raise FileFormatError("file not found", where=s, fix="check the path")
    else:
        suf = p.suffix.lower()
        if suf in (".tif", ".tiff"):
            import tifffile

            try:
                a = np.asarray(tifffile.imread(p))
            except Exception as e:
                raise FileFormatError(f"not a readable TIFF: {e}", where=s) from e
        elif suf == ".npy":
            a = np.load(p, allow_pickle=False)
        elif suf in CONTAINER_SUFFIXES or suf == ".gif":
            a = _read_container(p)
        elif suf in IMAGE_SUFFIXES:
            a = _read_sequence([s], s)
        else:
            raise FileFormatError(
                f"unknown video format {suf!r}",
                where=s,
                fix="use a TIFF stack, .npy, a folder/glob of images or a video container "
                f"({', '.join(CONTAINER_SUFFIXES)})",
            )
    return _to_unit_float(_as_frames(a), s)


def validate_video(video: np.ndarray, *, where: str = "video") -> np.ndarray:
    """Check a video for the colour pipeline and return it as float64 ``(t, y, x, 3)``.

    Raises
    ------
    DataError
        Grey-scale data (no colour axis, one channel, or three identical channels), fewer
        than two frames, non-finite values.
    """
    a = np.asarray(video, dtype=np.float64)
    if a.ndim == 3 or (a.ndim == 4 and a.shape[-1] == 1):
        raise DataError(
            f"grey-scale video of shape {a.shape}: the optical pipeline needs colour (RGB)",
            where=where,
            fix="give the RGB video (t, y, x, 3); phases are told apart by their colour",
        )
    if a.ndim != 4 or a.shape[-1] != 3:
        raise DataError(
            f"shape {a.shape} is not a colour video (t, y, x, 3)",
            where=where,
            fix="give an RGB video (TIFF stack, image folder or video file)",
        )
    if a.shape[0] < 2:
        raise DataError(
            f"the video has {a.shape[0]} frame; phase tracking needs a time series",
            where=where,
            fix="give at least two frames (the whole (de)lithiation video)",
        )
    if not np.isfinite(a).all():
        raise DataError("contains NaN or infinite values", where=where, fix="clean the frames")
    if np.allclose(a[..., 0], a[..., 1]) and np.allclose(a[..., 1], a[..., 2]):
        raise DataError(
            "the three colour channels are identical (a grey-scale video saved as RGB)",
            where=where,
            fix="give the colour recording; phases are told apart by their colour",
        )
    return a


def read_labels(
    path: str | os.PathLike[str], *, shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Read a label image (``.npy``, ``.tif``/``.tiff`` or ``.png``), e.g. refined in napari.

    Parameters
    ----------
    path
        The label image: integers, 0 background, 1..N particles.
    shape
        Expected ``(y, x)``; a mismatch raises :class:`DataError`.

    Returns
    -------
    numpy.ndarray
        ``(y, x)`` int32 labels.
    """
    p = Path(path)
    if not p.exists():
        raise FileFormatError("label file not found", where=str(p), fix="check the path")
    suf = p.suffix.lower()
    try:
        if suf == ".npy":
            a = np.load(p, allow_pickle=False)
        elif suf in (".tif", ".tiff"):
            import tifffile

            a = np.asarray(tifffile.imread(p))
        elif suf == ".png":
            import imageio.v3 as iio

            a = np.asarray(iio.imread(p))
        else:
            raise FileFormatError(
                f"unknown label format {suf!r}",
                where=str(p),
                fix="save the labels as .npy, .tif or .png (napari: File > Save Layers)",
            )
    except FileFormatError:
        raise
    except Exception as e:
        raise FileFormatError(f"cannot read labels: {e}", where=str(p)) from e
    a = np.squeeze(a)
    if a.ndim != 2:
        raise DataError(
            f"label image has shape {a.shape}, expected (y, x)",
            where=str(p),
            fix="save a single 2D label layer",
        )
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool) and not np.all(
        np.mod(a, 1) == 0
    ):
        raise DataError("labels are not integers", where=str(p), fix="save a Labels layer")
    if a.min() < 0:
        raise DataError("negative labels", where=str(p), fix="use 0 for background, 1..N")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise DataError(
            f"label image is {a.shape[0]}x{a.shape[1]} but the video frames are "
            f"{shape[0]}x{shape[1]}",
            where=str(p),
            fix="use labels made for this video (same crop and size)",
        )
    return a.astype(np.int32)


def write_labels(labels: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write a ``(y, x)`` label image atomically as ``.npy`` or ``.tif`` (napari reads both)."""
    p = Path(path)
    a = np.asarray(labels).astype(np.int32)
    suf = p.suffix.lower()
    with atomic_path(p) as tmp:
        if suf == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, a)
        elif suf in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, a)
        else:
            raise FileFormatError(
                f"unknown label format {suf!r}", where=str(p), fix="use .npy or .tif"
            )
    return p
