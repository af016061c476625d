"""Convergence of simulated velocities and multipliers toward the limits of Section 3.

References written here by hand, never by the derivation: the chain's gradient
``∂V̄/∂W`` and backprop deltas (design.md: ``δ3 = -V_x3``, ``δ2 = σ'(w32 x2) w32 δ3``,
``δ1 = σ'(w21 x1) w21 δ2``) in NumPy, the gradient flow (14) integrated by SciPy's
DOP853, the constraint rate ``Ġ`` by the chain rule on the simulated states, and
design.md's closed form of the toy neural constraint's multiplier.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

import cognitive_action as ca
from cognitive_action.compile import compile_system, simulate
from cognitive_action.declare import symbols as S
from cognitive_action.declare.problem import Action, Constraint, Problem
from cognitive_action.errors import DeclarationError
from cognitive_action.verify import metrics, verify
from cognitive_action.verify.convergence import (
    check_convergence_delta,
    check_convergence_velocity,
    check_drift_rate,
    check_learning_drift,
    simulate_learning,
)

theta, = S.parameters("theta")
Y3 = 0.3
W0 = {"w2_1": 0.7, "w3_2": -0.8}


def _e1(t):
    return 0.9 + 0.3 * np.sin(2.0 * t)


def _chain(varying: bool = True) -> Problem:
    e1 = 0.9 + 0.3 * sp.sin(2 * S.t) if varying else 0.9
    return ca.chain(3).problem(weight=sp.exp(theta * S.t), parameters=[theta],
                               inputs={1: e1}, targets={3: Y3})


def _chain_backprop(t: float, w: np.ndarray, e=_e1) -> tuple[np.ndarray, np.ndarray]:
    """Hand-written forward pass, ``∂V̄/∂W`` and deltas ``(δ1, δ2, δ3)`` of the chain."""
    w21, w32 = w
    x1 = e(t)
    x2 = np.tanh(w21 * x1)
    x3 = np.tanh(w32 * x2)
    d3 = Y3 - x3
    d2 = (1 - x3**2) * w32 * d3
    d1 = (1 - x2**2) * w21 * d2
    return (np.array([-d2 * (1 - x2**2) * x1, -d3 * (1 - x3**2) * x2]),
            np.array([d1, d2, d3]))


def _gradient_flow(grid: np.ndarray, e=_e1) -> np.ndarray:
    w_init = np.array([W0["w2_1"], W0["w3_2"]])
    return solve_ivp(lambda t, w: -_chain_backprop(t, w, e)[0], (0.0, grid[-1]), w_init,
                     t_eval=grid, method="DOP853", rtol=1e-12, atol=1e-13).y.T


def test_simulated_velocity_reaches_gradient_flow_at_order_one_after_the_initial_layer():
    """θ → ∞, θ m_W = γ = 1, m_x = 10⁻³ m_W, time-varying input, start at rest.

    Expected: order 1 in 1/θ on t ≥ 1 for W and Ẇ, since eq. (13) is
    γẆ = -∇V̄ - (γ/θ)Ẅ (a first-order perturbation of eq. 14, plus m_x ∝ 1/θ); and
    order 0 at t = 0, where Ẇ(0) = 0 differs from the flow by |∇V̄(W(0))| for every θ
    (the initial layer of width ~1/θ)."""
    grid = np.linspace(0.0, 3.0, 61)
    ref = _gradient_flow(grid)
    v_ref = np.array([-_chain_backprop(t, w)[0] for t, w in zip(grid, ref)])
    thetas = np.array([10.0, 20.0, 40.0, 80.0, 160.0])
    late = grid >= 1.0
    ew, ev, e0 = [], [], []
    for th in thetas:
        run = simulate_learning(_chain(), {"theta": th, "m_W": 1 / th, "m_x": 1e-3 / th},
                                W0, None, grid)
        w = np.column_stack([run["w2_1"], run["w3_2"]])
        v = np.column_stack([run["w2_1_dot"], run["w3_2_dot"]])
        ew.append(np.abs(w - ref).max())
        ev.append(np.abs(v - v_ref)[late].max())
        e0.append(np.abs(v[0] - v_ref[0]).max())
    fit_w = metrics.convergence_order(1 / thetas, ew)
    fit_v = metrics.convergence_order(1 / thetas, ev)
    assert fit_w.order == pytest.approx(1.0, abs=0.06) and fit_w.r_squared > 0.999
    assert fit_v.order == pytest.approx(1.0, abs=0.06) and fit_v.r_squared > 0.999
    assert ev[-1] < 3e-3
    # inside the layer nothing converges: Ẇ(0) = 0 against -∇V̄(W(0))
    assert np.allclose(e0, np.abs(v_ref[0]).max(), rtol=1e-9)


def test_check_convergence_velocity_on_the_chain():
    """The check's own reference (CasADi AD + DOP853) on the chain; expected order 1 as
    above. Its initial errors must equal the hand-written |∇V̄(W(0))| / max_t |∇V̄(W_gf)|
    (order 0: the layer), and a consistent start (Ẇ(0) = -∇V̄) removes them."""
    p = _chain()
    rest = check_convergence_velocity(p, thetas=(10, 20, 40, 80), w0=W0)
    assert rest.status == "pass", rest.message
    assert rest.value == pytest.approx(1.0, abs=0.05)
    assert rest.details["ci"][1] - rest.details["ci"][0] < 0.1
    grid = np.linspace(0.0, 3.0, 61)
    g = np.array([_chain_backprop(t, w)[0] for t, w in zip(grid, _gradient_flow(grid))])
    layer = np.linalg.norm(g[0]) / np.linalg.norm(g, axis=1).max()
    assert np.allclose(rest.details["initial_errors"], layer, rtol=1e-8)
    flow = check_convergence_velocity(p, thetas=(10, 20, 40, 80), w0=W0, start="flow",
                                      t_skip=0.0)
    assert flow.status == "pass", flow.message
    assert np.all(flow.details["initial_errors"] < 1e-9)


def test_simulated_multipliers_reach_backprop_deltas_at_order_one_in_m_x():
    """m_x → 0 at θ = 2, m_W = 1, from rest: δ_j(t) of the simulation against the
    hand-written chain deltas at the simulated W(t). Expected order 1: eq. (10) times
    m_x differs from eq. (16)-(17) by O(m_x) terms (m_x/m_W J_W J_Wᵀ, m_x times the
    velocity terms of G̈)."""
    p = _chain(varying=False)
    masses = np.array([1e-1, 5e-2, 2.5e-2, 1.25e-2])
    grid = np.linspace(0.0, 3.0, 31)
    errors = []
    for m in masses:
        run = simulate_learning(p, {"theta": 2.0, "m_W": 1.0, "m_x": m}, W0, None, grid)
        delta = np.column_stack([run[f"delta_G{j}"] for j in (1, 2, 3)])
        bp = np.array([_chain_backprop(0.0, w, lambda t: 0.9)[1] for w in
                       np.column_stack([run["w2_1"], run["w3_2"]])])
        errors.append(np.abs(delta - bp).max() / np.abs(bp).max())
    fit = metrics.convergence_order(masses, errors)
    assert fit.order == pytest.approx(1.0, abs=0.1), fit
    check = check_convergence_delta(p, masses=masses, w0=W0)
    assert check.status == "pass", check.message
    # the check starts at the same masses (and may halve m_x further until its fitted
    # order is stable): its first errors are the ones computed here
    assert np.allclose(check.details["errors"][:len(masses)], errors, rtol=1e-6)
    assert np.allclose(check.details["parameters"][:len(masses)], masses)
    assert np.all(check.details["max_drift"] < 1e-8)


def test_toy_neural_constraint_simulated_multiplier():
    """design.md's toy x2 - tanh(w x1) = 0, loss (x2 - a)²/2, x1 clamped, no time weight.
    At t = 0 from rest the simulated λ equals the closed form
    m_W (a - x2)/(m_W + m_x x1² sech⁴(w x1)); along the run (nonzero velocities) λ tends
    to the output delta a - x2 at order 1 in m_x/m_W (expected: m_x multiplies every
    term of eq. 10 that is not the quasi-static one)."""
    x2, w = S.coordinates("x2 w")
    x1, a = S.parameters("x1 a")
    mx, mw = sp.symbols("m_x m_W", positive=True)
    p = Problem(Action([x2, w], masses={x2: mx, w: mw}, lagrangian=-(x2 - a) ** 2 / 2),
                [Constraint(x2 - sp.tanh(w * x1), name="N")], parameters=[x1, a, mx, mw])
    el = ca.euler_lagrange(p)
    system = compile_system(p)
    ratios = np.array([1e-1, 1e-2, 1e-3])
    errors = []
    for r in ratios:
        vals = {"x1": 0.7, "a": 1.0, "m_W": 1.0, "m_x": r}
        y0 = ca.complete_initial_conditions(el, vals | {"w": 0.4, "w_dot": 0.0}, free=[x2])
        run = simulate(system, np.linspace(0.0, 2.0, 41), y0, vals, rtol=1e-11, atol=1e-13)
        lam, xs = run["lambda_N"], run["x2"]
        closed = (1.0 - xs[0]) / (1.0 + r * 0.49 / np.cosh(0.28) ** 4)
        assert lam[0] == pytest.approx(closed, rel=1e-10)
        assert np.abs(run["w_dot"]).max() > 0.05  # the run really moves
        errors.append(np.abs(lam - (1.0 - xs)).max())
    fit = metrics.convergence_order(ratios, errors)
    assert fit.order == pytest.approx(1.0, abs=0.02), fit


def test_drift_rate_is_the_chain_rule_derivative_of_the_constraints():
    """max |Ġ| reported by the check against Ġ_j computed by hand from the simulated
    states: Ġ1 = ẋ1 (constant input), Ġ2 = ẋ2 - sech²(w21 x1)(ẇ21 x1 + w21 ẋ1), Ġ3
    likewise; a loose run fails a tight tolerance, a projected one passes."""
    p = _chain(varying=False)
    vals = {"theta": 1.0, "m_W": 1.0, "m_x": 1e-2}
    loose = simulate_learning(p, vals, W0, {"w2_1": 0.5, "w3_2": -0.2}, (0.0, 5.0),
                              rtol=1e-4, atol=1e-6)
    s = loose.states
    g1 = s["x1_dot"]
    g2 = s["x2_dot"] - (1 - np.tanh(s["w2_1"] * s["x1"]) ** 2) * (
        s["w2_1_dot"] * s["x1"] + s["w2_1"] * s["x1_dot"])
    g3 = s["x3_dot"] - (1 - np.tanh(s["w3_2"] * s["x2"]) ** 2) * (
        s["w3_2_dot"] * s["x2"] + s["w3_2"] * s["x2_dot"])
    by_hand = np.abs(np.column_stack([g1, g2, g3])).max()
    check = check_drift_rate(loose, tol=1e-10)
    assert check.status == "fail" and by_hand > 1e-9
    assert check.value == pytest.approx(by_hand, rel=1e-6)
    assert check.details["stabilization"] == "none"
    tight = simulate_learning(p, vals, W0, {"w2_1": 0.5, "w3_2": -0.2}, (0.0, 5.0),
                              rtol=1e-4, atol=1e-6, stabilization="projection")
    check = check_drift_rate(tight, tol=1e-10)
    assert check.status == "pass", check.message
    assert check.details["stabilization"] == "projection"
    learning = check_learning_drift(p, seed=1)
    assert learning.status == "pass" and learning.details["m_x"] == 1e-2


def test_bad_requests():
    with pytest.raises(DeclarationError, match="exp"):
        check_convergence_velocity(ca.chain(3).problem())
    with pytest.raises(DeclarationError, match="three"):
        check_convergence_velocity(_chain(), thetas=(10, 20))
    with pytest.raises(DeclarationError, match="three"):
        check_convergence_delta(_chain(), masses=(0.1, -0.05, 0.02))
    with pytest.raises(DeclarationError, match="start"):
        check_convergence_velocity(_chain(), start="middle")
    with pytest.raises(DeclarationError, match="t_skip"):
        check_convergence_velocity(_chain(), t_skip=5.0, t_end=3.0)
    with pytest.raises(DeclarationError, match="w3_2"):
        check_convergence_delta(_chain(), w0={"w2_1": 0.1})
    with pytest.raises(DeclarationError, match="2 weights"):
        simulate_learning(_chain(), {"theta": 1.0, "m_W": 1.0, "m_x": 0.1}, [0.1])
    with pytest.raises(DeclarationError):
        check_learning_drift("chain")


def test_layered_net_velocity_and_delta_orders():
    """A 2-2-1 layered net with a time-varying input: the same expected orders (1)."""
    p = ca.layered([2, 2, 1]).problem(
        weight=sp.exp(theta * S.t), parameters=[theta],
        inputs={1: 1.0, 2: -0.5 + 0.2 * sp.cos(S.t)}, targets={5: 0.6})
    vel = check_convergence_velocity(p, seed=3)
    assert vel.status == "pass", vel.message
    delta = check_convergence_delta(p, seed=3)
    assert delta.status == "pass", delta.message


@pytest.mark.slow
def test_verify_simulate_adds_the_velocity_delta_and_drift_rate_checks():
    p = _chain(varying=False)
    report = verify(p, simulate=True, initial=None)
    for name in ("convergence.theta.velocity", "convergence.delta", "drift.rate"):
        assert report[name].status == "pass", report[name].message
    assert "convergence.delta" not in {c.name for c in verify(p).checks}


def test_assert_simulated_limits():
    """Order 1 is measured (see above); demanding order 2 must fail and show the errors
    per parameter value."""
    from cognitive_action.verify import VerificationError, assert_simulated_limits

    p = _chain(varying=False)
    assert_simulated_limits(p, seed=2)
    with pytest.raises(VerificationError, match="error per parameter") as exc:
        assert_simulated_limits(p, seed=2, expected=2.0, order_tol=0.2)
    assert "convergence.delta" in str(exc.value) and "0.0125" in str(exc.value)


def test_gradient_function_equals_the_reference_gradients():
    """The built-once (t, W) function against the hand-written chain (time-varying
    input) and against reference.casadi_gradients / finite_differences on a layered net."""
    from cognitive_action.verify.convergence import gradient_function
    from cognitive_action.verify.reference import casadi_gradients, finite_differences

    grad = gradient_function(_chain())
    rng = np.random.default_rng(4)
    for t in (0.0, 0.7, 2.3):
        w = rng.normal(0, 0.8, 2)
        g, d = grad(t, w, delta=True)
        g_hand, d_hand = _chain_backprop(t, w)
        assert np.allclose(g, g_hand, rtol=1e-12, atol=1e-15)
        assert np.allclose(d, d_hand, rtol=1e-12, atol=1e-15)
    p = ca.layered([2, 3, 2]).problem(inputs={1: sp.cos(S.t), 2: 0.4}, targets={6: 0.1})
    grad = gradient_function(p, {"y7": -0.2})
    w = rng.normal(0, 0.8, 12)
    g, d = grad(0.9, w, delta=True)
    ref = casadi_gradients(p, w, {"t": 0.9, "y7": -0.2})
    assert np.allclose(g, ref.grad_w, rtol=1e-12) and np.allclose(d, ref.delta, rtol=1e-12)
    fd_w, fd_d = finite_differences(p, w, {"t": 0.9, "y7": -0.2}, weights=range(12),
                                    neurons=range(7))
    assert np.allclose(g, fd_w, rtol=1e-6, atol=1e-9)
    assert np.allclose(d, fd_d, rtol=1e-6, atol=1e-9)
    with pytest.raises(DeclarationError, match="y7"):
        gradient_function(p)
