"""Training an InDI enhancer (or the regression CNN baseline) on one paired scan."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

from ..denoise._augment import random_transform
from ..errors import DataError, ParameterError
from ._indi import indi_loss
from ._model import Enhancer, EnhancerConfig, build_network
from ._pairs import PairedData, prepare_pairs

__all__ = ["train_enhancer", "train_on_pairs"]


def _make_step(opt: optax.GradientTransformation, cfg: EnhancerConfig, crop: int, batch: int):
    def sample(key: jax.Array, lq: jax.Array, hq: jax.Array, idx: jax.Array):
        _, h, w = lq.shape
        ki, ky, kx, kr = jr.split(key, 4)
        which = idx[jr.randint(ki, (batch,), 0, idx.shape[0])]
        y0 = jr.randint(ky, (batch,), 0, h - crop + 1)
        x0 = jr.randint(kx, (batch,), 0, w - crop + 1)
        rot = jr.randint(kr, (batch,), 0, 8)

        def one(i, a, b, k):
            pair = jnp.stack([lq[i], hq[i]])
            pair = jax.lax.dynamic_slice(pair, (0, a, b), (2, crop, crop))
            return random_transform(pair, k, 8)

        pairs = jax.vmap(one)(which, y0, x0, rot)
        return pairs[:, 1:2], pairs[:, 0:1]  # x (hq), y (lq)

    @eqx.filter_jit
    def step(model, state, key, lq, hq, idx):
        ks, kl = jr.split(key)
        x, y = sample(ks, lq, hq, idx)

        def loss_fn(m):
            return indi_loss(
                lambda xt, t: jax.vmap(m)(xt, t),
                x,
                y,
                kl,
                p_one=cfg.p_one,
                noise=cfg.path_noise,
                loss=cfg.loss,
            )

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), state, loss

    return step


def train_on_pairs(
    pairs: PairedData,
    *,
    key: int | jax.Array = 0,
    method: str = "indi",
    epochs: int = 20,
    steps_per_epoch: int | None = None,
    batch_size: int = 4,
    crop: int = 48,
    learning_rate: float = 5e-4,
    base_filters: int = 16,
    depth: int = 2,
    bottleneck_blocks: int = 2,
    loss: str = "mae_mse",
    p_one: float = 0.05,
    path_noise: float = 0.0,
    steps: int = 8,
    lq_voxel: float | None = None,
    hq_voxel: float | None = None,
    callback: Callable[..., None] | None = None,
) -> Enhancer:
    """Train on prepared pairs (see :func:`train_enhancer` for the options)."""
    if isinstance(key, int):
        key = jr.PRNGKey(key)
    if method == "regression":
        p_one, steps = 1.0, 1
    n_train, h, w = pairs.lq_up[pairs.train].shape
    if crop > min(h, w):
        raise ParameterError(
            f"crop={crop} exceeds the slice size {h}x{w}",
            where="train_enhancer: crop",
            fix="use a smaller crop",
        )
    mult = 2**depth
    if crop % mult:
        raise ParameterError(
            f"crop={crop} must be a multiple of 2**depth = {mult}", where="train_enhancer: crop"
        )
    lq_stats = tuple(float(v) for v in np.percentile(pairs.lq_up[pairs.train], [1, 99]))
    cfg = EnhancerConfig(
        method=method,
        base_filters=base_filters,
        depth=depth,
        bottleneck_blocks=bottleneck_blocks,
        loss=loss,
        p_one=p_one,
        path_noise=path_noise,
        steps=steps,
        lq_range=pairs.norm.lq_range,
        hq_range=pairs.norm.hq_range,
        lq_stats=lq_stats,
        lq_voxel=lq_voxel,
        hq_voxel=hq_voxel,
    )
    if steps_per_epoch is None:
        steps_per_epoch = max(1, n_train * (h // crop) * (w // crop) // batch_size)
    total = epochs * steps_per_epoch
    if total < 1:
        raise ParameterError("no training steps", where="train_enhancer: epochs")
    kinit, key = jr.split(key)
    model = build_network(cfg, kinit)
    sched = optax.cosine_onecycle_schedule(total, learning_rate)
    opt = optax.adam(sched)
    state = opt.init(eqx.filter(model, eqx.is_array))
    step = _make_step(opt, cfg, crop, batch_size)
    lq = jnp.asarray(pairs.lq_up, jnp.float32)
    hq = jnp.asarray(pairs.hq, jnp.float32)
    idx = jnp.asarray(pairs.train)
    losses = np.zeros(total)
    t0 = time.perf_counter()
    for i in range(total):
        key, k = jr.split(key)
        model, state, lval = step(model, state, k, lq, hq, idx)
        losses[i] = float(lval)
        if not np.isfinite(losses[i]):
            raise DataError(
                f"training loss became {losses[i]} at step {i}",
                where="train_enhancer",
                fix="lower the learning rate",
            )
        if callback is not None and (i + 1) % max(1, steps_per_epoch // 4) == 0:
            callback(i + 1, total, loss=float(losses[max(0, i - 20) : i + 1].mean()))
    info = {
        "time_s": time.perf_counter() - t0,
        "steps": total,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "batch_size": batch_size,
        "crop": crop,
        "learning_rate": learning_rate,
        "final_loss": float(losses[-min(50, total) :].mean()),
        "n_train_slices": len(pairs.train),
        "n_test_slices": len(pairs.test),
        "registration": pairs.registration,
    }
    cfg = replace(cfg, training=info)
    return Enhancer(cfg, model, {"losses": losses})


def train_enhancer(
    lq: Any,
    hq: Any,
    *,
    key: int | jax.Array = 0,
    method: str = "indi",
    offset: tuple[int, int, int] | None = None,
    register: str = "translation",
    holdout: float = 0.1,
    **options: Any,
) -> tuple[Enhancer, PairedData]:
    """Train an enhancer on one low-quality and one high-quality volume (seed 001).

    Parameters
    ----------
    lq, hq
        Low-quality volume ``(z, y, x)`` and high-quality volume of its central (or
        ``offset``) field of view at half the voxel size (see :func:`prepare_pairs`).
    key
        Seed or PRNG key (weights, crops, augmentation, times).
    method
        ``"indi"`` or ``"regression"`` (the CNN baseline: the same network trained only
        at ``t = 1`` and applied in one step).
    offset, register, holdout
        Passed to :func:`prepare_pairs`.
    **options
        ``epochs`` (20), ``steps_per_epoch`` (one pass over non-overlapping crops),
        ``batch_size`` (4), ``crop`` (48; the paper 640), ``learning_rate`` (peak of the
        one-cycle cosine schedule, 5e-4 as in the paper), ``base_filters`` (16; the paper
        64), ``depth`` (2), ``bottleneck_blocks`` (2), ``loss`` (``"mae_mse"``, ``"l1"``,
        ``"l2"``), ``p_one`` (0.05: probability of ``t = 1``), ``path_noise`` (0),
        ``steps`` (default inference steps, 8), ``lq_voxel``/``hq_voxel`` (recorded),
        ``callback(step, total, loss=...)``.

    Returns
    -------
    (Enhancer, PairedData)
        The trained model and the pairs (with the held-out slice indices).
    """
    if method not in ("indi", "regression"):
        raise ParameterError(
            f"method={method!r} unknown",
            where="train_enhancer: method",
            fix="use 'indi' or 'regression'",
        )
    pairs = prepare_pairs(lq, hq, offset=offset, register=register, holdout=holdout)
    return train_on_pairs(pairs, key=key, method=method, **options), pairs
