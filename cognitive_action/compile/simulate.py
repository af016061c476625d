"""Simulate compiled systems: one interface over CasADi's integrators.

:func:`simulate` runs any :class:`~cognitive_action.compile.system.CompiledSystem` (or
anything :func:`~cognitive_action.compile.system.compile_system` accepts) on an output
grid and returns a :class:`Simulation`: the times, the states by name, the integrator's
step statistics, and the constraint drift ``|G|`` and ``|Ġ|`` along the trajectory.

Methods
-------
``"cvodes"`` (alias ``"bdf"``; ``multistep="adams"`` or the alias ``"adams"`` for
Adams-Moulton)
    SUNDIALS CVODES, variable order and step. The Newton iterations of BDF use a
    direct sparse solve below 300 states and matrix-free GMRES above (design notes:
    dense Jacobians of thousands of states do not finish). With GMRES the right-hand
    side is wrapped in :class:`~cognitive_action.compile.matrix_free.MatrixFreeRHS`
    (Jacobian-vector products by forward AD, no Jacobian sparsity pass at construction,
    which dominates building the integrator otherwise; docs/performance.md).
``"idas"``
    SUNDIALS IDAS on the index-1 DAE: the unknowns (accelerations and multipliers,
    or eq. 10's ``δ`` on the network route) become algebraic states, and their
    trajectory is returned as :attr:`Simulation.algebraic`.
``"dopri"``
    Our explicit Dormand-Prince 5(4) (:mod:`cognitive_action.compile.explicit`): one
    compiled CasADi function per attempted step, driven through buffers, dense output.
    No CasADi integrator object is built, so there is no Jacobian sparsity pass: the
    method for large networks (eq. 10 couples every state densely).
    ``loop="c"`` runs the whole adaptive loop, and the drift report (``G``, ``Ġ``), as
    generated C compiled once into the library cache
    (:mod:`cognitive_action.compile.c_loop`): the same steps and failures, outputs equal
    to round-off, faster at small sizes (``benchmarks/bench_peers.py``); it needs a C
    compiler; with projection the Python loop runs, and progress is reported between
    calls of the C loop.
``"erk"``
    CasADi's explicit Runge-Kutta 5(4) with adaptive steps (fixed steps with
    ``steps``); its construction computes the Jacobian sparsity of the right-hand side.
``"rk"``
    Classical RK4, ``steps`` fixed steps per output interval.
``"collocation"``
    Implicit Radau collocation, ``steps`` finite elements per output interval. Long
    grids run as one compiled loop over intervals (``mapaccum``), not as one nonlinear
    system over the whole horizon.

Stabilization
-------------
``stabilization="baumgarte"`` replaces ``G̈ = 0`` by ``G̈ + 2α Ġ + β² G = 0`` (and
``Ṅ = 0`` by ``Ṅ + α N = 0``) with ``baumgarte=(α, β)``; ``stabilization="projection"``
projects the state back onto ``G = 0, Ġ = 0, N = 0`` after every output interval
(``project_every`` intervals). Both can be combined (``"both"``).

Progress
--------
``progress=True`` shows a tqdm bar over the output grid on stderr (``None``: only when
stderr is a terminal and the run is long). ``dopri`` reports every output point as it is
reached; the CasADi methods then run the grid in chunks of output intervals, each chunk
starting from the state the previous one reached (results agree with a single run to the
tolerances: adaptive methods restart their step-size control at every chunk).

Interrupts and checkpoints
--------------------------
``chunks=N`` runs the grid in chunks for every method; ``on_chunk`` receives a
:class:`Checkpoint` after each, and ``resume=`` continues from one to the same numbers,
bit for bit. Ctrl-C raises :class:`~cognitive_action.errors.InterruptedRunError` (a
``KeyboardInterrupt``) with the completed chunks, never a ``SimulationError``: CasADi
turns an interrupt into a failure of the call it was evaluating, and
:mod:`cognitive_action.interrupts` records it first.

Failures
--------
Integrator failures, NaN and states whose norm exceeds ``max_norm`` raise
:class:`~cognitive_action.errors.SimulationError` with the time reached and the
state's norm there (an integrator failure is located by re-running interval by
interval and bisecting the failing one). Systems with multiplier states (the vakonomic
rule) are checked before integrating: if the linearization at the initial state has an
eigenvalue whose growth over the run exceeds ``e^18`` (eq. 20 is anti-stable forward in
time), :class:`~cognitive_action.errors.UnstableSystemError` names the stable variants.

Examples
--------
The ``exp(θt)``-weighted oscillator ``m ẍ + θ m ẋ + k x = 0``:

>>> import numpy as np, sympy as sp
>>> from cognitive_action.declare import symbols as S
>>> from cognitive_action.declare.problem import Action, Problem
>>> x, = S.coordinates("x"); m, k, theta = S.parameters("m k theta")
>>> w = sp.exp(theta * S.t)
>>> osc = Problem(Action([x], masses=m, weight=w, lagrangian=-w * k * x**2 / 2),
...               parameters=[m, k, theta])
>>> run = simulate(osc, (0.0, 1.0), {"x": 1.0, "x_dot": 0.0},
...                {"m": 1.0, "k": 4.0, "theta": 0.0}, n_points=3)
>>> np.allclose(run["x"], np.cos(2 * run.times), atol=1e-7)
True
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cognitive_action import interrupts
from cognitive_action.compile.c_loop import c_loop_for
from cognitive_action.compile.explicit import integrate_dopri
from cognitive_action.compile.integration import (
    SEGMENTED_COLLOCATION,
    STABLE_VARIANTS,
    along_trajectory,
    check_finite,
    check_initial_state,
    check_solvable,
    check_stability,
    chunk_function,
    constraints_along,
    direct_function,
    dopri_function,
    integrator_spec,
    output_grid,
    prepare_constraints_along,
    run_once,
    segmented_function,
)
from cognitive_action.compile.options import (
    METHODS,
    SolverOptions,
    check_for_system,
    resolve_options,
)
from cognitive_action.compile.system import CompiledSystem, compile_system
from cognitive_action.errors import CompileError, InterruptedRunError, SimulationError

__all__ = ["Checkpoint", "Simulation", "simulate", "METHODS", "STABLE_VARIANTS"]

_PROGRESS_CHUNKS = 20  # chunks of the output grid when a CasADi method shows progress
_LONG_RUN = 1_000_000  # states x output points above which progress=None shows a bar


class _Pending:
    """A value computed on first read: ``Simulation``'s drift report."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self.compute = compute


