"""Predictive coding (Whittington & Bogacz 2017) declared, derived and compiled by the
library, judged against references written here: the chain rule by ``sympy.diff`` of the
composed energy, a NumPy backprop written in this file, CasADi AD of the loss."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.compile.predictive_coding import compile_predictive_coding
from cognitive_action.declare.predictive_coding import PredictiveCoding
from cognitive_action.derive.predictive_coding import derive_predictive_coding
from cognitive_action.errors import DeclarationError, GraphError
from cognitive_action.verify.checks import check_backprop_numeric
from cognitive_action.verify.laws import make_law
from cognitive_action.verify.metrics import convergence_order
from cognitive_action.verify.predictive_coding import (
    check_predictive_coding,
    predictive_coding,
)
from cognitive_action.verify.reference import casadi_gradients, random_feedforward

ACT = {"tanh": (np.tanh, lambda a: 1 - np.tanh(a) ** 2),
       "logistic": (lambda a: 1 / (1 + np.exp(-a)),
                    lambda a: np.exp(-a) / (1 + np.exp(-a)) ** 2)}


def numpy_backprop(sizes, w, e, y, act="tanh"):
    """``-∂V/∂W`` of ``V = ½|x_L - y|²`` on a layered net, by hand (layer matrices read
    from the network's weight order ``w<target>_<source>``)."""
    net = ca.layered(sizes, act)
    pos = {key: i for i, key in enumerate(net.w)}
    first = np.cumsum([1, *sizes])
    layers = [list(range(first[i], first[i + 1])) for i in range(len(sizes))]
    Ws = [np.array([[w[pos[j, k]] for k in lo] for j in hi])
          for lo, hi in zip(layers, layers[1:])]
    f, df = ACT[act]
    xs, As = [np.asarray(e, float)], []
    for W in Ws:
        As.append(W @ xs[-1])
        xs.append(f(As[-1]))
    d = -(xs[-1] - y)                                   # δ_L = -∂V/∂x_L
    grads = [None] * len(Ws)
    for i in reversed(range(len(Ws))):
        g = d * df(As[i])
        grads[i] = np.outer(g, xs[i])
        d = Ws[i].T @ g
    out = np.zeros(len(w))
    for lo, hi, G in zip(layers, layers[1:], grads):
        for a, j in enumerate(hi):
            for b, k in enumerate(lo):
                out[pos[j, k]] = G[a, b]
    return out


def _random_case(sizes, seed, act="tanh"):
    net = ca.layered(sizes, act)
    rng = np.random.default_rng(seed)
    fan = np.array([net.graph.in_degree(j) for (j, _k) in net.w])
    w = rng.standard_normal(len(net.w)) * 1.2 / np.sqrt(fan)
    e, y = rng.standard_normal(sizes[0]), rng.uniform(-0.9, 0.9, sizes[-1])
    vals = {f"e{i + 1}": v for i, v in enumerate(e)}
    vals |= {f"y{o}": v for o, v in zip(net.outputs, y)}
    return net, w, e, y, vals


@pytest.mark.parametrize("net", [ca.chain(3), ca.layered([2, 3, 2], "logistic"),
                                 ca.layered([2, 2, 2], bias=True)])
def test_local_form_is_the_chain_rule_of_the_declared_energy(net):
    """The derived rates, written with prediction units, equal ``-sympy.diff`` of the
    energy with the predictions substituted (the composed ``F(x, W)``)."""
    pcs = derive_predictive_coding(PredictiveCoding(net))
    F = pcs.model.closed_energy()
    for x, rate in pcs.value_rates.items():
        assert sp.simplify(pcs.closed(rate) + sp.diff(F, x)) == 0, x
    for w, rate in pcs.weight_rates.items():
        assert sp.simplify(pcs.closed(rate) + sp.diff(F, w)) == 0, w
    assert set(pcs.value_rates) == set(pcs.model.free) | set(pcs.model.clamped)


@pytest.mark.parametrize("sizes,seed", [([3, 6, 5, 2], 0), ([3, 6, 5, 2], 1),
                                        ([4, 8, 3], 2), ([2, 5, 5, 5, 1], 3)])
def test_equilibrium_update_tends_to_backprop_at_order_one_in_the_precision(sizes, seed):
    """``Ẇ_PC/β → −∂V̄/∂W`` (the NumPy backprop above) as ``β → 0``, at order 1.

    Why 1: the inference equilibrium is analytic in ``β`` and equals the feedforward
    pass at ``β = 0``; at first order the hidden error units solve the linearised
    network, ``ε = β δ_BP + O(β²)``, and the update is ``ε_j σ'(a_j) x_kᵀ`` with
    ``a``, ``x`` off the feedforward pass by ``O(β)``; so ``Ẇ/β = −∂V̄/∂W + O(β)``."""
    net, w, e, y, vals = _random_case(sizes, seed)
    ref = numpy_backprop(sizes, w, e, y)
    cpc = compile_predictive_coding(PredictiveCoding(net))
    betas = np.array([1e-2, 1e-3, 1e-4, 1e-5])
    errs = [np.linalg.norm(cpc.equilibrium(w, vals | {"beta": b}).weight_rates / b - ref)
            / np.linalg.norm(ref) for b in betas]
    fit = convergence_order(betas, errs)
    assert abs(fit.order - 1) < 0.05 and fit.ci[0] < 1 + 0.05 and fit.ci[1] > 1 - 0.05, fit
    assert errs[-1] < 1e-3


@pytest.mark.parametrize("sizes,act,seed,beta", [([3, 6, 5, 2], "tanh", 0, 1.0),
                                                 ([3, 6, 5, 2], "tanh", 4, 0.3),
                                                 ([2, 4, 4, 4, 3], "logistic", 5, 1.0),
                                                 ([5, 3], "tanh", 6, 2.0)])
def test_fixed_prediction_schedule_is_backprop_to_round_off(sizes, act, seed, beta):
    """Predictions held at the feedforward pass, step 1, one sweep per layer (Song et
    al. 2020): ``Ẇ/β`` equals the NumPy backprop to 1e-12 (relative), at any ``β``."""
    net, w, e, y, vals = _random_case(sizes, seed, act)
    ref = numpy_backprop(sizes, w, e, y, act)
    cpc = compile_predictive_coding(PredictiveCoding(net))
    st = cpc.fixed_prediction(w, vals | {"beta": beta})
    assert st.iterations == len(sizes) - 2
    assert np.linalg.norm(st.weight_rates / beta - ref) <= 1e-12 * np.linalg.norm(ref)
    if len(sizes) > 3:           # a sweep short: the deepest layer has not heard yet
        short = cpc.fixed_prediction(w, vals | {"beta": beta}, sweeps=len(sizes) - 3)
        assert np.linalg.norm(short.weight_rates / beta - ref) > 1e-3 * np.linalg.norm(ref)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixed_prediction_on_a_dag_with_skip_arcs_against_casadi_ad(seed):
    """On a random DAG with skip arcs the schedule needs the longest path from a hidden
    neuron to an output in sweeps; the reference is CasADi AD of the loss."""
    net = random_feedforward(14, 3, density=0.4, seed=seed)
    problem = net.problem()
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(len(net.w)) / 2
    vals = {f"e{i}": float(v) for i, v in zip(net.inputs, rng.standard_normal(3))}
    vals |= {f"y{o}": float(v) for o, v in zip(net.outputs, rng.uniform(-1, 1, 9))}
    ref = -casadi_gradients(problem, w, vals).grad_w
    cpc = compile_predictive_coding(PredictiveCoding(net))
    st = cpc.fixed_prediction(w, vals | {"beta": 1.0})
    g, hidden = net.graph, [j for j in net.computing if j not in net.outputs]
    longest = max(nx.dag_longest_path_length(g.subgraph(nx.descendants(g, j) | {j}))
                  for j in hidden)
    assert cpc.depth == longest and st.iterations == longest
    assert np.linalg.norm(st.weight_rates - ref) <= 1e-12 * np.linalg.norm(ref)
    if longest > 1:
        short = cpc.fixed_prediction(w, vals | {"beta": 1.0}, sweeps=longest - 1)
        assert np.linalg.norm(short.weight_rates - ref) > 1e-6 * np.linalg.norm(ref)


def test_relaxation_reaches_the_equilibrium_and_lowers_the_energy():
    """The published algorithm (Euler steps of ``ẋ = −∂F/∂x``) ends at the fixed point
    Newton finds; the energy falls from the feedforward pass."""
    net, w, e, y, vals = _random_case([3, 6, 5, 2], 7)
    cpc = compile_predictive_coding(PredictiveCoding(net))
    v = vals | {"beta": 0.5}
    eq = cpc.equilibrium(w, v)
    rel = cpc.relax(w, v, steps=400, step=0.2)
    assert np.max(np.abs(rel.x - eq.x)) < 1e-9
    assert np.allclose(rel.weight_rates, eq.weight_rates, atol=1e-9)
    f0 = cpc.energy(cpc.forward(w, v), w, v)
    assert cpc.energy(eq.x, w, v) < f0
    assert np.max(np.abs(cpc.forward(w, v) - numpy_forward_hidden(net, w, e))) < 1e-14


def numpy_forward_hidden(net, w, e):
    pos = {key: i for i, key in enumerate(net.w)}
    x = dict(zip(net.inputs, e))
    for j in net.computing:
        x[j] = np.tanh(sum(w[pos[j, k]] * x[k] for k in net.graph.predecessors(j)))
    return np.array([x[j] for j in net.order if j not in net.outputs])


def test_softmax_cross_entropy_outputs_against_casadi_ad():
    """Any loss of the outputs: the output error units are ``−∂V/∂μ_o``; fixed
    predictions are exact, the equilibrium converges at order 1."""
    net = ca.layered([3, 5, 3], output_activation="identity")
    problem = net.problem(loss="softmax_cross_entropy")
    checks = check_predictive_coding(problem, seed=2,
                                     values={"y6": 1.0, "y7": 0.0, "y8": 0.0})
    by = {c.name: c for c in checks}
    assert by["pc.fixed_prediction"].status == "pass", by["pc.fixed_prediction"].message
    assert by["pc.fixed_prediction"].value < 1e-12
    assert by["pc.precision_limit"].status == "pass", by["pc.precision_limit"].message
    assert abs(by["pc.precision_limit"].value - 1) < 0.1


def test_registered_laws_one_is_backprop_and_one_is_not():
    """Through the ordinary verifier (CasADi AD, finite differences): the equilibrium law
    at ``β = 1e-3`` is off backprop by about ``β`` (relative), the fixed-prediction law
    passes as backprop."""
    theta = sp.Symbol("theta", real=True)
    problem = ca.layered([3, 5, 2]).problem(weight=sp.exp(theta * ca.t), parameters=[theta])
    eq = {c.name: c for c in check_backprop_numeric(problem, law=make_law("predictive_coding"))}
    assert eq["backprop.numeric.weights"].status == "fail"
    assert 1e-5 < eq["backprop.numeric.weights"].value < 1e-2
    fp = {c.name: c for c in check_backprop_numeric(
        problem, law=make_law("predictive_coding_fixed_prediction"))}
    assert all(c.status == "pass" for c in fp.values()), fp


def test_planted_wrong_schedule_fails_the_exact_check():
    """A check that can fail: half steps (``η = 1/2``) are not the exact schedule."""
    net, w, e, y, vals = _random_case([3, 6, 5, 2], 3)
    ref = numpy_backprop([3, 6, 5, 2], w, e, y)
    cpc = compile_predictive_coding(PredictiveCoding(net))
    st = cpc.fixed_prediction(w, vals | {"beta": 1.0}, step=0.5)
    assert np.linalg.norm(st.weight_rates - ref) > 1e-2 * np.linalg.norm(ref)


def test_bad_declarations_give_typed_errors():
    cyc = ca.Network(nx.DiGraph([(1, 2), (2, 3), (3, 2)]), [1], outputs=[3])
    with pytest.raises(GraphError, match="cycles"):
        PredictiveCoding(cyc)
    feeding = ca.Network(nx.DiGraph([(1, 2), (2, 3), (2, 4)]), [1], outputs=[2, 4])
    with pytest.raises(GraphError, match="outgoing arcs"):
        PredictiveCoding(feeding)
    for bad in (0, -1.0, "beta", sp.Symbol("a") + 1):
        with pytest.raises(DeclarationError) as info:
            PredictiveCoding(ca.layered([2, 1]), precision=bad)
        assert info.value.fix
    with pytest.raises(DeclarationError, match="speed"):
        PredictiveCoding(ca.chain(3, speed=sp.Symbol("c", positive=True)))
    net = ca.layered([2, 2, 1])
    with pytest.raises(DeclarationError, match="w3_1"):
        PredictiveCoding(net, loss=(net.x[5] - 1) ** 2 + net.w[3, 1] ** 2)
    with pytest.raises(DeclarationError, match="unknown loss"):
        PredictiveCoding(net, loss="hinge")
    with pytest.raises(DeclarationError, match="takes a Network"):
        PredictiveCoding(net.problem())
    with pytest.raises(DeclarationError, match="positive"):
        predictive_coding(precision=0.0)


def test_checks_skip_with_the_reason_where_pc_does_not_apply():
    net = ca.layered([2, 2, 1])
    decay = (net.x[5] - net.target_signals()[5]) ** 2 / 2 + net.w[3, 1] ** 2
    checks = check_predictive_coding(net.problem(loss=decay))
    assert [c.status for c in checks] == ["skip", "skip"]
    assert "w3_1" in checks[0].message


def _committed(page):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "laws" / page).read_text()
    return text.split("<!-- latex:begin -->", 1)[1].split("<!-- latex:end -->", 1)[0]


