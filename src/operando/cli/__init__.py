"""The ``operando`` command line.

A thin face over the Python API: each command parses its options, calls the API and
renders the result. Conventions are documented in :mod:`operando.cli._common` and
``docs/cli.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .._version import __version__
from ..errors import OperandoError
from ._common import (
    ClusterConfigOpt,
    ClusterOpt,
    SchedulerOpt,
    WorkersOpt,
    console,
    err_console,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="operando",
    help=(
        "operando: operando microscopy of battery materials to quantitative physics.\n\n"
        "Read and inspect datasets, corrupt them with the paper's noise models, compare "
        "images, simulate benchmark data, denoise, and learn constitutive laws."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_STATE = {"debug": False}


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"operando {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full Python tracebacks on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    _STATE["debug"] = debug


# ---------------------------------------------------------------------------- info


@app.command()
def info(
    file: Annotated[str, typer.Argument(help="Dataset file, or FILE.h5:/group/dataset.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print a dataset's shape, dims, metadata, provenance and whether ground truth is present."""
    from ..data import describe_dataset
    from ..io import read_dataset

    desc = {"file": file, **describe_dataset(read_dataset(file))}
    if as_json:
        typer.echo(json.dumps(desc, indent=2, default=str))
        return
    from rich.table import Table

    t = Table(title=f"operando dataset: {file}", show_header=False)
    t.add_row(
        "dims", " x ".join(f"{d}={n}" for d, n in zip(desc["dims"], desc["shape"], strict=True))
    )
    for d, c in desc["coords"].items():
        rng = f"{c.get('first')} .. {c.get('last')}" if "first" in c else ""
        t.add_row(f"coord {d}", f"{c['size']} values {rng} {c.get('units', '')}")
    t.add_row("pixel size", f"{desc['pixel_size']} {desc['pixel_unit']}")
    vr = desc["value_range"]
    vr_text = f"{vr[0]:.4g} .. {vr[1]:.4g}" if vr else "none finite"
    t.add_row("values", f"{vr_text} ({desc['nonfinite_pixels']} non-finite)")
    t.add_row("particles (masks)", str(desc["particles"]))
    t.add_row("variables", ", ".join(desc["variables"]))
    for k, v in desc["attributes"].items():
        t.add_row(f"attr {k}", str(v))
    t.add_row("provenance", "; ".join(s.get("step", "?") for s in desc["provenance"]) or "-")
    gt = desc["ground_truth"]
    if gt is None:
        t.add_row("ground truth", "absent")
    else:
        parts = (["clean images"] if gt["clean_images"] else []) + [
            f"function {f}" for f in gt["functions"]
        ]
        t.add_row("ground truth", f"present: {', '.join(parts) or 'parameters'}; seed {gt['seed']}")
        if gt["parameters"]:
            t.add_row("true parameters", json.dumps(gt["parameters"]))
    console.print(t)


# ------------------------------------------------------------------------- corrupt


@app.command()
def corrupt(
    input: Annotated[str, typer.Argument(help="Clean dataset file (or FILE.h5:/path).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output dataset file (.nc).")],
    noise: Annotated[
        str,
        typer.Option(
            "--noise",
            "-n",
            help=(
                "Noise spec: gaussian:REL (relative to the image std), poisson:LAMBDA, "
                "impulse:ALPHA (then 3x3 median), composite (impulse 0.2, Poisson 1e4, "
                "Gaussian 10%, median), scanline:SIGMA:LEN (correlated along x)."
            ),
        ),
    ],
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    clip: Annotated[
        bool,
        typer.Option("--clip/--no-clip", help="Clip values to [0.01, 0.99] as in seed 000 S2.1."),
    ] = True,
) -> None:
    """Corrupt a dataset with a noise model; the clean input is kept as ground truth.

    Writes OUT and OUT.summary.json (noise spec, seed, PSNR/SSIM of noisy vs clean).
    """
    from ..pipelines import corrupt_file

    summary = corrupt_file(input, out, noise=noise, seed=seed, clip=clip)
    console.print(
        f"wrote {out} ({summary['results']['noise']}, PSNR {summary['results']['psnr']:.2f} dB)"
    )


# ------------------------------------------------------------------------- metrics


@app.command()
def metrics(
    reference: Annotated[str, typer.Argument(help="Reference (clean) dataset file.")],
    other: Annotated[str, typer.Argument(help="Dataset to compare with the reference.")],
    data_range: Annotated[
        float | None,
        typer.Option(
            "--data-range",
            help="Data range for PSNR/SSIM; default: max - min of the reference (reported).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the figures to this JSON file.")
    ] = None,
) -> None:
    """Compare two datasets' images: MSE, PSNR, SSIM (explicit data range)."""
    from ..pipelines import compare_files

    res = compare_files(reference, other, data_range=data_range, out=out)
    if as_json:
        typer.echo(json.dumps(res, indent=2))
        return
    for k, v in res["results"].items():
        console.print(f"{k:>16}: {v:.6g}" if isinstance(v, float) else f"{k:>16}: {v}")


