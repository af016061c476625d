"""Data streams as signals (issue 13, item 2): validation before any work, the compiled
system run over a stream with the sample as a runtime parameter, consistency at every
switch of sample, the gradient-flow limit on a constant sample, build cost independent of
the number of samples."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from cognitive_action.compile import SolverOptions, compile_system
from cognitive_action.data import Stream, consistent_state, digits_stream, run_stream
from cognitive_action.declare import symbols as S
from cognitive_action.declare.network import chain, layered, xor
from cognitive_action.errors import CognitiveActionError, DataError, OptionalDependencyError

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0.0, 1.0, 1.0, 0.0])


def _learning_problem(net):
    theta, = S.parameters("theta")
    return net.problem(weight=sp.exp(theta * S.t), parameters=[theta])


def _random_weights(system, net, seed=0, scale=0.8):
    rng = np.random.default_rng(seed)
    y0 = np.zeros(system.n_states)
    for w in net.weights:
        y0[system.states.index(str(w))] = rng.normal(0.0, scale)
    return y0


# -- validation --------------------------------------------------------------------------
@pytest.mark.parametrize("inputs, targets, kw, field", [
    (np.where(np.eye(4, 2) > 0, np.nan, XOR_X), XOR_Y, {}, "inputs[0, 0]"),
    (XOR_X, [0.0, 1.0, np.inf, 0.0], {}, "targets[2]"),
    (XOR_X[:, :1], XOR_Y, {}, "inputs"),
    (XOR_X, np.ones((4, 2)), {}, "targets"),
    (XOR_X, XOR_Y[:3], {}, "targets"),
    (XOR_X, XOR_Y, {"tau": 0.0}, "tau"),
    (XOR_X, XOR_Y, {"tau": -1.0}, "tau"),
    (XOR_X, XOR_Y, {"order": "random"}, "order"),
])
def test_bad_streams_raise_a_data_error_naming_the_field(inputs, targets, kw, field):
    with pytest.raises(DataError) as info:
        Stream(inputs, targets, network=xor(), **({"tau": 1.0} | kw))
    assert info.value.field == field
    assert isinstance(info.value, CognitiveActionError) and info.value.fix


@pytest.mark.parametrize("labels, field", [([0, 1, 3, 0], "targets[2]"),
                                           ([0, -1, 1, 0], "targets[1]"),
                                           ([0, 1, 0.5, 0], "targets[2]")])
def test_labels_out_of_range_or_not_integers(labels, field):
    net = layered([2, 3, 3])
    with pytest.raises(DataError) as info:
        Stream(XOR_X, labels, tau=1.0, network=net, n_classes=3)
    assert info.value.field == field


def test_n_classes_must_match_the_outputs():
    with pytest.raises(DataError, match="n_classes") as info:
        Stream(XOR_X, [0, 1, 1, 0], tau=1.0, network=xor(), n_classes=2)
    assert info.value.field == "n_classes"


def test_labels_are_one_hot_in_output_order_and_samples_are_signal_dicts():
    net = layered([2, 2, 3])
    s = Stream(XOR_X, [2, 0, 1, 2], tau=1.0, network=net, n_classes=3, on=1.0, off=-1.0)
    names = tuple(str(net.target_signals()[o]) for o in net.outputs)
    assert s.target_names == names
    assert s.sample(0) == {"e1": 0.0, "e2": 0.0, names[0]: -1.0, names[1]: -1.0,
                           names[2]: 1.0}
    assert [d[names[0]] for d in s] == [-1.0, 1.0, -1.0, -1.0]


def test_shuffled_order_is_a_seeded_permutation_per_epoch():
    a = Stream(np.arange(50.0), np.zeros(50), tau=1.0, network=chain(2), order="shuffle",
               seed=7)
    b = Stream(np.arange(50.0), np.zeros(50), tau=1.0, network=chain(2), order="shuffle",
               seed=7)
    assert np.array_equal(a.epoch_order(3), b.epoch_order(3))
    assert not np.array_equal(a.epoch_order(0), a.epoch_order(1))
    assert sorted(a.epoch_order(2).tolist()) == list(range(50))


def test_runner_refuses_signals_compiled_as_expressions():
    net = chain(2)
    system = compile_system(net.problem(), signals={"e1": sp.sin(S.t)})
    s = Stream([0.5], [0.0], tau=1.0, network=net)
    with pytest.raises(DataError) as info:
        run_stream(system, s, np.zeros(system.n_states), {"m_x": 1.0, "m_W": 1.0})
    assert info.value.field == "system"


def test_runner_refuses_what_it_does_not_run_before_any_work():
    from cognitive_action.errors import CompileError

    net = chain(2)
    system = compile_system(_learning_problem(net))
    s = Stream([0.5], [0.0], tau=1.0, network=net)
    values = {"m_x": 1.0, "m_W": 1.0, "theta": 1.0}
    with pytest.raises(CompileError, match="dopri"):
        run_stream(system, s, np.zeros(system.n_states), values,
                   options=SolverOptions(method="dopri"))
    with pytest.raises(DataError) as info:
        run_stream(system, Stream([0.5], [0.0], tau=1.0, network=net, interpolate=True),
                   np.zeros(system.n_states), values)
    assert info.value.field == "interpolate"
    with pytest.raises(DataError) as info:
        run_stream(system, s, np.zeros(system.n_states), values, epochs=0)
    assert info.value.field == "epochs"
    assert not any(isinstance(k, tuple) for k in system._cache)  # nothing was built


# -- digits ------------------------------------------------------------------------------
def test_digits_stream_split_by_seed():
    pytest.importorskip("sklearn")
    net = layered([64, 4, 10])
    train, test = digits_stream(net, tau=0.5, seed=1)
    train2, test2 = digits_stream(net, tau=0.5, seed=1)
    assert len(train) + len(test) == 1797 and abs(len(test) - 0.25 * 1797) < 1
    assert np.array_equal(test.X, test2.X) and np.array_equal(train.labels, train2.labels)
    assert train.X.max() <= 1.0 and train.Y.sum(axis=1).tolist() == [1.0] * len(train)
    with pytest.raises(DataError, match="64"):
        digits_stream(layered([2, 2, 10]))


def test_digits_stream_without_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(OptionalDependencyError, match=r"cognitive_action\[data\]"):
        digits_stream(layered([64, 2, 10]))


# -- consistency at the switches ----------------------------------------------------------
def _xor_forward(w, e):
    """The XOR net's forward pass by hand (an independent reference)."""
    x3 = np.tanh(w["w3_1"] * e[0] + w["w3_2"] * e[1])
    x4 = np.tanh(w["w4_1"] * e[0] + w["w4_2"] * e[1])
    return np.array([e[0], e[1], x3, x4, np.tanh(w["w5_3"] * x3 + w["w5_4"] * x4)])


