"""Optical density, incident intensity, particle segmentation, cropping and thickness.

Arrays are ``(energy, y, x)`` stacks (planes, rows, columns) of transmitted intensity ``I``
or optical density ``OD``; kernels here are pure NumPy/SciPy functions of arrays (no files,
no printing).

Optical density (Beer–Lambert)::

    OD(E, y, x) = -ln( I(E, y, x) / I0(E) )

with ``I0`` the incident intensity: either a measured spectrum interpolated onto the stack
energies (:func:`interpolate_i0`) or, as in seed 000 S2.2, estimated per energy as the
median intensity of the background pixels selected by Otsu thresholding of the mean image
(:func:`estimate_i0_otsu`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ...errors import DataError, ParameterError

__all__ = [
    "ParticleCrop",
    "crop_particles",
    "estimate_i0_otsu",
    "interpolate_i0",
    "optical_density",
    "segment_particles",
    "thickness_proxy",
]

#: Smallest transmission I/I0 used in -ln(I/I0) (larger OD is clipped to -ln of this, 13.8).
MIN_TRANSMISSION = 1e-6


def _stack(images: Any, where: str) -> np.ndarray:
    a = np.asarray(images)
    if a.dtype.kind not in "biuf":
        raise DataError(
            f"images have dtype {a.dtype}; expected real numbers",
            where=where,
            fix="pass intensities (for complex ptychography use |T|**2)",
        )
    a = a.astype(np.float64, copy=False)
    if a.ndim != 3 or any(n == 0 for n in a.shape):
        raise DataError(
            f"images have shape {a.shape}; expected a non-empty (energy, y, x) stack",
            where=where,
            fix="pass one image per energy stacked along the first axis",
        )
    bad = int(a.size - np.count_nonzero(np.isfinite(a)))
    if bad:
        raise DataError(
            f"images contain {bad} NaN/inf value(s)",
            where=where,
            fix="replace or mask the non-finite pixels first",
        )
    return a


def interpolate_i0(
    i0_energies: Any,
    i0_values: Any,
    energies: Any,
    *,
    source: str = "i0",
    tolerance: float = 0.05,
) -> np.ndarray:
    """Interpolate a measured I0 spectrum onto the stack energies (linear).

    Parameters
    ----------
    i0_energies, i0_values
        The I0 spectrum (eV, counts), energies strictly increasing.
    energies
        Stack energies (eV), shape ``(n,)``.
    source
        Name of the spectrum (its file) for error messages.
    tolerance
        How far (eV) a stack energy may lie outside the I0 range; such energies take the
        end value.

    Returns
    -------
    numpy.ndarray
        I0 at every stack energy, shape ``(n,)``.

    Raises
    ------
    DataError
        Stack energies outside the I0 range (beyond ``tolerance``) or non-positive I0.
    """
    e0 = np.asarray(i0_energies, dtype=np.float64)
    v0 = np.asarray(i0_values, dtype=np.float64)
    e = np.asarray(energies, dtype=np.float64)
    out = (e < e0[0] - tolerance) | (e > e0[-1] + tolerance)
    if out.any():
        raise DataError(
            f"{int(out.sum())} stack energies ({e[out].min():.3f}–{e[out].max():.3f} eV) lie "
            f"outside the I0 spectrum's range {e0[0]:.3f}–{e0[-1]:.3f} eV",
            where=source,
            fix="use the I0 spectrum recorded for this stack, or estimate I0 from the "
            "background (omit --i0)",
        )
    i0 = np.interp(e, e0, v0)
    if np.any(i0 <= 0):
        raise DataError(
            "I0 is zero or negative at some stack energies",
            where=source,
            fix="check the I0 spectrum (counts must be positive)",
        )
    return i0


def estimate_i0_otsu(images: Any) -> tuple[np.ndarray, np.ndarray]:
    """Estimate I0 per energy from the background selected by Otsu thresholding.

    The mean image over energies is thresholded with Otsu's method; the brighter class
    (high transmission: no particle) is the background and ``I0(E)`` is the median of
    ``I(E)`` over it (robust to a few particle pixels on the wrong side).

    Parameters
    ----------
    images
        Transmitted intensity ``(energy, y, x)``, finite.

    Returns
    -------
    i0, background
        ``i0`` shape ``(energy,)``; ``background`` boolean ``(y, x)``.
    """
    from skimage.filters import threshold_otsu

    a = _stack(images, "estimate_i0_otsu: images")
    mean = a.mean(axis=0)
    if np.ptp(mean) == 0:
        raise DataError(
            "the mean image is constant; background and particles cannot be told apart",
            where="estimate_i0_otsu: images",
            fix="pass a measured I0 spectrum instead",
        )
    background = mean > threshold_otsu(mean)
    i0 = np.median(a[:, background], axis=1)
    if np.any(i0 <= 0):
        raise DataError(
            "the background intensity is zero or negative at some energies",
            where="estimate_i0_otsu: images",
            fix="pass a measured I0 spectrum instead",
        )
    return i0, background


def optical_density(images: Any, i0: Any) -> np.ndarray:
    """Optical density ``OD = -ln(I / I0)`` of an energy stack.

    Parameters
    ----------
    images
        Transmitted intensity ``(energy, y, x)``, finite.
    i0
        Incident intensity: a scalar, shape ``(energy,)`` (one value per energy) or the
        full shape of ``images``.

    Returns
    -------
    numpy.ndarray
        OD, same shape as ``images``. Transmissions below :data:`MIN_TRANSMISSION` (and
        non-positive counts) are clipped to it, so OD is finite (at most 13.8).
    """
    a = _stack(images, "optical_density: images")
    i0a = np.asarray(i0, dtype=np.float64)
    if i0a.ndim == 1:
        if i0a.shape[0] != a.shape[0]:
            raise DataError(
                f"I0 has {i0a.shape[0]} values for {a.shape[0]} energies",
                where="optical_density: i0",
                fix="give one I0 value per energy (interpolate the I0 spectrum first)",
            )
        i0a = i0a[:, None, None]
    elif i0a.ndim not in (0, 3):
        raise DataError(
            f"I0 has shape {i0a.shape}",
            where="optical_density: i0",
            fix="pass a scalar, one value per energy, or an array shaped like the images",
        )
    if not np.all(np.isfinite(i0a)) or np.any(i0a <= 0):
        raise DataError(
            "I0 has non-positive or non-finite values",
            where="optical_density: i0",
            fix="I0 must be positive counts",
        )
    t = np.maximum(a / i0a, MIN_TRANSMISSION)
    return -np.log(t)


def segment_particles(
    image: Any,
    *,
    min_size: int = 20,
    threshold: float | None = None,
    connectivity: int = 2,
) -> tuple[np.ndarray, float]:
    """Segment particles: Otsu threshold, connected components, small ones dropped.

    Parameters
    ----------
    image
        A 2D image where particles are bright, e.g. the mean OD over energies, or an OD
        stack ``(energy, y, x)`` (then its mean over energies is used).
    min_size
        Components with fewer pixels are discarded (noise, dust).
    threshold
        Threshold on ``image``; default Otsu's.
    connectivity
        1: 4-connected, 2: 8-connected components.

    Returns
    -------
    masks, threshold
        ``masks`` boolean ``(particle, y, x)``, largest particle first (possibly zero
        particles); the threshold used.
    """
    from skimage.filters import threshold_otsu

    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3:
        img = img.mean(axis=0)
    if img.ndim != 2 or not np.all(np.isfinite(img)):
        raise DataError(
            f"image has shape {img.shape} or non-finite values",
            where="segment_particles: image",
            fix="pass a finite 2D image (y, x) or an (energy, y, x) stack",
        )
    if min_size < 1:
        raise ParameterError(
            f"min_size={min_size}", where="segment_particles: min_size", fix="use min_size >= 1"
        )
    thr = float(threshold_otsu(img)) if threshold is None else float(threshold)
    structure = ndi.generate_binary_structure(2, connectivity)
    labels, n = ndi.label(img > thr, structure=structure)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    keep = [i + 1 for i in np.argsort(-sizes, kind="stable") if sizes[i] >= min_size]
    masks = np.stack([labels == k for k in keep]) if keep else np.zeros((0, *img.shape), bool)
    return masks, thr


@dataclass(frozen=True)
class ParticleCrop:
    """One particle cut out of a stack: its bounding box, images and mask.

    Attributes
    ----------
    index
        Particle number (position in the masks array).
    box
        ``(y0, y1, x0, x1)``: rows ``y0:y1`` and columns ``x0:x1`` of the full image.
    images
        The stack cropped to the box, ``(..., y1 - y0, x1 - x0)``.
    mask
        The particle's mask cropped to the box, ``(y1 - y0, x1 - x0)``.
    """

    index: int
    box: tuple[int, int, int, int]
    images: np.ndarray
    mask: np.ndarray


def crop_particles(images: Any, masks: Any, *, pad: int = 2) -> list[ParticleCrop]:
    """Crop a stack to each particle's bounding box (plus ``pad`` pixels, inside the image).

    Parameters
    ----------
    images
        ``(..., y, x)`` stack.
    masks
        Boolean ``(particle, y, x)`` masks (or one ``(y, x)`` mask).
    pad
        Margin (pixels) around the bounding box, clipped at the image border.

    Returns
    -------
    list of ParticleCrop
    """
    a = np.asarray(images)
    m = np.asarray(masks, dtype=bool)
    if m.ndim == 2:
        m = m[None]
    if m.shape[-2:] != a.shape[-2:]:
        raise DataError(
            f"masks {m.shape[-2:]} and images {a.shape[-2:]} differ in (y, x)",
            where="crop_particles",
            fix="segment the same images you crop",
        )
    out = []
    ny, nx = a.shape[-2:]
    for i, mi in enumerate(m):
        rows = np.flatnonzero(mi.any(axis=1))
        cols = np.flatnonzero(mi.any(axis=0))
        if rows.size == 0:
            raise DataError(
                f"mask of particle {i} is empty", where="crop_particles: masks", fix="drop it"
            )
        y0, y1 = max(rows[0] - pad, 0), min(rows[-1] + 1 + pad, ny)
        x0, x1 = max(cols[0] - pad, 0), min(cols[-1] + 1 + pad, nx)
        out.append(
            ParticleCrop(
                index=i,
                box=(int(y0), int(y1), int(x0), int(x1)),
                images=a[..., y0:y1, x0:x1].copy(),
                mask=mi[y0:y1, x0:x1].copy(),
            )
        )
    return out


def thickness_proxy(
    od: Any,
    energies: Any,
    *,
    energy: float | None = None,
    background: float = 0.0,
) -> np.ndarray:
    """Thickness proxy ``h(y, x) ∝ OD(E_pre, y, x) - background``.

    Below the absorption edge the OD is non-resonant, ``OD = mu_pre * rho * h``, so it is
    proportional to the local thickness ``h`` whatever the composition (seed 002 uses it
    to turn a rate constant ``k(x, y)`` into a flux ``j_s = k h``).

    Parameters
    ----------
    od
        Optical density ``(energy, y, x)``.
    energies
        Stack energies (eV), shape ``(energy,)``.
    energy
        Pre-edge (non-resonant) energy (eV); the OD is linearly interpolated between the
        neighbouring planes. Default: the lowest energy of the stack.
    background
        OD of the empty background (support film, detector offset), subtracted.

    Returns
    -------
    numpy.ndarray
        ``(y, x)`` map in OD units (multiply by ``1 / (mu_pre rho)`` for a length).
    """
    a = np.asarray(od, dtype=np.float64)
    e = np.asarray(energies, dtype=np.float64)
    if a.ndim != 3 or e.shape != (a.shape[0],):
        raise DataError(
            f"OD has shape {a.shape} and energies {e.shape}",
            where="thickness_proxy",
            fix="pass an (energy, y, x) stack and its energies",
        )
    if energy is None:
        return a[0] - background
    return interpolate_planes(a, e, float(energy), where="thickness_proxy: energy") - background


def interpolate_planes(
    stack: np.ndarray, energies: np.ndarray, energy: float, *, where: str
) -> np.ndarray:
    """Linear interpolation of a ``(energy, ...)`` stack at one energy inside its range."""
    if not (energies[0] - 1e-9 <= energy <= energies[-1] + 1e-9):
        raise ParameterError(
            f"energy {energy:.3f} eV is outside the stack's range "
            f"{energies[0]:.3f}–{energies[-1]:.3f} eV",
            where=where,
            fix="choose an energy inside the measured range (or set the energy offset)",
        )
    if energies.size == 1:
        return stack[0]
    j = int(np.clip(np.searchsorted(energies, energy), 1, energies.size - 1))
    e0, e1 = energies[j - 1], energies[j]
    w = (energy - e0) / (e1 - e0)
    return (1 - w) * stack[j - 1] + w * stack[j]
