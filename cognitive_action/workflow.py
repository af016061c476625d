"""The library workflow: problem file or ``Problem`` → derive → verify → compile → simulate.

This is what the ``cognitive-action`` command line runs, with the same defaults, as
Python functions; the CLI only parses arguments and prints. Two equivalent styles:

* an object holding one problem and caching each stage (``load`` → :class:`Workflow`)::

      wf = workflow.load("xor")
      wf.verify().passed
      sim = wf.simulate(t_end=2.0)
      wf.save(sim, "results")

* functions of a loaded :class:`~cognitive_action.problem_files.loader.ProblemSpec`
  (:func:`derive_spec`, :func:`verify_spec`, :func:`initial_state`, :func:`compiled`,
  :func:`simulate_spec`, :func:`save_trajectory`), for callers that manage the stages.

Settings come from the problem file's ``[simulate]``, ``[initial]`` and ``[verify]``
tables; keyword arguments override them (``None`` keeps the file's value), exactly as
the CLI's options do.

Examples
--------
>>> wf = load("pendulum")
>>> wf
Workflow('pendulum': 2 coordinates, 1 constraints)
>>> wf.verify().passed
True
>>> sim = wf.simulate(t_end=0.5, points=6)
>>> sim.times.shape, sim.max_drift < 1e-6
((6,), True)
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cognitive_action.errors import CompileError, ProblemFileError, UnstableSystemError

if TYPE_CHECKING:  # pragma: no cover
    from cognitive_action.compile.options import SolverOptions
    from cognitive_action.compile.simulate import Simulation
    from cognitive_action.compile.system import CompiledSystem
    from cognitive_action.declare.problem import Problem
    from cognitive_action.problem_files.loader import Limits, ProblemSpec
    from cognitive_action.verify.report import Report

__all__ = ["VARIANTS", "EquationPreview", "SimulateSettings", "Verification", "WavesResult",
           "Workflow", "as_spec", "compiled", "derive_preview", "derive_spec", "display",
           "equations_dict",
           "initial_state", "load",
           "paper_problem", "paper_simulation", "plot_trajectory", "save_trajectory",
           "simulate_spec", "verify_spec", "waves", "TrainResult", "train_spec"]

VARIANTS = ("forward", "relaxation", "adjoint")
"""How anti-stable multiplier dynamics (eq. 20) run: as derived, the stable relaxation, or
the adjoint sweep (multipliers backward from 0 at the final time)."""

# -- loading -------------------------------------------------------------------------------
def as_spec(problem: str | os.PathLike[str] | ProblemSpec | Problem, *,
            values: Mapping[str, float] | None = None, limits: Limits | None = None
            ) -> ProblemSpec:
    """A :class:`~cognitive_action.problem_files.loader.ProblemSpec` for any problem input.

    Parameters
    ----------
    problem
        A problem file path, the name of a shipped problem, a loaded spec (returned as
        is), or a declared :class:`~cognitive_action.declare.problem.Problem` (wrapped
        with empty settings tables: every default applies).
    values
        Parameter values by name; for a spec or file they update the file's values.
    limits
        The size budget of a file
        (:class:`~cognitive_action.problem_files.loader.Limits`; default: its defaults).

    Returns
    -------
    ProblemSpec

    Raises
    ------
    ProblemFileError
        The file cannot be read, is malformed or asks for more than ``limits``.
    """
    from cognitive_action.declare.problem import Problem
    from cognitive_action.problem_files.loader import ProblemSpec, load_problem

    if isinstance(problem, ProblemSpec):
        spec = problem
    elif isinstance(problem, Problem):
        spec = ProblemSpec(name=problem.name, description="", path=f"<{problem.name}>",
                           problem=problem, values={},
                           network=problem.network)
    elif isinstance(problem, (str, os.PathLike)):
        spec = load_problem(problem, limits=limits)
    else:
        raise ProblemFileError(f"cannot load a problem from a {type(problem).__name__}",
                               fix="pass a file path, a shipped problem's name, a "
                               "ProblemSpec or a Problem")
    if values:
        spec = dataclasses.replace(spec, values=dict(spec.values)
                                   | {str(k): float(v) for k, v in values.items()})
    return spec


# -- derive --------------------------------------------------------------------------------
def derive_spec(spec: ProblemSpec) -> Any:
    """Derive the constrained Euler-Lagrange equations (8)-(9) of a loaded problem.

    Holonomic networks take the template route (one derivation per edge kind), every
    other problem the general one; both return the same ``EulerLagrange`` system.

    Parameters
    ----------
    spec
        A loaded problem (:func:`as_spec`).

    Returns
    -------
    EulerLagrange
    """
    from cognitive_action.derive import euler_lagrange
    from cognitive_action.derive.network import derive_network, is_network_problem

    if is_network_problem(spec.problem):
        return derive_network(spec.problem).euler_lagrange()
    return euler_lagrange(spec.problem)


@dataclass(frozen=True)
class EquationPreview:
    """The first rows of a derived system, for display (``cognitive-action derive``).

    Attributes
    ----------
    n_coordinates
        Coordinates of the whole system.
    rate
        ``ϖ̇/ϖ``.
    residuals
        ``[(coordinate, residual of eq. 8-9), ...]``, the first rows.
    multipliers
        ``[(multiplier, entry of J M⁻¹ f + h of eq. 10), ...]``, the first rows; empty
        with non-holonomic constraints (eq. 10 is for holonomic ones).
    """

    n_coordinates: int
    rate: Any
    residuals: list[tuple[Any, Any]]
    multipliers: list[tuple[Any, Any]]


#: Characters of one equation ``cognitive-action derive`` prints (``--json`` prints all).
DISPLAY_CHARS = 2_000
_SMALL_NODES = 400


def display(expr: Any, limit: int = DISPLAY_CHARS) -> str:
    """``str(expr)`` for a small expression; a large one (over a few hundred nodes, such
    as a neuron's residual in a dense net) is printed term by term in SymPy's stored
    order until about ``limit`` characters, then cut with a count of what is left out
    — printing a residual of a dense 200-neuron net whole takes minutes.

    Examples
    --------
    >>> import sympy as sp
    >>> display(sp.Symbol("x") + 1)
    'x + 1'
    >>> text = display(sp.Add(*sp.symbols("x0:3000")), limit=40)
    >>> len(text) < 80, text.endswith("more terms)")
    (True, True)
    """
    text = _brief(expr, limit)
    return text if len(text) <= limit + 200 else text[:limit] + " …"


def _small(expr: Any) -> bool:
    import sympy as sp

    return all(nodes < _SMALL_NODES for nodes, _ in enumerate(sp.preorder_traversal(expr)))


def _brief(expr: Any, limit: int) -> str:
    """A printout of ``expr`` of about ``limit`` characters, in stored term order."""
    import sympy as sp

    if _small(expr) or not expr.args:
        return str(expr)
    if expr.is_Add or expr.is_Mul:
        out, args = "", expr.args
        for i, arg in enumerate(args):
            part = _brief(arg, max(limit - len(out), 20))
            if expr.is_Mul and arg.is_Add:
                part = f"({part})"
            if not out:
                out = part
            elif expr.is_Add:
                out += f" - {part[1:]}" if part.startswith("-") else f" + {part}"
            else:
                out += f"*{part}"
            if len(out) > limit and i + 1 < len(args):
                kind = "terms" if expr.is_Add else "factors"
                return out + f" … ({len(args) - i - 1} more {kind})"
        return out
    if expr.is_Pow:
        return f"({_brief(expr.base, limit)})**({_brief(expr.exp, limit)})"
    if isinstance(expr, sp.Function):
        return f"{expr.func}({', '.join(_brief(a, limit) for a in expr.args)})"
    return sp.sstr(expr, order="none")[:limit]


def derive_preview(spec: ProblemSpec, rows: int = 40) -> EquationPreview:
    """The first ``rows`` equations of a loaded problem, derived on the fast route.

    Network problems derive per-neuron templates (:func:`~cognitive_action.derive.
    network.derive_network`, the Python route of the README) and materialize only the
    rows shown (:meth:`~cognitive_action.derive.network.NetworkSystem.preview`): a
    dense 200-neuron net takes seconds, where :func:`derive_spec` builds all 40,200
    equations and eq. (10) for them. Other problems derive with
    :func:`derive_spec`.

    Examples
    --------
    >>> p = derive_preview(as_spec("xor"), rows=2)
    >>> p.n_coordinates, [str(q) for q, _ in p.residuals]
    (11, ['x1', 'x2'])
    """
    from cognitive_action.derive import multiplier_equation
    from cognitive_action.derive.network import derive_network, is_network_problem

    if is_network_problem(spec.problem):
        ns = derive_network(spec.problem)
        residuals, b = ns.preview(rows)
        n = len(spec.problem.coordinates)
        return EquationPreview(n, ns.rate, residuals, list(zip(ns.multipliers, b)))
    el = derive_spec(spec)
    shown = list(zip(el.coordinates, el.residuals))[:rows]
    mult: list[tuple[Any, Any]] = []
    if spec.problem.holonomic and not spec.problem.nonholonomic_constraints:
        me = multiplier_equation(el)
        mult = list(zip(me.multipliers, me.b_entries()))[:rows]
    return EquationPreview(len(el.coordinates), el.rate, shown, mult)


def equations_dict(spec: ProblemSpec, el: Any) -> dict[str, Any]:
    """The derived equations as JSON-ready data (``cognitive-action derive --json``).

    Every expression is a SymPy-parsable string (``sympy.sympify`` reads it back).

    Returns
    -------
    dict
        ``problem``, ``coordinates``, ``multipliers`` (holonomic, then non-holonomic),
        ``rate`` (``ϖ̇/ϖ``), ``residuals`` of eq. (8)-(9) by coordinate, ``constraints``
        by name (``kind``, ``expr``), ``unknowns``, and the linear system
        ``mass_matrix`` (sparse rows) · unknowns = ``forcing``.

    Examples
    --------
    >>> spec = as_spec("pendulum")
    >>> d = equations_dict(spec, derive_spec(spec))
    >>> d["coordinates"]
    ['q1', 'q2']
    >>> import sympy as sp
    >>> q1, q2, L = sp.symbols("q1 q2 L")
    >>> sp.sympify(d["constraints"]["rod"]["expr"]) == q1**2 + q2**2 - L**2  # safe: our own output
    True
    """
    return {
        "problem": spec.name,
        "coordinates": [str(q) for q in el.coordinates],
        "multipliers": [str(m) for m in el.multipliers + el.nonholonomic_multipliers],
        "rate": str(el.rate),
        "residuals": {str(q): str(r) for q, r in zip(el.coordinates, el.residuals)},
        "constraints": {c.name: {"kind": c.kind, "expr": str(c.expr)}
                        for c in spec.problem.constraints},
        "unknowns": [str(u) for u in el.unknowns],
        "mass_matrix": [{str(k): str(v) for k, v in r.items()} for r in el.mass_matrix.rows],
        "forcing": [str(f) for f in el.forcing],
    }


# -- initial state -------------------------------------------------------------------------
def initial_state(spec: ProblemSpec, el: Any) -> dict[str, float]:
    """Consistent initial conditions of a loaded problem (eq. 11, general form).

    Explicit ``[initial] values`` are completed for the coordinates they leave out so
    that ``G = 0`` and ``Ġ = 0`` at ``t = 0``. For networks, the weights are drawn by the
    initialiser ``[initial] init`` (default ``"normal_fan_in"``: ``N(0, s²/fan_in)``
    with ``s = [initial] weight_scale``, default 1) from ``[initial] seed`` (default 0),
    in the network's edge order; weight velocities start at zero and the neurons and
    their velocities are solved for. Multiplier states of eq. (20) (vakonomic rule)
    start at rest.

    Parameters
    ----------
    spec
        A loaded problem.
    el
        Its derived system (:func:`derive_spec`).

    Returns
    -------
    dict
        Values by name of the states (and the parameters).

    Raises
    ------
    InconsistentInitialConditionsError
        The given values cannot be completed to a consistent state.
    """
    from cognitive_action.declare.initializers import DEFAULT_INITIALIZER, initialize
    from cognitive_action.declare.symbols import dot
    from cognitive_action.derive import complete_initial_conditions

    init = spec.initial
    given = dict(spec.values) | {str(k): float(v) for k, v in init.get("values", {}).items()}
    free = None
    if spec.network is not None:
        net = spec.network
        drawn = initialize([net.graph.in_degree(j) for (j, _k) in net.w],
                           init.get("init", DEFAULT_INITIALIZER),
                           scale=float(init.get("weight_scale", 1.0)),
                           rng=int(init.get("seed", 0)))
        for w, value in zip(net.w.values(), drawn):
            given.setdefault(str(w), float(value))
            given.setdefault(str(dot(w)), 0.0)
        free = [x for x in net.neurons if str(x) not in given]
    if spec.problem.nonholonomic == "vakonomic":
        for mu in el.nonholonomic_multipliers:  # multiplier states of eq. (20): start at rest
            given.setdefault(str(mu), 0.0)
    return complete_initial_conditions(el, given, free=free)


# -- compile -------------------------------------------------------------------------------
def compiled(spec: ProblemSpec, el: Any, y0: Mapping[str, float],
             variant: str | None = None) -> CompiledSystem:
    """Compile a loaded problem with the multiplier variant it asks for.

    Parameters
    ----------
    spec, el
        The loaded problem and its derived system.
    y0
        The initial state; the relaxation checks its own stability there.
    variant
        One of :data:`VARIANTS`; ``None``: the file's ``[simulate] variant``, else
        ``"forward"``. The adjoint sweep runs on the derived (forward) system.

    Returns
    -------
    CompiledSystem

    Raises
    ------
    ProblemFileError
        Unknown variant (``simulate.variant``).
    UnstableSystemError
        The relaxation is not stable at ``y0``.
    """
    from cognitive_action.compile import compile_system, stable_variant

    variant = variant or spec.simulate.get("variant", "forward")
    if variant not in VARIANTS:
        raise ProblemFileError(f"unknown variant {variant!r}", path=spec.path,
                               field="simulate.variant",
                               fix="use 'forward', 'relaxation' or 'adjoint'")
    system = compile_system(el)
    if variant in ("forward", "adjoint"):
        return system
    return stable_variant(system, variant, check_at=(0.0, system.state_vector(y0),
                                                     spec.values))


# -- simulate ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimulateSettings:
    """How to simulate a problem: the file's ``[simulate]`` table with overrides.

    Attributes
    ----------
    t_end, points
        Final time (the run starts at 0) and number of output points.
    variant
        One of :data:`VARIANTS`.
    solver
        The :class:`~cognitive_action.compile.options.SolverOptions` of the run
        (method, tolerances, stabilization, progress, ...); the file's ``method``,
        ``rtol`` and ``atol`` land here.

    Examples
    --------
    >>> s = SimulateSettings(t_end=2.0)
    >>> r = s.replace(points=11, method="dopri", rtol=1e-6)
    >>> r.points, r.solver.method, r.solver.rtol
    (11, 'dopri', 1e-06)
    >>> s.replace(variant="adjoint", method="dopri").check()
    Traceback (most recent call last):
    ...
    cognitive_action.errors.CompileError: the adjoint sweep runs with cvodes, rk, \
collocation, not 'dopri'. Fix: pass method 'cvodes' (--method cvodes)
    """

    t_end: float = 1.0
    points: int = 101
    variant: str = "forward"
    solver: SolverOptions = dataclasses.field(default_factory=lambda: _solver_options())

    @classmethod
    def from_spec(cls, spec: ProblemSpec, **overrides: Any) -> SimulateSettings:
        """The file's ``[simulate]`` settings; keyword arguments that are not ``None``
        override them.

        Raises
        ------
        CompileError
            An unknown setting name, or a solver option's bad value.
        """
        file = spec.simulate
        base = cls(t_end=float(file.get("t_end", 1.0)), points=int(file.get("points", 101)),
                   variant=str(file.get("variant", "forward")))
        for key in ("method", "rtol", "atol"):  # one at a time, to name the field at fault
            if key in file:
                try:
                    base = base.replace(**{key: file[key]})
                except CompileError as exc:
                    raise ProblemFileError(exc.message, fix=exc.fix, path=spec.path,
                                           field=f"simulate.{key}") from exc
        return base.replace(**overrides)

    def replace(self, **overrides: Any) -> SimulateSettings:
        """A copy with the fields in ``overrides`` changed (``None`` keeps a value); names
        of :class:`~cognitive_action.compile.options.SolverOptions` fields go to
        :attr:`solver`.

        Raises
        ------
        CompileError
            An unknown setting name, or a solver option's bad value.
        """
        own = {f.name for f in dataclasses.fields(self)} - {"solver"}
        solver_fields = {f.name for f in dataclasses.fields(self.solver)}
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(given) - own - solver_fields)
        if unknown:
            raise CompileError(f"unknown simulation setting {unknown[0]!r}",
                               fix=f"use {', '.join(sorted(own | solver_fields))}")
        solver = {k: v for k, v in given.items() if k in solver_fields}
        mine = {k: v for k, v in given.items() if k in own}
        if solver:
            mine["solver"] = dataclasses.replace(self.solver, **solver)
        return dataclasses.replace(self, **mine)

    def check(self, limits: Limits | None = None) -> None:
        """Refuse settings out of range or that do not go together.

        Parameters
        ----------
        limits
            The size budget (:class:`~cognitive_action.problem_files.loader.Limits`,
            default: its defaults): at most ``max_points`` output points.

        Raises
        ------
        CompileError
            ``t_end`` not a positive finite number, ``points`` not an integer >= 2,
            ``variant`` unknown; with ``variant="adjoint"``: a stabilization, or a
            method the adjoint sweep does not run.
        ProblemFileError
            More points than ``limits.max_points``.
        """
        import math
        import numbers

        from cognitive_action.compile.adjoint import ADJOINT_METHODS
        from cognitive_action.problem_files.loader import Limits

        t_end = self.t_end
        if isinstance(t_end, bool) or not isinstance(t_end, numbers.Real) or not (
                math.isfinite(t_end) and t_end > 0):
            raise CompileError(f"t_end = {t_end!r}: must be a positive finite number",
                               fix="e.g. --t-end 5 or t_end=5.0")
        if isinstance(self.points, bool) or not isinstance(self.points, numbers.Integral) \
                or self.points < 2:
            raise CompileError(f"points = {self.points!r}: must be an integer >= 2",
                               fix="e.g. --points 200 or points=200")
        (limits or Limits()).check_points(self.points, field="points")
        if self.variant not in VARIANTS:
            raise CompileError(f"unknown variant {self.variant!r}",
                               fix=f"use {', '.join(repr(v) for v in VARIANTS)}")
        if self.variant != "adjoint":
            return
        if self.solver.stabilization is not None:
            raise CompileError("stabilization does not apply to the adjoint sweep",
                               fix="drop it (--stabilization) or use the variant "
                               "'relaxation' (--variant relaxation)")
        if self.solver.method not in ADJOINT_METHODS:
            raise CompileError(f"the adjoint sweep runs with {', '.join(ADJOINT_METHODS)}, "
                               f"not {self.solver.method!r}",
                               fix="pass method 'cvodes' (--method cvodes)")


def _solver_options(**fields: Any) -> SolverOptions:
    """``SolverOptions(**fields)``, imported on first use (``compile`` loads CasADi)."""
    from cognitive_action.compile.options import SolverOptions

    return SolverOptions(**fields)


def simulate_spec(spec: ProblemSpec, el: Any | None = None,
                  y0: Mapping[str, float] | None = None,
                  settings: SimulateSettings | None = None, *,
                  system: CompiledSystem | None = None) -> Simulation:
    """Simulate a loaded problem from consistent initial conditions.

    Parameters
    ----------
    spec
        A loaded problem.
    el, y0
        Its derived system and initial state (derived and drawn here when ``None``).
    settings
        Defaults to ``SimulateSettings.from_spec(spec)``.
    system
        An already compiled system for ``settings.variant`` (compiled here when
        ``None``).

    Returns
    -------
    Simulation
        With ``variant="adjoint"`` the multipliers of eq. (20) run backward from 0 at
        ``t_end`` (:func:`cognitive_action.compile.adjoint_sweep`).

    Raises
    ------
    CompileError
        Settings that do not go together (:meth:`SimulateSettings.check`).
    UnstableSystemError
        The forward variant of anti-stable multiplier dynamics (use ``"relaxation"`` or
        ``"adjoint"``).
    """
    from cognitive_action.compile import adjoint_sweep
    from cognitive_action.compile import simulate as integrate

    s = settings or SimulateSettings.from_spec(spec)
    s.check(spec.limits)
    el = derive_spec(spec) if el is None else el
    y0 = initial_state(spec, el) if y0 is None else y0
    system = compiled(spec, el, y0, s.variant) if system is None else system
    if s.variant == "adjoint":
        # the sweep draws no progress bar: the CLI's --progress/--no-progress is moot here
        return adjoint_sweep(system, (0.0, s.t_end), y0, spec.values, n_points=s.points,
                             options=dataclasses.replace(s.solver, progress=None))
    return integrate(system, (0.0, s.t_end), y0, spec.values, n_points=s.points,
                     options=s.solver)


# -- results -------------------------------------------------------------------------------
def output_path(out: str | os.PathLike[str], name: str, suffix: str) -> Path:
    """``<out>/<name><suffix>``, refusing a ``name`` that would write anywhere else (a
    problem file's name is untrusted: ``"../x"`` or an absolute path).

    Raises
    ------
    ProblemFileError
        ``name`` is empty, has a path separator, or is ``.``/``..``.

    Examples
    --------
    >>> output_path("results", "xor", ".npz").as_posix()
    'results/xor.npz'
    >>> output_path("results", "../escaped", ".npz")
    Traceback (most recent call last):
    ...
    cognitive_action.errors.ProblemFileError: name: the problem name '../escaped' would \
write outside the output folder results. Fix: name the problem with letters, digits, \
'_', '-' or '.', e.g. name = "my_law"
    """
    out = Path(out)
    if not name or name in (".", "..") or Path(name).name != name or "/" in name \
            or "\\" in name or os.sep in name:
        raise ProblemFileError(f"the problem name {name!r} would write outside the output "
                               f"folder {out}", field="name",
                               fix="name the problem with letters, digits, '_', '-' or "
                               "'.', e.g. name = \"my_law\"")
    return out / f"{name}{suffix}"


def write_atomically(path: Path, write: Any) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place:
    a killed run leaves the previous file whole, never a truncated one."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_trajectory(sim: Simulation, out: str | os.PathLike[str], name: str) -> Path:
    """Write ``<out>/<name>_trajectory.npz``: ``t``, every state by name and, with
    constraints, ``drift`` (``max |G|`` at each output time).

    Returns
    -------
    Path
        The file written (``out`` is created if needed).
    """
    import numpy as np

    path = output_path(out, name, "_trajectory.npz")
    drift = sim.drift
    return write_atomically(path, lambda f: np.savez(
        f, t=sim.times, **dict(sim.states), **({"drift": drift} if drift is not None else {})))


def plot_trajectory(name: str, sim: Simulation, out: str | os.PathLike[str]) -> Path:
    """Plot the first 12 coordinates and the constraint drift ``max |G|`` (log scale) to
    ``<out>/<name>_trajectory.png``; returns its path."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = output_path(out, name, "_trajectory.png")
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
    write_atomically(path, lambda f: fig.savefig(f, dpi=110, format="png"))
    plt.close(fig)
    return path


# -- verify --------------------------------------------------------------------------------
@dataclass
class Verification:
    """The verifier's report on a problem with the file's expectations applied.

    Attributes
    ----------
    report
        The :class:`~cognitive_action.verify.report.Report`.
    outcome
        Per check: ``pass``, ``skip``, ``FAIL``, ``expected-fail`` (listed in the file's
        ``[verify] expect_fail`` and failing) or ``UNEXPECTED-PASS`` (listed but
        passing).
    """

    report: Report
    outcome: dict[str, str]

    @property
    def passed(self) -> bool:
        """Every check passed, was skipped, or failed as the file expects."""
        return all(v in ("pass", "skip", "expected-fail") for v in self.outcome.values())

    def to_dict(self) -> dict[str, Any]:
        """The report's dictionary with ``passed`` and ``outcome``."""
        return self.report.to_dict() | {"passed": self.passed, "outcome": self.outcome}


def verify_spec(spec: ProblemSpec, *, simulate: bool = False,
                el: Any | None = None, symbolic: bool | None = None,
                budget: float | None = None, progress: bool | Any = False) -> Verification:
    """Run the verifier on a loaded problem with the file's ``[verify]`` settings.

    Checks Proposition 1 (rank), the backprop limit symbolically and numerically,
    convergence toward it, the stability of the multiplier dynamics (eq. 20) and the
    consistency of the initial conditions (eq. 11). With ``[verify] law`` naming a law
    other than ``"derived"``, also ``alignment.training``
    (:func:`~cognitive_action.verify.alignment.check_alignment`: the law's update against
    the gradient along a teacher-student run, per layer).

    Parameters
    ----------
    spec
        A loaded problem.
    simulate
        Also the simulated checks: convergence orders toward the limits
        (``theta -> oo``, ``m_x -> 0``) and the constraint drift of a run with the
        file's ``[simulate]`` settings (tolerance ``[verify] drift_tol``, default 1e-6).
    el
        The derived system, for the drift check (derived here when ``None``).
    symbolic, budget
        Whether to run the symbolic checks at any size, and the seconds each may take
        (default: the file's ``[verify] symbolic`` and ``budget``, else
        :func:`~cognitive_action.verify.checks.verify`'s defaults).
    progress
        A line per check on stderr (``True``) or on a given stream.

    Returns
    -------
    Verification
    """
    from cognitive_action.verify import laws
    from cognitive_action.verify import verify as run

    SimulateSettings.from_spec(spec)  # a bad [simulate] value is refused by every command
    settings = spec.verify
    name = settings.get("law", "derived")
    try:  # the loader checked the name's form; the registry knows the names
        law = None if name == "derived" else laws.make_law(name,
                                                           seed=int(settings.get("seed", 0)))
    except laws.UnknownLawError as exc:
        raise ProblemFileError(exc.message, fix=exc.fix, path=spec.path,
                               field="verify.law") from exc
    report = run(spec.problem, values=spec.values, initial=spec.initial.get("values"),
                 rtol=float(settings.get("rtol", 1e-9)),
                 fd_rtol=float(settings.get("fd_rtol", 1e-6)),
                 gamma=float(settings.get("gamma", 1.0)), seed=int(settings.get("seed", 0)),
                 skip=settings.get("skip", ()), law=law, formulas=settings.get("formulas"),
                 simulate=simulate,
                 symbolic=settings.get("symbolic") if symbolic is None else symbolic,
                 progress=progress, **({"budget": b} if (b := budget if budget is not None
                                                         else settings.get("budget"))
                                       is not None else {}))
    if simulate:
        from cognitive_action.verify.simulated_limits import check_drift

        el = derive_spec(spec) if el is None else el
        sim = simulate_spec(spec, el, initial_state(spec, el))
        report.checks.append(check_drift(sim, tol=float(settings.get("drift_tol", 1e-6))))
    expected = set(settings.get("expect_fail", []))
    outcome = {}
    for c in report.checks:
        if c.name in expected:
            outcome[c.name] = "expected-fail" if c.status == "fail" else "UNEXPECTED-PASS"
        else:
            outcome[c.name] = "FAIL" if c.status == "fail" else c.status
    return Verification(report, outcome)


# -- the object ----------------------------------------------------------------------------
class Workflow:
    """One problem through the stages, each computed once when first needed.

    Parameters
    ----------
    spec
        A loaded problem (:func:`load` makes one from a file, a name or a ``Problem``).

    Attributes
    ----------
    spec
        The loaded problem.
    """

    def __init__(self, spec: ProblemSpec) -> None:
        self.spec = spec
        self._derived: Any = None
        self._initial: dict[str, float] | None = None
        self._systems: dict[str, Any] = {}

    def __repr__(self) -> str:
        p = self.spec.problem
        return (f"Workflow({self.spec.name!r}: {len(p.coordinates)} coordinates, "
                f"{len(p.constraints)} constraints)")

    @property
    def name(self) -> str:
        """The problem's name."""
        return self.spec.name

    @property
    def derived(self) -> Any:
        """The derived Euler-Lagrange system (8)-(9) (:func:`derive_spec`)."""
        if self._derived is None:
            self._derived = derive_spec(self.spec)
        return self._derived

    @property
    def initial(self) -> dict[str, float]:
        """Consistent initial conditions, eq. (11) (:func:`initial_state`)."""
        return dict(self.prepare()._initial or {})

    def prepare(self) -> Workflow:
        """Derive (8)-(9) and solve the initial conditions (11) now (else on first use);
        returns ``self``."""
        if self._initial is None:
            self._initial = initial_state(self.spec, self.derived)
        return self

    def settings(self, **overrides: Any) -> SimulateSettings:
        """The file's simulation settings with ``overrides`` (``None`` keeps a value)."""
        return SimulateSettings.from_spec(self.spec, **overrides)

    def system(self, variant: str | None = None) -> CompiledSystem:
        """The compiled system for ``variant`` (default: the file's); see :func:`compiled`."""
        variant = variant or self.settings().variant
        if variant not in self._systems:
            self._systems[variant] = compiled(self.spec, self.derived, self.initial,
                                              variant)
        return self._systems[variant]

    def verify(self, *, simulate: bool = False) -> Verification:
        """Run the verifier (:func:`verify_spec`)."""
        return verify_spec(self.spec, simulate=simulate, el=self.derived)

    def simulate(self, settings: SimulateSettings | None = None,
                 **overrides: Any) -> Simulation:
        """Simulate from :attr:`initial` (:func:`simulate_spec`).

        Parameters
        ----------
        settings
            Complete settings; default: the file's.
        **overrides
            Fields of :class:`SimulateSettings` to change (``t_end=2.0``, ...).
        """
        s = (settings or self.settings()).replace(**overrides)
        s.check(self.spec.limits)  # before compiling
        return simulate_spec(self.spec, self.derived, self.initial, s,
                             system=self.system(s.variant))

    def save(self, sim: Simulation, out: str | os.PathLike[str] = "results", *,
             plot: bool = True) -> list[Path]:
        """Write the trajectory (:func:`save_trajectory`) and, with ``plot``, its figure
        (:func:`plot_trajectory`) to ``out``; returns the paths written."""
        paths = [save_trajectory(sim, out, self.name)]
        if plot:
            paths.append(plot_trajectory(self.name, sim, out))
        return paths


def load(problem: str | os.PathLike[str] | ProblemSpec | Problem, *,
         values: Mapping[str, float] | None = None, limits: Limits | None = None
         ) -> Workflow:
    """A :class:`Workflow` for a problem file, a shipped problem's name, a loaded spec or a
    declared ``Problem`` (see :func:`as_spec`; ``limits`` is a file's size budget)."""
    return Workflow(as_spec(problem, values=values, limits=limits))


# -- the paper's main job -----------------------------------------------------------------
def paper_simulation(spec: ProblemSpec, el: Any, out: str | os.PathLike[str]
                     ) -> dict[str, Any]:
    """Simulate a problem with its file's settings and plot it, for the main job.

    A documented instability (the file's ``[verify] expect_fail`` lists
    ``stability.multipliers``, the anti-stable eq. 20) is recorded, not raised.

    Returns
    -------
    dict
        ``status`` (a one-line summary), and ``seconds`` and ``plot``, or ``message``.
    """
    try:
        t0 = time.perf_counter()
        y0 = initial_state(spec, el)
        system = compiled(spec, el, y0)
        sim = simulate_spec(spec, el, y0, system=system)
        plot = plot_trajectory(spec.name, sim, out)
        return {"status": f"ok ({system.variant}), max |G| = {sim.max_drift:.1e}",
                "seconds": round(time.perf_counter() - t0, 3), "plot": str(plot)}
    except UnstableSystemError as exc:
        if "stability.multipliers" in spec.verify.get("expect_fail", []):
            return {"status": "not run: anti-stable multipliers (expected, eq. 20)",
                    "message": str(exc)}
        raise


def paper_problem(spec: ProblemSpec, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Derive, verify and simulate one problem for the main job; write its equations to
    ``<out>/<name>_equations.tex``.

    Returns
    -------
    dict
        ``coordinates``, ``derive_seconds``, ``verify_seconds``, ``outcome``, ``passed``,
        ``report`` (as a dictionary) and ``simulation`` (:func:`paper_simulation`).
    """
    from cognitive_action.derive import latex

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    el = derive_spec(spec)
    t_derive = time.perf_counter() - t0
    (out / f"{spec.name}_equations.tex").write_text(latex(el, max_rows=200),
                                                    encoding="utf-8")
    t0 = time.perf_counter()
    v = verify_spec(spec)
    t_verify = time.perf_counter() - t0
    return {"coordinates": len(el.coordinates), "derive_seconds": round(t_derive, 3),
            "verify_seconds": round(t_verify, 3), "outcome": v.outcome,
            "passed": v.passed, "report": v.report.to_dict(),
            "simulation": paper_simulation(spec, el, out)}


@dataclass
class WavesResult:
    """Section 2's experiments (:func:`waves`).

    Attributes
    ----------
    table, summary
        The gradient error against input speed and depth, and the fitted
        ``error ≈ C·f^p·(L-1)^q``.
    continuous_table
        The continuous-time diffusion estimate against the speed ``c`` (neurons 18-19).
    paths
        Figures and tables written.
    """

    table: str
    summary: str
    continuous_table: str
    paths: list[Path]


def waves(out: str | os.PathLike[str], quick: bool = False) -> WavesResult:
    """Figures 1-3 of Section 2, the gradient error against input speed, and the
    continuous-time diffusion estimate against ``c`` (neurons 18-19 on layers
    ``[2, 3, 3, 1]`` with inputs ``sin(0.5 t)``), written to ``out``.

    Parameters
    ----------
    out
        Folder for figures and tables (created).
    quick
        Smaller sweeps (seconds, for tests).
    """
    import numpy as np

    from cognitive_action.diffusion.continuous import (
        convergence_figure,
        derive_diffusion,
        speed_convergence,
    )
    from cognitive_action.diffusion.figures import make_figures
    from cognitive_action.diffusion.sweep import fit_scaling, format_table, speed_sweep

    out = Path(out)
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
    model = derive_diffusion([2, 3, 3, 1], frequency=0.5, seed=0)
    speeds = [10, 20, 40, 80] if quick else [10, 20, 40, 80, 160, 320]
    conv = speed_convergence(model, speeds, t_end=10.0, n_points=101 if quick else 201)
    conv_table = conv.table()
    (out / "continuous_error_vs_c.txt").write_text(conv_table + "\n", encoding="utf-8")
    paths.append(convergence_figure(conv, out / "continuous_diffusion.png"))
    return WavesResult(table, summary, conv_table, paths)


# -- training (issue 13) -------------------------------------------------------------------
@dataclass
class TrainResult:
    """A training run of a problem file (:func:`train_spec`).

    Attributes
    ----------
    history, baseline
        The limit law's :class:`~cognitive_action.learn.train.TrainingHistory` and plain
        NumPy SGD's on the same split, initial weights and sample order.
    settings
        The epochs, learning rate, seed and sample counts used.
    paths
        Files written in ``out`` (the checkpoint, the figure, ``training.json``).
    """

    history: Any
    baseline: Any
    settings: dict[str, Any]
    paths: list[Path]


def _training_data(spec: ProblemSpec, quick: bool) -> tuple[Any, Any]:
    from cognitive_action.learn.digits import load_digits_split

    data = spec.data
    if not data:
        raise ProblemFileError("the problem has no [data] table: nothing to train on",
                               fix="add [data] with source = \"digits\" (see "
                               "problems/digits.toml)", path=spec.path, field="data")
    limit = data.get("limit")
    if quick:
        q = int(spec.train.get("quick_samples", 300))
        limit = q if limit is None else min(limit, q)
    # DATA_SOURCES has one entry so far; the loader refused any other name
    return load_digits_split(data["split"], data["seed"], limit)


def train_spec(problem: str | os.PathLike[str] | ProblemSpec, *, epochs: int | None = None,
               learning_rate: float | None = None, seed: int | None = None,
               out: str | os.PathLike[str] | None = None, quick: bool = False,
               resume: bool = True, baseline: bool = True,
               progress: Any = None) -> TrainResult:
    """Train a problem file's network on its ``[data]`` with the compiled limit law.

    Defaults come from the file's ``[train]`` table (``--quick``: ``quick_epochs`` on
    ``quick_samples`` samples). With ``out``, the run checkpoints after every epoch
    (rerunning continues from there), and writes ``learning_curve.png`` (the limit law
    beside plain SGD) and ``training.json``.

    Raises
    ------
    ProblemFileError
        A file without ``[data]``.
    OptionalDependencyError
        scikit-learn missing for ``source = "digits"``.
    """
    from cognitive_action.learn.train import plot_learning_curves, sgd_baseline, train

    spec = as_spec(problem)
    tr_cfg = spec.train
    if epochs is None:
        epochs = int(tr_cfg.get("quick_epochs", 1) if quick else tr_cfg.get("epochs", 3))
    lr = float(learning_rate if learning_rate is not None else
               tr_cfg.get("learning_rate", 0.05))
    seed = int(seed if seed is not None else tr_cfg.get("seed", 0))
    train_data, test_data = _training_data(spec, quick)
    out_dir = None if out is None else Path(out)
    history = train(spec.problem, train_data, test_data, epochs=epochs, learning_rate=lr,
                    seed=seed, out=out_dir, resume=resume, progress=progress,
                    values=spec.values)
    base = sgd_baseline(spec.problem, train_data, test_data, epochs=epochs,
                        learning_rate=lr, seed=seed) if baseline else None
    settings = {"epochs": epochs, "learning_rate": lr, "seed": seed, "quick": quick,
                "train_samples": len(train_data[0]), "test_samples": len(test_data[0])}
    paths: list[Path] = []
    if out_dir is not None:
        from cognitive_action.learn.train import CHECKPOINT

        paths.append(out_dir / CHECKPOINT)
        curves = {"derived limit law": history} | ({"NumPy SGD": base} if base else {})
        paths.append(plot_learning_curves(curves, out_dir / "learning_curve.png",
                                          title=f"{spec.name}: {settings['train_samples']} "
                                          f"training samples, lr {lr:g}"))
        summary = {"settings": settings, "limit": json.loads(history.to_json()),
                   "sgd": json.loads(base.to_json()) if base else None}
        fd, tmp = tempfile.mkstemp(prefix=".training-", suffix=".json", dir=out_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2)
        os.replace(tmp, out_dir / "training.json")
        paths.append(out_dir / "training.json")
    return TrainResult(history=history, baseline=base, settings=settings, paths=paths)
