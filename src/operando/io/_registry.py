"""Reading and writing operando datasets.

Design
------
Readers live behind a small registry (``READERS``: file suffix -> reader function), as
in CAREamics' ``image_io``. A reader takes ``(path, key, dims)`` and returns a validated
:mod:`operando.data` dataset; ``key`` is the part after ``:`` in ``file.h5:/group/dataset``
specs. Later modalities (ALS SDF headers, NeXus, FITS, ...) register their readers with
:func:`register_reader`. Errors name the file, the field and the fix.

Writing goes to NetCDF4/HDF5 (``h5netcdf`` engine) through a temporary file and an atomic
rename, so an interrupted write never leaves a file that looks complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ..data import SCHEMA, make_dataset, validate_dataset
from ..errors import DataError, FileFormatError, OperandoError
from ._atomic import atomic_path

__all__ = [
    "READERS",
    "Reader",
    "read_dataset",
    "register_reader",
    "split_spec",
    "write_dataset",
]

Reader = Callable[[Path, str | None, Sequence[str] | None], xr.Dataset]
READERS: dict[str, Reader] = {}

#: Modules that register instrument readers (``.hdr`` ALS SDF, NeXus, CXI, ...). They sit
#: in higher layers, so they are named here, not imported: :func:`read_dataset` imports
#: them once, on first use, and the registry is then the same whoever called it first.
READER_PLUGINS: list[str] = ["operando.modalities.stxm", "operando.modalities.neutron"]
_plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    import importlib

    for name in READER_PLUGINS:
        importlib.import_module(name)
    _plugins_loaded = True


def register_reader(suffixes: Sequence[str], reader: Reader) -> Reader:
    """Register ``reader`` for file suffixes such as ``(".tif", ".tiff")``."""
    for s in suffixes:
        READERS[s.lower()] = reader
    return reader


def split_spec(spec: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """Split ``"file.h5:/group/data"`` into ``(Path("file.h5"), "/group/data")``."""
    s = os.fspath(spec)
    if os.path.exists(s):
        return Path(s), None
    head, sep, tail = s.rpartition(":")
    if sep and head and not (len(head) == 1 and head.isalpha()):  # not a Windows drive
        return Path(head), tail or None
    return Path(s), None


def read_dataset(spec: str | os.PathLike[str], *, dims: Sequence[str] | None = None) -> xr.Dataset:
    """Read a dataset from a file in any registered format.

    Parameters
    ----------
    spec
        A path, or ``file.h5:/group/dataset`` for one array inside an HDF5 file.
    dims
        Dimension names for raw arrays (TIFF, NumPy, HDF5 datasets), e.g.
        ``("energy", "y", "x")``. Default: ``("t", "y", "x")`` for 3D arrays.

    Raises
    ------
    FileFormatError
        The file does not exist, cannot be read, or has an unknown format.
    DataError
        The contents violate the dataset schema (NaN pixels, unsorted times, ...).
    """
    _load_plugins()
    path, key = split_spec(spec)
    if not path.exists():
        raise FileFormatError(
            "file does not exist", where=str(path), fix="check the path (and the current directory)"
        )
    if path.is_dir():
        reader = READERS.get("<dir>")
        if reader is None:
            raise FileFormatError("is a directory, not a data file", where=str(path))
        return reader(path, key, dims)
    suffix = path.suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise FileFormatError(
            f"unknown file format '{suffix}'",
            where=str(path),
            fix=f"use one of {sorted(s for s in READERS if s != '<dir>')}",
        )
    try:
        return reader(path, key, dims)
    except OperandoError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FileFormatError(
            f"cannot be read as {suffix} ({type(e).__name__}: {e})",
            where=str(path),
            fix="check that the file is complete and not corrupt",
        ) from e


def write_dataset(ds: xr.Dataset, path: str | os.PathLike[str]) -> Path:
    """Write a dataset to NetCDF4/HDF5 atomically (temp file + rename); return the path."""
    ds = validate_dataset(ds, source=os.fspath(path), allow_nonfinite=True)
    out = ds.copy()
    if "masks" in out:  # NetCDF has no bool; store uint8 and restore on read
        out["masks"] = out["masks"].astype(np.uint8)
        out["masks"].attrs["operando_dtype"] = "bool"
    with atomic_path(path) as tmp:
        out.to_netcdf(tmp, engine="h5netcdf", invalid_netcdf=False)
    return Path(path)


# --------------------------------------------------------------------------- readers


def _read_netcdf(path: Path, key: str | None, dims: Sequence[str] | None) -> xr.Dataset:
    if key:
        return _read_hdf5_array(path, key, dims)
    with xr.open_dataset(path, engine="h5netcdf") as f:
        ds = f.load()
    if ds.attrs.get("operando_schema") != SCHEMA:
        if suffix_is_hdf5(path):
            raise FileFormatError(
                "is an HDF5 file but not an operando dataset",
                where=str(path),
                fix=f"name the array to read, e.g. '{path}:/exchange/data'",
            )
        raise FileFormatError(
            f"is not an operando dataset (attribute operando_schema != '{SCHEMA}')",
            where=str(path),
            fix="convert it with operando's readers or write it with operando.io.write_dataset",
        )
    if "masks" in ds and ds["masks"].attrs.get("operando_dtype") == "bool":
        ds["masks"] = ds["masks"].astype(bool)
        ds["masks"].attrs.pop("operando_dtype", None)
    return validate_dataset(ds, source=str(path), allow_nonfinite=True)


def suffix_is_hdf5(path: Path) -> bool:
    return path.suffix.lower() in (".h5", ".hdf5", ".hdf", ".nxs", ".cxi")


def _read_hdf5(path: Path, key: str | None, dims: Sequence[str] | None) -> xr.Dataset:
    if key:
        return _read_hdf5_array(path, key, dims)
    return _read_netcdf(path, None, dims)


def _read_hdf5_array(path: Path, key: str, dims: Sequence[str] | None) -> xr.Dataset:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise FileFormatError(
            f"cannot be opened as HDF5 ({e})", where=str(path), fix="check the file is not corrupt"
        ) from e
    with f:
        if key not in f:
            raise FileFormatError(
                f"has no dataset '{key}'",
                where=str(path),
                fix=f"use one of {_h5_datasets(f)[:10]}",
            )
        obj = f[key]
        if not isinstance(obj, h5py.Dataset):
            raise FileFormatError(
                f"'{key}' is a group, not a dataset",
                where=str(path),
                fix=f"use one of {_h5_datasets(obj)[:10]}",
            )
        arr = obj[()]
    return make_dataset(arr, dims=dims, source=f"{path}:{key}", attrs={"source_file": str(path)})


def _h5_datasets(group) -> list[str]:
    import h5py

    names: list[str] = []
    group.visititems(lambda n, o: names.append("/" + n) if isinstance(o, h5py.Dataset) else None)
    return names


def _read_tiff(path: Path, key: str | None, dims: Sequence[str] | None) -> xr.Dataset:
    import tifffile

    arr = tifffile.imread(path)
    return make_dataset(arr, dims=dims, source=str(path), attrs={"source_file": str(path)})


def _read_npy(path: Path, key: str | None, dims: Sequence[str] | None) -> xr.Dataset:
    arr = np.load(path, allow_pickle=False)
    return make_dataset(arr, dims=dims, source=str(path), attrs={"source_file": str(path)})


def _read_npz(path: Path, key: str | None, dims: Sequence[str] | None) -> xr.Dataset:
    with np.load(path, allow_pickle=False) as z:
        names = list(z.files)
        if key is None:
            if len(names) != 1:
                raise DataError(
                    f"holds {len(names)} arrays {names}",
                    where=str(path),
                    fix=f"name one, e.g. '{path}:{names[0] if names else 'images'}'",
                )
            key = names[0]
        if key not in names:
            raise FileFormatError(
                f"has no array '{key}'", where=str(path), fix=f"use one of {names}"
            )
        arr = z[key]
    return make_dataset(arr, dims=dims, source=f"{path}:{key}", attrs={"source_file": str(path)})


register_reader((".nc", ".nc4", ".netcdf"), _read_netcdf)
register_reader((".h5", ".hdf5", ".hdf"), _read_hdf5)
register_reader((".tif", ".tiff"), _read_tiff)
register_reader((".npy",), _read_npy)
register_reader((".npz",), _read_npz)
