"""Training driver: validation, normalisation, the jitted Optax step, checkpoints, ensembles."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

from ..errors import DataError, ParameterError
from ..io import atomic_path
from ._config import METHODS, DenoiserConfig, build_model
from ._data import as_nchw
from ._denoiser import Denoiser
from ._masking import mask_grid
from ._n2v import n2v_batch
from ._umvd import umvd_batch

__all__ = ["train_denoiser"]

Callback = Callable[[int, int, float], None]

_DEFAULT_BATCH = {"n2v": 16, "n2v2": 16, "structn2v": 16, "umvd": 4}


def train_denoiser(
    data: Any,
    *,
    method: str = "n2v",
    key: Any,
    epochs: int = 100,
    patch_size: int = 64,
    batch_size: int | None = None,
    learning_rate: float = 1e-3,
    steps_per_epoch: int | None = None,
    ensemble: int = 1,
    window: int = 5,
    depth: int = 2,
    base_filters: int = 32,
    umvd_features: int = 16,
    masked_fraction: float = 0.002,
    radius: int = 5,
    struct_span: int = 7,
    struct_orientation: str = "horizontal",
    augment: bool = True,
    bootstrap: bool = True,
    lr_schedule: str = "cosine",
    callback: Callback | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 200,
    members: Any = None,
) -> Denoiser:
    """Train a self-supervised denoiser on noisy data alone.

    Parameters
    ----------
    data
        Noisy array ``(y, x)``, ``(t, y, x)`` or ``(t, c, y, x)``. For the N2V family
        the frames are independent images; for ``"umvd"`` they are a video (frames in
        time order, at least ``window`` of them).
    method
        ``"n2v"`` (Krull et al. 2019), ``"n2v2"`` (Höck et al. 2022), ``"structn2v"``
        (Broaddus et al. 2020) or ``"umvd"`` (Aiyetigbo et al. 2024).
    key
        Seed (``int``) or JAX PRNG key; every random choice (initial weights, patches,
        masks, augmentation, bootstrap) derives from it.
    epochs
        Number of epochs (seed 000 Table S2: 200 for the simulated data).
    patch_size
        Side of the square training patches (multiple of ``2**depth``, at least 16).
    batch_size
        Patches per step; default 16 for the N2V family and 4 for UMVD.
    learning_rate
        Adam learning rate (Table S2: 1e-3).
    steps_per_epoch
        Default: enough steps to draw every non-overlapping patch of the data once,
        ``ceil(n * (y // patch) * (x // patch) / batch_size)``.
    ensemble
        Number K of independently seeded models (the paper uses 50). With K > 1 and
        ``bootstrap``, each model draws its frames from a bootstrap resample of the frames.
    window
        UMVD temporal window ``2k+1`` (5 or 7 in the paper); odd, at least 3.
    depth, base_filters
        U-Net depth and first-level filters (N2V defaults: 2 and 32).
    umvd_features
        Per-frame features of UMVD's grouped convolutions.
    masked_fraction
        Fraction of pixels masked per patch (N2V: 0.2 %).
    radius
        Replacement window half-width (5: an 11x11 window).
    struct_span, struct_orientation
        structN2V line-mask length (odd) and ``"horizontal"`` or ``"vertical"``; set the
        orientation along the direction in which the noise is correlated.
    augment
        Random flips and 90-degree rotations of each patch (structN2V: flips only, which
        preserve the orientation of the correlated noise).
    bootstrap
        Bootstrap resampling of frames for ensemble members (ignored for K = 1 or one frame).
    lr_schedule
        ``"cosine"`` (decay to 1 % of ``learning_rate`` over the run) or ``"constant"``.
    callback
        ``callback(step, total, loss)`` after every step (``step`` counts all members).
    checkpoint_dir
        When given, the state is written there atomically every ``checkpoint_every``
        steps, at the end of each member and on Ctrl-C; a later call with the same
        directory and settings resumes from it.
    checkpoint_every
        Steps between checkpoints.
    members
        Train only these ensemble members (indices in ``0..ensemble-1``; default all).
        A member's initialisation, frame resample and batches depend only on ``key`` and
        its index, so members trained separately (one job each, e.g. by
        ``operando.pipelines._uq.train_denoiser_ensemble`` on several workers) are the
        members of the full ensemble. The result holds just these models.

    Returns
    -------
    Denoiser
        The trained model(s) with their config; ``Denoiser.training`` holds the training
        time, the per-step losses and the final loss.

    Raises
    ------
    DataError
        NaN/inf values, an image smaller than the patch, a video shorter than the window,
        a constant image.
    ParameterError
        Unknown method, ``ensemble < 1`` and other invalid options.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> noisy = rng.normal(size=(64, 64))
    >>> den = train_denoiser(noisy, key=0, epochs=1, steps_per_epoch=2, patch_size=32,
    ...                      batch_size=2, base_filters=4)
    >>> den.predict(noisy).shape
    (64, 64)
    """
    _check_options(
        method,
        ensemble,
        epochs,
        patch_size,
        batch_size,
        learning_rate,
        steps_per_epoch,
        window,
        depth,
        base_filters,
        umvd_features,
        masked_fraction,
        radius,
        struct_span,
        struct_orientation,
        lr_schedule,
        checkpoint_every,
    )
    arr = as_nchw(data, where="train_denoiser: data")
    n, c, h, w = arr.shape
    if method == "umvd":
        if np.ndim(data) == 2:
            raise DataError(
                "UMVD denoises videos but got a single image (y, x)",
                where="train_denoiser: data",
                fix="pass frames (t, y, x) in time order, or use method='n2v'",
            )
        if n < window:
            raise DataError(
                f"video has {n} frames, fewer than the temporal window of {window}",
                where="train_denoiser: data",
                fix=f"use at least {window} frames, a smaller window (odd, >= 3), or method='n2v'",
            )
    if h < patch_size or w < patch_size:
        raise DataError(
            f"images are {h}x{w} pixels, smaller than the {patch_size}x{patch_size} patch",
            where="train_denoiser: data",
            fix=f"use patch_size <= {min(h, w) // 2**depth * 2**depth} (a multiple of {2**depth})",
        )
    mean = arr.mean(axis=(0, 2, 3))
    std = arr.std(axis=(0, 2, 3))
    if np.any(std == 0):
        raise DataError(
            f"channel(s) {np.flatnonzero(std == 0).tolist()} are constant",
            where="train_denoiser: data",
            fix="there is nothing to denoise; check the input",
        )
    bs = batch_size or _DEFAULT_BATCH[method]
    if steps_per_epoch is None:
        steps_per_epoch = max(1, math.ceil(n * (h // patch_size) * (w // patch_size) / bs))
    raw_key, seed = _raw_key(key)
    cfg = DenoiserConfig(
        method=method,
        channels=c,
        depth=depth,
        base_filters=base_filters,
        window=window,
        umvd_features=umvd_features,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        ensemble=ensemble,
        patch_size=patch_size,
        masked_fraction=masked_fraction,
        radius=radius,
        struct_span=struct_span,
        struct_orientation=struct_orientation,
        augment=augment,
        bootstrap=bootstrap,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=bs,
        learning_rate=float(learning_rate),
        lr_schedule=lr_schedule,
        seed=seed,
        extra={"key": [int(v) for v in np.asarray(raw_key)]},
    )
    norm = ((arr - mean[None, :, None, None]) / std[None, :, None, None]).astype(np.float32)
    data_j = jnp.asarray(norm, dtype=jnp.float32)
    total = cfg.total_steps
    opt, step_fn = _step_for(_step_settings(cfg))
    ckpt = _Checkpoints(checkpoint_dir, cfg, arr.shape) if checkpoint_dir is not None else None

    t0 = time.perf_counter()
    models = []
    losses = np.full((ensemble, total), np.nan, dtype=np.float32)
    todo = range(ensemble) if members is None else [int(m) for m in members]
    if any(not 0 <= m < ensemble for m in todo):
        raise ParameterError(
            f"members {list(todo)}", where="train_denoiser: members", fix=f"in 0..{ensemble - 1}"
        )
    for member in todo:
        k_init = jr.fold_in(raw_key, 2 * member)
        k_train = jr.fold_in(raw_key, 2 * member + 1)
        weights = _frame_weights(jr.fold_in(k_train, 1_000_003), n, cfg)
        model = build_model(cfg, k_init)
        opt_state = opt.init(eqx.filter(model, eqx.is_array))
        done = 0
        if ckpt is not None:
            state = ckpt.load(member, model, opt_state)
            if state is not None:
                model, opt_state, done, past = state
                losses[member, : len(past)] = past
        try:
            for s in range(done, total):
                lr = jnp.asarray(learning_rate_at(cfg, s), dtype=jnp.float32)
                model, opt_state, loss = step_fn(
                    model, opt_state, data_j, weights, jr.fold_in(k_train, s), lr
                )
                loss_f = float(loss)
                losses[member, s] = loss_f
                done = s + 1
                if ckpt is not None and done % checkpoint_every == 0 and done < total:
                    ckpt.save(member, model, opt_state, done, losses[member, :done])
                if callback is not None:
                    callback(member * total + done, ensemble * total, loss_f)
        except KeyboardInterrupt:
            if ckpt is not None:
                ckpt.save(member, model, opt_state, done, losses[member, :done])
            raise
        if ckpt is not None:
            ckpt.save(member, model, opt_state, done, losses[member, :done])
        models.append(model)
    elapsed = time.perf_counter() - t0
    tail = max(1, min(100, total))
    training = {
        "time_s": elapsed,
        "steps": total,
        "final_loss": float(np.nanmean(losses[:, -tail:])),
        "losses": losses,
    }
    return Denoiser(cfg, tuple(models), training)


# ---------------------------------------------------------------------------- pieces


def _check_options(
    method: str,
    ensemble: int,
    epochs: int,
    patch_size: int,
    batch_size: int | None,
    learning_rate: float,
    steps_per_epoch: int | None,
    window: int,
    depth: int,
    base_filters: int,
    umvd_features: int,
    masked_fraction: float,
    radius: int,
    struct_span: int,
    struct_orientation: str,
    lr_schedule: str,
    checkpoint_every: int,
) -> None:
    def bad(name: str, what: str, fix: str) -> ParameterError:
        return ParameterError(what, where=f"train_denoiser: {name}", fix=fix)

    if method not in METHODS:
        raise bad("method", f"unknown method {method!r}", f"choose one of {', '.join(METHODS)}")
    for name, v in (
        ("ensemble", ensemble),
        ("epochs", epochs),
        ("depth", depth),
        ("base_filters", base_filters),
        ("umvd_features", umvd_features),
        ("radius", radius),
        ("checkpoint_every", checkpoint_every),
    ):
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise bad(name, f"is {v!r}; must be an integer >= 1", f"set {name} >= 1")
    for name, v in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch)):
        if v is not None and (not isinstance(v, int | np.integer) or v < 1):
            raise bad(name, f"is {v!r}; must be an integer >= 1", f"set {name} >= 1 or omit it")
    m = 2**depth
    if patch_size < 16 or patch_size % m or patch_size < 2 * radius + 2:
        raise bad(
            "patch_size",
            f"is {patch_size}; must be >= 16, >= 2*radius+2 and a multiple of 2**depth = {m}",
            "use e.g. 32, 64 or 128",
        )
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise bad("learning_rate", f"is {learning_rate}", "use a positive value such as 1e-3")
    if window < 3 or window % 2 == 0:
        raise bad("window", f"is {window}; must be odd and >= 3", "use 5 or 7")
    if not 0 < masked_fraction <= 0.25:
        raise bad(
            "masked_fraction", f"is {masked_fraction}", "use a value in (0, 0.25]; N2V: 0.002"
        )
    if struct_span < 1 or struct_span % 2 == 0:
        raise bad("struct_span", f"is {struct_span}; must be odd", "use e.g. 7")
    if struct_orientation not in ("horizontal", "vertical"):
        raise bad(
            "struct_orientation", f"is {struct_orientation!r}", "use 'horizontal' or 'vertical'"
        )
    if lr_schedule not in ("cosine", "constant"):
        raise bad("lr_schedule", f"is {lr_schedule!r}", "use 'cosine' or 'constant'")


def _raw_key(key: Any) -> tuple[jax.Array, int]:
    """A raw ``uint32[2]`` key and the seed recorded in the config (-1 for a JAX key)."""
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        return jr.PRNGKey(int(key)), int(key)
    if isinstance(key, jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            return jr.key_data(key), -1
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return key, -1
    raise ParameterError(
        f"key is {key!r}",
        where="train_denoiser: key",
        fix="pass an int seed or a JAX PRNG key (jax.random.key(0))",
    )


def _frame_weights(key: jax.Array, n: int, cfg: DenoiserConfig) -> jax.Array:
    """Sampling probability of each frame: uniform, or a bootstrap resample's counts."""
    if cfg.ensemble > 1 and cfg.bootstrap and n > 1:
        counts = jnp.bincount(jr.randint(key, (n,), 0, n), length=n)
        return (counts / n).astype(jnp.float32)
    return jnp.full((n,), 1.0 / n, dtype=jnp.float32)


def _step_settings(cfg: DenoiserConfig) -> DenoiserConfig:
    """``cfg`` with the fields that do not enter the jitted step reset (a cache key).

    The learning rate is an argument of the step, so neither it nor the run length
    (which sets the schedule) forces a recompilation.
    """
    return dataclasses.replace(
        cfg,
        mean=(0.0,),
        std=(1.0,),
        seed=0,
        extra={},
        ensemble=1,
        bootstrap=False,
        epochs=1,
        steps_per_epoch=1,
        learning_rate=1.0,
        lr_schedule="constant",
    )


@functools.lru_cache(maxsize=16)
def _step_for(cfg: DenoiserConfig) -> tuple[optax.GradientTransformation, Callable[..., Any]]:
    """Optimiser and jitted step, cached so repeated runs with equal settings compile once."""
    opt = optax.scale_by_adam()
    return opt, _make_step(cfg, opt)


def learning_rate_at(cfg: DenoiserConfig, step: int) -> float:
    """Learning rate of step ``step`` (0-based): constant, or cosine decay to 1 %."""
    if cfg.lr_schedule == "constant":
        return cfg.learning_rate
    frac = min(step, cfg.total_steps) / cfg.total_steps
    return cfg.learning_rate * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * frac)))


