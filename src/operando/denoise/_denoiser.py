"""The trained denoiser: prediction (tiled, optional TTA, ensembles), save and load."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import DataError, ParameterError
from ..io import read_model_dir, write_model_dir
from ..io._models import MODEL_CONFIG
from ._augment import inverse_transform, transform
from ._config import DenoiserConfig, template_models
from ._data import as_nchw, from_nchw
from ._tiling import predict_tiled
from ._umvd import window_indices
from ._unet import UMVDNet, receptive_radius

__all__ = ["Denoiser", "load_denoiser"]

#: Images with more pixels than this are predicted in tiles unless ``tile`` is given.
_AUTO_TILE_PIXELS = 512 * 512
_AUTO_TILE = 256


@eqx.filter_jit
def _apply(model: eqx.Module, x: jax.Array, n_tta: int) -> jax.Array:
    """``vmap(model)`` over a batch, averaged over ``n_tta`` symmetries (1, 4 or 8)."""
    x = x.astype(jnp.float32)
    c_out = model.channels if isinstance(model, UMVDNet) else model.head.out_channels
    out = jnp.zeros((x.shape[0], c_out, *x.shape[2:]), jnp.float32)
    for k in range(n_tta):
        out = out + inverse_transform(jax.vmap(model)(transform(x, k)), k)
    return out / n_tta


@dataclass(frozen=True, eq=False)
class Denoiser:
    """A trained self-supervised denoiser (one model, or an ensemble of K).

    Build one with :func:`train_denoiser` or :func:`load_denoiser`.

    Attributes
    ----------
    config
        Architecture, normalisation and training settings.
    models
        The K Equinox networks (float32).
    training
        ``time_s``, ``steps``, ``final_loss`` (mean loss of the last 100 steps, averaged
        over members) and ``losses`` (``(K, steps)`` array); empty after loading.
    """

    config: DenoiserConfig
    models: tuple[eqx.Module, ...]
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def ensemble_size(self) -> int:
        return len(self.models)

    def predict(
        self,
        data: Any,
        *,
        tile: int | None = None,
        margin: int | None = None,
        tta: bool = False,
        batch_size: int = 4,
    ) -> np.ndarray:
        """Denoise ``data`` (ensemble mean for K > 1).

        Parameters
        ----------
        data
            ``(y, x)``, ``(t, y, x)`` or ``(t, c, y, x)`` with the model's channel count;
            UMVD needs a video of at least ``config.window`` frames.
        tile
            Tile side in pixels; default: untiled up to 512x512 pixels, else 256.
        margin
            Context around each tile; default: the network's receptive-field radius,
            which makes tiled and untiled predictions agree.
        tta
            Test-time augmentation: average over the 8 flips/rotations (4 flips for
            structN2V).
        batch_size
            Tiles per network call.

        Returns
        -------
        numpy.ndarray
            Float64 array of the same shape as ``data``, in the data's units.
        """
        members = self._predict_members(data, tile, margin, tta, batch_size)
        return from_nchw(members.mean(axis=0), np.ndim(data))

    def predict_with_uncertainty(
        self,
        data: Any,
        *,
        tile: int | None = None,
        margin: int | None = None,
        tta: bool = False,
        batch_size: int = 4,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and per-pixel spread (sample standard deviation over members).

        Needs an ensemble of at least 2 models; arguments as in :meth:`predict`.
        """
        if self.ensemble_size < 2:
            raise ParameterError(
                "an uncertainty map needs an ensemble of at least 2 models",
                where="Denoiser.predict_with_uncertainty",
                fix="train with ensemble >= 2",
            )
        members = self._predict_members(data, tile, margin, tta, batch_size)
        nd = np.ndim(data)
        return from_nchw(members.mean(axis=0), nd), from_nchw(members.std(axis=0, ddof=1), nd)

    def _predict_members(
        self, data: Any, tile: int | None, margin: int | None, tta: bool, batch_size: int
    ) -> np.ndarray:
        cfg = self.config
        arr = self._check_input(data)
        n, c, h, w = arr.shape
        mean = np.asarray(cfg.mean)[None, :, None, None]
        std = np.asarray(cfg.std)[None, :, None, None]
        norm = ((arr - mean) / std).astype(np.float32)
        if cfg.method == "umvd":

            def inputs(i: int) -> np.ndarray:
                idx = np.asarray(window_indices(i, n, cfg.window))
                return norm[idx].reshape(cfg.window * c, h, w)

        else:

            def inputs(i: int) -> np.ndarray:
                return norm[i]

        if tile is None and h * w > _AUTO_TILE_PIXELS:
            tile = _AUTO_TILE
        if margin is None:
            margin = receptive_radius(
                cfg.depth, n2v2=cfg.method == "n2v2", umvd=cfg.method == "umvd"
            )
        n_tta = 1 if not tta else (4 if cfg.method == "structn2v" else 8)
        m = 2**cfg.depth
        n_tiles = n if tile is None else n * -(-h // tile) * -(-w // tile)
        bs = max(1, min(batch_size, n_tiles))
        outs = []
        for model in self.models:
            pred = predict_tiled(
                lambda x, model=model: _apply(model, jnp.asarray(x), n_tta),
                inputs,
                n,
                c,
                (h, w),
                tile=tile,
                margin=margin,
                multiple=m,
                batch_size=bs,
            )
            outs.append(pred.astype(np.float64) * std + mean)
        return np.stack(outs)

    def _check_input(self, data: Any) -> np.ndarray:
        cfg = self.config
        where = "Denoiser.predict: data"
        arr = as_nchw(data, where=where)
        if arr.shape[1] != cfg.channels:
            layout = "(y, x) or (t, y, x)" if cfg.channels == 1 else "(t, c, y, x)"
            raise DataError(
                f"has {arr.shape[1]} channel(s) (shape {np.shape(data)}) but the model was "
                f"trained on {cfg.channels}",
                where=where,
                fix=f"pass {cfg.channels}-channel data as {layout}, or train a new model",
            )
        if cfg.method == "umvd":
            if np.ndim(data) == 2:
                raise DataError(
                    "the UMVD model denoises videos but got a single image (y, x)",
                    where=where,
                    fix="pass frames (t, y, x) in time order",
                )
            if arr.shape[0] < cfg.window:
                raise DataError(
                    f"video has {arr.shape[0]} frames, fewer than the model's temporal "
                    f"window of {cfg.window}",
                    where=where,
                    fix=f"pass at least {cfg.window} frames",
                )
        return arr

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to directory ``path`` (``config.json`` + ``weights.eqx``), atomically per file.

        Returns the directory. Reload with :func:`load_denoiser`.
        """
        meta = self.config.to_dict()
        info = {k: v for k, v in self.training.items() if k in ("time_s", "steps", "final_loss")}
        meta["training"] = info
        return write_model_dir(path, self.models, meta)


def load_denoiser(path: str | os.PathLike[str]) -> Denoiser:
    """Load a denoiser saved by :meth:`Denoiser.save`.

    Raises
    ------
    FileFormatError
        Missing directory or files, unknown schema, or weights that do not match the config.
    """
    cfg_path = str(Path(path) / MODEL_CONFIG)

    def template(meta: dict[str, Any]) -> tuple[DenoiserConfig, Any]:
        meta = {k: v for k, v in meta.items() if k != "training"}
        cfg = DenoiserConfig.from_dict(meta, source=cfg_path)
        return cfg, template_models(cfg)

    cfg, models, meta = read_model_dir(
        path,
        template,
        fix="pass the directory written by Denoiser.save / operando denoise --model-out",
    )
    return Denoiser(cfg, tuple(models), dict(meta.get("training", {})))
