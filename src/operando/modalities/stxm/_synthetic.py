"""Synthetic STXM: composition maps rendered into multi-energy transmission stacks.

Forward model (Beer–Lambert, two phases; ``delta`` the energy offset)::

    OD(E, y, x) = h(y, x) [ X(y, x) R_1(E - delta) + (1 - X(y, x)) R_2(E - delta) ] + OD_bg
    I(E, y, x)  = Poisson( I0(E) exp(-OD(E, y, x)) )  [+ scan-line noise]

``h`` is the amount of iron along the beam (0 outside the particle), ``R_j`` the reference
spectra (OD per unit amount), ``OD_bg`` a constant background (support membrane). The
result is an operando energy stack of counts with the ground truth attached
(:func:`operando.data.attach_truth`): ``truth_images`` are the noise-free counts, and the
dataset carries the variables ``truth_composition`` (``X``, NaN outside the particle),
``truth_thickness`` (``h``) and ``i0`` (``I0(E)``), plus ``masks`` (the particle).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import xarray as xr

from ... import noise as noise_mod
from ...data import attach_truth, energy_stack
from ...errors import DataError, ParameterError
from ._spectra import ReferenceSpectra

__all__ = ["model_references", "synthetic_particle", "synthetic_stxm"]


def _gauss(e: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((e - centre) / width) ** 2)


def _step(e: np.ndarray, centre: float, width: float) -> np.ndarray:
    return 0.5 + np.arctan((e - centre) / width) / np.pi


def model_references(energies: Any | None = None) -> ReferenceSpectra:
    """Analytic LiFePO4-like and FePO4-like Fe L-edge spectra (not measured data).

    A constant non-resonant absorption (0.25, the pre-edge level that makes the pre-edge
    OD a thickness proxy), Gaussian lines and an arctangent edge step: the Fe2+ (LFP) L3
    line at 706.3 eV with a shoulder at 708.3 eV, the Fe3+ (FP) L3 line at 709.2 eV with a
    pre-peak at 707.2 eV and a high-energy shoulder at 712.3 eV, and L2 lines near
    720–722 eV. Pre-edge normalised values (703 eV) at 706/713 eV are (0.63, 0.11) for LFP
    and (0.02, 0.49) for FP, qualitatively like seed 000 S2.2's (0.64, 0.11) and
    (0.05, 0.60). For tests and planning when no measured references are at hand.

    Parameters
    ----------
    energies
        Grid (eV); default 695–735 eV in 0.1 eV steps.

    Returns
    -------
    ReferenceSpectra
        Names ``("LFP", "FP")``, source ``"synthetic"``.
    """
    e = np.arange(695.0, 735.0 + 1e-9, 0.1) if energies is None else np.asarray(energies, float)
    lfp = (
        0.70 * _gauss(e, 706.3, 0.55)
        + 0.30 * _gauss(e, 708.3, 0.8)
        + 0.12 * _step(e, 707.0, 0.8)
        + 0.25 * _gauss(e, 720.3, 1.0)
        + 0.25
    )
    fp = (
        0.12 * _gauss(e, 707.2, 0.6)
        + 0.90 * _gauss(e, 709.2, 0.9)
        + 0.45 * _gauss(e, 712.3, 1.2)
        + 0.12 * _step(e, 708.5, 0.8)
        + 0.30 * _gauss(e, 722.0, 1.1)
        + 0.25
    )
    return ReferenceSpectra.from_arrays(e, [lfp, fp], ("LFP", "FP"), source="synthetic")


def synthetic_particle(
    shape: tuple[int, int] = (48, 64),
    *,
    low: float = 0.2,
    high: float = 0.8,
    thickness: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An elliptical particle with a smooth composition field and a domed thickness.

    Parameters
    ----------
    shape
        ``(ny, nx)`` image size.
    low, high
        Range of the composition ``X`` inside the particle (a smooth front across it).
    thickness
        Peak amount ``h`` (OD units per unit reference) at the particle centre.

    Returns
    -------
    composition, mask, h
        ``X`` ``(y, x)`` (NaN outside), boolean mask, thickness map (0 outside).
    """
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    ay, ax = 0.38 * ny, 0.40 * nx
    r2 = ((y - cy) / ay) ** 2 + ((x - cx) / ax) ** 2
    mask = r2 <= 1.0
    front = 0.5 + 0.5 * np.tanh((x - cx) / (0.25 * ax) + 0.3 * np.sin(y / ny * 2 * np.pi))
    comp = np.where(mask, low + (high - low) * front, np.nan)
    h = np.where(mask, thickness * np.sqrt(np.clip(1.0 - 0.8 * r2, 0.0, None)), 0.0)
    return comp, mask, h


