"""Atomic file output: write to a temporary file beside the target, then rename.

A crash (or Ctrl-C) during a write leaves at most a hidden ``.NAME.tmp-*`` file, never a
half-written result under the final name, because :func:`os.replace` is atomic on POSIX
and Windows when source and target are on the same file system.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_path", "json_default", "write_json"]

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path; on success it is renamed to ``path``, on error removed.

    Examples
    --------
    >>> with atomic_path("out.txt") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("done")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give a normal file's mode
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def json_default(o: Any) -> Any:
    """JSON encoder fallback for NumPy/JAX scalars and arrays and paths."""
    if isinstance(o, np.generic):
        return o.item()
    if hasattr(o, "__array__"):
        return np.asarray(o).tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    return str(o)


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as indented JSON, atomically. NaN/inf are written as null."""
    text = json.dumps(_finite(obj), indent=2, default=json_default, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return Path(path)


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float | np.floating) and not np.isfinite(obj):
        return None
    return obj
