"""Reading strain and composition maps (arrays, and py4DSTEM strain-map files).

py4DSTEM (>= 0.14) saves a strain map as an EMD 1.0 HDF5 file (the ``emdfile`` layout):
a group with ``emd_group_type = "array"`` holding ``data`` of shape ``(slices, rows, cols)``
and a ``dim*`` dataset named ``_labels_`` with the slice labels ``e_xx, e_yy, e_xy,
theta, mask, error``. :func:`read_py4dstem_strain` reads that layout with h5py, so
py4DSTEM (a large dependency tree) is not needed to read its outputs; the test file in
``tests/modalities/strain/data`` was written by py4DSTEM 0.14.18 itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import DataError, FileFormatError

__all__ = ["load_composition_map", "load_strain_map", "read_py4dstem_strain"]

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
        ``"array"`` or ``"py4dstem"`` (a py4DSTEM strain-map file, read without
        py4DSTEM: see :func:`read_py4dstem_strain`).

    Raises
    ------
    FileFormatError
        Missing/unknown file or format.
    DataError
        Wrong shape.
    """
    if fmt == "py4dstem":
        return read_py4dstem_strain(spec)
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


_P4_LABELS = ("e_xx", "e_yy", "e_xy")


def read_py4dstem_strain(spec: str | os.PathLike[str]) -> np.ndarray:
    """Strain map ``(rows, cols, 3)`` from a py4DSTEM strain-map file (EMD 1.0 / HDF5).

    ``(e_xx, e_yy, e_xy)`` become ``(aa, cc, ac)``: rotate the map to the crystal frame in
    py4DSTEM first (``StrainMap.get_strain(..., rotation)`` or the ``theta`` slice), so that
    x is along a and y along c. ``e_xy`` is taken as the tensor shear (py4DSTEM's
    convention). Pixels where the ``mask`` slice is 0 become NaN (outside the particle).
    ``file.h5:/path/to/group`` selects one of several strain maps.

    Raises
    ------
    FileFormatError
        Missing file, not HDF5, or no array group with slices ``e_xx, e_yy, e_xy``.
    """
    import h5py

    from ...io import split_spec

    path, key = split_spec(spec)
    if not path.exists():
        raise FileFormatError("file does not exist", where=str(path), fix="check the path")
    fix = "save the StrainMap with py4DSTEM.save(path, strainmap), or pass a .npy (rows, cols, 3)"
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise FileFormatError(f"cannot be opened as HDF5 ({e})", where=str(path), fix=fix) from e
    with f:
        found: dict[str, tuple[np.ndarray, list[str]]] = {}

        def visit(name: str, obj: object) -> None:
            if not isinstance(obj, h5py.Group) or obj.attrs.get("emd_group_type") != "array":
                return
            if "data" not in obj:
                return
            for dname in obj:
                d = obj[dname]
                if dname.startswith("dim") and d.attrs.get("name") == "_labels_":
                    labels = [v.decode() if isinstance(v, bytes) else str(v) for v in d[()]]
                    if all(k in labels for k in _P4_LABELS):
                        found[name] = (np.asarray(obj["data"][()], float), labels)

        f.visititems(visit)
    if key is not None:
        k = key.strip("/")
        if k not in found:
            raise FileFormatError(
                f"has no strain map at '{key}' (strain maps: {sorted(found) or 'none'})",
                where=str(path),
                fix=fix,
            )
        found = {k: found[k]}
    if len(found) != 1:
        raise FileFormatError(
            "holds no py4DSTEM strain map (an array with slices e_xx, e_yy, e_xy)"
            if not found
            else f"holds several strain maps {sorted(found)}",
            where=str(path),
            fix=fix if not found else f"name one: '{path}:/{sorted(found)[0]}'",
        )
    data, labels = next(iter(found.values()))
    if data.ndim != 3 or data.shape[0] != len(labels):
        raise FileFormatError(
            f"strain-map data has shape {data.shape} for {len(labels)} slices",
            where=str(path),
            fix=fix,
        )
    out = np.stack([data[labels.index(k)] for k in _P4_LABELS], axis=-1)
    if "mask" in labels:
        out[data[labels.index("mask")] == 0] = np.nan
    return out
