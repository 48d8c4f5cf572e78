"""The operando dataset schema.

Every capability of operando reads and writes one carrier: an :class:`xarray.Dataset`
that holds images together with their physical metadata, per-particle masks, provenance
and, for synthetic data, the ground truth. The schema is documented in
``docs/dataset-schema.md``; this module builds and validates it.

Layout (schema ``operando.dataset/1``)

* ``images``: the measured values, float. The last two dims are always ``("y", "x")``
  (rows, columns). Leading dims are taken, in this order, from
  ``("realization", "t", "energy", "channel", "z")``; e.g. an image series is
  ``("t", "y", "x")``, a multi-energy stack ``("energy", "y", "x")``, a tomography volume
  ``("z", "y", "x")`` and a set of simulated series ``("realization", "t", "y", "x")``.
* coordinates ``t`` (frame times, strictly increasing, ``attrs["units"]``), ``energy``
  (strictly increasing, eV), ``y`` and ``x`` (pixel centres in physical units,
  ``index * pixel_size``).
* ``masks`` (optional): ``("particle", "y", "x")`` boolean, one non-empty mask per particle.
* ``truth_images`` (optional): the clean images, same dims as ``images``.
* ``truth_fn_<name>`` (optional): a true function sampled on its own grid dim
  ``grid_<name>`` (e.g. ``mu_h(c)`` on a c-grid); ``attrs["argument"]`` names the argument.
* attributes: ``operando_schema``, ``pixel_size`` (float), ``pixel_unit`` (str),
  ``provenance`` (JSON list of processing steps), ``truth_parameters`` (JSON object) and
  ``truth_seed`` (int) when ground truth is present. Complex attributes are stored as JSON
  strings so that they round-trip through NetCDF/HDF5 unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from .errors import DataError

__all__ = [
    "LEADING_DIMS",
    "SCHEMA",
    "Truth",
    "add_provenance",
    "attach_truth",
    "describe_dataset",
    "energy_stack",
    "get_provenance",
    "get_truth",
    "has_truth",
    "image_series",
    "make_dataset",
    "validate_dataset",
]

SCHEMA = "operando.dataset/1"
LEADING_DIMS = ("realization", "t", "energy", "channel", "z")
_COORD_UNITS = {"t": "s", "energy": "eV"}


def make_dataset(
    images: Any,
    *,
    dims: Sequence[str] | None = None,
    coords: Mapping[str, Any] | None = None,
    pixel_size: float = 1.0,
    pixel_unit: str = "px",
    masks: Any | None = None,
    attrs: Mapping[str, Any] | None = None,
    source: str = "images",
    allow_nonfinite: bool = False,
) -> xr.Dataset:
    """Build a validated operando dataset from an array.

    Parameters
    ----------
    images
        Array of shape ``(..., y, x)``; converted to float64.
    dims
        Dimension names. Default: ``("y", "x")`` for 2D, ``("t", "y", "x")`` for 3D,
        ``("realization", "t", "y", "x")`` for 4D.
    coords
        Optional coordinate values for the leading dims, e.g. ``{"t": times}``.
        Missing ``t``/``energy``/``realization``/``z``/``channel`` coordinates default
        to ``0, 1, 2, ...``; ``y``/``x`` are always ``index * pixel_size``.
    pixel_size, pixel_unit
        Physical size of one pixel and its unit (``"nm"``, ``"um"``, ``"px"``, ...).
    masks
        Optional boolean array ``(particle, y, x)`` or ``(y, x)`` of particle masks.
    attrs
        Extra attributes (provenance-like facts such as instrument or sample names).
    source
        Name used in error messages (a file name, typically).
    allow_nonfinite
        Accept NaN/inf pixels (e.g. outside a particle). Default ``False``.

    Returns
    -------
    xarray.Dataset
        Validated dataset in schema ``operando.dataset/1``.
    """
    arr = np.asarray(images)
    if arr.dtype.kind == "c":
        raise DataError(
            "images are complex-valued",
            where=source,
            fix="pass the amplitude or phase (np.abs / np.angle) as a real array",
        )
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"images have non-numeric dtype {arr.dtype}", where=source, fix="pass a numeric array"
        )
    arr = arr.astype(np.float64, copy=False)
    if dims is None:
        defaults = {2: ("y", "x"), 3: ("t", "y", "x"), 4: ("realization", "t", "y", "x")}
        if arr.ndim not in defaults:
            raise DataError(
                f"images have {arr.ndim} dimensions; expected 2 to 4 with (y, x) last",
                where=source,
                fix="reshape to (t, y, x) or (energy, y, x), or pass dims= explicitly",
            )
        dims = defaults[arr.ndim]
    dims = tuple(dims)
    if len(dims) != arr.ndim:
        raise DataError(
            f"{len(dims)} dim names {dims} for an array of {arr.ndim} dimensions {arr.shape}",
            where=source,
            fix="give one name per array axis",
        )
    _check_dims(dims, source)
    coord_vals: dict[str, Any] = {}
    coords = dict(coords or {})
    for d, n in zip(dims, arr.shape, strict=True):
        if d in ("y", "x"):
            coord_vals[d] = (d, np.arange(n, dtype=np.float64) * float(pixel_size))
        elif d in coords:
            v = np.asarray(coords.pop(d))
            if d in _COORD_UNITS and v.dtype.kind in "iub":
                v = v.astype(np.float64)
            coord_vals[d] = (d, v)
        else:
            coord_vals[d] = (d, np.arange(n, dtype=np.float64 if d in _COORD_UNITS else np.int64))
    if coords:
        raise DataError(
            f"coordinates {sorted(coords)} do not match any dim of {dims}",
            where=source,
            fix="name coordinates after dims",
        )
    ds = xr.Dataset({"images": (dims, arr)}, coords=coord_vals)
    for d, unit in _COORD_UNITS.items():
        if d in ds.coords:
            ds[d].attrs["units"] = unit
    for d in ("y", "x"):
        ds[d].attrs["units"] = pixel_unit
    if masks is not None:
        m = np.asarray(masks)
        if m.ndim == 2:
            m = m[None]
        ds["masks"] = (("particle", "y", "x"), m.astype(bool))
    ds.attrs.update(
        {
            "operando_schema": SCHEMA,
            "pixel_size": float(pixel_size),
            "pixel_unit": str(pixel_unit),
            "provenance": "[]",
        }
    )
    for k, v in (attrs or {}).items():
        ds.attrs[k] = _attr_value(v)
    return validate_dataset(ds, source=source, allow_nonfinite=allow_nonfinite)


def image_series(images: Any, times: Any | None = None, **kwargs: Any) -> xr.Dataset:
    """An image series ``(t, y, x)``; ``times`` in seconds (strictly increasing)."""
    coords = dict(kwargs.pop("coords", {}) or {})
    if times is not None:
        coords["t"] = times
    return make_dataset(images, dims=("t", "y", "x"), coords=coords, **kwargs)


def energy_stack(images: Any, energies: Any, **kwargs: Any) -> xr.Dataset:
    """A multi-energy stack ``(energy, y, x)``; ``energies`` in eV (strictly increasing)."""
    if energies is None:
        raise DataError(
            "an energy stack needs its energies",
            where=kwargs.get("source", "images"),
            fix="pass the photon energy (eV) of every image",
        )
    coords = dict(kwargs.pop("coords", {}) or {})
    coords["energy"] = energies
    return make_dataset(images, dims=("energy", "y", "x"), coords=coords, **kwargs)


def _check_dims(dims: tuple[str, ...], source: str) -> None:
    if dims[-2:] != ("y", "x"):
        raise DataError(
            f"dims {dims} must end with ('y', 'x')",
            where=source,
            fix="transpose so that rows and columns are the last two axes",
        )
    lead = dims[:-2]
    unknown = [d for d in lead if d not in LEADING_DIMS]
    if unknown:
        raise DataError(
            f"unknown dims {unknown}; allowed leading dims are {LEADING_DIMS}",
            where=source,
            fix="rename the dims",
        )
    order = [LEADING_DIMS.index(d) for d in lead]
    if order != sorted(order) or len(set(order)) != len(order):
        raise DataError(
            f"leading dims {lead} are repeated or out of order; expected the order {LEADING_DIMS}",
            where=source,
            fix="transpose the array",
        )


def validate_dataset(
    ds: xr.Dataset, *, source: str = "dataset", allow_nonfinite: bool = False
) -> xr.Dataset:
    """Check a dataset against the schema; return it unchanged or raise :class:`DataError`."""
    if not isinstance(ds, xr.Dataset):
        raise DataError(f"expected an xarray.Dataset, got {type(ds).__name__}", where=source)
    if "images" not in ds:
        raise DataError(
            "no 'images' variable",
            where=source,
            fix="store the measured values in a variable named 'images'",
        )
    img = ds["images"]
    _check_dims(tuple(img.dims), f"{source}: variable 'images'")
    if any(n == 0 for n in img.shape):
        raise DataError(f"'images' is empty, shape {img.shape}", where=source)
    if img.dtype.kind not in "biuf":
        raise DataError(f"'images' has dtype {img.dtype}", where=source, fix="store real values")
    if not allow_nonfinite:
        bad = int(np.size(img.values) - np.count_nonzero(np.isfinite(img.values)))
        if bad:
            raise DataError(
                f"'images' contains {bad} NaN/inf pixel(s)",
                where=source,
                fix="replace or mask the non-finite pixels before analysis",
            )
    for d, unit in _COORD_UNITS.items():
        if d not in img.dims:
            continue
        v = np.asarray(ds[d].values)
        if v.dtype.kind not in "iuf" or not np.all(np.isfinite(v)):
            raise DataError(f"coordinate '{d}' has non-finite or non-numeric values", where=source)
        if v.size > 1 and not np.all(np.diff(v) > 0):
            kind = "duplicated" if np.any(np.diff(v) == 0) else "unsorted"
            raise DataError(
                f"coordinate '{d}' ({unit}) has {kind} values; it must be strictly increasing",
                where=source,
                fix=f"sort frames by {d} and drop duplicates (ds.sortby('{d}'))",
            )
    ps = ds.attrs.get("pixel_size", 1.0)
    if not (np.isfinite(ps) and ps > 0):
        raise DataError(f"pixel_size is {ps}", where=source, fix="set a positive pixel size")
    if "masks" in ds:
        m = ds["masks"]
        if tuple(m.dims) != ("particle", "y", "x"):
            raise DataError(
                f"'masks' has dims {m.dims}; expected ('particle', 'y', 'x')", where=source
            )
        counts = np.asarray(m.values).reshape(m.shape[0], -1).sum(axis=1)
        empty = [int(i) for i in np.flatnonzero(counts == 0)]
        if empty:
            raise DataError(
                f"mask(s) of particle(s) {empty} are empty",
                where=f"{source}: variable 'masks'",
                fix="drop empty masks or fix the segmentation threshold",
            )
    if "truth_images" in ds and ds["truth_images"].dims != img.dims:
        raise DataError(
            f"'truth_images' dims {ds['truth_images'].dims} differ from 'images' {img.dims}",
            where=source,
        )
    return ds


# ---------------------------------------------------------------------------- truth


@dataclass(frozen=True)
class Truth:
    """Ground truth carried by a synthetic dataset."""

    clean: xr.DataArray | None
    functions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None


def attach_truth(
    ds: xr.Dataset,
    *,
    clean: Any | None = None,
    functions: Mapping[str, tuple[Any, Any]] | None = None,
    arguments: Mapping[str, str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> xr.Dataset:
    """Return a copy of ``ds`` carrying ground truth.

    Parameters
    ----------
    clean
        The noise-free images, same shape as ``ds.images``.
    functions
        ``{name: (grid, values)}``: true functions sampled on a grid, e.g.
        ``{"mu_h": (c, mu_h(c)), "D": (c, D(c))}``.
    arguments
        ``{name: argument name}`` (default ``"c"``), recorded as metadata.
    parameters
        True scalar parameters (JSON-serialisable), e.g. ``{"kappa": 2e-3}``.
    seed
        The seed that generated the data.
    """
    out = ds.copy()
    if clean is not None:
        c = np.asarray(clean, dtype=np.float64)
        if c.shape != ds["images"].shape:
            raise DataError(
                f"clean images have shape {c.shape}, images {ds['images'].shape}",
                where="truth",
                fix="pass clean images of the same shape",
            )
        out["truth_images"] = (ds["images"].dims, c)
    for name, (grid, values) in (functions or {}).items():
        g = np.asarray(grid, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        if g.ndim != 1 or v.shape != g.shape:
            raise DataError(
                f"truth function '{name}' has grid shape {g.shape} and values {v.shape}",
                where="truth",
                fix="sample each function on a 1D grid",
            )
        dim = f"grid_{name}"
        out = out.assign_coords({dim: (dim, g)})
        out[f"truth_fn_{name}"] = (dim, v)
        out[f"truth_fn_{name}"].attrs["argument"] = (arguments or {}).get(name, "c")
    if parameters is not None:
        out.attrs["truth_parameters"] = json.dumps(dict(parameters), default=_json_default)
    if seed is not None:
        out.attrs["truth_seed"] = int(seed)
    return out


def has_truth(ds: xr.Dataset) -> bool:
    """Whether the dataset carries any ground truth."""
    return (
        "truth_images" in ds
        or any(str(k).startswith("truth_fn_") for k in ds.data_vars)
        or "truth_parameters" in ds.attrs
    )


def get_truth(ds: xr.Dataset) -> Truth | None:
    """The ground truth of a synthetic dataset, or ``None``."""
    if not has_truth(ds):
        return None
    fns = {}
    for k in ds.data_vars:
        k = str(k)
        if k.startswith("truth_fn_"):
            name = k[len("truth_fn_") :]
            fns[name] = (np.asarray(ds[f"grid_{name}"].values), np.asarray(ds[k].values))
    params = json.loads(ds.attrs.get("truth_parameters", "{}"))
    seed = ds.attrs.get("truth_seed")
    return Truth(
        clean=ds.get("truth_images"),
        functions=fns,
        parameters=params,
        seed=None if seed is None else int(seed),
    )


# ----------------------------------------------------------------------- provenance


def get_provenance(ds: xr.Dataset) -> list[dict[str, Any]]:
    """The list of processing steps recorded in the dataset."""
    return list(json.loads(ds.attrs.get("provenance", "[]")))


def add_provenance(ds: xr.Dataset, step: str, **info: Any) -> xr.Dataset:
    """Return a copy of ``ds`` with one more provenance step (version recorded)."""
    from . import __version__

    steps = get_provenance(ds)
    steps.append({"step": step, "operando_version": __version__, **info})
    out = ds.copy()
    out.attrs["provenance"] = json.dumps(steps, default=_json_default)
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _attr_value(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, str | int | float | np.number):
        return v
    return json.dumps(v, default=_json_default)


def describe_dataset(ds: xr.Dataset) -> dict[str, Any]:
    """A JSON-serialisable description: shape, dims, coordinates, metadata, provenance, truth."""
    img = ds["images"]
    coords = {}
    for d in img.dims:
        v = np.asarray(ds[d].values)
        entry: dict[str, Any] = {"size": int(v.size)}
        if v.dtype.kind in "iuf" and v.size:
            entry.update(first=v[0].item(), last=v[-1].item())
        if "units" in ds[d].attrs:
            entry["units"] = ds[d].attrs["units"]
        coords[str(d)] = entry
    vals = np.asarray(img.values)
    finite = vals[np.isfinite(vals)]
    truth = get_truth(ds)
    skip = {"provenance", "truth_parameters", "truth_seed", "operando_schema"}
    return {
        "schema": ds.attrs.get("operando_schema"),
        "dims": [str(d) for d in img.dims],
        "shape": [int(n) for n in img.shape],
        "dtype": str(img.dtype),
        "coords": coords,
        "pixel_size": ds.attrs.get("pixel_size"),
        "pixel_unit": ds.attrs.get("pixel_unit"),
        "value_range": [float(finite.min()), float(finite.max())] if finite.size else None,
        "nonfinite_pixels": int(vals.size - finite.size),
        "particles": int(ds.sizes["particle"]) if "masks" in ds else 0,
        "variables": sorted(str(k) for k in ds.data_vars),
        "attributes": {str(k): _jsonable(v) for k, v in ds.attrs.items() if k not in skip},
        "provenance": get_provenance(ds),
        "ground_truth": None
        if truth is None
        else {
            "clean_images": truth.clean is not None,
            "functions": sorted(truth.functions),
            "parameters": truth.parameters,
            "seed": truth.seed,
        },
    }


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v
