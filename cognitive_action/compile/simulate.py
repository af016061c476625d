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
    (Jacobian-vector products by forward AD, no Jacobian sparsity pass at construction:
    0.13 s instead of 230 s at 50 neurons).
``"idas"``
    SUNDIALS IDAS on the index-1 DAE: the unknowns (accelerations and multipliers,
    or eq. 10's ``δ`` on the network route) become algebraic states, and their
    trajectory is returned as :attr:`Simulation.algebraic`.
``"dopri"``
    Our explicit Dormand-Prince 5(4) (:mod:`cognitive_action.compile.explicit`): one
    compiled CasADi function per attempted step, driven through buffers, dense output.
    No CasADi integrator object is built, so there is no Jacobian sparsity pass: the
    method for large networks (eq. 10 couples every state densely).
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
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import casadi as ca
import numpy as np

from cognitive_action.compile.explicit import dopri_step_function, integrate_dopri
from cognitive_action.compile.matrix_free import MatrixFreeRHS
from cognitive_action.compile.options import (
    METHODS,
    SolverOptions,
    check_for_system,
    resolve_options,
)
from cognitive_action.compile.system import CompiledSystem, compile_system
from cognitive_action.errors import (
    CompileError,
    InconsistentInitialConditionsError,
    SimulationError,
    UnstableSystemError,
)

__all__ = ["Simulation", "simulate", "METHODS", "STABLE_VARIANTS"]

#: The ways to run anti-stable multiplier dynamics named in the design notes (eq. 20).
STABLE_VARIANTS = {
    "adjoint": "integrate the multiplier equation backward in time from its final "
               "condition, the primal states forward (a forward-backward sweep, as for "
               "costates in optimal control; runs: compile.adjoint_sweep)",
    "quasi-static": "the quasi-static reduction: solve the multiplier equilibrium "
                    "(T δ = -V_x, the backprop delta) at every instant (the limit taken by "
                    "verify.limits.reduce)",
    "relaxation": "the stable relaxation c⁻¹ δ̇ = -(T δ + V_x), same equilibrium, the "
                  "backward diffusion wave (runs: compile.stable_variant)",
}

_GROWTH_LIMIT = 18.0  # e^18 ≈ 6.6e7: the largest predicted growth accepted by default
_DIRECT_LIMIT = 300  # states above which BDF's Newton iterations use GMRES
_MATRIX_FREE_LIMIT = 300  # states above which erk and Adams skip the sparsity pass
_SEGMENTED_COLLOCATION = 50  # output points above which collocation runs interval-wise
_PROGRESS_CHUNKS = 20  # chunks of the output grid when a CasADi method shows progress
_LONG_RUN = 1_000_000  # states x output points above which progress=None shows a bar
_FLAG_RE = re.compile(r'returned "?([A-Z_]+)"?')


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
        constraints.
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
    constraint_values: np.ndarray | None
    constraint_rates: np.ndarray | None
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
            u, = along_trajectory(self.system.unknowns, self.times, self.y, self.params)
            self._unknowns = {k: u[:, i] for i, k in enumerate(self.system.unknown_names)}
        return self._unknowns

    def multipliers(self) -> dict[str, np.ndarray]:
        """The multipliers ``λ`` (``δ`` when weighted) along the trajectory, by name.

        Under the vakonomic rule the multipliers ``μ`` are states; they are included.
        """
        u = self.unknowns()
        acc = {c + "_ddot" for c in self.system.coordinates}
        out = {k: v for k, v in u.items() if k not in acc and not k.endswith("_dot")}
        for m in self.system.multiplier_states:
            out[m] = self[m]
        return out


# -- the interface ---------------------------------------------------------------------------
def simulate(system, times, y0, params: Mapping[str, float] | None = None, *,
             n_points: int = 101, signals: Mapping | None = None,
             options: SolverOptions | None = None, **overrides: Any) -> Simulation:
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
    """
    opts = resolve_options("simulate", options, overrides)
    if not isinstance(system, CompiledSystem):
        system = compile_system(system, signals=signals)
    elif signals is not None:
        raise CompileError("signals were given for an already compiled system",
                           fix="pass signals to compile_system instead")
    check_for_system(opts, system)
    spec = integrator_spec(system, opts)
    grid = _grid(times, n_points)
    y0v = system.state_vector(y0)
    stabilization, project_every, max_norm = (opts.stabilization, opts.project_every,
                                              opts.max_norm)
    gains = opts.baumgarte if stabilization in ("baumgarte", "both") else (0.0, 0.0)
    pv = system.parameter_vector(params, fallback=y0 if isinstance(y0, Mapping) else None,
                                 baumgarte=gains)
    if opts.check_initial and system.constraints is not None:
        _check_initial(system, grid[0], y0v, pv, opts.initial_tol)
    if opts.stability != "ignore" and (system.vakonomic or opts.stability == "raise"):
        _check_stability(system, grid, y0v, pv, opts.stability)

    project = stabilization in ("projection", "both")
    n_t = len(grid)
    progress = opts.progress
    if progress is None:
        progress = _isatty(sys.stderr) and system.n_states * n_t > _LONG_RUN
    if spec.method == "dopri":
        t_build = time.perf_counter()
        fn = _dopri_function(system)
        build_time = time.perf_counter() - t_build
        t_run = time.perf_counter()
        with _progress_bar(progress, n_t, system.name) as bar:
            res = integrate_dopri(
                fn, system.rhs, grid, y0v, pv, rtol=opts.rtol, atol=opts.atol,
                max_steps=opts.max_steps, max_norm=max_norm,
                projection=system.projection if project else None,
                project_every=int(project_every), on_output=bar)
        Y, z_traj, stats = res.y, None, res.stats
    else:
        segmented = project or (spec.method == "collocation" and n_t > _SEGMENTED_COLLOCATION)
        t_build = time.perf_counter()
        chunks = _chunks(n_t, int(project_every) if project else 1) if progress else None
        if chunks is not None and not segmented:
            fn = _chunk_function(system, spec, grid[:chunks[1] + 1])
        elif segmented:
            n_int = (chunks[1] - chunks[0]) if chunks is not None else n_t - 1
            fn = _segmented_function(system, spec, grid[:n_int + 1], project,
                                     int(project_every))
        else:
            fn = _direct_function(system, spec, grid)
        build_time = time.perf_counter() - t_build
        t_run = time.perf_counter()
        if chunks is None:
            Y, z_traj, stats = _run_once(fn, system, spec, grid, y0v, pv, segmented)
        else:
            with _progress_bar(True, n_t, system.name) as bar:
                Y, z_traj, stats = _run_chunks(fn, system, spec, grid, y0v, pv,
                                               segmented, project, int(project_every),
                                               chunks, bar)
    run_time = time.perf_counter() - t_run
    stats = dict(stats) | {"build_time": build_time, "run_time": run_time,
                           "output_points": n_t}
    if spec.method != "dopri":  # integrate_dopri checks every accepted step itself
        _check_finite(Y, grid, max_norm, spec.label)

    G = Gd = None
    if system.constraints is not None:
        G, Gd = along_trajectory(system.constraints, grid, Y, pv)
    z_names = ()
    if z_traj is not None:
        z_names = system.dae["z_names"]
    return Simulation(system=system, times=grid, y=Y, params=pv, method=spec.label,
                      stats=stats, constraint_values=G, constraint_rates=Gd,
                      stabilization=stabilization, variant=system.variant, algebraic=z_traj,
                      algebraic_names=tuple(z_names))


# -- inputs -----------------------------------------------------------------------------------
def integrator_spec(system: CompiledSystem, opts: SolverOptions) -> _Spec:
    """The integrator description for ``system`` under ``opts``: the aliases ``adams`` and
    ``bdf`` become ``cvodes``, ``newton="auto"`` is resolved (functional for Adams, direct
    up to 300 states, GMRES above); shared by :func:`simulate` and the batched runs."""
    method, multistep = opts.method, opts.multistep
    if method == "adams":
        method, multistep = "cvodes", multistep or "adams"
    elif method == "bdf":
        method = "cvodes"
    multistep = (multistep or "bdf").lower()
    if opts.newton != "auto":
        newton = opts.newton
    elif method == "cvodes" and multistep == "adams":
        newton = "functional"  # non-stiff: fixed-point iterations, no Jacobian at all
    else:
        newton = "direct" if system.n_states <= _DIRECT_LIMIT else "gmres"
    return _Spec(method, multistep, newton, opts.rtol, opts.atol, opts.steps, opts.max_steps,
                 dict(opts.integrator_options or {}))


def _grid(times, n_points: int) -> np.ndarray:
    if isinstance(times, (tuple, list)) and len(times) == 2:
        if int(n_points) != n_points or n_points < 2:
            raise CompileError(f"n_points must be an integer >= 2, got {n_points!r}",
                               fix="ask for at least the two end points")
        try:
            t0, tf = float(times[0]), float(times[1])
        except (TypeError, ValueError):
            raise CompileError(f"t_span {times!r} is not two numbers",
                               fix="give (t0, tf) or an array of output times") from None
        grid = np.linspace(t0, tf, int(n_points))
    else:
        try:
            grid = np.asarray(times, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise CompileError(f"cannot read output times from {times!r}",
                               fix="give (t0, tf) or an array of output times") from None
    if grid.size < 2 or not np.all(np.isfinite(grid)) or np.any(np.diff(grid) <= 0):
        raise CompileError("output times must be at least two finite, strictly increasing "
                           "numbers", fix="give (t0, tf) with tf > t0 or an increasing array")
    return grid


def _check_initial(system: CompiledSystem, t0: float, y0: np.ndarray, pv: np.ndarray,
                   tol: float) -> None:
    g, gd = system.constraints(t0, y0, pv)
    g, gd = np.asarray(g.full()).reshape(-1), np.asarray(gd.full()).reshape(-1)
    bad: dict[str, float] = {}
    for name, kind, a, b in zip(system.constraint_names, system.constraint_kinds, g, gd):
        if not abs(a) <= tol:
            bad[name] = float(a)
        if kind == "holonomic" and not abs(b) <= tol:
            bad[f"d{name}/dt"] = float(b)
    if bad:
        listing = ", ".join(f"{k} = {v:.3g}" for k, v in list(bad.items())[:8])
        raise InconsistentInitialConditionsError(
            f"the initial state violates {listing}",
            fix="make it consistent with complete_initial_conditions(euler_lagrange(problem), "
            "given), or pass check_initial=False", violated=bad)


def _check_stability(system: CompiledSystem, grid: np.ndarray, y0: np.ndarray,
                     pv: np.ndarray, mode: str) -> None:
    if system.n_states > 2000:
        return
    eig = system.eigenvalues(grid[0], y0, pv)
    k = int(np.argmax(eig.real))
    lam = complex(eig[k])
    growth = lam.real * (grid[-1] - grid[0])
    if growth <= _GROWTH_LIMIT:
        return
    variants = "; ".join(f"'{k}': {v}" for k, v in STABLE_VARIANTS.items())
    what = ("its multiplier dynamics (vakonomic rule) are" if system.vakonomic
            else "the system is")
    msg = (f"{system.name!r}: {what} unstable forward in time: the linearization at "
           f"t = {grid[0]:g} has the eigenvalue {lam.real:.4g}{lam.imag:+.3g}j, a predicted "
           f"growth of e^{growth:.3g} over the run (design notes: eq. 20 is anti-stable "
           f"forward in time). Stable variants: {variants}")
    fix = ("run the relaxation, compile.stable_variant(system, 'relaxation') (CLI: "
           "simulate --variant relaxation); or the adjoint sweep, "
           "compile.adjoint_sweep(system, times, y0, params); or shorten the horizon, or pass "
           "stability='ignore' (or 'warn') to integrate forward anyway")
    if mode == "warn":
        warnings.warn(msg + ". Fix: " + fix, RuntimeWarning, stacklevel=3)
        return
    raise UnstableSystemError(msg, fix=fix, time=float(grid[0]),
                              state_norm=float(np.linalg.norm(y0)), eigenvalue=lam,
                              growth=float(growth))


def along_trajectory(fn: ca.Function, times: np.ndarray, Y: np.ndarray, p: np.ndarray
                     ) -> tuple[np.ndarray, ...]:
    """Evaluate ``fn(t, y, p)`` at every output time, one row per time.

    Parameters
    ----------
    fn
        A function of ``(t, y, p)`` with dense outputs (``CompiledSystem.constraints``,
        ``CompiledSystem.unknowns``).
    times, Y, p
        Output times ``(n_t,)``, states ``(n_t, n_y)`` and the parameter vector.

    Returns
    -------
    tuple of numpy.ndarray
        One array ``(n_t, n_out_i)`` per output of ``fn``.

    Notes
    -----
    Each time is one call through ``Function.buffer`` on views of ``Y`` and of the
    result arrays: nothing is converted. The obvious ``fn.map(n_t)(times, Y.T, p)`` builds
    a mapped function and converts the whole trajectory to a ``DM``, which took 1.4 s for
    1000 points of a 5100-state system where this takes 0.02 s (benchmarks/
    bench_integrate.py's n = 50 learning system).

    Examples
    --------
    >>> import casadi as ca, numpy as np
    >>> t, y, p = ca.SX.sym("t"), ca.SX.sym("y", 2), ca.SX.sym("p")
    >>> f = ca.Function("f", [t, y, p], [p * y[0] + t])
    >>> along_trajectory(f, np.array([0.0, 1.0]), np.array([[1.0, 0], [2.0, 0]]),
    ...                  np.array([3.0]))[0].ravel().tolist()
    [3.0, 7.0]
    """
    Y = np.ascontiguousarray(Y, dtype=float)
    pb = np.ascontiguousarray(np.asarray(p, dtype=float).reshape(-1))
    tb = np.zeros(1)
    outs = tuple(np.zeros((len(times), fn.nnz_out(i))) for i in range(fn.n_out()))
    if any(fn.nnz_out(i) != fn.numel_out(i) for i in range(fn.n_out())):
        args = fn.mx_in()
        fn = ca.Function(fn.name() + "_dense", args, [ca.densify(o) for o in fn.call(args)])
        outs = tuple(np.zeros((len(times), fn.nnz_out(i))) for i in range(fn.n_out()))
    buf, evaluate = fn.buffer()
    buf.set_arg(0, memoryview(tb))
    buf.set_arg(2, memoryview(pb))
    for k in range(len(times)):
        tb[0] = times[k]
        buf.set_arg(1, memoryview(Y[k]))
        for i, out in enumerate(outs):
            buf.set_res(i, memoryview(out[k]))
        evaluate()
    return outs


def _check_finite(Y: np.ndarray, grid: np.ndarray, max_norm: float, label: str) -> None:
    finite = np.isfinite(Y).all(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        norms = np.sqrt(np.einsum("ij,ij->i", Y, Y))
    bad = np.flatnonzero(~finite | (norms > max_norm))
    if bad.size == 0:
        return
    k = int(bad[0])
    if not finite[k]:
        last = max(k - 1, 0)
        raise SimulationError(
            f"{label}: the state became NaN or infinite between t = {grid[last]:.6g} and "
            f"t = {grid[k]:.6g}; |y| = {norms[last]:.3g} at t = {grid[last]:.6g}",
            fix="the system blows up or the method is unstable here: use an implicit "
            "method (cvodes BDF), more steps, or tighter tolerances",
            time=float(grid[last]), state_norm=float(norms[last]))
    raise SimulationError(
        f"{label}: blow-up: |y| = {norms[k]:.3g} exceeds max_norm = {max_norm:.3g} at "
        f"t = {grid[k]:.6g}",
        fix="the dynamics diverge: check the parameters and initial state, or raise max_norm",
        time=float(grid[k]), state_norm=float(norms[k]))


# -- integrators ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    method: str
    multistep: str
    newton: str
    rtol: float
    atol: float
    steps: int | None
    max_steps: int
    extra: dict

    @property
    def plugin(self) -> str:
        return self.method

    @property
    def label(self) -> str:
        if self.method == "cvodes":
            return f"cvodes ({self.multistep}, {self.newton})"
        if self.method == "idas":
            return f"idas ({self.newton})"
        if self.method == "dopri":
            return "dopri (Dormand-Prince 5(4), dense output)"
        if self.method in ("rk", "collocation") or (self.method == "erk" and self.steps):
            return f"{self.method} ({self._steps()} steps per interval)"
        return self.method

    def _steps(self) -> int:
        if self.steps is not None:
            return int(self.steps)
        return 10 if self.method in ("rk", "erk") else 4

    def key(self) -> tuple:
        return (self.method, self.multistep, self.newton, self.rtol, self.atol, self.steps,
                self.max_steps, tuple(sorted((k, repr(v)) for k, v in self.extra.items())))

    def options(self, n_intervals: int, min_dt: float) -> dict:
        m = self.method
        if m in ("cvodes", "idas"):
            opts = {"abstol": self.atol, "reltol": self.rtol, "max_num_steps": self.max_steps,
                    "disable_internal_warnings": True}
            if m == "cvodes":
                opts["linear_multistep_method"] = self.multistep
            if self.newton == "functional":
                opts["nonlinear_solver_iteration"] = "functional"
            elif self.newton == "gmres":
                opts |= {"newton_scheme": "gmres", "use_preconditioner": False}
            else:
                opts["linear_solver"] = "csparse"
        elif m == "erk":
            opts = {"abstol": self.atol, "reltol": self.rtol, "max_num_steps": self.max_steps}
            if self.steps is not None:
                opts["step_size"] = min_dt / int(self.steps)
        elif m == "rk":
            opts = {"number_of_finite_elements": self._steps() * n_intervals}
        else:  # collocation
            opts = {"number_of_finite_elements": self._steps() * n_intervals,
                    "interpolation_order": 3, "collocation_scheme": "radau"}
        opts["show_eval_warnings"] = False
        return opts | self.extra


class _FailedError(RuntimeError):
    """A buffered call returned a nonzero status."""


def _dae(system: CompiledSystem, spec: _Spec, *, segment: bool, shift: bool = False):
    """The CasADi DAE dict, in real time, (segment) on τ ∈ [0, 1] with
    ``t = t_k + Δ τ`` and the parameters ``(p, t_k, Δ)``, or (shift) in time from a
    chunk's start, ``t = t_c + τ`` with the parameters ``(p, t_c)``."""
    n_y, n_p = system.n_states, system.n_parameters
    y = ca.MX.sym("y", n_y)
    tau = ca.MX.sym("t")
    P = ca.MX.sym("p", n_p + (2 if segment else 1 if shift else 0))
    p = P[:n_p]
    if segment:
        tk, dt = P[n_p], P[n_p + 1]
        tt, scale = tk + dt * tau, dt
    elif shift:
        tt, scale = P[n_p] + tau, 1.0
    else:
        tt, scale = tau, 1.0
    if spec.method == "idas":
        z = ca.MX.sym("z", system.dae["function"].size1_in(2))
        ode, alg = system.dae["function"](tt, y, z, p)
        return {"x": y, "z": z, "t": tau, "p": P, "ode": scale * ode, "alg": alg}
    return {"x": y, "t": tau, "p": P, "ode": scale * _ode_function(system, spec)(tt, y, p)}


def _ode_function(system: CompiledSystem, spec: _Spec):
    """``system.rhs``, or its :class:`MatrixFreeRHS` wrapper (no Jacobian sparsity pass
    at construction) for the methods that never form a Jacobian: CVODES with GMRES and
    no preconditioner (any size), CVODES functional iterations (Adams) and ``erk`` above
    :data:`_MATRIX_FREE_LIMIT` states (below, the pass is cheap and the Python callback
    would cost more than it saves)."""
    never_forms_jacobian = (
        (spec.method == "cvodes" and spec.newton == "gmres"
         and not spec.extra.get("use_preconditioner", False))
        or (system.n_states > _MATRIX_FREE_LIMIT
            and (spec.method == "erk" or (spec.method == "cvodes"
                                          and spec.newton == "functional"))))
    if not never_forms_jacobian:
        return system.rhs
    hit = system._cache.get("matrix_free_rhs")  # not a tuple key: never evicted (the
    if hit is None:                              # callback must outlive its integrators)
        hit = MatrixFreeRHS(system.rhs)
        system._cache["matrix_free_rhs"] = hit
    return hit


def _direct_function(system: CompiledSystem, spec: _Spec, grid: np.ndarray) -> ca.Function:
    key = ("direct", spec.key(), grid.tobytes())
    hit = system._cache.get(key)
    if hit is None:
        opts = spec.options(len(grid) - 1, float(np.min(np.diff(grid))))
        try:
            hit = ca.integrator("integrator", spec.plugin, _dae(system, spec, segment=False),
                                float(grid[0]), grid.tolist(), opts)
        except RuntimeError as exc:
            raise CompileError(f"CasADi could not build the {spec.label} integrator: "
                               f"{_last_line(exc)}",
                               fix="check the integrator options") from None
        _remember(system, key, hit)
    return hit


def _chunk_function(system: CompiledSystem, spec: _Spec, grid: np.ndarray) -> ca.Function:
    """An integrator over ``grid - grid[0]`` in shifted time (parameters ``(p, t_c)``):
    one construction serves every chunk with the same relative grid."""
    rel = np.round(grid - grid[0], 12)
    key = ("chunk", spec.key(), rel.tobytes())
    hit = system._cache.get(key)
    if hit is None:
        opts = spec.options(len(grid) - 1, float(np.min(np.diff(grid))))
        try:
            hit = ca.integrator("integrator", spec.plugin,
                                _dae(system, spec, segment=False, shift=True), 0.0,
                                rel.tolist(), opts)
        except RuntimeError as exc:
            raise CompileError(f"CasADi could not build the {spec.label} integrator: "
                               f"{_last_line(exc)}",
                               fix="check the integrator options") from None
        _remember(system, key, hit)
    return hit


def _dopri_function(system: CompiledSystem) -> ca.Function:
    hit = system._cache.get(("dopri",))
    if hit is None:
        hit = dopri_step_function(system.rhs, system.n_states, system.n_parameters)
        _remember(system, ("dopri",), hit)
    return hit


def _segment_integrator(system: CompiledSystem, spec: _Spec) -> ca.Function:
    key = ("segment", spec.key())
    hit = system._cache.get(key)
    if hit is None:
        opts = spec.options(1, 1.0)
        hit = ca.integrator("segment", spec.plugin, _dae(system, spec, segment=True), 0.0,
                            1.0, opts)
        _remember(system, key, hit)
    return hit


def _step_function(system: CompiledSystem, spec: _Spec, project: bool) -> ca.Function:
    """``(y, t_k, Δ, p) → y(t_k + Δ)``, projected if asked."""
    key = ("step", spec.key(), project)
    hit = system._cache.get(key)
    if hit is None:
        seg = _segment_integrator(system, spec)
        y = ca.MX.sym("y", system.n_states)
        tk, dt = ca.MX.sym("tk"), ca.MX.sym("dt")
        p = ca.MX.sym("p", system.n_parameters)
        args = {"x0": y, "p": ca.vertcat(p, tk, dt)}
        if spec.method == "idas":
            args["z0"] = _z0(system, tk, y, p)
        yn = seg(**args)["xf"]
        if project:
            yn = system.projection(tk + dt, yn, p)
        hit = ca.Function("step", [y, tk, dt, p], [yn], ["y", "tk", "dt", "p"], ["y_next"])
        _remember(system, key, hit)
    return hit


def _z0(system: CompiledSystem, t, y, p):
    u = system.unknowns(t, y, p)
    off = system.dae.get("z_offset", 0)
    return u[off:]


def _segmented_function(system: CompiledSystem, spec: _Spec, grid: np.ndarray,
                        project: bool, every: int) -> ca.Function:
    step = _step_function(system, spec, False)
    pstep = _step_function(system, spec, True) if project else step
    n = len(grid) - 1
    key = ("segmented", spec.key(), project, every, n)
    hit = system._cache.get(key)
    if hit is None:
        if every == 1 or not project:
            hit = pstep.mapaccum("trajectory", n)
        else:
            # a run of `every` plain steps with the last one projected, as one function
            y = ca.MX.sym("y", system.n_states)
            tks, dts = ca.MX.sym("tk", 1, n), ca.MX.sym("dt", 1, n)
            p = ca.MX.sym("p", system.n_parameters, n)
            cur, cols = y, []
            for k in range(n):
                f = pstep if (k + 1) % every == 0 or k == n - 1 else step
                cur = f(cur, tks[k], dts[k], p[:, k])
                cols.append(cur)
            hit = ca.Function("trajectory", [y, tks, dts, p], [ca.horzcat(*cols)])
        _remember(system, key, hit)
    return hit


def _remember(system: CompiledSystem, key, fn) -> None:
    cache = system._cache
    cache[key] = fn
    integrators = [k for k in cache if isinstance(k, tuple)]
    if len(integrators) > 16:  # keep the cache small: integrators can be large
        del cache[integrators[0]]


# -- running, through buffers -----------------------------------------------------------------
def _run_once(fn: ca.Function, system: CompiledSystem, spec: _Spec, grid: np.ndarray,
              y0: np.ndarray, pv: np.ndarray, segmented: bool, p_int=None):
    """One call of a trajectory function; a failure is located and raised typed."""
    try:
        with _quiet():
            if segmented:
                Y, stats = _run_segmented(fn, system, grid, y0, pv)
                return Y, None, stats
            return _run_direct(fn, system, spec, grid, y0, pv, p_int)
    except (RuntimeError, _FailedError) as exc:
        with _quiet():
            error = _locate_failure(system, spec, grid, y0, pv, exc)
        raise error from None


def _chunks(n_t: int, multiple: int = 1) -> list[int]:
    """Output indices where chunks start and end, about :data:`_PROGRESS_CHUNKS` chunks
    of equal length (a multiple of ``multiple`` intervals) where the grid allows."""
    n_int = n_t - 1
    want = max(1, min(_PROGRESS_CHUNKS, n_int // multiple))
    sizes = [d for d in range(multiple, n_int + 1, multiple)
             if n_int % d == 0 and _PROGRESS_CHUNKS // 4 <= n_int // d <= 4 * want]
    size = (min(sizes, key=lambda d: abs(n_int // d - want)) if sizes
            else multiple * max(1, round(n_int / want / multiple)))
    return list(range(0, n_int, size)) + [n_int]


def _run_chunks(fn: ca.Function, system: CompiledSystem, spec: _Spec, grid: np.ndarray,
                y0: np.ndarray, pv: np.ndarray, segmented: bool, project: bool,
                every: int, edges: list[int], bar) -> tuple:
    """Run the grid chunk by chunk, each from the state the previous one reached."""
    rows, zrows, stats = [y0[None, :]], [], {}
    y = y0
    for a, b in zip(edges[:-1], edges[1:]):
        g = grid[a:b + 1]
        if segmented:
            f = _segmented_function(system, spec, g, project, every)
            Y, Z, st = _run_once(f, system, spec, g, y, pv, True)
        else:
            f = _chunk_function(system, spec, g)
            Y, Z, st = _run_once(f, system, spec, g, y, pv, False,
                                 p_int=np.append(pv, g[0]))
        rows.append(Y[1:])
        if Z is not None:
            zrows.append(Z if not zrows else Z[1:])
        for k, v in st.items():
            stats[k] = stats.get(k, 0) + v
        y = Y[-1]
        bar(b + 1)
    stats["chunks"] = len(edges) - 1
    return np.vstack(rows), (np.vstack(zrows) if zrows else None), stats


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


def _run_direct(fn: ca.Function, system: CompiledSystem, spec: _Spec, grid: np.ndarray,
                y0: np.ndarray, pv: np.ndarray, p_int: np.ndarray | None = None):
    n_t, n_y = len(grid), system.n_states
    x0 = np.ascontiguousarray(y0, dtype=float)
    p = np.ascontiguousarray(pv, dtype=float)
    pi = p if p_int is None else np.ascontiguousarray(p_int, dtype=float)
    out = np.zeros(n_y * n_t)
    fb, evaluate = fn.buffer()
    keep = [x0, p, pi, out]  # the buffers must outlive the call (design notes)
    fb.set_arg(0, memoryview(x0))
    fb.set_arg(2, memoryview(pi))
    fb.set_res(0, memoryview(out))
    zout = None
    if spec.method == "idas":
        z0 = np.ascontiguousarray(np.asarray(
            _z0(system, grid[0], x0, p).full(), dtype=float).reshape(-1))
        zout = np.zeros(z0.size * n_t)
        keep += [z0, zout]
        fb.set_arg(1, memoryview(z0))
        fb.set_res(1, memoryview(zout))
    evaluate()
    if fb.ret() != 0:
        raise _FailedError(f"the integrator returned status {fb.ret()}")
    stats = _numeric_stats(fb.stats())
    Y = out.reshape(n_t, n_y).copy()
    Z = zout.reshape(n_t, -1).copy() if zout is not None else None
    del keep
    return Y, Z, stats


def _run_segmented(fn: ca.Function, system: CompiledSystem, grid: np.ndarray,
                   y0: np.ndarray, pv: np.ndarray):
    n = len(grid) - 1
    x0 = np.ascontiguousarray(y0, dtype=float)
    tk = np.ascontiguousarray(grid[:-1])
    dt = np.ascontiguousarray(np.diff(grid))
    P = np.ascontiguousarray(np.repeat(pv[None, :], n, axis=0).reshape(-1))  # column-major
    out = np.zeros(system.n_states * n)
    fb, evaluate = fn.buffer()
    keep = [x0, tk, dt, P, out]
    for i, a in enumerate((x0, tk, dt, P)):
        fb.set_arg(i, memoryview(a))
    fb.set_res(0, memoryview(out))
    evaluate()
    if fb.ret() != 0:
        raise _FailedError(f"the integrator returned status {fb.ret()}")
    Y = np.vstack([x0[None, :], out.reshape(n, system.n_states)])
    del keep
    return Y, {"segments": n}


def _numeric_stats(stats: dict) -> dict:
    keep = {}
    for k, v in stats.items():
        if isinstance(v, (bool, int, float)) and not (isinstance(v, float) and math.isnan(v)):
            if k.endswith("B") or k.startswith(("t_proc", "t_wall", "n_call")):
                continue
            keep[k] = v
    return keep


# -- failures ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence what CasADi and SUNDIALS print at the C level (the inputs of every nested
    function that failed, SUNDIALS' own messages) while a failure is handled: the
    typed error carries what matters."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError):  # no real file descriptors (embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


def _last_line(exc: BaseException) -> str:
    lines = [s.strip() for s in str(exc).strip().splitlines() if s.strip()]
    line = lines[-1] if lines else type(exc).__name__
    line = re.sub(r"^\S*\.(cpp|hpp):\d+:\s*", "", line)
    return line.split(". Set 'error_on_fail'")[0]


_FLAG_HINTS = {
    "RHSFUNC": "the right-hand side became NaN or infinite: a blow-up, or a singular "
               "multiplier matrix (check the constraint rank, Proposition 1)",
    "RES_ERR": "the DAE residual became NaN or infinite: a blow-up, or a singular "
               "multiplier matrix (check the constraint rank, Proposition 1)",
    "rootfinder": "the implicit collocation equations could not be solved: a blow-up or "
                  "too long steps; use more steps or an adaptive method",
    "TOO_MUCH_WORK": "the step limit was reached: the solution blows up or the system is "
                     "stiff; use an implicit method (cvodes BDF) or raise max_steps",
    "CONV_FAIL": "the Newton iterations did not converge: the system is stiff or singular "
                 "here; check the multiplier matrix rank (Proposition 1) and tolerances",
    "ERR_FAIL": "the error test failed repeatedly at the minimum step: a singularity or "
                "blow-up",
    "TOO_CLOSE": "the output interval is too short",
}


def _hint(flag: str) -> str:
    for k, v in _FLAG_HINTS.items():
        if k in flag:
            return v
    return "check the parameters, the initial state and the tolerances"


def _locate_failure(system: CompiledSystem, spec: _Spec, grid: np.ndarray, y0: np.ndarray,
                    pv: np.ndarray, exc: BaseException) -> SimulationError:
    """Re-run interval by interval, then bisect the failing interval, to report where the
    integration stopped."""
    m = _FLAG_RE.search(str(exc))
    flag = m.group(1) if m else _last_line(exc)
    # a bounded step budget: each bisection probe that fails must fail fast
    spec = replace(spec, max_steps=min(spec.max_steps, 5000))
    try:
        step = _step_function(system, spec, False)
    except RuntimeError:
        return SimulationError(f"{spec.label} failed ({flag})", fix=_hint(flag),
                               time=float(grid[0]), state_norm=float(np.linalg.norm(y0)))
    y = y0
    t_ok = float(grid[0])

    def advance(y_, t_, dt_):
        r = np.asarray(step(y_, t_, dt_, pv).full()).reshape(-1)
        if not np.all(np.isfinite(r)):
            raise RuntimeError("non-finite state")
        return r

    for k in range(len(grid) - 1):
        t_k, dt = float(grid[k]), float(grid[k + 1] - grid[k])
        try:
            y = advance(y, t_k, dt)
            t_ok = float(grid[k + 1])
            continue
        except RuntimeError:
            pass
        lo, hi = 0.0, dt  # bisect the longest sub-interval that still succeeds
        y_lo = y
        for _ in range(24):
            mid = 0.5 * (lo + hi)
            try:
                y_mid = advance(y, t_k, mid)
                lo, y_lo = mid, y_mid
            except RuntimeError:
                hi = mid
        t_ok, y = t_k + lo, y_lo
        break
    norm = float(np.linalg.norm(y))
    return SimulationError(
        f"{spec.label} failed ({flag}) at t = {t_ok:.6g} (of {grid[0]:g}..{grid[-1]:g}); "
        f"|y| = {norm:.3g} there",
        fix=_hint(flag), time=t_ok, state_norm=norm)
