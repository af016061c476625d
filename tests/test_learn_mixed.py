"""The compiled limit law on networks as ML people build them: per-layer and per-neuron
activations, a bias unit, softmax + cross-entropy, against independent references.

References, both written here from the definitions and independent of the derivation:

- ``fd_gradient``: ``∂V/∂w`` by central finite differences of the loss, the forward pass
  and the loss evaluated in 40-digit arithmetic (mpmath), so that the difference
  quotient is exact far below the 1e-12 asserted (step 1e-12: truncation ~1e-24,
  round-off ~1e-28);
- ``hand_gradient``: backprop neuron by neuron on the graph in float64 (slopes from
  the net inputs, the textbook softmax), the bias unit as a constant 1.
"""

from __future__ import annotations

import mpmath
import networkx as nx
import numpy as np
import pytest
import sympy as sp

from cognitive_action.declare.network import Network, layered
from cognitive_action.declare.symbols import t
from cognitive_action.errors import DeclarationError, DerivationError
from cognitive_action.learn import compile_limit_law, load_digits_split, sgd_baseline, train
from cognitive_action.learn.train import initial_weights

ACTS = ("tanh", "logistic", "identity", "softplus")
LOSSES = ("squared", "softmax_cross_entropy")

_MP = {"tanh": mpmath.tanh, "logistic": lambda a: 1 / (1 + mpmath.exp(-a)),
       "identity": lambda a: a, "softplus": lambda a: mpmath.log(1 + mpmath.exp(a))}


def _np_logistic(a):
    return 1.0 / (1.0 + np.exp(-a))


_NP = {"tanh": (np.tanh, lambda a: 1.0 - np.tanh(a) ** 2),
       "logistic": (_np_logistic, lambda a: _np_logistic(a) * (1.0 - _np_logistic(a))),
       "identity": (lambda a: a, lambda a: 1.0),
       "softplus": (lambda a: np.log1p(np.exp(a)), _np_logistic)}


def _forward(net, w, e, sig):
    W = {key: w[i] for i, key in enumerate(net.w)}
    x, a = {}, {}
    for n, v in zip([i for i in net.inputs if i != net.bias], e):
        x[n] = v
    if net.bias is not None:
        x[net.bias] = 1
    for n in net.order:
        if n in net.inputs:
            continue
        a[n] = sum(W[n, k] * x[k] for k in net.graph.predecessors(n))
        x[n] = sig(net.activation_of(n).name, a[n])
    return W, x, a


def _loss_mp(o, y, loss):
    if loss == "squared":
        return sum((oi - yi) ** 2 for oi, yi in zip(o, y)) / 2
    if loss == "softmax_cross_entropy":
        return sum(y) * mpmath.log(sum(mpmath.exp(oi) for oi in o)) - sum(
            oi * yi for oi, yi in zip(o, y))
    return loss(o, y)  # a callable of mpf lists


def fd_gradient(net, w, e, y, loss, h=1e-12):
    """``∂V/∂w`` by central differences, in 40-digit arithmetic."""
    with mpmath.workdps(40):
        e_mp = [mpmath.mpf(float(v)) for v in e]
        y_mp = [mpmath.mpf(float(v)) for v in y]
        w_mp = [mpmath.mpf(float(v)) for v in w]

        def V(ws):
            _, x, _ = _forward(net, ws, e_mp, lambda name, a: _MP[name](a))
            return _loss_mp([x[o] for o in net.outputs], y_mp, loss)

        step = mpmath.mpf(h)
        out = []
        for i in range(len(w_mp)):
            wp, wm = list(w_mp), list(w_mp)
            wp[i] += step
            wm[i] -= step
            out.append(float((V(wp) - V(wm)) / (2 * step)))
    return np.array(out)


def hand_gradient(net, w, e, y, loss):
    """``∂V/∂w`` by backprop, neuron by neuron on the graph (float64)."""
    W, x, a = _forward(net, w, e, lambda name, v: _NP[name][0](v))
    o = np.array([x[n] for n in net.outputs])
    if loss == "squared":
        dV = o - y
    else:  # textbook softmax cross-entropy, V = (Σy) logsumexp(o) - y·o
        p = np.exp(o - o.max())
        dV = y.sum() * p / p.sum() - y
    delta = {}  # ∂V/∂a_n
    for n in reversed(net.order):
        if n in net.inputs:
            continue
        g = dV[net.outputs.index(n)] if n in net.outputs else 0.0
        g += sum(W[j, n] * delta[j] for j in net.graph.successors(n))
        delta[n] = _NP[net.activation_of(n).name][1](a[n]) * g
    return np.array([delta[j] * x[k] for (j, k) in net.w])


