"""The configuration a trained denoiser is rebuilt from (saved as JSON next to the weights)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import equinox as eqx
import jax.random as jr

from ..errors import FileFormatError
from ._unet import UMVDNet, UNet

__all__ = ["CONFIG_SCHEMA", "METHODS", "DenoiserConfig", "build_model"]

CONFIG_SCHEMA = "operando.denoiser/1"
METHODS = ("n2v", "n2v2", "structn2v", "umvd")


@dataclass(frozen=True)
class DenoiserConfig:
    """Everything needed to rebuild, apply and reproduce a trained denoiser.

    Network fields (``method``, ``channels``, ``depth``, ``base_filters``, ``window``,
    ``umvd_features``) define the architecture; ``mean``/``std`` are the per-channel
    normalisation of the training data (inverted on output); the remaining fields record
    the training settings so that a run can be reproduced from its saved config.
    """

    method: str
    channels: int = 1
    depth: int = 2
    base_filters: int = 32
    window: int = 5
    umvd_features: int = 16
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    ensemble: int = 1
    patch_size: int = 64
    masked_fraction: float = 0.002
    radius: int = 5
    struct_span: int = 7
    struct_orientation: str = "horizontal"
    augment: bool = True
    bootstrap: bool = True
    epochs: int = 100
    steps_per_epoch: int = 1
    batch_size: int = 16
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_video(self) -> bool:
        return self.method == "umvd"

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return {"schema": CONFIG_SCHEMA, **d}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "config.json") -> DenoiserConfig:
        d = dict(d)
        schema = d.pop("schema", None)
        if schema != CONFIG_SCHEMA:
            raise FileFormatError(
                f"schema is {schema!r}, expected {CONFIG_SCHEMA!r}",
                where=source,
                fix="load a model saved by operando's Denoiser.save",
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise FileFormatError(
                f"unknown config fields {unknown}",
                where=source,
                fix="the model was saved by a newer operando; upgrade operando",
            )
        if d.get("method") not in METHODS:
            raise FileFormatError(f"unknown method {d.get('method')!r}", where=source)
        d["mean"] = tuple(float(v) for v in d.get("mean", (0.0,)))
        d["std"] = tuple(float(v) for v in d.get("std", (1.0,)))
        return cls(**d)


def build_model(cfg: DenoiserConfig, key: Any) -> eqx.Module:
    """A freshly initialised network for ``cfg`` (float32 parameters)."""
    if cfg.method == "umvd":
        return UMVDNet(
            cfg.channels,
            n_frames=cfg.window,
            features=cfg.umvd_features,
            depth=cfg.depth,
            base_filters=cfg.base_filters,
            key=key,
        )
    return UNet(
        cfg.channels,
        cfg.channels,
        depth=cfg.depth,
        base_filters=cfg.base_filters,
        n2v2=cfg.method == "n2v2",
        key=key,
    )


def template_models(cfg: DenoiserConfig) -> tuple[eqx.Module, ...]:
    """Models of the right structure (weights to be overwritten by deserialisation)."""
    keys = jr.split(jr.PRNGKey(0), cfg.ensemble)
    return tuple(build_model(cfg, k) for k in keys)
