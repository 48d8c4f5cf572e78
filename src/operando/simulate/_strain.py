r"""Synthetic chemo-mechanics ground truth: composition, eigenstrain law, strain maps.

Each synthetic particle has a phase-separated composition field :math:`X(x)` with a
prescribed interface (``X = X_lo + (X_hi - X_lo)(1 + tanh(2 s / w))/2``, ``s`` the signed
distance to the interface line and ``w`` its width, ~120 nm as measured in seed 003
Fig. 2b-c), an eigenstrain law :math:`f(X)` (linear Vegard, or a nonlinear variant), an
optional plastic slip field :math:`\gamma(x)` of the [001](100) edge-dislocation system,
and the lattice (4D-STEM) strain it produces under zero-traction equilibrium
(:class:`operando.physics.ElasticParticle`):

.. math::

    \varepsilon_{lat} = \varepsilon(u) - \varepsilon^p, \qquad
    \nabla\cdot C:(\varepsilon(u) - f(X) - \varepsilon^p) = 0, \qquad
    \varepsilon^p_{ac} = \gamma/2,

plus Gaussian noise at 4D-STEM precision (default 1e-3 strain). The c axis is along the
rows (y), the a axis along the columns (x); strains are ``(rows, cols, 3)`` with
components (aa, cc, ac) (tensor shear). The reference state is FePO4 (``f(0) = 0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.ndimage as ndi

from ..errors import ParameterError
from ..physics._elasticity import LFP_MISFIT, ElasticParticle, lfp_stiffness

__all__ = ["StrainParticle", "particle_mask", "simulate_strain", "vegard_law"]


def vegard_law(
    x: np.ndarray, kind: Literal["linear", "nonlinear"] = "linear", bow: float = 0.01
) -> np.ndarray:
    """Eigenstrain law ``f(X)`` ``(..., 3)`` (aa, cc, ac) relative to FePO4.

    ``"linear"``: Vegard, ``f = X (0.05, -0.025, 0)`` (:data:`operando.physics.LFP_MISFIT`).
    ``"nonlinear"``: adds a bowing term ``bow X (1 - X)`` along a and ``-bow/2 X (1 - X)``
    along c.
    """
    x = np.asarray(x, dtype=float)
    f = np.stack([LFP_MISFIT[0] * x, LFP_MISFIT[2] * x, 0.0 * x], axis=-1)
    if kind == "nonlinear":
        b = x * (1 - x)
        f = f + np.stack([bow * b, -0.5 * bow * b, 0.0 * b], axis=-1)
    elif kind != "linear":
        raise ParameterError(f"law {kind!r}", where="vegard_law", fix="linear|nonlinear")
    return f


def particle_mask(
    shape: tuple[int, int], kind: Literal["ellipse", "diamond"] = "ellipse", fill: float = 0.9
) -> np.ndarray:
    """A convex particle mask centred in ``shape`` (long axis along rows = c)."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    u = (yy - (h - 1) / 2) / (fill * h / 2)
    v = (xx - (w - 1) / 2) / (fill * w / 2)
    if kind == "ellipse":
        return u**2 + v**2 <= 1.0
    if kind == "diamond":
        return (np.abs(u) ** 1.5 + np.abs(v) ** 1.5) <= 1.0
    raise ParameterError(f"kind {kind!r}", where="particle_mask", fix="ellipse|diamond")


@dataclass
class StrainParticle:
    """One synthetic particle.

    ``mask`` ``(rows, cols)``; ``composition`` X (NaN outside); ``strain`` measured
    lattice strain ``(rows, cols, 3)`` (NaN outside); ``truth`` holds the noise-free
    ``strain``, ``eigenstrain``, ``elastic`` strain, ``slip`` (gamma) and ``density``
    (signed dislocation density in 1/pixel^2 / b) fields.
    """

    mask: np.ndarray
    composition: np.ndarray
    strain: np.ndarray
    truth: dict[str, np.ndarray] = field(default_factory=dict)