def random_layered(rng, bias, loss):
    sizes = [int(rng.integers(2, 5))] + [int(rng.integers(2, 5))
                                         for _ in range(int(rng.integers(1, 3)))]
    sizes.append(int(rng.integers(2, 4)))
    acts = [str(rng.choice(ACTS)) for _ in sizes[1:]]
    if loss == "softmax_cross_entropy" and rng.random() < 0.7:
        acts[-1] = "identity"  # logits, as usually built
    return layered(sizes, activations=acts, bias=bias), acts


def random_dag(rng, bias):
    """A random feedforward graph with skip arcs and a random activation per neuron;
    the two outputs on the last level (each hidden neuron feeds the next)."""
    n_in, n = 3, 8
    g = nx.DiGraph()
    g.add_nodes_from(range(1, n + 1))
    for j in range(n_in + 1, n + 1):
        last = min(j - 1, n - 2)
        preds = {k for k in range(1, last) if rng.random() < 0.6} | {last}
        g.add_edges_from((k, j) for k in preds)
    outputs = [n - 1, n]
    acts = {j: str(rng.choice(ACTS)) for j in range(n_in + 1, n + 1)}
    acts[n] = str(rng.choice([a for a in ACTS if a != acts[n - 1]]))  # a mixed level
    return Network(g, list(range(1, n_in + 1)), activations=acts, bias=bias, outputs=outputs)


def _sample(rng, net, loss):
    e = rng.normal(size=len(net.input_signals()))
    if loss == "softmax_cross_entropy":
        y = rng.dirichlet(np.ones(len(net.outputs)))
        if rng.random() < 0.5:
            y = y * 1.7  # targets that do not sum to one: V keeps its (Σy) factor
    else:
        y = rng.normal(size=len(net.outputs))
    return e, y


