"""``operando run CONFIG.yaml`` and ``operando report RUN_DIR``.

Registered by the CLI root as::

    app.command("run")(run_command)
    app.command("report")(report_command)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import console, err_console

__all__ = ["report_command", "run_command"]


def run_command(
    config: Annotated[Path, typer.Argument(help="Pipeline config (YAML; see docs/pipelines.md).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run directory (default: runs/NAME, NAME from run.name)."),
    ] = None,
    print_config: Annotated[
        bool,
        typer.Option(
            "--print-config", help="Validate, print the resolved config (all defaults) and exit."
        ),
    ] = False,
) -> None:
    """Run a pipeline described by a YAML config: input -> stages -> report.

    Stages (in this order, each optional): composition | neutron | optical, enhance,
    denoise, strain, learn_ch | learn_kinetics, uq, report. Each stage is cached in
    OUT/stages/ by a hash of its inputs and resolved options: re-running after editing a
    late stage recomputes only that stage and those after it, and an interrupted run resumes
    after the last finished stage. Writes OUT/config.yaml (the resolved config),
    OUT/run.json, OUT/summary.json and, with a report stage, OUT/report.html.
    """
    from ..pipelines._config import dump_config, load_config
    from ..pipelines._run import run_pipeline
    from ..report import write_report
    from ._common import progress

    cfg = load_config(config)
    if print_config:
        typer.echo(dump_config(cfg), nl=False)
        return
    out = out or Path("runs") / cfg.run.name
    with progress("run") as update:

        def _update(done: int, total: int, stage: str = "") -> None:
            update(done, total)
            if stage and stage != "done":
                err_console.print(f"stage {done + 1}/{total}: {stage}")

        record = run_pipeline(cfg, out, progress=_update, report_writer=write_report)
    print_run_record(record, out)
    console.print(f"run written to {out}/ (summary: {out / 'summary.json'})")


def print_run_record(record: dict, out: Path) -> None:
    """Print the stages of a finished run (computed or cached) and where its report is."""
    for s in record["stages"]:
        state = "cached" if s["cached"] else f"{s['wall_s']:.1f} s"
        console.print(f"  {s['name']:<15} {state:>10}  {s['dir']}")
    if record.get("report"):
        console.print(f"report: {out / record['report']}")


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="Output directory of 'operando run'.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="HTML file to write (default: RUN_DIR/report.html)."),
    ] = None,
) -> None:
    """Write a self-contained HTML report (figures embedded) of a pipeline run.

    Sections appear for the stages the run has: what was learned (key numbers),
    input data, composition, denoising before/after with metrics, learned laws with
    uncertainty bands against reference theory and the truth, data vs model frames,
    k(x, y) maps, convergence, other stages' figures, and the resolved configuration
    with provenance (version, input checksums, seeds, machine). The figures are also
    written as PNG files into report_figures/ next to the HTML file.
    """
    from ..report import write_report

    path = write_report(run_dir, out)
    console.print(f"report written to {path}")
