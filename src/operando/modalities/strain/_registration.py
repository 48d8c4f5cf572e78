r"""Affine registration of two modalities by maximising their pixel correlation (seed 003).

The composition map (X-ray) is mapped onto the strain map's grid (4D-STEM, the reference)
by an affine transform :math:`x_{mov} = A\,(x_{ref} - c) + c + t` (``c`` the reference
image centre; coordinates in (row, column) pixels). The score is the Pearson correlation
of a chosen channel pair (e.g. composition X and the lattice strain along a) over the
reference particle pixels at least ``edge`` (4) pixels from the particle edge, where
contrast differences between the techniques would bias it (seed 003 Methods "Image
registration"). The six parameters are found by gradient ascent (Adam, JAX autodiff
through bilinear interpolation), starting from the centroid-aligned identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.ndimage as ndi
from jax.scipy.ndimage import map_coordinates

from ...errors import DataError, ParameterError

__all__ = ["Registration", "apply_affine", "edge_excluded_mask", "register_affine"]


@dataclass(frozen=True)
class Registration:
    """Result of :func:`register_affine`.

    ``matrix`` ``(2, 2)`` and ``offset`` ``(2,)`` (row, column) of
    ``x_mov = matrix (x_ref - centre) + centre + offset``; ``correlation`` achieved (and
    ``initial_correlation`` at the start) over ``n_pixels`` scored pixels; ``history``
    the score (``sign * correlation + shape_weight * Dice``) per iteration.
    """

    matrix: np.ndarray
    offset: np.ndarray
    centre: np.ndarray
    correlation: float
    initial_correlation: float
    n_pixels: int
    history: np.ndarray

    def summary(self) -> dict[str, Any]:
        return {
            "matrix": self.matrix.tolist(),
            "offset": self.offset.tolist(),
            "correlation": self.correlation,
            "initial_correlation": self.initial_correlation,
            "n_pixels": self.n_pixels,
            "iterations": len(self.history),
        }


def edge_excluded_mask(mask: np.ndarray, edge: int = 4) -> np.ndarray:
    """Mask pixels at least ``edge`` pixels from the particle edge."""
    m = np.asarray(mask, bool)
    return ndi.binary_erosion(m, iterations=edge, border_value=0) if edge > 0 else m


def _coords(shape: tuple[int, int], mat: Any, off: Any, centre: Any) -> Any:
    yy, xx = jnp.meshgrid(jnp.arange(shape[0]), jnp.arange(shape[1]), indexing="ij")
    p = jnp.stack([yy.ravel(), xx.ravel()]).astype(float) - centre[:, None]
    q = mat @ p + centre[:, None] + off[:, None]
    return q.reshape(2, *shape)


def _warp(image: Any, shape: tuple[int, int], mat: Any, off: Any, centre: Any) -> Any:
    q = _coords(shape, mat, off, centre)
    return map_coordinates(image, [q[0], q[1]], order=1, mode="constant", cval=0.0)


def apply_affine(moving: np.ndarray, reg: Registration, shape: tuple[int, int]) -> np.ndarray:
    """Resample ``moving`` (NaN outside its particle allowed) onto the reference grid.

    Pixels that fall outside the moving image, or whose bilinear stencil touches a NaN,
    are NaN.
    """
    mv = np.asarray(moving, float)
    valid = np.isfinite(mv).astype(float)
    args = (jnp.asarray(reg.matrix), jnp.asarray(reg.offset), jnp.asarray(reg.centre))
    w = np.asarray(_warp(jnp.asarray(np.nan_to_num(mv)), shape, *args))
    v = np.asarray(_warp(jnp.asarray(valid), shape, *args))
    return np.where(v > 0.999, w, np.nan)


def _corr(a: Any, b: Any, m: Any) -> Any:
    n = jnp.sum(m)
    am = jnp.sum(a * m) / n
    bm = jnp.sum(b * m) / n
    da, db = (a - am) * m, (b - bm) * m
    return jnp.sum(da * db) / jnp.sqrt(jnp.sum(da**2) * jnp.sum(db**2) + 1e-300)


def register_affine(
    moving: np.ndarray,
    reference: np.ndarray,
    reference_mask: np.ndarray | None = None,
    *,
    sign: float = 1.0,
    edge: int = 4,
    steps: int = 300,
    learning_rate: float = 0.05,
    init_offset: np.ndarray | None = None,
    shape_weight: float = 1.0,
) -> Registration:
    """Register ``moving`` onto ``reference`` by maximising ``sign * corr``.

    Parameters
    ----------
    moving
        ``(rows', cols')`` map (e.g. composition X; NaN outside the particle).
    reference
        ``(rows, cols)`` map on the target grid (e.g. lattice strain along a).
    reference_mask
        Particle mask on the reference grid (default: finite reference pixels).
    sign
        ``+1`` to maximise the correlation, ``-1`` for channels that anti-correlate
        (e.g. X and the c-axis strain).
    edge
        Pixels within ``edge`` of the reference particle edge are not scored.
    steps, learning_rate
        Adam iterations and step size (in pixels for the offset, and in units of
        ``1 / image size`` for the linear part).
    shape_weight
        Weight of the Dice overlap of the particle outlines (moving: finite pixels;
        reference: ``reference_mask``) added to the score; 0 gives the pure correlation
        of seed 003. The outline makes the affine identifiable when the composition has
        little structure (one straight interface).
    init_offset
        Starting offset (row, column); default: the difference of the two particles'
        centroids.

    Returns
    -------
    Registration
    """
    mv = np.asarray(moving, float)
    ref = np.asarray(reference, float)
    if mv.ndim != 2 or ref.ndim != 2:
        raise DataError("maps must be 2D", where="register_affine", fix="pass (rows, cols) maps")
    if sign not in (1, -1, 1.0, -1.0):
        raise ParameterError(f"sign {sign}", where="register_affine", fix="+1 or -1")
    rm = np.isfinite(ref) if reference_mask is None else np.asarray(reference_mask, bool)
    if rm.shape != ref.shape:
        raise DataError(
            f"mask shape {rm.shape} != reference shape {ref.shape}", where="register_affine"
        )
    score = edge_excluded_mask(rm & np.isfinite(ref), edge)
    if score.sum() < 10:
        raise DataError(
            f"only {int(score.sum())} reference pixels lie {edge} px inside the particle",
            where="register_affine",
            fix="check the reference mask or lower `edge`",
        )
    centre = (np.array(ref.shape, float) - 1) / 2
    if init_offset is None:
        cm = np.array(ndi.center_of_mass(np.isfinite(mv)))
        cr = np.array(ndi.center_of_mass(rm))
        init_offset = cm - cr
    scale = float(max(ref.shape))
    mvj = jnp.asarray(np.nan_to_num(mv))
    valid = jnp.asarray(np.isfinite(mv).astype(float))
    refj = jnp.asarray(np.nan_to_num(ref))
    sj = jnp.asarray(score.astype(float))
    rmj = jnp.asarray(rm.astype(float))
    cj = jnp.asarray(centre)

    def unpack(p: Any) -> tuple[Any, Any]:
        return jnp.eye(2) + p[:4].reshape(2, 2) / scale, p[4:]

    def objective(p: Any) -> Any:
        mat, off = unpack(p)
        w = _warp(mvj, ref.shape, mat, off, cj)
        v = _warp(valid, ref.shape, mat, off, cj)
        score = sign * _corr(w, refj, sj * v)
        if shape_weight:
            # Dice overlap of the two particle outlines: a single straight interface
            # only fixes the interface position, the outline fixes the rest
            dice = 2 * jnp.sum(v * rmj) / (jnp.sum(v) + jnp.sum(rmj))
            score = score + shape_weight * dice
        return -score

    p = jnp.concatenate([jnp.zeros(4), jnp.asarray(init_offset, float)])
    opt = optax.adam(learning_rate)
    state = opt.init(p)

    def step(carry: Any, _: Any) -> tuple[Any, Any]:
        p, state, best_val, best_p = carry
        val, g = jax.value_and_grad(objective)(p)
        better = val < best_val
        best_val = jnp.where(better, val, best_val)
        best_p = jnp.where(better, p, best_p)
        upd, state = opt.update(g, state, p)
        return (optax.apply_updates(p, upd), state, best_val, best_p), val

    @jax.jit
    def run(p: Any, state: Any) -> tuple[Any, Any]:
        init = (p, state, jnp.asarray(jnp.inf), p)
        (p, _, best_val, best_p), vals = jax.lax.scan(step, init, None, length=int(steps))
        final = objective(p)
        better = final < best_val
        return jnp.where(better, p, best_p), vals

    def correlation(p: Any) -> float:
        mat, off = unpack(p)
        w = _warp(mvj, ref.shape, mat, off, cj)
        v = _warp(valid, ref.shape, mat, off, cj)
        return float(_corr(w, refj, sj * v))

    c0 = correlation(p)
    best_p, vals = run(p, state)
    mat, off = unpack(best_p)
    return Registration(
        np.asarray(mat),
        np.asarray(off),
        centre,
        correlation(best_p),
        c0,
        int(score.sum()),
        -np.asarray(vals),
    )