class _OnFirstRead:
    """A dataclass field that may be given as :class:`_Pending`: computed when first
    read, then stored (a plain value is stored as given; the default is ``None``)."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:  # the dataclass asks for the default
            return None
        value = obj.__dict__.get(self.slot)
        if isinstance(value, _Pending):
            value = obj.__dict__[self.slot] = value.compute()
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.slot] = value


class _DriftReport:
    """``G`` and ``Ġ`` along a trajectory, computed together on the first read of either
    in one pass over all output points (:func:`constraints_along`). Together because
    ``Ġ`` needs what ``G`` needs (on a network both passes read every weight, so ``G``
    first and ``Ġ`` after cost half as much again as both at once: docs/performance.md);
    the report is both. Networks use their vectorised evaluator
    (equal to ``system.constraints`` point by point to round-off), other systems a mapped
    call of ``system.constraints`` (the same numbers bit for bit); with ``loop="c"``
    the C loop's generated ``system.constraints`` point by point (``compiled``)."""

    def __init__(self, system: CompiledSystem, times: np.ndarray, Y: np.ndarray,
                 p: np.ndarray, compiled: Callable | None = None) -> None:
        self.system, self.times, self.Y, self.p = system, times, Y, p
        self.G = self.Gd = None
        self.compiled = compiled  # (times, Y, p) -> (G, Ġ): CLoop.constraints_along

    def _compute(self) -> None:
        if self.G is None:
            if self.compiled is not None:
                self.G, self.Gd = self.compiled(self.times, self.Y, self.p)
            else:
                self.G, self.Gd = constraints_along(self.system, self.times, self.Y,
                                                    self.p)

    def values(self) -> np.ndarray:
        self._compute()
        return self.G

    def rates(self) -> np.ndarray:
        self._compute()
        return self.Gd


