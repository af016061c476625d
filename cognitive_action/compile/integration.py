"""The integration machinery shared by :func:`~cognitive_action.compile.simulate.simulate`,
:func:`~cognitive_action.compile.batch.simulate_batch` and
:func:`~cognitive_action.compile.adjoint.adjoint_sweep`.

- the output grid (:func:`output_grid`) and the checks before and after a run: a
  consistent initial state (:func:`check_initial_state`), the stability of multiplier
  dynamics (:func:`check_stability`, eq. 20 is anti-stable forward in time), finite
  states below ``max_norm`` (:func:`check_finite`);
- the integrator description (:class:`IntegratorSpec`, from
  :class:`~cognitive_action.compile.options.SolverOptions` by :func:`integrator_spec`) and
  the CasADi functions built from it, cached on the compiled system: the integrator
  over the whole grid (:func:`direct_function`), over a chunk of it in shifted time
  (:func:`chunk_function`), the interval-by-interval loop under ``mapaccum`` for
  projection and long collocation grids (:func:`segmented_function`), and the
  Dormand-Prince step (:func:`dopri_function`);
- running them through ``Function.buffer`` (:func:`run_once`, :func:`along_trajectory`)
  and locating a failure by bisection (:func:`locate_failure`), with the C-level output
  of CasADi and SUNDIALS silenced (:func:`quiet`).

The names are public within :mod:`cognitive_action.compile`; the package does not
re-export them.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace

import casadi as ca
import numpy as np

from cognitive_action import interrupts
from cognitive_action.compile.explicit import dopri_step_function
from cognitive_action.compile.matrix_free import MatrixFreeRHS
from cognitive_action.compile.options import SolverOptions
from cognitive_action.compile.system import CompiledSystem
from cognitive_action.errors import (
    CompileError,
    InconsistentInitialConditionsError,
    SimulationError,
    UnstableSystemError,
)

__all__ = ["DIRECT_LIMIT", "MAP_ELEMENTS", "SEGMENTED_COLLOCATION", "STABLE_VARIANTS",
           "IntegratorSpec", "along_trajectory", "check_finite", "check_initial_state",
           "check_solvable", "check_stability", "chunk_function", "constraints_along",
           "direct_function",
           "dopri_function", "implicit_method", "initial_algebraic", "integrator_spec",
           "locate_failure", "output_grid", "prepare_constraints_along", "quiet",
           "run_once", "segmented_function",
           "trajectory_map"]

#: The ways to run anti-stable multiplier dynamics named in the design notes (eq. 20).
STABLE_VARIANTS = {
    "adjoint": "integrate the multiplier equation backward in time from its final "
               "condition, the primal states forward (a forward-backward sweep, as for "
               "costates in optimal control; runs: compile.adjoint_sweep)",
    "quasi-static": "the quasi-static reduction: solve the multiplier equilibrium "
                    "(T δ = -V_x, the backprop delta) at every instant (the limit taken by "
                    "derive.limits.reduce)",
    "relaxation": "the stable relaxation c⁻¹ δ̇ = -(T δ + V_x), same equilibrium, the "
                  "backward diffusion wave (runs: compile.stable_variant)",
}

_GROWTH_LIMIT = 18.0  # e^18 ≈ 6.6e7: the largest predicted growth accepted by default
DIRECT_LIMIT = 300  # states above which BDF's Newton iterations use GMRES
_MATRIX_FREE_LIMIT = 300  # states above which erk and Adams skip the sparsity pass
SEGMENTED_COLLOCATION = 50  # output points above which collocation runs interval-wise
_SX_STEP_LIMIT = 100  # states up to which the dopri step is expanded to SX when it can be
_FLAG_RE = re.compile(r'returned "?([A-Z_]+)"?')


# -- inputs -----------------------------------------------------------------------------------
def integrator_spec(system: CompiledSystem, opts: SolverOptions) -> IntegratorSpec:
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
        newton = "direct" if system.n_states <= DIRECT_LIMIT else "gmres"
    return IntegratorSpec(method, multistep, newton, opts.rtol, opts.atol, opts.steps,
                          opts.max_steps, dict(opts.integrator_options or {}))


def output_grid(times, n_points: int) -> np.ndarray:
    """The output times: ``n_points`` equally spaced ones for ``times = (t0, tf)``, else
    ``times`` as a strictly increasing float array.

    Raises
    ------
    CompileError
        Fewer than two points, non-finite or non-increasing times, ``n_points < 2``.
    """
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


def check_initial_state(system: CompiledSystem, t0: float, y0: np.ndarray, pv: np.ndarray,
                        tol: float) -> None:
    """Refuse an initial state whose constraints ``G`` (or ``Ġ``, holonomic ones) exceed
    ``tol``.

    Raises
    ------
    InconsistentInitialConditionsError
        Naming the violated constraints, with ``violated`` holding the residuals.
    """
    g, gd = (o[0] for o in along_trajectory(system.constraints, np.array([float(t0)]),
                                             y0.reshape(1, -1), pv, system._cache))
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


def check_solvable(system: CompiledSystem, t0: float, y0: np.ndarray, pv: np.ndarray
                   ) -> None:
    """Refuse an initial state where the accelerations and multipliers (the unknowns of
    eq. 8-10) are not finite: a zero or singular mass matrix, or dependent constraints,
    make every integrator fail at its first step with a message about the right-hand
    side.

    Raises
    ------
    SimulationError
        Naming the unknowns that are not finite.
    """
    if not np.all(np.isfinite(y0)) or not np.all(np.isfinite(pv)):
        raise SimulationError("the initial state or the parameters are not finite",
                              fix="give finite numbers", time=float(t0))
    fn = system.unknowns
    u = np.full(fn.nnz_out(0), np.nan)
    args = [np.array([float(t0)]), np.ascontiguousarray(y0, dtype=float),
            np.ascontiguousarray(pv, dtype=float)]
    buf, evaluate = fn.buffer()  # no conversion to and from DM (docs/performance.md)
    for i, a in enumerate(args):
        buf.set_arg(i, memoryview(a))
    buf.set_res(0, memoryview(u))
    with quiet():
        evaluate()
    if buf.ret() != 0:  # the linear solver refused the matrix
        u[:] = np.nan
    if fn.nnz_out(0) != fn.numel_out(0):  # structural zeros are finite
        dense = np.zeros(fn.numel_out(0))
        dense[np.asarray(fn.sparsity_out(0).find(), dtype=int)] = u
        u = dense
    finite = np.isfinite(u)
    if finite.all():
        return
    bad = [n for n, ok in zip(system.unknown_names, finite.tolist()) if not ok]
    if bad:
        raise SimulationError(
            f"the accelerations and multipliers are not finite at t = {t0:g} "
            f"({', '.join(bad[:6])}{', ...' if len(bad) > 6 else ''}): the linear system "
            "of eq. (8)-(10) is singular there (a zero or singular mass matrix, or "
            "dependent constraints, Proposition 1)",
            fix="give every mass a positive value (a positive definite mass matrix) and "
            "check the constraint rank", time=float(t0),
            state_norm=float(np.linalg.norm(y0)))


def check_stability(system: CompiledSystem, grid: np.ndarray, y0: np.ndarray,
                    pv: np.ndarray, mode: str) -> None:
    """Refuse (``mode`` ``"auto"``/``"raise"``) or warn about (``"warn"``) a run whose
    linearization at ``y0`` predicts a growth above ``e^18`` over the grid (skipped above
    2000 states).

    Raises
    ------
    UnstableSystemError
        With the eigenvalue, the predicted growth and the stable variants.
    """
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


#: Inputs (states × points) of one mapped call in :func:`along_trajectory`: a CasADi
#: ``map`` over ``K`` output points evaluates them in one call (no Python per point), but
#: building it grows with ``K × n_y``; this bounds it (measured: docs/performance.md).
MAP_ELEMENTS = 200_000


def along_trajectory(fn: ca.Function, times: np.ndarray, Y: np.ndarray, p: np.ndarray,
                     cache: dict | None = None) -> tuple[np.ndarray, ...]:
    """Evaluate ``fn(t, y, p)`` at every output time, one row per time.

    Parameters
    ----------
    fn
        A function of ``(t, y, p)`` (``CompiledSystem.constraints``,
        ``CompiledSystem.unknowns``); sparse outputs are densified.
    times, Y, p
        Output times ``(n_t,)``, states ``(n_t, n_y)`` and the parameter vector.
    cache
        Where to keep the mapped function between calls (``CompiledSystem._cache``);
        ``None``: built for this call.

    Returns
    -------
    tuple of numpy.ndarray
        One array ``(n_t, n_out_i)`` per output of ``fn``.

    Notes
    -----
    The points are evaluated in blocks of ``K`` (:func:`trajectory_map`: ``fn.map(K)``,
    ``p`` shared), each block one call through ``Function.buffer`` on views of ``Y``
    and of the result arrays: a C-ordered ``(K, n_y)`` block of ``Y`` *is* the
    column-major ``n_y × K`` input of the map, so nothing is converted or copied (the
    last, partial block goes through a padded scratch copy). Converting the trajectory to
    a ``DM`` instead (``fn.map(n_t)(times, Y.T, p)``) is about seventy times slower, and
    one buffered call per point spends most of its time in Python at small ``n_y``
    (``docs/performance.md``, "Numbers behind choices in the code").

    Examples
    --------
    >>> import casadi as ca, numpy as np
    >>> t, y, p = ca.SX.sym("t"), ca.SX.sym("y", 2), ca.SX.sym("p")
    >>> f = ca.Function("f", [t, y, p], [p * y[0] + t])
    >>> along_trajectory(f, np.array([0.0, 1.0, 2.0]),
    ...                  np.array([[1.0, 0], [2.0, 0], [3.0, 1.0]]),
    ...                  np.array([3.0]))[0].ravel().tolist()
    [3.0, 7.0, 11.0]
    """
    n_t = len(times)
    Y = np.ascontiguousarray(Y, dtype=float)
    tv = np.ascontiguousarray(times, dtype=float)
    pb = np.ascontiguousarray(np.asarray(p, dtype=float).reshape(-1))
    mapped, base = trajectory_map(fn, n_t, cache)
    K = mapped.nnz_in(0)
    outs = tuple(np.zeros((n_t, base.nnz_out(i))) for i in range(base.n_out()))
    buf, evaluate = mapped.buffer()
    buf.set_arg(2, memoryview(pb))
    full = n_t - n_t % K
    for a in range(0, full, K):
        buf.set_arg(0, memoryview(tv[a:a + K]))
        buf.set_arg(1, memoryview(Y[a:a + K]))
        for i, out in enumerate(outs):
            buf.set_res(i, memoryview(out[a:a + K]))
        evaluate()
    if full < n_t:  # the partial last block: padded with its last point
        r = n_t - full
        ts = np.full(K, tv[-1])
        ts[:r] = tv[full:]
        ys = np.empty((K, Y.shape[1]))
        ys[:r], ys[r:] = Y[full:], Y[-1]
        scratch = tuple(np.zeros((K, o.shape[1])) for o in outs)
        buf.set_arg(0, memoryview(ts))
        buf.set_arg(1, memoryview(ys))
        for i, s in enumerate(scratch):
            buf.set_res(i, memoryview(s))
        evaluate()
        for out, s in zip(outs, scratch):
            out[full:] = s[:r]
    return outs


def constraints_along(system: CompiledSystem, times: np.ndarray, Y: np.ndarray,
                      p: np.ndarray, output: int | None = None) -> tuple[np.ndarray, ...]:
    """``(G, Ġ)`` of ``system.constraints`` at every output time (``output`` ``0`` or
    ``1``: that one alone), one row per time: the drift report.

    Networks evaluate them in one vectorised pass over all points
    (``system.trajectory_constraints``: batched products for the net inputs, one CasADi
    function of matrices for the templates; equal to ``system.constraints`` point by point
    to round-off, ``G`` alone without ``Ġ``'s products); other systems map the
    constraint function (:func:`along_trajectory`, :func:`one_output` for one output).
    """
    tc = system.trajectory_constraints
    if tc is not None:
        G, Gd = tc(times, Y, p, rates=output != 0)
        return (G, Gd) if output is None else ((G,) if output == 0 else (Gd,))
    fn = system.constraints if output is None else one_output(system.constraints, output,
                                                              system._cache)
    return along_trajectory(fn, times, Y, p, system._cache)


def prepare_constraints_along(system: CompiledSystem, n_t: int) -> None:
    """Build (and cache) what :func:`constraints_along` uses over ``n_t`` points for both
    outputs (the drift report reads ``G`` and ``Ġ`` together)."""
    tc = system.trajectory_constraints
    if tc is not None:
        tc.prepare(n_t, rates=True)
        return
    trajectory_map(system.constraints, n_t, system._cache)


def one_output(fn: ca.Function, i: int = 0, cache: dict | None = None) -> ca.Function:
    """``fn`` restricted to its output ``i``, e.g. ``G`` of ``CompiledSystem.constraints``
    without ``Ġ`` (:func:`constraints_along` with ``output=0`` on systems without a
    vectorised ``trajectory_constraints``).

    The expression graph of ``fn`` is inlined and only what output ``i`` depends on is
    kept: the same operations in the same order, so the same numbers bit for bit, at a
    fraction of the cost (on a network ``G`` alone has one of the three matrix-vector
    products of ``(G, Ġ)``). Cached in ``cache``; a function that cannot be inlined is
    wrapped instead.

    Examples
    --------
    >>> import casadi as ca
    >>> x = ca.MX.sym("x", 2)
    >>> f = ca.Function("f", [x], [ca.sin(x), ca.dot(x, x)])
    >>> g = one_output(f, 1)
    >>> g.n_out(), float(g([3.0, 4.0]))
    (1, 25.0)
    """
    key = f"one_output:{fn.name()}:{i}"  # not a tuple: never evicted
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        return hit
    try:
        if fn.is_a("SXFunction"):
            args = fn.sx_in()
            outs = fn.call(args)
        else:
            args = fn.mx_in()
            outs = fn.call(args, True, False)  # always inline: the graph itself
    except RuntimeError:
        args = fn.mx_in()
        outs = fn.call(args)
    hit = ca.Function(f"{fn.name()}_{fn.name_out(i)}", args, [outs[i]],
                      [fn.name_in(k) for k in range(fn.n_in())], [fn.name_out(i)])
    if cache is not None:
        cache[key] = hit
    return hit


def trajectory_map(fn: ca.Function, n_t: int, cache: dict | None = None
                   ) -> tuple[ca.Function, ca.Function]:
    """``fn`` (densified) mapped over a block of ``K`` points, ``p`` shared, and the
    densified ``fn``; ``K = min(n_t, MAP_ELEMENTS // n_y)`` (at least 1). Cached in
    ``cache`` under the function's name and ``K``."""
    n_y = max(fn.nnz_in(1), 1)
    K = int(max(1, min(n_t, MAP_ELEMENTS // n_y)))
    key = ("along", fn.name(), K)
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        return hit
    base = fn
    if any(fn.nnz_out(i) != fn.numel_out(i) for i in range(fn.n_out())) or \
            any(fn.nnz_in(i) != fn.numel_in(i) for i in range(fn.n_in())):
        args = [ca.MX.sym(fn.name_in(i), fn.size_in(i)) for i in range(fn.n_in())]
        base = ca.Function(fn.name() + "_dense", args,
                           [ca.densify(o) for o in fn.call(args)])
    mapped = base if K == 1 else base.map(K, [False, False, True],
                                          [False] * base.n_out(), {})
    if cache is not None:
        cache[key] = (mapped, base)
    return mapped, base


def check_finite(Y: np.ndarray, grid: np.ndarray, max_norm: float, label: str) -> None:
    """Refuse a trajectory that became NaN or infinite or whose norm exceeds ``max_norm``.

    Raises
    ------
    SimulationError
        With the time and the state norm where it happened.
    """
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
            fix="the system blows up here: check the parameters and the initial state, "
            "or tighten the tolerances" if implicit_method(label) else "the system blows up or "
            "the method is unstable here: use an implicit method (cvodes BDF), more steps, "
            "or tighter tolerances",
            time=float(grid[last]), state_norm=float(norms[last]))
    raise SimulationError(
        f"{label}: blow-up: |y| = {norms[k]:.3g} exceeds max_norm = {max_norm:.3g} at "
        f"t = {grid[k]:.6g}",
        fix="the dynamics diverge: check the parameters and initial state, or raise max_norm",
        time=float(grid[k]), state_norm=float(norms[k]))


# -- integrators ------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntegratorSpec:
    """What CasADi is asked to build: the resolved method (aliases gone), multistep and
    Newton scheme, tolerances, steps and extra options (:func:`integrator_spec`)."""

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


def _dae(system: CompiledSystem, spec: IntegratorSpec, *, segment: bool, shift: bool = False):
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


def _ode_function(system: CompiledSystem, spec: IntegratorSpec):
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


def direct_function(system: CompiledSystem, spec: IntegratorSpec, grid: np.ndarray
                    ) -> ca.Function:
    """CasADi's integrator over the whole output grid (cached on ``system``)."""
    return _cached_integrator(system, spec, ("direct", spec.key(), grid.tobytes()), grid,
                              float(grid[0]), grid, shift=False)


def chunk_function(system: CompiledSystem, spec: IntegratorSpec, grid: np.ndarray
                   ) -> ca.Function:
    """An integrator over ``grid - grid[0]`` in shifted time (parameters ``(p, t_c)``):
    one construction serves every chunk with the same relative grid."""
    rel = np.round(grid - grid[0], 12)
    return _cached_integrator(system, spec, ("chunk", spec.key(), rel.tobytes()), grid, 0.0,
                              rel, shift=True)


def _cached_integrator(system: CompiledSystem, spec: IntegratorSpec, key: tuple,
                       grid: np.ndarray, t0: float, outputs: np.ndarray, shift: bool
                       ) -> ca.Function:
    """CasADi's integrator from ``t0`` to ``outputs``, built once per ``key`` and cached
    on ``system``."""
    hit = system._cache.get(key)
    if hit is None:
        opts = spec.options(len(grid) - 1, float(np.min(np.diff(grid))))
        dae = _dae(system, spec, segment=False, shift=True) if shift else \
            _dae(system, spec, segment=False)
        try:
            hit = ca.integrator("integrator", spec.plugin, dae, t0, outputs.tolist(), opts)
        except RuntimeError as exc:
            raise CompileError(f"CasADi could not build the {spec.label} integrator: "
                               f"{_last_line(exc)}",
                               fix="check the integrator options") from None
        _remember(system, key, hit)
    return hit


def dopri_function(system: CompiledSystem, dense: bool = True) -> ca.Function:
    """The compiled Dormand-Prince step of ``system`` (cached on it); ``dense=False``:
    without the dense-output coefficients (:func:`dopri_step_function`).

    Up to :data:`_SX_STEP_LIMIT` states the step is expanded to scalar operations (SX)
    when its right-hand side allows it (no linear solve inside): the same operations,
    without the MX virtual machine's cost per node and per nested call (measured in
    docs/performance.md; the same numbers bit for bit).
    """
    key = ("dopri",) if dense else ("dopri", "plain")
    hit = system._cache.get(key)
    if hit is None:
        hit = dopri_step_function(system.rhs, system.n_states, system.n_parameters,
                                  dense=dense)
        if system.n_states <= _SX_STEP_LIMIT:
            # not with a linear solve (eq. 10) or another node without scalar form
            with contextlib.suppress(RuntimeError):
                hit = hit.expand()
        _remember(system, key, hit)
    return hit


def _segment_integrator(system: CompiledSystem, spec: IntegratorSpec) -> ca.Function:
    key = ("segment", spec.key())
    hit = system._cache.get(key)
    if hit is None:
        opts = spec.options(1, 1.0)
        hit = ca.integrator("segment", spec.plugin, _dae(system, spec, segment=True), 0.0,
                            1.0, opts)
        _remember(system, key, hit)
    return hit


def _step_function(system: CompiledSystem, spec: IntegratorSpec, project: bool
                   ) -> ca.Function:
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
            args["z0"] = initial_algebraic(system, tk, y, p)
        yn = seg(**args)["xf"]
        if project:
            yn = system.projection(tk + dt, yn, p)
        hit = ca.Function("step", [y, tk, dt, p], [yn], ["y", "tk", "dt", "p"], ["y_next"])
        _remember(system, key, hit)
    return hit


def initial_algebraic(system: CompiledSystem, t, y, p):
    """The algebraic states of the index-1 DAE (IDAS) consistent with ``y`` at ``t``."""
    u = system.unknowns(t, y, p)
    off = system.dae.get("z_offset", 0)
    return u[off:]


def segmented_function(system: CompiledSystem, spec: IntegratorSpec, grid: np.ndarray,
                       project: bool, every: int) -> ca.Function:
    """The run as a loop over output intervals (``mapaccum``), each a one-interval
    integrator, projected every ``every`` intervals when ``project``; for projection and
    long collocation grids."""
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
def run_once(fn: ca.Function, system: CompiledSystem, spec: IntegratorSpec, grid: np.ndarray,
             y0: np.ndarray, pv: np.ndarray, segmented: bool, p_int=None) -> tuple:
    """One call of a trajectory function; a failure is located and raised typed."""
    try:
        with quiet():
            if segmented:
                Y, stats = _run_segmented(fn, system, grid, y0, pv)
                return Y, None, stats
            return _run_direct(fn, system, spec, grid, y0, pv, p_int)
    except (RuntimeError, _FailedError) as exc:
        if interrupts.requested():  # CasADi turned Ctrl-C into a failure of the call
            raise KeyboardInterrupt from None
        with quiet():
            error = locate_failure(system, spec, grid, y0, pv, exc)
        raise error from None


def _run_direct(fn: ca.Function, system: CompiledSystem, spec: IntegratorSpec,
                grid: np.ndarray, y0: np.ndarray, pv: np.ndarray,
                p_int: np.ndarray | None = None):
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
            initial_algebraic(system, grid[0], x0, p).full(), dtype=float).reshape(-1))
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
def quiet() -> Iterator[None]:
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


def implicit_method(label_or_spec) -> bool:
    """Whether the method already is an implicit (BDF) one: hints must not advise it."""
    label = getattr(label_or_spec, "label", label_or_spec)
    return label.startswith(("cvodes (bdf", "idas", "collocation"))


def _hint(flag: str, spec: IntegratorSpec | None = None) -> str:
    """The advice for an integrator's failure flag, matching the method that failed."""
    if "TOO_MUCH_WORK" in flag and spec is not None and implicit_method(spec):
        return (f"the step limit max_steps = {spec.max_steps} was reached, already with "
                f"the implicit method {spec.label}: the solution blows up, or the run needs "
                "more steps; raise max_steps (SolverOptions(max_steps=...)), shorten "
                "t_end, or loosen rtol/atol")
    for k, v in _FLAG_HINTS.items():
        if k in flag:
            return v
    return "check the parameters, the initial state and the tolerances"


def locate_failure(system: CompiledSystem, spec: IntegratorSpec, grid: np.ndarray,
                   y0: np.ndarray, pv: np.ndarray, exc: BaseException) -> SimulationError:
    """Re-run interval by interval, then bisect the failing interval, to report where the
    integration stopped."""
    m = _FLAG_RE.search(str(exc))
    flag = m.group(1) if m else _last_line(exc)
    # a bounded step budget: each bisection probe that fails must fail fast
    spec = replace(spec, max_steps=min(spec.max_steps, 5000))
    try:
        step = _step_function(system, spec, False)
    except RuntimeError:
        return SimulationError(f"{spec.label} failed ({flag})", fix=_hint(flag, spec),
                               time=float(grid[0]), state_norm=float(np.linalg.norm(y0)))
    y = y0
    t_ok = float(grid[0])

    def advance(y_, t_, dt_):
        r = np.asarray(step(y_, t_, dt_, pv).full()).reshape(-1)
        if not np.all(np.isfinite(r)):
            raise RuntimeError("non-finite state")
        return r

    for k in range(len(grid) - 1):
        interrupts.raise_if_requested()  # the search can be long: Ctrl-C stops it
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
        fix=_hint(flag, spec), time=t_ok, state_norm=norm)
