"""The template route for speed-c networks (eq. 18-20) against independent references:
the generic route (every entry derived by the engine and translated), closed forms of
the multiplier block of eq. (20), and backprop deltas by CasADi AD of the loss."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import sympy as sp

import cognitive_action as cam
from cognitive_action.compile import compile_system, simulate, stable_variant
from cognitive_action.compile.network_speed import compile_speed_network
from cognitive_action.declare import symbols as S
from cognitive_action.declare.problem import Constraint, Problem
from cognitive_action.derive.network_speed import (
    derive_speed_network,
    is_speed_network_problem,
)
from cognitive_action.errors import CompileError, DerivationError
from cognitive_action.verify.reference import casadi_gradients

c, theta = S.parameters("c theta")
RNG = np.random.default_rng(20200614)


def _xor():
    return cam.Network(cam.xor().graph, [1, 2], "tanh", speed=c)


def _recurrent():
    g = nx.DiGraph([(1, 3), (2, 3), (3, 4), (4, 3), (4, 4), (3, 5), (4, 5), (5, 3)])
    return cam.Network(g, [1, 2], "tanh", speed=c, outputs=[5])


NETS = {
    "chain3": lambda: cam.chain(3, speed=c),
    "xor": _xor,
    "layered232": lambda: cam.layered([2, 3, 2], speed=c),
    "recurrent": _recurrent,
    "logistic_c4": lambda: cam.layered([2, 2, 1], "logistic", speed=4),
    "identity": lambda: cam.chain(3, "identity", speed=c),
}


def _problem(key: str, loss: bool, weighted: bool) -> Problem:
    net = NETS[key]()
    kw: dict = {"parameters": [c]}
    if weighted:
        kw = {"parameters": [c, theta], "weight": sp.exp(theta * S.t)}
    if not loss:
        kw["loss"] = sp.S.Zero
    return net.problem(**kw)


def _outputs(system, fn: str, t0: float, y, p):
    out = getattr(system, fn)(t0, y, p)
    outs = out if isinstance(out, tuple) else (out,)
    return [np.asarray(v).ravel() for v in outs]


@pytest.mark.parametrize("key", sorted(NETS))
@pytest.mark.parametrize("loss,weighted", [(True, True), (False, False), (True, False)])
def test_rhs_equals_the_generic_route(key, loss, weighted):
    """ẏ, the unknowns (q̈, δ, μ̇), the constraints and the IDAS residual of the template
    route equal those of the generic route at random states, parameters and gains."""
    problem = _problem(key, loss, weighted)
    signals = {"e1": sp.sin(2 * S.t)} if key in ("layered232", "recurrent") else None
    ours = compile_speed_network(problem, signals=signals)
    ref = compile_system(problem, route="generic", signals=signals)
    assert ours.route == "network_speed" and ref.route == "generic"
    for attr in ("states", "coordinates", "velocities", "multiplier_states", "parameters",
                 "unknown_names", "constraint_names", "constraint_kinds", "vakonomic"):
        assert getattr(ours, attr) == getattr(ref, attr), attr
    assert ours.dae["z_names"] == ref.dae["z_names"]
    for _ in range(3):
        y = RNG.normal(size=ours.n_states)
        p = np.r_[RNG.uniform(0.5, 3.0, len(ours.parameters)), RNG.uniform(0.0, 2.0, 2)]
        tt = float(RNG.uniform(0, 2))
        for fn in ("rhs", "unknowns", "constraints"):
            for a, b in zip(_outputs(ours, fn, tt, y, p), _outputs(ref, fn, tt, y, p)):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
        z = RNG.normal(size=len(ours.unknown_names))
        for a, b in zip(ours.dae["function"](tt, y, z, p), ref.dae["function"](tt, y, z, p)):
            a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())


def _sigma_prime_block(system, y, net) -> np.ndarray:
    """``(σ'(a) ∘ W)`` over the non-input neurons, by hand from the state (tanh)."""
    order = list(net.order)
    n = len(order)
    x = y[:n]
    W = np.zeros((n, n))
    for (j, k), w in net.w.items():
        W[order.index(j), order.index(k)] = y[system.states.index(str(w))]
    sp_ = 1 - np.tanh(W @ x) ** 2
    hidden = [i for i, j in enumerate(order) if j not in net.inputs]
    return (sp_[:, None] * W)[np.ix_(hidden, hidden)]


@pytest.mark.parametrize("key", ["chain3", "layered232", "recurrent"])
def test_multiplier_block_is_c_times_T_minus_theta(key):
    """Eq. (20): ``c⁻¹(μ̇ + θμ) = (I − (σ'W)ᵀ) μ + …``, so ``∂μ̇/∂μ = c T − θ I`` at any
    state: every eigenvalue ``c − θ`` for a feedforward net (design notes: anti-stable);
    the relaxation variant gives the opposite block."""
    net = NETS[key]()
    problem = net.problem(parameters=[c, theta], weight=sp.exp(theta * S.t))
    system = compile_speed_network(problem)
    values = {"c": 7.0, "theta": 0.4, "m_x": 0.3, "m_W": 2.0} | {
        n: 0.2 for n in system.parameters if n not in ("c", "theta", "m_x", "m_W")}
    y = RNG.normal(size=system.n_states) * 0.5
    mu = [system.states.index(m) for m in system.multiplier_states]
    block = system.jacobian(0.0, y, values)[np.ix_(mu, mu)]
    T = np.eye(len(mu)) - _sigma_prime_block(system, y, net).T
    np.testing.assert_allclose(block, 7.0 * T - 0.4 * np.eye(len(mu)), atol=1e-11)
    if net.is_feedforward:
        np.testing.assert_allclose(np.linalg.eigvals(block), 6.6, atol=1e-9)
    relaxed = stable_variant(system, "relaxation")
    block_r = relaxed.jacobian(0.0, y, values)[np.ix_(mu, mu)]
    np.testing.assert_allclose(block_r, -block, atol=1e-12)
    if net.is_feedforward:
        np.testing.assert_allclose(np.linalg.eigvals(block_r), -6.6, atol=1e-9)


def _rest_state(system, net, w: np.ndarray, e: dict) -> np.ndarray:
    """Neurons at their forward-pass values (N = 0 with ẋ = 0), weights at rest, μ = 0;
    the forward pass written by hand (tanh), independent of the route."""
    x = {}
    for j in net.order:
        if j in net.inputs:
            x[j] = e[f"e{j}"]
        else:
            x[j] = np.tanh(sum(w[list(net.w).index((j, k))] * x[k]
                               for k in net.graph.predecessors(j)))
    vals = {str(net.x[j]): x[j] for j in net.order}
    vals |= {str(s): float(v) for s, v in zip(net.weights, w)}
    return np.array([vals.get(s, 0.0) for s in system.states])


@pytest.mark.parametrize("options", [{}, {"method": "idas"},
                                     {"stabilization": "projection"}],
                         ids=["cvodes", "idas", "projection"])
def test_relaxed_simulation_equals_the_generic_route(options):
    """Relaxed runs (compile.stable_variant) of both routes agree: through the right-hand
    side (CVODES), the IDAS residual, and with the projection onto N = 0, G = 0."""
    net = cam.layered([2, 2, 1], speed=c)
    problem = net.problem(parameters=[c, theta], weight=sp.exp(theta * S.t))
    values = {"c": 5.0, "theta": 0.3, "m_x": 0.5, "m_W": 1.5, "e1": 0.6, "e2": -0.4,
              "y5": 0.25}
    w = RNG.normal(size=len(net.weights))
    runs = []
    for system in (compile_speed_network(problem),
                   compile_system(problem, route="generic")):
        y0 = _rest_state(system, net, w, values)
        runs.append(simulate(stable_variant(system), (0.0, 1.5), y0, values, n_points=16,
                             rtol=1e-11, atol=1e-12, **options))
    ours, ref = runs
    np.testing.assert_allclose(ours.y, ref.y, rtol=1e-8, atol=1e-9)
    assert np.abs(ours.y).max() > 0.1  # something moved: the comparison is not vacuous
    assert ours.max_drift < 1e-7


def _settle_on_backprop(sizes: list[int], t_end: float) -> None:
    """Nearly frozen weights (m_W large), ϖ = 1: after t >> 1/c the relaxed multipliers
    equal the backprop deltas of the current state (CasADi AD of the loss through a
    forward pass, verify.reference.casadi_gradients)."""
    net = cam.layered(sizes, speed=c)
    problem = net.problem(parameters=[c])
    values = {"c": 40.0, "m_x": 1e-3, "m_W": 1e8} | {f"e{i}": v for i, v in
                                                       zip(net.inputs, (0.7, -0.5, 0.3))}
    values |= {f"y{o}": 0.4 for o in net.outputs}
    system = stable_variant(compile_speed_network(problem))
    w = RNG.normal(size=len(net.weights)) / np.sqrt(max(sizes))
    y0 = _rest_state(system, net, w, values)
    run = simulate(system, (0.0, t_end), y0, values, n_points=3, rtol=1e-9, atol=1e-11)
    w_end = np.array([run[str(s)][-1] for s in net.weights])
    ref = casadi_gradients(problem, w_end, {k: v for k, v in values.items()
                                            if k[0] in "ey"})
    order = [str(x) for x in net.neurons]
    got = np.array([run[m][-1] for m in system.multiplier_states])
    want = ref.delta[[order.index("x" + m.split("_G", 1)[1])
                      for m in system.multiplier_states]]
    assert np.abs(want).max() > 1e-3
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


def test_relaxed_multipliers_settle_on_backprop_deltas_small():
    _settle_on_backprop([2, 4, 3, 1], t_end=1.5)


def test_relaxed_multipliers_settle_on_backprop_deltas_large():
    _settle_on_backprop([2, 20, 20, 1], t_end=1.5)


def _dense(n: int, n_in: int = 2):
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((k, j) for j in range(n_in, n) for k in range(n))
    return cam.Network(g, list(range(n_in)), "tanh", speed=c, outputs=[n - 1])


def _numpy_rhs(net, y: np.ndarray, v: dict, t0: float) -> np.ndarray:
    """Eq. (8)-(9), (19)-(20) of a tanh network with constant inputs, squared error on the
    outputs and ``ϖ = exp(θ t)``, written by hand with dense NumPy arrays:

    ``ẍ_h = c(σ'(a) ȧ − ẋ)_h`` (Ṅ = 0), ``ẍ_i = 0``,
    ``m_W Ẅ = −m_W θ Ẇ + (σ' ∘ ν) xᵀ`` on the arcs,
    ``f_x = −m_x θ ẋ − V_x − ν + Wᵀ(σ' ∘ ν) + (θ/c) ν``, ``ν̇_h = c (m_x ẍ − f_x)_h``.
    """
    n, order = len(net.order), list(net.order)
    arcs = [(order.index(j), order.index(k)) for (j, k) in net.w]
    ne = len(arcs)
    rows, cols = np.array(arcs).T
    x, w = y[:n], y[n:n + ne]
    xd, wd = y[n + ne:2 * n + ne], y[2 * n + ne:2 * (n + ne)]
    hidden = [i for i, j in enumerate(order) if j not in net.inputs]
    nu = np.zeros(n)
    nu[hidden] = y[2 * (n + ne):]
    W, Wd = np.zeros((n, n)), np.zeros((n, n))
    W[rows, cols], Wd[rows, cols] = w, wd
    c_, th, mx, mw = v["c"], v["theta"], v["m_x"], v["m_W"]
    a = W @ x
    sp_ = 1 - np.tanh(a) ** 2
    xdd = c_ * (sp_ * (Wd @ x + W @ xd) - xd)
    xdd[[order.index(i) for i in net.inputs]] = 0.0
    V_x = np.zeros(n)
    for o in net.outputs:
        V_x[order.index(o)] = x[order.index(o)] - v[f"y{o}"]
    f_x = -mx * th * xd - V_x - nu + W.T @ (sp_ * nu) + th / c_ * nu
    wdd = (-mw * th * wd + (sp_ * nu)[rows] * x[cols]) / mw
    nudot = c_ * (mx * xdd - f_x)[hidden]
    return np.concatenate([xd, wd, xdd, wdd, nudot])


def _check_against_numpy(n: int) -> None:
    net = _dense(n)
    problem = net.problem(parameters=[c, theta], weight=sp.exp(theta * S.t))
    system = compile_speed_network(problem)
    values = {"c": 6.0, "theta": 0.7, "m_x": 0.4, "m_W": 1.7, "e0": 0.3, "e1": -0.8,
              f"y{n - 1}": 0.2}
    y = RNG.normal(size=system.n_states) / np.sqrt(n)
    got = system.evaluate(0.4, y, values)
    want = _numpy_rhs(net, y, values, 0.4)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11 * np.abs(want).max())