def _slip_field(shape: tuple[int, int], mask: np.ndarray, n: int, amp: float, rng) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    g = np.zeros(shape)
    inner = ndi.binary_erosion(mask, iterations=4)
    cand = np.argwhere(inner)
    for _ in range(n):
        r, c = cand[rng.integers(len(cand))]
        sign = rng.choice([-1.0, 1.0])
        g += sign * amp * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * 2.5**2))
    return g * mask


def simulate_strain(
    n_particles: int = 3,
    shape: tuple[int, int] = (48, 32),
    *,
    law: Literal["linear", "nonlinear"] = "linear",
    pixel_nm: float = 20.0,
    interface_nm: float = 120.0,
    x_range: tuple[float, float] = (0.03, 0.95),
    noise: float = 1e-3,
    dislocations: int = 0,
    slip_amplitude: float = 0.01,
    mode: Literal["plane_stress", "plane_strain"] = "plane_stress",
    angles_deg: Sequence[float] | None = None,
    seed: int = 0,
) -> list[StrainParticle]:
    """Simulate phase-separated Li_xFePO4 particles and their 4D-STEM strain maps.

    Parameters
    ----------
    n_particles
        Number of particles (each with its own interface position and angle).
    shape
        ``(rows, cols)`` of each image (rows along c).
    law
        Eigenstrain law, see :func:`vegard_law`.
    pixel_nm, interface_nm
        Pixel size and interface width (nm).
    x_range
        Compositions of the Li-poor and Li-rich phases.
    noise
        Standard deviation of the Gaussian strain noise (all three components).
    dislocations
        Number of Gaussian slip patches (edge dislocations [001](100)) per particle.
    slip_amplitude
        Peak plastic slip gamma of a patch.
    mode
        Plane stress (platelet, default) or plane strain.
    angles_deg
        Interface-normal angles from a towards c (default: random in [60, 120] deg, i.e.
        interfaces roughly across the long (c) axis, away from the strain-free habit
        orientation near 35 deg, so the coherency strain is large).
    seed
        Seed of the random interface placement, slip patches and noise.

    Returns
    -------
    list of StrainParticle
    """
    if n_particles < 1:
        raise ParameterError("n_particles < 1", where="simulate_strain", fix="pass >= 1")
    rng = np.random.default_rng(seed)
    q = lfp_stiffness(mode)
    h, w = shape
    mask = particle_mask(shape)
    part = ElasticParticle(mask, q)
    yy, xx = np.mgrid[:h, :w]
    width = interface_nm / pixel_nm
    out = []
    for i in range(n_particles):
        th = np.radians(angles_deg[i] if angles_deg is not None else rng.uniform(60, 120))
        off = rng.uniform(-0.25, 0.25) * min(h, w)
        s = (xx - (w - 1) / 2) * np.cos(th) + (yy - (h - 1) / 2) * np.sin(th) - off
        x = x_range[0] + (x_range[1] - x_range[0]) * 0.5 * (1 + np.tanh(2 * s / width))
        x = np.where(mask, x, np.nan)
        f = np.where(mask[..., None], vegard_law(np.nan_to_num(x), law), 0.0)
        gamma = (
            _slip_field(shape, mask, dislocations, slip_amplitude, rng)
            if dislocations
            else np.zeros(shape)
        )
        ep = np.zeros((h, w, 3))
        ep[..., 2] = gamma / 2
        total = part.solve_direct_many(f + ep)[0]
        lattice = (total - ep) * mask[..., None]
        noisy = lattice + noise * rng.standard_normal(lattice.shape)
        noisy = np.where(mask[..., None], noisy, np.nan)
        density = -np.gradient(gamma, axis=0)
        out.append(
            StrainParticle(
                mask,
                x,
                noisy,
                {
                    "strain": lattice,
                    "eigenstrain": f,
                    "elastic": (lattice - f) * mask[..., None],
                    "slip": gamma,
                    "density": density,
                },
            )
        )
    return out
