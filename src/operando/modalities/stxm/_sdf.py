"""ALS SDF (the "Stack Definition Format" of ALS STXM beamlines): ``.hdr`` + ``.xim`` files.

An ALS STXM scan is a text header ``NAME.hdr`` and one tab-separated text image per energy
(and detector channel), ``NAME_a000.xim``, ``NAME_a001.xim``, ... (``NAME_a.xim`` for a
single-energy image). The header is a nested list of ``Key = value;`` assignments, where a
value is a number, a bare word (``true``), a quoted string, a group ``{ ... }`` or a counted
list ``(n, v1, ..., vn)``::

    ScanDefinition = { Label = "71214078.hdr"; Type = "NEXAFS Image Scan"; Dwell = 0.433;
        Regions = (1, { PAxis = { Name = "Sample X"; Unit = "um"; Points = (125, ...); };
                        QAxis = { Name = "Sample Y"; Unit = "um"; Points = (125, ...); }; });
        StackAxis = { Name = "Energy"; Unit = "eV"; Points = (123, 700.000, ...); }; ... };

:func:`parse_sdf_header` parses the header into nested dicts and lists (numbers as
``float``); :func:`read_sdf` returns an operando energy stack ``(energy, y, x)`` of counts.
Rows of a ``.xim`` file are ``y`` (the ``QAxis``), columns ``x`` (the ``PAxis``), in file
order. Energies are exactly the ``StackAxis`` ``Points`` of the header (not ``Min``/``Max``,
which are the requested range).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ...data import energy_stack
from ...errors import DataError, FileFormatError

__all__ = ["SDFHeader", "parse_sdf_header", "read_sdf"]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"[^"]*")
      | (?P<punct>[{}();=,])
      | (?P<word>[^\s{}();=,"]+)
    )""",
    re.VERBOSE,
)

_LENGTH_UNITS_NM = {"nm": 1.0, "um": 1e3, "µm": 1e3, "micron": 1e3, "mm": 1e6, "m": 1e9}


@dataclass(frozen=True)
class SDFHeader:
    """The facts operando uses from an ALS SDF header.

    Attributes
    ----------
    path
        The header file.
    scan_type
        ``ScanDefinition.Type``, e.g. ``"NEXAFS Image Scan"``.
    energies
        Photon energies (eV) of the stack, exactly the ``StackAxis`` points, shape ``(n,)``.
    x, y
        Sample positions of the columns (``PAxis``) and rows (``QAxis``) in ``axis_unit``.
    axis_unit
        Unit of ``x`` and ``y`` as written in the header (``"um"`` at ALS).
    pixel_size_nm
        ``(dy, dx)`` pixel spacing in nanometres.
    dwell_ms
        Dwell time per pixel (ms), ``ScanDefinition.Dwell``.
    channels
        Detector channel names (``"counter1"``, ...).
    ring_current
        Storage-ring current (mA) recorded for each image, or ``None`` if absent.
    raw
        The whole parsed header (nested dicts and lists).
    """

    path: Path
    scan_type: str
    energies: np.ndarray
    x: np.ndarray
    y: np.ndarray
    axis_unit: str
    pixel_size_nm: tuple[float, float]
    dwell_ms: float | None
    channels: tuple[str, ...]
    ring_current: np.ndarray | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


# ------------------------------------------------------------------------------ parser


