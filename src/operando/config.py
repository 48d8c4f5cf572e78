"""Run-time configuration that must be chosen explicitly, never as an import side effect.

Physics runs in float64. JAX defaults to float32, and the switch is global, so library
modules never flip it on import; entry points (the CLI, pipelines, tests) call
:func:`enable_x64` once. Numerical functions that need float64 call
:func:`require_x64`, which fails loudly instead of computing silently in float32.
"""

from __future__ import annotations

import os

__all__ = ["cap_threads", "enable_x64", "require_x64", "x64_enabled"]


def enable_x64() -> None:
    """Enable float64 in JAX (idempotent). Call at program entry points only."""
    import jax

    jax.config.update("jax_enable_x64", True)


def x64_enabled() -> bool:
    """Whether JAX currently computes in float64 by default."""
    import jax

    return bool(jax.config.read("jax_enable_x64"))


def require_x64(what: str) -> None:
    """Raise if float64 is off; ``what`` names the computation that needs it."""
    from .errors import ParameterError

    if not x64_enabled():
        raise ParameterError(
            "needs float64 but JAX is in float32 mode",
            where=what,
            fix="call operando.config.enable_x64() at the start of your program",
        )


def cap_threads(n: int = 1) -> None:
    """Cap XLA/BLAS threads in *this* process (for Dask workers); call before importing JAX."""
    n = max(int(n), 1)
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in flags:
        flags += f" --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={n}"
    os.environ["XLA_FLAGS"] = flags.strip()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
