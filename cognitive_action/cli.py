"""The ``cognitive-action`` command line.

Every command takes a problem file or the name of a shipped problem. Errors in the
input print one line (``error: ...`` with the fix) and exit with status 2; ``--debug``
shows the traceback instead. ``verify`` exits 1 when a check fails.

Commands
--------
``problems``   list the shipped problems
``derive``     print the derived equations (text, ``--latex``, ``--json``)
``verify``     run the verifier's checks
``simulate``   simulate the compiled system, write the trajectory and a plot
``waves``      Figures 1-3 of Section 2 and the error-against-speed table
``train``      train a problem's network on its ``[data]`` (a derived law — limit, dynamics or
               diffusion — beside SGD)
``sweep``      run a problem file's ``[sweep]`` on Dask (locally by default), resumably
``paper``      the main job: derive, verify and waves on the shipped problems

The commands parse arguments and print; what they run is :mod:`cognitive_action.workflow`,
the same calls with the same defaults for a Python user.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cognitive_action.errors import CognitiveActionError, CompileError, InterruptedRunError

EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INTERNAL = 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
#: Rows ``derive`` prints per block by default (of eq. 10, the longest rows, fewer:
#: ``workflow.PREVIEW_MULTIPLIER_ROWS``).
DERIVE_ROWS = 40


def _interrupted(exc: BaseException | None, debug: bool) -> None:
    """One line for Ctrl-C, exit 130 (the interrupt may have been swallowed by CasADi
    and come back as another exception: it is still an interrupt)."""
    if debug and exc is not None:
        traceback.print_exc()
    text = str(exc) if isinstance(exc, CognitiveActionError) else ""
    text = text.removeprefix("interrupted ")
    click.echo(f"interrupted (Ctrl-C){' ' + text if text else ''}", err=True)
    sys.exit(EXIT_INTERRUPTED)


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn typed errors into one-line messages with exit code 2, Ctrl-C into one line
    with exit code 130, and unexpected exceptions (bugs) into a one-line report with
    exit code 3."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from cognitive_action import interrupts

        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug"))
        with interrupts.handling():
            try:
                result = fn(*args, **kwargs)
            except KeyboardInterrupt as exc:
                _interrupted(exc, debug)
            except SystemExit:
                if interrupts.requested():
                    _interrupted(None, debug)
                raise
            except CognitiveActionError as exc:
                if interrupts.requested():
                    _interrupted(exc, debug)
                if debug:
                    traceback.print_exc()
                click.echo(f"error: {exc}", err=True)
                sys.exit(EXIT_BAD_INPUT)
            except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
                raise
            except BrokenPipeError:  # the reader went away (``| head``): stop quietly
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                sys.exit(0)
            except Exception as exc:  # a bug of ours: say so, traceback behind --debug
                if interrupts.requested():
                    _interrupted(None, debug)
                if debug:
                    traceback.print_exc()
                click.echo(f"internal error: {type(exc).__name__}: {exc}. This is a bug in "
                           "cognitive_action, not in your input; rerun with --debug for the "
                           "traceback and report it.", err=True)
                sys.exit(EXIT_INTERNAL)
            if interrupts.requested():  # swallowed on the way: never report success
                _interrupted(None, debug)
            return result

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.option("--max-neurons", type=click.IntRange(min=1), default=None,
              help="Most neurons a problem file may declare (default 1,000).")
@click.option("--max-weights", type=click.IntRange(min=1), default=None,
              help="Most weights a problem file may declare (default 50,000).")
@click.option("--max-points", type=click.IntRange(min=2), default=None,
              help="Most output points of a simulation (default 1,000,000).")
@click.option("--max-coordinates", type=click.IntRange(min=1), default=None,
              help="Most coordinates, and constraints, of a mechanical problem "
              "(default 500).")
@click.version_option(package_name="cognitive_action")
def main(debug: bool, max_neurons: int | None, max_weights: int | None,
         max_points: int | None, max_coordinates: int | None) -> None:
    """Learning laws as variational problems (Betti & Gori, 2020).

    Declare an action and constraints in a problem file, derive the constrained
    Euler-Lagrange and multiplier equations, verify the backprop limit.

    Problem files are untrusted input: what they may ask for is bounded (docs:
    security.md); --max-neurons, --max-weights, --max-points and --max-coordinates
    raise the budget.
    """


@main.command()
@_guard
def problems() -> None:
    """List the shipped problems."""
    from cognitive_action.problem_files.loader import load_problem, shipped_problems

    shipped = shipped_problems()
    width = max(map(len, shipped), default=0)
    for name, path in shipped.items():
        spec = load_problem(path)
        click.echo(f"{name:{width}s} {spec.description}")


def _limits() -> Any:
    """The size budget given to ``cognitive-action`` (its defaults where not given)."""
    import dataclasses

    from cognitive_action.problem_files.loader import Limits

    params = click.get_current_context().find_root().params
    given = {k: params.get(k) for k in ("max_neurons", "max_weights", "max_points",
                                        "max_coordinates")}
    return dataclasses.replace(Limits(), **{k: v for k, v in given.items() if v is not None})


def _load(problem: str) -> Any:
    from cognitive_action.problem_files.loader import load_problem

    return load_problem(problem, limits=_limits())


@main.command()
@click.argument("problem")
@click.option("--latex", "as_latex", is_flag=True, help="Print LaTeX.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON with SymPy-parsable expression strings.")
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="Equations shown per block on the terminal (default 40, and 10 of "
              "eq. (10), whose rows are the longest; --out writes all).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the whole system to this file instead (text, "
              "--latex or --json): never truncated.")
@_guard
def derive(problem: str, as_latex: bool, as_json: bool, max_rows: int | None,
           out_file: Path | None) -> None:
    """Derive the constrained Euler-Lagrange equations (8)-(9) and eq. (10).

    The terminal shows --max-rows rows per block and says when it cut; --out FILE
    writes every row.
    """
    from cognitive_action import workflow
    from cognitive_action.derive import latex
    from cognitive_action.derive.latex import row_count

    if out_file is not None:  # before any work: an unusable folder costs no derivation
        workflow.output_folder(out_file.parent)
    spec = _load(problem)
    given = max_rows is not None  # else 40 rows, and fewer of eq. (10) (derive_preview)
    max_rows = max_rows if given else DERIVE_ROWS
    pv = None if (out_file is not None or as_json or as_latex) else (
        workflow.derive_preview(spec, max_rows, multiplier_rows=max_rows) if given
        else workflow.derive_preview(spec, max_rows))  # the rows shown only (fast route)
    if pv is not None:
        click.echo(f"{spec.name}: {spec.description}")
        rule = (f" (rule: {spec.problem.nonholonomic})"
                if spec.problem.nonholonomic_constraints else "")
        click.echo(f"{pv.n_coordinates} coordinates, {len(spec.problem.holonomic)} "
                   f"holonomic and {len(spec.problem.nonholonomic_constraints)} "
                   f"non-holonomic constraints{rule}; ϖ̇/ϖ = {pv.rate}")
        click.echo("\nEuler-Lagrange equations (8)-(9), residual = 0:")
        shown = 0
        for q, r in pv.residuals:  # each row built as it is printed
            click.echo(f"  [{q}]  {workflow.display(r)} = 0")
            shown += 1
        if pv.n_coordinates > shown:
            click.echo(f"  … {pv.n_coordinates - shown} more (--max-rows, --out)")
        click.echo("\nConstraints:")
        for c in spec.problem.constraints[:max_rows]:
            click.echo(f"  {c.name} ({c.kind}): {workflow.display(c.expr)} = 0")
        if len(spec.problem.constraints) > max_rows:
            click.echo(f"  … {len(spec.problem.constraints) - max_rows} more (--max-rows, "
                       "--out)")
        shown = 0
        for lam, b in pv.multipliers:
            if shown == 0:
                click.echo("\nMultiplier equation (10): (J M⁻¹ Jᵀ) λ = J M⁻¹ f + h with")
            click.echo(f"  b[{lam}] = {workflow.display(b)}")
            shown += 1
        holonomic = len(spec.problem.holonomic)
        if shown and not spec.problem.nonholonomic_constraints and holonomic > shown:
            click.echo(f"  … {holonomic - shown} more (--max-rows, --out)")
        return
    el = workflow.derive_spec(spec)  # every equation: the whole system is materialized
    limit = None if out_file is not None else max_rows
    if as_json:
        text = json.dumps(workflow.equations_dict(spec, el), indent=2)
    elif as_latex:
        text = latex(el, max_rows=limit)
    else:
        text = workflow.derivation_text(spec, el, max_rows=limit)
    if out_file is None:
        click.echo(text)
        n = row_count(el)
        if as_latex and n > max_rows:
            click.echo(f"note: the terminal shows {max_rows} of {n} rows; --out FILE "
                       "writes the whole system", err=True)
        return
    data = (text + "\n").encode("utf-8")
    workflow.write_atomically(out_file, lambda f: f.write(data))
    click.echo(f"wrote {out_file} ({row_count(el)} equations, complete)")


@main.command()
@click.argument("problem")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--markdown", "as_markdown", is_flag=True,
              help="Print the report as a Markdown table.")
@click.option("--html", "as_html", is_flag=True, help="Print the report as an HTML table.")
@click.option("--simulate", is_flag=True,
              help="Also simulate: convergence orders of weights, velocities and "
              "multipliers toward the limits (theta -> oo, m_x -> 0) and the constraint "
              "drift along a run (seconds).")
@click.option("--symbolic/--no-symbolic", default=None,
              help="Run the symbolic checks at any size, or none (default: the file's "
              "[verify] symbolic, else up to 6 neurons).")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds each symbolic check may take before it is stopped and "
              "reported as skipped (default: the file's [verify] budget, else 20).")
@_guard
def verify(problem: str, as_json: bool, as_markdown: bool, as_html: bool, simulate: bool,
           symbolic: bool | None, budget: float | None) -> None:
    """Run the verifier's checks; exit 0 if all pass, 1 if one fails.

    Checks: Proposition 1 (rank), the backprop limit symbolically and numerically
    (against CasADi AD and finite differences), convergence toward it, stability of the
    multiplier dynamics, consistency of the initial conditions. The numeric checks
    decide; the symbolic ones run where cheap (or with --symbolic) under a time budget.
    Skipped checks are listed with the reason. On a terminal, a line per check goes to
    stderr as it runs.
    """
    from cognitive_action.workflow import verify_spec

    result = verify_spec(_load(problem), simulate=simulate, symbolic=symbolic, budget=budget,
                         progress=sys.stderr.isatty())
    ok = result.passed
    if as_json:
        data = result.report.to_dict() | {"passed": ok, "exit_code": 0 if ok else EXIT_FAIL,
                                          "outcome": result.outcome}
        click.echo(json.dumps(data, indent=2, default=str))
    elif as_markdown or as_html:
        click.echo(result.to_markdown() if as_markdown else result.to_html())
    else:
        click.echo(str(result.report))
        for name, o in result.outcome.items():
            if o in ("expected-fail", "UNEXPECTED-PASS"):
                click.echo(f"note: {name} is listed in [verify] expect_fail: {o}")
    sys.exit(0 if ok else EXIT_FAIL)


@main.command()
@click.argument("problem")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="results",
              show_default=True, help="Folder for the trajectory (.npz) and its plot.")
@click.option("--t-end", type=float, default=None, help="Final time (default: the file's).")
@click.option("--points", type=int, default=None, help="Output points (default: the file's).")
@click.option("--method", default=None,
              help="cvodes, adams, bdf, idas, dopri, erk, rk, collocation (default: the "
              "file's, or cvodes; the adjoint sweep takes cvodes, rk or collocation).")
@click.option("--stabilization", type=click.Choice(["baumgarte", "projection", "both"]),
              default=None, help="Constraint stabilization.")
@click.option("--variant", type=click.Choice(["forward", "relaxation", "adjoint"]),
              default=None,
              help="How anti-stable multiplier dynamics (eq. 20) run: as derived, the "
              "stable relaxation, or the adjoint sweep (multipliers backward from 0 at "
              "the final time; default: the file's [simulate] variant, else forward).")
@click.option("--loop", type=click.Choice(["python", "c"]), default=None,
              help="Where --method dopri runs its step loop: python (default) or c (the "
              "whole loop and the drift report as generated C; needs a C compiler, "
              "about 1 s to build the first time, cached).")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar (default: when stderr is a terminal).")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run from its checkpoint in --out (same "
              "problem and options); the result equals an uninterrupted run's bit for bit.")
@_guard
def simulate(problem: str, out: Path, t_end: float | None, points: int | None,
             method: str | None, stabilization: str | None, variant: str | None,
             loop: str | None, progress: bool | None, resume: bool) -> None:
    """Simulate the derived system from consistent initial conditions.

    Writes ``<name>_trajectory.npz`` (times, states by name, constraint drift),
    ``<name>_trajectory.png`` (panels: neurons and targets, weights, multipliers, loss,
    drift) and, with xarray, ``<name>_trajectory.nc`` (labelled arrays). The run goes in
    chunks and saves the completed part to ``<name>_trajectory.checkpoint.npz`` after
    each (removed when the run is saved): Ctrl-C stops it with exit code 130, and
    ``--resume`` continues it.
    """
    from cognitive_action import workflow

    workflow.output_folder(out)  # before any work: an unusable --out costs nothing
    wf = workflow.load(problem, limits=_limits())
    settings = wf.settings(t_end=t_end, points=points, method=method,
                           stabilization=stabilization, variant=variant, loop=loop,
                           progress=sys.stderr.isatty() if progress is None else progress)
    settings.check(wf.spec.limits)
    if loop == "c" and settings.solver.method != "dopri":
        raise CompileError(f"--loop c is the step loop of --method dopri, not of "
                           f"{settings.solver.method!r}",
                           fix="add --method dopri, or leave out --loop")
    if resume and settings.variant == "adjoint":
        raise CompileError("the adjoint sweep runs in one piece: there is nothing to "
                           "resume", fix="run it again without --resume")
    wf.prepare()  # derive and solve eq. (11) before the clock starts
    checkpoint = (None if settings.variant == "adjoint"
                  else workflow.checkpoint_path(out, wf.name))
    t0 = time.perf_counter()
    try:
        sim = wf.simulate(settings, checkpoint=checkpoint, resume=resume)
    except InterruptedRunError as exc:
        if exc.checkpoint is None:
            raise
        raise InterruptedRunError(exc.message, fix="rerun the same command with --resume",
                                  partial=exc.partial, time=exc.time, resume=exc.resume,
                                  checkpoint=exc.checkpoint) from None
    except (KeyboardInterrupt, Exception) as exc:
        from cognitive_action import interrupts

        if checkpoint is None and (isinstance(exc, KeyboardInterrupt)
                                   or interrupts.requested()):  # CasADi may swallow it
            raise InterruptedRunError(
                "during the adjoint sweep, which runs in one piece and keeps nothing: "
                "no trajectory or checkpoint was written",
                fix="rerun it to the end (the relaxation variant runs in chunks and "
                "resumes)") from None
        raise
    elapsed = time.perf_counter() - t0
    paths = wf.save(sim, out)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    done = sim.stats.get("resumed_chunks")
    if done:
        click.echo(f"resumed after {done} of {sim.stats['chunks']} chunks "
                   f"({checkpoint})")
    # a phase of an energy model has no constraints: say where it ended instead
    end = (f"max |G| = {sim.max_drift:.2e}" if sim.drift is not None else
           f"no constraints; max |dx/dt| at t_end = {workflow.final_rate(sim):.2e}")
    click.echo(f"{wf.name}: {len(sim.states)} states, t in [0, {settings.t_end:g}], "
               f"{settings.points} points, method {sim.method}, variant {sim.variant}, "
               f"{elapsed:.2f} s; {end}")
    click.echo("wrote " + ", ".join(str(p) for p in paths))


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="results",
              show_default=True, help="Folder for figures and tables.")
@click.option("--quick", is_flag=True, help="A smaller speed sweep (seconds, for tests).")
@_guard
def waves(out: Path, quick: bool) -> None:
    """Figures 1-3 of Section 2 and the gradient error against input speed."""
    from cognitive_action.workflow import output_folder

    output_folder(out)
    _waves(out, quick)


def _waves(out: Path, quick: bool) -> list[Path]:
    from cognitive_action.workflow import waves as run

    res = run(out, quick)
    click.echo(res.table)
    click.echo(res.summary)
    click.echo("continuous time (neurons 18-19, layers [2, 3, 3, 1], inputs sin(0.5 t)):")
    click.echo(res.continuous_table)
    for p in res.paths:
        click.echo(f"wrote {p}")
    return res.paths


@main.command(name="train")
@click.argument("problem")
@click.option("--epochs", type=click.IntRange(min=0), default=None,
              help="Passes over the data (default: the file's [train] epochs).")
@click.option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True),
              default=None, help="Learning rate η = τ/γ (default: the file's).")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the initial weights and the sample order.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the checkpoint, the learning curve and training.json; "
              "rerunning the same command continues from the last saved epoch.")
@click.option("--quick", is_flag=True, help="The file's quick_epochs on quick_samples.")
@click.option("--no-resume", is_flag=True, help="Start over even if --out has a checkpoint.")
@click.option("--mode", type=click.Choice(["limit", "dynamics", "diffusion"]), default=None,
              help="limit: the compiled backprop limit; dynamics: the full derived "
              "dynamics (finite masses, exp(theta t)); diffusion: neurons of speed c, "
              "eq. (18)-(20), stable relaxation (default: the file's [train] mode, else "
              "limit).")
@click.option("--tau", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Presentation time of a sample (dynamics, diffusion; default 1).")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Integration steps per sample (dynamics: default 1; diffusion: "
              "ceil(tau max(c, theta))).")
@click.option("--theta", type=click.FloatRange(min=0, min_open=True), default=None,
              help="theta of exp(theta t) (default: the file's [train] or parameter value).")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Diffusion speed c (diffusion; default 200).")
@_guard
def train_cmd(problem: str, epochs: int | None, learning_rate: float | None,
              seed: int | None, out: Path | None, quick: bool, no_resume: bool,
              mode: str | None, tau: float | None, steps: int | None, theta: float | None,
              speed: float | None) -> None:
    """Train PROBLEM's network on its [data] with a derived law (its backprop limit, its
    full dynamics or its diffusion law), beside plain NumPy SGD."""
    from cognitive_action.learn.train import CHECKPOINT
    from cognitive_action.workflow import TRAIN_LABELS, output_folder, train_spec

    if out is not None:
        output_folder(out)
    spec = _load(problem)
    bar: Any = None

    def progress(epoch: int, total: int, history: Any) -> None:
        nonlocal bar
        if sys.stdout.isatty():
            if bar is None:
                bar = click.progressbar(length=total, label="training")
                bar.__enter__()
                bar.update(history.resumed_from)
            bar.update(1)
            if epoch == total:
                bar.__exit__(None, None, None)
        else:
            acc = (f", test accuracy {history.test_accuracy[-1]:.4f}"
                   if history.test_accuracy else "")
            click.echo(f"epoch {epoch}/{total}: train loss {history.train_loss[-1]:.5f}{acc}")

    try:
        res = train_spec(spec, epochs=epochs, learning_rate=learning_rate, seed=seed,
                         out=out, quick=quick, resume=not no_resume, progress=progress,
                         mode=mode, tau=tau, steps=steps, theta=theta, speed=speed)
    except KeyboardInterrupt:  # Ctrl-C: say what was kept and how to continue
        if bar is not None:
            bar.__exit__(None, None, None)
        click.echo("", err=True)
        if out is not None:
            click.echo(f"interrupted: {out / CHECKPOINT} holds the last finished epoch; "
                       "rerun the same command to continue from it", err=True)
        else:
            click.echo("interrupted: nothing was saved (without --out there is no "
                       "checkpoint); give --out DIR to continue after an interruption",
                       err=True)
        sys.exit(EXIT_INTERRUPTED)
    h, b = res.history, res.baseline
    if h.resumed_from:
        click.echo(f"resumed from epoch {h.resumed_from} ({out})")
    st = res.settings
    click.echo(f"{spec.name}: {st['epochs']} epochs, lr {st['learning_rate']:g}, "
               f"{st['train_samples']} training / {st['test_samples']} test samples")
    law = st.get("law")
    if law:
        click.echo("  " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                    for k, v in law.items()))
    for label, r in ((TRAIN_LABELS[st["mode"]], h), ("NumPy SGD", b)):
        if r is None:
            continue
        acc = f", test accuracy {r.test_accuracy[-1]:.4f}" if r.test_accuracy else ""
        click.echo(f"  {label:18s} train loss {r.train_loss[-1]:.5f}{acc}")
    for p in res.paths:
        click.echo(f"wrote {p}")


@main.command()
@click.argument("problem")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="results",
              show_default=True, help="Folder of the sweep's store (<out>/<name>_sweep); "
              "rerunning the command runs only the points not stored yet.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="A running Dask scheduler (tcp://host:8786); default: the file's "
              "[sweep] scheduler, else a local cluster started and closed here.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes of the local cluster (default: the file's, else 2).")
@_guard
def sweep(problem: str, out: Path, scheduler: str | None, workers: int | None) -> None:
    """Run PROBLEM's [sweep]: every point on Dask, stored as it completes.

    Prints progress (points done / failed / remaining) and a summary; a convergence
    sweep also writes the log-log figure with the fitted order. Exit status 1 when a
    point failed (its error is stored with it).
    """
    from cognitive_action.workflow import output_folder, run_sweep_file, sweep_file

    output_folder(out)  # before any work: an unusable --out costs nothing
    sf = sweep_file(problem)  # every check of the [sweep] table, before any work
    spec = sf.spec
    where = scheduler or sf.scheduler
    shape = " x ".join(f"{n} {len(v)}" for n, v in spec.axes.items())
    click.echo(f"{sf.name}: {spec.task} sweep, {spec.size} points ({spec.mode}: {shape}), "
               + (f"on the Dask scheduler {where}" if where else
                  f"on a local cluster of {workers or sf.workers} worker processes"))
    last = [0.0]

    def progress(done: int, failed: int, remaining: int) -> None:
        now = time.monotonic()
        if remaining == 0 or now - last[0] >= 1.0:
            last[0] = now
            click.echo(f"  points done {done}/{spec.size}, failed {failed}, "
                       f"remaining {remaining}")

    t0 = time.perf_counter()
    def started(dashboard: str | None) -> None:
        if dashboard:
            click.echo(f"  Dask dashboard: {dashboard}")

    res = run_sweep_file(sf, out, scheduler=scheduler, workers=workers, progress=progress,
                         on_start=started)
    ds = res.dataset
    click.echo(f"{res.points_run} points run in {time.perf_counter() - t0:.1f} s "
               f"({spec.size - res.points_run - res.missing} already stored); "
               f"{res.ok} ok, {res.failed} failed, {res.missing} missing")
    if res.failed:
        flat = ds["error"].values.ravel()
        bad = [i for i, e in enumerate(flat) if e]
        for i in bad[:5]:
            point = ", ".join(f"{k} = {v}" for k, v in spec.point(i).items())
            click.echo(f"  failed at {point}: {flat[i]}")
        if len(bad) > 5:
            click.echo(f"  … {len(bad) - 5} more (the 'error' variable of the dataset)")
    if spec.convergence is not None:
        conv = spec.convergence
        if "convergence_order" in ds.attrs:
            lo, hi = ds.attrs["convergence_ci"]
            click.echo(f"{conv.variable} ~ C {conv.axis}^p: p = "
                       f"{ds.attrs['convergence_order']:.3f} [{lo:.3f}, {hi:.3f}] "
                       f"({100 * ds.attrs['convergence_confidence']:g}% CI), "
                       f"R² = {ds.attrs['convergence_r_squared']:.4f}")
        else:
            click.echo(f"no convergence fit: {ds.attrs.get('convergence_error', '?')}")
    click.echo(f"wrote {res.store / 'dataset.zarr'}")
    if res.figure is not None:
        click.echo(f"wrote {res.figure}")
    sys.exit(EXIT_FAIL if res.failed else 0)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="results",
              show_default=True, help="Folder for figures and the summary.")
@click.option("--quick", is_flag=True, help="Smaller sweeps.")
@_guard
def paper(out: Path, quick: bool) -> None:
    """The main job: derive, verify and simulate every shipped problem; reproduce
    Section 2's Figures 1-3 and the error against input speed."""
    from cognitive_action.problem_files.loader import load_problem, shipped_problems
    from cognitive_action.workflow import (
        TRAIN_LABELS,
        output_folder,
        paper_problem,
        train_spec,
    )

    output_folder(out)
    summary: dict[str, Any] = {"problems": {}}
    failed = False
    shipped = shipped_problems()
    width = max(map(len, [*shipped, "waves"]))
    for name, path in shipped.items():
        spec = load_problem(path)
        if spec.data:  # a data set to learn from: trained (quick), not simulated
            res = train_spec(spec, quick=True, out=out / f"{name}_training", resume=False)
            summary["problems"][name] = {"training": res.settings | {
                "limit_test_accuracy": res.history.test_accuracy[-1],
                "sgd_test_accuracy": res.baseline.test_accuracy[-1]}}
            click.echo(f"{name:{width}s} trained (quick): test accuracy "
                       f"{TRAIN_LABELS[res.settings['mode']]} "
                       f"{res.history.test_accuracy[-1]:.4f}, NumPy SGD "
                       f"{res.baseline.test_accuracy[-1]:.4f}")
            continue
        entry = paper_problem(spec, out)
        passed = entry.pop("passed")
        failed |= not passed
        summary["problems"][name] = entry
        values = list(entry["outcome"].values())
        counts = {o: values.count(o) for o in sorted(set(values))}
        status = "ok" if passed else "FAILED"
        click.echo(f"{name:{width}s} derived in {entry['derive_seconds']:5.2f} s, verified in "
                   f"{entry['verify_seconds']:5.2f} s: "
                   f"{', '.join(f'{v} {k}' for k, v in counts.items())} -> {status}; "
                   f"simulation: {entry['simulation']['status']}")
    from cognitive_action.workflow import paper_table, waves, write_atomically

    res = waves(out, quick)  # its tables go to files, not to the terminal
    click.echo(f"{'waves':{width}s} {res.summary}")
    summary["waves"] = [str(p) for p in res.paths] + [
        str(out / "waves_error_vs_speed.txt"), str(out / "continuous_error_vs_c.txt")]
    text = json.dumps(summary, indent=2, default=str).encode("utf-8")
    write_atomically(out / "summary.json", lambda f: f.write(text))
    table = paper_table(summary).encode("utf-8")
    write_atomically(out / "paper_summary.md", lambda f: f.write(table))
    click.echo(f"full tables: {out / 'paper_summary.md'}, {out / 'summary.json'}, "
               f"{out / 'waves_error_vs_speed.txt'}, {out / 'continuous_error_vs_c.txt'}; "
               "per problem: <name>_verify.md, <name>_equations.tex, <name>_trajectory.png"
               + (", .nc" if any("trajectory" in e.get("simulation", {})
                                 for e in summary["problems"].values()) else ""))
    sys.exit(EXIT_FAIL if failed else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
