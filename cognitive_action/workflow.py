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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cognitive_action.errors import (
    CompileError,
    DerivationError,
    ProblemFileError,
    UnstableSystemError,
)

if TYPE_CHECKING:  # pragma: no cover
    from cognitive_action.compile.options import SolverOptions
    from cognitive_action.compile.simulate import Simulation
    from cognitive_action.compile.system import CompiledSystem
    from cognitive_action.declare.problem import Problem
    from cognitive_action.problem_files.loader import Limits, ProblemSpec
    from cognitive_action.verify.report import Report

__all__ = ["VARIANTS", "CHECKPOINT_SUFFIX", "EquationPreview", "SimulateSettings",
           "Verification", "WavesResult", "Workflow", "as_spec", "check_physics",
           "checkpoint_path", "compiled", "derivation_text", "derive_preview", "derive_spec",
           "PREVIEW_MULTIPLIER_ROWS",
           "display", "equations_dict", "initial_state", "load", "output_folder",
           "output_path", "write_atomically", "paper_problem", "paper_simulation",
           "paper_table", "plot_trajectory", "save_labelled_trajectory", "save_trajectory",
           "simulate_spec", "verify_spec", "waves", "TrainResult", "train_spec",
           "SweepResult", "sweep_file", "run_sweep_file"]

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
def _is_energy(spec: ProblemSpec) -> bool:
    """Whether the spec declares an energy model (``kind = "energy"``)."""
    from cognitive_action.declare.energy import EnergyModel

    return isinstance(spec.problem, EnergyModel)


