"""Model directories: ``config.json`` (the settings, JSON) + ``weights.eqx`` (Equinox leaves).

Shared by the denoisers (:mod:`operando.denoise`) and the InDI enhancers
(:mod:`operando.enhance`): each file is written atomically, and loading checks that both
files exist, that the JSON parses and that the weights fit the network the config builds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import FileFormatError
from ._atomic import atomic_path

__all__ = ["MODEL_CONFIG", "MODEL_WEIGHTS", "read_model_dir", "write_model_dir"]

MODEL_WEIGHTS = "weights.eqx"
MODEL_CONFIG = "config.json"


def write_model_dir(path: str | os.PathLike[str], tree: Any, meta: dict[str, Any]) -> Path:
    """Write ``meta`` as ``config.json`` and the array leaves of ``tree`` as ``weights.eqx``."""
    import equinox as eqx

    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    with atomic_path(d / MODEL_WEIGHTS) as tmp, open(tmp, "wb") as f:
        eqx.tree_serialise_leaves(f, tree)
    with atomic_path(d / MODEL_CONFIG) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return d


def read_model_dir(
    path: str | os.PathLike[str],
    template: Callable[[dict[str, Any]], tuple[Any, Any]],
    *,
    fix: str,
) -> tuple[Any, Any, dict[str, Any]]:
    """Read a model directory written by :func:`write_model_dir`.

    ``template(meta)`` returns ``(config, like)``: the parsed config and a tree of the
    saved structure that the weights are read into. Returns ``(config, tree, meta)``.

    Raises
    ------
    FileFormatError
        Missing directory or files (with ``fix``), invalid JSON, or weights that do not
        match the config.
    """
    import equinox as eqx

    d = Path(path)
    cfg_path, w_path = d / MODEL_CONFIG, d / MODEL_WEIGHTS
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise FileFormatError(f"{p.name} not found", where=str(d), fix=fix)
    try:
        meta = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise FileFormatError(f"is not valid JSON ({e})", where=str(cfg_path)) from None
    cfg, like = template(meta)
    try:
        tree = eqx.tree_deserialise_leaves(w_path, like)
    except Exception as e:  # equinox raises various errors for a mismatched file
        raise FileFormatError(
            f"weights do not match the saved config ({type(e).__name__}: {e})",
            where=str(w_path),
            fix="the model directory is corrupt or mixed from two runs; save it again",
        ) from None
    return cfg, tree, meta
