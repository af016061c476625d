"""Compiled right-hand sides against independent references.

The reference at a point is the mass-matrix form ``mass_matrix · unknowns = forcing``
solved by SymPy in 30-digit arithmetic (no CasADi involved), plus closed forms from
design.md (the pendulum's multiplier) and the engine's NumPy evaluation of eq. (10)
(``NetworkSystem.evaluate``) for networks. Both compilation routes (generic SX graph with
a linear-solve node, MX network graph from per-neuron templates) are checked on the
pendulum, the XOR net, random DAGs, a vakonomic chain and the knife edge; compiled and
symbolic agree to 1e-12 (relative to the magnitude of the values).
"""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca_
from cognitive_action.compile import compile_system
from cognitive_action.declare import symbols as S
from cognitive_action.declare.activations import Activation
from cognitive_action.declare.problem import Action, Constraint, Problem
from cognitive_action.derive.network import NetworkState
from cognitive_action.errors import CompileError, TranslationError

DIGITS = 30
TOL = 1e-12


# -- references ------------------------------------------------------------------------------
def _symbolic_solution(el, point: dict[str, float], signals: dict[str, sp.Expr] | None = None):
    """Unknowns of the mass-matrix form at a point, solved by SymPy at 30 digits."""
    values: dict[sp.Symbol, sp.Expr] = {}
    t_val = sp.Float(point["t"], DIGITS)
    for s in el.problem.signals:
        e = (signals or {}).get(str(s))
        for k in range(S.MAX_ORDER + 1):
            name = str(S.dot(s, k))
            if e is None:
                v = sp.Float(point[str(s)], DIGITS) if k == 0 else sp.S.Zero
            else:
                v = sp.diff(e, S.t, k).subs(S.t, t_val).evalf(DIGITS)
            values[sp.Symbol(name, real=True)] = v
    M = el.mass_matrix.to_matrix()
    f = sp.Matrix(el.forcing)
    syms = M.free_symbols | f.free_symbols
    for s in syms:
        if s not in values:
            values[s] = sp.Float(point[str(s)], DIGITS)
    M = M.xreplace(values).evalf(DIGITS)
    f = f.xreplace(values).evalf(DIGITS)
    assert not M.free_symbols and not f.free_symbols
    sol = M.LUsolve(f)
    return {str(u): float(v) for u, v in zip(el.unknowns, sol)}


def _random_point(system, rng, params: dict[str, float], scale: float = 0.8) -> dict:
    point = {s: float(rng.uniform(-scale, scale)) for s in system.states}
    point |= params | {"t": float(rng.uniform(0, 2))}
    return point


def _compare(system, el, point, signals=None) -> None:
    ref = _symbolic_solution(el, point, signals)
    params = {k: point[k] for k in system.parameters}
    got = system.evaluate_unknowns(point["t"], point, params)
    assert set(got) == set(ref)
    scale = max(1.0, max(abs(v) for v in ref.values()))
    for k, v in ref.items():
        assert abs(got[k] - v) <= TOL * scale, (k, got[k], v)
    ydot = system.evaluate(point["t"], point, params)
    expected = [point[v] for v in system.velocities]
    expected += [ref[c + "_ddot"] for c in system.coordinates]
    expected += [ref[m + "_dot"] for m in system.multiplier_states]
    np.testing.assert_allclose(ydot, expected, rtol=0, atol=TOL * scale)


def pendulum(weight=1, extra=()):
    q1, q2 = S.coordinates("q1 q2")
    m, g, L = S.parameters("m g L")
    return Problem(Action([q1, q2], masses=m, weight=weight, lagrangian=weight * m * g * q1),
                   [Constraint(q1**2 + q2**2 - L**2, name="rod")],
                   parameters=[m, g, L, *extra], name="pendulum")


def random_dag(seed: int, n: int = 7, n_in: int = 2) -> ca_.Network:
    rng = np.random.default_rng(seed)
    g = nx.DiGraph()
    g.add_nodes_from(range(1, n + 1))
    for j in range(n_in + 1, n + 1):
        preds = [k for k in range(1, j) if rng.random() < 0.5] or [int(rng.integers(1, j))]
        g.add_edges_from((k, j) for k in preds)
    act = ["tanh", "logistic", "softplus"][seed % 3]
    return ca_.Network(g, list(range(1, n_in + 1)), act)


