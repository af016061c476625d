"""Training with the full derived dynamics (``mode="dynamics"``) and the diffusion law
(``mode="diffusion"``, eq. 18-20) against independent references: hand-written NumPy SGD
(``sgd_baseline``), the per-sample gradient flow integrated by SciPy on a hand-written
gradient, classical RK4 of :mod:`cognitive_action.data.run`, the declared SymPy
constraints at the switches."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from cognitive_action.compile import compile_system
from cognitive_action.declare import symbols as S
from cognitive_action.declare.network import Network, layered
from cognitive_action.derive.network import derive_network
from cognitive_action.errors import DeclarationError
from cognitive_action.learn import initial_weights, sgd_baseline, train
from cognitive_action.learn.presentation import etd_coefficients, jacobi_switch
from cognitive_action.learn.runners import DiffusionOptions, DynamicsOptions

THETA, = S.parameters("theta")


def _problem(sizes=(4, 3, 2)):
    net = layered(list(sizes))
    return net, net.problem(weight=sp.exp(THETA * S.t), parameters=[THETA])


def _data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)


def _order(errors, params):
    return float(np.polyfit(np.log(params), np.log(errors), 1)[0])


def test_dynamics_tends_to_sgd_as_theta_grows_with_gamma_fixed():
    """γ = τ/η fixed, m_W = γ/θ, m_x = r m_W with r ∝ 1/θ: one ETD1 step per sample
    freezes the forcing over τ, so the weights after an epoch differ from SGD's only by
    the velocity lag after each switch (relative 1/(θτ)) and eq. (10)'s O(m_x/m_W):
    expected order 1 in 1/θ."""
    _, p = _problem()
    data = _data()
    sgd = sgd_baseline(p, data, epochs=1, learning_rate=0.1, seed=0)
    thetas = np.array([50.0, 100.0, 200.0])
    errors = []
    for th in thetas:
        h = train(p, data, mode="dynamics", epochs=1, learning_rate=0.1, seed=0,
                  options=DynamicsOptions(theta=th, mass_ratio=0.05 / th))
        errors.append(np.max(np.abs(h.weights - sgd.weights)))
        assert h.settings["gamma"] == pytest.approx(10.0) and \
            h.settings["m_W"] == pytest.approx(10.0 / th)
    moved = np.max(np.abs(sgd.weights - initial_weights(p.network, 0)))
    assert moved > 0.1
    assert errors[-1] < 1.0 / thetas[-1] * moved  # relative 1/(θτ), τ = 1
    assert _order(errors, 1.0 / thetas) == pytest.approx(1.0, abs=0.15)


def _hand_flow(net, X, labels, eta, tau, seed):
    """The per-sample gradient flow γ Ẇ = -∂V/∂W (γ = τ/η) over τ per sample, by SciPy
    DOP853 on a hand-written backprop gradient of a 4-3-2 tanh net, samples in
    train()'s order."""
    Y = np.eye(2)[labels]
    pos = {k: i for i, k in enumerate(net.w)}
    layers = [list(net.inputs), [n for n in net.order if n not in net.inputs
                                 and n not in net.outputs], list(net.outputs)]

    def unpack(w):
        return [np.array([[w[pos[j, k]] for k in a] for j in b])
                for a, b in zip(layers, layers[1:])]

    def pack(mats):
        w = np.zeros(len(net.w))
        for M, a, b in zip(mats, layers, layers[1:]):
            for r, j in enumerate(b):
                for c, k in enumerate(a):
                    w[pos[j, k]] = M[r, c]
        return w

    def minus_grad(w, x, y):
        W1, W2 = unpack(w)
        h = np.tanh(W1 @ x)
        o = np.tanh(W2 @ h)
        s2 = (y - o) * (1 - o * o)
        s1 = (W2.T @ s2) * (1 - h * h)
        return pack([np.outer(s1, x), np.outer(s2, h)])

    gamma = tau / eta
    w = initial_weights(net, seed)
    for i in np.random.default_rng([seed, 0x0DE5]).permutation(len(X)):
        w = solve_ivp(lambda t, v, i=i: minus_grad(v, X[i], Y[i]) / gamma, (0.0, tau), w,
                      method="DOP853", rtol=1e-12, atol=1e-13).y[:, -1]
    return w


