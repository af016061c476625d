"""References for every kind of network (issue 12, item 1): recurrent nets, losses of
the weights, tied weights, and problems without a reference.

Each reference is checked against something computed here by other means (a
hand-written implicit differentiation, a hand-written gradient, the untied gradient
projected by hand, finite differences), and the derived law against the reference; a
planted wrong law must fail on every kind.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.declare import symbols as S
from cognitive_action.declare.network import Network, squared_error
from cognitive_action.declare.problem import Action, Constraint, Problem
from cognitive_action.errors import ProblemFileError, VerificationError
from cognitive_action.problem_files.loader import load_problem
from cognitive_action.verify.checks import check_backprop_numeric, verify
from cognitive_action.verify.constrained import GenericNetworkSystem, tied_gradients
from cognitive_action.verify.kinds import backprop_case, backprop_kind
from cognitive_action.verify.laws import LawOutput, derived_limit, sign_flipped
from cognitive_action.verify.pytest_helpers import assert_backprop_limit
from cognitive_action.verify.recurrent import (
    fixed_point,
    random_recurrent,
    recurrent_finite_differences,
    recurrent_gradients,
)
from cognitive_action.verify.reference import casadi_gradients

THETA, LAM = S.parameters("theta lam")


def _rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b))


def _weighted(net: Network, loss=None, parameters=()) -> Problem:
    return net.problem(weight=sp.exp(THETA * S.t), loss=loss,
                       parameters=[THETA, *parameters])


def _values(problem: Problem, rng: np.random.Generator) -> dict[str, float]:
    vals: dict[str, float] = {"t": 0.7}
    for s in problem.signals:
        vals[str(s)] = float(rng.standard_normal())
        vals[str(S.dot(s))] = vals[str(S.dot(s, 2))] = 0.0
    return vals


def _halved_deltas(system, state, values, gamma) -> LawOutput:
    out = derived_limit()(system, state, values, gamma)
    return LawOutput(delta=out.delta / 2, w_dot=out.w_dot / 2)


def _implicit_by_hand(problem: Problem, w: np.ndarray, vals: dict[str, float]):
    """Recurrent backprop written out with NumPy: T δ = -V_x, T = I - (σ'W)ᵀ, and
    ∂V̄/∂w_jk = δ_j G^j_{w_jk} = -δ_j σ'(a_j) x_k (squared-error loss of the outputs)."""
    net = problem.network
    x = fixed_point(problem, w, vals).x
    idx = {n: i for i, n in enumerate(net.order)}
    W = np.zeros((len(x), len(x)))
    for m, (j, k) in enumerate(net.w):
        W[idx[j], idx[k]] += w[m]
    a = W @ x
    d = 1 - np.tanh(a) ** 2
    d[[idx[i] for i in net.inputs]] = 0.0
    Vx = np.zeros(len(x))
    for o in net.outputs:
        Vx[idx[o]] = x[idx[o]] - vals[f"y{o}"]
    T = np.eye(len(x)) - (d[:, None] * W).T
    delta = np.linalg.solve(T, -Vx)
    grad = np.array([-delta[idx[j]] * d[idx[j]] * x[idx[k]] for (j, k) in net.w])
    return x, delta, grad


# -- recurrent nets ---------------------------------------------------------------------
RECURRENT = [(6, 0.5, 0), (8, 0.35, 1), (9, 0.3, 2), (12, 0.25, 3)]


@pytest.mark.parametrize("n,density,seed", RECURRENT)
def test_recurrent_reference_is_implicit_differentiation(n, density, seed):
    rng = np.random.default_rng(seed)
    net = random_recurrent(n, 2, density=density, seed=seed, n_outputs=2)
    assert not net.is_feedforward
    p = _weighted(net)
    vals = _values(p, rng)
    w = 0.4 * rng.standard_normal(len(net.weights))
    fp = fixed_point(p, w, vals)
    assert fp.attracting and fp.residual < 1e-14
    x, delta, grad = _implicit_by_hand(p, w, vals)
    ref = recurrent_gradients(p, w, vals)
    assert _rel(ref.x, x) < 1e-13
    assert _rel(ref.delta, delta) < 1e-12
    assert _rel(ref.grad_w, grad) < 1e-12
    gw, dp = recurrent_finite_differences(p, w, vals, weights=range(len(w)),
                                          neurons=range(len(x)))
    assert _rel(gw, ref.grad_w) < 1e-9
    assert _rel(dp, ref.delta) < 1e-9


@pytest.mark.parametrize("n,density,seed", RECURRENT)
def test_derived_law_on_recurrent_nets_is_recurrent_backprop(n, density, seed):
    p = _weighted(random_recurrent(n, 2, density=density, seed=seed, n_outputs=2))
    checks = {c.name: c for c in check_backprop_numeric(p, seed=seed)}
    for name in ("multipliers", "weights", "finite_differences", "layers"):
        assert checks[f"backprop.numeric.{name}"].status == "pass", checks
    assert checks["backprop.numeric.multipliers"].value < 1e-9
    assert checks["backprop.numeric.weights"].value < 1e-9
    assert checks["backprop.numeric.finite_differences"].value < 1e-9
    assert "fixed-point solve" in checks["backprop.numeric.multipliers"].details["reference"]


def test_recurrent_net_with_self_loops_and_logistic_units():
    g = nx.DiGraph([(1, 3), (2, 3), (3, 3), (3, 4), (4, 3), (4, 4), (2, 5), (4, 5), (5, 4)])
    p = _weighted(Network(g, [1, 2], "logistic", outputs=[5]))
    checks = {c.name: c for c in check_backprop_numeric(p, seed=3)}
    assert checks["backprop.numeric.weights"].value < 1e-9
    assert checks["backprop.numeric.multipliers"].value < 1e-9


SEED9_EDGES = [(1, 5), (1, 9), (2, 3), (2, 4), (2, 6), (2, 7), (2, 8), (3, 4), (3, 7), (3, 9),
               (4, 9), (5, 8), (5, 9), (6, 8), (7, 6), (7, 7), (8, 6), (9, 3), (9, 6)]


def test_layers_that_no_gradient_reaches_are_judged_against_the_whole_gradient():
    """Neurons 6, 7, 8 lie downstream of the output 9: their weights' gradient is 0 and
    the reference is rounding noise there (a false 'fail' with a 143-degree angle once)."""
    net = Network(nx.DiGraph(SEED9_EDGES), [1, 2], "logistic", outputs=[9])
    p = _weighted(net)
    checks = {c.name: c for c in check_backprop_numeric(p, seed=9)}
    layers = checks["backprop.numeric.layers"]
    assert layers.status == "pass", layers.message
    assert any(r["negligible"] for r in layers.details["layers"])
    dead = [i for i, (j, _k) in enumerate(net.w) if j in (6, 7, 8)]

    def moves_dead_weights(system, state, values, gamma):
        out = derived_limit()(system, state, values, gamma)
        w_dot = out.w_dot.copy()
        w_dot[dead] += 1e-6
        return LawOutput(delta=out.delta, w_dot=w_dot)

    bad = {c.name: c for c in check_backprop_numeric(p, law=moves_dead_weights, seed=9)}
    assert bad["backprop.numeric.layers"].status == "fail"


@pytest.mark.parametrize("law", [sign_flipped(), _halved_deltas], ids=["sign", "halved"])
def test_wrong_law_fails_on_a_recurrent_net(law):
    p = _weighted(random_recurrent(8, 2, density=0.35, seed=1))
    checks = {c.name: c for c in check_backprop_numeric(p, law=law, seed=1)}
    assert checks["backprop.numeric.weights"].status == "fail"
    assert checks["backprop.numeric.layers"].status == "fail"
    assert "relative error" in checks["backprop.numeric.layers"].message


def test_unstable_fixed_point_at_given_weights_is_said_in_words():
    net = Network(nx.DiGraph([(1, 2), (2, 2), (2, 3)]), [1])
    p = _weighted(net)
    # w2_2 = 3: x2 = tanh(3 x2 + e) has three fixed points; Newton from 0 finds the
    # middle, repelling one (sigma'(a) w2_2 > 1)
    given = {"w2_1": 0.0, "w2_2": 3.0, "w3_2": 1.0, "e1": 0.0, "y3": 0.0}
    (check,) = check_backprop_numeric(p, values=given)
    assert check.status == "skip"
    assert "not attracting" in check.message and "max Re eig" in check.message


def test_drawn_weights_are_shrunk_until_the_fixed_point_attracts():
    g = nx.complete_graph(range(2, 7), create_using=nx.DiGraph)
    g.add_edges_from((1, j) for j in range(2, 7))
    g.add_edges_from((j, j) for j in range(2, 7))
    p = _weighted(Network(g, [1], "identity", outputs=[6]))
    case = backprop_case(p, seed=0, scale=8.0)
    assert case.reason is None and case.notes["weight_halvings"] >= 1
    assert case.notes["max_real_eigenvalue"] < 1
    out = derived_limit()(case.system, case.state, case.values, 1.0)
    assert _rel(out.w_dot, -case.grad) < 1e-9
    assert _rel(out.delta, case.delta) < 1e-9


# -- losses of the weights --------------------------------------------------------------
def _chain_by_hand(w21, w32, e1, y3, lam):
    x2 = np.tanh(w21 * e1)
    x3 = np.tanh(w32 * x2)
    r = (x3 - y3) * (1 - x3**2)
    return np.array([r * w32 * (1 - x2**2) * e1 + lam * w21, r * x2 + lam * w32])


def test_weight_decay_reference_and_law_match_the_hand_written_gradient():
    net = ca.chain(3)
    loss = (net.x[3] - net.target_signals()[3]) ** 2 / 2 + LAM * (
        net.w[2, 1] ** 2 + net.w[3, 2] ** 2) / 2
    p = _weighted(net, loss, [LAM])
    assert backprop_kind(p).weight_loss and not backprop_kind(p).templates
    vals = {"e1": 0.8, "y3": -0.3, "lam": 0.25, "t": 0.5}
    w = np.array([0.7, -1.2])
    hand = _chain_by_hand(*w, 0.8, -0.3, 0.25)
    assert _rel(casadi_gradients(p, w, vals).grad_w, hand) < 1e-14
    case = backprop_case(p, values=vals | {"w2_1": w[0], "w3_2": w[1]})
    assert isinstance(case.system, GenericNetworkSystem)
    out = derived_limit()(case.system, case.state, case.values, 2.0)
    assert _rel(out.w_dot, -hand / 2.0) < 1e-9
    checks = {c.name: c for c in check_backprop_numeric(p, values={"lam": 0.25})}
    assert all(c.status == "pass" for c in checks.values()), checks
    assert checks["backprop.numeric.weights"].value < 1e-9


def test_generic_route_evaluates_eq10_like_the_templates():
    """On a plain problem both routes apply: multipliers, accelerations and Jacobians
    of the generic route (compiled mass-matrix form) equal the templates'."""
    p = _weighted(random_recurrent(7, 2, density=0.4, seed=6))
    case = backprop_case(p, seed=6)
    vals = case.values | {"m_x": 0.3, "m_W": 1.7, "theta": 2.0}
    a = case.system.evaluate(case.state, vals)
    b = GenericNetworkSystem(p).evaluate(case.state, vals)
    assert _rel(b.multipliers, a.multipliers) < 1e-12
    assert _rel(b.accelerations_w, a.accelerations_w) < 1e-12
    assert abs(b.J_x - a.J_x).max() < 1e-14 and abs(b.J_W - a.J_W).max() < 1e-14


def test_weight_decay_on_a_layered_net_and_a_recurrent_net():
    for net in (ca.layered([3, 4, 2]), random_recurrent(7, 2, density=0.35, seed=4)):
        decay = LAM * sp.Add(*(w**2 for w in net.weights)) / 2
        plain = _weighted(net)
        p = _weighted(net, squared_error(
            [net.x[o] for o in net.outputs],
            [net.target_signals()[o] for o in net.outputs]) + decay, [LAM])
        case = backprop_case(p, seed=2, values={"lam": 0.1})
        hand = (recurrent_gradients if not net.is_feedforward else casadi_gradients)(
            plain, case.state.w, case.values).grad_w + 0.1 * case.state.w
        assert _rel(case.grad, hand) < 1e-13
        checks = {c.name: c for c in check_backprop_numeric(p, seed=2, values={"lam": 0.1})}
        assert checks["backprop.numeric.weights"].value < 1e-9, checks
        assert checks["backprop.numeric.multipliers"].value < 1e-9
        bad = {c.name: c for c in check_backprop_numeric(p, law=sign_flipped(), seed=2,
                                                         values={"lam": 0.1})}
        assert bad["backprop.numeric.weights"].status == "fail"


def test_assert_backprop_limit_on_weight_decay_is_a_verdict_not_a_derivation_error():
    net = ca.xor()
    loss = (net.x[5] - net.target_signals()[5]) ** 2 / 2 + LAM * sp.Add(
        *(w**2 for w in net.weights)) / 2
    p = _weighted(net, loss, [LAM])
    assert_backprop_limit(p, values={"lam": 0.05})
    with pytest.raises(VerificationError, match="backprop.numeric.weights"):
        assert_backprop_limit(p, law=sign_flipped(), values={"lam": 0.05})


# -- tied weights -----------------------------------------------------------------------
def _tied(net: Network, *pairs) -> Problem:
    base = _weighted(net)
    ties = [Constraint(net.w[a] - net.w[b], name=f"tie{i}") for i, (a, b) in enumerate(pairs)]
    return Problem(base.action, base.constraints + tuple(ties), signals=base.signals,
                   parameters=base.parameters, network=net)


@pytest.mark.parametrize("net,pairs", [
    (ca.xor(), [((3, 1), (4, 2))]),
    (ca.layered([2, 3, 2]), [((3, 1), (4, 2)), ((6, 3), (7, 4))]),
    (random_recurrent(7, 2, density=0.4, seed=5), None),
], ids=["xor", "layered-two-ties", "recurrent"])
def test_tied_weights_law_is_the_untied_gradient_averaged_over_each_tie(net, pairs):
    if pairs is None:
        arcs = list(net.w)
        pairs = [(arcs[0], arcs[-1])]
    p = _tied(net, *pairs)
    kind = backprop_kind(p)
    assert kind.tied and not kind.templates
    case = backprop_case(p, seed=1)
    w = case.state.w
    index = {key: i for i, key in enumerate(net.w)}
    for a, b in pairs:
        assert abs(w[index[a]] - w[index[b]]) < 1e-14
    untied = _weighted(net)
    g = (casadi_gradients if net.is_feedforward else recurrent_gradients)(
        untied, w, case.values).grad_w
    expected = g.copy()
    for a, b in pairs:  # projection onto w_a = w_b: both move by the mean gradient
        expected[index[a]] = expected[index[b]] = (g[index[a]] + g[index[b]]) / 2
    ref = tied_gradients(p, w, case.values, x0=case.state.x)
    assert _rel(ref.projected, expected) < 1e-13
    checks = {c.name: c for c in check_backprop_numeric(p, seed=1)}
    assert all(c.status == "pass" for c in checks.values()), checks
    assert checks["backprop.numeric.weights"].value < 1e-9
    assert checks["backprop.numeric.finite_differences"].value < 1e-8
    bad = {c.name: c for c in check_backprop_numeric(p, law=_halved_deltas, seed=1)}
    assert bad["backprop.numeric.weights"].status == "fail"


# -- no reference ------------------------------------------------------------------------
def test_problems_without_a_reference_skip_with_a_reason():
    q, = S.coordinates("q")
    energy = Problem(Action([q], masses=1, lagrangian=-q**2 / 2))
    leaky = ca.chain(3, speed=S.parameters("c")[0]).problem()
    net = ca.xor()
    base = net.problem()
    on_outputs = Problem(base.action, base.constraints + (Constraint(net.x[5] - net.x[3],
                                                                     name="odd"),),
                         signals=base.signals, parameters=base.parameters, network=net)
    fixed_masses = ca.chain(3).problem(mass_x=1, mass_W=2)
    no_loss = Network(nx.DiGraph([(1, 2), (2, 3), (3, 2)]), [1], outputs=[]).problem(
        loss=sp.Integer(0))
    (check,) = check_backprop_numeric(no_loss)
    assert check.status == "skip" and "F = 0" in check.message
    net3 = ca.chain(3)
    constant = net3.problem(loss=net3.target_signals()[3] ** 2)
    (check,) = check_backprop_numeric(constant)
    assert check.status == "skip" and "gradient is zero" in check.message
    for p, words in ((energy, "not built from a Network"), (leaky, "speed c"),
                     (fixed_masses, "fixed numbers"),
                     (on_outputs, "not a constraint on the weights alone")):
        (check,) = check_backprop_numeric(p)
        assert check.status == "skip" and words in check.message, check.message


# -- problem files -----------------------------------------------------------------------
WEIGHT_DECAY_FILE = """
name = "xor_decay"
parameters = { m_x = 0.01, m_W = 1.0, theta = 10.0, lam = 0.01 }
[network]
edges = [[1, 3], [2, 3], [1, 4], [2, 4], [3, 5], [4, 5]]
inputs = [1, 2]
[action]
mass_x = "m_x"
mass_W = "m_W"
weight = "exp(theta*t)"
loss = "(x5 - y5)**2/2 + lam*(w3_1**2 + w3_2**2 + w4_1**2 + w4_2**2 + w5_3**2 + w5_4**2)/2"
"""


def test_problem_file_loss_may_name_the_weights(tmp_path):
    f = tmp_path / "decay.toml"
    f.write_text(WEIGHT_DECAY_FILE)
    spec = load_problem(f)
    net = spec.network
    assert set(net.weights) <= spec.problem.action.lagrangian.free_symbols
    assert backprop_kind(spec.problem).weight_loss
    checks = {c.name: c for c in check_backprop_numeric(spec.problem,
                                                        values={"lam": spec.values["lam"]})}
    assert checks["backprop.numeric.weights"].value < 1e-9


def test_problem_file_loss_with_a_misspelled_weight_names_file_field_and_fix(tmp_path):
    f = tmp_path / "decay.toml"
    f.write_text(WEIGHT_DECAY_FILE.replace("w5_4**2", "w5_9**2"))
    with pytest.raises(ProblemFileError) as err:
        load_problem(f)
    msg = str(err.value)
    assert "decay.toml" in msg and "action.loss" in msg and "w5_9" in msg
    assert "did you mean" in msg and "w5_" in msg


@pytest.mark.slow
def test_dense_200_neuron_recurrent_net_matches_recurrent_backprop():
    net = random_recurrent(200, 10, density=1.0, seed=1, n_outputs=5)
    checks = {c.name: c for c in check_backprop_numeric(_weighted(net), seed=0)}
    assert checks["backprop.numeric.multipliers"].value < 1e-9
    assert checks["backprop.numeric.weights"].value < 1e-9
    assert checks["backprop.numeric.finite_differences"].value < 1e-9
    assert checks["backprop.numeric.layers"].status == "pass"


TIED_FILE = """
name = "xor_tied"
parameters = { theta = 10.0, m_x = 0.01, m_W = 1.0 }
[network]
edges = [[1, 3], [2, 3], [1, 4], [2, 4], [3, 5], [4, 5]]
inputs = [1, 2]
[action]
mass_x = "m_x"
mass_W = "m_W"
weight = "exp(theta*t)"
[[constraints]]
name = "tie"
expr = "w3_1 - w4_2"
"""


def test_problem_file_network_may_tie_weights(tmp_path):
    """[[constraints]] in a network file used to be ignored without a word."""
    f = tmp_path / "tied.toml"
    f.write_text(TIED_FILE)
    spec = load_problem(f)
    assert [c.name for c in spec.problem.constraints][-1] == "tie"
    assert backprop_kind(spec.problem).tied == ("tie",)
    checks = {c.name: c for c in check_backprop_numeric(spec.problem)}
    assert checks["backprop.numeric.weights"].value < 1e-9
    for old, new, field in (('"w3_1 - w4_2"', '"w3_1 - w4_9"', "constraints[0].expr"),
                            ('name = "tie"', 'name = "G3"', "constraints[0].name")):
        f.write_text(TIED_FILE.replace(old, new))
        with pytest.raises(ProblemFileError) as err:
            load_problem(f)
        assert f"tied.toml:{field}" in str(err.value) and "Fix:" in str(err.value)


def test_verify_gives_every_kind_a_verdict_without_false_fails():
    """verify() end to end on a tied, a weight-decay and a recurrent net: every check
    passes or says why it does not apply (tied weights used to fail rank.symbolic on
    G_xi and the initial conditions on random weights off C(W) = 0)."""
    theta, lam = S.parameters("theta lam")
    net = ca.layered([3, 4, 2])
    outs = [net.x[o] for o in net.outputs]
    decay = sum((x - S.symbol(f"y{o}")) ** 2 / 2 for o, x in zip(net.outputs, outs)) + \
        lam * sum(w ** 2 for w in net.weights) / 2
    cases = {
        "tied": (_tied(ca.xor(), ((3, 1), (4, 2))), None),
        "decay": (net.problem(weight=sp.exp(theta * S.t), parameters=[theta, lam],
                              loss=decay), {"lam": 0.1}),
        "recurrent": (_weighted(random_recurrent(8, 2, density=0.35, seed=1)), None),
    }
    for name, (p, values) in cases.items():
        report = verify(p, values=values, progress=False)
        assert report.exit_code == 0, f"{name}:\n{report}"
        assert report["backprop.numeric.weights"].status == "pass"
        assert report["initial_conditions"].status == "pass"
        assert all(c.message for c in report.checks if c.status == "skip")


def test_the_pytest_helper_takes_any_kind_and_a_protocol_law():
    """assert_backprop_limit on a recurrent net (it used to raise on the symbolic step)
    and with a law written in the public protocol (a LawInput -> LawRates function)."""
    from cognitive_action.verify.laws import LawRates

    assert_backprop_limit(_weighted(random_recurrent(8, 2, density=0.35, seed=1)))
    p = _weighted(ca.layered([2, 3, 1]))

    def half_rates(given):
        exact = given.backprop()
        return LawRates(delta=exact.delta, w_dot={a: v / 2 for a, v in exact.w_dot.items()})

    with pytest.raises(VerificationError, match="backprop limit not reached") as info:
        assert_backprop_limit(p, law=half_rates)
    assert "0.5" in str(info.value)
