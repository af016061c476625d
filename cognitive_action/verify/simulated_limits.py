"""Convergence toward the limits of Section 3 measured on simulations.

The frozen-state checks of :mod:`~cognitive_action.verify.checks` compare eq. (10) with
backprop at one state. Here the finite-parameter learning system (eq. 8-10, compiled by
:mod:`~cognitive_action.compile`) is *simulated* at a sequence of parameters and its weight
trajectory compared with an independent limit trajectory, and the order of convergence
is fitted (:func:`~cognitive_action.verify.metrics.convergence_order`):

- :func:`check_convergence_theta`: ``θ → ∞`` with ``θ m_W = γ`` (and ``m_x = r m_W``),
  eq. (13) → the gradient flow (14), ``γ Ẇ = −∇_W V̄(W)``;
- :func:`check_convergence_mass_x`: ``m_x → 0`` at fixed ``θ, m_W``, eq. (8)-(10) → (12)-(13),
  ``m_W (Ẅ + θ Ẇ) = −∇_W V̄(W)`` with ``x`` on the forward pass;
- :func:`check_drift`: the constraint drift ``max |G|`` along a simulation.

The references never use the derivation: ``∇_W V̄`` is CasADi's algorithmic
differentiation of the loss composed with the forward pass
(:func:`~cognitive_action.verify.reference.casadi_gradients`), integrated by SciPy's
DOP853 at tight tolerances.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.integrate import solve_ivp

from cognitive_action.declare.problem import Problem
from cognitive_action.errors import DeclarationError
from cognitive_action.verify.convergence import simulated_order_check
from cognitive_action.verify.report import Check

__all__ = ["check_convergence_mass_x", "check_convergence_theta", "check_drift"]


def _network(problem: Problem):
    from cognitive_action.derive.network import is_network_problem

    if not isinstance(problem, Problem) or not is_network_problem(problem):
        raise DeclarationError("a simulated limit check needs a network problem",
                               fix="declare it with Network(...).problem(...)")
    net = problem.network
    if not net.is_feedforward:
        raise DeclarationError("the forward-pass reference needs a feedforward network",
                               fix="use a DAG (no cycles)")
    return net


def _learning_parameters(problem: Problem) -> tuple[str, str, str]:
    """Names of ``θ``, ``m_x`` and ``m_W`` by their roles (``verify.reference``, imported
    here: it pulls CasADi)."""
    from cognitive_action.verify.reference import learning_parameters

    return learning_parameters(problem)


def _setup(problem: Problem, net, values: Mapping[str, float] | None,
           w0: Mapping[str, float] | None, seed: int, t_end: float, n_points: int) -> tuple:
    """What both checks start from: given values, initial weights (by name and as an
    array in network order), the AD gradient of the composed loss, the output grid."""
    base = dict(values or {})
    weights = _weights(net, w0, seed)
    names = [str(w) for w in net.weights]
    grad = _gradient(problem, base)
    w_init = np.array([weights[n] for n in names])
    return base, weights, names, grad, w_init, np.linspace(0.0, t_end, n_points)


def _weights(net, w0: Mapping[str, float] | None, seed: int) -> dict[str, float]:
    names = [str(w) for w in net.weights]
    if w0 is None:
        from cognitive_action.declare.initializers import initialize

        return dict(zip(names, initialize([1] * len(names), "normal", scale=0.5,
                                          rng=seed).tolist()))
    missing = [n for n in names if n not in w0]
    if missing:
        raise DeclarationError(f"no initial value for the weights {', '.join(missing)}",
                               fix="give every weight in w0, or w0=None for a seeded draw")
    return {n: float(w0[n]) for n in names}


def _gradient(problem: Problem, values: Mapping[str, float]):
    """``(t, W) ↦ ∂V̄/∂W`` by CasADi AD through the forward pass, built once
    (:func:`~cognitive_action.verify.convergence.gradient_function`)."""
    from cognitive_action.verify.convergence import gradient_function

    grad = gradient_function(problem, values)
    return lambda t, w: np.asarray(grad(float(t), np.asarray(w, dtype=float))).ravel()


def _simulate(problem, net, vals, w0, wdot0, grid):
    """Weights along a learning run from consistent initial conditions."""
    from cognitive_action.verify.convergence import simulate_learning

    names = [str(w) for w in net.weights]
    run = simulate_learning(problem, vals, w0, dict(zip(names, map(float, wdot0))), grid)
    return np.column_stack([run[n] for n in names]), run


def check_convergence_theta(problem: Problem, *, thetas: Sequence[float] = (10, 20, 40, 80),
                            gamma: float = 1.0, mass_ratio: float = 1e-3,
                            t_end: float = 3.0, n_points: int = 31,
                            w0: Mapping[str, float] | None = None, seed: int = 0,
                            values: Mapping[str, float] | None = None,
                            expected: float = 1.0, order_tol: float = 0.15,
                            max_points: int | None = None) -> Check:
    """Fit the order of convergence of simulated weights to the gradient flow (14).

    At each ``θ`` the learning system runs with ``m_W = γ/θ``, ``m_x = r m_W`` with
    ``r = mass_ratio · θ₀/θ`` (``θ₀ = thetas[0]``; at a fixed ``r`` the multipliers keep
    an ``O(r)`` offset from backprop, eq. 10, and the error levels off at ``O(r)``),
    ``x`` on the forward pass and ``Ẇ(0) = −∇V̄/γ`` (no initial layer), and the error is
    ``max_t |W(t) − W_gf(t)| / max_t |W_gf(t) − W_gf(0)|``. Expected order 1 in ``1/θ``:
    the inertia ``m_W Ẅ = (γ/θ) Ẅ`` and the neurons' inertia ``m_x`` (also ``∝ 1/θ``)
    are first-order perturbations of ``γ Ẇ = −∇V̄``. ``θ`` is doubled beyond ``thetas``
    until the fitted order is stable, at most ``max_points`` simulations
    (:func:`~cognitive_action.verify.convergence.simulated_order_check`).

    Returns
    -------
    Check
        ``convergence.theta`` with the fitted order as value (``inconclusive`` when it
        never stabilised), the range of ``1/θ`` used and its confidence interval.
    """
    net = _network(problem)
    rate, mass_x, mass_W = _learning_parameters(problem)
    ths = np.asarray(list(thetas), dtype=float)
    if ths.size < 3 or np.any(ths <= 0):
        raise DeclarationError("need at least three positive values of theta",
                               fix="pass e.g. thetas=(10, 20, 40, 80)")
    base, weights, names, grad, w_init, grid = _setup(problem, net, values, w0, seed, t_end,
                                                      n_points)
    ref = solve_ivp(lambda t, w: -grad(t, w) / gamma, (0.0, t_end), w_init, t_eval=grid,
                    method="DOP853", rtol=1e-11, atol=1e-13).y.T
    scale = float(np.linalg.norm(ref - ref[0], axis=1).max()) or 1.0
    def error_at(p: float) -> float:
        th = 1.0 / p
        m_w = gamma / th
        r = mass_ratio * ths[0] / th
        vals = base | {rate: float(th), mass_W: m_w, mass_x: r * m_w}
        W, _ = _simulate(problem, net, vals, weights, -grad(0.0, w_init) / gamma, grid)
        return float(np.linalg.norm(W - ref, axis=1).max()) / scale

    return simulated_order_check(
        "convergence.theta", error_at, 1.0 / ths, expected, order_tol,
        "simulated W(t) -> gradient flow (14) as theta -> oo, theta m_W = gamma", "1/theta",
        {"thetas": ths, "gamma": gamma, "mass_ratio": mass_ratio}, max_points)


def check_convergence_mass_x(problem: Problem, *, masses: Sequence[float] = (1e-1, 5e-2,
                                                                             2.5e-2, 1.25e-2),
                             theta: float = 2.0, m_W: float = 1.0, t_end: float = 3.0,
                             n_points: int = 31, w0: Mapping[str, float] | None = None,
                             seed: int = 0, values: Mapping[str, float] | None = None,
                             expected: float = 1.0, order_tol: float = 0.15,
                             max_points: int | None = None) -> Check:
    """Fit the order of convergence of simulated weights to eq. (12)-(13) as ``m_x → 0``.

    The reference integrates ``m_W (Ẅ + θ Ẇ) = −∇_W V̄(W)`` (``x`` on the forward pass,
    gradient by CasADi AD). Expected order 1 in ``m_x``: the neurons' inertia enters
    eq. (10) linearly, ``(J_x J_xᵀ/m_x + …)``, i.e. as an ``O(m_x)`` correction of the
    multipliers and so of the weights' forcing. The range starts at ``masses`` and is
    continued geometrically until the fitted order is stable, at most ``max_points``
    simulations (:func:`~cognitive_action.verify.convergence.simulated_order_check`);
    ``inconclusive`` if it never stabilises.
    """
    net = _network(problem)
    rate, mass_x, mass_W = _learning_parameters(problem)
    ms = np.asarray(list(masses), dtype=float)
    if ms.size < 3 or np.any(ms <= 0):
        raise DeclarationError("need at least three positive masses m_x",
                               fix="pass e.g. masses=(0.1, 0.05, 0.025)")
    base, weights, names, grad, w_init, grid = _setup(problem, net, values, w0, seed, t_end,
                                                      n_points)
    k = len(names)

    def second_order(t, z):
        return np.concatenate([z[k:], -theta * z[k:] - grad(t, z[:k]) / m_W])

    ref = solve_ivp(second_order, (0.0, t_end), np.concatenate([w_init, np.zeros(k)]),
                    t_eval=grid, method="DOP853", rtol=1e-11, atol=1e-13).y.T[:, :k]
    scale = float(np.linalg.norm(ref - ref[0], axis=1).max()) or 1.0
    def error_at(m: float) -> float:
        vals = base | {rate: theta, mass_W: m_W, mass_x: float(m)}
        W, _ = _simulate(problem, net, vals, weights, np.zeros(k), grid)
        return float(np.linalg.norm(W - ref, axis=1).max()) / scale

    return simulated_order_check("convergence.mass_x", error_at, ms, expected, order_tol,
                                 "simulated W(t) -> eq. (12)-(13) as m_x -> 0", "m_x",
                                 {"masses": ms, "theta": theta, "m_W": m_W}, max_points)


def check_drift(simulation, *, tol: float = 1e-6) -> Check:
    """The constraint drift ``max_t max_j |G_j(t)|`` along a simulation.

    ``simulation`` is a :class:`~cognitive_action.compile.simulate.Simulation`.
    """
    drift = simulation.max_drift
    stab = simulation.stabilization or "none"
    ok = bool(np.isfinite(drift) and drift <= tol)
    return Check("drift", "pass" if ok else "fail", float(drift), tol,
                 f"max |G| along the run = {drift:.2e} (stabilization: {stab})",
                 {"stabilization": stab, "t_end": float(simulation.times[-1])})
