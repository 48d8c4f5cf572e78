"""The trained enhancer: InDI (or regression) inference on slices and volumes, save/load."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ..denoise._tiling import predict_tiled
from ..errors import DataError, FileFormatError, ParameterError
from ..io import read_model_dir, write_model_dir
from ..io._models import MODEL_CONFIG
from ._indi import LOSSES, indi_restore
from ._net import InDIUNet, receptive_radius
from ._pairs import Normalisation
from ._resample import upsample2

__all__ = ["Enhancer", "EnhancerConfig", "load_enhancer", "slice_consistency"]

SCHEMA = "operando.enhancer/1"
METHODS = ("indi", "regression")
#: Slices with more pixels than this are enhanced in tiles unless ``tile`` is given.
_AUTO_TILE_PIXELS = 512 * 512
_AUTO_TILE = 256


@dataclass(frozen=True)
class EnhancerConfig:
    """Architecture, normalisation and training settings of an :class:`Enhancer`.

    ``lq_range``/``hq_range`` map grey values linearly to ``[-1, 1]``; ``lq_stats`` are the
    normalised 1st and 99th percentiles of the training low-quality data, used to refuse
    data of another normalisation. ``steps`` is the default number of InDI steps (1 for
    the regression baseline).
    """

    method: str = "indi"
    base_filters: int = 16
    depth: int = 2
    bottleneck_blocks: int = 2
    loss: str = "mae_mse"
    p_one: float = 0.05
    path_noise: float = 0.0
    steps: int = 8
    lq_range: tuple[float, float] = (0.0, 1.0)
    hq_range: tuple[float, float] = (0.0, 1.0)
    lq_stats: tuple[float, float] = (-1.0, 1.0)
    lq_voxel: float | None = None
    hq_voxel: float | None = None
    voxel_unit: str = "nm"
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = "EnhancerConfig"
        if self.method not in METHODS:
            raise ParameterError(
                f"method={self.method!r} unknown", where=f"{where}: method", fix=f"use {METHODS}"
            )
        if self.loss not in LOSSES:
            raise ParameterError(
                f"loss={self.loss!r} unknown", where=f"{where}: loss", fix=f"use {LOSSES}"
            )
        if self.base_filters < 1 or self.depth < 1 or self.bottleneck_blocks < 0:
            raise ParameterError(
                "base_filters and depth must be >= 1, bottleneck_blocks >= 0", where=where
            )
        if not 0.0 <= self.p_one <= 1.0:
            raise ParameterError(f"p_one={self.p_one} not in [0, 1]", where=f"{where}: p_one")
        if self.steps < 1:
            raise ParameterError(f"steps={self.steps} must be >= 1", where=f"{where}: steps")

    @property
    def norm(self) -> Normalisation:
        return Normalisation(tuple(self.lq_range), tuple(self.hq_range))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema"] = SCHEMA
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "config") -> EnhancerConfig:
        d = dict(d)
        if d.pop("schema", None) != SCHEMA:
            raise FileFormatError(
                f"is not an enhancer config (schema {SCHEMA} expected)",
                where=source,
                fix="pass the directory written by Enhancer.save / operando enhance train",
            )
        for k in ("lq_range", "hq_range", "lq_stats"):
            if k in d:
                d[k] = tuple(float(v) for v in d[k])
        try:
            return cls(**d)
        except TypeError as e:
            raise FileFormatError(f"has unknown or missing fields ({e})", where=source) from None


def build_network(cfg: EnhancerConfig, key: jax.Array) -> InDIUNet:
    return InDIUNet(
        base_filters=cfg.base_filters,
        depth=cfg.depth,
        bottleneck_blocks=cfg.bottleneck_blocks,
        key=key,
    )


@eqx.filter_jit
def _apply(model: InDIUNet, x: jax.Array, t: jax.Array) -> jax.Array:
    return jax.vmap(model)(x.astype(jnp.float32), t.astype(jnp.float32))


def slice_consistency(enhanced: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Consistency of slice-wise enhancement along ``z``.

    For neighbouring ``xy`` slices, the RMS difference of the enhanced stack is compared
    with that of a reference stack on the same grid (the up-sampled low-quality slices):
    ``ratio = median_i rms(E[i+1] - E[i]) / rms(R[i+1] - R[i])``. Slice-wise enhancement
    that invents detail independently in each slice raises the ratio; a ratio near or
    below 1 means the enhanced volume is as smooth along ``z`` as the data. Also returns
    the median correlation of neighbouring enhanced slices.
    """
    e = np.asarray(enhanced, np.float64)
    r = np.asarray(reference, np.float64)
    if e.shape != r.shape or e.ndim != 3 or e.shape[0] < 2:
        raise DataError(
            f"need two stacks of >= 2 slices of equal shape, got {e.shape} and {r.shape}",
            where="slice_consistency",
        )
    de = np.sqrt(np.mean(np.diff(e, axis=0) ** 2, axis=(1, 2)))
    dr = np.sqrt(np.mean(np.diff(r, axis=0) ** 2, axis=(1, 2)))
    corr = []
    for i in range(e.shape[0] - 1):
        a, b = e[i].ravel() - e[i].mean(), e[i + 1].ravel() - e[i + 1].mean()
        den = np.sqrt(np.sum(a * a) * np.sum(b * b))
        corr.append(float(np.sum(a * b) / den) if den > 0 else np.nan)  # nan: constant slice
    finite = np.isfinite(corr)
    return {
        "ratio": float(np.median(de / np.maximum(dr, 1e-12))),
        "rms_step_enhanced": float(np.median(de)),
        "rms_step_reference": float(np.median(dr)),
        "neighbour_correlation": float(np.median(np.asarray(corr)[finite]))
        if finite.any()
        else np.nan,
    }


