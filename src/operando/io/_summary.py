"""``summary.json``: the machine-readable record every results-producing command writes."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from ._atomic import write_json

__all__ = ["file_sha256", "input_checksums", "write_summary"]


def file_sha256(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def input_checksums(paths: Sequence[str | os.PathLike[str]]) -> dict[str, str]:
    """``{path: sha256}`` for input files (an HDF5 ``file.h5:/path`` spec hashes the file)."""
    out = {}
    for p in paths:
        file = _file_part(str(p))
        out[str(p)] = file_sha256(file) if os.path.isfile(file) else "missing"
    return out


def _file_part(spec: str) -> str:
    if os.path.exists(spec):
        return spec
    head, sep, _ = spec.rpartition(":")
    return head if sep and head else spec


def write_summary(
    out: str | os.PathLike[str],
    *,
    command: str,
    parameters: Mapping[str, Any],
    results: Mapping[str, Any],
    inputs: Sequence[str | os.PathLike[str]] = (),
    status: str = "ok",
) -> Path:
    """Write ``summary.json`` into directory ``out`` (or to ``out`` if it ends in .json).

    The record holds the command, status, key results, the resolved parameters, the
    operando/Python/JAX versions, the platform, the time and the SHA-256 of each input file,
    which is what is needed to reproduce (or audit) the result.
    """
    out = Path(out)
    path = out if out.suffix == ".json" else out / "summary.json"
    versions = {"operando": __version__, "python": sys.version.split()[0]}
    for mod in ("jax", "numpy", "xarray", "equinox"):
        m = sys.modules.get(mod)
        if m is not None:
            versions[mod] = getattr(m, "__version__", "unknown")
    record = {
        "command": command,
        "status": status,
        "results": dict(results),
        "parameters": dict(parameters),
        "inputs": input_checksums(inputs),
        "versions": versions,
        "platform": {
            "system": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    return write_json(record, path)