def test_every_switch_is_consistent_and_its_jump_is_reported():
    net = xor()
    problem = _learning_problem(net)
    system = compile_system(problem)
    stream = Stream(XOR_X, XOR_Y, tau=0.3, network=net, order="shuffle", seed=2)
    y0 = _random_weights(system, net)
    values = {"m_x": 1e-2, "m_W": 5e-2, "theta": 10.0}
    run = run_stream(system, stream, y0, values, epochs=2)
    assert len(run.switches) == 8
    g, gd = run.max_residuals()
    assert g <= 1e-10 and gd <= 1e-10
    # the reported jump in x is the change to the new forward pass (by hand)
    xi = [system.states.index(str(x)) for x in net.neurons]
    for k in range(1, 8):
        prev = run.states[k - 1]
        w = {str(s): prev[system.states.index(str(s))] for s in net.weights}
        e = stream.X[run.switches[k].sample]
        expect = np.max(np.abs(_xor_forward(w, e) - prev[xi]))
        assert run.switches[k].jump_x == pytest.approx(expect, abs=1e-12)
    assert max(s.jump_x for s in run.switches) > 0.1  # the inputs do jump


@pytest.mark.parametrize("route", ["generic", "network"])
def test_switches_are_consistent_on_either_route(route):
    net = chain(3)
    system = compile_system(_learning_problem(net), route=route)
    rng = np.random.default_rng(4)
    stream = Stream(rng.uniform(-1, 1, 6), rng.uniform(-0.5, 0.5, 6), tau=0.2, network=net)
    run = run_stream(system, stream, _random_weights(system, net, seed=4),
                     {"m_x": 0.05, "m_W": 0.2, "theta": 3.0})
    g, gd = run.max_residuals()
    assert g <= 1e-10 and gd <= 1e-10
    G, Gd = system.evaluate_constraints(run.times[-1], run.final,
                                        system.parameter_vector(
                                            {"m_x": 0.05, "m_W": 0.2, "theta": 3.0}
                                            | stream.sample(5)))
    assert np.max(np.abs(G)) < 1e-6  # the dynamics keep G = 0 between switches


def test_consistent_state_satisfies_the_declared_constraints_in_sympy():
    """Spot check of G = 0 and Ġ = 0 on the declared SymPy constraint expressions (the
    signals are constant, so Ġ = Σ ∂G/∂q q̇)."""
    net = xor()
    problem = _learning_problem(net)
    system = compile_system(problem)
    f = consistent_state(system, net)
    rng = np.random.default_rng(5)
    y = rng.normal(0.0, 0.7, system.n_states)  # weights, velocities: anything
    sample = {"e1": 0.3, "e2": -0.9, "y5": 0.5}
    p = system.parameter_vector({"m_x": 1.0, "m_W": 1.0, "theta": 1.0} | sample)
    y_plus, G, Gd = (np.asarray(v).ravel() for v in f(1.7, y, p))
    assert np.max(np.abs(G)) <= 1e-10 and np.max(np.abs(Gd)) <= 1e-10
    by_name = dict(zip(system.states, y_plus)) | sample

    def at(expr):
        return float(expr.xreplace({x: by_name[str(x)] for x in expr.free_symbols}))

    for c in problem.constraints:
        assert abs(at(c.expr)) <= 1e-10
        rate = sum(sp.diff(c.expr, q) * S.dot(q) for q in problem.coordinates)
        assert abs(at(rate)) <= 1e-10
    # weights and their velocities are untouched
    keep = [i for i, n in enumerate(system.states) if n.startswith("w")]
    assert np.array_equal(y_plus[keep], y[keep])