def _make_step(cfg: DenoiserConfig, opt: optax.GradientTransformation) -> Callable[..., Any]:
    p = cfg.patch_size
    if cfg.method == "umvd":

        def loss_fn(model: eqx.Module, data: jax.Array, weights: jax.Array, key: jax.Array):
            x, y = umvd_batch(
                key,
                data,
                weights,
                batch_size=cfg.batch_size,
                patch=p,
                window=cfg.window,
                augment=cfg.augment,
            )
            pred = jax.vmap(model)(x)
            return jnp.mean((pred - y) ** 2)

    else:
        mode = {"n2v": "n2v", "n2v2": "n2v2", "structn2v": "struct"}[cfg.method]
        gap = max(cfg.radius, cfg.struct_span // 2) if mode == "struct" else cfg.radius
        grid = mask_grid(p, p, cfg.masked_fraction, gap)
        n_tf = 1 if not cfg.augment else (4 if mode == "struct" else 8)

        def loss_fn(model: eqx.Module, data: jax.Array, weights: jax.Array, key: jax.Array):
            x, y, ys, xs = n2v_batch(
                key,
                data,
                weights,
                batch_size=cfg.batch_size,
                patch=p,
                grid=grid,
                mode=mode,
                radius=cfg.radius,
                span=cfg.struct_span,
                horizontal=cfg.struct_orientation == "horizontal",
                n_transforms=n_tf,
            )
            pred = jax.vmap(model)(x)
            b = jnp.arange(x.shape[0])[:, None]
            return jnp.mean((pred[b, :, ys, xs] - y[b, :, ys, xs]) ** 2)

    @eqx.filter_jit
    def step(model, opt_state, data, weights, key, lr):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, data, weights, key)
        params, static = eqx.partition(model, eqx.is_array)
        updates, opt_state = opt.update(grads, opt_state, params)
        updates = jax.tree.map(lambda u: (-lr * u).astype(u.dtype), updates)
        params = optax.apply_updates(params, updates)  # keeps the float32 dtype
        return eqx.combine(params, static), opt_state, loss

    return step