def synthetic_stxm(
    key: jax.Array,
    composition: Any,
    references: ReferenceSpectra,
    energies: Any,
    *,
    mask: Any | None = None,
    thickness: Any = 1.0,
    i0: Any = 1.0e4,
    background_od: float = 0.05,
    energy_offset: float = 0.0,
    poisson: bool = True,
    scanline: tuple[float, float] | None = None,
    pixel_size: float = 40.0,
    pixel_unit: str = "nm",
) -> xr.Dataset:
    """Render a composition map into a noisy multi-energy STXM transmission stack.

    Parameters
    ----------
    key
        JAX PRNG key for the noise.
    composition
        ``X`` ``(y, x)`` in ``[0, 1]`` (fraction of the first reference); NaN allowed
        outside the mask.
    references
        Two reference spectra (first: lithiated / Fe2+).
    energies
        Stack energies (eV), strictly increasing, inside the references' range after the
        offset.
    mask
        Particle mask ``(y, x)``; default: where ``composition`` is finite.
    thickness
        Amount ``h`` ``(y, x)`` or scalar (set to 0 outside the mask).
    i0
        Incident counts, scalar or ``(energy,)``.
    background_od
        Constant OD everywhere (support membrane).
    energy_offset
        Stack minus reference calibration (eV) the data are rendered with.
    poisson
        Add shot noise to the counts.
    scanline
        ``(sigma, length)``: add horizontally correlated raster-scan noise
        (:func:`operando.noise.scanline`, ``sigma`` relative to each plane's std).
    pixel_size, pixel_unit
        Physical pixel size.

    Returns
    -------
    xarray.Dataset
        Energy stack of counts with ``masks``, ``i0``, ``truth_composition``,
        ``truth_thickness``, ``truth_images`` (clean counts) and ``truth_parameters``.
    """
    if len(references.names) != 2:
        raise ParameterError(
            f"{len(references.names)} references; synthetic_stxm renders two phases",
            where="synthetic_stxm: references",
            fix="pass two reference spectra",
        )
    x = np.asarray(composition, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(
            f"composition has shape {x.shape}",
            where="synthetic_stxm: composition",
            fix="pass a 2D map X(y, x)",
        )
    m = np.isfinite(x) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != x.shape or not m.any():
        raise DataError(
            "mask is empty or differs in shape from the composition",
            where="synthetic_stxm: mask",
            fix="pass a non-empty (y, x) mask",
        )
    xv = np.where(m, x, 0.0)
    if not np.all(np.isfinite(xv)) or xv.min() < 0 or xv.max() > 1:
        raise DataError(
            "composition inside the mask must be finite and within [0, 1]",
            where="synthetic_stxm: composition",
            fix="clip X to [0, 1]",
        )
    e = np.asarray(energies, dtype=np.float64)
    r, _ = references.on(e, energy_offset=energy_offset)  # (n, 2)
    h = np.where(m, np.broadcast_to(np.asarray(thickness, dtype=np.float64), x.shape), 0.0)
    i0v = np.broadcast_to(np.asarray(i0, dtype=np.float64), e.shape).copy()
    od = (
        h[None] * (xv[None] * r[:, 0, None, None] + (1.0 - xv[None]) * r[:, 1, None, None])
        + background_od
    )
    clean = i0v[:, None, None] * np.exp(-od)
    k_p, k_s = jax.random.split(key)
    noisy = clean
    if poisson:
        noisy = np.asarray(noise_mod.poisson(k_p, noisy, 1.0, clip=None))
    if scanline is not None:
        sigma, length = scanline
        noisy = np.asarray(noise_mod.scanline(k_s, noisy, sigma, length, clip=None))
    noisy = np.maximum(noisy, 0.0)
    ds = energy_stack(noisy, e, pixel_size=pixel_size, pixel_unit=pixel_unit, masks=m)
    ds["i0"] = ("energy", i0v)
    ds["truth_composition"] = (("y", "x"), np.where(m, xv, np.nan))
    ds["truth_thickness"] = (("y", "x"), h)
    params = {
        "model": "OD = h [X R1(E - delta) + (1 - X) R2(E - delta)] + OD_bg; I = I0 exp(-OD)",
        "references": list(references.names),
        "energy_offset": float(energy_offset),
        "background_od": float(background_od),
        "i0_mean": float(i0v.mean()),
        "poisson": bool(poisson),
        "scanline": None if scanline is None else [float(scanline[0]), float(scanline[1])],
        "composition_mean": float(xv[m].mean()),
    }
    return attach_truth(ds, clean=clean, parameters=params)