class _Parser:
    def __init__(self, text: str, where: str):
        self.where = where
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                if text[pos:].strip() == "":
                    break
                self._fail(f"unexpected character {text[pos]!r}", text.count("\n", 0, pos) + 1)
            kind = m.lastgroup or "word"
            self.tokens.append((kind, m.group(kind), text.count("\n", 0, m.start(kind)) + 1))
            pos = m.end()
        self.i = 0

    def _fail(self, what: str, line: int | None = None) -> None:
        if line is None:
            line = self.tokens[self.i][2] if self.i < len(self.tokens) else "end of file"
        raise FileFormatError(
            f"malformed ALS SDF header at line {line}: {what}",
            where=self.where,
            fix="the header must be 'Key = value;' assignments with balanced { } and ( ); "
            "re-export the scan from the beamline software if the file is truncated",
        )

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _next(self) -> tuple[str, str, int]:
        tok = self._peek()
        if tok is None:
            self._fail("unexpected end of file")
        self.i += 1
        return tok  # type: ignore[return-value]

    def _expect(self, value: str) -> None:
        kind, text, _ = self._next()
        if text != value or kind != "punct":
            self.i -= 1
            self._fail(f"expected {value!r}, found {text!r}")

    def assignments(self, closing: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            tok = self._peek()
            if tok is None:
                if closing is not None:
                    self._fail(f"missing {closing!r}")
                return out
            kind, text, _ = tok
            if kind == "punct" and text == closing:
                return out
            if kind == "punct" and text == ";":
                self.i += 1
                continue
            if kind != "word":
                self._fail(f"expected a key, found {text!r}")
            self.i += 1
            self._expect("=")
            out[text] = self.value()

    def value(self) -> Any:
        kind, text, line = self._next()
        if kind == "string":
            return text[1:-1]
        if kind == "word":
            try:
                return float(text)
            except ValueError:
                return text
        if text == "{":
            d = self.assignments("}")
            self._expect("}")
            return d
        if text == "(":
            items = [self.value()]
            while True:
                _, t, _ = self._next()
                if t == ")":
                    break
                if t != ",":
                    self.i -= 1
                    self._fail(f"expected ',' or ')' in a list, found {t!r}")
                items.append(self.value())
            n = items[0]
            if not isinstance(n, float) or n != int(n) or int(n) != len(items) - 1:
                self._fail(
                    f"list declares {n!r} items but holds {len(items) - 1}",
                    line,
                )
            return items[1:]
        self.i -= 1
        self._fail(f"unexpected {text!r}")
        return None  # unreachable


def _get(d: Any, *keys: Any, where: str, what: str) -> Any:
    cur = d
    for k in keys:
        try:
            cur = cur[k]
        except (KeyError, IndexError, TypeError):
            raise FileFormatError(
                f"ALS SDF header has no {what}",
                where=where,
                fix="check that this is the .hdr of an ALS STXM image or stack scan",
            ) from None
    return cur


def _points(axis: Any, where: str, name: str) -> np.ndarray:
    pts = _get(axis, "Points", where=where, what=f"{name} Points")
    if not isinstance(pts, list) or not pts or not all(isinstance(p, float) for p in pts):
        raise FileFormatError(
            f"ALS SDF header: {name} Points are not a list of numbers",
            where=where,
            fix="check the header is complete",
        )
    return np.asarray(pts, dtype=np.float64)


def parse_sdf_header(path: str | os.PathLike[str]) -> SDFHeader:
    """Parse an ALS SDF ``.hdr`` header.

    Parameters
    ----------
    path
        The ``.hdr`` file.

    Returns
    -------
    SDFHeader
        Energies (exactly as written), axes, pixel size, dwell, channels and ring currents.

    Raises
    ------
    FileFormatError
        The file is missing, is not an SDF header, or is malformed (unbalanced braces, a
        list whose declared length differs from its contents, no energy axis, ...).
    """
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as e:
        raise FileFormatError(
            f"cannot be read ({e.strerror or e})",
            where=where,
            fix="check the path of the .hdr file",
        ) from None
    raw = _Parser(text, where).assignments(None)
    scan = _get(raw, "ScanDefinition", where=where, what="ScanDefinition group")
    region = _get(scan, "Regions", 0, where=where, what="Regions list")
    px = _get(region, "PAxis", where=where, what="PAxis (x axis)")
    qx = _get(region, "QAxis", where=where, what="QAxis (y axis)")
    x = _points(px, where, "PAxis")
    y = _points(qx, where, "QAxis")
    stack_axis = scan.get("StackAxis")
    if stack_axis is not None:
        energies = _points(stack_axis, where, "StackAxis")
    else:  # a single-energy image: the monochromator position
        mono = _get(raw, "Monochromator", "LastPosition", where=where, what="energy")
        energies = np.asarray([float(mono)])
    unit = str(px.get("Unit", "um"))
    if unit not in _LENGTH_UNITS_NM:
        raise FileFormatError(
            f"ALS SDF header: unknown length unit {unit!r} of the x axis",
            where=where,
            fix=f"use one of {sorted(_LENGTH_UNITS_NM)}",
        )
    scale = _LENGTH_UNITS_NM[unit]

    def _step(v: np.ndarray) -> float:
        return round(abs(float(v[-1] - v[0])) / (v.size - 1) * scale, 6) if v.size > 1 else 1.0

    channels = tuple(
        str(c.get("Name", f"channel{i}")) if isinstance(c, dict) else f"channel{i}"
        for i, c in enumerate(scan.get("Channels", []) or [{}])
    )
    dwell = scan.get("Dwell")
    currents = []
    for i in range(1, energies.size + 1):
        entry = raw.get(f"Image{i}")
        currents.append(
            float(entry["StorageRingCurrent"])
            if isinstance(entry, dict) and isinstance(entry.get("StorageRingCurrent"), float)
            else np.nan
        )
    if np.isnan(currents[0]) and isinstance(raw.get("StorageRingCurrent"), float):
        currents[0] = float(raw["StorageRingCurrent"])  # the first image's is top-level
    ring = np.asarray(currents)
    return SDFHeader(
        path=path,
        scan_type=str(scan.get("Type", "")),
        energies=energies,
        x=x,
        y=y,
        axis_unit=unit,
        pixel_size_nm=(_step(y), _step(x)),
        dwell_ms=float(dwell) if isinstance(dwell, float) else None,
        channels=channels,
        ring_current=None if np.all(np.isnan(ring)) else ring,
        raw=raw,
    )


# ------------------------------------------------------------------------------ images


def _xim_paths(header: SDFHeader, channel: str) -> list[Path]:
    stem = header.path.with_suffix("")
    n = header.energies.size
    if n == 1 and not Path(f"{stem}_{channel}000.xim").exists():
        return [Path(f"{stem}_{channel}.xim")]
    return [Path(f"{stem}_{channel}{i:03d}.xim") for i in range(n)]


def _read_xim(path: Path, shape: tuple[int, int]) -> np.ndarray:
    if not path.exists():
        raise FileFormatError(
            "image file of the stack is missing",
            where=str(path),
            fix="copy every NAME_aNNN.xim file of the scan next to its .hdr header "
            "(one per energy)",
        )
    try:
        img = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise FileFormatError(
            f"is not a tab-separated numeric image ({e})",
            where=str(path),
            fix="re-export the image; .xim files hold one row of counts per line",
        ) from None
    if img.shape != shape:
        raise FileFormatError(
            f"image has shape {img.shape} (rows, columns) but the header declares "
            f"{shape} (QAxis, PAxis points)",
            where=str(path),
            fix="use the .xim files that belong to this header (an aborted scan can leave "
            "short images: drop that energy or re-acquire)",
        )
    bad = int(img.size - np.count_nonzero(np.isfinite(img)))
    if bad:
        raise DataError(
            f"image contains {bad} NaN/inf value(s)",
            where=str(path),
            fix="replace the bad pixels or drop this energy from the stack",
        )
    return img


def read_sdf(
    path: str | os.PathLike[str],
    *,
    channel: str = "a",
) -> xr.Dataset:
    """Read an ALS SDF scan (``.hdr`` + ``.xim`` files) as an energy stack of counts.

    Parameters
    ----------
    path
        The ``.hdr`` header; images ``STEM_{channel}NNN.xim`` are read from its folder.
    channel
        Detector channel letter of the image files (``"a"`` for the first channel).

    Returns
    -------
    xarray.Dataset
        ``images`` ``(energy, y, x)`` of transmitted counts (float64); ``energy`` exactly the
        header's ``StackAxis`` points (eV); ``pixel_size`` in nm (``pixel_unit="nm"``);
        a variable ``ring_current`` ``(energy,)`` (mA) when the header records it;
        attributes ``instrument``, ``scan_type``, ``dwell_ms``, ``x_origin_nm``,
        ``y_origin_nm`` and ``source_file``.

    Raises
    ------
    FileFormatError
        Malformed header, a missing ``.xim`` file, or an image whose size differs from
        the header's axes (the message names the file).
    DataError
        An image contains NaN/inf (the message names the ``.xim`` file).

    Examples
    --------
    >>> ds = read_sdf("71214078.hdr")  # doctest: +SKIP
    >>> ds.images.dims, ds.sizes["energy"]  # doctest: +SKIP
    (('energy', 'y', 'x'), 123)
    """
    header = parse_sdf_header(path)
    shape = (header.y.size, header.x.size)
    files = _xim_paths(header, channel)
    images = np.stack([_read_xim(f, shape) for f in files])
    dy, dx = header.pixel_size_nm
    attrs: dict[str, Any] = {
        "instrument": "ALS STXM (SDF)",
        "scan_type": header.scan_type,
        "source_file": str(header.path),
        "x_origin_nm": float(header.x[0]) * _LENGTH_UNITS_NM[header.axis_unit],
        "y_origin_nm": float(header.y[0]) * _LENGTH_UNITS_NM[header.axis_unit],
    }
    if header.dwell_ms is not None:
        attrs["dwell_ms"] = header.dwell_ms
    if abs(dy - dx) > 1e-6 * max(dx, dy):
        attrs["pixel_size_y"] = dy
    ds = energy_stack(
        images,
        header.energies,
        pixel_size=dx,
        pixel_unit="nm",
        attrs=attrs,
        source=str(header.path),
    )
    if header.ring_current is not None:
        ds["ring_current"] = ("energy", header.ring_current)
        ds["ring_current"].attrs["units"] = "mA"
    return ds