def derive_spec(spec: ProblemSpec) -> Any:
    """Derive the constrained Euler-Lagrange equations (8)-(9) of a loaded problem.

    Holonomic networks take the template route (one derivation per edge kind) when the
    templates fit (not, e.g., for a loss that names a weight), every other problem the
    general one; both return the same ``EulerLagrange`` system.

    Parameters
    ----------
    spec
        A loaded problem (:func:`as_spec`).

    An energy problem (``kind = "energy"``) gives its derived phases instead
    (:func:`~cognitive_action.derive.energy.derive_energy`).

    Returns
    -------
    EulerLagrange or EnergySystem
    """
    from cognitive_action.derive import euler_lagrange
    from cognitive_action.derive.network import derive_network, is_network_problem

    if _is_energy(spec):
        from cognitive_action.derive.energy import derive_energy

        return derive_energy(spec.problem)
    if is_network_problem(spec.problem):
        try:
            return derive_network(spec.problem).euler_lagrange()
        except DerivationError:  # the templates do not fit (e.g. a loss of the weights):
            pass                 # the generic route, as derive.forms.derive_system does
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
        ``(coordinate, residual of eq. 8-9)`` pairs, the first rows.
    multipliers
        ``(multiplier, entry of J M⁻¹ f + h of eq. 10)`` pairs, the first rows; none
        with non-holonomic constraints (eq. 10 is for holonomic ones).

    On the network route both are generators that build each row as it is read (read
    them once); elsewhere lists.
    """

    n_coordinates: int
    rate: Any
    residuals: Iterable[tuple[Any, Any]]
    multipliers: Iterable[tuple[Any, Any]]


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


#: Rows of eq. (10) :func:`derive_preview` builds unless told (they are the longest).
PREVIEW_MULTIPLIER_ROWS = 10


def derive_preview(spec: ProblemSpec, rows: int = 40, multiplier_rows: int | None = None
                   ) -> EquationPreview | None:
    """The first ``rows`` equations of a loaded problem, derived on the fast route
    (``None`` for an energy problem, whose phases :func:`derivation_text` prints).

    Network problems derive per-neuron templates (:func:`~cognitive_action.derive.
    network.derive_network`, the Python route of the README) and materialize only the
    rows shown (:meth:`~cognitive_action.derive.network.NetworkSystem.preview`): a
    dense 200-neuron net takes seconds, where :func:`derive_spec` builds all 40,200
    equations and eq. (10) for them. Other problems derive with
    :func:`derive_spec`. ``multiplier_rows`` bounds the rows of eq. (10), the longest
    (401 terms each in a dense 200-neuron net); default: ``rows``, at most
    :data:`PREVIEW_MULTIPLIER_ROWS`.

    Examples
    --------
    >>> p = derive_preview(as_spec("xor"), rows=2)
    >>> p.n_coordinates, [str(q) for q, _ in p.residuals]
    (11, ['x1', 'x2'])
    """
    from cognitive_action.derive import multiplier_equation
    from cognitive_action.derive.network import derive_network, is_network_problem

    mrows = min(rows, PREVIEW_MULTIPLIER_ROWS) if multiplier_rows is None else multiplier_rows
    if _is_energy(spec):
        return None
    if is_network_problem(spec.problem):
        try:
            ns = derive_network(spec.problem)
        except DerivationError:  # the templates do not fit: the generic route below
            ns = None
        if ns is not None:
            residuals, _ = ns.iter_preview(rows)  # built as they are printed
            _, b = ns.iter_preview(mrows)
            n = len(spec.problem.coordinates)
            return EquationPreview(n, ns.rate, residuals, zip(ns.multipliers, b))
    el = derive_spec(spec)
    shown = list(zip(el.coordinates, el.residuals))[:rows]
    mult: list[tuple[Any, Any]] = []
    if spec.problem.holonomic and not spec.problem.nonholonomic_constraints:
        me = multiplier_equation(el)
        mult = list(zip(me.multipliers, me.b_entries()))[:mrows]
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
    if getattr(el, "form", None) == "energy":
        m = el.model
        return {"problem": spec.name, "kind": "energy",
                "neurons": [str(x) for x in m.neurons],
                "energy": str(m.energy), "cost": str(m.cost), "beta": str(m.beta),
                "rates": {str(x): str(r) for x, r in zip(m.neurons, el.rates)},
                "energy_gradient": {str(w): str(g)
                                    for w, g in zip(m.learnable, el.energy_gradient)}}
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


def describe_energy(el: Any, max_rows: int | None = 40) -> str:
    """The derived phases of an energy problem as text (``cognitive-action derive``)."""
    m = el.model
    lines = [f"{len(m.neurons)} neurons, {len(m.inputs)} clamped inputs, "
             f"{len(m.learnable)} learnable (one weight per undirected pair)",
             f"E = {m.energy}", f"C = {m.cost}",
             f"\nphases x_dot = -d(E + {m.beta} C)/dx (free phase: {m.beta} = 0):"]
    lines += [f"  {x}_dot = {r}" for x, r in list(zip(m.neurons, el.rates))[:max_rows]]
    lines.append("\ndE/dW, read at the fixed points by the EP update:")
    lines += [f"  dE/d{w} = {g}"
              for w, g in list(zip(m.learnable, el.energy_gradient))[:max_rows]]
    if max_rows is not None and len(m.learnable) > max_rows:
        lines.append(f"  … {len(m.learnable) - max_rows} more (--max-rows, --out)")
    return "\n".join(lines)


def derivation_text(spec: ProblemSpec, el: Any, max_rows: int | None = None) -> str:
    """The derived equations as text (``cognitive-action derive``): eq. (8)-(9), the
    constraints and, for holonomic problems, the right side of eq. (10).

    Parameters
    ----------
    max_rows
        Rows shown per block before ``… N more``; ``None``: every row.

    Examples
    --------
    >>> spec = as_spec("pendulum")
    >>> print(derivation_text(spec, derive_spec(spec)).splitlines()[4])
      [q1]  g*m - 2*lambda_rod*q1 - m*q1_ddot = 0
    """
    from cognitive_action.derive import multiplier_equation

    def cut(items: list) -> tuple[list, str | None]:
        if max_rows is None or len(items) <= max_rows:
            return items, None
        return items[:max_rows], f"  … {len(items) - max_rows} more (--max-rows, --out)"

    if getattr(el, "form", None) == "energy":
        return f"{spec.name}: {spec.description}\n" + describe_energy(el, max_rows)
    p = spec.problem
    rule = f" (rule: {p.nonholonomic})" if p.nonholonomic_constraints else ""
    lines = [f"{spec.name}: {spec.description}",
             f"{len(el.coordinates)} coordinates, {len(p.holonomic)} holonomic and "
             f"{len(p.nonholonomic_constraints)} non-holonomic constraints{rule}; "
             f"ϖ̇/ϖ = {el.rate}", "", "Euler-Lagrange equations (8)-(9), residual = 0:"]
    rows, more = cut(list(zip(el.coordinates, el.residuals)))
    lines += [f"  [{q}]  {r} = 0" for q, r in rows] + ([more] if more else [])
    lines += ["", "Constraints:"]
    rows, more = cut(list(p.constraints))
    lines += [f"  {c.name} ({c.kind}): {c.expr} = 0" for c in rows] + ([more] if more else [])
    if p.holonomic and not p.nonholonomic_constraints:
        me = multiplier_equation(el)
        lines += ["", "Multiplier equation (10): (J M⁻¹ Jᵀ) λ = J M⁻¹ f + h with"]
        rows, more = cut(list(zip(me.multipliers, me.b_entries())))
        lines += [f"  b[{lam}] = {b}" for lam, b in rows] + ([more] if more else [])
    return "\n".join(lines)


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
    if _is_energy(spec):  # the free phase from rest, at the verifier's weights for the seed
        from cognitive_action.compile.energy import compile_energy
        from cognitive_action.verify.equilibrium import energy_state

        m = spec.problem
        st = energy_state(compile_energy(el), seed=int(init.get("seed", 0)),
                          scale=float(init.get("weight_scale", 1.0)),
                          values=spec.values | dict(init.get("values", {})))
        return ({str(x): 0.0 for x in m.neurons} | st.values
                | dict(zip(map(str, m.learnable), st.weights.tolist()))
                | {str(m.beta): 0.0})
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
        _check_constant_signals(spec, given)
    for sig in spec.problem.signals:  # a constant signal given a value: at rest
        if str(sig) in given:
            for k in (1, 2):
                given.setdefault(str(dot(sig, k)), 0.0)
    if spec.problem.nonholonomic == "vakonomic":
        for mu in el.nonholonomic_multipliers:  # multiplier states of eq. (20): start at rest
            given.setdefault(str(mu), 0.0)
    y0 = complete_initial_conditions(el, given, free=free)
    check_physics(spec, el, y0)
    return y0


def check_physics(spec: ProblemSpec, el: Any, y0: Mapping[str, float]) -> None:
    """The physical checks before a run (:mod:`cognitive_action.derive.physical`): the
    masses (or the mass matrix) positive definite at the initial state, with the file's
    parameter values, and the equations of motion (8)-(10) solvable there.

    Raises
    ------
    ProblemFileError
        Naming the file, the field (``parameters.<name>`` for a mass given as a
        parameter, else ``action``) and the fix.
    """
    from cognitive_action.derive.physical import check_masses, check_solvable
    from cognitive_action.errors import PhysicalError

    try:
        check_masses(spec.problem, y0)
        if spec.network is None:
            check_solvable(el, y0)
    except PhysicalError as exc:
        field = (f"parameters.{exc.symbols[0]}" if exc.symbols else "action.mass_matrix"
                 if spec.problem.action.mass_matrix is not None else "action.masses")
        raise ProblemFileError(exc.message, fix=exc.fix, path=spec.path,
                               field=field) from None


def _check_constant_signals(spec: ProblemSpec, given: Mapping[str, float]) -> None:
    """Refuse a network run whose constant input or target signals have no value, before
    any work: a data problem's signals are its samples (train it), another file gives
    them in ``[inputs]``/``[targets]`` or ``[initial] values``."""
    missing = [str(s) for s in spec.problem.signals if str(s) not in given]
    if not missing:
        return
    listed = ", ".join(missing) if len(missing) <= 6 else \
        f"{', '.join(missing[:3])}, ..., {missing[-1]} ({len(missing)} signals)"
    if spec.data:
        raise ProblemFileError(
            f"the inputs and targets {listed} are the samples of the [data] set, not "
            "signals of time: there is no run in time to simulate",
            fix=f"train the network on its data (cognitive-action train {spec.name}), or "
            f"give the signals values in [initial] values (e.g. {missing[0]} = 0.5)",
            path=spec.path, field="data")
    raise ProblemFileError(
        f"no value for the constant signals {listed}",
        fix="give them as expressions of t in [inputs]/[targets], or values in "
        f"[initial] values (e.g. {missing[0]} = 0.5)", path=spec.path, field="initial.values")


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
    if getattr(el, "form", None) == "energy" and variant != "forward":
        raise ProblemFileError(f"the variant {variant!r} is for multiplier dynamics; an "
                               "energy problem relaxes its neurons as derived",
                               path=spec.path, field="simulate.variant",
                               fix="use 'forward' (the default)")
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
                  system: CompiledSystem | None = None,
                  checkpoint: str | os.PathLike[str] | None = None, resume: bool = False,
                  chunks: int | None = 20) -> Simulation:
    """Simulate a loaded problem from consistent initial conditions.

    The run goes in ``chunks`` chunks of output intervals, each from the state the
    previous one reached (the adaptive step control restarts at each; ``None``: one
    piece), so that Ctrl-C stops it at once with
    :class:`~cognitive_action.errors.InterruptedRunError` carrying the completed
    chunks (``partial``), and the command line's runs, which write checkpoints, give
    the same numbers as this one. With ``checkpoint``, the completed part is written to
    that file (atomically, in the format of :func:`save_trajectory` plus what a resumed
    run needs) after every chunk.
    ``resume=True`` continues from that file to the same numbers, bit for bit, as a run
    that was never stopped; the file must come from the same problem file, settings,
    initial state and parameters. A finished run leaves the checkpoint in place
    (the caller removes it once the trajectory is saved).

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
    checkpoint, resume, chunks
        The checkpoint file, whether to continue from it, and the number of chunks
        (the adjoint sweep runs in one piece).

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
    if checkpoint is None:
        if resume:
            raise CompileError("resume needs a checkpoint file",
                               fix="pass checkpoint=... (the command line passes "
                               "<out>/<name>_trajectory.checkpoint.npz)")
        return integrate(system, (0.0, s.t_end), y0, spec.values, n_points=s.points,
                         options=s.solver, chunks=chunks)
    if chunks is None:
        raise CompileError("a checkpoint needs a run in chunks", fix="pass chunks=20")
    return _simulate_checkpointed(spec, system, y0, s, Path(checkpoint), resume, chunks)