def test_gradient_flow_limit_on_a_constant_sample():
    """Small masses, large θ with θ m_W = γ: the weights follow γ Ẇ = -∇V̄ (eq. 14),
    integrated independently by SciPy on CasADi's AD gradient of the forward pass; the
    error falls with 1/θ (m_x shrinks with m_W: a fixed m_x leaves an error of order
    m_x/m_W that grows with θ)."""
    from cognitive_action.verify.convergence import gradient_function

    net = xor()
    problem = _learning_problem(net)
    system = compile_system(problem)
    sample = np.array([[1.0, 0.0]])
    stream = Stream(np.repeat(sample, 4, axis=0), np.full(4, 0.8), tau=0.5, network=net)
    y0 = _random_weights(system, net, seed=3, scale=0.5)
    wi = [system.states.index(str(w)) for w in net.weights]
    grad = gradient_function(problem, {"e1": 1.0, "e2": 0.0, "y5": 0.8})
    gamma = 1.0
    ref = solve_ivp(lambda t, w: -grad(t, w) / gamma, (0.0, 2.0), y0[wi], method="DOP853",
                    rtol=1e-11, atol=1e-12).y[:, -1]
    errors = []
    for theta in (100.0, 200.0):
        run = run_stream(system, stream, y0,
                         {"m_x": 1e-3 * gamma / theta, "m_W": gamma / theta, "theta": theta},
                         options=SolverOptions(rtol=1e-9, atol=1e-11))
        errors.append(np.max(np.abs(run.final[wi] - ref)))
        assert max(s.jump_x for s in run.switches[1:]) <= 1e-6  # the same sample
    moved = np.max(np.abs(ref - y0[wi]))
    assert moved > 0.05
    assert errors[1] < 0.02 * moved
    assert errors[1] < 0.7 * errors[0]


# -- build cost --------------------------------------------------------------------------
def test_rk_sample_step_equals_casadi_rk_integrator():
    """The compiled RK4 presentation step against CasADi's own ``rk`` integrator (the
    same scheme, built independently) on the same sample."""
    from cognitive_action.compile.integration import chunk_function, integrator_spec
    from cognitive_action.data.run import sample_step

    net = xor()
    system = compile_system(_learning_problem(net))
    stream = Stream(XOR_X[1:2], XOR_Y[1:2], tau=0.2, network=net)
    y = np.asarray(consistent_state(system, net)(
        0.3, _random_weights(system, net),
        system.parameter_vector({"m_x": 0.1, "m_W": 0.5, "theta": 2.0} | stream.sample(0))
    )[0]).ravel()
    p = np.append(system.parameter_vector({"m_x": 0.1, "m_W": 0.5, "theta": 2.0}
                                          | stream.sample(0)), 0.3)
    spec = integrator_spec(system, SolverOptions(method="rk", steps=3))
    ours = np.asarray(sample_step(system, 0.2, 3)(x0=y, p=p)["xf"])[:, -1]
    theirs = np.asarray(chunk_function(system, spec, np.array([0.0, 0.2]))(
        x0=y, p=p)["xf"])[:, -1]
    assert np.max(np.abs(ours - y)) > 1e-3
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_build_cost_does_not_depend_on_the_number_of_samples():
    net = chain(3)
    problem = _learning_problem(net)
    rng = np.random.default_rng(0)
    opts = SolverOptions(method="rk", steps=1)
    built = []
    for n in (10, 10_000):
        system = compile_system(problem)
        stream = Stream(rng.uniform(-1, 1, n), rng.uniform(-0.5, 0.5, n), tau=0.01,
                        network=net)
        run = run_stream(system, stream, _random_weights(system, net),
                         {"m_x": 1e-2, "m_W": 1e-1, "theta": 5.0}, options=opts,
                         record=False)
        entries = sorted(repr(k[0]) for k in system._cache if isinstance(k, tuple))
        built.append((run.integrators_built, entries, len(run.switches)))
    assert built[0][0] == built[1][0] == 1
    assert built[0][1] == built[1][1] == ["'stream_rk4'"]
    assert (built[0][2], built[1][2]) == (10, 10_000)
