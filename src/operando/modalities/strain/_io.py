"""Reading strain and composition maps (arrays; py4DSTEM outputs optional)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import DataError, FileFormatError

__all__ = ["load_composition_map", "load_strain_map"]

_COMPONENTS = ("aa", "cc", "ac")


def _load_array(spec: str | os.PathLike[str]) -> np.ndarray:
    """Raw float array from ``.npy``, ``.npz[:key]``, ``.tif[f]``, ``.h5[:/key]`` or ``.nc``.

    NaN pixels (outside the particle) are allowed, unlike :func:`operando.io.read_dataset`.
    """
    s = str(spec)
    key = None
    if ":" in Path(s).name:
        s, key = s.rsplit(":", 1)
    path = Path(s)
    if not path.exists():
        raise FileFormatError("file does not exist", where=str(path), fix="check the path")
    suf = path.suffix.lower()
    try:
        if suf == ".npy":
            return np.load(path, allow_pickle=False).astype(float)
        if suf == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.files)
                k = key or (names[0] if len(names) == 1 else None)
                if k not in names:
                    raise DataError(
                        f"holds arrays {names}",
                        where=str(path),
                        fix=f"name one: '{path}:{names[0]}'",
                    )
                return np.asarray(z[k], float)
        if suf in (".tif", ".tiff"):
            import tifffile

            return np.asarray(tifffile.imread(path), float)
        if suf in (".h5", ".hdf5", ".emd"):
            import h5py

            with h5py.File(path, "r") as f:
                if key is None:
                    names: list[str] = []
                    f.visititems(
                        lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None
                    )
                    if len(names) != 1:
                        raise DataError(
                            f"holds datasets {names[:8]}",
                            where=str(path),
                            fix=f"name one: '{path}:/{names[0] if names else 'strain'}'",
                        )
                    key = names[0]
                return np.asarray(f[key], float)
        if suf in (".nc", ".nc4"):
            import xarray as xr

            with xr.open_dataset(path) as ds:
                var = key or next(iter(ds.data_vars))
                return np.asarray(ds[var].values, float)
    except (OSError, KeyError, ValueError) as e:
        raise FileFormatError(f"cannot be read ({type(e).__name__}: {e})", where=str(path)) from e
    raise FileFormatError(
        f"unknown format '{suf}'", where=str(path), fix="use .npy, .npz, .tif, .h5 or .nc"
    )


def load_strain_map(spec: str | os.PathLike[str], *, fmt: str = "array") -> np.ndarray:
    """Lattice strain map ``(rows, cols, 3)`` (aa, cc, ac; tensor shear).

    Parameters
    ----------
    spec
        File (``file.h5:/key`` for one HDF5 dataset). Accepted layouts:
        ``(rows, cols, 3)`` or ``(3, rows, cols)``.
    fmt
        ``"array"`` or ``"py4dstem"`` (a py4DSTEM strain-map file; needs py4DSTEM).

    Raises
    ------
    FileFormatError
        Missing/unknown file, or py4DSTEM requested but not installed.
    DataError
        Wrong shape.
    """
    if fmt == "py4dstem":
        try:
            import py4DSTEM  # noqa: F401
        except ImportError as e:
            raise FileFormatError(
                "py4DSTEM is not installed",
                where=str(spec),
                fix="pip install py4DSTEM, or export e_xx, e_yy, e_xy as a (3, rows, cols) .npy",
            ) from e
        raise FileFormatError(
            "py4DSTEM strain-map import is not implemented yet",
            where=str(spec),
            fix="export e_xx, e_yy, e_xy as a (3, rows, cols) .npy",
        )
    if fmt != "array":
        raise FileFormatError(
            f"unknown strain format {fmt!r}", where=str(spec), fix="array|py4dstem"
        )
    a = _load_array(spec)
    if a.ndim == 3 and a.shape[-1] == 3:
        return a
    if a.ndim == 3 and a.shape[0] == 3:
        return np.moveaxis(a, 0, -1)
    raise DataError(
        f"strain map has shape {a.shape}",
        where=str(spec),
        fix="store (rows, cols, 3) or (3, rows, cols) with components (aa, cc, ac)",
    )


def load_composition_map(spec: str | os.PathLike[str]) -> np.ndarray:
    """Composition map X ``(rows, cols)`` (e.g. the ``composition`` output of ``operando stxm``)."""
    a = _load_array(spec)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise DataError(f"composition map has shape {a.shape}", where=str(spec), fix="(rows, cols)")
    return a
