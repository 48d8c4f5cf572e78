"""Particle segmentation of colour videos by k-means in LAB colour space (seed 000 S2.3).

All RGB pixels of the spatiotemporal patch are converted to CIE LAB and clustered by k-means
(``k = 4``: background, blue, red, gold; a random subsample fits the centres, every pixel of
every frame is then assigned to the nearest one). Each cluster is named after the nearest
reference colour (:data:`REFERENCE_COLORS`; the lightness difference counts half, because
illumination varies more than hue); clusters named ``background`` are background. A pixel is
particle when it is non-background in at least ``min_fraction`` of the frames; holes are
filled, objects smaller than ``min_size`` pixels removed and the rest labelled as connected
components. Touching particles stay one object (the paper refines such agglomerates by hand
in napari: export the labels with :func:`~operando.modalities.optical.write_labels`, edit,
and pass them back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ...errors import DataError, ParameterError

__all__ = [
    "PHASES",
    "REFERENCE_COLORS",
    "Segmentation",
    "kmeans_lab",
    "name_clusters",
    "rgb_to_lab",
    "segment_particles",
]

#: Phase names in code order: 0 background, 1 blue (stage III), 2 red (stage II), 3 gold (I).
PHASES: tuple[str, ...] = ("background", "blue", "red", "gold")

#: Nominal sRGB colours (0..1) of background and the three graphite stages (seed 000 Fig. S9:
#: black/dark purple, blue, red-brown, gold); used only to *name* k-means clusters.
REFERENCE_COLORS: dict[str, tuple[float, float, float]] = {
    "background": (0.08, 0.06, 0.12),
    "blue": (0.20, 0.30, 0.70),
    "red": (0.60, 0.25, 0.20),
    "gold": (0.85, 0.70, 0.30),
}


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE LAB (D65) of sRGB values in [0, 1]; any shape ``(..., 3)``."""
    from skimage.color import rgb2lab

    a = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    return rgb2lab(a.reshape(-1, 1, 3)).reshape(a.shape)


def kmeans_lab(
    lab: np.ndarray, *, k: int = 4, seed: int = 0, max_samples: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """k-means on LAB pixels ``(n, 3)``; centres fitted on a seeded subsample.

    Returns
    -------
    centers, assignment
        ``(k, 3)`` cluster centres and ``(n,)`` int8 nearest-centre index of every pixel.
    """
    from sklearn.cluster import KMeans

    x = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
    if k < 2:
        raise ParameterError(f"k={k}", where="kmeans_lab: k", fix="use k >= 2 (paper: 4)")
    if x.shape[0] < k:
        raise DataError(
            f"{x.shape[0]} pixels cannot form {k} clusters",
            where="kmeans_lab",
            fix="check the mask / labels: too few particle pixels",
        )
    rng = np.random.default_rng(seed)
    sample = x if x.shape[0] <= max_samples else x[rng.choice(x.shape[0], max_samples, False)]
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(sample)
    centers = km.cluster_centers_
    assign = np.empty(x.shape[0], np.int8)
    for i in range(0, x.shape[0], 1_000_000):
        d = ((x[i : i + 1_000_000, None, :] - centers[None]) ** 2).sum(-1)
        assign[i : i + 1_000_000] = d.argmin(1)
    return centers, assign


def name_clusters(
    centers: np.ndarray,
    reference_colors: Mapping[str, tuple[float, float, float]] | None = None,
    *,
    lightness_weight: float = 0.5,
) -> np.ndarray:
    """Phase code (index into :data:`PHASES`) of each LAB cluster centre ``(k, 3)``.

    Each centre takes the phase of the nearest reference colour, with the L* difference
    scaled by ``lightness_weight``. Several clusters may share a phase.
    """
    ref = dict(REFERENCE_COLORS)
    ref.update(reference_colors or {})
    unknown = set(ref) - set(PHASES)
    if unknown:
        raise ParameterError(
            f"unknown phase colour(s) {sorted(unknown)}",
            where="reference_colors",
            fix=f"use the names {', '.join(PHASES)}",
        )
    ref_lab = rgb_to_lab(np.array([ref[p] for p in PHASES]))
    w = np.array([lightness_weight, 1.0, 1.0])
    d = (((np.asarray(centers)[:, None, :] - ref_lab[None]) * w) ** 2).sum(-1)
    return d.argmin(1).astype(np.int8)


@dataclass(frozen=True)
class Segmentation:
    """Particles found by :func:`segment_particles`.

    Attributes
    ----------
    labels
        ``(y, x)`` int32 particle labels 1..N (0: background).
    particle_fraction
        ``(y, x)`` fraction of frames in which each pixel was non-background.
    centers_lab
        ``(k, 3)`` k-means centres (LAB).
    cluster_phases
        ``(k,)`` phase code each cluster was named after.
    """

    labels: np.ndarray
    particle_fraction: np.ndarray
    centers_lab: np.ndarray
    cluster_phases: np.ndarray

    @property
    def n_particles(self) -> int:
        return int(self.labels.max())


def segment_particles(
    video: np.ndarray,
    *,
    k: int = 4,
    seed: int = 0,
    min_fraction: float = 0.5,
    min_size: int = 15,
    fill_holes: bool = True,
    reference_colors: Mapping[str, tuple[float, float, float]] | None = None,
    max_samples: int = 100_000,
) -> Segmentation:
    """Segment particles of a colour video ``(t, y, x, 3)`` by LAB k-means.

    Parameters
    ----------
    video
        RGB frames in [0, 1], aligned (drift-corrected).
    k
        Number of k-means clusters (paper: 4).
    seed
        Seed of the subsample and of k-means.
    min_fraction
        A pixel is particle when non-background in at least this fraction of frames.
    min_size
        Connected components smaller than this (pixels) are removed.
    fill_holes
        Fill enclosed background holes in particles.
    reference_colors
        Override of :data:`REFERENCE_COLORS` entries (sRGB in [0, 1]).
    max_samples
        Pixels used to fit the k-means centres.

    Returns
    -------
    Segmentation
    """
    from skimage.measure import label
    from skimage.morphology import remove_small_objects

    v = np.asarray(video, dtype=np.float64)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise DataError(f"shape {v.shape}", where="segment_particles", fix="pass (t, y, x, 3)")
    if not 0.0 < min_fraction <= 1.0:
        raise ParameterError(
            f"min_fraction={min_fraction}", where="segment_particles", fix="use (0, 1]"
        )
    lab = rgb_to_lab(v)
    centers, assign = kmeans_lab(lab.reshape(-1, 3), k=k, seed=seed, max_samples=max_samples)
    names = name_clusters(centers, reference_colors)
    particle = (names[assign] != 0).reshape(v.shape[:3])
    frac = particle.mean(axis=0)
    mask = frac >= min_fraction
    if fill_holes:
        mask = ndi.binary_fill_holes(mask)
    if min_size > 1:
        mask = remove_small_objects(mask, max_size=min_size - 1)
    labels = label(mask, connectivity=1).astype(np.int32)
    return Segmentation(labels, frac, centers, names)
