r"""Synthetic colour optical microscopy of a lithiating platelet-graphite electrode.

A field of platelet graphite particles (ellipses, characteristic size
:math:`V/A = \text{area}/\text{perimeter}` log-normally distributed, seed 000 Fig. S8:
mean 0.40 µm, standard deviation 0.13 µm) on a dark background is lithiated through
stage III (blue) -> stage II (red) -> stage I (gold), as in seed 000 Fig. 4:

* the stage III -> II transition starts at a random time in each particle, independent of
  its size (stochastic), and proceeds as an intercalation wave from the particle edge inwards;
* the stage II -> I transition starts earlier in small particles than in large ones
  (size-dependent), again as a wave from the edge.

The clean colour rendering is blurred by the optics (Gaussian PSF), modulated by illumination
flicker (a per-frame gain) and cloudiness (a slowly varying smooth field), displaced by a
random-walk stage drift and corrupted by Poisson shot noise. Everything is returned with its
ground truth: labels, per-frame phase maps, state of charge, drift and particle sizes.

Phase codes used throughout (also by :mod:`operando.modalities.optical`): 0 background,
1 blue (stage III), 2 red (stage II), 3 gold (stage I).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..errors import ParameterError

__all__ = ["OPTICAL_COLORS", "OpticalSimulation", "simulate_optical"]

#: Clean sRGB colours (0..1) of the rendering: background, stage III, stage II, stage I.
OPTICAL_COLORS: dict[str, tuple[float, float, float]] = {
    "background": (0.10, 0.07, 0.14),
    "blue": (0.22, 0.32, 0.66),
    "red": (0.62, 0.24, 0.20),
    "gold": (0.86, 0.68, 0.26),
}
_CONCENTRATION = np.array([0.0, 0.26, 0.55, 1.0])  # seed 000 S2.3: c of each phase


@dataclass(frozen=True)
class OpticalSimulation:
    """A synthetic operando colour video with its ground truth.

    Attributes
    ----------
    video
        ``(t, y, x, 3)`` float64 RGB in [0, 1], noisy, flickering and drifting.
    clean
        ``(t, y, x, 3)`` the same without noise, flicker or drift (blurred by the PSF).
    labels
        ``(y, x)`` int32 particle labels 1..N in frame-0 coordinates (0: background).
    phases
        ``(t, y, x)`` int8 true phase codes (0 background, 1 blue, 2 red, 3 gold).
    soc
        ``(t,)`` true image state of charge ``sum_i c_i a_i`` over particle pixels.
    shifts
        ``(t, 2)`` true displacement ``(dy, dx)`` of each frame relative to frame 0 (pixels);
        the correction that aligns frame t is ``-shifts[t]``.
    sizes_um
        ``(N,)`` characteristic size ``area / perimeter`` of each particle in µm, measured
        on ``labels`` with the same estimator the analysis uses.
    pixel_size
        µm per pixel.
    parameters
        Every parameter of the simulation (for summaries).
    """

    video: np.ndarray
    clean: np.ndarray
    labels: np.ndarray
    phases: np.ndarray
    soc: np.ndarray
    shifts: np.ndarray
    sizes_um: np.ndarray
    pixel_size: float
    parameters: dict[str, Any] = field(default_factory=dict)


def _ellipse_perimeter(a: float, b: float) -> float:
    return float(np.pi * (3 * (a + b) - np.sqrt((3 * a + b) * (a + 3 * b))))


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    f = ndi.gaussian_filter(rng.normal(size=shape), sigma, mode="wrap")
    return f / (f.std() + 1e-12)


def simulate_optical(
    *,
    seed: int = 0,
    shape: tuple[int, int] = (256, 256),
    n_frames: int = 40,
    n_particles: int = 60,
    size_mean_um: float = 0.40,
    size_std_um: float = 0.13,
    pixel_size: float = 0.1,
    gap: int = 3,
    psf_sigma: float = 0.8,
    photons: float = 60.0,
    flicker: float = 0.08,
    cloudiness: float = 0.10,
    drift_step: float = 0.6,
    brightness_spread: float = 0.04,
) -> OpticalSimulation:
    r"""Simulate an operando colour video of lithiating platelet graphite with ground truth.

    Parameters
    ----------
    seed
        Seed of every random choice (placement, sizes, timing, flicker, drift, noise).
    shape
        ``(y, x)`` frame size in pixels.
    n_frames
        Number of frames (the lithiation runs from frame 0 to the last).
    n_particles
        Particles to place (fewer if they do not fit without overlap; see ``labels.max()``).
    size_mean_um, size_std_um
        Mean and standard deviation (µm) of the log-normal distribution of the
        characteristic size ``V/A`` (area over perimeter of a platelet).
    pixel_size
        µm per pixel.
    gap
        Minimum background gap between particles (pixels).
    psf_sigma
        Standard deviation of the Gaussian optical blur (pixels).
    photons
        Expected photon count of a pixel of intensity 1 (Poisson shot noise; smaller is
        noisier; ``inf`` for none).
    flicker
        Relative standard deviation of the per-frame illumination gain.
    cloudiness
        Relative amplitude of the slowly varying smooth illumination field.
    drift_step
        Standard deviation (pixels) of each frame-to-frame step of the stage drift.
    brightness_spread
        Relative standard deviation of the per-particle brightness (reflectivity).

    Returns
    -------
    OpticalSimulation
        The noisy video and its ground truth.

    Examples
    --------
    >>> sim = simulate_optical(seed=0, shape=(96, 96), n_frames=12, n_particles=10)
    >>> sim.video.shape, int(sim.labels.max()) > 5
    ((12, 96, 96, 3), True)
    """
    ny, nx = (int(s) for s in shape)
    if ny < 32 or nx < 32:
        raise ParameterError(
            f"shape {shape} is too small",
            where="simulate_optical: shape",
            fix="use at least 32 x 32 pixels",
        )
    if n_frames < 2:
        raise ParameterError(
            f"n_frames={n_frames}", where="simulate_optical: n_frames", fix="use at least 2 frames"
        )
    if size_mean_um <= 0 or size_std_um <= 0 or pixel_size <= 0:
        raise ParameterError(
            "sizes and pixel size must be positive",
            where="simulate_optical",
            fix="pass positive values",
        )
    rng = np.random.default_rng(seed)

    # --- particles: ellipses with log-normal V/A, placed without overlap ---------------
    s2 = np.log1p((size_std_um / size_mean_um) ** 2)
    mu_log = np.log(size_mean_um) - s2 / 2
    yy, xx = np.mgrid[0:ny, 0:nx]
    labels = np.zeros((ny, nx), np.int32)
    occupied = np.zeros((ny, nx), bool)
    n_placed = 0
    for _ in range(n_particles * 40):
        if n_placed >= n_particles:
            break
        s_px = float(np.exp(rng.normal(mu_log, np.sqrt(s2)))) / pixel_size
        q = rng.uniform(0.6, 1.0)
        g = np.pi * q / _ellipse_perimeter(1.0, q)  # V/A of the unit ellipse (a = 1, b = q)
        a = s_px / g
        b = q * a
        if a < 1.5 or 2 * a + 2 * gap >= min(ny, nx):
            continue
        th = rng.uniform(0, np.pi)
        cy = rng.uniform(a + 1, ny - a - 1)
        cx = rng.uniform(a + 1, nx - a - 1)
        # work in a box around the ellipse (with the gap) for speed
        r = int(np.ceil(a)) + gap + 2
        y0, y1 = max(int(cy) - r, 0), min(int(cy) + r + 1, ny)
        x0, x1 = max(int(cx) - r, 0), min(int(cx) + r + 1, nx)
        by, bx = yy[y0:y1, x0:x1], xx[y0:y1, x0:x1]
        u = (bx - cx) * np.cos(th) + (by - cy) * np.sin(th)
        v = -(bx - cx) * np.sin(th) + (by - cy) * np.cos(th)
        m = (u / a) ** 2 + (v / b) ** 2 <= 1.0
        if m.sum() < 4 or (ndi.binary_dilation(m, iterations=gap) & occupied[y0:y1, x0:x1]).any():
            continue
        n_placed += 1
        labels[y0:y1, x0:x1][m] = n_placed
        occupied[y0:y1, x0:x1] |= m
    from skimage.measure import regionprops

    props = regionprops(labels)
    sizes_px = np.array([p.area / max(p.perimeter, 1e-9) for p in props])
    sizes_um = sizes_px * pixel_size

    # --- phase kinetics: waves from the edge, III->II stochastic, II->I size-dependent ---
    tau = np.linspace(0.0, 1.0, n_frames)
    dist = ndi.distance_transform_edt(labels > 0)
    phases = np.zeros((n_frames, ny, nx), np.int8)
    rel = np.zeros(len(props))
    if len(props) > 1:
        rel = (sizes_px - sizes_px.min()) / max(np.ptp(sizes_px), 1e-9)
    t2 = rng.uniform(0.22, 0.40, len(props))  # independent of size
    t1 = 0.58 + 0.22 * rel + rng.normal(0.0, 0.015, len(props))  # small particles first
    d2, d1 = 0.14, 0.12  # wave durations (fraction of the run)
    for i, p in enumerate(props):
        rr, cc = p.coords[:, 0], p.coords[:, 1]
        dn = dist[rr, cc] / dist[rr, cc].max()  # 0 at the edge .. 1 at the centre
        for t in range(n_frames):
            ph = np.ones(len(rr), np.int8)
            ph[tau[t] >= t2[i] + d2 * dn] = 2
            ph[tau[t] >= t1[i] + d1 * dn] = 3
            phases[t, rr, cc] = ph
    inside = labels > 0
    soc = np.array([_CONCENTRATION[ph[inside]].mean() for ph in phases])

    # --- rendering: colours, PSF, illumination, drift, shot noise -------------------------
    palette = np.array([OPTICAL_COLORS[k] for k in ("background", "blue", "red", "gold")])
    bright = np.ones((ny, nx))
    for p in props:
        bright[p.coords[:, 0], p.coords[:, 1]] = 1.0 + brightness_spread * rng.normal()
    clean = palette[phases] * bright[None, :, :, None]
    clean = ndi.gaussian_filter(clean, (0, psf_sigma, psf_sigma, 0), mode="nearest")
    clouds = [_smooth_field(rng, (ny, nx), max(ny, nx) / 6) for _ in range(4)]
    knots = np.linspace(0, n_frames - 1, len(clouds))
    gains = 1.0 + flicker * rng.normal(size=n_frames)
    steps = rng.normal(0.0, drift_step, size=(n_frames, 2))
    steps[0] = 0.0
    shifts = np.cumsum(steps, axis=0)
    video = np.empty_like(clean)
    for t in range(n_frames):
        w = np.interp(t, knots, np.arange(len(clouds)))
        j = min(int(w), len(clouds) - 2)
        cloud = (1 - (w - j)) * clouds[j] + (w - j) * clouds[j + 1]
        frame = clean[t] * (gains[t] * (1.0 + cloudiness * cloud))[..., None]
        video[t] = ndi.shift(frame, (*shifts[t], 0), order=1, mode="nearest")
    video = np.clip(video, 0.0, None)
    if np.isfinite(photons):
        video = rng.poisson(video * photons) / photons
    video = np.clip(video, 0.0, 1.0)
    params = {
        "seed": seed,
        "shape": [ny, nx],
        "n_frames": n_frames,
        "n_particles_requested": n_particles,
        "n_particles": len(props),
        "size_mean_um": size_mean_um,
        "size_std_um": size_std_um,
        "pixel_size": pixel_size,
        "gap": gap,
        "psf_sigma": psf_sigma,
        "photons": photons,
        "flicker": flicker,
        "cloudiness": cloudiness,
        "drift_step": drift_step,
        "brightness_spread": brightness_spread,
        "concentrations": _CONCENTRATION.tolist(),
    }
    return OpticalSimulation(
        video=video,
        clean=clean,
        labels=labels,
        phases=phases,
        soc=soc,
        shifts=shifts,
        sizes_um=sizes_um,
        pixel_size=pixel_size,
        parameters=params,
    )
