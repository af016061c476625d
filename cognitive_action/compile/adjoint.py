"""The adjoint sweep: anti-stable multiplier dynamics (eq. 20) run backward in time.

Under the vakonomic rule a non-holonomic constraint such as the neuron (19)
``ẋ/c + x − σ(a) = 0`` turns its multiplier ``μ`` into a state whose dynamics (eq. 20)
linearize to ``μ̇ ≈ c (I − (σ'W)ᵀ) μ + …``: every eigenvalue of a feedforward net is
``+c``, so integrated forward from an initial value the multipliers blow up like
``e^{ct}`` (design notes). Read as a costate equation of optimal control, eq. (20) is a
*final*-value problem: the multipliers get a condition at ``t_end`` (``μ(T) = 0`` by
default: the transversality condition of a free end point without terminal cost) and
are integrated backward in time, where they are stable (``s = T − t`` turns ``+c`` into
``−c``). The primal states (coordinates and velocities, eq. 18-19) keep their initial
condition. The result is a two-point boundary-value problem, solved here by the
forward-backward sweep:

1. integrate the primal states forward from ``y0`` with ``μ(t)`` taken from the current
   iterate (first iterate: ``μ ≡`` the multiplier values in ``y0``);
2. integrate ``μ`` backward from its final condition with the primal trajectory of
   step 1 as a given function of time;
3. repeat until the whole trajectory changes by less than ``tol``.

If the primal dynamics do not depend on ``μ`` (frozen weights, ``m_W → ∞``), the second
sweep reproduces the first and the iteration stops at 2: one sweep is then exact. With
learning weights the primal states feel ``μ`` (``m_W Ẅ = μ_j x σ'`` at ``ϖ = 1``); the
sweep is a fixed-point iteration that contracts when the coupling over the horizon
(about ``T²/m_W`` times the sensitivities) is small, and ``damping`` helps otherwise.

Accuracy
--------
Each pass integrates interval by interval on an internal grid (the output grid with
``substeps`` sub-intervals each), with CasADi's integrator (``method``) at ``rtol`` and
``atol``. Inside an interval the other block is the cubic Hermite interpolant of its
values and of its derivatives ``f(t_k, y_k)`` at the two ends: an error of at most
``h⁴ max|y⁗| / 384``. For dynamics at rate ``ρ`` (``ρ = c`` here), ``h ρ = 0.1`` gives
a relative error of about ``3·10⁻⁷``; by default ``substeps`` is chosen so that
``h ρ ≤ 0.05`` (``ρ``: spectral radius of the Jacobian at the initial state), i.e.
about ``2·10⁻⁸``. The converged sweep solves the boundary-value problem up to that
interpolation error and the integrator tolerances.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Mapping, Sequence
from typing import Any

import casadi as ca
import numpy as np

from cognitive_action.compile.integration import (
    along_trajectory,
    check_initial_state,
    output_grid,
)
from cognitive_action.compile.options import SolverOptions, resolve_options
from cognitive_action.compile.simulate import Simulation
from cognitive_action.compile.system import CompiledSystem
from cognitive_action.errors import CompileError, SimulationError

__all__ = ["ADJOINT_DEFAULTS", "ADJOINT_METHODS", "adjoint_sweep"]

#: Integration methods of one sweep pass.
ADJOINT_METHODS = ("cvodes", "rk", "collocation")

#: The solver options of :func:`adjoint_sweep` when none are given (tighter tolerances
#: than a forward run: the sweep's error compounds over its iterations).
ADJOINT_DEFAULTS = SolverOptions(rtol=1e-10, atol=1e-12)

#: Solver options without meaning for a sweep: they must keep their defaults.
_NOT_FOR_SWEEPS = ("multistep", "newton", "stabilization", "baumgarte", "project_every",
                   "stability", "progress")

_RATE_STEP = 0.05  # default h·ρ on the internal grid (Hermite error ~ (hρ)⁴/384)
_DENSE_JACOBIAN_LIMIT = 300  # states above which the default substeps skip the spectrum
_DEFAULT_SUBSTEPS = 4  # substeps without a spectrum


def adjoint_sweep(system: CompiledSystem, times: Sequence[float] | np.ndarray,
                  y0: Mapping[str, float] | Sequence[float] | np.ndarray,
                  params: Mapping[str, float] | None = None, *,
                  final: Mapping[str, float] | Sequence[float] | np.ndarray | None = None,
                  n_points: int = 101, substeps: int | None = None, iterations: int = 50,
                  tol: float = 1e-9, damping: float = 0.0,
                  options: SolverOptions | None = None, **overrides: Any) -> Simulation:
    """Run a system with multiplier states as a two-point problem: primal states forward
    from ``y0``, multipliers backward from their final condition (eq. 20).

    Parameters
    ----------
    system
        A :class:`~cognitive_action.compile.system.CompiledSystem` with multiplier states
        (non-holonomic constraints under the vakonomic rule, e.g. a network with a
        speed ``c``, eq. 18-19), as derived (``variant == "forward"``).
    times
        ``(t0, tf)`` (``n_points`` equally spaced output times) or an array of strictly
        increasing output times.
    y0
        Initial state, by name or as an array in the order of ``system.states``. Its
        coordinates and velocities are the initial condition; its multiplier values
        are only the first guess ``μ(t) ≡ μ(y0)`` of the sweep.
    params
        Values of ``system.parameters`` by name (missing names are looked up in ``y0``
        when it is a mapping).
    final
        The multipliers at ``t_end``: ``None`` (all 0), a mapping by name (names not
        given are 0) or an array in the order of ``system.multiplier_states``.
    n_points
        Number of output times when ``times`` is ``(t0, tf)``.
    substeps
        Internal intervals per output interval (see Accuracy in the module docstring);
        ``None``: ``h ρ ≤ 0.05`` from the spectral radius ``ρ`` of the Jacobian at
        ``y0`` (4 above 300 states).
    iterations
        Largest number of forward-backward sweeps.
    tol
        Convergence: ``max |Y_k − Y_{k−1}| / max(1, max |Y_k|)`` over the internal grid.
    damping
        In ``[0, 1)``: the next multiplier iterate is ``damping · μ_old + (1 − damping) ·
        μ_new`` (0: the plain sweep; e.g. 0.5 for sweeps that oscillate).
    options
        How each pass integrates, a
        :class:`~cognitive_action.compile.options.SolverOptions` (the same object
        :func:`~cognitive_action.compile.simulate.simulate` takes); ``None``:
        :data:`ADJOINT_DEFAULTS` (``rtol=1e-10``, ``atol=1e-12``). Its ``method`` is one
        of :data:`ADJOINT_METHODS`: CasADi's ``cvodes`` (BDF, adaptive, at ``rtol`` and
        ``atol``, at most ``max_steps`` steps per internal interval), ``rk`` (RK4) or
        ``collocation`` (Radau), with ``steps`` steps or elements per internal interval
        (default 10 and 4). ``max_norm`` bounds the state norm, ``check_initial`` and
        ``initial_tol`` reject initial states whose constraints (``G``, ``Ġ``, ``N``)
        exceed ``initial_tol``, and ``integrator_options`` go to CasADi. The fields that
        do not apply to a sweep (``multistep``, ``newton``, ``stabilization``,
        ``baumgarte``, ``project_every``, ``stability``, ``progress``) must keep their
        defaults.
    **overrides
        Fields of :class:`~cognitive_action.compile.options.SolverOptions` that replace
        those of ``options`` (or of :data:`ADJOINT_DEFAULTS`), e.g. ``method="rk"``.

    Returns
    -------
    Simulation
        On the output times, ``variant == "adjoint"``; ``stats`` holds ``iterations``,
        ``changes`` (one per sweep), ``substeps``, ``internal_points``, ``build_time``
        and ``run_time``.

    Raises
    ------
    TypeError
        A keyword that is not a solver option (the message lists them).
    CompileError
        Bad input: a system without multiplier states, a stable variant instead of the
        derived system, ``times`` not increasing, ``final`` of the wrong size or with
        unknown names, an unknown method, an option that does not apply to the sweep,
        bad ``substeps``/``iterations``/``tol``/``damping``.
    InconsistentInitialConditionsError
        ``y0`` violates the constraints.
    SimulationError
        The sweep did not converge within ``iterations`` (the last change is named),
        produced non-finite values or a norm above ``max_norm``, or the integrator
        failed.

    Examples
    --------
    A three-neuron chain with speed ``c`` and nearly frozen weights: away from the final
    boundary layer ``μ`` sits at its equilibrium, the backprop delta of the output
    (``δ₃ = −(x₃ − y₃)``).

    >>> import numpy as np
    >>> import cognitive_action as cog
    >>> from cognitive_action.declare import symbols as S
    >>> from cognitive_action.compile import compile_system
    >>> from cognitive_action.derive import complete_initial_conditions
    >>> c, = S.parameters("c")
    >>> net = cog.chain(3, speed=c)
    >>> el = cog.euler_lagrange(net.problem(inputs={1: 0.7}, targets={3: 0.5},
    ...                                     parameters=[c]))
    >>> values = {"c": 20.0, "m_x": 1e-4, "m_W": 1e12}
    >>> given = values | {"w2_1": 0.8, "w3_2": -1.1, "w2_1_dot": 0.0, "w3_2_dot": 0.0,
    ...                   "mu_G2": 0.0, "mu_G3": 0.0}
    >>> y0 = complete_initial_conditions(el, given, free=[S.symbol(n) for n in ("x1", "x2", "x3")])
    >>> run = adjoint_sweep(compile_system(el), (0.0, 2.0), y0, values, n_points=21)
    >>> run.variant, run.stats["iterations"]
    ('adjoint', 2)
    >>> bool(np.isclose(run["mu_G3"][10], -(run["x3"][10] - 0.5), atol=1e-7))
    True
    """
    t_build = _time.perf_counter()
    opts = resolve_options("adjoint_sweep", options, overrides, ADJOINT_DEFAULTS)
    _check_system(system)
    _check_solver_options(opts)
    _check_options(iterations, tol, damping, substeps)
    method, max_norm = opts.method, opts.max_norm
    grid = output_grid(times, n_points)
    y0v = system.state_vector(y0)
    pv = system.parameter_vector(params, fallback=y0 if isinstance(y0, Mapping) else None)
    mu_idx = np.array([system.states.index(m) for m in system.multiplier_states])
    primal_idx = np.setdiff1d(np.arange(system.n_states), mu_idx)
    mu_final = _final_vector(system, final)
    if opts.check_initial and system.constraints is not None:
        check_initial_state(system, float(grid[0]), y0v, pv, opts.initial_tol)
    if substeps is None:
        substeps = _default_substeps(system, grid, y0v, pv)
    fine = _refine(grid, substeps)
    n_fine = len(fine)
    forward = _pass_function(system, primal_idx, mu_idx, opts, n_fine - 1)
    backward = _pass_function(system, mu_idx, primal_idx, opts, n_fine - 1)
    build_time = _time.perf_counter() - t_build

    t_run = _time.perf_counter()
    h = np.diff(fine)
    Y = np.empty((n_fine, system.n_states))
    Y[:, primal_idx] = np.nan
    Y[:, mu_idx] = y0v[mu_idx]
    changes: list[float] = []
    for k in range(1, int(iterations) + 1):
        previous = Y.copy()
        # forward: primal states from y0, μ(t) the Hermite interpolant of the iterate
        # (first sweep: the guess μ ≡ μ(y0) is constant, its rate 0)
        dmu = _rates(system, fine, Y, pv)[:, mu_idx] if k > 1 else np.zeros_like(Y[:, mu_idx])
        data = _interval_data(fine, h, Y[:, mu_idx], dmu, pv, reverse=False)
        Y[:, primal_idx] = _run_pass(forward, y0v[primal_idx], data, fine, "forward", k,
                                     reverse=False)
        _check_values(Y, fine, max_norm, "forward", k)
        # backward: μ from its final condition, the new primal trajectory interpolated
        dY = _rates(system, fine, Y, pv)
        data = _interval_data(fine, h, Y[:, primal_idx], dY[:, primal_idx], pv, reverse=True)
        mu_new = _run_pass(backward, mu_final, data, fine, "backward", k, reverse=True)
        Y[:, mu_idx] = mu_new if k == 1 or damping == 0.0 else (
            damping * previous[:, mu_idx] + (1.0 - damping) * mu_new)
        _check_values(Y, fine, max_norm, "backward", k)
        if k == 1:
            changes.append(math.inf)
            continue
        scale = max(1.0, float(np.max(np.abs(Y))))
        changes.append(float(np.max(np.abs(Y - previous))) / scale)
        if changes[-1] <= tol:
            break
    else:
        raise SimulationError(
            f"the adjoint sweep of {system.name!r} did not converge in {int(iterations)} "
            f"iterations: the last change was {changes[-1]:.3g} > tol = {tol:g} "
            f"(changes of the last sweeps: "
            f"{', '.join(f'{x:.3g}' for x in changes[-4:])})",
            fix="raise iterations=, damp the sweep (damping=0.5), shorten the horizon (the "
            "coupling of primal states and multipliers grows with T²/m_W), or run the "
            "relaxation, compile.stable_variant(system, 'relaxation')",
            time=float(grid[-1]), state_norm=float(np.linalg.norm(Y[-1])))
    run_time = _time.perf_counter() - t_run

    out = Y[::substeps]
    G = Gd = None
    if system.constraints is not None:
        G, Gd = along_trajectory(system.constraints, grid, out, pv, system._cache)
    stats = {"iterations": k, "changes": changes, "substeps": int(substeps),
             "internal_points": n_fine, "build_time": build_time, "run_time": run_time,
             "output_points": len(grid)}
    return Simulation(system=system, times=grid, y=out, params=pv,
                      method=f"adjoint sweep ({method}, {k} iterations)", stats=stats,
                      constraint_values=G, constraint_rates=Gd, variant="adjoint")


# -- input checks -----------------------------------------------------------------------------
def _check_system(system) -> None:
    if not isinstance(system, CompiledSystem):
        raise CompileError(f"adjoint_sweep needs a CompiledSystem, got {type(system).__name__}",
                           fix="compile it first: compile_system(euler_lagrange(problem))")
    if not system.multiplier_states:
        raise CompileError(
            f"{system.name!r} has no multiplier states: there is nothing to integrate "
            "backward in time (the adjoint sweep is for non-holonomic constraints under the "
            "vakonomic rule, eq. 18-20)", fix="simulate the system forward with simulate()")
    if system.variant != "forward":
        raise CompileError(
            f"{system.name!r} is the {system.variant!r} variant, whose multiplier rate is "
            "no longer the derived eq. (20)",
            fix="pass the system as compiled (variant 'forward') to adjoint_sweep")


def _check_solver_options(opts: SolverOptions) -> None:
    if opts.method not in ADJOINT_METHODS:
        raise CompileError(f"unknown method {opts.method!r} for the adjoint sweep",
                           fix=f"use one of {', '.join(ADJOINT_METHODS)}")
    refused = [f for f in opts.changed() if f in _NOT_FOR_SWEEPS]
    if refused:
        listing = ", ".join(f"{f}={getattr(opts, f)!r}" for f in refused)
        raise CompileError(
            f"the solver option(s) {listing} do not apply to the adjoint sweep (each pass "
            "integrates one block of states over an internal grid, without stabilization, "
            "stability check or progress bar)",
            fix=f"leave {', '.join(refused)} at the default(s) of SolverOptions, or run "
            "the forward system with simulate() or its relaxation, "
            "compile.stable_variant(system, 'relaxation')")


def _check_options(iterations, tol, damping, substeps) -> None:
    if int(iterations) != iterations or iterations < 1:
        raise CompileError(f"iterations must be a positive integer, got {iterations!r}",
                           fix="give the largest number of forward-backward sweeps, e.g. 50")
    if not (tol > 0 and math.isfinite(tol)):
        raise CompileError(f"tol must be a positive number, got {tol!r}", fix="e.g. tol=1e-9")
    if not 0.0 <= damping < 1.0:
        raise CompileError(f"damping must lie in [0, 1), got {damping!r}",
                           fix="0 for the plain sweep, e.g. 0.5 to damp oscillating sweeps")
    if substeps is not None and (int(substeps) != substeps or substeps < 1):
        raise CompileError(f"substeps must be a positive integer, got {substeps!r}",
                           fix="give internal intervals per output interval, or None")


def _final_vector(system: CompiledSystem, final) -> np.ndarray:
    names = system.multiplier_states
    if final is None:
        return np.zeros(len(names))
    if isinstance(final, Mapping):
        vals = {str(k): v for k, v in final.items()}
        unknown = sorted(set(vals) - set(names))
        if unknown:
            raise CompileError(
                f"final names {', '.join(unknown)}, which are not multiplier states of "
                f"{system.name!r}", fix=f"use names among {', '.join(names)}")
        out = np.array([float(vals.get(n, 0.0)) for n in names])
    else:
        out = np.asarray(final, dtype=float).reshape(-1)
        if out.shape != (len(names),):
            raise CompileError(
                f"final has {out.size} values, but {system.name!r} has {len(names)} "
                f"multiplier states ({', '.join(names)})",
                fix=f"give {len(names)} values in the order of system.multiplier_states, or "
                "a mapping by name")
    if not np.all(np.isfinite(out)):
        raise CompileError("final has a non-finite value", fix="give finite numbers")
    return out


# -- the internal grid --------------------------------------------------------------------------
def _default_substeps(system: CompiledSystem, grid: np.ndarray, y0: np.ndarray,
                      pv: np.ndarray) -> int:
    if system.n_states > _DENSE_JACOBIAN_LIMIT:
        return _DEFAULT_SUBSTEPS
    rho = float(np.max(np.abs(system.eigenvalues(float(grid[0]), y0, pv))))
    h = float(np.max(np.diff(grid)))
    return max(1, math.ceil(h * rho / _RATE_STEP))


def _refine(grid: np.ndarray, substeps: int) -> np.ndarray:
    frac = np.arange(substeps) / substeps
    inner = (grid[:-1, None] + np.diff(grid)[:, None] * frac[None, :]).reshape(-1)
    return np.r_[inner, grid[-1]]


# -- one pass -----------------------------------------------------------------------------------
def _pass_function(system: CompiledSystem, active: np.ndarray, passive: np.ndarray,
                   opts: SolverOptions, n_int: int) -> ca.Function:
    """All intervals of one pass: the ``active`` block integrated over each interval with
    the ``passive`` block a cubic Hermite polynomial, chained by ``mapaccum``.

    Interval data (one column each): ``[p, t_a, σh, b_a, b_b, σh ḃ_a, σh ḃ_b]`` where the
    interval runs from ``t_a`` to ``t_a + σh`` (``σ = +1`` forward, ``−1`` backward) in
    the normalized time ``τ ∈ [0, 1]``.
    """
    method, extra = opts.method, dict(opts.integrator_options or {})
    key = ("adjoint_pass", tuple(active), method, opts.rtol, opts.atol, opts.steps,
           opts.max_steps, tuple(sorted((k, repr(v)) for k, v in extra.items())), n_int)
    cached = system._cache.get(key)
    if cached is not None:
        return cached
    n_a, n_b, n_p = len(active), len(passive), system.rhs.size1_in(2)
    tau = ca.MX.sym("tau")
    a = ca.MX.sym("a", n_a)
    data = ca.MX.sym("data", n_p + 2 + 4 * n_b)
    p, t_a, sh = data[:n_p], data[n_p], data[n_p + 1]
    blocks = [data[n_p + 2 + i * n_b:n_p + 2 + (i + 1) * n_b] for i in range(4)]
    b_a, b_b, m_a, m_b = blocks
    h00 = 2 * tau**3 - 3 * tau**2 + 1
    h10 = tau**3 - 2 * tau**2 + tau
    h01 = -2 * tau**3 + 3 * tau**2
    h11 = tau**3 - tau**2
    b = h00 * b_a + h10 * m_a + h01 * b_b + h11 * m_b
    entries: list = [None] * system.n_states
    for i, j in enumerate(active):
        entries[j] = a[i]
    for i, j in enumerate(passive):
        entries[j] = b[i]
    y = ca.vertcat(*entries)
    f = system.rhs(t_a + sh * tau, y, p)
    ode = sh * f[active.tolist()]
    if method == "cvodes":
        casadi_opts = {"abstol": opts.atol, "reltol": opts.rtol,
                       "max_num_steps": int(opts.max_steps)}
    elif method == "rk":
        casadi_opts = {"number_of_finite_elements": int(opts.steps or 10)}
    else:
        casadi_opts = {"number_of_finite_elements": int(opts.steps or 4),
                       "collocation_scheme": "radau", "interpolation_order": 3}
    integ = ca.integrator("adjoint_interval", method, {"x": a, "p": data, "t": tau, "ode": ode},
                          0.0, 1.0, casadi_opts | extra)
    x0, pd = ca.MX.sym("x0", n_a), ca.MX.sym("d", data.size1())
    step = ca.Function("adjoint_step", [x0, pd], [integ(x0=x0, p=pd)["xf"]])
    fn = step.mapaccum("adjoint_pass", n_int)
    system._cache[key] = fn
    return fn


def _rates(system: CompiledSystem, fine: np.ndarray, Y: np.ndarray, pv: np.ndarray
           ) -> np.ndarray:
    return along_trajectory(system.rhs, fine, Y, pv, system._cache)[0]


def _interval_data(fine: np.ndarray, h: np.ndarray, B: np.ndarray, dB: np.ndarray,
                   pv: np.ndarray, *, reverse: bool) -> np.ndarray:
    """Columns of interval data in the order the pass runs them."""
    n_int = len(h)
    if reverse:  # interval k runs from fine[k+1] down to fine[k]
        start, sh = fine[1:], -h
        ba, bb, da, db = B[1:], B[:-1], dB[1:], dB[:-1]
        order = slice(None, None, -1)
    else:
        start, sh = fine[:-1], h
        ba, bb, da, db = B[:-1], B[1:], dB[:-1], dB[1:]
        order = slice(None)
    cols = np.hstack([np.tile(pv, (n_int, 1)), start[:, None], sh[:, None], ba, bb,
                      sh[:, None] * da, sh[:, None] * db])
    return cols[order].T


def _run_pass(fn: ca.Function, a0: np.ndarray, data: np.ndarray, fine: np.ndarray,
              which: str, k: int, *, reverse: bool) -> np.ndarray:
    try:
        out = np.asarray(fn(a0, data).full()).T
    except RuntimeError as exc:
        raise SimulationError(
            f"the {which} pass of adjoint sweep {k} failed in CasADi's integrator "
            f"({str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r})",
            fix="loosen rtol/atol, raise substeps=, or damp the sweep (damping=0.5)",
            time=None, state_norm=float(np.linalg.norm(a0))) from None
    traj = np.vstack([a0[None, :], out])
    return traj[::-1] if reverse else traj


def _check_values(Y: np.ndarray, fine: np.ndarray, max_norm: float, which: str, k: int
                  ) -> None:
    norms = np.linalg.norm(Y, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms > max_norm))
    if bad.size:
        i = int(bad[0])
        raise SimulationError(
            f"the {which} pass of adjoint sweep {k} blew up at t = {fine[i]:g} (state norm "
            f"{norms[i]:.3g} > max_norm = {max_norm:g} or not finite)",
            fix="damp the sweep (damping=0.5), shorten the horizon, or run the relaxation, "
            "compile.stable_variant(system, 'relaxation')",
            time=float(fine[i]), state_norm=float(norms[i]))
