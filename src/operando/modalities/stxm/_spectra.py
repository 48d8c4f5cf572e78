"""Spectra: two-column text files (I0, reference spectra) and reference sets on a grid.

A spectrum file holds one ``energy value`` pair per line (whitespace, comma or tab
separated; extra columns are ignored; lines starting with ``#``, ``%``, ``;`` or ``*`` and
non-numeric header lines are skipped). This covers ALS ``.xsp`` I0 spectra, aXis2000 ``.txt``
spectra and the ``.r``/``.t`` reference files of the shared Fe L-edge data.

Energy calibration convention
-----------------------------
``energy_offset`` (eV) is *stack calibration minus reference calibration*: a feature at
``E`` on the references' scale appears at ``E + energy_offset`` in the measured stack. So
references are evaluated at ``E_stack - energy_offset`` (:meth:`ReferenceSpectra.on`), and
the paper's nominal energies (703/706/713 eV for LiFePO4) are looked up in the stack at
``E_nominal + energy_offset``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ...errors import DataError, FileFormatError, ParameterError

__all__ = ["ReferenceSpectra", "load_references", "read_spectrum"]

Outside = Literal["error", "restrict"]


def read_spectrum(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a two-column ``energy value`` text spectrum.

    Parameters
    ----------
    path
        Text file with at least two numeric columns (energy in eV, value).

    Returns
    -------
    energies, values
        1D float64 arrays; energies strictly increasing (a file in decreasing order is
        reversed).

    Raises
    ------
    FileFormatError
        Missing file, fewer than two numeric columns, or fewer than two rows.
    DataError
        NaN/inf values or duplicated/unsorted energies (the message names the file).
    """
    path = Path(path)
    where = str(path)
    try:
        lines = path.read_text(encoding="latin-1").splitlines()
    except OSError as e:
        raise FileFormatError(
            f"cannot be read ({e.strerror or e})", where=where, fix="check the spectrum's path"
        ) from None
    rows: list[tuple[float, float]] = []
    for i, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s[0] in "#%;*":
            continue
        parts = s.replace(",", " ").split()
        try:
            vals = [float(p) for p in parts[:2]]
        except ValueError:
            if rows:  # text after data: a corrupt file, not a header
                raise FileFormatError(
                    f"line {i} is not numeric: {s[:60]!r}",
                    where=where,
                    fix="a spectrum is two numeric columns 'energy value' per line",
                ) from None
            continue
        if len(vals) < 2:
            raise FileFormatError(
                f"line {i} has {len(vals)} column(s); expected 'energy value'",
                where=where,
                fix="a spectrum is two numeric columns 'energy value' per line",
            )
        rows.append((vals[0], vals[1]))
    if len(rows) < 2:
        raise FileFormatError(
            f"holds {len(rows)} numeric row(s); a spectrum needs at least 2",
            where=where,
            fix="a spectrum is two numeric columns 'energy value' per line",
        )
    arr = np.asarray(rows, dtype=np.float64)
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise DataError(
            f"spectrum contains {bad} NaN/inf value(s)",
            where=where,
            fix="remove or interpolate the bad rows",
        )
    e, v = arr[:, 0], arr[:, 1]
    if e.size > 1 and np.all(np.diff(e) < 0):
        e, v = e[::-1], v[::-1]
    if not np.all(np.diff(e) > 0):
        raise DataError(
            "energies are not strictly increasing (duplicated or unsorted rows)",
            where=where,
            fix="sort the rows by energy and drop duplicates",
        )
    return e, v


