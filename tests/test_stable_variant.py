"""Stable variants of the anti-stable multiplier dynamics of eq. (20)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.compile import compile_system, simulate, stable_variant
from cognitive_action.declare import symbols as S
from cognitive_action.derive import complete_initial_conditions
from cognitive_action.errors import CompileError, UnstableSystemError
from cognitive_action.problem_files.loader import load_problem
from cognitive_action.verify.reference import casadi_gradients
from cognitive_action.workflow import derive_spec, initial_state

c, = S.parameters("c")


def _chain(m_w: float, speed: float, u: float = 0.7):
    net = ca.chain(3, speed=c)
    problem = net.problem(inputs={1: u}, targets={3: 0.5}, parameters=[c])
    el = ca.euler_lagrange(problem)
    values = {"c": speed, "m_x": 1e-4, "m_W": m_w}
    given = values | {"w2_1": 0.8, "w3_2": -1.1, "w2_1_dot": 0.0, "w3_2_dot": 0.0,
                      "mu_G2": 0.0, "mu_G3": 0.0}
    y0 = complete_initial_conditions(el, given, free=[S.symbol(n) for n in ("x1", "x2", "x3")])
    return net, problem, el, values, y0


def test_relaxation_turns_plus_c_into_minus_c():
    """At m_x -> 0 the multiplier block linearizes to +c(I - (sigma'W)^T) forward (every
    eigenvalue +c for a feedforward chain, design notes); the relaxation must give -c."""
    _net, _p, el, values, y0 = _chain(m_w=1.0, speed=10.0)
    system = compile_system(el)
    y = system.state_vector(y0)
    mu = [system.states.index(m) for m in system.multiplier_states]
    jf = system.jacobian(0.0, y, values)[np.ix_(mu, mu)]
    relaxed = stable_variant(system, check_at=(0.0, y, values))
    jr = relaxed.jacobian(0.0, y, values)[np.ix_(mu, mu)]
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(jf).real), [10.0, 10.0], rtol=1e-3)
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(jr).real), [-10.0, -10.0], rtol=1e-3)
    assert relaxed.variant == "relaxation" and "relaxation" in relaxed.name


def test_relaxation_settles_on_the_backprop_delta():
    """Nearly frozen weights (m_W large), fast neurons: after t >> 1/c the relaxed
    multipliers equal the backprop deltas of the current state, by CasADi AD of the loss
    through the forward pass (independent of the derivation). The remaining error is
    O(theta/c + m_x) with theta = 0 here."""
    net, problem, el, values, y0 = _chain(m_w=1e8, speed=50.0)
    run = simulate(stable_variant(compile_system(el)), (0.0, 2.0), y0, values, n_points=21,
                   rtol=1e-10, atol=1e-12)
    w = np.array([run["w2_1"][-1], run["w3_2"][-1]])
    ref = casadi_gradients(problem, w, {"e1": 0.7, "y3": 0.5})
    order = [str(x) for x in net.neurons]
    got = np.array([run["mu_G2"][-1], run["mu_G3"][-1]])
    want = ref.delta[[order.index("x2"), order.index("x3")]]
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-6)


def test_forward_run_refused_and_relaxation_runs():
    _net, _p, el, values, y0 = _chain(m_w=1.0, speed=20.0)
    system = compile_system(el)
    with pytest.raises(UnstableSystemError, match="stable_variant"):
        simulate(system, (0.0, 5.0), y0, values)
    run = simulate(stable_variant(system), (0.0, 5.0), y0, values, n_points=51)
    assert np.all(np.isfinite(run.y)) and np.abs(run.y).max() < 100  # forward: e^100


def test_shipped_rate_network_runs_relaxed_with_small_drift():
    spec = load_problem("rate_network")
    el = derive_spec(spec)
    y0 = initial_state(spec, el)
    run = simulate(stable_variant(compile_system(el)), (0.0, 10.0), y0, spec.values,
                   n_points=101, stabilization="projection")
    assert run.max_drift < 1e-9
    assert np.abs(run.y).max() < 10


def test_flip_that_does_not_stabilize_is_reported():
    """A 2-cycle with strong mutual weights: I - (sigma'W)^T has eigenvalues 1 +- 3 sigma',
    of both signs, so no sign flip of the rate makes the multipliers stable."""
    g = nx.DiGraph([(1, 2), (2, 3), (3, 2)])
    net = ca.Network(g, [1], "tanh", speed=c, outputs=[3])
    problem = net.problem(inputs={1: 0.0}, targets={3: 0.0}, parameters=[c])
    el = ca.euler_lagrange(problem)
    values = {"c": 10.0, "m_x": 1e-4, "m_W": 1.0}
    given = values | {"w2_1": 1.0, "w2_3": 3.0, "w3_2": 3.0, "x2": 0.0, "x3": 0.0,
                      "mu_G2": 0.0, "mu_G3": 0.0} | {
        f"{n}_dot": 0.0 for n in ("w2_1", "w2_3", "w3_2")}
    y0 = complete_initial_conditions(el, given, free=[S.symbol("x1")])
    system = compile_system(el)
    with pytest.raises(UnstableSystemError, match="both signs"):
        stable_variant(system, check_at=(0.0, system.state_vector(y0), values))


def test_bad_variant_requests():
    spec = load_problem("pendulum")
    with pytest.raises(CompileError, match="no multiplier states"):
        stable_variant(compile_system(derive_spec(spec)))
    _net, _p, el, _v, _y0 = _chain(m_w=1.0, speed=10.0)
    with pytest.raises(CompileError, match="unknown variant"):
        stable_variant(compile_system(el), "adjoint")


_ = sp  # sympy imported for users reading the test as an example
