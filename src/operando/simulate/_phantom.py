"""Synthetic SiO_x-like tomography phantoms with low/high-quality scans and known truth.

Ground truth for the InDI enhancement workflow (seed 001): dark SiO_x-like particles
(ellipsoids of random size and orientation, soft one-voxel partial-volume edges, a little
internal texture) in a lighter, slightly textured matrix, on a fine grid of ``voxel_size``
(the high-quality voxel, 50 nm by default). Grey values: matrix about 0.65, particles
about 0.30 (arbitrary units).

:func:`degrade_volume` is the measurement model: Gaussian blur (point-spread function),
optional x2 down-sampling by 2x2x2 block averaging (the low-quality voxel), optional ring
artefacts (concentric rings about the rotation axis, constant along ``z``) and additive
Gaussian noise. :func:`simulate_enhancement_pair` builds the paired scans of seed 001: a
low-quality scan of the whole field of view at twice the voxel size, and a high-quality
scan of the central eighth of the volume (half the side in every direction), slightly
misaligned by a known sub-voxel shift. ``insitu=True`` makes the "unseen in-situ" sample:
another seed, particles grown by ``growth`` and cracked, and dense dark spots (new phases).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..errors import ParameterError

__all__ = [
    "EnhancementPair",
    "Phantom",
    "degrade_volume",
    "simulate_enhancement_pair",
    "sio_phantom",
]

MATRIX = 0.65
PARTICLE = 0.30
DENSE = 0.12


@dataclass(frozen=True)
class Phantom:
    """A truth volume ``(z, y, x)`` and its particle mask (voxels at least half particle)."""

    truth: np.ndarray
    mask: np.ndarray
    voxel_size: float
    info: dict[str, Any] = field(default_factory=dict)


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    a, b, c, d = q
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
        ]
    )


def sio_phantom(
    shape: tuple[int, int, int] = (64, 192, 192),
    *,
    seed: int = 0,
    volume_fraction: float = 0.25,
    radius: tuple[float, float] = (4.0, 10.0),
    voxel_size: float = 50.0,
    growth: float = 0.0,
    crack_fraction: float = 0.0,
    dense_spots: int = 0,
) -> Phantom:
    """A 3D phantom of SiO_x-like particles in a matrix.

    Parameters
    ----------
    shape
        ``(z, y, x)`` voxels of the fine grid.
    seed
        Random seed (positions, sizes, orientations, texture).
    volume_fraction
        Target particle volume fraction (particles are placed until it is reached).
    radius
        Range of the ellipsoids' mean semi-axis, in voxels.
    voxel_size
        Voxel side in nm (recorded; the phantom itself is in voxels).
    growth
        Relative growth of every semi-axis (e.g. 0.15 for lithiation swelling).
    crack_fraction
        Fraction of particles cut by a planar crack (a 1.5-voxel slab of matrix value).
    dense_spots
        Number of small dense dark inclusions (new phases) placed inside particles.
    """
    if len(shape) != 3 or min(shape) < 8:
        raise ParameterError(
            f"shape {shape} must be three sides of at least 8 voxels", where="sio_phantom: shape"
        )
    if not (0 < radius[0] <= radius[1]):
        raise ParameterError(f"radius {radius} is not a range", where="sio_phantom: radius")
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    occ = np.zeros(shape)
    crack = np.zeros(shape, dtype=bool)
    total = nz * ny * nx
    centres: list[np.ndarray] = []
    radii: list[float] = []
    placed = 0.0
    tries = 0
    while placed < volume_fraction * total and tries < 5000:
        tries += 1
        r = rng.uniform(*radius)
        c = rng.uniform([0, 0, 0], [nz, ny, nx])
        if any(
            np.linalg.norm(c - c2) < 0.9 * (r + r2) for c2, r2 in zip(centres, radii, strict=True)
        ):
            continue
        axes = r * rng.uniform(0.75, 1.25, 3) * (1 + growth)
        rot = _rotation(rng)
        ext = int(np.ceil(axes.max())) + 2
        lo = np.maximum(np.floor(c).astype(int) - ext, 0)
        hi = np.minimum(np.floor(c).astype(int) + ext + 1, shape)
        if np.any(hi <= lo):
            continue
        zz, yy, xx = np.meshgrid(
            *(np.arange(a, b) + 0.5 for a, b in zip(lo, hi, strict=True)), indexing="ij"
        )
        d = np.stack([zz - c[0], yy - c[1], xx - c[2]], axis=-1) @ rot
        q = np.sqrt(((d / axes) ** 2).sum(-1))
        sd = (q - 1.0) * axes.min()  # approximate signed distance (voxels)
        o = np.clip(0.5 - sd, 0.0, 1.0)
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        occ[sl] = np.maximum(occ[sl], o)
        if rng.uniform() < crack_fraction:
            n = rng.normal(size=3)
            n /= np.linalg.norm(n)
            off = rng.uniform(-0.3, 0.3) * axes.min()
            dist = np.abs(np.stack([zz - c[0], yy - c[1], xx - c[2]], axis=-1) @ n - off)
            crack[sl] |= (dist < 0.75) & (q < 1.0)
        centres.append(c)
        radii.append(r * (1 + growth))
        placed += o.sum()
    tex = ndi.gaussian_filter(rng.normal(size=shape), 2.0)
    tex /= tex.std() + 1e-12
    truth = MATRIX + 0.02 * tex + (PARTICLE - MATRIX) * occ
    truth = np.where(crack, MATRIX, truth)
    mask = (occ >= 0.5) & ~crack
    if dense_spots:
        idx = np.argwhere(occ > 0.99)
        for k in rng.choice(len(idx), size=min(dense_spots, len(idx)), replace=False):
            c = idx[k] + 0.5
            r = rng.uniform(1.5, 3.0)
            lo = np.maximum(np.floor(c - r - 1).astype(int), 0)
            hi = np.minimum(np.ceil(c + r + 1).astype(int), shape)
            zz, yy, xx = np.meshgrid(
                *(np.arange(a, b) + 0.5 for a, b in zip(lo, hi, strict=True)), indexing="ij"
            )
            dd = np.sqrt((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2)
            o = (
                np.clip(r + 0.5 - dd, 0.0, 1.0)
                * occ[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
            )
            sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
            truth[sl] = truth[sl] + (DENSE - PARTICLE) * o
    info = {
        "seed": seed,
        "n_particles": len(centres),
        "volume_fraction": float(occ.mean()),
        "growth": growth,
        "crack_fraction": crack_fraction,
        "dense_spots": dense_spots,
    }
    return Phantom(truth=truth, mask=mask, voxel_size=float(voxel_size), info=info)


def _rings(shape: tuple[int, int, int], amplitude: float, rng: np.random.Generator) -> np.ndarray:
    _, ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    r = np.hypot(yy - (ny - 1) / 2, xx - (nx - 1) / 2)
    nr = int(np.ceil(r.max())) + 2
    prof = rng.normal(size=nr) * (rng.uniform(size=nr) < 0.25)
    ring = np.interp(r, np.arange(nr), prof)
    return np.broadcast_to(amplitude * ring, shape)


def degrade_volume(
    truth: np.ndarray,
    *,
    blur: float,
    downsample: bool = False,
    noise: float = 0.0,
    rings: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """The measurement model: blur, optional x2 down-sampling, rings and noise.

    Parameters
    ----------
    truth
        Truth volume ``(z, y, x)`` on the fine grid (even sides when ``downsample``).
    blur
        Standard deviation of the Gaussian point-spread function, in fine voxels.
    downsample
        Average 2x2x2 blocks (a detector/reconstruction voxel twice as large).
    noise
        Standard deviation of additive Gaussian noise (grey-value units).
    rings
        Amplitude of ring artefacts (0: none).
    seed
        Random seed of noise and rings.
    """
    v = np.asarray(truth, dtype=np.float64)
    if v.ndim != 3:
        raise ParameterError(
            f"truth has shape {v.shape}; expected (z, y, x)", where="degrade_volume"
        )
    rng = np.random.default_rng(seed)
    if blur > 0:
        v = ndi.gaussian_filter(v, blur, mode="reflect")
    if downsample:
        if any(s % 2 for s in v.shape):
            raise ParameterError(
                f"shape {v.shape} has odd sides; cannot down-sample by 2", where="degrade_volume"
            )
        z, y, x = v.shape
        v = v.reshape(z // 2, 2, y // 2, 2, x // 2, 2).mean(axis=(1, 3, 5))
    if rings > 0:
        v = v + _rings(v.shape, rings, rng)
    if noise > 0:
        v = v + noise * rng.normal(size=v.shape)
    return v


@dataclass(frozen=True)
class EnhancementPair:
    """Paired scans of one phantom (see :func:`simulate_enhancement_pair`).

    Attributes
    ----------
    lq
        Low-quality scan of the whole field of view ``(z, y, x)``, voxel ``2 * voxel_size``.
    hq
        High-quality scan of the central field of view, voxel ``voxel_size``; ``None`` for
        an in-situ sample without a high-quality scan.
    hq_offset
        Position of the high-quality field of view in the low-quality scan (LQ voxels).
    shift
        The known misalignment applied to the high-quality scan (fine voxels, z/y/x).
    phantom
        Truth on the fine grid over the whole field of view (with its particle mask).
    hq_full
        A high-quality scan of the *whole* field of view (only available in simulation;
        the reference for metrics on unseen data).
    """

    lq: np.ndarray
    hq: np.ndarray | None
    hq_offset: tuple[int, int, int]
    shift: tuple[float, float, float]
    phantom: Phantom
    hq_full: np.ndarray
    lq_voxel: float
    hq_voxel: float
    settings: dict[str, Any] = field(default_factory=dict)


def simulate_enhancement_pair(
    lq_shape: tuple[int, int, int] = (32, 96, 96),
    *,
    seed: int = 0,
    insitu: bool = False,
    hq_blur: float = 1.2,
    lq_blur: float = 2.5,
    hq_noise: float = 0.05,
    lq_noise: float = 0.10,
    rings: float = 0.04,
    shift: tuple[float, float, float] = (0.5, 0.75, -0.5),
    voxel_size: float = 50.0,
) -> EnhancementPair:
    """Low/high-quality scans of a phantom, as in seed 001's training measurement.

    The fine truth grid is ``2 * lq_shape``; the low-quality scan covers all of it at
    twice the voxel size; the high-quality scan covers the central half in every direction
    (an eighth of the volume, as in the paper) on the fine grid, so both arrays have the
    shape ``lq_shape``. ``insitu=True`` returns the unseen in-situ sample (seed + 1000,
    grown by 15 %, half the particles cracked, dense spots, and no ``hq``).
    """
    if any(s % 2 for s in lq_shape):
        raise ParameterError(
            f"lq_shape {lq_shape} must have even sides", where="simulate_enhancement_pair"
        )
    fine = tuple(2 * s for s in lq_shape)
    if insitu:
        ph = sio_phantom(
            fine,
            seed=seed + 1000,
            voxel_size=voxel_size,
            growth=0.15,
            crack_fraction=0.5,
            dense_spots=max(4, fine[0] // 4),
        )
    else:
        ph = sio_phantom(fine, seed=seed, voxel_size=voxel_size)
    lq = degrade_volume(
        ph.truth, blur=lq_blur, downsample=True, noise=lq_noise, rings=rings, seed=seed + 1
    )
    hq_full = degrade_volume(ph.truth, blur=hq_blur, noise=hq_noise, seed=seed + 2)
    off = tuple(s // 4 for s in fine)  # fine-grid corner of the central FOV
    sl = tuple(slice(o, o + s) for o, s in zip(off, lq_shape, strict=True))
    hq = None
    if not insitu:
        moved = ndi.shift(ph.truth, shift, order=3, mode="nearest")
        hq = degrade_volume(moved[sl], blur=hq_blur, noise=hq_noise, seed=seed + 3)
    return EnhancementPair(
        lq=lq,
        hq=hq,
        hq_offset=tuple(o // 2 for o in off),
        shift=tuple(float(s) for s in shift),
        phantom=ph,
        hq_full=hq_full,
        lq_voxel=2 * voxel_size,
        hq_voxel=voxel_size,
        settings={
            "hq_blur": hq_blur,
            "lq_blur": lq_blur,
            "hq_noise": hq_noise,
            "lq_noise": lq_noise,
            "rings": rings,
            "insitu": insitu,
            "seed": seed,
        },
    )