# ---------------------------------------------------------------------------- demo


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("demo"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed (run.seed).")] = 0,
    quick: Annotated[bool, typer.Option("--quick", help="Smaller, faster version.")] = False,
    ch: Annotated[
        bool,
        typer.Option(
            "--ch",
            help="Run the Cahn–Hilliard demo instead (simulate, composite noise, PSNR/SSIM, "
            "learn mu_h(c) and D(c) from clean snapshots; about a minute).",
        ),
    ] = False,
    config: Annotated[
        bool,
        typer.Option(
            "--config",
            help="Print the YAML config of the pipeline demo (a starting point for "
            "'operando run') and exit.",
        ),
    ] = False,
) -> None:
    """Run the end-to-end demo on built-in synthetic data with known truth.

    Default: the whole pipeline as an ordinary 'operando run' config (print it with
    --config): simulate LiFePO4 particles through (dis)charge with known kinetics, render
    them as noisy STXM stacks, compute composition maps, denoise them (N2V), learn mu_h(c),
    j0(c) and k(x, y), run a small particle bootstrap and write OUT/report.html. About 2.5
    minutes on 2 cores (--quick: two tiny particles, no bootstrap, about 1 minute). Stages
    are cached in OUT/stages/, so a second run reuses them. The report compares every
    learned quantity with the truth (the --quick fit is only a first look).

    --ch: the Cahn–Hilliard demo: simulate a phase-separation series, corrupt it with the
    paper's composite noise, measure PSNR/SSIM, learn mu_h(c) and D(c) back from a small
    clean series, and write OUT/ with the data, summary.json and figures.
    """
    if config:
        from ..pipelines import demo_config_yaml

        typer.echo(demo_config_yaml(quick, seed), nl=False)
        return
    from ._common import progress

    if ch:
        from ..pipelines import run_demo

        with progress("demo") as update:
            summary = run_demo(out, seed=seed, quick=quick, progress=update)
        for line in summary["results"].get("highlights", []):
            console.print(f"  {line}")
        console.print(f"demo written to {out}/ (summary: {out / 'summary.json'})")
        return
    from ..pipelines import run_demo_chain
    from ..report import write_report
    from ._run import print_run_record

    with progress("demo") as update:
        record = run_demo_chain(
            out, quick=quick, seed=seed, progress=lambda d, t, **k: update(d, t),
            report_writer=write_report,
        )  # fmt: skip
    print_run_record(record, out)
    console.print(f"demo written to {out}/ (summary: {out / 'summary.json'})")


# ------------------------------------------------------------------- cluster


@app.command("cluster-check")
def cluster_check(
    jobs: Annotated[int, typer.Option("--jobs", help="Number of small fits to run.")] = 8,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cluster: ClusterOpt = None,
    cluster_config: ClusterConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check a Dask cluster: run small fits on it and serially, and compare the numbers.

    Use it once after configuring --scheduler or --cluster slurm: it reports whether the
    workers give the same results as this process, how many distinct worker processes ran
    jobs, and the wall time of both runs.
    """
    import time

    from ..pipelines._parallel import ExecutorConfig, map_jobs, selftest_fit
    from ._common import executor_from_options, print_dashboard, progress

    cfg = executor_from_options(workers, scheduler, cluster, cluster_config).resolved()
    batch = {f"fit{i}": {"seed": i} for i in range(jobs)}
    t0 = time.perf_counter()
    serial = map_jobs(selftest_fit, batch, executor=ExecutorConfig("serial"))
    t1 = time.perf_counter()
    with progress(f"cluster ({cfg.kind})") as update:
        par = map_jobs(
            selftest_fit, batch, executor=cfg, progress=update, on_cluster=print_dashboard
        )
    t2 = time.perf_counter()
    max_diff = max(abs(par[j][k] - serial[j][k]) for j in batch for k in ("a", "b"))
    report = {
        "executor": cfg.kind,
        "workers": cfg.workers,
        "jobs": jobs,
        "max_abs_difference": max_diff,
        "identical": max_diff == 0.0,
        "worker_processes": len({r["pid"] for r in par.values()}),
        "serial_s": t1 - t0,
        "parallel_s": t2 - t1,
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for k, v in report.items():
            console.print(f"{k:>20}: {v}")


# ------------------------------------------------------------------- sub-apps

from ._denoise import denoise_command  # noqa: E402
from ._enhance import app as _enhance_app  # noqa: E402
from ._kinetics import kinetics_command  # noqa: E402
from ._learn import app as _learn_app  # noqa: E402
from ._neutron import app as _neutron_app  # noqa: E402
from ._optical import app as _optical_app  # noqa: E402
from ._run import report_command, run_command  # noqa: E402
from ._simulate import app as _simulate_app  # noqa: E402
from ._strain import app as _strain_app  # noqa: E402
from ._stxm import app as _stxm_app  # noqa: E402

app.command("denoise")(denoise_command)
app.command("run")(run_command)
app.command("report")(report_command)
_learn_app.command("kinetics")(kinetics_command)
app.add_typer(_learn_app, name="learn")
app.add_typer(_enhance_app, name="enhance")
app.add_typer(_neutron_app, name="neutron")
app.add_typer(_optical_app, name="optical")
app.add_typer(_simulate_app, name="simulate")
app.add_typer(_strain_app, name="strain")
app.add_typer(_stxm_app, name="stxm")

# ------------------------------------------------------------------------ entry


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, turning operando errors into exit code 2."""
    from ..config import enable_x64

    enable_x64()  # physics runs in float64; networks cast to float32 explicitly
    try:
        app(args=argv, prog_name="operando")
    except OperandoError as e:
        if _STATE["debug"]:
            raise
        err_console.print(f"operando: error: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("operando: interrupted (completed outputs are intact)")
        sys.exit(130)
