"""Readers for neutron radiography frame series: TIFF, FITS and Data Exchange HDF5.

Registered with :func:`operando.io.read_dataset` on import of :mod:`operando.modalities.neutron`:

* ``.fits``/``.fit``/``.fts``: a FITS cube ``(t, y, x)`` or one 2D image (astropy.io.fits);
* ``.h5``/``.hdf5``/``.hdf`` whose file holds ``/exchange/data`` (Data Exchange, the APS /
  TomoPy layout): ``images`` = ``/exchange/data``, plus ``open_beam`` (``/exchange/data_white``)
  and ``dark`` (``/exchange/data_dark``) variables when present. Other HDF5 files go to the
  reader that was registered before.

:func:`read_frames` reads a whole frame *series* from a multi-page file, a directory, a glob
pattern or a list of files (one frame or cube each), sorted by name.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ...data import make_dataset
from ...errors import DataError, FileFormatError
from ...io import READERS, register_reader

__all__ = [
    "FRAME_SUFFIXES",
    "DataExchange",
    "read_data_exchange",
    "read_fits",
    "read_frames",
    "register_neutron_readers",
]

FRAME_SUFFIXES = (".tif", ".tiff", ".fits", ".fit", ".fts")
_REGISTERED = False


def _as_frames(arr: np.ndarray, where: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise DataError(f"frames have non-numeric dtype {arr.dtype}", where=where)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise DataError(
            f"expected one image (y, x) or a frame series (t, y, x), got shape {arr.shape}",
            where=where,
            fix="give one grey-scale frame or cube per file",
        )
    return arr.astype(np.float64, copy=False)


def read_fits(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a FITS file: the first HDU with image data, as frames ``(t, y, x)`` float64.

    A 2D image becomes one frame; a 3D cube is read as ``(t, y, x)``
    (FITS ``NAXIS3, NAXIS2, NAXIS1``). When several image extensions hold 2D images of one
    size, they are stacked in file order.
    """
    from astropy.io import fits

    p = Path(path)
    try:
        hdul = fits.open(p, memmap=False)
    except (OSError, ValueError) as e:
        raise FileFormatError(
            f"cannot be read as FITS ({e})", where=str(p), fix="check the file is complete"
        ) from e
    with hdul:
        images = [h.data for h in hdul if getattr(h, "data", None) is not None and h.is_image]
        images = [np.asarray(a) for a in images if np.asarray(a).ndim >= 2]
    if not images:
        raise FileFormatError("holds no image HDU", where=str(p), fix="give a FITS image file")
    if images[0].ndim == 3 or len(images) == 1:
        return _as_frames(images[0], str(p))
    shapes = {a.shape for a in images}
    if len(shapes) != 1:
        raise DataError(
            f"image extensions have different shapes {sorted(shapes)}",
            where=str(p),
            fix="store one frame size per file",
        )
    return _as_frames(np.stack(images), str(p))