class _Checkpoints:
    """``DIR/checkpoint.json`` (settings fingerprint) + ``DIR/member_###.eqx`` (state)."""

    def __init__(self, directory: str | os.PathLike[str], cfg: DenoiserConfig, shape: tuple):
        self.dir = Path(directory)
        self.fingerprint = {"config": cfg.to_dict(), "data_shape": list(shape)}
        meta = self.dir / "checkpoint.json"
        if meta.exists():
            old = json.loads(meta.read_text())
            if old != json.loads(json.dumps(self.fingerprint)):
                raise ParameterError(
                    "holds a checkpoint of a run with different data or settings",
                    where=f"checkpoint_dir {self.dir}",
                    fix="use an empty directory, or repeat the original settings to resume",
                )
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(meta) as tmp:
                tmp.write_text(json.dumps(self.fingerprint, indent=2))

    def _path(self, member: int) -> Path:
        return self.dir / f"member_{member:03d}.eqx"

    def save(self, member: int, model: Any, opt_state: Any, done: int, losses: np.ndarray) -> None:
        past = np.zeros(
            self.fingerprint["config"]["epochs"] * self.fingerprint["config"]["steps_per_epoch"],
            dtype=np.float32,
        )
        past[:done] = losses
        tree = (model, opt_state, np.asarray(done, dtype=np.int64), past)
        with atomic_path(self._path(member)) as tmp, open(tmp, "wb") as f:
            eqx.tree_serialise_leaves(f, tree)

    def load(self, member: int, model: Any, opt_state: Any) -> tuple | None:
        path = self._path(member)
        if not path.exists():
            return None
        cfg = self.fingerprint["config"]
        like = (
            model,
            opt_state,
            np.zeros((), dtype=np.int64),
            np.zeros(cfg["epochs"] * cfg["steps_per_epoch"], dtype=np.float32),
        )
        model, opt_state, done, past = eqx.tree_deserialise_leaves(path, like)
        done = int(done)
        return model, opt_state, done, np.asarray(past)[:done]