@dataclass(frozen=True)
class ReferenceSpectra:
    """Reference absorption spectra (optical density per unit amount), each on its own grid.

    Attributes
    ----------
    names
        One name per reference, e.g. ``("LFP", "FP")`` or ``("Fe(II)", "Fe(III)")``. The
        composition ``X`` reported by the fits is the fraction of the *first* reference.
    energies
        One strictly increasing energy grid (eV) per reference.
    values
        One value array per reference, same length as its grid.
    sources
        Where each spectrum came from (file names, ``"synthetic"``), for error messages.
    """

    names: tuple[str, ...]
    energies: tuple[np.ndarray, ...]
    values: tuple[np.ndarray, ...]
    sources: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.names)
        if n < 1 or not (len(self.energies) == len(self.values) == len(self.sources) == n):
            raise ParameterError(
                "names, energies, values and sources must have one entry per reference",
                where="ReferenceSpectra",
                fix="build it with ReferenceSpectra.from_arrays or load_references",
            )
        for name, e, v, src in zip(
            self.names, self.energies, self.values, self.sources, strict=True
        ):
            if e.ndim != 1 or e.shape != v.shape or e.size < 2:
                raise DataError(
                    f"reference {name!r} has energies {e.shape} and values {v.shape}",
                    where=src,
                    fix="give 1D energies and values of the same length (at least 2)",
                )
            if not (np.all(np.isfinite(e)) and np.all(np.isfinite(v))):
                raise DataError(
                    f"reference {name!r} contains NaN/inf", where=src, fix="clean the spectrum"
                )
            if not np.all(np.diff(e) > 0):
                raise DataError(
                    f"reference {name!r} energies are not strictly increasing",
                    where=src,
                    fix="sort by energy and drop duplicates",
                )

    @classmethod
    def from_arrays(
        cls,
        energies: Sequence[float] | np.ndarray,
        values: Sequence[Sequence[float]] | np.ndarray,
        names: Sequence[str] = ("LFP", "FP"),
        *,
        source: str = "arrays",
    ) -> ReferenceSpectra:
        """References sharing one energy grid: ``values`` has shape ``(k, n)``."""
        e = np.asarray(energies, dtype=np.float64)
        v = np.atleast_2d(np.asarray(values, dtype=np.float64))
        if v.shape[0] != len(names):
            raise ParameterError(
                f"{v.shape[0]} spectra for {len(names)} names {tuple(names)}",
                where=f"{source}: names",
                fix="give one name per reference spectrum",
            )
        return cls(
            names=tuple(names),
            energies=tuple(e.copy() for _ in names),
            values=tuple(row.copy() for row in v),
            sources=tuple(source for _ in names),
        )

    @property
    def range(self) -> tuple[float, float]:
        """The energy interval (eV) covered by *all* references."""
        return (max(float(e[0]) for e in self.energies), min(float(e[-1]) for e in self.energies))

    def on(
        self,
        energies: Sequence[float] | np.ndarray,
        *,
        energy_offset: float = 0.0,
        outside: Outside = "error",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Interpolate the references onto measured energies (linear interpolation).

        Parameters
        ----------
        energies
            Stack energies (eV), shape ``(n,)``.
        energy_offset
            Stack minus reference calibration (eV): reference values are taken at
            ``energies - energy_offset``.
        outside
            ``"error"`` (default): an energy outside a reference's range raises
            :class:`DataError` naming that reference's file. ``"restrict"``: such
            energies are dropped (see the returned ``keep``).

        Returns
        -------
        matrix, keep
            ``matrix`` ``(m, k)``: reference ``j`` at kept energy ``i``; ``keep`` ``(n,)``
            boolean, which stack energies are used (all of them with ``"error"``).
        """
        e = np.asarray(energies, dtype=np.float64) - float(energy_offset)
        keep = np.ones(e.shape, dtype=bool)
        for name, re_, src in zip(self.names, self.energies, self.sources, strict=True):
            inside = (e >= re_[0] - 1e-9) & (e <= re_[-1] + 1e-9)
            if outside == "error" and not np.all(inside):
                bad = np.asarray(energies)[~inside]
                raise DataError(
                    f"{bad.size} stack energies ({bad.min():.3f}–{bad.max():.3f} eV, with "
                    f"energy offset {energy_offset:+.3f} eV) lie outside reference {name!r}'s "
                    f"range {re_[0]:.3f}–{re_[-1]:.3f} eV",
                    where=src,
                    fix="use references that cover the stack, correct the energy offset, or "
                    "restrict the fit to the overlap (outside='restrict', CLI "
                    "--restrict-energies)",
                )
            if outside not in ("error", "restrict"):
                raise ParameterError(
                    f"outside={outside!r}",
                    where="ReferenceSpectra.on: outside",
                    fix="use 'error' or 'restrict'",
                )
            keep &= inside
        if not keep.any():
            raise DataError(
                f"no stack energy lies inside the references' common range "
                f"{self.range[0]:.3f}–{self.range[1]:.3f} eV (energy offset "
                f"{energy_offset:+.3f} eV)",
                where=", ".join(dict.fromkeys(self.sources)),
                fix="check the energy calibration and the reference files",
            )
        cols = [
            np.interp(e[keep], re_, rv) for re_, rv in zip(self.energies, self.values, strict=True)
        ]
        return np.stack(cols, axis=1), keep


def load_references(
    paths: Sequence[str | os.PathLike[str]],
    names: Sequence[str] | None = None,
) -> ReferenceSpectra:
    """Load reference spectra from two-column text files.

    Parameters
    ----------
    paths
        One file per reference; the first is the phase whose fraction ``X`` is reported
        (LiFePO4 / Fe(II)).
    names
        Names of the references; default the file names.

    Returns
    -------
    ReferenceSpectra
    """
    if len(paths) < 1:
        raise ParameterError(
            "no reference spectra given",
            where="references",
            fix="pass two files: the lithiated (Fe2+) then the delithiated (Fe3+) spectrum",
        )
    if names is not None and len(names) != len(paths):
        raise ParameterError(
            f"{len(names)} names for {len(paths)} reference files",
            where="references: names",
            fix="give one name per file",
        )
    es, vs = [], []
    for p in paths:
        e, v = read_spectrum(p)
        es.append(e)
        vs.append(v)
    return ReferenceSpectra(
        names=tuple(names) if names is not None else tuple(Path(p).name for p in paths),
        energies=tuple(es),
        values=tuple(vs),
        sources=tuple(os.fspath(p) for p in paths),
    )