@dataclass
class Simulation:
    """The result of :func:`simulate`.

    Attributes
    ----------
    system
        The compiled system that ran.
    times
        Output times, shape ``(n_t,)``.
    y
        States, shape ``(n_t, n_states)``, columns in the order of ``system.states``.
    params
        The full parameter vector used (user parameters, then the Baumgarte gains).
    method
        The method that ran, with its main options, e.g. ``"cvodes (bdf, direct)"``.
    stats
        Step statistics of the integrator (``nsteps``, ``nfevals``, ... as CasADi
        reports them) plus ``build_time`` and ``run_time`` in seconds.
    constraint_values, constraint_rates
        ``G`` and ``Ġ`` along the trajectory, shape ``(n_t, n_constraints)`` (``Ġ`` is
        0 for non-holonomic constraints, whose ``G`` is ``N``); ``None`` without
        constraints. :func:`simulate` computes each when it is first read (the drift
        report: :attr:`max_drift` reads ``G`` only), from :attr:`y` as it is then.
    stabilization
        ``None``, ``"baumgarte"``, ``"projection"`` or ``"both"``.
    variant
        Which form of the dynamics ran: ``"forward"`` (the derived system as is).
    algebraic
        With IDAS, the algebraic states (``δ`` or the unknowns) along the trajectory,
        shape ``(n_t, n_z)``; else ``None``.
    algebraic_names
        Names of the algebraic states.
    """

    system: CompiledSystem
    times: np.ndarray
    y: np.ndarray
    params: np.ndarray
    method: str
    stats: dict
    constraint_values: np.ndarray | None = _OnFirstRead()
    constraint_rates: np.ndarray | None = _OnFirstRead()
    stabilization: str | None = None
    variant: str = "forward"
    algebraic: np.ndarray | None = None
    algebraic_names: tuple[str, ...] = ()
    _unknowns: dict | None = field(default=None, repr=False)

    @property
    def states(self) -> dict[str, np.ndarray]:
        """State trajectories by name (views into :attr:`y`)."""
        return {n: self.y[:, i] for i, n in enumerate(self.system.states)}

    def __getitem__(self, name: str) -> np.ndarray:
        """A state's trajectory, or an unknown's (``x1_ddot``, ``lambda_G3``)."""
        try:
            return self.y[:, self.system.states.index(name)]
        except ValueError:
            pass
        u = self.unknowns()
        if name in u:
            return u[name]
        raise KeyError(f"{name!r} is neither a state nor an unknown of {self.system.name!r}")

    @property
    def final(self) -> dict[str, float]:
        """The final state by name."""
        return dict(zip(self.system.states, self.y[-1].tolist()))

    @property
    def drift(self) -> np.ndarray | None:
        """``max_j |G_j|`` at every output time (``None`` without constraints)."""
        if self.constraint_values is None:
            return None
        return np.max(np.abs(self.constraint_values), axis=1)

    @property
    def drift_rate(self) -> np.ndarray | None:
        """``max_j |Ġ_j|`` at every output time (``None`` without constraints)."""
        if self.constraint_rates is None:
            return None
        return np.max(np.abs(self.constraint_rates), axis=1)

    @property
    def max_drift(self) -> float:
        """The largest ``|G|`` along the trajectory (0 without constraints)."""
        d = self.drift
        return 0.0 if d is None or d.size == 0 else float(d.max())

    def unknowns(self) -> dict[str, np.ndarray]:
        """Accelerations and multipliers along the trajectory, by name (computed once)."""
        if self._unknowns is None:
            u, = along_trajectory(self.system.unknowns, self.times, self.y, self.params,
                                  self.system._cache)
            self._unknowns = {k: u[:, i] for i, k in enumerate(self.system.unknown_names)}
        return self._unknowns

    def multipliers(self) -> dict[str, np.ndarray]:
        """The multipliers ``λ`` (``δ`` when weighted) along the trajectory, by name.

        Under the vakonomic rule the multipliers ``μ`` are states; they are included.
        """
        u = self.unknowns()
        out = {k: u[k] for k in self.system.multipliers}
        for m in self.system.multiplier_states:
            out[m] = self[m]
        return out