# -- the pendulum ------------------------------------------------------------------------------
def test_pendulum_matches_symbolic_and_closed_form():
    p = pendulum()
    el = ca_.euler_lagrange(p)
    system = compile_system(el)
    assert system.route == "generic" and system.states == ("q1", "q2", "q1_dot", "q2_dot")
    rng = np.random.default_rng(0)
    for _ in range(10):
        pt = _random_point(system, rng, {"m": rng.uniform(0.5, 2), "g": 9.81,
                                         "L": rng.uniform(0.5, 2)})
        _compare(system, el, pt)
        # design.md: λ = (2 g q1 + 2 q̇1² + 2 q̇2²) / (4 q1²/m + 4 q2²/m)
        lam = system.evaluate_unknowns(pt["t"], pt, {k: pt[k] for k in ("m", "g", "L")})
        closed = (2 * pt["g"] * pt["q1"] + 2 * pt["q1_dot"] ** 2 + 2 * pt["q2_dot"] ** 2) / (
            4 * pt["q1"] ** 2 / pt["m"] + 4 * pt["q2"] ** 2 / pt["m"])
        assert lam["lambda_rod"] == pytest.approx(closed, rel=1e-12)


def test_weighted_pendulum_has_no_growing_coefficients():
    theta = sp.Symbol("theta", real=True)
    p = pendulum(sp.exp(theta * S.t), extra=[theta])
    el = ca_.euler_lagrange(p)
    system = compile_system(el)
    assert system.unknown_names[-1] == "delta_rod"
    rng = np.random.default_rng(1)
    pt = _random_point(system, rng, {"m": 1.3, "g": 9.81, "L": 1.1, "theta": 2.0})
    _compare(system, el, pt)
    params = {k: pt[k] for k in system.parameters}
    # an autonomous system once ϖ is divided out: the same at t = 0 and t = 500 (where
    # e^{θ t} overflows a double)
    a = system.evaluate(0.0, pt, params)
    b = system.evaluate(500.0, pt, params)
    np.testing.assert_array_equal(a, b)


# -- networks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["generic", "network"])
def test_xor_matches_symbolic(route):
    pr = ca_.xor().problem()
    el = ca_.euler_lagrange(pr)
    system = compile_system(pr, route=route)
    assert system.route == route
    assert system.parameters == ("m_W", "m_x", "e1", "e2", "y5")
    rng = np.random.default_rng(2)
    for _ in range(3):
        pt = _random_point(system, rng, {"m_x": rng.uniform(0.3, 2), "m_W": rng.uniform(0.3, 2),
                                         "e1": 0.4, "e2": -0.7, "y5": 0.5})
        _compare(system, el, pt)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_dag_both_routes(seed):
    net = random_dag(seed)
    theta = sp.Symbol("theta", real=True)
    w = sp.exp(theta * S.t)
    inputs = {1: sp.sin(2 * S.t), 2: sp.cos(S.t) / 2}
    pr = net.problem(weight=w, inputs=inputs, parameters=[theta])
    el = ca_.euler_lagrange(pr)
    ns = ca_.derive_network(pr)
    gen = compile_system(el)
    netw = compile_system(ns)
    assert gen.states == netw.states and gen.parameters == netw.parameters
    rng = np.random.default_rng(10 + seed)
    targets = {str(y): 0.3 for y in pr.signals}
    for _ in range(3):
        pt = _random_point(gen, rng, {"m_x": rng.uniform(0.3, 2), "m_W": rng.uniform(0.3, 2),
                                      "theta": rng.uniform(0, 2)} | targets)
        _compare(gen, el, pt)
        _compare(netw, el, pt)
        # the engine's NumPy evaluation of eq. (10) agrees too
        nu, ne = len(net.neurons), len(net.weights)
        y = gen.state_vector(pt)
        state = NetworkState(x=y[:nu], w=y[nu:nu + ne], x_dot=y[nu + ne:2 * nu + ne],
                             w_dot=y[2 * nu + ne:], t=pt["t"])
        vals = {k: pt[k] for k in ("m_x", "m_W", "theta")} | targets
        vals |= {"e1_ddot": float(-4 * np.sin(2 * pt["t"])),
                 "e2_ddot": float(-np.cos(pt["t"]) / 2)}
        ev = ns.evaluate(state, vals)
        u = netw.evaluate_unknowns(pt["t"], pt, {k: pt[k] for k in netw.parameters})
        np.testing.assert_allclose([u[str(m)] for m in ns.multipliers], ev.multipliers,
                                   rtol=1e-11, atol=1e-11)


