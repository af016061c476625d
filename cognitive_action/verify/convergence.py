"""Convergence of simulated velocities and multipliers toward the limits of Section 3.

Complements :mod:`~cognitive_action.verify.simulated_limits` (which fits the order of the
simulated *weights*) with the quantities the limits are really about:

- :func:`check_convergence_velocity`: ``θ → ∞`` with ``θ m_W = γ`` (eq. 13 → 14). The
  simulated velocity ``Ẇ(t)`` tends to the gradient-flow velocity ``−∇_W V̄(W_gf(t))/γ``
  at order 1 in ``1/θ`` *after* the initial layer of width ``~1/θ`` that a start at rest
  (``Ẇ(0) = 0``) creates; inside the layer the error stays ``|∇V̄|/γ`` whatever ``θ``
  (reported as ``initial_errors``);
- :func:`check_convergence_delta`: ``m_x → 0`` (eq. 10 → 15-17). The simulated
  multipliers ``δ(t)`` tend to the backprop deltas computed by CasADi's algorithmic
  differentiation at the simulated weights ``W(t)``, at order 1 in ``m_x``;
- :func:`check_drift_rate`: ``max |Ġ|`` along a simulation (with ``max |G|``), i.e. whether
  the velocity-level consistency of eq. (11) is kept, and the stabilization used;
  :func:`check_learning_drift` runs it on one learning run;
- :func:`simulate_learning`: the finite-mass learning system from consistent initial
  conditions (``x(0)`` on the forward pass, ``ẋ(0)`` from ``Ġ = 0``, eq. 11).

The references never use the derivation engine: gradients and deltas come from
:func:`~cognitive_action.verify.reference.casadi_gradients` (AD of the loss composed with
the forward pass) and the gradient flow is integrated by SciPy's DOP853.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from cognitive_action.declare.problem import Problem
from cognitive_action.declare.roles import multiplier_name
from cognitive_action.errors import DeclarationError
from cognitive_action.verify.asymptotic import order_check, search_order
from cognitive_action.verify.report import Check

__all__ = ["check_convergence_delta", "check_convergence_velocity", "check_drift_rate",
           "check_learning_drift", "gradient_function", "simulate_learning",
           "simulated_order_check", "SIMULATED_SEARCH"]


def _network(problem: Problem):
    from cognitive_action.verify.reference import network_of

    if not isinstance(problem, Problem):
        raise DeclarationError(f"expected a Problem, got {type(problem).__name__}",
                               fix="declare it with Network(...).problem(...)")
    return network_of(problem)


def _learning_parameters(problem: Problem) -> tuple[str, str, str]:
    """Names of ``θ``, ``m_x`` and ``m_W`` by their roles (``verify.reference``, imported
    here: it pulls CasADi)."""
    from cognitive_action.verify.reference import learning_parameters

    return learning_parameters(problem)


def _initial_weights(net, w0: Mapping[str, float] | None, seed: int) -> np.ndarray:
    names = [str(w) for w in net.weights]
    if w0 is None:
        from cognitive_action.declare.initializers import initialize

        return initialize([1] * len(names), "normal", scale=0.5, rng=seed)
    missing = [n for n in names if n not in w0]
    if missing:
        raise DeclarationError(f"no initial value for the weights {', '.join(missing)}",
                               fix="give every weight in w0, or w0=None for a seeded draw")
    return np.array([float(w0[n]) for n in names])


def _sequence(values: Sequence[float], what: str, example: str) -> np.ndarray:
    arr = np.asarray(list(values), dtype=float)
    if arr.size < 3 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise DeclarationError(f"need at least three positive values of {what}",
                               fix=f"pass e.g. {example}")
    return arr


def simulate_learning(problem: Problem, values: Mapping[str, float],
                      w0: Mapping[str, float] | np.ndarray,
                      w_dot0: Mapping[str, float] | np.ndarray | None = None,
                      times: Sequence[float] | np.ndarray = (0.0, 1.0), *,
                      rtol: float = 1e-10, atol: float = 1e-12,
                      stabilization: str | None = None, n_points: int = 101):
    """Simulate a network's learning system (eq. 8-10) from consistent initial conditions.

    The neurons are solved for (``x(0)`` on the forward pass, ``ẋ(0)`` from ``Ġ = 0``,
    the general form of eq. 11 by
    :func:`~cognitive_action.derive.initial.complete_initial_conditions`); the weights
    and their velocities are given.

    Parameters
    ----------
    problem
        A network problem (``Network(...).problem(...)``).
    values
        Every parameter of the compiled system by name (``m_x``, ``m_W``, ``theta``, …).
    w0, w_dot0
        Initial weights and velocities, by name or in ``net.weights`` order;
        ``w_dot0=None`` starts at rest.
    times
        ``(t0, tf)`` or an array of output times (as
        :func:`~cognitive_action.compile.simulate.simulate`).
    rtol, atol, stabilization, n_points
        Passed to :func:`~cognitive_action.compile.simulate.simulate`.

    Returns
    -------
    Simulation
    """
    from cognitive_action.compile import compile_system, simulate
    from cognitive_action.derive import complete_initial_conditions
    from cognitive_action.derive.euler_lagrange import euler_lagrange

    net = _network(problem)
    names = [str(w) for w in net.weights]

    def by_name(v, label):
        if v is None:
            return dict.fromkeys(names, 0.0)
        if isinstance(v, Mapping):
            return {n: float(v[n]) for n in names}
        arr = np.asarray(v, dtype=float).ravel()
        if arr.size != len(names):
            raise DeclarationError(f"{label} has {arr.size} entries for {len(names)} weights",
                                   fix=f"give one value per weight, in the order {names}")
        return dict(zip(names, arr.tolist()))

    given = (dict(values) | by_name(w0, "w0")
             | {f"{n}_dot": v for n, v in by_name(w_dot0, "w_dot0").items()})
    t0 = float(np.asarray(times, dtype=float).ravel()[0])
    y0 = complete_initial_conditions(euler_lagrange(problem), given, free=list(net.neurons),
                                     t0=t0)
    return simulate(compile_system(problem), times, y0, dict(values), rtol=rtol, atol=atol,
                    stabilization=stabilization, n_points=n_points)


def gradient_function(problem: Problem, values: Mapping[str, float] | None = None, *,
                      signals: Mapping[str, sp.Expr] | None = None):
    """``(t, W) ↦ ∂V̄/∂W`` of the loss composed with the forward pass, built once.

    The same reference as :func:`~cognitive_action.verify.reference.casadi_gradients`
    (CasADi AD of an SX forward pass, no derivation engine) with ``t`` symbolic, so
    that a gradient flow (eq. 14) integrated by SciPy does not rebuild it at every call.

    Parameters
    ----------
    problem
        A feedforward network problem.
    values
        Numbers for the signals and parameters of the inputs and the loss, by name.
    signals
        Signals that move, by name: SymPy expressions of ``t``
        (:data:`cognitive_action.declare.symbols.t`), substituted before ``values``.

    Returns
    -------
    callable
        ``grad(t, w)``: ``∂V̄/∂W`` in ``net.weights`` order; ``grad(t, w, delta=True)``
        returns it with the backprop deltas ``−∂V̄/∂x_j`` (eq. 17) in ``net.order``.

    Raises
    ------
    DeclarationError
        If a signal or parameter has no value.
    """
    import casadi

    from cognitive_action.declare.symbols import t as time
    from cognitive_action.verify.reference import (
        CASADI_FUNCTIONS,
        casadi_activations,
        input_expressions,
        loss_of,
    )

    net = _network(problem)
    vals = {str(k): float(v) for k, v in (values or {}).items()}
    moving = {s: sp.sympify(signals[str(s)])  # safe: SymPy expressions from the caller
              for s in problem.signals if str(s) in (signals or {})}
    inputs = {j: e.xreplace(moving) for j, e in input_expressions(problem).items()}
    loss = loss_of(problem).xreplace(moving)
    free = set().union(loss.free_symbols, *(e.free_symbols for e in inputs.values()))
    free -= set(problem.coordinates) | {time}
    missing = sorted(str(s) for s in free if str(s) not in vals)
    if missing:
        raise DeclarationError(f"no value given for {', '.join(missing)}",
                               fix="pass numbers for the input signals, targets and "
                               "parameters of the loss in values")
    consts = {s: vals[str(s)] for s in free}
    T = casadi.SX.sym("t")
    W = casadi.SX.sym("W", len(net.weights))
    P = casadi.SX.sym("p", len(net.order))  # perturbations: -dV/dp_j is the delta
    widx = {key: i for i, key in enumerate(net.w)}
    sigma = casadi_activations(net)
    x = {}
    for i, j in enumerate(net.order):
        if j in net.inputs:
            x[j] = sp.lambdify([time], inputs[j].xreplace(consts),
                               modules=[CASADI_FUNCTIONS])(T) + P[i]
        else:
            x[j] = sigma[j](sum((W[widx[j, k]] * x[k] for k in net.graph.predecessors(j)),
                             casadi.SX(0))) + P[i]
    xs = [net.x[j] for j in net.order]
    V = sp.lambdify(xs + [time], loss.xreplace(consts), modules=[CASADI_FUNCTIONS])(
        *(x[j] for j in net.order), T)
    grad_w, grad_p = casadi.substitute([casadi.gradient(V, W), casadi.gradient(V, P)],
                                       [P], [casadi.SX.zeros(P.shape)])
    f = casadi.Function("backprop_reference", [T, W], [grad_w, -grad_p])

    def grad(t: float, w: np.ndarray, delta: bool = False):
        g, d = f(float(t), np.asarray(w, dtype=float))
        g = np.asarray(g).ravel()
        return (g, np.asarray(d).ravel()) if delta else g
    return grad


#: Settings of the range search of the simulated checks (one simulation per point):
#: three-point windows, so that the four default parameters already give two fits.
SIMULATED_SEARCH = {"window": 3, "max_points": 7, "floor": 1e-8}


def simulated_order_check(name: str, error_at, params: np.ndarray, expected: float,
                          order_tol: float, what: str, parameter: str, details: dict,
                          max_points: int | None = None) -> Check:
    """The order check of a simulated limit, on a range chosen until the order is stable.

    ``error_at(p)`` simulates at the parameter ``p → 0`` and returns the error; the range
    starts at ``params`` and is continued geometrically
    (:func:`~cognitive_action.verify.asymptotic.search_order` with
    :data:`SIMULATED_SEARCH`). Shared by the simulated-limit checks.
    """
    opts = SIMULATED_SEARCH | ({"max_points": max_points} if max_points else {})
    search = search_order(error_at, params, precision=order_tol, **opts)
    # lists filled by error_at, one entry per simulated parameter
    details = {k: np.asarray(v) if isinstance(v, list) else v for k, v in details.items()}
    return order_check(name, search, expected=expected, order_tol=order_tol, what=what,
                       parameter=parameter, details=details)


def check_convergence_velocity(problem: Problem, *,
                               thetas: Sequence[float] = (10, 20, 40, 80, 160),
                               gamma: float = 1.0, mass_ratio: float = 1e-3,
                               start: str = "rest", t_skip: float = 1.0, t_end: float = 3.0,
                               n_points: int = 61, w0: Mapping[str, float] | None = None,
                               seed: int = 0, values: Mapping[str, float] | None = None,
                               expected: float = 1.0, order_tol: float = 0.15,
                               max_points: int | None = None) -> Check:
    """Fit the order of convergence of simulated ``Ẇ(t)`` to the gradient flow (14).

    At each ``θ`` the learning system runs with ``m_W = γ/θ`` and ``m_x = r m_W``, the
    ratio ``r = mass_ratio · θ₀/θ`` shrinking with ``1/θ`` (``θ₀ = thetas[0]``: at a
    fixed ratio the multipliers keep an ``O(r)`` offset from backprop, eq. 10, and the
    error levels off at ``O(r)`` as ``θ → ∞``); the error is
    ``max_{t ≥ t_skip} |Ẇ(t) + ∇_W V̄(W_gf(t))/γ|`` relative to
    ``max_t |∇_W V̄(W_gf(t))|/γ``, with ``W_gf`` the gradient flow ``γẆ = −∇_W V̄``
    integrated by SciPy (DOP853, rtol 1e-10) with CasADi AD gradients.

    Expected order 1 in ``1/θ``: eq. (13) reads ``γẆ = −∇V̄ − (γ/θ)Ẅ`` (plus the
    neurons' inertia ``m_x = rγ/θ``), a first-order perturbation of eq. (14) once the
    initial layer has decayed. Started at rest, ``Ẇ`` relaxes to the flow like
    ``e^{−θt}``: the error at ``t = 0`` is ``|∇V̄(W(0))|/γ`` for every ``θ`` (order 0,
    reported in ``details["initial_errors"]``), so ``t_skip`` must exceed a few ``1/θ``
    of the smallest ``θ``.

    Parameters
    ----------
    problem
        A feedforward network problem with ``weight=exp(θ t)``.
    thetas
        At least three increasing values of ``θ``.
    gamma, mass_ratio
        ``γ = θ m_W`` and ``r = m_x/m_W`` at the first ``θ``.
    start
        ``"rest"`` (``Ẇ(0) = 0``: an initial layer) or ``"flow"``
        (``Ẇ(0) = −∇V̄/γ``: consistent with the limit, no layer at leading order).
    t_skip, t_end, n_points
        Error measured on ``[t_skip, t_end]`` of an ``n_points`` grid on ``[0, t_end]``.
    w0, seed
        Initial weights by name, or a seeded normal draw (std 0.5).
    values
        Other numbers (signal parameters).
    expected, order_tol
        The check passes when the order is stable and ``|order − expected| ≤ order_tol``.
    max_points
        Largest number of simulations: ``θ`` is doubled beyond ``thetas`` (the ratio of
        their last two) until the fitted order is stable (:func:`simulated_order_check`).

    Returns
    -------
    Check
        ``convergence.theta.velocity``: value the fitted order (``inconclusive`` when it
        never stabilised); ``details`` hold the errors per ``1/θ``, the range used, the
        errors at ``t = 0``, the weights' errors, CI and R².
    """
    net = _network(problem)
    rate, mass_x, mass_W = _learning_parameters(problem)
    ths = _sequence(thetas, "theta", "thetas=(10, 20, 40, 80)")
    if start not in ("rest", "flow"):
        raise DeclarationError(f"unknown start {start!r}", fix="use 'rest' or 'flow'")
    if not 0.0 <= t_skip < t_end:
        raise DeclarationError(f"t_skip = {t_skip} is not in [0, t_end = {t_end})",
                               fix="measure after the initial layer and before the end")
    base = dict(values or {})
    grad = gradient_function(problem, base)
    w_init = _initial_weights(net, w0, seed)
    grid = np.linspace(0.0, t_end, n_points)
    ref = solve_ivp(lambda t, w: -grad(t, w) / gamma, (0.0, t_end), w_init, t_eval=grid,
                    method="DOP853", rtol=1e-10, atol=1e-12).y.T
    v_ref = np.array([-grad(t, w) / gamma for t, w in zip(grid, ref)])
    scale = float(np.linalg.norm(v_ref, axis=1).max()) or 1.0
    w_dot0 = v_ref[0] if start == "flow" else np.zeros(len(w_init))
    names = [str(w) for w in net.weights]
    late = grid >= t_skip
    initial, weights = [], []

    def error_at(p: float) -> float:
        th = 1.0 / p
        m_w = gamma / th
        r = mass_ratio * ths[0] / th
        vals = base | {rate: float(th), mass_W: m_w, mass_x: r * m_w}
        run = simulate_learning(problem, vals, w_init, w_dot0, grid)
        v = np.column_stack([run[f"{n}_dot"] for n in names])
        w = np.column_stack([run[n] for n in names])
        dv = np.linalg.norm(v - v_ref, axis=1) / scale
        initial.append(float(dv[0]))
        weights.append(float(np.linalg.norm(w - ref, axis=1).max()))
        return float(dv[late].max())

    return simulated_order_check(
        "convergence.theta.velocity", error_at, 1.0 / ths, expected, order_tol,
        f"simulated W'(t), t >= {t_skip:g}, -> gradient flow (14) as theta -> oo "
        f"(theta m_W = gamma, start at {start})", "1/theta",
        {"thetas": ths, "gamma": gamma, "mass_ratio": mass_ratio, "start": start,
         "t_skip": t_skip, "initial_errors": initial, "weight_errors": weights},
        max_points)


def check_convergence_delta(problem: Problem, *,
                            masses: Sequence[float] = (1e-1, 5e-2, 2.5e-2, 1.25e-2),
                            theta: float = 2.0, m_W: float = 1.0, t_end: float = 3.0,
                            n_points: int = 31, w0: Mapping[str, float] | None = None,
                            seed: int = 0, values: Mapping[str, float] | None = None,
                            expected: float = 1.0, order_tol: float = 0.15,
                            max_points: int | None = None) -> Check:
    """Fit the order of convergence of simulated multipliers to the backprop deltas.

    At each ``m_x`` the learning system (eq. 8-10) runs from rest with the neurons on the
    forward pass; at every output time the simulated ``δ_j(t)`` (``λ_j e^{−θt}``) are
    compared with ``−∂V̄/∂x_j`` at the simulated ``W(t)`` (eq. 17's backprop delta, CasADi
    AD of the composed loss). Error: ``max_t max_j |δ_j − δ_j^bp| / max_t max_j |δ_j^bp|``.

    Expected order 1 in ``m_x``: multiplying eq. (10) by ``m_x`` gives
    ``(J_x J_xᵀ + m_x J_W J_Wᵀ/m_W) δ = −J_x V_x + m_x(…)``; the terms that separate
    ``δ`` from backprop (eq. 16-17, ``m_x = 0``) are all ``O(m_x)``, and the simulated
    trajectory itself is ``O(m_x)`` from the quasi-static one.

    The range starts at ``masses`` and is continued geometrically until the fitted
    order is stable, at most ``max_points`` simulations (:func:`simulated_order_check`).

    Returns
    -------
    Check
        ``convergence.delta`` with the fitted order (``inconclusive`` when it never
        stabilised); ``details`` hold the errors per ``m_x``, the range used, the largest
        ``|G|`` and ``|Ġ|`` of each run, CI and R².
    """
    net = _network(problem)
    rate, mass_x, mass_W = _learning_parameters(problem)
    ms = _sequence(masses, "m_x", "masses=(0.1, 0.05, 0.025)")
    base = dict(values or {})
    backprop = gradient_function(problem, base)
    w_init = _initial_weights(net, w0, seed)
    grid = np.linspace(0.0, t_end, n_points)
    names = [str(w) for w in net.weights]
    drifts, rates = [], []
    keys = [multiplier_name(c.name, holonomic=True, weighted=True)
            for c in problem.constraints]

    def error_at(m: float) -> float:
        vals = base | {rate: theta, mass_W: m_W, mass_x: float(m)}
        run = simulate_learning(problem, vals, w_init, None, grid)
        mult = run.multipliers()
        missing = [k for k in keys if k not in mult]
        if missing:
            raise DeclarationError(f"the simulation has no multipliers {', '.join(missing)}",
                                   fix="name the neural constraints G<j> (Network.problem)")
        delta = np.column_stack([mult[k] for k in keys])
        w = np.column_stack([run[n] for n in names])
        bp = np.array([backprop(ti, wi, delta=True)[1] for ti, wi in zip(run.times, w)])
        drifts.append(run.max_drift)
        dr = run.drift_rate
        rates.append(0.0 if dr is None else float(dr.max()))
        return float(np.abs(delta - bp).max() / (np.abs(bp).max() or 1.0))

    return simulated_order_check(
        "convergence.delta", error_at, ms, expected, order_tol,
        "simulated multipliers delta(t) -> backprop deltas (17) as m_x -> 0", "m_x",
        {"masses": ms, "theta": theta, "m_W": m_W, "max_drift": drifts,
         "max_drift_rate": rates}, max_points)


def check_drift_rate(simulation, *, tol: float = 1e-6) -> Check:
    """``max_t max_j |Ġ_j(t)|`` along a simulation: the velocity-level constraint drift.

    The index-reduced system (eq. 10 enforces ``G̈ = 0``) keeps ``G`` and ``Ġ`` at zero
    only up to the integrator's error; ``Ġ`` drifting lets ``G`` grow linearly in time.

    Parameters
    ----------
    simulation
        A :class:`~cognitive_action.compile.simulate.Simulation`.
    tol
        Largest acceptable ``|Ġ|``.

    Returns
    -------
    Check
        ``drift.rate``: value ``max |Ġ|``; ``details`` hold ``max |G|``, the time of the
        largest ``|Ġ|`` and the stabilization used.
    """
    stab = simulation.stabilization or "none"
    rate = simulation.drift_rate
    if rate is None:
        return Check("drift.rate", "skip", None, tol, "the system has no constraints",
                     {"stabilization": stab})
    worst = float(rate.max()) if rate.size else 0.0
    at = float(simulation.times[int(np.argmax(rate))]) if rate.size else 0.0
    ok = bool(np.isfinite(worst) and worst <= tol)
    return Check("drift.rate", "pass" if ok else "fail", worst, tol,
                 f"max |G'| along the run = {worst:.2e} at t = {at:.3g}, max |G| = "
                 f"{simulation.max_drift:.2e} (stabilization: {stab})",
                 {"stabilization": stab, "max_drift": simulation.max_drift, "at": at,
                  "t_end": float(simulation.times[-1])})


def check_learning_drift(problem: Problem, *, theta: float = 2.0, m_W: float = 1.0,
                         m_x: float = 1e-2, t_end: float = 3.0,
                         w0: Mapping[str, float] | None = None, seed: int = 0,
                         values: Mapping[str, float] | None = None,
                         stabilization: str | None = None, tol: float = 1e-6) -> Check:
    """:func:`check_drift_rate` on one run of :func:`simulate_learning` from rest.

    The run uses ``ϖ = exp(θt)`` with the given ``θ, m_W, m_x`` and seeded (or given)
    initial weights, CVODES at rtol 1e-10.

    Returns
    -------
    Check
        ``drift.rate`` (see :func:`check_drift_rate`), with the run's parameters in
        ``details``.
    """
    net = _network(problem)
    rate, mass_x, mass_W = _learning_parameters(problem)
    vals = dict(values or {}) | {rate: theta, mass_W: m_W, mass_x: m_x}
    run = simulate_learning(problem, vals, _initial_weights(net, w0, seed), None,
                            (0.0, t_end), stabilization=stabilization)
    check = check_drift_rate(run, tol=tol)
    check.details |= {"theta": theta, "m_W": m_W, "m_x": m_x}
    return check
