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
``paper``      the main job: derive, verify and waves on the shipped problems
"""

from __future__ import annotations

import functools
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cognitive_action.errors import CognitiveActionError

EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INTERNAL = 1, 2, 3


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn typed errors into one-line messages with exit code 2, and unexpected
    exceptions (bugs) into a one-line report with exit code 3."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return fn(*args, **kwargs)
        except CognitiveActionError as exc:
            if ctx.find_root().params.get("debug"):
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:  # a bug of ours: say so, keep the traceback behind --debug
            if ctx.find_root().params.get("debug"):
                traceback.print_exc()
            click.echo(f"internal error: {type(exc).__name__}: {exc}. This is a bug in "
                       "cognitive_action, not in your input; rerun with --debug for the "
                       "traceback and report it.", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.version_option(package_name="cognitive_action")
def main(debug: bool) -> None:
    """Learning laws as variational problems (Betti & Gori, 2020).

    Declare an action and constraints in a problem file, derive the constrained
    Euler-Lagrange and multiplier equations, verify the backprop limit.
    """


@main.command()
def problems() -> None:
    """List the shipped problems."""
    from cognitive_action.problem_files.loader import load_problem, shipped_problems

    for name, path in shipped_problems().items():
        spec = load_problem(path)
        click.echo(f"{name:14s} {spec.description}")


def _load(problem: str):
    from cognitive_action.problem_files.loader import load_problem

    return load_problem(problem)


def derive_spec(spec) -> Any:
    """Derive a loaded problem: the template route for holonomic networks."""
    from cognitive_action.derive import euler_lagrange
    from cognitive_action.derive.network import derive_network, is_network_problem

    if is_network_problem(spec.problem):
        return derive_network(spec.problem).euler_lagrange()
    return euler_lagrange(spec.problem)


@main.command()
@click.argument("problem")
@click.option("--latex", "as_latex", is_flag=True, help="Print LaTeX.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON with SymPy-parsable expression strings.")
@click.option("--max-rows", default=40, show_default=True,
              help="Equations shown in text and LaTeX output.")
@_guard
def derive(problem: str, as_latex: bool, as_json: bool, max_rows: int) -> None:
    """Derive the constrained Euler-Lagrange equations (8)-(9) and eq. (10)."""
    from cognitive_action.derive import latex, multiplier_equation

    spec = _load(problem)
    el = derive_spec(spec)
    if as_json:
        out: dict[str, Any] = {
            "problem": spec.name,
            "coordinates": [str(q) for q in el.coordinates],
            "multipliers": [str(m) for m in el.multipliers + el.nonholonomic_multipliers],
            "rate": str(el.rate),
            "residuals": {str(q): str(r) for q, r in zip(el.coordinates, el.residuals)},
            "constraints": {c.name: {"kind": c.kind, "expr": str(c.expr)}
                            for c in spec.problem.constraints},
            "unknowns": [str(u) for u in el.unknowns],
            "mass_matrix": [{str(k): str(v) for k, v in r.items()}
                            for r in el.mass_matrix.rows],
            "forcing": [str(f) for f in el.forcing],
        }
        click.echo(json.dumps(out, indent=2))
        return
    if as_latex:
        click.echo(latex(el, max_rows=max_rows))
        return
    click.echo(f"{spec.name}: {spec.description}")
    rule = (f" (rule: {spec.problem.nonholonomic})"
            if spec.problem.nonholonomic_constraints else "")
    click.echo(f"{len(el.coordinates)} coordinates, {len(spec.problem.holonomic)} holonomic "
               f"and {len(spec.problem.nonholonomic_constraints)} non-holonomic constraints"
               f"{rule}; ϖ̇/ϖ = {el.rate}")
    click.echo("\nEuler-Lagrange equations (8)-(9), residual = 0:")
    for q, r in list(zip(el.coordinates, el.residuals))[:max_rows]:
        click.echo(f"  [{q}]  {r} = 0")
    if len(el.residuals) > max_rows:
        click.echo(f"  … {len(el.residuals) - max_rows} more (--max-rows)")
    click.echo("\nConstraints:")
    for c in spec.problem.constraints[:max_rows]:
        click.echo(f"  {c.name} ({c.kind}): {c.expr} = 0")
    if spec.problem.holonomic and not spec.problem.nonholonomic_constraints:
        me = multiplier_equation(el)
        click.echo("\nMultiplier equation (10): (J M⁻¹ Jᵀ) λ = J M⁻¹ f + h with")
        for lam, b in list(zip(me.multipliers, me.b_entries()))[:max_rows]:
            click.echo(f"  b[{lam}] = {b}")


def run_verify(spec, simulate: bool = False) -> tuple[Any, dict[str, str]]:
    """Run the verifier on a loaded problem.

    Returns the report and the outcome of each check: ``pass``, ``skip``, ``FAIL``,
    ``expected-fail`` (listed in the file's ``[verify] expect_fail`` and failing) or
    ``UNEXPECTED-PASS`` (listed but passing).
    """
    from cognitive_action.verify import laws
    from cognitive_action.verify import verify as run

    settings = spec.verify
    law = {"derived": lambda: None, "sign_flipped": laws.sign_flipped,
           "feedback_alignment": lambda: laws.feedback_alignment(
               seed=int(settings.get("seed", 0)))}[settings.get("law", "derived")]()
    report = run(spec.problem, values=spec.values, initial=spec.initial.get("values"),
                 rtol=float(settings.get("rtol", 1e-9)),
                 fd_rtol=float(settings.get("fd_rtol", 1e-6)),
                 gamma=float(settings.get("gamma", 1.0)), seed=int(settings.get("seed", 0)),
                 skip=settings.get("skip", ()), law=law, formulas=settings.get("formulas"),
                 simulate=simulate)
    if simulate:
        from cognitive_action.compile import simulate as integrate
        from cognitive_action.verify.simulated_limits import check_drift

        el = derive_spec(spec)
        y0 = initial_state(spec, el)
        sim = integrate(compiled(spec, el, y0), (0.0, float(spec.simulate.get("t_end", 1.0))),
                        y0, spec.values, n_points=int(spec.simulate.get("points", 101)))
        report.checks.append(check_drift(sim, tol=float(settings.get("drift_tol", 1e-6))))
    expected = set(settings.get("expect_fail", []))
    outcome = {}
    for c in report.checks:
        if c.name in expected:
            outcome[c.name] = "expected-fail" if c.status == "fail" else "UNEXPECTED-PASS"
        else:
            outcome[c.name] = "FAIL" if c.status == "fail" else c.status
    return report, outcome


def _ok(outcome: dict[str, str]) -> bool:
    return all(v in ("pass", "skip", "expected-fail") for v in outcome.values())


@main.command()
@click.argument("problem")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--simulate", is_flag=True,
              help="Also simulate: convergence orders of weights, velocities and "
              "multipliers toward the limits (theta -> oo, m_x -> 0) and the constraint "
              "drift along a run (seconds).")
@_guard
def verify(problem: str, as_json: bool, simulate: bool) -> None:
    """Run the verifier's checks; exit 0 if all pass, 1 if one fails.

    Checks: Proposition 1 (rank), the backprop limit symbolically and numerically
    (against CasADi AD and finite differences), convergence toward it, stability of the
    multiplier dynamics, consistency of the initial conditions.
    """
    spec = _load(problem)
    report, outcome = run_verify(spec, simulate=simulate)
    ok = _ok(outcome)
    if as_json:
        data = report.to_dict() | {"passed": ok, "exit_code": 0 if ok else EXIT_FAIL,
                                   "outcome": outcome}
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(str(report))
        for name, o in outcome.items():
            if o in ("expected-fail", "UNEXPECTED-PASS"):
                click.echo(f"note: {name} is listed in [verify] expect_fail: {o}")
    sys.exit(0 if ok else EXIT_FAIL)


def initial_state(spec, el) -> dict[str, float]:
    """Consistent initial conditions of a loaded problem (eq. 11, general form).

    Explicit ``[initial] values`` are completed for the coordinates they leave out; for
    networks, weights are drawn ``N(0, weight_scale²/fan_in)`` with ``[initial] seed``,
    weight velocities are zero, and the outputs and their velocities are solved for.
    """
    import numpy as np

    from cognitive_action.declare.symbols import dot
    from cognitive_action.derive import complete_initial_conditions

    init = spec.initial
    given = dict(spec.values) | {str(k): float(v) for k, v in init.get("values", {}).items()}
    free = None
    if spec.network is not None:
        net = spec.network
        rng = np.random.default_rng(int(init.get("seed", 0)))
        scale = float(init.get("weight_scale", 1.0))
        for (j, _k), w in net.w.items():
            given.setdefault(str(w), float(rng.standard_normal() * scale
                                           / np.sqrt(max(1, net.graph.in_degree(j)))))
            given.setdefault(str(dot(w)), 0.0)
        free = [x for x in net.neurons if str(x) not in given]
    if spec.problem.nonholonomic == "vakonomic":
        for mu in el.nonholonomic_multipliers:  # multiplier states of eq. (20): start at rest
            given.setdefault(str(mu), 0.0)
    return complete_initial_conditions(el, given, free=free)


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
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar (default: when stderr is a terminal).")
@_guard
def simulate(problem: str, out: Path, t_end: float | None, points: int | None,
             method: str | None, stabilization: str | None, variant: str | None,
             progress: bool | None) -> None:
    """Simulate the derived system from consistent initial conditions.

    Writes ``<name>_trajectory.npz`` (times, states by name, constraint drift) and
    ``<name>_trajectory.png``.
    """
    import numpy as np


    spec = _load(problem)
    el = derive_spec(spec)
    y0 = initial_state(spec, el)
    settings = spec.simulate
    t1 = float(t_end if t_end is not None else settings.get("t_end", 1.0))
    n = int(points if points is not None else settings.get("points", 101))
    t0 = time.perf_counter()
    system = compiled(spec, el, y0, variant)
    if progress is None:
        progress = sys.stderr.isatty()
    tolerances = {"rtol": float(settings.get("rtol", 1e-8)),
                  "atol": float(settings.get("atol", 1e-10))}
    if (variant or settings.get("variant")) == "adjoint":
        sim = _adjoint(system, spec, (0.0, t1), y0, n, method, stabilization, tolerances)
    else:
        sim = run_in_chunks(system, (0.0, t1), y0, spec.values,
                            chunks=min(20, n - 1) if progress else 1, desc=spec.name,
                            method=method or settings.get("method", "cvodes"), n_points=n,
                            stabilization=stabilization, **tolerances)
    elapsed = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    states = sim.states
    drift = sim.drift
    np.savez(out / f"{spec.name}_trajectory.npz", t=sim.times,
             **{k: v for k, v in states.items()},
             **({"drift": drift} if drift is not None else {}))
    click.echo(f"{spec.name}: {len(states)} states, t in [0, {t1:g}], {n} points, "
               f"method {sim.method}, variant {sim.variant}, {elapsed:.2f} s; "
               f"max |G| = {sim.max_drift:.2e}")
    path = _plot_trajectory(spec.name, sim, out)
    click.echo(f"wrote {out / (spec.name + '_trajectory.npz')} and {path}")


def run_in_chunks(system: Any, span: tuple[float, float], y0: dict[str, float],
                  values: dict[str, float], *, chunks: int = 1, desc: str = "simulate",
                  n_points: int = 101, **options: Any) -> Any:
    """``compile.simulate`` over consecutive pieces of the output grid, with a tqdm bar.

    Each piece starts from the state the previous one reached (the integrator restarts,
    so results agree with one run to the tolerances). Returns one
    :class:`~cognitive_action.compile.simulate.Simulation` over the whole grid.
    """
    import dataclasses

    import numpy as np
    from tqdm import tqdm

    from cognitive_action.compile import simulate as run

    grid = np.linspace(span[0], span[1], int(n_points))
    if chunks <= 1:
        return run(system, grid, y0, values, **options)
    edges = np.unique(np.linspace(0, len(grid) - 1, chunks + 1).round().astype(int))
    parts, state = [], y0
    with tqdm(total=len(grid) - 1, desc=desc, unit="pt", leave=False) as bar:
        for k, (i0, i1) in enumerate(zip(edges, edges[1:])):
            part = run(system, grid[i0:i1 + 1], state, values, check_initial=(k == 0),
                       **options)
            parts.append(part)
            state = dict(zip(system.states, part.y[-1]))
            bar.update(int(i1 - i0))
    first = parts[0]

    def joined(attr: str):
        arrays = [getattr(p, attr) for p in parts]
        if arrays[0] is None:
            return None
        return np.concatenate([arrays[0]] + [a[1:] for a in arrays[1:]])
    stats = dict(first.stats)
    stats["run_time"] = sum(p.stats.get("run_time", 0.0) for p in parts)
    stats["chunks"] = len(parts)
    return dataclasses.replace(first, times=joined("times"), y=joined("y"),
                               constraint_values=joined("constraint_values"),
                               constraint_rates=joined("constraint_rates"),
                               algebraic=joined("algebraic"), stats=stats, _unknowns=None)


def _adjoint(system: Any, spec, span: tuple[float, float], y0: dict[str, float], n: int,
             method: str | None, stabilization: str | None, tolerances: dict) -> Any:
    """The adjoint sweep (``compile.adjoint_sweep``) for ``simulate --variant adjoint``."""
    from cognitive_action.compile import adjoint_sweep
    from cognitive_action.compile.adjoint import ADJOINT_METHODS

    if stabilization is not None:
        raise click.UsageError("--stabilization does not apply to the adjoint sweep; "
                               "drop it or use --variant relaxation")
    method = method or spec.simulate.get("method", "cvodes")
    if method not in ADJOINT_METHODS:
        raise click.UsageError(f"the adjoint sweep runs with {', '.join(ADJOINT_METHODS)}, "
                               f"not {method!r}: pass --method cvodes")
    return adjoint_sweep(system, span, y0, spec.values, method=method, n_points=n,
                         **tolerances)


def compiled(spec, el, y0: dict[str, float], variant: str | None = None) -> Any:
    """Compile a loaded problem; run its multipliers as ``variant`` (default: the file's
    ``[simulate] variant``, else as derived). The relaxation checks its own stability at
    the initial state; the adjoint sweep runs on the derived system."""
    from cognitive_action.compile import compile_system, stable_variant
    from cognitive_action.errors import ProblemFileError

    variant = variant or spec.simulate.get("variant", "forward")
    if variant not in ("forward", "relaxation", "adjoint"):
        raise ProblemFileError(f"unknown variant {variant!r}", path=spec.path,
                               field="simulate.variant",
                               fix="use 'forward', 'relaxation' or 'adjoint'")
    system = compile_system(el)
    if variant in ("forward", "adjoint"):
        return system
    return stable_variant(system, variant, check_at=(0.0, system.state_vector(y0),
                                                     spec.values))


def _simulate_for_paper(spec, el, out: Path) -> dict[str, Any]:
    """Simulate a shipped problem for the main job; a documented instability (the
    file's expect_fail lists the multipliers' stability) is recorded, not fatal."""
    from cognitive_action.compile import simulate as run
    from cognitive_action.errors import UnstableSystemError

    settings = spec.simulate
    try:
        t0 = time.perf_counter()
        y0 = initial_state(spec, el)
        system = compiled(spec, el, y0)
        sim = run(system, (0.0, float(settings.get("t_end", 1.0))), y0,
                  spec.values, method=settings.get("method", "cvodes"),
                  n_points=int(settings.get("points", 101)))
        plot = _plot_trajectory(spec.name, sim, out)
        return {"status": f"ok ({system.variant}), max |G| = {sim.max_drift:.1e}",
                "seconds": round(time.perf_counter() - t0, 3), "plot": str(plot)}
    except UnstableSystemError as exc:
        if "stability.multipliers" in spec.verify.get("expect_fail", []):
            return {"status": "not run: anti-stable multipliers (expected, eq. 20)",
                    "message": str(exc)}
        raise


def _plot_trajectory(name: str, sim: Any, out: Path) -> Path:
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coords = [str(q) for q in sim.system.coordinates][:12]
    fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for c in coords:
        axes[0].plot(sim.times, sim[c], label=c)
    axes[0].set_ylabel("coordinates")
    axes[0].legend(fontsize=7, ncol=4)
    axes[0].set_title(f"{name}: simulated trajectory")
    drift = sim.drift
    if drift is not None:
        axes[1].semilogy(sim.times, np.maximum(np.abs(np.asarray(drift)), 1e-17))
    axes[1].set_ylabel("max |G| (constraint drift)")
    axes[1].set_xlabel("t")
    fig.tight_layout()
    path = out / f"{name}_trajectory.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="results",
              show_default=True, help="Folder for figures and tables.")
@click.option("--quick", is_flag=True, help="A smaller speed sweep (seconds, for tests).")
@_guard
def waves(out: Path, quick: bool) -> None:
    """Figures 1-3 of Section 2 and the gradient error against input speed."""
    _waves(out, quick)


def _waves(out: Path, quick: bool) -> list[Path]:
    import numpy as np

    from cognitive_action.diffusion.figures import make_figures
    from cognitive_action.diffusion.sweep import fit_scaling, format_table, speed_sweep

    out.mkdir(parents=True, exist_ok=True)
    depths = [3, 5] if quick else [3, 5, 7, 9]
    freqs = np.geomspace(1e-3, 0.1, 5 if quick else 13)
    sweep = speed_sweep(depths, freqs, seeds=1 if quick else 3, ticks=800 if quick else 2500)
    fit = fit_scaling(sweep)
    table = format_table(sweep)
    paths = make_figures(out, sweep=sweep, fit=fit)
    summary = (f"error ≈ C·f^p·(L-1)^q: p = {fit.speed_order:.2f} "
               f"[{fit.speed_ci[0]:.2f}, {fit.speed_ci[1]:.2f}], q = {fit.depth_order:.2f} "
               f"[{fit.depth_ci[0]:.2f}, {fit.depth_ci[1]:.2f}] (95 %), "
               f"R² = {fit.r_squared:.3f}")
    (out / "waves_error_vs_speed.txt").write_text(f"{table}\n\n{summary}\n", encoding="utf-8")
    click.echo(table)
    click.echo(summary)
    paths.append(_continuous(out, quick))
    for p in paths:
        click.echo(f"wrote {p}")
    return paths


def _continuous(out: Path, quick: bool) -> Path:
    """Issue 5 item 6: neurons (18) with speed c; the diffusion estimate -> backprop."""
    from cognitive_action.diffusion.continuous import (
        convergence_figure,
        derive_diffusion,
        speed_convergence,
    )

    model = derive_diffusion([2, 3, 3, 1], frequency=0.5, seed=0)
    speeds = [10, 20, 40, 80] if quick else [10, 20, 40, 80, 160, 320]
    conv = speed_convergence(model, speeds, t_end=10.0, n_points=101 if quick else 201)
    table = conv.table()
    (out / "continuous_error_vs_c.txt").write_text(table + "\n", encoding="utf-8")
    click.echo("continuous time (neurons 18-19, layers [2, 3, 3, 1], inputs sin(0.5 t)):")
    click.echo(table)
    return convergence_figure(conv, out / "continuous_diffusion.png")


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="results",
              show_default=True, help="Folder for figures and the summary.")
@click.option("--quick", is_flag=True, help="Smaller sweeps.")
@_guard
def paper(out: Path, quick: bool) -> None:
    """The main job: derive, verify and simulate every shipped problem; reproduce
    Section 2's Figures 1-3 and the error against input speed."""
    from cognitive_action.derive import latex
    from cognitive_action.problem_files.loader import load_problem, shipped_problems

    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"problems": {}}
    failed = False
    for name, path in shipped_problems().items():
        t0 = time.perf_counter()
        spec = load_problem(path)
        el = derive_spec(spec)
        t_derive = time.perf_counter() - t0
        (out / f"{name}_equations.tex").write_text(latex(el, max_rows=200), encoding="utf-8")
        t0 = time.perf_counter()
        report, outcome = run_verify(spec)
        t_verify = time.perf_counter() - t0
        failed |= not _ok(outcome)
        summary["problems"][name] = {"coordinates": len(el.coordinates),
                                     "derive_seconds": round(t_derive, 3),
                                     "verify_seconds": round(t_verify, 3),
                                     "outcome": outcome, "report": report.to_dict()}
        summary["problems"][name]["simulation"] = _simulate_for_paper(spec, el, out)
        counts = {o: list(outcome.values()).count(o) for o in sorted(set(outcome.values()))}
        status = "ok" if _ok(outcome) else "FAILED"
        click.echo(f"{name:14s} derived in {t_derive:5.2f} s, verified in {t_verify:5.2f} s: "
                   f"{', '.join(f'{v} {k}' for k, v in counts.items())} -> {status}; "
                   f"simulation: {summary['problems'][name]['simulation']['status']}")
    summary["waves"] = [str(p) for p in _waves(out, quick)]
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str),
                                      encoding="utf-8")
    click.echo(f"summary: {out / 'summary.json'}")
    sys.exit(EXIT_FAIL if failed else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