def test_docs_latex_is_a_fresh_derivation():
    """docs/laws/predictive_coding.md shows ``latex()`` of the 2-2-1 net: drift in the
    derivation fails here (regenerate the block and review the diff)."""
    fresh = derive_predictive_coding(PredictiveCoding(ca.layered([2, 2, 1]))).latex()
    rows = [ln.strip() for ln in _committed("predictive_coding.md").splitlines() if "&=" in ln]
    assert rows == [ln.strip() for ln in fresh.splitlines() if "&=" in ln]
    assert len(rows) == 7 + 8


def test_feedback_alignment_page_shows_the_derived_backprop_rows():
    """docs/laws/feedback_alignment.md shows rows of the derived backprop limit of the
    2-2-1 net, as ``ca.latex`` prints them today."""
    from cognitive_action.verify import backprop, reduce

    theta = sp.Symbol("theta", real=True)
    problem = ca.layered([2, 2, 1]).problem(weight=sp.exp(theta * ca.t), parameters=[theta])
    red = reduce(ca.euler_lagrange(problem), backprop(rate=theta))
    fresh = {ca.latex(e) + " &= 0" for e in red.equations}
    rows = [ln.strip().rstrip("\\").strip() for ln in
            _committed("feedback_alignment.md").splitlines() if "&=" in ln]
    assert len(rows) == 5 and set(rows) <= fresh