def test_dense_recurrent_rhs_equals_a_numpy_rhs():
    _check_against_numpy(12)


@pytest.mark.slow
def test_dense_200_neurons_rhs_equals_a_numpy_rhs():
    """The scale the route is for (39,600 weights), against the hand-written RHS."""
    _check_against_numpy(200)


def test_graph_size_does_not_grow_with_the_arcs():
    """No per-entry expansion: the right-hand side of a dense recurrent net has the same
    number of MX instructions at 8 and at 24 neurons (7x the weights)."""
    sizes = []
    for n in (8, 24):
        system = compile_speed_network(_dense(n).problem(parameters=[c]))
        sizes.append(system.rhs.n_instructions())
    assert sizes[0] == sizes[1]


# -- bad input -----------------------------------------------------------------------------
def test_predicate():
    assert is_speed_network_problem(cam.chain(3, speed=c).problem(parameters=[c]))
    assert not is_speed_network_problem(cam.chain(3).problem())
    p = cam.chain(3, speed=c).problem(parameters=[c])
    dalembert = Problem(p.action, p.constraints, signals=p.signals, parameters=p.parameters,
                        nonholonomic="dalembert", network=p.network)
    assert not is_speed_network_problem(dalembert)


def _modified(constraints, base: Problem, **kw) -> Problem:
    return Problem(base.action, constraints, signals=base.signals,
                   parameters=base.parameters, network=base.network, **kw)


