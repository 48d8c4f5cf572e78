"""Map independent jobs (fits, trainings) over an executor, with a checkpointed job store.

One place decides *where* work runs, so every workflow gets the same behaviour:

* ``serial``: a plain loop in this process (the reference; also what 1 worker means);
* ``local``: a :class:`distributed.LocalCluster` of worker *processes* on this machine,
  the default when more than one core is available;
* ``scheduler``: an existing Dask scheduler, by address (``tcp://host:8786``) or by a
  scheduler file (JSON written by ``dask scheduler --scheduler-file``);
* ``slurm``: a :class:`dask_jobqueue.SLURMCluster` configured from a YAML file.

Worker processes are *spawned* (Dask's default start method; forking a process that has
imported JAX can deadlock), run one task at a time (``threads_per_worker=1``) with XLA's
and BLAS's thread pools capped to one thread, and return NumPy data. Local workers are
pinned to one CPU each when there are fewer than two CPUs per worker
(:func:`local_worker_env`): a JAX process keeps a second core busy despite the caps. A
task whose worker dies is rescheduled by Dask; a task that raises is retried ``retries`` times.

Every finished job's result is written atomically into a :class:`JobStore` (one ``.npz``
per job, named by the job id and a SHA-256 digest of the function, its parameters and
the caller's input checksums) as soon as it arrives, so an interrupted run loses at most
the jobs in flight, and re-running the same command resumes: jobs whose digest is already
stored are not recomputed.

Why not ``dask.bag``/``dask.delayed`` alone: they give neither per-job checkpoints nor
resumption; the store is ~100 lines and keeps results readable with NumPy alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import OperandoError, ParameterError
from ..io import atomic_path
from ..io._atomic import json_default

__all__ = [
    "ExecutorConfig",
    "JobFailedError",
    "JobStore",
    "job_digest",
    "map_jobs",
    "selftest_fit",
    "wait_seconds",
]

Kind = Literal["auto", "serial", "local", "scheduler", "slurm"]

#: Environment of worker processes: one thread per pool, so N workers use N cores.
WORKER_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def local_worker_env(n_workers: int) -> dict[str, str]:
    """Environment of the ``n_workers`` processes of a local cluster.

    :data:`WORKER_ENV`, plus core pinning when there are fewer than two CPUs per worker:
    the XLA flags do not stop a one-task JAX process from keeping a second core busy
    (measured on 2 cores: a kinetics fit takes 1.7 cores' CPU time unpinned, and runs
    only 10 % slower pinned to one), so unpinned workers on a full machine compete for
    cores with each other's mostly idle threads. Pinned, worker ``i`` (its name in the
    local cluster) runs on the ``i``-th CPU this process may use. Measured: two pinned
    workers run a 16-refit kinetics bootstrap 1.55-1.68x faster than one worker on one
    core, 1.2-1.3x faster than one unpinned worker (docs/parallel.md "Speed-up and
    overhead").
    """
    env = dict(WORKER_ENV)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cpus and 2 * int(n_workers) > len(cpus):
        env["OPERANDO_PIN_CPUS"] = ",".join(str(c) for c in cpus)
    return env


def _pin_to_core() -> None:
    """In a pinned local worker (``OPERANDO_PIN_CPUS``), bind all its threads to its CPU."""
    cpus = os.environ.get("OPERANDO_PIN_CPUS")
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return  # not in a Dask worker
    if not isinstance(name, int):
        return
    cpu = [int(c) for c in cpus.split(",")][name % len(cpus.split(","))]
    if os.sched_getaffinity(0) == {cpu}:
        return
    for tid in os.listdir("/proc/self/task"):  # every thread, those of XLA's pools too
        with contextlib.suppress(OSError, ValueError):
            os.sched_setaffinity(int(tid), {cpu})


class JobFailedError(OperandoError, RuntimeError):
    """A job kept failing after its retries."""

    exit_code = 3


# ------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ExecutorConfig:
    """Where jobs run (see module docstring).

    Parameters
    ----------
    kind
        ``"auto"`` picks ``"scheduler"`` if ``scheduler`` is given, ``"slurm"`` if
        ``cluster_config`` is given, else ``"local"`` when ``workers`` (default: the
        number of cores) is above 1, else ``"serial"``.
    workers
        Number of worker processes (local) or jobs to request (SLURM).
    scheduler
        Address ``tcp://host:port`` or path of a scheduler file.
    cluster_config
        YAML file with keyword arguments of :class:`dask_jobqueue.SLURMCluster`
        (``cores``, ``memory``, ``queue``, ``walltime``, ``account``, ...).
    """

    kind: Kind = "auto"
    workers: int | None = None
    scheduler: str | None = None
    cluster_config: str | None = None

    def resolved(self) -> ExecutorConfig:
        """The config with ``auto`` and ``workers=None`` replaced by concrete choices."""
        if self.workers is not None and self.workers < 1:
            raise ParameterError(
                f"workers = {self.workers}", where="--workers", fix="use 1 or more workers"
            )
        kind = self.kind
        workers = self.workers
        if kind == "auto":
            if self.scheduler:
                kind = "scheduler"
            elif self.cluster_config:
                kind = "slurm"
            else:
                workers = workers or (os.cpu_count() or 1)
                kind = "local" if workers > 1 else "serial"
        if kind == "scheduler" and not self.scheduler:
            raise ParameterError(
                "no scheduler given", where="--scheduler", fix="pass tcp://HOST:PORT or a file"
            )
        if kind == "slurm" and not self.cluster_config:
            raise ParameterError(
                "SLURM needs a cluster config",
                where="--cluster-config",
                fix="pass a YAML file with SLURMCluster options (see docs/parallel.md)",
            )
        if kind == "local":
            workers = workers or (os.cpu_count() or 1)
        return ExecutorConfig(kind, workers, self.scheduler, self.cluster_config)


# -------------------------------------------------------------------------- store


def job_digest(fn: Callable[..., Any], params: Mapping[str, Any], salt: Any = None) -> str:
    """SHA-256 of the job function's qualified name, its parameters and a salt.

    Arrays in ``params`` are hashed by dtype, shape and bytes; pass input-file checksums in
    ``salt`` so that a changed input invalidates stored results.
    """
    h = hashlib.sha256()
    h.update(f"{fn.__module__}.{fn.__qualname__}".encode())
    h.update(json.dumps(_canonical(params), sort_keys=True, default=json_default).encode())
    h.update(json.dumps(_canonical(salt), sort_keys=True, default=json_default).encode())
    return h.hexdigest()


def _canonical(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.ndarray) or (hasattr(obj, "__array__") and not np.isscalar(obj)):
        a = np.ascontiguousarray(np.asarray(obj))
        return {
            "__array__": hashlib.sha256(a.tobytes()).hexdigest(),
            "dtype": str(a.dtype),
            "shape": list(a.shape),
        }
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


class JobStore:
    """Finished job results in a directory, one ``.npz`` per job, written atomically.

    A result is a mapping of names to arrays or JSON-serialisable values; arrays are stored
    as ``.npz`` members and everything else in a JSON member ``__meta__``.
    """

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, job_id: str, digest: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(job_id))
        return self.directory / f"{safe}-{digest[:16]}.npz"

    def has(self, job_id: str, digest: str) -> bool:
        return self.path(job_id, digest).is_file()

    def save(self, job_id: str, digest: str, result: Mapping[str, Any]) -> Path:
        arrays, meta = {}, {}
        for k, v in dict(result).items():
            if isinstance(v, np.ndarray) or (hasattr(v, "__array__") and np.ndim(v) > 0):
                arrays[k] = np.asarray(v)
            else:
                meta[k] = v.item() if isinstance(v, np.generic) else v
        meta_text = json.dumps(
            {"job_id": job_id, "digest": digest, "values": meta}, default=json_default
        )
        path = self.path(job_id, digest)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, __meta__=np.array(meta_text), **arrays)
        return path

    def load(self, job_id: str, digest: str) -> dict[str, Any]:
        with np.load(self.path(job_id, digest), allow_pickle=False) as z:
            meta = json.loads(str(z["__meta__"]))
            out: dict[str, Any] = dict(meta["values"])
            out.update({k: z[k] for k in z.files if k != "__meta__"})
        return out


# --------------------------------------------------------------------------- map


def _run_job(fn: Callable[..., Mapping[str, Any]], params: Mapping[str, Any], x64: bool) -> dict:
    """Worker-side wrapper: pin (local clusters), float64 on if asked, NumPy-ify the result."""
    _pin_to_core()
    if x64:
        import jax

        jax.config.update("jax_enable_x64", True)
    res = fn(**params)
    if not isinstance(res, Mapping):
        raise TypeError(f"job function {fn.__qualname__} must return a mapping, got {type(res)}")
    return {k: (np.asarray(v) if hasattr(v, "__array__") else v) for k, v in res.items()}


def map_jobs(
    fn: Callable[..., Mapping[str, Any]],
    jobs: Mapping[str, Mapping[str, Any]],
    *,
    executor: ExecutorConfig | None = None,
    store: JobStore | str | os.PathLike[str] | None = None,
    salt: Any = None,
    retries: int = 2,
    x64: bool = True,
    progress: Callable[..., None] | None = None,
    on_cluster: Callable[[Any], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run ``fn(**params)`` for every ``{job_id: params}`` and return ``{job_id: result}``.

    Parameters
    ----------
    fn
        A module-level function (so that spawned workers can import it) returning a mapping
        of names to arrays or JSON-serialisable values.
    jobs
        Job ids and keyword arguments.
    executor
        Where to run (default: :class:`ExecutorConfig` ``auto``).
    store
        A :class:`JobStore` (or its directory). Finished jobs found there (same id and
        digest) are loaded instead of recomputed, and new results are saved as they arrive.
    salt
        Extra data for the job digests, typically input-file checksums.
    retries
        How often a job that raises is retried before the batch fails.
    x64
        Enable float64 in JAX in the worker before running the job.
    progress
        ``progress(done, total)`` after each finished job.
    on_cluster
        Called with the Dask client once it is connected (e.g. to print the dashboard link).

    Returns
    -------
    dict
        Results in the order of ``jobs``.
    """
    cfg = (executor or ExecutorConfig()).resolved()
    if isinstance(store, str | os.PathLike):
        store = JobStore(store)
    digests = {jid: job_digest(fn, p, salt) for jid, p in jobs.items()}
    results: dict[str, dict[str, Any]] = {}
    if store is not None:
        for jid, d in digests.items():
            if store.has(jid, d):
                results[jid] = store.load(jid, d)
    todo = [jid for jid in jobs if jid not in results]
    total = len(jobs)
    report = progress or (lambda *a, **k: None)
    report(len(results), total)

    def finish(jid: str, res: dict[str, Any]) -> None:
        if store is not None:
            store.save(jid, digests[jid], res)
        results[jid] = res
        report(len(results), total)

    if todo and cfg.kind == "serial":
        for jid in todo:
            finish(jid, _retrying(fn, jobs[jid], x64, retries, jid))
    elif todo:
        from distributed import as_completed

        with _client(cfg) as client:
            if on_cluster is not None:
                on_cluster(client)
            futures = {
                client.submit(
                    _run_job,
                    fn,
                    jobs[jid],
                    x64,
                    key=f"{jid}-{digests[jid][:12]}",
                    retries=retries,
                    pure=False,
                ): jid
                for jid in todo
            }
            try:
                for fut in as_completed(futures):
                    jid = futures[fut]
                    try:
                        res = fut.result()
                    except Exception as e:
                        raise JobFailedError(
                            f"failed after {retries} retries ({type(e).__name__}: {e})",
                            where=f"job '{jid}'",
                            fix="run with --workers 1 --debug to see the traceback",
                        ) from e
                    finish(jid, res)
            finally:
                for fut in futures:
                    fut.cancel()
    return {jid: results[jid] for jid in jobs}


def _retrying(fn, params, x64, retries, jid):
    for attempt in range(retries + 1):
        try:
            return _run_job(fn, params, x64)
        except (KeyboardInterrupt, OperandoError):
            raise
        except Exception as e:
            if attempt == retries:
                raise JobFailedError(
                    f"failed after {retries} retries ({type(e).__name__}: {e})",
                    where=f"job '{jid}'",
                    fix="run with --debug to see the traceback",
                ) from e
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _client(cfg: ExecutorConfig) -> Iterator[Any]:
    from distributed import Client

    if cfg.kind == "scheduler":
        addr = cfg.scheduler or ""
        client = Client(scheduler_file=addr) if os.path.isfile(addr) else Client(address=addr)
        with client:
            yield client
        return
    if cfg.kind == "slurm":
        import yaml
        from dask_jobqueue import SLURMCluster

        try:
            options = yaml.safe_load(Path(cfg.cluster_config or "").read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ParameterError(
                f"cannot read the cluster config ({e})",
                where=str(cfg.cluster_config),
                fix="pass a YAML mapping of SLURMCluster options",
            ) from e
        env = [f"export {k}='{v}'" for k, v in WORKER_ENV.items()]
        options.setdefault("job_script_prologue", env)
        with SLURMCluster(**options) as cluster:
            cluster.scale(jobs=cfg.workers or 1)
            with Client(cluster) as client:
                yield client
        return
    from distributed import LocalCluster

    with (
        LocalCluster(
            n_workers=cfg.workers,
            threads_per_worker=1,
            processes=True,
            env=local_worker_env(cfg.workers or 1),
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def selftest_fit(seed: int, n: int = 40) -> dict[str, Any]:
    """A small nonlinear least-squares job for checking a cluster (``operando cluster-check``).

    Fits ``y = a exp(-b t)`` (true a = 2, b = 1.3) to 40 points with 1 % noise drawn from
    ``seed``; returns the estimates, the worker's process id and the CPUs it may use.
    """
    import jax
    import jax.numpy as jnp

    from ..inverse import least_squares

    t = np.linspace(0.0, 3.0, n)
    rng = np.random.default_rng(seed)
    y = 2.0 * np.exp(-1.3 * t) + 0.01 * rng.standard_normal(n)

    def residuals(p: dict[str, Any], args: tuple[np.ndarray, np.ndarray]) -> Any:
        return p["a"] * jnp.exp(-p["b"] * args[0]) - args[1]

    res = least_squares(residuals, {"a": jnp.asarray(1.0), "b": jnp.asarray(1.0)}, (t, y))
    return {
        "a": float(res.params["a"]),
        "b": float(res.params["b"]),
        "iterations": int(res.iterations),
        "x64": bool(jax.config.read("jax_enable_x64")),
        "pid": os.getpid(),
        "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [],
    }


def wait_seconds(seconds: float) -> dict[str, float]:
    """A trivial job (sleep, return the pid): used by tests and the overhead benchmark."""
    t0 = time.perf_counter()
    time.sleep(seconds)
    return {"pid": os.getpid(), "slept": time.perf_counter() - t0}
