"""Public API gaps of issue 11, item 7: backprop rates keyed by arc, error fixes, names.

The reference for :func:`backprop_rates` is written here from scratch: a NumPy forward
pass over the user's arcs and central differences (with a Richardson step) of the
composed squared-error loss, plus CasADi's AD of the library's reference pass.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from cognitive_action.declare.network import Network, chain
from cognitive_action.errors import ShapeError
from cognitive_action.verify import backprop_rates
from cognitive_action.verify.reference import casadi_gradients


def _random_graph(seed: int) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """A random DAG with skip arcs; arcs listed in a shuffled order."""
    rng = np.random.default_rng(seed)
    n, n_in = 9, 2
    arcs = []
    for j in range(n_in + 1, n + 1):
        src = [i for i in range(1, j) if rng.random() < 0.4] or [int(rng.integers(1, j))]
        arcs += [(i, j) for i in src]
    rng.shuffle(arcs)
    g = nx.DiGraph(arcs)
    outputs = [v for v in g.nodes if g.out_degree(v) == 0]
    return [tuple(map(int, a)) for a in arcs], list(range(1, n_in + 1)), outputs


def _loss(arcs, inputs, outputs, w: dict, e: dict, y: dict, p: dict | None = None) -> float:
    """½ Σ_o (x_o - y_o)² of the forward pass x_j = tanh(Σ_k w_kj x_k) (+ p_j)."""
    g = nx.DiGraph(arcs)
    p = p or {}
    x = {}
    for j in nx.topological_sort(g):
        if j in inputs:
            x[j] = e[j] + p.get(j, 0.0)
        else:
            x[j] = np.tanh(sum(w[k, j] * x[k] for k in g.predecessors(j))) + p.get(j, 0.0)
    return 0.5 * sum((x[o] - y[o]) ** 2 for o in outputs)


def _rich(fun, h: float = 1e-3) -> float:
    def central(s: float) -> float:
        return (fun(s) - fun(-s)) / (2 * s)
    return (4 * central(h / 2) - central(h)) / 3


@pytest.mark.parametrize("seed", [0, 3])
def test_backprop_rates_against_differences_of_the_composed_loss(seed):
    arcs, inputs, outputs = _random_graph(seed)
    net = Network(arcs, inputs)
    internal = [(k, j) for (j, k) in net.w]
    assert internal != arcs              # the user's order is not the network's order
    rng = np.random.default_rng(seed + 10)
    w = {a: float(rng.normal()) for a in arcs}
    e = {i: float(rng.normal()) for i in inputs}
    y = {o: float(rng.normal()) for o in outputs}
    values = {f"e{i}": v for i, v in e.items()} | {f"y{o}": v for o, v in y.items()}
    gamma = 0.7
    r = backprop_rates(net, w, values, gamma=gamma)
    assert list(r.w_dot) == arcs
    for a in arcs:
        def fa(s: float, a=a) -> float:
            return _loss(arcs, inputs, outputs, w | {a: w[a] + s}, e, y)
        assert r.w_dot[a] == pytest.approx(-_rich(fa) / gamma, rel=1e-6, abs=1e-9), a
    for j in net.order:
        def fj(s: float, j=j) -> float:
            return _loss(arcs, inputs, outputs, w, e, y, {j: s})
        assert r.delta[j] == pytest.approx(-_rich(fj), rel=1e-6, abs=1e-9), j
    # CasADi AD of the library's reference pass, mapped from the network's order
    ref = casadi_gradients(net.problem(), np.array([w[a] for a in internal]), values)
    np.testing.assert_allclose([r.w_dot[a] for a in internal], -ref.grad_w / gamma,
                               rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose([r.delta[j] for j in net.order], ref.delta,
                               rtol=1e-8, atol=1e-12)


def test_backprop_rates_takes_an_array_in_the_edge_order():
    arcs, inputs, outputs = _random_graph(1)
    net = Network(arcs, inputs)
    rng = np.random.default_rng(2)
    w = rng.normal(size=len(arcs))
    values = {f"e{i}": 0.3 for i in inputs} | {f"y{o}": -0.2 for o in outputs}
    a = backprop_rates(net, w, values)
    edges = list(net.graph.edges)
    b = backprop_rates(net, dict(zip(edges, w)), values)
    assert list(a.w_dot) == edges and list(b.w_dot) == edges
    assert a.w_dot == b.w_dot and a.delta == b.delta
    c = backprop_rates(net, dict(zip(edges[::-1], w[::-1])), values)
    assert list(c.w_dot) == edges[::-1] and c.w_dot == a.w_dot


def test_backprop_rates_refuses_weights_that_miss_an_arc():
    with pytest.raises(ShapeError, match="missing \\[\\(2, 3\\)\\]"):
        backprop_rates(chain(3), {(1, 2): 0.5}, {"e1": 1.0, "y3": 0.0})
    with pytest.raises(ShapeError, match="not arcs \\[\\(3, 2\\)\\]"):
        backprop_rates(chain(3), {(1, 2): 0.5, (2, 3): 1.0, (3, 2): 1.0},
                       {"e1": 1.0, "y3": 0.0})
    with pytest.raises(ShapeError, match="3 weights for 2 arcs"):
        backprop_rates(chain(3), np.ones(3), {"e1": 1.0, "y3": 0.0})


def test_target_on_a_hidden_neuron_names_outputs_as_the_fix():
    with pytest.raises(ShapeError) as exc:
        chain(3).problem(targets={2: 0.0})
    msg = str(exc.value)
    assert "not one of the network's targets" in msg
    assert "Network(..., outputs=[3, 2])" in msg
    # the fix works
    p = Network([(1, 2), (2, 3)], [1], outputs=[3, 2]).problem(targets={2: 0.0})
    assert p is not None


def test_initial_condition_checks_have_distinct_names():
    """derive's validator raises; the verifier's check returns a Check. The old derive
    name still works, with a DeprecationWarning."""
    import cognitive_action as ca
    from cognitive_action.errors import InconsistentInitialConditionsError
    from cognitive_action.verify.checks import check_initial_conditions

    net = ca.chain(3)
    el = ca.euler_lagrange(net.problem())
    given = {"w2_1": 0.4, "w3_2": -0.7, "e1": 0.3, "e1_dot": 0.0}
    ic = ca.complete_initial_conditions(el, given)
    bad = dict(ic, x3=ic["x3"] + 0.1)
    assert ca.validate_initial_conditions is not check_initial_conditions
    assert ca.validate_initial_conditions(el, ic) is None
    assert check_initial_conditions(net.problem(), ic).status == "pass"
    assert check_initial_conditions(net.problem(), bad).status == "fail"
    with pytest.warns(DeprecationWarning, match="validate_initial_conditions"), \
            pytest.raises(InconsistentInitialConditionsError, match="G3"):
        ca.check_initial_conditions(el, bad)


def test_the_weight_mass_has_one_name():
    import sympy as sp

    from cognitive_action.derive.network import derive_network
    from cognitive_action.derive.network_speed import derive_speed_network

    mW = sp.Symbol("M", positive=True)
    for net, derive in ((chain(3), derive_network), (chain(3, speed=2), derive_speed_network)):
        ns = derive(net.problem(mass_W=mW))
        assert ns.mass_W == mW
        with pytest.warns(DeprecationWarning, match="mass_W"):
            assert ns.mass_w == mW


def test_verification_error_joins_the_other_errors():
    from cognitive_action import errors, verify
    from cognitive_action.verify import pytest_helpers

    assert verify.VerificationError is errors.VerificationError
    assert pytest_helpers.VerificationError is errors.VerificationError
    assert issubclass(errors.VerificationError, errors.CognitiveActionError)
    assert issubclass(errors.VerificationError, AssertionError)
    assert "VerificationError" in errors.__all__