def test_signals_given_as_expressions_of_time():
    net = ca_.chain(3)
    pr = net.problem()
    el = ca_.euler_lagrange(pr)
    sig = {"e1": sp.sin(3 * S.t) + 1, "y3": sp.Rational(1, 2)}
    system = compile_system(el, signals=sig)
    assert system.parameters == ("m_W", "m_x")
    assert system.signals["e1"] == "sin(3*t) + 1"
    rng = np.random.default_rng(3)
    pt = _random_point(system, rng, {"m_x": 0.7, "m_W": 1.9})
    _compare(system, el, pt, signals=sig)


@pytest.mark.parametrize("route, expected", [("auto", "network_speed"),
                                             ("generic", "generic")])
def test_vakonomic_chain_matches_symbolic(route, expected):
    c = sp.Symbol("c", positive=True)
    pr = ca_.chain(3, speed=c).problem(targets={3: 0.5})
    el = ca_.euler_lagrange(pr)
    system = compile_system(pr, route=route)
    assert system.route == expected and system.vakonomic
    assert system.multiplier_states == ("mu_G2", "mu_G3")
    rng = np.random.default_rng(4)
    for _ in range(3):
        pt = _random_point(system, rng, {"m_x": 0.8, "m_W": 1.4, "c": 5.0, "e1": 0.3})
        _compare(system, el, pt)


def test_knife_edge_dalembert_matches_symbolic():
    x, y, phi = S.coordinates("x y phi")
    m, Iz = S.parameters("m I_z")
    p = Problem(Action([x, y, phi], masses=[m, m, Iz]),
                [Constraint(sp.cos(phi) * S.dot(y) - sp.sin(phi) * S.dot(x), name="blade")],
                parameters=[m, Iz], nonholonomic="dalembert")
    el = ca_.euler_lagrange(p)
    system = compile_system(el)
    assert not system.vakonomic and system.n_states == 6
    rng = np.random.default_rng(5)
    pt = _random_point(system, rng, {"m": 1.5, "I_z": 0.4})
    _compare(system, el, pt)


# -- stabilization terms and projection --------------------------------------------------------
def test_baumgarte_rows_enforce_the_stabilized_constraint():
    p = pendulum()
    el = ca_.euler_lagrange(p)
    system = compile_system(el)
    rng = np.random.default_rng(6)
    pt = _random_point(system, rng, {"m": 1.0, "g": 9.81, "L": 1.0})  # off the manifold
    alpha, beta = 3.0, 4.0
    pv = system.parameter_vector({k: pt[k] for k in system.parameters},
                                 baumgarte=(alpha, beta))
    u = system.unknowns(pt["t"], system.state_vector(pt), pv).full().ravel()
    q1, q2, v1, v2 = (pt[s] for s in system.states)
    G = q1**2 + q2**2 - 1.0
    Gd = 2 * q1 * v1 + 2 * q2 * v2
    Gdd = 2 * (v1**2 + v2**2) + 2 * q1 * u[0] + 2 * q2 * u[1]
    assert Gdd + 2 * alpha * Gd + beta**2 * G == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("which", ["pendulum", "xor-network", "xor-generic", "knife"])
def test_projection_lands_on_the_constraints(which):
    rng = np.random.default_rng(7)
    if which == "pendulum":
        system = compile_system(pendulum())
        params = {"m": 1.0, "g": 9.81, "L": 1.3}
        y = np.array([1.2, 0.3, 0.4, -0.2])
    elif which == "knife":
        x, yy, phi = S.coordinates("x y phi")
        m, Iz = S.parameters("m I_z")
        p = Problem(Action([x, yy, phi], masses=[m, m, Iz]),
                    [Constraint(sp.cos(phi) * S.dot(yy) - sp.sin(phi) * S.dot(x), name="b")],
                    parameters=[m, Iz], nonholonomic="dalembert")
        system = compile_system(p)
        params = {"m": 1.0, "I_z": 1.0}
        y = rng.normal(size=6)
    else:
        system = compile_system(ca_.xor().problem(), route=which.split("-")[1])
        params = {"m_x": 1.0, "m_W": 1.0, "e1": 0.5, "e2": -0.5, "y5": 0.0}
        y = rng.normal(size=system.n_states) * 0.3
    pv = system.parameter_vector(params)
    yp = np.asarray(system.projection(0.3, y, pv).full()).ravel()
    g, gd = system.evaluate_constraints(0.3, yp, pv)
    assert np.max(np.abs(g)) < 1e-12 and np.max(np.abs(gd)) < 1e-12
    g0, gd0 = system.evaluate_constraints(0.3, y, pv)
    assert max(np.max(np.abs(g0)), np.max(np.abs(gd0))) > 1e-2  # it did move