def test_dynamics_follows_the_per_sample_gradient_flow_and_sgd_is_its_euler_step():
    """Integrated accurately (ETD2, 8 steps per sample), the dynamics tend to the
    gradient flow over τ of each sample at order 1 in 1/θ (the lag); SGD is that flow's
    Euler step, O(η²) away per sample, and the dynamics' distance to SGD tends to it."""
    net, p = _problem()
    X, labels = _data()
    flow = _hand_flow(net, X, labels, eta=0.1, tau=1.0, seed=0)
    sgd = sgd_baseline(p, (X, labels), epochs=1, learning_rate=0.1, seed=0)
    thetas = np.array([50.0, 100.0, 200.0])
    errors, to_sgd = [], []
    for th in thetas:
        h = train(p, (X, labels), mode="dynamics", epochs=1, learning_rate=0.1, seed=0,
                  options=DynamicsOptions(theta=th, mass_ratio=0.05 / th, steps=8, order=2))
        errors.append(np.max(np.abs(h.weights - flow)))
        to_sgd.append(np.max(np.abs(h.weights - sgd.weights)))
    gap = np.max(np.abs(flow - sgd.weights))
    assert gap > 10 * errors[-1]
    assert _order(errors, 1.0 / thetas) == pytest.approx(1.0, abs=0.15)
    assert abs(to_sgd[-1] - gap) <= errors[-1] * 1.01


def test_exponential_integrator_converges_to_classical_rk4():
    """ETD1 and ETD2 against the RK4 presentation of data.run (Newton switch, classical
    RK4, an independent code path) with many steps: orders 1 and 2 in the step."""
    _, p = _problem()
    data = _data(8)
    kw = {"mode": "dynamics", "epochs": 1, "learning_rate": 0.1, "seed": 1}
    ref = train(p, data, options=DynamicsOptions(theta=20.0, steps=80, scheme="rk4"),
                **kw).weights
    for order, expected in ((1, 1.0), (2, 2.0)):
        steps = np.array([4, 8, 16])
        err = [np.max(np.abs(train(p, data, options=DynamicsOptions(
            theta=20.0, steps=int(k), order=order), **kw).weights - ref)) for k in steps]
        # ETD2 measures 2.2-2.4 here (4 to 64 steps: not yet asymptotic, hθ ≥ 0.3)
        assert expected - 0.2 <= _order(err, 1.0 / steps) <= expected + 0.6
        assert err[-1] < 1e-4 if order == 2 else err[-1] < 1e-2


def test_etd_coefficients_against_closed_forms():
    """``e^{hL}``, ``h φ₁(hL)``, ``h φ₂(hL)`` of L = [[0, 1], [0, -ρ]] in closed form."""
    for rho, h in ((3.0, 0.7), (50.0, 1.0), (1e-4, 0.3)):
        e = np.exp(-rho * h)
        e01, e11, c1, d1, c2, d2 = etd_coefficients(rho, h)
        assert e11 == pytest.approx(e, rel=1e-12)
        assert e01 == pytest.approx((1 - e) / rho, rel=1e-10)
        assert d1 == pytest.approx((1 - e) / rho, rel=1e-10)
        assert c1 == pytest.approx((h - (1 - e) / rho) / rho, rel=1e-7)
        assert d2 == pytest.approx((e - 1 + rho * h) / (h * rho ** 2), rel=1e-7)
        # c2 = (1/h)∫₀^h s (1 - e^{-ρ(h-s)})/ρ ds
        s = np.linspace(0.0, h, 20001)
        f = s * (1 - np.exp(-rho * (h - s))) / rho / h
        assert c2 == pytest.approx(np.trapezoid(f, s), rel=1e-6)