def _read_one(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix in (".fits", ".fit", ".fts"):
        return read_fits(path)
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            arr = tifffile.imread(path)
        except (OSError, ValueError) as e:
            raise FileFormatError(
                f"cannot be read as TIFF ({e})", where=str(path), fix="check the file"
            ) from e
        return _as_frames(arr, str(path))
    raise FileFormatError(
        f"unknown frame format '{suffix}'",
        where=str(path),
        fix=f"give frames as one of {list(FRAME_SUFFIXES)}",
    )


def _expand(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(source, str | os.PathLike):
        s = os.fspath(source)
        p = Path(s)
        if p.is_dir():
            files = sorted(q for q in p.iterdir() if q.suffix.lower() in FRAME_SUFFIXES)
            if not files:
                raise FileFormatError(
                    "directory holds no TIFF or FITS frames",
                    where=s,
                    fix=f"put frames named *{'/*'.join(FRAME_SUFFIXES)} there",
                )
            return files
        if any(c in s for c in "*?["):
            files = [Path(f) for f in sorted(glob.glob(s))]
            if not files:
                raise FileFormatError("pattern matches no file", where=s, fix="check the pattern")
            return files
        if not p.exists():
            raise FileFormatError("file does not exist", where=s, fix="check the path")
        return [p]
    files = [Path(os.fspath(f)) for f in source]
    if not files:
        raise FileFormatError("empty list of frame files", where="frames", fix="give files")
    for f in files:
        if not f.exists():
            raise FileFormatError("file does not exist", where=str(f), fix="check the path")
    return files


def read_frames(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> np.ndarray:
    """Read a frame series ``(t, y, x)`` from TIFF or FITS files.

    Parameters
    ----------
    source
        A multi-page TIFF or FITS cube, a single-frame file, a directory (all ``.tif``,
        ``.tiff``, ``.fits``, ``.fit``, ``.fts`` files in name order), a glob pattern
        (``"run/ob_*.fits"``) or a list of files. Files are concatenated along time.

    Returns
    -------
    numpy.ndarray
        Float64 frames ``(t, y, x)``.

    Raises
    ------
    FileFormatError
        Missing or unreadable files.
    DataError
        Frames of different sizes (the message names the first file that differs).
    """
    files = _expand(source)
    stacks = [_read_one(f) for f in files]
    ref = stacks[0].shape[1:]
    for f, s in zip(files, stacks, strict=True):
        if s.shape[1:] != ref:
            raise DataError(
                f"frame size {s.shape[1:]} differs from {ref} of {files[0].name}",
                where=str(f),
                fix="give frames of one detector size (crop or bin them alike)",
            )
    return np.concatenate(stacks, axis=0)


@dataclass(frozen=True)
class DataExchange:
    """Arrays of a Data Exchange file (float64, ``(frame, y, x)``); ``theta`` may be None."""

    data: np.ndarray
    white: np.ndarray
    dark: np.ndarray
    theta: np.ndarray | None
    path: str


def _h5_array(f: Any, key: str, path: Path, what: str) -> np.ndarray:
    if key not in f:
        raise FileFormatError(
            f"has no '{key}' ({what})",
            where=str(path),
            fix="give a Data Exchange file with /exchange/data, /exchange/data_white "
            "and /exchange/data_dark, or pass the open-beam/dark frames separately",
        )
    return _as_frames(np.asarray(f[key][()]), f"{path}:{key}")


def read_data_exchange(path: str | os.PathLike[str]) -> DataExchange:
    """Read a Data Exchange HDF5 file (``/exchange/data``, ``data_white``, ``data_dark``).

    Raises
    ------
    FileFormatError
        The file is not HDF5 or misses one of the three arrays.
    DataError
        The white (open-beam) or dark frames differ in size from the projections.
    """
    import h5py

    p = Path(path)
    if not p.exists():
        raise FileFormatError("file does not exist", where=str(p), fix="check the path")
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise FileFormatError(f"cannot be opened as HDF5 ({e})", where=str(p)) from e
    with f:
        data = _h5_array(f, "/exchange/data", p, "projections")
        white = _h5_array(f, "/exchange/data_white", p, "open-beam / flat-field frames")
        dark = _h5_array(f, "/exchange/data_dark", p, "dark-current frames")
        theta = (
            np.asarray(f["/exchange/theta"][()], dtype=np.float64)
            if ("/exchange/theta" in f)
            else None
        )
    for name, arr in (("data_white", white), ("data_dark", dark)):
        if arr.shape[1:] != data.shape[1:]:
            raise DataError(
                f"/exchange/{name} frames are {arr.shape[1:]}, projections {data.shape[1:]}",
                where=str(p),
                fix="references must have the projections' frame size",
            )
    return DataExchange(data=data, white=white, dark=dark, theta=theta, path=str(p))


def data_exchange_dataset(path: str | os.PathLike[str]) -> xr.Dataset:
    """A Data Exchange file as an operando dataset with ``open_beam`` and ``dark`` variables."""
    dx = read_data_exchange(path)
    ds = make_dataset(dx.data, dims=("t", "y", "x"), source=dx.path, attrs={"source_file": dx.path})
    ds["open_beam"] = (("open_beam_frame", "y", "x"), dx.white)
    ds["dark"] = (("dark_frame", "y", "x"), dx.dark)
    if dx.theta is not None and dx.theta.shape == (dx.data.shape[0],):
        ds["theta"] = (("t",), dx.theta)
    return ds


def _is_data_exchange(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            # All three arrays: a file with projections only is read by the generic HDF5
            # reader (``file.h5:/exchange/data``), which says how to name the array.
            return all(
                k in f for k in ("/exchange/data", "/exchange/data_white", "/exchange/data_dark")
            )
    except OSError:
        return False


def register_neutron_readers() -> None:
    """Register the FITS and Data Exchange readers with :mod:`operando.io` (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return

    def _fits(path: Path, key: str | None, dims: Sequence[str] | None) -> xr.Dataset:
        return make_dataset(
            read_fits(path), dims=dims, source=str(path), attrs={"source_file": str(path)}
        )

    def _delegating_h5(previous: Any) -> Any:
        def reader(path: Path, key: str | None, dims: Sequence[str] | None) -> xr.Dataset:
            if key is None and _is_data_exchange(path):
                return data_exchange_dataset(path)
            return previous(path, key, dims)

        return reader

    register_reader((".fits", ".fit", ".fts"), _fits)
    for suffix in (".h5", ".hdf5", ".hdf"):
        prev = READERS.get(suffix)
        if prev is not None:
            register_reader((suffix,), _delegating_h5(prev))
    _REGISTERED = True