@dataclass(frozen=True)
class Checkpoint:
    """The completed part of a run in chunks: what :func:`simulate` needs to continue it
    (``resume=``) to the same numbers, bit for bit, as a run that was never stopped.

    Attributes
    ----------
    edges
        Output indices where the chunks start and end (the last is ``n_t - 1``).
    done
        Chunks completed.
    y
        States at the output times ``grid[:edges[done] + 1]``, one row per time.
    z
        With IDAS, the algebraic states there; else ``None``.
    stats
        The integrator's statistics summed over the completed chunks.
    """

    edges: tuple[int, ...]
    done: int
    y: np.ndarray
    z: np.ndarray | None = None
    stats: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every chunk is done."""
        return self.done == len(self.edges) - 1


# -- the interface ---------------------------------------------------------------------------
def simulate(system, times, y0, params: Mapping[str, float] | None = None, *,
             n_points: int = 101, signals: Mapping | None = None,
             options: SolverOptions | None = None, chunks: int | None = None,
             resume: Checkpoint | None = None,
             on_chunk: Callable[[Checkpoint], None] | None = None,
             **overrides: Any) -> Simulation:
    """Integrate a compiled system on an output grid.

    Parameters
    ----------
    system
        A :class:`CompiledSystem`, or a problem / derived system (compiled here with
        ``signals``).
    times
        ``(t0, tf)`` (a tuple or list of two numbers: ``n_points`` equally spaced output
        times) or an array of increasing output times.
    y0
        Initial state: a mapping by name (as ``complete_initial_conditions`` returns;
        names that are not states are ignored) or an array in the order of
        ``system.states``.
    params
        Values of ``system.parameters`` by name. Names missing here are looked up in
        ``y0`` when it is a mapping.
    n_points
        Number of output times when ``times`` is ``(t0, tf)``.
    signals
        Signals as expressions of ``t`` when ``system`` still has to be compiled.
    options
        How to integrate: a :class:`~cognitive_action.compile.options.SolverOptions`
        (method, tolerances, stabilization, checks, progress, ...); ``None``: its
        defaults. With ``progress`` (``None``: only when stderr is a terminal and
        ``n_states × n_points`` exceeds 10⁶) the CasADi methods run the grid in chunks
        (see Progress above).
    chunks
        Run the grid in about this many chunks of output intervals, each from the state
        the previous one reached (as with a progress bar; the adaptive step control
        restarts at every chunk). Ctrl-C is seen between chunks (and stops a CasADi
        integrator within the chunk), and the completed chunks are kept.
    resume
        A :class:`Checkpoint` of this run (same system, grid, initial state, parameters,
        options and ``chunks``) to continue from; the result equals the uninterrupted
        run's bit for bit.
    on_chunk
        Called with a :class:`Checkpoint` after every chunk (to save it); Ctrl-C while it
        runs waits for it to return.
    **overrides
        Fields of :class:`~cognitive_action.compile.options.SolverOptions` that replace
        those of ``options``, e.g. ``method="dopri", rtol=1e-9``.

    Returns
    -------
    Simulation

    Raises
    ------
    TypeError
        A keyword that is not a solver option (the message lists them).
    CompileError
        Bad input: an option out of its domain (named), missing parameter values, a
        wrong state length, an invalid grid.
    InconsistentInitialConditionsError
        ``y0`` violates the constraints or their time derivatives.
    UnstableSystemError
        Anti-stable multiplier dynamics (see ``SolverOptions.stability``).
    SimulationError
        Integrator failure, NaN or blow-up, with ``time`` and ``state_norm``.
    InterruptedRunError
        Ctrl-C (``SIGINT``, main thread): a ``KeyboardInterrupt`` carrying the
        completed chunks as a partial :class:`Simulation` (``partial``) and a
        :class:`Checkpoint` (``resume``); never reported as a failure of the integrator.
    """
    with interrupts.handling():
        try:
            return _simulate(system, times, y0, params, n_points=n_points,
                             signals=signals, options=options, chunks=chunks,
                             resume=resume, on_chunk=on_chunk, overrides=overrides)
        except InterruptedRunError:
            raise
        except KeyboardInterrupt:  # while compiling or checking, before the run
            raise InterruptedRunError("interrupted before the run started") from None
        except Exception:
            if interrupts.requested():  # swallowed by CasADi and reported as a failure
                raise InterruptedRunError("interrupted before the run completed") from None
            raise


def _simulate(system, times, y0, params, *, n_points, signals, options, chunks, resume,
              on_chunk, overrides) -> Simulation:
    opts = resolve_options("simulate", options, overrides)
    if not isinstance(system, CompiledSystem):
        system = compile_system(system, signals=signals)
    elif signals is not None:
        raise CompileError("signals were given for an already compiled system",
                           fix="pass signals to compile_system instead")
    check_for_system(opts, system)
    spec = integrator_spec(system, opts)
    grid = output_grid(times, n_points)
    y0v = system.state_vector(y0)
    stabilization, project_every = opts.stabilization, opts.project_every
    gains = opts.baumgarte if stabilization in ("baumgarte", "both") else (0.0, 0.0)
    pv = system.parameter_vector(params, fallback=y0 if isinstance(y0, Mapping) else None,
                                 baumgarte=gains)
    if opts.check_initial:
        _check_masses(system, grid[0], y0v, pv)
        check_solvable(system, grid[0], y0v, pv)
    if opts.check_initial and system.constraints is not None:
        check_initial_state(system, grid[0], y0v, pv, opts.initial_tol)
    if opts.stability != "ignore" and (system.vakonomic or opts.stability == "raise"):
        check_stability(system, grid, y0v, pv, opts.stability)

    project = stabilization in ("projection", "both")
    every = int(project_every) if project else 1
    n_t = len(grid)
    progress = opts.progress
    if progress is None:
        progress = _isatty(sys.stderr) and system.n_states * n_t > _LONG_RUN
    segmented = spec.method != "dopri" and (
        project or (spec.method == "collocation" and n_t > SEGMENTED_COLLOCATION))
    # dopri draws its bar point by point in one piece; the CasADi methods need chunks
    chunked = (bool(progress) and spec.method != "dopri") or chunks is not None \
        or resume is not None or on_chunk is not None
    run = _Run(system, spec, grid, pv, opts, project, every, segmented)
    if chunked:
        edges = _chunks(n_t, every, chunks or _PROGRESS_CHUNKS)
        Y, z_traj, stats, build_time, run_time = run.chunked(
            edges, y0v, resume, on_chunk, bool(progress))
    else:
        Y, z_traj, stats, build_time, run_time = run.whole(y0v, bool(progress))
    sim = run.result(grid, Y, z_traj, dict(stats) | {
        "build_time": build_time, "run_time": run_time, "output_points": n_t})
    if interrupts.requested():  # swallowed by a CasADi call after the integration
        raise InterruptedRunError(
            f"interrupted after the run reached t = {grid[-1]:g}", partial=sim,
            time=float(grid[-1]), resume=Checkpoint(tuple(edges), len(edges) - 1, Y,
                                                    z_traj, dict(stats))
            if chunked else None)
    return sim


def _check_masses(system: CompiledSystem, t0: float, y0: np.ndarray, pv: np.ndarray
                  ) -> None:
    """The declared masses positive definite at the initial state with these parameter
    values (:func:`~cognitive_action.derive.physical.check_masses`), when the system
    knows the problem it was compiled from.

    The check depends only on the values of the symbols in the masses (parameters, and
    coordinates or ``t`` for a mass matrix ``M(q, t)``): the values that passed are
    remembered on the system, so repeated runs with the same masses do not evaluate the
    SymPy expressions again (a failing check is never remembered and raises every time).
    """
    from cognitive_action.derive.physical import check_masses

    hit = system._cache.get("mass_check")
    if hit is None:
        hit = system._cache["mass_check"] = _mass_symbols(system)
    if hit is False:  # no problem to check
        return
    problem, state_idx, param_idx, uses_t, passed = hit
    pv = np.asarray(pv, dtype=float)
    key = (tuple(y0[state_idx].tolist()), tuple(pv[param_idx].tolist()),
           float(t0) if uses_t else None)
    if key in passed:
        return
    point = dict(zip(system.states, y0.tolist())) | dict(
        zip(system.parameters, pv.tolist())) | {"t": float(t0)}
    check_masses(problem, point)
    if len(passed) < 64:
        passed.add(key)


def _mass_symbols(system: CompiledSystem):
    """What the mass check of ``system`` depends on: ``(problem, state indices, parameter
    indices, whether t, set of passed keys)``, or ``False`` without a problem."""
    from cognitive_action.declare.problem import Problem

    source = system.origin[0] if system.origin else None
    problem = source if isinstance(source, Problem) else getattr(source, "problem", None)
    if not isinstance(problem, Problem):
        return False
    action = problem.action
    exprs = list(action.masses.values())
    if action.mass_matrix is not None:
        exprs += list(action.mass_matrix)
    names = {str(s) for e in exprs for s in getattr(e, "free_symbols", ())}
    state_idx = np.array([i for i, n in enumerate(system.states) if n in names], dtype=int)
    param_idx = np.array([i for i, n in enumerate(system.parameters) if n in names],
                         dtype=int)
    return problem, state_idx, param_idx, "t" in names, set()


class _Run:
    """One simulation's integration, in one piece or in chunks, and its result."""

    def __init__(self, system: CompiledSystem, spec, grid: np.ndarray, pv: np.ndarray,
                 opts: SolverOptions, project: bool, every: int, segmented: bool) -> None:
        self.system, self.spec, self.grid, self.pv, self.opts = system, spec, grid, pv, opts
        self.project, self.every, self.segmented = project, every, segmented
        # the compiled step loop (loop="c"; not with projection: the Python loop runs)
        self.c_loop = None
        self.use_c = spec.method == "dopri" and opts.loop == "c" and not project

    def _build_dopri(self) -> None:
        system = self.system
        if self.use_c:
            self.c_loop = c_loop_for(system)[0]
        else:
            dopri_function(system)
            dopri_function(system, dense=False)

    def result(self, grid: np.ndarray, Y: np.ndarray, z_traj, stats: dict) -> Simulation:
        system, spec = self.system, self.spec
        if spec.method != "dopri":  # integrate_dopri checks every accepted step itself
            check_finite(Y, grid, self.opts.max_norm, spec.label)
        G = Gd = None
        if system.constraints is not None:  # computed when read (_DriftReport)
            c = self.c_loop
            report = _DriftReport(system, grid, Y, self.pv,
                                  c.constraints_along if c is not None and c.n_g else None)
            G, Gd = _Pending(report.values), _Pending(report.rates)
        z_names = system.dae["z_names"] if z_traj is not None else ()
        return Simulation(system=system, times=grid, y=Y, params=self.pv,
                          method=spec.label, stats=stats, constraint_values=G,
                          constraint_rates=Gd, stabilization=self.opts.stabilization,
                          variant=system.variant, algebraic=z_traj,
                          algebraic_names=tuple(z_names))

    def _dopri(self, g: np.ndarray, y: np.ndarray, on_output):
        c = self.c_loop
        res = integrate_dopri(
            dopri_function(self.system) if c is None else None, self.system.rhs, g, y,
            self.pv, c_loop=c,
            plain_step=dopri_function(self.system, dense=False) if c is None else None,
            rtol=self.opts.rtol, atol=self.opts.atol, max_steps=self.opts.max_steps,
            max_norm=self.opts.max_norm,
            projection=self.system.projection if self.project else None,
            project_every=self.every, on_output=on_output)
        return res.y, None, res.stats

    def whole(self, y0: np.ndarray, progress: bool):
        """The grid in one call (one integrator call, or dopri's loop)."""
        system, spec, grid, pv = self.system, self.spec, self.grid, self.pv
        t_build = time.perf_counter()
        if spec.method == "dopri":
            self._build_dopri()
        elif self.segmented:
            fn = segmented_function(system, spec, grid, self.project, self.every)
        else:
            fn = direct_function(system, spec, grid)
        if system.constraints is not None and (self.c_loop is None or not self.c_loop.n_g):
            prepare_constraints_along(system, len(grid))  # the drift report's G, Ġ (cached)
        build_time = time.perf_counter() - t_build
        t_run = time.perf_counter()
        try:
            interrupts.raise_if_requested()  # one swallowed while building
            with interrupts.raising():
                if spec.method == "dopri":
                    with _progress_bar(progress, len(grid), system.name) as bar:
                        Y, Z, stats = self._dopri(grid, y0, _polling(bar))
                else:
                    Y, Z, stats = run_once(fn, system, spec, grid, y0, pv, self.segmented)
        except (KeyboardInterrupt, SimulationError) as exc:
            if not (isinstance(exc, KeyboardInterrupt) or interrupts.requested()):
                raise
            raise InterruptedRunError(
                f"interrupted before t = {grid[-1]:g}: the run was in one piece, nothing "
                "completed is kept", fix="run in chunks to keep the completed part "
                "(simulate(..., chunks=20), or the command line's checkpoints)",
                time=float(grid[0])) from None
        return Y, Z, stats, build_time, time.perf_counter() - t_run

    def chunked(self, edges: list[int], y0: np.ndarray, resume: Checkpoint | None,
                on_chunk, progress: bool):
        """The grid chunk by chunk, each from the state the previous one reached."""
        system, spec, grid, pv = self.system, self.spec, self.grid, self.pv
        if resume is not None:
            _check_resume(resume, edges, y0)
            rows, zrows, stats = [resume.y], ([resume.z] if resume.z is not None
                                              else []), dict(resume.stats)
            first = resume.done
        else:
            rows, zrows, stats, first = [y0[None, :]], [], {}, 0
        build_time = 0.0
        t_run = time.perf_counter()

        def stopped(i: int) -> InterruptedRunError:
            Y = np.vstack(rows)
            Z = np.vstack(zrows) if zrows else None
            cp = Checkpoint(tuple(edges), i, Y, Z, dict(stats))
            k = edges[i]
            partial = self.result(grid[:k + 1], Y, Z, dict(stats)) if k > 0 else None
            return InterruptedRunError(
                f"interrupted at t = {grid[k]:g} of {grid[-1]:g} ({i} of "
                f"{len(edges) - 1} chunks done)", partial=partial, time=float(grid[k]),
                resume=cp)

        y = rows[-1][-1] if resume is not None else y0
        with _progress_bar(progress, len(grid), system.name) as bar, interrupts.deferred():
            bar(edges[first] + 1)
            for i in range(first, len(edges) - 1):
                a, b = edges[i], edges[i + 1]
                g = grid[a:b + 1]
                if interrupts.requested():
                    raise stopped(i)
                try:
                    t0 = time.perf_counter()
                    if spec.method == "dopri":
                        self._build_dopri()
                    elif self.segmented:
                        f = segmented_function(system, spec, g, self.project, self.every)
                    else:
                        f = chunk_function(system, spec, g)
                    build_time += time.perf_counter() - t0
                    with interrupts.raising():
                        if spec.method == "dopri":
                            Y, Z, st = self._dopri(g, y, _polling(lambda k, a=a: bar(a + k)))
                        elif self.segmented:
                            Y, Z, st = run_once(f, system, spec, g, y, pv, True)
                        else:
                            Y, Z, st = run_once(f, system, spec, g, y, pv, False,
                                                p_int=np.append(pv, g[0]))
                except (KeyboardInterrupt, SimulationError) as exc:
                    if isinstance(exc, KeyboardInterrupt) or interrupts.requested():
                        raise stopped(i) from None
                    raise
                rows.append(Y[1:])
                if Z is not None:
                    zrows.append(Z if not zrows else Z[1:])
                for k, v in st.items():
                    stats[k] = stats.get(k, 0) + v
                y = Y[-1]
                bar(b + 1)
                if on_chunk is not None:
                    on_chunk(Checkpoint(tuple(edges), i + 1, np.vstack(rows),
                                        np.vstack(zrows) if zrows else None, dict(stats)))
        stats["chunks"] = len(edges) - 1
        Y = np.vstack(rows)
        Z = np.vstack(zrows) if zrows else None
        return Y, Z, stats, build_time, time.perf_counter() - t_run - build_time


