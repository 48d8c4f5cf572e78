"""Readers for NXstxm (NeXus HDF5), CXI ptychography and TIFF stacks with an energy list,
and their registration in the :mod:`operando.io` reader registry.

Registered suffixes (on import of :mod:`operando.modalities.stxm`):

* ``.hdr``: ALS SDF (:func:`~._sdf.read_sdf`).
* ``.nxs``: NXstxm; ``.h5``/``.hdf5``/``.hdf`` files whose root holds an ``NXentry`` with
  ``definition = "NXstxm"`` are read as NXstxm too, other HDF5 files go to the reader
  that was registered before (operando's generic HDF5/NetCDF reader).
* ``.cxi``: CXI ptychography reconstructions.
* ``.tif``/``.tiff``: when a sidecar energy list ``STACK.energies.txt`` (one energy per
  line, or two columns ``index energy``) sits next to ``STACK.tif``, the file is read as an
  energy stack; otherwise the generic TIFF reader is used.

CXI complex images
------------------
A ptychographic reconstruction is the complex transmission ``T = |T| exp(i phi)`` of the
sample. ``representation`` chooses the real image stored in ``images``:

* ``"intensity"`` (default): ``|T|^2``, the transmitted intensity, so the STXM chain
  (``OD = -ln(I / I0)`` with I0 from the background) applies unchanged;
* ``"od"``: ``-ln(|T|^2) = -2 ln|T|`` (OD relative to the reconstruction's unit
  illumination; :data:`~._od.MIN_TRANSMISSION` floors ``|T|^2``);
* ``"amplitude"``: ``|T|``; ``"phase"``: ``angle(T)`` (radians, not unwrapped).

Energies stored in joules (CXI's SI convention, values below 1e-12) are converted to eV
(divided by the elementary charge 1.602176634e-19 C).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from ...data import energy_stack
from ...errors import DataError, FileFormatError, ParameterError
from ...io import READERS, register_reader
from ._od import MIN_TRANSMISSION
from ._sdf import read_sdf
from ._spectra import read_spectrum

__all__ = [
    "ELEMENTARY_CHARGE",
    "read_cxi",
    "read_nxstxm",
    "read_tiff_stack",
    "register_stxm_readers",
]

#: Joules per electronvolt (exact, SI 2019).
ELEMENTARY_CHARGE = 1.602176634e-19

Representation = Literal["intensity", "od", "amplitude", "phase"]
_LENGTH_NM = {"nm": 1.0, "um": 1e3, "µm": 1e3, "micron": 1e3, "mm": 1e6, "m": 1e9}


def _attr_str(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.size == 1:
        return _attr_str(v.ravel()[0])
    return str(v)


def _open_h5(path: Path) -> Any:  # an h5py.File
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise FileFormatError(
            f"cannot be opened as HDF5 ({e})", where=str(path), fix="check the file is complete"
        ) from None


def _axis_pixel_nm(ds: Any) -> tuple[float, str] | None:
    v = np.asarray(ds[()], dtype=np.float64).ravel()
    if v.size < 2:
        return None
    unit = _attr_str(ds.attrs.get("units", "um"))
    factor = _LENGTH_NM.get(unit)
    if factor is None:
        return float(abs(v[-1] - v[0]) / (v.size - 1)), unit
    return round(abs(v[-1] - v[0]) / (v.size - 1) * factor, 6), "nm"


# -------------------------------------------------------------------------- NXstxm


def _is_nxstxm(f: Any) -> bool:
    for name in f:
        g = f[name]
        if _attr_str(g.attrs.get("NX_class", "")) != "NXentry":
            continue
        if "definition" in g and "nxstxm" in _attr_str(g["definition"][()]).lower():
            return True
    return False


def read_nxstxm(path: str | os.PathLike[str], *, key: str | None = None) -> xr.Dataset:
    """Read an NXstxm (NeXus) stack scan.

    Layout (NeXus application definition NXstxm)::

        /ENTRY            NX_class=NXentry; definition = "NXstxm"
          /DATA           NX_class=NXdata (one per detector channel)
            data          (energy, y, x) counts (or (y, x) for a single-energy image)
            energy        (energy,) eV
            sample_y      (y,) position, attribute units (um)
            sample_x      (x,) position, attribute units (um)
            stxm_scan_type "sample image stack"
          /control        NX_class=NXmonitor (optional): data (energy,) incident I0

    Parameters
    ----------
    path
        The NeXus file.
    key
        ``ENTRY/DATA`` group to read; default the first NXdata with a ``data`` array.

    Returns
    -------
    xarray.Dataset
        Energy stack of counts; ``i0`` ``(energy,)`` when a control monitor is present.
    """
    path = Path(path)
    where = str(path)
    with _open_h5(path) as f:
        if not _is_nxstxm(f):
            raise FileFormatError(
                "has no NXentry with definition 'NXstxm'",
                where=where,
                fix="read generic HDF5 arrays with 'FILE.h5:/path/to/data'",
            )
        group = None
        if key is not None:
            if key not in f:
                raise FileFormatError(
                    f"has no group '{key}'", where=where, fix="name an NXdata group"
                )
            group = f[key]
        else:
            for ename in f:
                entry = f[ename]
                if _attr_str(entry.attrs.get("NX_class", "")) != "NXentry":
                    continue
                for gname in entry:
                    g = entry[gname]
                    if _attr_str(g.attrs.get("NX_class", "")) == "NXdata" and "data" in g:
                        group = g
                        break
                if group is not None:
                    break
        if group is None or "data" not in group or "energy" not in group:
            raise FileFormatError(
                "NXstxm entry has no NXdata group with 'data' and 'energy'",
                where=where,
                fix="check the file follows the NXstxm definition",
            )
        arr = np.asarray(group["data"][()], dtype=np.float64)
        energies = np.asarray(group["energy"][()], dtype=np.float64).ravel()
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[0] != energies.size:
            raise FileFormatError(
                f"data has shape {arr.shape} for {energies.size} energies",
                where=f"{where}:{group.name}/data",
                fix="an NXstxm stack is data[energy, y, x] with one energy per plane",
            )
        px = _axis_pixel_nm(group["sample_x"]) if "sample_x" in group else None
        scan_type = _attr_str(group["stxm_scan_type"][()]) if "stxm_scan_type" in group else ""
        entry = group.parent
        i0 = None
        for mon in ("control", "monitor"):
            if mon in entry and "data" in entry[mon]:
                v = np.asarray(entry[mon]["data"][()], dtype=np.float64).ravel()
                if v.size == energies.size:
                    i0 = v
                break
        gname = group.name
    ds = energy_stack(
        arr,
        energies,
        pixel_size=px[0] if px else 1.0,
        pixel_unit=px[1] if px else "px",
        attrs={"instrument": "NXstxm", "scan_type": scan_type, "source_file": f"{where}:{gname}"},
        source=f"{where}:{gname}",
    )
    if i0 is not None:
        ds["i0"] = ("energy", i0)
    return ds


# ----------------------------------------------------------------------------- CXI


def _energy_ev(value: Any, units: str) -> np.ndarray:
    e = np.asarray(value, dtype=np.float64).ravel()
    u = units.strip().lower()
    if u in ("j", "joule", "joules") or (u in ("", "none") and np.all(np.abs(e) < 1e-12)):
        return e / ELEMENTARY_CHARGE
    if u == "kev":
        return e * 1e3
    return e


def _convert(t: np.ndarray, representation: Representation, where: str) -> np.ndarray:
    if representation == "intensity":
        return np.abs(t) ** 2
    if representation == "amplitude":
        return np.abs(t)
    if representation == "phase":
        return np.angle(t)
    if representation == "od":
        return -np.log(np.maximum(np.abs(t) ** 2, MIN_TRANSMISSION))
    raise ParameterError(
        f"representation={representation!r}",
        where=f"{where}: representation",
        fix="use 'intensity', 'od', 'amplitude' or 'phase'",
    )


def read_cxi(
    path: str | os.PathLike[str],
    *,
    representation: Representation = "intensity",
) -> xr.Dataset:
    """Read a CXI ptychography file (one or several energies) as an energy stack.

    Every ``/entry_N`` with ``image_1/data`` contributes its image(s); the energy is read
    from ``entry_N/instrument_1/source_1/energy`` (or ``.../beam_1/energy``, or
    ``image_1/energy``), converted from joules when needed; the pixel size from
    ``image_1/x_pixel_size`` (metres). A 3D ``image_1/data`` is ``(energy, y, x)`` with a
    matching 1D energy array. Planes are sorted by energy.

    Parameters
    ----------
    path
        The ``.cxi`` file.
    representation
        ``"intensity"`` (default), ``"od"``, ``"amplitude"`` or ``"phase"`` (module doc).

    Returns
    -------
    xarray.Dataset
        ``(energy, y, x)`` stack; attribute ``cxi_representation``.
    """
    path = Path(path)
    where = str(path)
    planes: list[np.ndarray] = []
    energies: list[float] = []
    pixel_m: float | None = None
    with _open_h5(path) as f:
        entries = sorted(
            (k for k in f if k.startswith("entry")), key=lambda k: (len(k), k)
        )  # entry_1, entry_2, ..., entry_10
        for name in entries:
            img = f[name].get("image_1")
            if img is None or "data" not in img:
                continue
            data = np.asarray(img["data"][()])
            e_ds = None
            for loc in ("instrument_1/source_1/energy", "instrument_1/beam_1/energy"):
                if loc in f[name]:
                    e_ds = f[name][loc]
                    break
            if e_ds is None and "energy" in img:
                e_ds = img["energy"]
            if e_ds is None:
                raise FileFormatError(
                    f"{name} has no energy (instrument_1/source_1/energy)",
                    where=where,
                    fix="store the photon energy of every reconstruction",
                )
            e = _energy_ev(e_ds[()], _attr_str(e_ds.attrs.get("units", "")))
            if data.ndim == 2:
                data = data[None]
            if data.ndim != 3 or data.shape[0] != e.size:
                raise FileFormatError(
                    f"{name}/image_1/data has shape {data.shape} for {e.size} energies",
                    where=where,
                    fix="store (y, x) images with one energy, or (energy, y, x) with 1D energy",
                )
            if planes and data.shape[1:] != planes[0].shape:
                raise FileFormatError(
                    f"{name} image size {data.shape[1:]} differs from {planes[0].shape}",
                    where=where,
                    fix="crop or pad the reconstructions to a common size",
                )
            if "x_pixel_size" in img and pixel_m is None:
                pixel_m = float(np.asarray(img["x_pixel_size"][()]).ravel()[0])
            for plane, ev in zip(data, e, strict=True):
                planes.append(_convert(plane, representation, where))
                energies.append(float(ev))
    if not planes:
        raise FileFormatError(
            "has no entry_N/image_1/data reconstruction",
            where=where,
            fix="check this is a CXI ptychography file",
        )
    order = np.argsort(energies, kind="stable")
    stack = np.stack(planes)[order]
    ev = np.asarray(energies)[order]
    return energy_stack(
        stack,
        ev,
        pixel_size=pixel_m * 1e9 if pixel_m else 1.0,
        pixel_unit="nm" if pixel_m else "px",
        attrs={
            "instrument": "CXI ptychography",
            "cxi_representation": representation,
            "source_file": where,
        },
        source=where,
    )


# ---------------------------------------------------------------------------- TIFF


def _read_energy_list(energies: Any, where: str) -> np.ndarray:
    if isinstance(energies, str | os.PathLike):
        p = Path(energies)
        try:
            e, v = read_spectrum(p)  # two columns: (index, energy) or (energy, value)
        except FileFormatError:
            try:
                vals = np.loadtxt(p, dtype=np.float64, ndmin=1, comments=("#", "%"))
            except (OSError, ValueError) as err:
                raise FileFormatError(
                    f"cannot be read as an energy list ({err})",
                    where=str(p),
                    fix="write one energy (eV) per line",
                ) from None
            return np.asarray(vals, dtype=np.float64).ravel()
        # two columns: energies are the column that is not 0, 1, 2, ...
        return v if np.array_equal(e, np.arange(e.size, dtype=float)) else e
    return np.asarray(energies, dtype=np.float64).ravel()


def read_tiff_stack(
    path: str | os.PathLike[str],
    energies: Sequence[float] | str | os.PathLike[str],
    *,
    pixel_size: float = 1.0,
    pixel_unit: str = "px",
) -> xr.Dataset:
    """Read a multi-page TIFF ``(energy, y, x)`` with its energies.

    Parameters
    ----------
    path
        The TIFF stack (one page per energy).
    energies
        Energies (eV): a sequence, or a text file with one energy per line (or two
        columns ``index energy``).
    pixel_size, pixel_unit
        Physical pixel size.

    Returns
    -------
    xarray.Dataset
    """
    import tifffile

    path = Path(path)
    where = str(path)
    if not path.exists():
        raise FileFormatError("file does not exist", where=where, fix="check the path")
    arr = np.asarray(tifffile.imread(path))
    if arr.ndim == 2:
        arr = arr[None]
    e = _read_energy_list(energies, where)
    if arr.ndim != 3 or arr.shape[0] != e.size:
        raise DataError(
            f"TIFF stack has shape {arr.shape} but {e.size} energies were given",
            where=where,
            fix="give exactly one energy per page",
        )
    return energy_stack(
        arr,
        e,
        pixel_size=pixel_size,
        pixel_unit=pixel_unit,
        attrs={"instrument": "TIFF stack", "source_file": where},
        source=where,
    )


def sidecar_energies(path: Path) -> Path | None:
    """``STACK.energies.txt`` next to ``STACK.tif``, if it exists."""
    p = path.with_name(path.stem + ".energies.txt")
    return p if p.exists() else None


# ------------------------------------------------------------------------ registry

_REGISTERED: dict[str, Any] = {}


def register_stxm_readers() -> None:
    """Register the STXM readers in :data:`operando.io.READERS` (idempotent)."""
    if _REGISTERED:
        return

    def _hdr(path: Path, key: str | None, dims: Sequence[str] | None) -> xr.Dataset:
        return read_sdf(path, channel=key or "a")

    def _nxs(path: Path, key: str | None, dims: Sequence[str] | None) -> xr.Dataset:
        return read_nxstxm(path, key=key)

    def _cxi(path: Path, key: str | None, dims: Sequence[str] | None) -> xr.Dataset:
        rep = key or "intensity"
        return read_cxi(path, representation=rep)  # type: ignore[arg-type]

    def _delegating_h5(previous: Any) -> Any:
        def reader(path: Path, key: str | None, dims: Sequence[str] | None) -> xr.Dataset:
            if key is None:
                with _open_h5(path) as f:
                    nx = _is_nxstxm(f)
                if nx:
                    return read_nxstxm(path)
            return previous(path, key, dims)

        return reader

    def _delegating_tiff(previous: Any) -> Any:
        def reader(path: Path, key: str | None, dims: Sequence[str] | None) -> xr.Dataset:
            side = sidecar_energies(path)
            if side is not None and (dims is None or tuple(dims) == ("energy", "y", "x")):
                return read_tiff_stack(path, side)
            return previous(path, key, dims)

        return reader

    register_reader((".hdr",), _hdr)
    register_reader((".nxs",), _nxs)
    register_reader((".cxi",), _cxi)
    for suffix in (".h5", ".hdf5", ".hdf"):
        prev = READERS.get(suffix)
        if prev is not None:
            register_reader((suffix,), _delegating_h5(prev))
    for suffix in (".tif", ".tiff"):
        prev = READERS.get(suffix)
        if prev is not None:
            register_reader((suffix,), _delegating_tiff(prev))
    _REGISTERED["done"] = True