@pytest.mark.parametrize("net", [ca.layered([3, 4, 2], bias=True),
                                 ca.layered([3, 4, 4, 2],
                                            activations=["softplus", "tanh", "identity"])])
def test_claims_with_biases_and_mixed_activations(net):
    """The verifier's checks (reference: CasADi AD of the loss) on a net with a bias unit
    clamped to 1 and on one with a different activation per layer: order 1 within 0.1,
    the fixed-prediction schedule within 1e-12."""
    checks = {c.name: c for c in check_predictive_coding(net.problem(), seed=1)}
    assert checks["pc.precision_limit"].status == "pass"
    assert abs(checks["pc.precision_limit"].value - 1) < 0.1
    assert checks["pc.fixed_prediction"].status == "pass"
    assert checks["pc.fixed_prediction"].value < 1e-12


def test_equilibrium_is_found_on_hard_states():
    """Large weights and a precision of 1: ``ẋ = 0`` to 1e-9 and an energy below the
    feedforward pass's, at every state (the fast half of the test below)."""
    net = ca.layered([3, 8, 8, 2])
    cpc = compile_predictive_coding(PredictiveCoding(net))
    rng = np.random.default_rng(1)
    vals = {"e1": 1.0, "e2": -1.0, "e3": 0.5, "y20": 0.9, "y21": -0.9, "beta": 1.0}
    for _ in range(12):
        w = rng.standard_normal(len(net.weights)) * 2.0 / np.sqrt(8)
        eq = cpc.equilibrium(w, vals)
        assert np.max(np.abs(eq.value_rates[eq.free])) < 1e-9
        assert cpc.energy(eq.x, w, vals) <= cpc.energy(cpc.forward(w, vals), w, vals)


@pytest.mark.slow
def test_equilibrium_is_the_one_relaxation_reaches_on_hard_states():
    """Large weights and a precision of 1 make ``F`` non-convex, where plain Newton from
    the feedforward pass can fail (it did in training on the digits). The equilibrium
    is then found by a damped Newton descent of ``F``; wherever the published Euler
    relaxation converges, it converges to the same point."""
    net = ca.layered([3, 8, 8, 2])
    cpc = compile_predictive_coding(PredictiveCoding(net))
    rng = np.random.default_rng(1)
    vals = {"e1": 1.0, "e2": -1.0, "e3": 0.5, "y20": 0.9, "y21": -0.9, "beta": 1.0}
    compared = 0
    for _ in range(12):
        w = rng.standard_normal(len(net.weights)) * 2.0 / np.sqrt(8)
        eq = cpc.equilibrium(w, vals)
        assert np.max(np.abs(eq.value_rates[eq.free])) < 1e-9
        rel = cpc.relax(w, vals, steps=4000, step=0.02)
        if np.max(np.abs(rel.value_rates[rel.free])) < 1e-8:
            compared += 1
            assert np.max(np.abs(rel.x - eq.x)) < 1e-6
    assert compared >= 3