@dataclass(frozen=True, eq=False)
class Enhancer:
    """A trained InDI (or regression) enhancer. Build with :func:`train_enhancer` or
    :func:`load_enhancer`.

    Attributes
    ----------
    config
        Architecture, normalisation and training settings.
    model
        The Equinox network ``F(x_t, t)`` (float32).
    history
        Training losses (empty after loading).
    """

    config: EnhancerConfig
    model: InDIUNet
    history: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- inference core

    def _steps(self, steps: int | None) -> int:
        n = self.config.steps if steps is None else steps
        if int(n) != n or n < 1:
            raise ParameterError(f"steps={steps!r} must be an integer >= 1", where="steps")
        if self.config.method == "regression" and n != 1:
            raise ParameterError(
                "a regression model is applied in one step",
                where="steps",
                fix="use steps=1 (or a model trained with method='indi')",
            )
        return int(n)

    def restore_normalised(
        self,
        y: np.ndarray,
        *,
        steps: int | None = None,
        tile: int | None = None,
        margin: int | None = None,
        batch_size: int = 4,
        return_trajectory: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
        """InDI on normalised slices already on the high-quality grid.

        ``y``: ``(n, y, x)`` in ``[-1, 1]`` units; returns ``(n, y, x)`` float32 (and, if
        asked, the states ``x_t`` after every step). ``tile``: side of tiles (default:
        untiled up to 512x512 pixels, else 256); ``margin``: context around a tile
        (default: the network's receptive-field bound, so tiles agree with untiled
        inference).
        """
        n_steps = self._steps(steps)
        y = np.asarray(y, np.float32)
        n, h, w = y.shape
        if tile is None and h * w > _AUTO_TILE_PIXELS:
            tile = _AUTO_TILE
        if margin is None:
            margin = receptive_radius(self.config.depth, self.config.bottleneck_blocks)
        mult = 2**self.config.depth
        n_tiles = n if tile is None else n * -(-h // tile) * -(-w // tile)
        bs = max(1, min(batch_size, n_tiles))
        model = self.model

        def apply(xt: Any, t: Any) -> Any:
            xt = np.asarray(xt, np.float32)
            tval = float(np.asarray(t).reshape(-1)[0])

            def one(batch: np.ndarray) -> np.ndarray:
                tb = jnp.full((batch.shape[0],), tval, jnp.float32)
                return np.asarray(_apply(model, jnp.asarray(batch), tb))

            out = predict_tiled(
                one,
                lambda i: xt[i][None],
                n,
                1,
                (h, w),
                tile=tile,
                margin=margin,
                multiple=mult,
                batch_size=bs,
            )
            return out[:, 0]

        res = indi_restore(apply, y, n_steps, return_trajectory=return_trajectory)
        if return_trajectory:
            x, traj = res
            return np.asarray(x, np.float32), [np.asarray(s, np.float32) for s in traj]
        return np.asarray(res, np.float32)

    # ------------------------------------------------------------------ public API

    def check_normalisation(self, lq: np.ndarray, *, where: str) -> None:
        """Refuse data whose grey values do not match the training normalisation.

        The 1st-99th percentile span of the normalised data must be within a factor of 2
        of the training span, and its centre within half the training span.
        """
        lo, hi = np.percentile(self.config.norm.lq(lq), [1, 99])
        t_lo, t_hi = self.config.lq_stats
        span, t_span = hi - lo, t_hi - t_lo
        if (
            not (0.5 * t_span <= span <= 2.0 * t_span)
            or abs((hi + lo) / 2 - (t_hi + t_lo) / 2) > 0.5 * t_span
        ):
            a, b = self.config.lq_range
            raw_lo, raw_hi = np.percentile(lq, [1, 99])
            raise DataError(
                f"grey values (1-99 % range {raw_lo:.4g}..{raw_hi:.4g}) do not match the "
                f"normalisation the model was trained with (low-quality range {a:.4g}..{b:.4g})",
                where=where,
                fix="rescale the data to the training scan's grey values (same reconstruction "
                "units), retrain on data like these, or pass check_normalisation=False",
            )

    def enhance_image(
        self,
        lq: Any,
        *,
        steps: int | None = None,
        tile: int | None = None,
        batch_size: int = 4,
        check_normalisation: bool = True,
    ) -> np.ndarray:
        """Enhance low-quality slices ``(y, x)`` or ``(n, y, x)`` (independent images).

        Each slice is up-sampled x2 with the fixed cubic resampler, normalised, restored
        with ``steps`` InDI iterations and mapped back to high-quality grey values.
        Returns float64 ``(2y, 2x)`` or ``(n, 2y, 2x)``.
        """
        a = np.asarray(lq, np.float64)
        if a.ndim not in (2, 3) or not np.all(np.isfinite(a)):
            raise DataError(
                f"expected finite slices (y, x) or (n, y, x), got shape {a.shape}",
                where="Enhancer.enhance_image",
            )
        if check_normalisation:
            self.check_normalisation(a, where="Enhancer.enhance_image: data")
        stack = a[None] if a.ndim == 2 else a
        y = self.config.norm.lq(upsample2(stack))
        x = self.restore_normalised(y, steps=steps, tile=tile, batch_size=batch_size)
        out = self.config.norm.hq_inverse(x)
        return out[0] if a.ndim == 2 else out

    def enhance_volume(
        self,
        lq: Any,
        *,
        steps: int | None = None,
        tile: int | None = None,
        batch_size: int = 4,
        z_interpolate: bool = True,
        check_normalisation: bool = True,
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Enhance a low-quality volume ``(z, y, x)`` slice by slice in ``xy``.

        The ``xy`` slices are enhanced to ``(z, 2y, 2x)``; with ``z_interpolate`` the stack
        is then interpolated along ``z`` with the same cubic resampler to isotropic voxels
        ``(2z, 2y, 2x)``. Returns the volume and the slice-consistency report
        (:func:`slice_consistency` of the enhanced slices against the up-sampled
        low-quality slices, both in high-quality grey values).
        """
        from ._pairs import check_volume

        where = "Enhancer.enhance_volume: volume"
        v = check_volume(lq, "volume", where=where)
        if v.shape[0] < 2:
            raise DataError(f"volume {v.shape} has fewer than 2 slices", where=where)
        if check_normalisation:
            self.check_normalisation(v, where=where)
        y = self.config.norm.lq(upsample2(v))
        x = self.restore_normalised(y, steps=steps, tile=tile, batch_size=batch_size)
        out = self.config.norm.hq_inverse(x)
        report = slice_consistency(out, self.config.norm.hq_inverse(np.clip(y, -1.5, 1.5)))
        if z_interpolate:
            out = upsample2(out, axes=(0,))
        return out, report

    # ----------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to directory ``path`` (``config.json`` + ``weights.eqx``), atomically per file."""
        return write_model_dir(path, self.model, self.config.to_dict())


def load_enhancer(path: str | os.PathLike[str]) -> Enhancer:
    """Load an enhancer saved by :meth:`Enhancer.save`.

    Raises
    ------
    FileFormatError
        Missing directory or files, unknown schema, or weights that do not match the config.
    """
    cfg_path = str(Path(path) / MODEL_CONFIG)

    def template(meta: dict[str, Any]) -> tuple[EnhancerConfig, Any]:
        cfg = EnhancerConfig.from_dict(meta, source=cfg_path)
        return cfg, build_network(cfg, jr.PRNGKey(0))

    cfg, model, _ = read_model_dir(
        path, template, fix="pass the directory written by Enhancer.save / operando enhance train"
    )
    return Enhancer(cfg, model)