def test_added_constraint_is_refused_and_the_generic_route_compiles_it():
    base = cam.chain(3, speed=c).problem(parameters=[c])
    x2, x3 = base.coordinates[1:3]
    extra = Constraint(x2 + x3 - 1, name="budget")
    problem = _modified(base.constraints + (extra,), base)
    with pytest.raises(DerivationError, match="budget.*not made by the network") as info:
        compile_speed_network(problem)
    assert "route='generic'" in info.value.fix
    generic = compile_system(problem, route="generic")
    assert "budget" in generic.constraint_names


def test_changed_neuron_constraint_is_refused():
    base = cam.chain(3, speed=c).problem(parameters=[c])
    x1, x2 = base.coordinates[:2]
    w21 = base.coordinates[3]
    changed = Constraint(S.dot(x2) / c + x2 - sp.tanh(2 * w21 * x1), name="G2")
    problem = _modified((base.constraints[0], changed, base.constraints[2]), base)
    with pytest.raises(DerivationError, match="G2.*not the network's neuron") as info:
        derive_speed_network(problem)
    assert "generic" in info.value.fix


@pytest.mark.parametrize("case", ["holonomic", "dalembert", "loss_of_weights", "masses"])
def test_other_refusals_name_the_problem(case):
    base = cam.chain(3, speed=c).problem(parameters=[c])
    if case == "holonomic":
        problem, match = cam.chain(3).problem(), "no diffusion speed"
    elif case == "dalembert":
        problem = _modified(base.constraints, base, nonholonomic="dalembert")
        match = "vakonomic"
    elif case == "loss_of_weights":
        w21 = base.coordinates[3]
        problem = cam.chain(3, speed=c).problem(parameters=[c], loss=w21**2)
        match = "F depends on weights"
    else:
        m2 = S.parameters("m2")[0]
        net = cam.chain(3, speed=c)
        action = cam.Action(net.neurons + net.weights,
                            masses={**dict.fromkeys(net.neurons, 1),
                                    **dict.fromkeys(net.weights, m2)} | {net.neurons[1]: 2})
        problem = Problem(action, net.constraints(), signals=base.signals,
                          parameters=[c, m2], network=net)
        match = "masses differ"
    with pytest.raises(DerivationError, match=match) as info:
        compile_speed_network(problem)
    assert info.value.fix


def test_not_a_problem_is_a_compile_error():
    with pytest.raises(CompileError, match="cannot compile a str"):
        compile_speed_network("chain")