# -- building large networks -----------------------------------------------------------------
def dense_network(n: int, n_in: int = 2) -> ca_.Network:
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((k, j) for j in range(n_in, n) for k in range(n))
    return ca_.Network(g, list(range(n_in)), "tanh", outputs=[n - 1])


def _build_time(n: int) -> tuple[float, object]:
    theta = sp.Symbol("theta", real=True)
    pr = dense_network(n).problem(weight=sp.exp(theta * S.t))
    ns = ca_.derive_network(pr)
    t0 = time.perf_counter()
    system = compile_system(ns)
    return time.perf_counter() - t0, system


def test_dense_network_builds_on_the_network_route():
    """Build time is measured in benchmarks/bench_compile.py, not asserted here."""
    _elapsed, system = _build_time(60)
    assert system.route == "network" and system.n_states == 2 * (60 + 58 * 60)
    ydot = system.evaluate(0.0, np.full(system.n_states, 0.1),
                           {k: 1.0 for k in system.parameters})
    assert np.all(np.isfinite(ydot))


@pytest.mark.slow
def test_dense_200_neuron_network_builds():
    _elapsed, system = _build_time(200)
    assert system.n_states == 2 * (200 + 198 * 200)


# -- bad input ---------------------------------------------------------------------------------
def test_bad_parameters_and_states():
    system = compile_system(pendulum())
    y = [1.0, 0.0, 0.0, 0.0]
    with pytest.raises(CompileError, match="no value given for the parameter.*L"):
        system.evaluate(0.0, y, {"m": 1.0, "g": 9.81})
    with pytest.raises(CompileError, match="did you mean 'g'"):
        system.evaluate(0.0, y, {"m": 1.0, "gg": 9.81, "L": 1.0})
    with pytest.raises(CompileError, match="length 3.*4 states"):
        system.evaluate(0.0, y[:3], {"m": 1.0, "g": 9.81, "L": 1.0})
    with pytest.raises(CompileError, match="q2_dot"):
        system.state_vector({"q1": 1.0, "q2": 0.0, "q1_dot": 0.0})
    with pytest.raises(CompileError, match="non-finite"):
        system.state_vector([1.0, np.nan, 0.0, 0.0])
    with pytest.raises(CompileError, match="not states"):
        system.state_vector({"q1": 1.0, "q2": 0.0, "q1_dot": 0.0, "q2_dot": 0, "qq": 1},
                            strict=True)


def test_unsupported_function_in_a_problem():
    x, = S.coordinates("x")
    m, = S.parameters("m")
    p = Problem(Action([x], masses=m, lagrangian=sp.besselj(0, x)), parameters=[m])
    with pytest.raises(TranslationError, match="besselj"):
        compile_system(p)
    act = Activation("weird", lambda a: sp.tanh(a) + sp.besselj(0, a) / 10)
    net = ca_.chain(2, act)
    with pytest.raises(TranslationError, match="besselj"):
        compile_system(net.problem())


def test_bad_signals_routes_and_solvers():
    pr = ca_.chain(2).problem()
    with pytest.raises(CompileError, match="e3 is not a signal.*did you mean"):
        compile_system(pr, signals={"e3": S.t})
    with pytest.raises(CompileError, match="uses z"):
        compile_system(pr, signals={"e1": sp.Symbol("z") * S.t})
    with pytest.raises(CompileError, match="string"):
        compile_system(pr, signals={"e1": "sin(t)"})
    with pytest.raises(CompileError, match="route"):
        compile_system(pr, route="fast")
    with pytest.raises(CompileError, match="saddle-point"):
        compile_system(pr, route="generic", linear_solver="ldl")
    with pytest.raises(CompileError, match="unknown linear solver"):
        compile_system(pr, linear_solver="magic")
    with pytest.raises(CompileError, match="cannot compile"):
        compile_system("pendulum")