def _random_dag(seed):
    rng = np.random.default_rng(seed)
    g = nx.DiGraph()
    n = 7
    for j in range(3, n + 1):
        preds = rng.choice(np.arange(1, j), size=min(j - 1, 3), replace=False)
        g.add_edges_from((int(k), j) for k in preds)
    return Network(g, [1, 2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_switch_satisfies_the_declared_constraints(seed):
    """The compiled switch on random feedforward graphs (skip arcs, several depths):
    G = 0 and Ġ = Σ ∂G/∂q q̇ = 0 to 1e-10 on the declared SymPy constraints; weights
    and their velocities untouched."""
    import casadi as ca

    net = _random_dag(seed)
    p = net.problem(weight=sp.exp(THETA * S.t), parameters=[THETA])
    ns = derive_network(p)
    system = compile_system(ns)
    t, y, pp = ca.MX.sym("t"), ca.MX.sym("y", system.n_states), \
        ca.MX.sym("p", system.n_parameters)
    f = ca.Function("switch", [t, y, pp], list(jacobi_switch(system, ns, t, y, pp)))
    rng = np.random.default_rng(seed)
    yv = rng.normal(0.0, 0.8, system.n_states)
    sample = {str(s): float(rng.normal()) for s in net.input_signals().values()} | \
        {str(s): 0.3 for s in net.target_signals().values()}
    pv = system.parameter_vector({"m_x": 1e-3, "m_W": 0.1, "theta": 10.0} | sample)
    yp, G, Gd = (np.asarray(v).ravel() for v in f(0.4, yv, pv))
    by_name = dict(zip(system.states, yp)) | sample

    def at(expr):
        return float(expr.xreplace({s: by_name[str(s)] for s in expr.free_symbols}))

    for c in p.constraints:
        assert abs(at(c.expr)) <= 1e-10
        assert abs(at(sum(sp.diff(c.expr, q) * S.dot(q) for q in p.coordinates))) <= 1e-10
    keep = [i for i, n in enumerate(system.states) if n.startswith("w")]
    assert np.array_equal(yp[keep], yv[keep])
    assert np.max(np.abs(G)) <= 1e-10 and np.max(np.abs(Gd)) <= 1e-10


def test_training_reports_consistent_switches_and_limit_metrics():
    _, p = _problem()
    data = _data(12)
    h = train(p, data, data, mode="dynamics", epochs=2, learning_rate=0.1, seed=3,
              options={"theta": 40.0})
    lim = train(p, data, data, mode="limit", epochs=0, learning_rate=0.1, seed=3)
    assert len(h.switch_residuals) == 2
    assert max(max(r) for r in h.switch_residuals) <= 1e-10
    # epoch 0 is the same weights through the same kernel: identical numbers
    assert h.train_loss[0] == lim.train_loss[0] and h.test_accuracy[0] == lim.test_accuracy[0]
    assert h.train_loss[-1] < h.train_loss[0]


@pytest.mark.parametrize("mode,options", [
    ("dynamics", DynamicsOptions(theta=30.0)),
    ("diffusion", DiffusionOptions(theta=10.0, speed=40.0))])
def test_resume_equals_an_uninterrupted_run_bit_for_bit(tmp_path, mode, options):
    _, p = _problem()
    data = _data(10)
    kw = {"mode": mode, "learning_rate": 0.1, "seed": 2, "options": options}
    full = train(p, data, data, epochs=3, **kw)
    part = train(p, data, data, epochs=1, out=tmp_path, **kw)
    assert part.epochs == 1
    with np.load(tmp_path / "checkpoint.npz") as z:
        state = z["extra_state"]
    vel = [i for i, n in enumerate(compile_system(p).states) if n.startswith("w")
           and n.endswith("_dot")] if mode == "dynamics" else []
    if vel:
        assert np.max(np.abs(state[vel])) > 1e-4  # the weight velocities are saved
    rest = train(p, data, data, epochs=3, out=tmp_path, **kw)
    assert rest.resumed_from == 1
    assert np.array_equal(rest.weights, full.weights)
    assert rest.train_loss == full.train_loss and rest.test_loss == full.test_loss
    assert rest.switch_residuals == full.switch_residuals


def test_diffusion_tends_to_the_dynamics_as_c_grows():
    """Neurons of speed c, the stable relaxation of eq. (20): the forward wave and the
    multipliers lag by O(1/c), and the relaxation's equilibrium (T - θ/c) δ = -V_x is
    O(θ/c) from backprop: the weights after an epoch approach the dynamics mode's (same
    τ, θ, m_x → 0) at order about 1 in 1/c."""
    _, p = _problem()
    data = _data(10)
    kw = {"epochs": 1, "learning_rate": 0.1, "seed": 0}
    ref = train(p, data, mode="dynamics", options=DynamicsOptions(
        theta=20.0, steps=8, order=2, mass_ratio=1e-9), **kw).weights
    speeds = np.array([100.0, 200.0, 400.0])
    errors = []
    for c in speeds:
        h = train(p, data, mode="diffusion", options=DiffusionOptions(theta=20.0, speed=c),
                  **kw)
        errors.append(np.max(np.abs(h.weights - ref)))
        assert "relaxation" in h.settings["variant"]
        assert max(h.switch_residuals[0]) <= 1e-10
    assert errors[-1] < 0.3 * errors[0]
    assert _order(errors, 1.0 / speeds) == pytest.approx(1.0, abs=0.4)


def test_bad_settings_are_refused_before_any_work():
    net = layered([4, 3, 2])
    data = _data(5)
    with pytest.raises(DeclarationError, match="oscillate") as info:
        train(net.problem(), data, mode="dynamics", epochs=1, learning_rate=0.1)
    assert info.value.fix
    _, p = _problem()
    for bad in ({"steps": 0}, {"order": 3}, {"scheme": "euler"}, {"tau": -1.0},
                {"mass_ratio": float("nan")}, {"nope": 1}):
        with pytest.raises(DeclarationError):
            train(p, data, mode="dynamics", epochs=1, learning_rate=0.1, options=bad)
    with pytest.raises(DeclarationError, match="c > θ|θ - c"):
        train(p, data, mode="diffusion", epochs=1, learning_rate=0.1,
              options=DiffusionOptions(theta=50.0, speed=20.0))
    with pytest.raises(DeclarationError, match="stability") as info:
        train(p, data, mode="diffusion", epochs=1, learning_rate=0.1,
              options=DiffusionOptions(theta=10.0, speed=200.0, steps=1))
    assert "steps >= 72" in info.value.fix


@pytest.mark.slow
def test_digits_64_32_10_dynamics_within_one_point_of_sgd():
    """The issue's target: same split, epochs, learning rate and initial weights; the
    full derived dynamics with small masses (θ = 50, τ = 1, m_x = 10⁻³ m_W)."""
    pytest.importorskip("sklearn")
    from cognitive_action.learn import load_digits_split

    _, p = _problem((64, 32, 10))
    tr, te = load_digits_split(0.2, seed=0)
    h = train(p, tr, te, mode="dynamics", epochs=3, learning_rate=0.05, seed=0,
              options=DynamicsOptions(theta=50.0))
    s = sgd_baseline(p, tr, te, epochs=3, learning_rate=0.05, seed=0)
    assert abs(h.test_accuracy[-1] - s.test_accuracy[-1]) <= 0.01
    assert s.test_accuracy[-1] > 0.85


@pytest.mark.slow
def test_generated_c_presentation_is_bit_identical(tmp_path, monkeypatch):
    """The presentation run from generated C (gcc, a few seconds) gives the same bits."""
    import shutil

    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler")
    monkeypatch.setenv("COGNITIVE_ACTION_CACHE", str(tmp_path))
    _, p = _problem()
    data = _data(6)
    kw = {"mode": "dynamics", "epochs": 1, "learning_rate": 0.1, "seed": 4}
    vm = train(p, data, options=DynamicsOptions(theta=30.0), **kw)
    c = train(p, data, options=DynamicsOptions(theta=30.0, codegen=True), **kw)
    assert "generated C" in c.settings["scheme"]
    assert np.array_equal(vm.weights, c.weights)
