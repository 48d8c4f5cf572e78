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

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console()
err_console = Console(stderr=True)

__all__ = ["console", "err_console", "progress"]


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