CHECKPOINT_SUFFIX = "_trajectory.checkpoint.npz"
"""The checkpoint of ``simulate`` beside the trajectory: ``<out>/<name>`` + this."""


def checkpoint_path(out: str | os.PathLike[str], name: str) -> Path:
    """``<out>/<name>_trajectory.checkpoint.npz`` (see :func:`output_path`)."""
    return output_path(out, name, CHECKPOINT_SUFFIX)


def _fingerprint(spec: ProblemSpec, system: CompiledSystem, y0v: Any,
                 s: SimulateSettings, chunks: int) -> str:
    """What a checkpoint must share with the run that resumes it: the problem file's
    bytes, the parameter values, the settings (not the progress bar), the initial
    state, the states' names and the chunks."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    try:
        h.update(Path(spec.path).read_bytes() if Path(spec.path).is_file()
                 else spec.path.encode())
    except OSError:
        h.update(str(spec.path).encode())
    solver = {k: v for k, v in dataclasses.asdict(s.solver).items() if k != "progress"}
    h.update(json.dumps({"values": spec.values, "t_end": s.t_end, "points": s.points,
                         "variant": s.variant, "solver": solver, "chunks": chunks,
                         "states": list(system.states)},
                        sort_keys=True, default=repr).encode())
    h.update(np.ascontiguousarray(y0v, dtype=float).tobytes())
    return h.hexdigest()


def _save_checkpoint(path: Path, system: CompiledSystem, grid: Any, cp: Any,
                     fingerprint: str) -> None:
    import numpy as np

    k = cp.edges[cp.done]
    meta = {"fingerprint": fingerprint, "edges": list(cp.edges), "done": cp.done,
            "stats": {k_: v for k_, v in cp.stats.items()
                      if isinstance(v, (int, float, bool))}}
    arrays = {"t": grid[:k + 1], "__y__": cp.y, "__meta__": np.array(json.dumps(meta))}
    arrays |= {n: cp.y[:, i] for i, n in enumerate(system.states)}
    if cp.z is not None:
        arrays["__z__"] = cp.z
    write_atomically(path, lambda f: np.savez(f, **arrays))


def _load_checkpoint(path: Path, fingerprint: str) -> Any:
    import zipfile

    import numpy as np

    from cognitive_action.compile.simulate import Checkpoint

    fix = ("resume with the options of the interrupted run (same file, --t-end, --points, "
           "--method, ...), or run without --resume to start over")
    if not path.is_file():  # missing, or not a regular file (a FIFO is never opened)
        raise CompileError(f"no checkpoint to resume at {path}",
                           fix="run without --resume (nothing was saved: the run was "
                           "stopped before its first chunk, or finished)")
    try:
        with np.load(path, allow_pickle=False) as d:
            meta = json.loads(str(d["__meta__"]))
            y = np.array(d["__y__"], dtype=float)
            z = np.array(d["__z__"], dtype=float) if "__z__" in d.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise CompileError(f"the checkpoint {path} is unreadable ({exc})",
                           fix="run without --resume to start over") from None
    if meta.get("fingerprint") != fingerprint:
        raise CompileError(f"the checkpoint {path} was made by another run (another "
                           "problem file, settings, initial state or parameters)", fix=fix)
    return Checkpoint(tuple(int(e) for e in meta["edges"]), int(meta["done"]), y, z,
                      dict(meta.get("stats", {})))


def _simulate_checkpointed(spec: ProblemSpec, system: CompiledSystem,
                           y0: Mapping[str, float], s: SimulateSettings, path: Path,
                           resume: bool, chunks: int) -> Simulation:
    from cognitive_action.compile import simulate as integrate
    from cognitive_action.compile.integration import output_grid
    from cognitive_action.errors import InterruptedRunError

    y0v = system.state_vector(y0)
    fingerprint = _fingerprint(spec, system, y0v, s, chunks)
    grid = output_grid((0.0, s.t_end), s.points)
    start = _load_checkpoint(path, fingerprint) if resume else None
    if not resume:
        path.unlink(missing_ok=True)  # a stale checkpoint of an earlier run

    def save(cp: Any) -> None:
        _save_checkpoint(path, system, grid, cp, fingerprint)

    try:
        sim = integrate(system, (0.0, s.t_end), y0, spec.values, n_points=s.points,
                        options=s.solver, chunks=chunks, resume=start, on_chunk=save)
    except InterruptedRunError as exc:
        cp = exc.resume
        saved = cp is not None and cp.done > 0
        if saved and (cp.complete or not path.is_file()):
            save(cp)  # a complete run interrupted afterwards, or a file removed meanwhile
        where = (f"; the completed part (t <= {grid[cp.edges[cp.done]]:g}) is saved in "
                 f"{path}" if saved else "; no chunk was complete, nothing saved")
        raise InterruptedRunError(
            exc.message + where,
            fix="continue with resume=True (command line: the same command with --resume)"
            if saved else None, partial=exc.partial, time=exc.time, resume=cp,
            checkpoint=path if saved else None) from None
    if start is not None:
        sim.stats["resumed_chunks"] = start.done
    return sim


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


def output_folder(out: str | os.PathLike[str]) -> Path:
    """Prove ``out`` writable before any work, so an unusable folder costs no derivation
    or run: a file is written (and removed) in ``out``, or, when ``out`` does not exist
    yet, in its nearest existing ancestor. Nothing is created: a run refused later for
    bad input leaves no empty folder behind (the outputs create ``out`` when written).

    ``os.access`` is not asked: it answers yes for root on a read-only mount, and no
    permission bits stop root; only a real write tells.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    OutputError
        ``out`` (or a folder on its way) is a file, or refuses a file (permissions, a
        read-only or full file system), naming the folder and the reason.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> output_folder(d / "new") == d / "new", (d / "new").exists(), list(d.iterdir())
    (True, False, [])
    >>> (d / "file").write_text("x")
    1
    >>> output_folder(d / "file")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cognitive_action.errors.OutputError: the output folder .../file is a file. Fix: ...
    """
    from cognitive_action.errors import OutputError

    out = Path(out)
    fix = "pass --out a folder you can write to (or free space / fix its permissions)"
    existing = out
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == out else f" ({existing}, on the way to it, is a file)"
        raise OutputError(f"the output folder {out} is a file" if not where else
                          f"cannot create the output folder {out}{where}", fix=fix,
                          path=str(out))
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=existing)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write in the output folder {out}: "
                          f"{exc.strerror or exc}", fix=fix, path=str(out)) from None
    return out


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


def _has_xarray() -> bool:
    import importlib.util

    return importlib.util.find_spec("xarray") is not None


def save_labelled_trajectory(sim: Simulation, out: str | os.PathLike[str], name: str,
                             problem: Problem | None = None) -> Path:
    """Write ``<out>/<name>_trajectory.nc``: the trajectory as an xarray Dataset with named
    coordinates (``time``, ``neuron``, ``weight``, ``layer``, ``constraint``, ...; see
    :func:`cognitive_action.results.labelled.trajectory_dataset`).

    Raises
    ------
    OptionalDependencyError
        xarray is missing (``pip install "cognitive_action[results]"``).
    """
    from cognitive_action.results.labelled import save_dataset, trajectory_dataset

    path = output_path(out, name, "_trajectory.nc")
    return save_dataset(trajectory_dataset(sim, problem, name=name), path)


def plot_trajectory(name: str, sim: Simulation, out: str | os.PathLike[str],
                    problem: Problem | None = None) -> Path:
    """Draw ``sim`` in panels (:func:`cognitive_action.results.figures.simulation_figure`:
    neurons with their targets, weights, multipliers, loss, constraint drift) to
    ``<out>/<name>_trajectory.png``; returns its path.

    Parameters
    ----------
    problem
        The declared problem that ran, for its roles, loss and targets; ``None``: the
        coordinates, multipliers and drift only.
    """
    import matplotlib.pyplot as plt

    from cognitive_action.results.figures import simulation_figure

    path = output_path(out, name, "_trajectory.png")
    fig = simulation_figure(sim, problem, title=name)
    write_atomically(path, lambda f: fig.savefig(f, dpi=110, format="png",
                                                 bbox_inches="tight"))
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

    def rows(self) -> list[tuple[str, ...]]:
        """The report's rows with the file's expectations applied (``outcome``)."""
        return [(r[0], self.outcome.get(r[0], r[1]), *r[2:]) for r in self.report.rows()]

    def headline(self) -> str:
        """The report's first line with the file's expectations applied (a documented
        failure counts as ``expected-fail``, not as ``failed``), and whether they are met.

        Examples
        --------
        >>> from cognitive_action.verify.report import Check, Report
        >>> r = Report("demo", [Check("rank", "pass", 3, 3, ""),
        ...                     Check("stability.multipliers", "fail", 20.1, 1e-9, "")])
        >>> Verification(r, {"rank": "pass", "stability.multipliers": "expected-fail"}
        ...              ).headline()
        'verify demo: 1 passed, 0 failed, 1 expected-fail, 0 skipped -> passed'
        """
        head = self.report.headline()
        expected = sum(1 for v in self.outcome.values() if v == "expected-fail")
        if expected:
            n = self.report.counts()
            head = head.replace(f"{n['fail']} failed, ",
                                f"{n['fail'] - expected} failed, {expected} expected-fail, ",
                                1)
        return f"{head} -> {'passed' if self.passed else 'FAILED'}"

    def to_markdown(self) -> str:
        """The report as a Markdown table, with the outcome per check."""
        from cognitive_action.verify.report import markdown_table

        head = self.headline().split(": ", 1)
        return markdown_table(f"**{head[0]}**: {head[1]}", self.rows(),
                              ("check", "outcome", "value", "tolerance", "message"))

    def to_html(self) -> str:
        """The report as an HTML table (notebooks), outcomes coloured."""
        from cognitive_action.verify.report import html_table

        return html_table(self.headline(), self.rows(),
                          ("check", "outcome", "value", "tolerance", "message"))

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


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
    if simulate and not _is_energy(spec):  # an energy problem has no constraints to drift
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

    def verify(self, *, simulate: bool = False, symbolic: bool | None = None,
               budget: float | None = None) -> Verification:
        """Run the verifier (:func:`verify_spec`; ``symbolic=False`` skips the symbolic
        checks, ``budget`` bounds each in seconds)."""
        return verify_spec(self.spec, simulate=simulate, el=self.derived, symbolic=symbolic,
                           budget=budget)

    def simulate(self, settings: SimulateSettings | None = None, *,
                 checkpoint: str | os.PathLike[str] | None = None, resume: bool = False,
                 **overrides: Any) -> Simulation:
        """Simulate from :attr:`initial` (:func:`simulate_spec`).

        Parameters
        ----------
        settings
            Complete settings; default: the file's.
        checkpoint, resume
            Save the completed part after every chunk to this file, and continue from
            it (see :func:`simulate_spec`).
        **overrides
            Fields of :class:`SimulateSettings` to change (``t_end=2.0``, ...).
        """
        s = (settings or self.settings()).replace(**overrides)
        s.check(self.spec.limits)  # before compiling
        return simulate_spec(self.spec, self.derived, self.initial, s,
                             system=self.system(s.variant), checkpoint=checkpoint,
                             resume=resume)

    def save(self, sim: Simulation, out: str | os.PathLike[str] = "results", *,
             plot: bool = True, labelled: bool | None = None) -> list[Path]:
        """Write the trajectory (:func:`save_trajectory`), with ``plot`` its figure
        (:func:`plot_trajectory`), and with ``labelled`` the labelled trajectory
        (:func:`save_labelled_trajectory`, ``<name>_trajectory.nc``; ``None``: when
        xarray is installed) to ``out``; returns the paths written."""
        paths = [save_trajectory(sim, out, self.name)]
        if plot:
            paths.append(plot_trajectory(self.name, sim, out, self.spec.problem))
        if labelled or (labelled is None and _has_xarray()):
            paths.append(save_labelled_trajectory(sim, out, self.name, self.spec.problem))
        return paths


def load(problem: str | os.PathLike[str] | ProblemSpec | Problem, *,
         values: Mapping[str, float] | None = None, limits: Limits | None = None
         ) -> Workflow:
    """A :class:`Workflow` for a problem file, a shipped problem's name, a loaded spec or a
    declared ``Problem`` (see :func:`as_spec`; ``limits`` is a file's size budget)."""
    return Workflow(as_spec(problem, values=values, limits=limits))


def final_rate(sim: Simulation) -> float:
    """``max |ẏ|`` at the last output time of ``sim``: how close a run without
    constraints (a phase of an energy model) ended to a fixed point."""
    from cognitive_action.results.figures import rates_along

    rates = rates_along(sim)
    return float(rates[-1]) if len(rates) else float("nan")


# -- the paper's main job -----------------------------------------------------------------
def paper_simulation(spec: ProblemSpec, el: Any, out: str | os.PathLike[str]
                     ) -> dict[str, Any]:
    """Simulate a problem with its file's settings and plot it, for the main job.

    A documented instability (the file's ``[verify] expect_fail`` lists
    ``stability.multipliers``, the anti-stable eq. 20) is recorded, not raised.

    Returns
    -------
    dict
        ``status`` (a one-line summary), and ``seconds``, ``plot`` and (with xarray)
        ``trajectory`` (the labelled ``.nc``), or ``message``.
    """
    try:
        t0 = time.perf_counter()
        y0 = initial_state(spec, el)
        system = compiled(spec, el, y0)
        sim = simulate_spec(spec, el, y0, system=system)
        seconds = time.perf_counter() - t0
        plot = plot_trajectory(spec.name, sim, out, spec.problem)
        end = (f"max |G| = {sim.max_drift:.1e}" if sim.drift is not None else
               f"max |dx/dt| at t_end = {final_rate(sim):.1e}")
        entry = {"status": f"ok ({system.variant}), {end}",
                 "seconds": round(seconds, 3), "plot": str(plot)}
        if _has_xarray():
            entry["trajectory"] = str(save_labelled_trajectory(sim, out, spec.name,
                                                               spec.problem))
        return entry
    except UnstableSystemError as exc:
        if "stability.multipliers" in spec.verify.get("expect_fail", []):
            return {"status": "not run: anti-stable multipliers (expected, eq. 20)",
                    "message": str(exc)}
        raise


def paper_problem(spec: ProblemSpec, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Derive, verify and simulate one problem for the main job; write its equations to
    ``<out>/<name>_equations.tex``.

    Also writes the verifier's report as ``<name>_verify.md`` and, with xarray,
    its numbers as ``<name>_verify.nc``.

    Returns
    -------
    dict
        ``coordinates``, ``derive_seconds``, ``verify_seconds``, ``outcome``, ``passed``,
        ``report`` (as a dictionary), ``files`` written, and ``simulation``
        (:func:`paper_simulation`).
    """
    from cognitive_action.derive import latex

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    el = derive_spec(spec)
    t_derive = time.perf_counter() - t0
    tex = latex(el, max_rows=None).encode("utf-8")  # the whole system
    write_atomically(output_path(out, spec.name, "_equations.tex"), lambda f: f.write(tex))
    t0 = time.perf_counter()
    v = verify_spec(spec)
    t_verify = time.perf_counter() - t0
    md = (v.to_markdown() + "\n").encode("utf-8")
    files = {"equations": str(output_path(out, spec.name, "_equations.tex")),
             "verify": str(write_atomically(output_path(out, spec.name, "_verify.md"),
                                            lambda f: f.write(md)))}
    if _has_xarray():
        from cognitive_action.results.labelled import report_dataset, save_dataset

        files["verify_data"] = str(save_dataset(report_dataset(v.report, v.outcome),
                                                output_path(out, spec.name, "_verify.nc")))
    return {"coordinates": len(el.coordinates), "derive_seconds": round(t_derive, 3),
            "verify_seconds": round(t_verify, 3), "outcome": v.outcome,
            "passed": v.passed, "report": v.report.to_dict(), "files": files,
            "simulation": paper_simulation(spec, el, out)}


def paper_table(summary: Mapping[str, Any]) -> str:
    """The main job's full table in Markdown (``paper_summary.md``): one row per shipped
    problem with its size, timings, verifier outcomes, simulation and files.

    Parameters
    ----------
    summary
        The ``summary.json`` data: ``{"problems": {name: entry}}`` with entries of
        :func:`paper_problem` (or ``{"training": ...}`` for data problems).
    """
    lines = ["# cognitive-action paper: summary", "",
             "| problem | coordinates | derive (s) | verify (s) | verifier outcomes | "
             "simulation | files |", "|---|---|---|---|---|---|---|"]
    for name, e in summary.get("problems", {}).items():
        if "training" in e:
            tr = e["training"]
            lines.append(f"| `{name}` | - | - | - | trained (quick): test accuracy "
                         f"{tr.get('limit_test_accuracy', float('nan')):.4f} (limit law), "
                         f"{tr.get('sgd_test_accuracy', float('nan')):.4f} (SGD) | - | - |")
            continue
        values = list(e.get("outcome", {}).values())
        counts = ", ".join(f"{values.count(o)} {o}" for o in sorted(set(values)))
        sim = e.get("simulation", {})
        files = [Path(f).name for f in list(e.get("files", {}).values())
                 + [sim.get("plot"), sim.get("trajectory")] if f]
        lines.append(f"| `{name}` | {e.get('coordinates', '-')} | "
                     f"{e.get('derive_seconds', '-')} | {e.get('verify_seconds', '-')} | "
                     f"{counts} | {sim.get('status', '-').replace('|', chr(92) + '|')} | "
                     f"{', '.join(f'`{f}`' for f in files)} |")
    waves = summary.get("waves")
    if waves:
        lines += ["", "Section 2 (waves): " + ", ".join(f"`{Path(p).name}`" for p in waves)]
    return "\n".join(lines) + "\n"


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
        Files written in ``out`` (the checkpoint, the figure, ``training.json`` and, with
        xarray, ``training.nc``: the curves on ``(run, epoch)``).
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


#: The label of each training mode in figures and reports.
TRAIN_LABELS = {"limit": "derived limit law", "dynamics": "derived dynamics",
                "diffusion": "diffusion law"}


def _mode_options(mode: str, cfg: dict, **given: Any) -> Any:
    """The options object of ``mode`` from the ``[train]`` table, overridden by
    ``given`` (what the caller passed; ``None``: not given)."""
    from cognitive_action.learn.runners import DiffusionOptions, DynamicsOptions

    keys = {"dynamics": ("tau", "steps", "theta"),
            "diffusion": ("tau", "steps", "theta", "speed")}.get(mode)
    if keys is None:
        return None
    # the file's steps are the dynamics' (ETD steps); diffusion needs ~τc RK4 steps and
    # takes them from the caller only
    from_file = {k: v for k, v in cfg.items() if not (mode == "diffusion" and k == "steps")}
    kw = {k: given[k] if given.get(k) is not None else from_file[k] for k in keys
          if given.get(k) is not None or k in from_file}
    if "tau" in kw:
        kw["tau"] = float(kw["tau"])
    return (DynamicsOptions if mode == "dynamics" else DiffusionOptions)(**kw)


def train_spec(problem: str | os.PathLike[str] | ProblemSpec, *, epochs: int | None = None,
               learning_rate: float | None = None, seed: int | None = None,
               out: str | os.PathLike[str] | None = None, quick: bool = False,
               resume: bool = True, baseline: bool = True,
               progress: Any = None, mode: str | None = None, tau: float | None = None,
               steps: int | None = None, theta: float | None = None,
               speed: float | None = None) -> TrainResult:
    """Train a problem file's network on its ``[data]`` with a derived law.

    Defaults come from the file's ``[train]`` table (``--quick``: ``quick_epochs`` on
    ``quick_samples`` samples). ``mode`` is ``"limit"`` (the compiled limit law, the
    default), ``"dynamics"`` (the full derived dynamics; ``tau``, ``steps``, ``theta``) or
    ``"diffusion"`` (neurons of speed ``c``: ``speed``), run by
    :mod:`cognitive_action.learn.runners`. With ``out``, the run checkpoints after every
    epoch (rerunning continues from there), and writes ``learning_curve.png`` (the law
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
    mode = mode or tr_cfg.get("mode", "limit")
    options = _mode_options(mode, tr_cfg, tau=tau, steps=steps, theta=theta, speed=speed)
    train_data, test_data = _training_data(spec, quick)
    out_dir = None if out is None else Path(out)
    history = train(spec.problem, train_data, test_data, epochs=epochs, learning_rate=lr,
                    seed=seed, out=out_dir, resume=resume, progress=progress,
                    values=spec.values, mode=mode, options=options)
    base = sgd_baseline(spec.problem, train_data, test_data, epochs=epochs,
                        learning_rate=lr, seed=seed) if baseline else None
    settings = {"epochs": epochs, "learning_rate": lr, "seed": seed, "quick": quick,
                "train_samples": len(train_data[0]), "test_samples": len(test_data[0]),
                "mode": mode} | ({"law": dict(history.settings)}
                                 if getattr(history, "settings", None) else {})
    paths: list[Path] = []
    if out_dir is not None:
        from cognitive_action.learn.train import CHECKPOINT

        paths.append(out_dir / CHECKPOINT)
        curves = {TRAIN_LABELS[mode]: history} | ({"NumPy SGD": base} if base else {})
        paths.append(plot_learning_curves(curves, out_dir / "learning_curve.png",
                                          title=f"{spec.name}, {TRAIN_LABELS[mode]}: "
                                          f"{settings['train_samples']} training samples, "
                                          f"lr {lr:g}"))
        summary = {"settings": settings, mode: json.loads(history.to_json()),
                   "sgd": json.loads(base.to_json()) if base else None}
        fd, tmp = tempfile.mkstemp(prefix=".training-", suffix=".json", dir=out_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2)
        os.replace(tmp, out_dir / "training.json")
        paths.append(out_dir / "training.json")
        if _has_xarray():
            from cognitive_action.results.labelled import history_dataset, save_dataset

            runs = {mode: history} | ({"sgd": base} if base else {})
            paths.append(save_dataset(history_dataset(runs), out_dir / "training.nc"))
    return TrainResult(history=history, baseline=base, settings=settings, paths=paths)


# -- sweeps (issue 15) ---------------------------------------------------------------------
@dataclass
class SweepResult:
    """A problem file's sweep after a run (:func:`run_sweep_file`).

    Attributes
    ----------
    dataset
        The assembled ``xarray.Dataset`` (axes as coordinates, ``status``, ``error``).
    store
        The sweep's folder (``dataset.zarr``, ``points/``, ``convergence.png``).
    figure
        The convergence figure, for a convergence fit that was drawn, else ``None``.
    points_run, ok, failed, missing
        Points run by this call; points stored with results, with errors, not stored.
    """

    dataset: Any
    store: Path
    figure: Path | None
    points_run: int
    ok: int
    failed: int
    missing: int


def sweep_file(problem: str | os.PathLike[str] | ProblemSpec) -> Any:
    """The sweep of a problem file's ``[sweep]`` table, checked before any work.

    For a network problem simulated by the sweep, the shared initial state is the
    file's consistent one (:func:`initial_state`: the weights drawn from ``[initial]``,
    the neurons solved for), as ``cognitive-action simulate`` starts from.

    Returns
    -------
    cognitive_action.sweeps.section.SweepFile

    Raises
    ------
    ProblemFileError
        A malformed file, no ``[sweep]`` table, or a bad value in it
        (``file:sweep.<field>`` and a fix).
    """
    from cognitive_action.sweeps.section import sweep_from_problem

    spec = as_spec(problem)
    initial = None
    if spec.network is not None and isinstance(spec.sweep, Mapping) and \
            spec.sweep.get("task", "simulate") in ("simulate", "convergence"):
        initial = initial_state(spec, derive_spec(spec))
        initial = {k: v for k, v in initial.items() if k not in spec.values}
    return sweep_from_problem(spec, initial=initial)


def run_sweep_file(problem: Any, out: str | os.PathLike[str] = "results", *,
                   scheduler: str | None = None, workers: int | None = None,
                   progress: Any = None, on_start: Any = None) -> SweepResult:
    """Run a problem file's sweep into ``<out>/<name>_sweep`` (``cognitive-action sweep``).

    Locally by default (a ``LocalCluster`` of ``workers`` processes, started and
    closed here: no server to start); rerunning the same call runs only the points
    not stored yet.

    Parameters
    ----------
    problem
        A problem file with a ``[sweep]`` table (path or shipped name), or the
        :class:`~cognitive_action.sweeps.section.SweepFile` of :func:`sweep_file`.
    out
        The folder of the sweep's store (``<out>/<name>_sweep``).
    scheduler, workers
        A Dask scheduler address and the local cluster's worker processes; ``None``:
        the file's ``scheduler``/``workers`` (else a local cluster of 2).
    progress
        ``progress(done, failed, remaining)`` after every stored point.
    on_start
        ``on_start(dashboard_address)`` once the cluster is connected.

    Raises
    ------
    ProblemFileError
        A bad ``[sweep]`` table, or the file's scheduler does not answer.
    SweepError
        The ``scheduler`` argument does not answer, or the store holds another sweep.
    OutputError
        ``out`` cannot be written (checked before any work).
    """
    from cognitive_action.errors import SweepError
    from cognitive_action.sweeps.engine import run_sweep
    from cognitive_action.sweeps.section import SweepFile

    output_folder(out)  # before the sweep's checks and the cluster
    sf = problem if isinstance(problem, SweepFile) else sweep_file(problem)
    store = output_path(out, sf.name, "_sweep")
    address = scheduler if scheduler is not None else sf.scheduler
    try:
        ds = run_sweep(sf.spec, store, scheduler=address,
                       n_workers=workers if workers is not None else sf.workers,
                       chunk_size=sf.chunk_size, progress=progress, on_start=on_start)
    except SweepError as exc:
        if exc.field == "scheduler" and scheduler is None and sf.scheduler is not None:
            raise ProblemFileError(exc.message.removeprefix("scheduler: "), fix=exc.fix,
                                   path=sf.path, field="sweep.scheduler") from exc
        raise
    status = ds["status"].values
    figure = store / "convergence.png"
    return SweepResult(dataset=ds, store=store,
                       figure=figure if "convergence_order" in ds.attrs and figure.exists()
                       else None,
                       points_run=int(ds.attrs["points_run"]), ok=int((status == "ok").sum()),
                       failed=int((status == "failed").sum()),
                       missing=int((status == "missing").sum()))
