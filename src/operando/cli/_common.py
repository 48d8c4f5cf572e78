"""Shared pieces of the CLI: consoles, progress bars and the summary convention.

Conventions every command follows (see ``docs/cli.md``):

* ``--out`` names the output file or directory; outputs are written atomically.
* A command that produces results writes ``summary.json`` next to them: ``DIR/summary.json``
  when ``--out`` is a directory, ``FILE.summary.json`` (e.g. ``noisy.nc.summary.json``)
  when it is a file, so several outputs can share a folder.
* ``--seed`` wherever randomness enters; ``--json`` for machine-readable console output.
* Exit code 0 on success, 2 on bad input (a one-line error naming the file/field and the
  fix), 3 when a solver fails and was asked to raise; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

__all__ = [
    "ClusterConfigOpt",
    "ClusterOpt",
    "ParallelOptions",
    "SchedulerOpt",
    "WorkersOpt",
    "console",
    "err_console",
    "executor_from_options",
    "parse_list",
    "progress",
]


def parse_list(
    text: str, flag: str, kind: Callable[[str], T], *, example: str, size: int | None = None
) -> list[T]:
    """Comma-separated values of an option (``''``: none), or a one-line error naming it.

    ``size`` demands exactly that many values (e.g. 2 for a ``LO,HI`` range).
    """
    from ..errors import ParameterError

    try:
        vals = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        vals = None
    if vals is None or (size is not None and len(vals) != size):
        raise ParameterError(
            f"{text!r} is not a comma-separated list of {kind.__name__} values"
            + (f" ({size} of them)" if size is not None else ""),
            where=flag,
            fix=f"e.g. {flag} {example}",
        )
    return vals


@contextlib.contextmanager
def progress(description: str, *, fields: str = "") -> Iterator[Callable[..., None]]:
    """A Rich progress bar on stderr; yields ``update(done, total, **fields)``.

    ``fields`` is an extra Rich format string shown after the bar, e.g.
    ``"loss {task.fields[loss]:.3g}"``.
    """
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    if fields:
        columns.append(TextColumn(fields))
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int, **kw: object) -> None:
            bar.update(task, completed=done, total=total, **kw)

        yield update


def executor_from_options(
    workers: int | None, scheduler: str | None, cluster: str | None, cluster_config: str | None
):
    """The shared ``--workers/--scheduler/--cluster/--cluster-config`` flags as a config."""
    from ..errors import ParameterError
    from ..pipelines._parallel import ExecutorConfig

    if cluster not in (None, "local", "slurm"):
        raise ParameterError(
            f"unknown cluster '{cluster}'", where="--cluster", fix="use 'local' or 'slurm'"
        )
    kind = "slurm" if cluster == "slurm" else ("local" if cluster == "local" else "auto")
    return ExecutorConfig(kind, workers, scheduler, cluster_config)


def print_dashboard(client) -> None:
    """Print the Dask dashboard link when the cluster has one."""
    link = getattr(client, "dashboard_link", None)
    if link:
        err_console.print(f"Dask dashboard: {link}")


ParallelOptions = {
    "workers": "Worker processes (default: one per core; 1 runs serially in this process).",
    "scheduler": "Existing Dask scheduler: tcp://HOST:PORT or a scheduler JSON file.",
    "cluster": "Cluster type: 'local' (default) or 'slurm' (needs --cluster-config).",
    "cluster_config": "YAML file of dask_jobqueue.SLURMCluster options (see docs/parallel.md).",
}

#: The four parallel options every command that runs many fits takes (default ``None``).
WorkersOpt = Annotated[int | None, typer.Option("--workers", help=ParallelOptions["workers"])]
SchedulerOpt = Annotated[str | None, typer.Option("--scheduler", help=ParallelOptions["scheduler"])]
ClusterOpt = Annotated[str | None, typer.Option("--cluster", help=ParallelOptions["cluster"])]
ClusterConfigOpt = Annotated[
    str | None, typer.Option("--cluster-config", help=ParallelOptions["cluster_config"])
]