def _check_rates(net, loss_name, rng, loss_ref=None, n_samples=3):
    k = compile_limit_law(net.problem(loss=loss_name))
    for _ in range(n_samples):
        w = rng.normal(size=len(net.w)) * 0.8
        e, y = _sample(rng, net, loss_name)
        gamma = float(rng.uniform(0.5, 3.0))
        _, rates = k.rates(k.to_blocks(w), e, y, gamma)
        w_dot = k.from_blocks(rates)
        ref = fd_gradient(net, w, e, y, loss_ref or loss_name)
        np.testing.assert_allclose(gamma * w_dot, -ref, rtol=0, atol=1e-12)
        if loss_ref is None:
            np.testing.assert_allclose(gamma * w_dot, -hand_gradient(net, w, e, y, loss_name),
                                       rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_rates_on_random_layered_nets_equal_fd_and_hand_backprop(seed):
    """γ Ẇ = -∂V/∂W on random layer sizes and per-layer activations, with and without
    bias, squared and softmax cross-entropy."""
    rng = np.random.default_rng([seed, 13])
    bias, loss = bool(seed % 2), LOSSES[(seed // 2) % 2]
    net, _ = random_layered(rng, bias, loss)
    _check_rates(net, loss, rng)


@pytest.mark.parametrize("seed", range(4))
def test_rates_on_random_dags_with_per_neuron_activations(seed):
    """Skip arcs, levels that mix templates, a bias unit feeding every level."""
    rng = np.random.default_rng([seed, 17])
    net = random_dag(rng, bias=seed % 2 == 0)
    k = compile_limit_law(net.problem())
    assert len(k.groups[-1]) == 2  # the output level: two templates, grouped
    _check_rates(net, LOSSES[seed % 2], rng)


def test_rates_for_losses_that_couple_outputs_otherwise():
    """Two other losses of the outputs: one whose gradient is a shared aggregate
    ((Σ (x - y))² / 2), one that fits no template (½(x₁ - y₁)² + x₁ x₂): the general
    path, checked against finite differences."""
    net = layered([3, 4, 2], bias=True)
    (o1, o2), ys = (net.x[o] for o in net.outputs), list(net.target_signals().values())
    rng = np.random.default_rng(5)
    shared = (o1 - ys[0] + o2 - ys[1]) ** 2 / 2
    _check_rates_expr(net, shared, lambda o, y: (o[0] - y[0] + o[1] - y[1]) ** 2 / 2, rng)
    other = (o1 - ys[0]) ** 2 / 2 + o1 * o2
    k = _check_rates_expr(net, other, lambda o, y: (o[0] - y[0]) ** 2 / 2 + o[0] * o[1], rng)
    assert k.loss_gradient_template is None


def _check_rates_expr(net, loss_expr, loss_mp, rng):
    k = compile_limit_law(net.problem(loss=loss_expr))
    for _ in range(3):
        w = rng.normal(size=len(net.w)) * 0.8
        e, y = rng.normal(size=3), rng.normal(size=2)
        _, rates = k.rates(k.to_blocks(w), e, y, 1.0)
        np.testing.assert_allclose(k.from_blocks(rates), -fd_gradient(net, w, e, y, loss_mp),
                                   rtol=0, atol=1e-12)
    return k


def test_bias_is_a_constant_unit_read_from_its_constraint():
    net = layered([2, 3, 2], output_activation="identity", bias=True)
    k = compile_limit_law(net.problem(loss="softmax_cross_entropy"))
    assert k.constant_values.tolist() == [1.0]
    assert [net.order[i] for i in k.constant_index] == [net.bias]
    assert [str(law.sigma_expr) for law in k.laws] == ["tanh(a)", "a"]
    # the data inputs only: two columns, not three
    assert k.predict(k.to_blocks(np.zeros(len(net.w))), np.zeros((5, 2))).shape == (5, 2)


def test_inputs_clamped_to_time_functions_are_refused():
    net = layered([2, 2, 1])
    with pytest.raises(DerivationError, match="clamped to") as info:
        compile_limit_law(net.problem(inputs={1: sp.sin(t)}))
    assert info.value.fix


def _labels(rng, n, n_in, n_out):
    X = rng.normal(size=(n, n_in))
    proj = X @ rng.normal(size=(n_in, n_out))
    return X, np.argmax(proj, 1).astype(np.int64)


@pytest.mark.parametrize("seed", range(4))
def test_train_weights_equal_hand_written_sgd(seed):
    """The limit law's update is η γ Ẇ = -η ∂V/∂W (eq. 15-17 at the limit), exactly
    SGD's step on the same loss; both runs start from the same weights and visit the
    samples in the same order, so only round-off (different but equivalent float
    operations: the derived slope ξ² - 1 against 1 - x², the derived softmax through
    LogSumExp) can separate them: 1e-9 after 300 steps."""
    rng = np.random.default_rng([seed, 29])
    bias, loss = seed % 2 == 0, LOSSES[(seed // 2) % 2]
    net, _ = random_layered(rng, bias, loss)
    p = net.problem(loss=loss)
    n_in, n_out = len(net.input_signals()), len(net.outputs)
    tr, te = _labels(rng, 100, n_in, n_out), _labels(rng, 30, n_in, n_out)
    h = train(p, tr, te, epochs=3, learning_rate=0.05, seed=seed)
    s = sgd_baseline(p, tr, te, epochs=3, learning_rate=0.05, seed=seed)
    assert np.abs(h.weights - initial_weights(net, seed)).max() > 1e-3  # it moved
    np.testing.assert_allclose(h.weights, s.weights, rtol=0, atol=1e-9)
    # the recorded loss is the problem's own V, evaluated both ways
    np.testing.assert_allclose(h.train_loss, s.train_loss, rtol=1e-10)
    np.testing.assert_allclose(h.test_loss, s.test_loss, rtol=1e-10)


def test_recorded_loss_is_cross_entropy_not_squared_error():
    net = layered([3, 4, 3], output_activation="identity", bias=True)
    p = net.problem(loss="softmax_cross_entropy")
    rng = np.random.default_rng(0)
    X, labels = _labels(rng, 40, 3, 3)
    h = train(p, (X, labels), epochs=0, learning_rate=0.1, seed=3)
    k = compile_limit_law(p)
    o = k.predict(k.to_blocks(initial_weights(net, 3)), X)
    ce = np.log(np.exp(o).sum(1)) - o[np.arange(40), labels]   # -log softmax_label
    assert h.train_loss[0] == pytest.approx(ce.mean(), rel=1e-12)
    assert h.train_loss[0] != pytest.approx(0.5 * ((o - np.eye(3)[labels]) ** 2).sum(1).mean())


def test_baseline_refuses_what_it_has_no_hand_form_for():
    net = layered([3, 4, 2])
    o = net.x[net.outputs[0]]
    with pytest.raises(DeclarationError, match="loss") as info:
        sgd_baseline(net.problem(loss=o ** 4), (np.zeros((2, 3)), np.zeros((2, 2))),
                     epochs=1, learning_rate=0.1)
    assert info.value.fix
    g = nx.DiGraph([(1, 3), (2, 3), (3, 4), (1, 4)])
    with pytest.raises(DeclarationError, match="layered|fully connected"):
        sgd_baseline(Network(g, [1, 2]).problem(), (np.zeros((2, 2)), np.zeros((2, 1))),
                     epochs=1, learning_rate=0.1)


def test_digits_mixed_net_with_bias_and_softmax_equals_sgd():
    """64-16-10, tanh hidden, identity logits, bias, softmax cross-entropy (quick)."""
    pytest.importorskip("sklearn")
    p = layered([64, 16, 10], activations=["tanh", "identity"], bias=True).problem(
        loss="softmax_cross_entropy")
    tr, te = load_digits_split(0.2, seed=0, limit=300)
    h = train(p, tr, te, epochs=2, learning_rate=0.05, seed=0)
    s = sgd_baseline(p, tr, te, epochs=2, learning_rate=0.05, seed=0)
    np.testing.assert_allclose(h.weights, s.weights, rtol=0, atol=1e-9)
    assert abs(h.test_accuracy[-1] - s.test_accuracy[-1]) <= 0.005
    assert h.test_accuracy[-1] > 0.6 and h.train_loss[-1] < h.train_loss[0]


def test_problem_file_declares_activations_bias_and_softmax_loss():
    """problems/digits_softmax.toml through the loader: per-layer activations, the bias
    unit and the softmax cross-entropy, as the same objects layered() and LOSSES build."""
    from cognitive_action.declare.network import softmax_cross_entropy
    from cognitive_action.problem_files.loader import load_problem

    spec = load_problem("digits_softmax")
    net = spec.problem.network
    assert net.bias is not None and len(net.input_signals()) == 64
    assert {net.activation_of(j).name for j in net.outputs} == {"identity"}
    assert {net.activation_of(j).name for j in net.computing if j not in net.outputs} == {
        "tanh"}
    ys = net.target_signals()
    V = -spec.problem.action.lagrangian / spec.problem.action.weight
    expected = softmax_cross_entropy([net.x[o] for o in net.outputs],
                                     [ys[o] for o in net.outputs])
    assert expected == V
    k = compile_limit_law(spec.problem, spec.values)
    assert len(k.laws) == 2 and k.constant_values.tolist() == [1.0]


def test_rates_on_a_complete_dag_with_bias():
    """Every neuron fed by every earlier one (one neuron per level, the densest
    feedforward graph): one block per level over all lower levels."""
    rng = np.random.default_rng(41)
    g = nx.DiGraph((k, j) for j in range(3, 9) for k in range(1, j))
    acts = {j: str(rng.choice(ACTS)) for j in range(3, 9)}
    net = Network(g, [1, 2], activations=acts, bias=True)
    k = compile_limit_law(net.problem())
    assert len(k.levels) == 7 and len(k.blocks) == 12  # 6 levels: range + bias blocks
    _check_rates(net, "squared", rng)


def test_loss_parameters_come_from_values():
    mu = sp.Symbol("mu", positive=True)
    net = layered([3, 4, 2], bias=True)
    ys = net.target_signals()
    V = mu * sum((net.x[o] - ys[o]) ** 2 for o in net.outputs) / 2
    p = net.problem(loss=V, parameters=[mu])
    with pytest.raises(DerivationError, match="mu") as info:
        compile_limit_law(p)
    assert "values=" in info.value.fix
    k = compile_limit_law(p, {"mu": 0.25})
    rng = np.random.default_rng(2)
    w, e, y = rng.normal(size=len(net.w)), rng.normal(size=3), rng.normal(size=2)
    _, rates = k.rates(k.to_blocks(w), e, y)
    np.testing.assert_allclose(k.from_blocks(rates), -0.25 * hand_gradient(net, w, e, y,
                                                                           "squared"),
                               rtol=0, atol=1e-12)
    o = k.predict(k.to_blocks(w), e[None, :])[0]
    assert k.loss_values(o[None, :], y[None, :])[0] == pytest.approx(
        0.125 * np.sum((o - y) ** 2), rel=1e-14)