def _polling(update):
    """An ``on_output`` callback for dopri that also stops at a recorded Ctrl-C."""
    def on_output(k: int) -> None:
        update(k)
        interrupts.raise_if_requested()

    return on_output


def _check_resume(cp: Checkpoint, edges: list[int], y0: np.ndarray) -> None:
    """Refuse a checkpoint of another run (other chunks, another initial state)."""
    ok = (tuple(cp.edges) == tuple(edges) and 0 <= cp.done < len(edges)
          and cp.y.ndim == 2 and cp.y.shape == (edges[cp.done] + 1, y0.size)
          and np.array_equal(cp.y[0], y0))
    if not ok:
        raise CompileError("the checkpoint belongs to another run (its chunks, initial "
                           "state or size differ)",
                           fix="resume with the settings of the interrupted run, or start "
                           "over without resume")


# -- progress: the output grid in chunks -----------------------------------------------------
def _chunks(n_t: int, multiple: int = 1, target: int = _PROGRESS_CHUNKS) -> list[int]:
    """Output indices where chunks start and end, about ``target`` chunks of equal
    length (a multiple of ``multiple`` intervals) where the grid allows."""
    n_int = n_t - 1
    want = max(1, min(target, n_int // multiple))
    sizes = [d for d in range(multiple, n_int + 1, multiple)
             if n_int % d == 0 and target // 4 <= n_int // d <= 4 * want]
    size = (min(sizes, key=lambda d: abs(n_int // d - want)) if sizes
            else multiple * max(1, round(n_int / want / multiple)))
    return list(range(0, n_int, size)) + [n_int]


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def _progress_bar(show: bool, total: int, name: str):
    """Yield ``update(k)``: ``k`` output points reached (a tqdm bar on stderr if shown)."""
    if not show:
        yield lambda k: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=f"simulate {name}", unit="pt", file=sys.stderr,
              leave=False) as pbar:
        def update(k: int) -> None:
            pbar.update(k - pbar.n)

        yield update


