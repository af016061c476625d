"""compile_reduced: the limit systems (12)-(13), (14), (15)-(17), (20) compiled and run.

Every reference is independent of the derivation and of the compiler: gradient flows of
a hand-written forward pass differentiated by CasADi AD and integrated by SciPy, SymPy's
own linear solve of the reduced rows at numeric points, the AD backprop deltas of
verify.reference, and the hand-assembled continuous-diffusion RHS of derive_diffusion.
"""

from __future__ import annotations

import dataclasses

import casadi
import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

import cognitive_action as ca
from cognitive_action.compile import compile_system
from cognitive_action.compile.reduced import compile_reduced, freeze, reduced_layout
from cognitive_action.compile.simulate import simulate
from cognitive_action.declare import symbols as S
from cognitive_action.derive.euler_lagrange import euler_lagrange
from cognitive_action.derive.limits import (
    Limit,
    ReducedSystem,
    backprop,
    gradient_flow,
    quasi_static,
    reduce,
    staged,
)
from cognitive_action.errors import CompileError, InconsistentInitialConditionsError
from cognitive_action.problem_files.loader import load_problem, problems_dir
from cognitive_action.verify.reference import casadi_gradients

sym = S.symbol


def _rate(problem):
    return next(s for s in problem.parameters if str(s) == "theta")


@pytest.fixture(scope="module")
def xor_spec():
    return load_problem(problems_dir() / "xor.toml")


@pytest.fixture(scope="module")
def xor_el(xor_spec):
    return euler_lagrange(xor_spec.problem)


@pytest.fixture(scope="module")
def xor_backprop(xor_spec, xor_el):
    red = reduce(xor_el, backprop(rate=_rate(xor_spec.problem)))
    system = compile_reduced(red, problem=xor_spec.problem)
    # the public entry point dispatches here (XOR's inputs are constants: without the
    # problem they are parameters too, in the same order)
    assert compile_system(red).parameters == system.parameters
    return red, system


def _forward_state(spec, w):
    """Neurons at the forward pass (AD reference, no derivation) and the weights."""
    net = spec.network
    ref = casadi_gradients(spec.problem, w, {})
    y = {str(net.x[j]): ref.x[i] for i, j in enumerate(net.order)}
    y |= {str(wk): w[i] for i, wk in enumerate(net.weights)}
    return y, ref


# -- 1. the gradient-flow limit (14) against an independent gradient flow --------------------
def _xor_gradient(w_names):
    """∂V̄/∂W of the XOR net of problems/xor.toml, written by hand: inputs 1 and 0,
    hidden x3, x4 = tanh(·), output x5 = tanh(w5_3 x3 + w5_4 x4), V = (x5 - 1)²/2."""
    W = casadi.SX.sym("W", len(w_names))
    w = {n: W[i] for i, n in enumerate(w_names)}
    x1, x2 = 1.0, 0.0
    x3 = casadi.tanh(w["w3_1"] * x1 + w["w3_2"] * x2)
    x4 = casadi.tanh(w["w4_1"] * x1 + w["w4_2"] * x2)
    x5 = casadi.tanh(w["w5_3"] * x3 + w["w5_4"] * x4)
    V = (x5 - 1.0) ** 2 / 2
    f = casadi.Function("grad", [W], [casadi.gradient(V, W)])
    return lambda t, v: np.asarray(f(v)).ravel()


def _chain3_gradient(w_names):
    """problems/chain3.toml by hand: x1 = sin t, x2 = tanh(w2_1 x1), x3 = tanh(w3_2 x2),
    V = (x3 - 0.5)²/2 (a time-dependent input: the rows carry e1's derivative)."""
    T = casadi.SX.sym("t")
    W = casadi.SX.sym("W", len(w_names))
    w = {n: W[i] for i, n in enumerate(w_names)}
    x3 = casadi.tanh(w["w3_2"] * casadi.tanh(w["w2_1"] * casadi.sin(T)))
    V = (x3 - 0.5) ** 2 / 2
    f = casadi.Function("grad", [T, W], [casadi.gradient(V, W)])
    return lambda t, v: np.asarray(f(t, v)).ravel()


@pytest.mark.parametrize("file, gradient", [("xor.toml", _xor_gradient),
                                            ("chain3.toml", _chain3_gradient)])
def test_gradient_flow_limit_matches_scipy_gradient_flow(file, gradient):
    """Eq. (14) reached in stages (m_x -> 0, then theta -> oo with theta m_W = gamma):
    W(t) of the compiled reduced system = SciPy DOP853 on gamma W' = -dV/dW (AD)."""
    spec = load_problem(problems_dir() / file)
    problem, net = spec.problem, spec.network
    red = staged(euler_lagrange(problem), [quasi_static(), gradient_flow(_rate(problem))])
    system = compile_reduced(red, problem=problem)
    names = [str(w) for w in net.weights]
    assert set(system.states) == {str(x) for x in net.neurons} | set(names)
    assert system.parameters == ("gamma",)
    w0 = np.random.default_rng(3).standard_normal(len(names))
    ref = casadi_gradients(problem, w0, {"t": 0.0})
    y0 = {str(net.x[j]): ref.x[i] for i, j in enumerate(net.order)} | dict(zip(names, w0))
    gamma = 0.7
    sim = simulate(system, (0.0, 4.0), y0, {"gamma": gamma}, rtol=1e-11, atol=1e-13,
                   n_points=41)
    grad = gradient(names)
    sol = solve_ivp(lambda t, w: -grad(t, w) / gamma, (0.0, 4.0), w0, method="DOP853",
                    rtol=1e-12, atol=1e-14, t_eval=sim.times)
    W = np.column_stack([sim[n] for n in names])
    assert np.abs(W[-1] - W[0]).max() > 0.05          # the weights do move
    assert np.abs(W - sol.y.T).max() < 1e-6
    assert sim.max_drift < 1e-8                       # G = 0 is an invariant


# -- 2. the compiled RHS against SymPy's solve of the reduced rows ---------------------------
def _sympy_unknowns(red, point):
    eqs = [e.xreplace(point) for e in red.equations]
    (sol,) = sp.linsolve(eqs, list(red.unknowns))
    return dict(zip(red.unknowns, sol))


@pytest.mark.parametrize("limit", ["quasi_static", "backprop"])
def test_compiled_rhs_equals_sympy_solution_of_the_rows(limit):
    """Chain of 3 with a time-dependent input e1 = sin(2t) given as a signal (its
    derivative 2 cos(2t) enters the lowered row of G1) and a target y3 left constant."""
    theta, = S.parameters("theta")
    problem = ca.chain(3).problem(weight=sp.exp(theta * S.t), parameters=[theta])
    el = euler_lagrange(problem)
    lim = quasi_static() if limit == "quasi_static" else backprop(rate=theta)
    red = reduce(el, lim)
    system = compile_reduced(red, problem=problem, signals={"e1": sp.sin(2 * S.t)})
    assert "e1" not in system.parameters and "y3" in system.parameters
    rng = np.random.default_rng(7)
    for _ in range(3):
        tk = float(rng.uniform(0, 2))
        y = {s: float(rng.uniform(-1, 1)) for s in system.states}
        par = {p: float(rng.uniform(0.5, 2)) for p in system.parameters}
        T = sp.Float(tk, 30)
        by_name = {k: sp.Float(v, 30) for k, v in (y | par).items()}
        by_name |= {"t": T, "e1": sp.sin(2 * T), "e1_dot": 2 * sp.cos(2 * T)}
        free = set().union(*(e.free_symbols for e in red.equations)) - set(red.unknowns)
        point = {s: by_name[s.name] for s in free}
        ref = _sympy_unknowns(red, point)
        got = system.evaluate_unknowns(tk, y, par)
        for u, v in ref.items():
            assert abs(got[str(u)] - float(v)) <= 1e-12 * max(1.0, abs(float(v))), u
        ydot = system.evaluate(tk, y, par)
        for i, s in enumerate(system.states):
            nxt = sym(s + "_dot") if not s.endswith("_dot") else S.dot(sym(s))
            expect = ref[nxt] if nxt in ref else y[str(nxt)]
            assert abs(ydot[i] - float(expect)) <= 1e-12 * max(1.0, abs(float(expect)))


# -- 3. the backprop limit (15)-(17) against AD --------------------------------------------
def test_backprop_limit_deltas_and_weight_rates_equal_ad(xor_spec, xor_backprop):
    """delta = -dV̄/dx_j by AD (T delta = -V_x, eq. 16-17) and w_ij' = +sigma'(a_i) delta_i
    x_j / gamma = -(1/gamma) dV̄/dw_ij (eq. 15 with the corrected sign)."""
    red, system = xor_backprop
    net = xor_spec.network
    rng = np.random.default_rng(11)
    gamma = 1.7
    for _ in range(4):
        w = rng.standard_normal(len(net.weights)) * 1.5
        y, ref = _forward_state(xor_spec, w)
        u = system.evaluate_unknowns(0.0, y, {"gamma": gamma})
        delta = np.array([u[f"delta_G{j}"] for j in net.order])
        np.testing.assert_allclose(delta, ref.delta, rtol=0, atol=1e-10)
        wdot = np.array([u[f"{wk}_dot"] for wk in net.weights])
        np.testing.assert_allclose(wdot, -ref.grad_w / gamma, rtol=0, atol=1e-10)
        x = {j: ref.x[i] for i, j in enumerate(net.order)}
        d = {j: delta[i] for i, j in enumerate(net.order)}
        for (i, j), wk in net.w.items():
            a_i = sum(y[str(net.w[i, m])] * x[m] for m in net.graph.predecessors(i))
            assert u[f"{wk}_dot"] == pytest.approx((1 - np.tanh(a_i) ** 2) * d[i] * x[j] / gamma,
                                            abs=1e-10)
        # the rates of the slaved neurons keep the forward pass: dG/dt = 0
        _, gd = system.evaluate_constraints(0.0, y, {"gamma": gamma})
        assert np.abs(gd).max() < 1e-12


def test_backprop_limit_with_infinite_speed_neurons():
    """Neurons (19) with c -> oo faster than theta: the promoted multipliers nu are the
    backprop deltas (eq. 20 in the limit), solved at every instant, not integrated."""
    theta, c = S.parameters("theta c")
    net = ca.chain(3, speed=c)
    problem = net.problem(weight=sp.exp(theta * S.t), parameters=[theta])
    red = reduce(euler_lagrange(problem), backprop(rate=theta, speed=c))
    system = compile_reduced(red, problem=problem)
    assert system.multiplier_states == () and "nu_G3" in system.unknown_names
    w = np.array([0.8, -1.3])
    ref = casadi_gradients(problem, w, {"e1": 0.6, "y3": 0.2})
    y = {str(net.x[j]): ref.x[i] for i, j in enumerate(net.order)}
    y |= {str(wk): w[i] for i, wk in enumerate(net.weights)}
    u = system.evaluate_unknowns(0.0, y, {"e1": 0.6, "y3": 0.2, "gamma": 1.0})
    for i, j in enumerate(net.order):
        if j != 1:
            assert u[f"nu_G{j}"] == pytest.approx(ref.delta[i], abs=1e-10)
    np.testing.assert_allclose([u[f"{wk}_dot"] for wk in net.weights], -ref.grad_w,
                               atol=1e-10)
    # the rows of G2, G3 stay at velocity level (N' with c -> oo is G'): Baumgarte gives
    # G' = -alpha G at a state off the forward pass
    yv = system.state_vector(y) + np.random.default_rng(1).normal(0, 0.1, system.n_states)
    pv = system.parameter_vector({"e1": 0.6, "y3": 0.2, "gamma": 1.0}, baumgarte=(4.0, 0.0))
    G, Gd = (np.asarray(v.full()).ravel() for v in system.constraints(0.0, yv, pv))
    assert np.abs(G).max() > 1e-2
    np.testing.assert_allclose(Gd, -4.0 * G, atol=1e-12)


# -- 4. drift of the forward-pass constraint -------------------------------------------------
def test_drift_of_the_forward_pass_and_its_stabilization(xor_spec, xor_backprop):
    red, system = xor_backprop
    assert system.constraint_names == ("G1", "G2", "G3", "G4", "G5")
    y0, _ = _forward_state(xor_spec, np.random.default_rng(0).standard_normal(6))
    par = {"gamma": 1.0}
    plain = simulate(system, (0.0, 20.0), y0, par, rtol=1e-10, atol=1e-12, n_points=41)
    assert plain.max_drift < 1e-8
    loose = simulate(system, (0.0, 20.0), y0, par, rtol=1e-6, atol=1e-8, n_points=41)
    proj = simulate(system, (0.0, 20.0), y0, par, rtol=1e-6, atol=1e-8, n_points=41,
                    stabilization="projection")
    idas = simulate(system, (0.0, 20.0), y0, par, method="idas", rtol=1e-10, atol=1e-12,
                    n_points=41)                      # z = the unknowns, 0 = M z - f
    assert idas.max_drift < 1e-8
    np.testing.assert_allclose(idas.y, plain.y, atol=1e-7)
    assert loose.max_drift > 1e-8                     # there is drift to remove
    with pytest.raises(InconsistentInitialConditionsError, match="G3"):
        simulate(system, (0.0, 1.0), y0 | {"x3": y0["x3"] + 0.1}, par)
    assert proj.max_drift < 1e-12
    # Baumgarte on the lowered rows: dG/dt = -alpha G at any state, on G = 0 or not
    rng = np.random.default_rng(5)
    y = system.state_vector(y0) + rng.normal(0, 0.1, system.n_states)
    alpha = 3.0
    pv = system.parameter_vector(par, baumgarte=(alpha, 0.0))
    g, gd = (np.asarray(v.full()).ravel() for v in system.constraints(0.0, y, pv))
    assert np.abs(g).max() > 1e-3
    np.testing.assert_allclose(gd, -alpha * g, atol=1e-12)
    # projection lands on G = 0 from a state off it
    yp = np.asarray(system.projection(0.0, y, pv).full()).ravel()
    g, _ = system.evaluate_constraints(0.0, yp, par)
    assert np.abs(g).max() < 1e-12


def test_quasi_static_limit_runs_with_weight_inertia(xor_spec, xor_el):
    """m_x -> 0 (eq. 12-13): the weights keep their second-order dynamics (states w, w'),
    the neurons are slaved, and the weight rows give m_W (w'' + theta w') = -dV̄/dw."""
    red = reduce(xor_el, quasi_static())
    system = compile_reduced(red, problem=xor_spec.problem)
    net = xor_spec.network
    names = [str(w) for w in net.weights]
    assert system.velocities == tuple(n + "_dot" for n in names)
    w = np.random.default_rng(2).standard_normal(6)
    y, ref = _forward_state(xor_spec, w)
    wd = np.random.default_rng(4).standard_normal(6)
    y |= {n + "_dot": v for n, v in zip(names, wd)}
    par = {"m_W": 0.5, "theta": 3.0}
    u = system.evaluate_unknowns(0.0, y, par)
    wdd = np.array([u[n + "_ddot"] for n in names])
    np.testing.assert_allclose(0.5 * (wdd + 3.0 * wd), -ref.grad_w, atol=1e-10)
    sim = simulate(system, (0.0, 3.0), y, par, rtol=1e-10, atol=1e-12, n_points=31)
    assert sim.max_drift < 1e-8


# -- 5. the quasi-static continuous diffusion --------------------------------------------------
def test_continuous_diffusion_reduction_equals_continuous_diffusion_rhs():
    """derive_diffusion's ad hoc compilation of the m_x -> 0 reduction (weights frozen)
    against compile_reduced on the same reduction with w' = 0 at random states."""
    from cognitive_action.diffusion.continuous import derive_diffusion

    model = derive_diffusion([1, 2, 1], frequency=0.5, seed=0)
    red = reduce(euler_lagrange(model.problem), quasi_static())
    system = compile_reduced(red, problem=model.problem)
    assert system.multiplier_states == model.multiplier_names
    assert system.vakonomic                           # mu is a state: eq. (20)
    rng = np.random.default_rng(9)
    n = len(model.neurons)
    for _ in range(4):
        tk, c = float(rng.uniform(0, 5)), float(rng.uniform(1, 50))
        yd = rng.uniform(-1, 1, n + len(model.multiplier_names))
        y = dict(zip(model.neurons + model.multiplier_names, yd))
        y |= dict(model.weights_values) | {w + "_dot": 0.0 for w in model.weight_names}
        ours = dict(zip(system.states, system.evaluate(tk, y, {"c": c, "m_W": 1.0})))
        theirs = np.asarray(model.rhs(tk, yd, c)).ravel()
        for k, s in enumerate(model.neurons + model.multiplier_names):
            assert ours[s] == pytest.approx(theirs[k], rel=1e-10, abs=1e-10 * c)


def test_frozen_weights_give_derive_diffusions_system():
    """freeze(red, weights): the weights become parameters and the compiled system is
    exactly derive_diffusion's (states x, mu; eq. 19-20 with the weights read)."""
    from cognitive_action.diffusion.continuous import derive_diffusion

    model = derive_diffusion([2, 2, 1], frequency=0.7, seed=1)
    red = reduce(euler_lagrange(model.problem), quasi_static())
    system = compile_reduced(freeze(red, model.weight_names), problem=model.problem)
    assert system.states == model.neurons + model.multiplier_names
    assert set(system.parameters) == {"c"} | set(model.weight_names)
    rng = np.random.default_rng(13)
    for _ in range(4):
        tk, c = float(rng.uniform(0, 5)), float(rng.uniform(1, 50))
        y = rng.uniform(-1, 1, system.n_states)
        ours = system.evaluate(tk, y, {"c": c} | model.weights_values)
        theirs = np.asarray(model.rhs(tk, y, c)).ravel()
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10 * c)
    with pytest.raises(CompileError, match=r"x9 is not a coordinate"):
        freeze(red, ["x9"])


# -- 6. bad input ------------------------------------------------------------------------------
def test_singular_limit_names_the_limit_and_the_fix(xor_spec, xor_el):
    red = reduce(xor_el, gradient_flow(_rate(xor_spec.problem)))
    with pytest.raises(CompileError, match=r"theta -> oo.*singular.*delta_G1") as err:
        compile_reduced(red)
    assert "staged" in err.value.fix
    with pytest.raises(CompileError, match="singular"):
        compile_system(red)


def test_non_square_and_numerically_singular_rows():
    q, = S.coordinates("q")
    u1, u2, a = sym("lambda_1"), sym("lambda_2"), sp.Symbol("a")
    lim = Limit("toy", {})
    common = dict(limit=lim, orders=(0, 0), promoted={}, algebraic=[], coordinates=(q,),
                  source_constraints={}, velocity_constraints={})
    square = ReducedSystem(labels=("r1", "r2"), kinds=("constraint",) * 2,
                           equations=[S.dot(q) + u1 - a, S.dot(q) - 2 * a],
                           unknowns=(S.dot(q), u1), **common)
    ok = compile_reduced(square)
    assert ok.states == ("q",) and ok.parameters == ("a",)
    assert ok.evaluate(0.0, [0.3], {"a": 1.5}) == pytest.approx([3.0])
    short = dataclasses.replace(square, labels=("r1",), kinds=("constraint",),
                                equations=square.equations[:1], orders=(0,))
    with pytest.raises(CompileError, match=r"'toy' has 1 rows for 2 unknowns"):
        compile_reduced(short)
    singular = dataclasses.replace(square, equations=[S.dot(q) + u1 - a, 2 * S.dot(q)
                                                      + 2 * u1 - a], unknowns=(S.dot(q), u1))
    with pytest.raises(CompileError, match=r"'toy' is singular at a random point"):
        compile_reduced(singular)
    frozen = dataclasses.replace(square, equations=[u1 - q, u2 - a], unknowns=(u1, u2))
    with pytest.raises(CompileError, match=r"uses q but determines none of their rates"):
        compile_reduced(frozen)


def test_bad_signals_solvers_and_inputs(xor_backprop):
    red, system = xor_backprop
    theta, = S.parameters("theta")
    problem = ca.chain(3).problem(weight=sp.exp(theta * S.t), parameters=[theta])
    red3 = reduce(euler_lagrange(problem), backprop(rate=theta))
    with pytest.raises(CompileError, match=r"e2 is not a signal.*did you mean 'e1'"):
        compile_reduced(red3, problem=problem, signals={"e2": sp.sin(S.t)})
    with pytest.raises(CompileError, match=r"unknown linear solver 'ldl'"):
        compile_reduced(red3, linear_solver="ldl")
    with pytest.raises(CompileError, match=r"needs a ReducedSystem"):
        compile_reduced(euler_lagrange(problem))
    with pytest.raises(CompileError, match=r"no value given for the parameter\(s\) gamma"):
        system.evaluate(0.0, np.zeros(system.n_states), {})
    # without the problem every remaining symbol is a parameter, sorted by name
    assert compile_reduced(red3).parameters == ("e1", "gamma", "y3")
    assert reduced_layout(red3).solved == (sym("delta_G1"), sym("delta_G2"), sym("delta_G3"))


# -- a mechanical reduction: rows at acceleration level ----------------------------------------
def test_weightless_pendulum_is_uniform_circular_motion():
    """A pendulum in the limit g -> 0: the reduced rows keep q'' and the rod's G'' row, the
    states are q and q'. Closed form: q(t) = L (cos wt, sin wt) for q(0) = (L, 0),
    q'(0) = (0, L w). Baumgarte on the G'' row: G'' + 2 alpha G' + beta^2 G = 0 (central
    differences of G' along the compiled flow)."""
    q1, q2 = S.coordinates("q1 q2")
    m, g, L = S.parameters("m g L")
    pendulum = ca.Problem(ca.Action([q1, q2], masses=m, lagrangian=m * g * q1),
                          [ca.Constraint(q1**2 + q2**2 - L**2, name="rod")],
                          parameters=[m, g, L])
    red = reduce(euler_lagrange(pendulum), Limit("g -> 0", {g: 1}))
    system = compile_reduced(red, problem=pendulum)
    assert system.states == ("q1", "q2", "q1_dot", "q2_dot")
    assert system.parameters == ("L", "m")
    Lv, om = 1.3, 2.0
    sim = simulate(system, (0.0, 3.0), [Lv, 0.0, 0.0, Lv * om], {"L": Lv, "m": 0.4},
                   rtol=1e-11, atol=1e-13, n_points=31)
    np.testing.assert_allclose(sim["q1"], Lv * np.cos(om * sim.times), atol=1e-8)
    np.testing.assert_allclose(sim["q2"], Lv * np.sin(om * sim.times), atol=1e-8)
    alpha, beta, h = 2.0, 3.0, 1e-5
    pv = system.parameter_vector({"L": Lv, "m": 0.4}, baumgarte=(alpha, beta))
    y = np.array([1.1, 0.5, -0.3, 0.8])                # off the rod: G, G' != 0

    def cons(tk, yk):
        gk, gdk = system.constraints(tk, yk, pv)
        return float(gk), float(gdk)
    ydot = np.asarray(system.rhs(0.0, y, pv).full()).ravel()
    G, Gd = cons(0.0, y)
    Gdd = (cons(h, y + h * ydot)[1] - cons(-h, y - h * ydot)[1]) / (2 * h)
    assert abs(G) > 0.1 and abs(Gd) > 0.1
    assert Gdd == pytest.approx(-2 * alpha * Gd - beta**2 * G, abs=1e-6)


def test_batch_over_the_learning_rate_is_a_time_rescaling(xor_spec, xor_backprop):
    """With constant inputs eq. (14) is gamma W' = -dV̄/dW: W_gamma(t) = W_1(t/gamma).
    simulate_batch runs the compiled reduced system over gamma unchanged."""
    from cognitive_action.compile import simulate_batch

    _, system = xor_backprop
    y0, _ = _forward_state(xor_spec, np.random.default_rng(6).standard_normal(6))
    batch = simulate_batch(system, (0.0, 4.0), y0, {}, grid={"gamma": [1.0, 2.0]},
                           n_points=5, rtol=1e-11, atol=1e-13)
    one, two = batch.run(gamma=1.0), batch.run(gamma=2.0)
    names = [str(w) for w in xor_spec.network.weights]
    for n in names:
        np.testing.assert_allclose(two[n][[2, 4]], one[n][[1, 2]], atol=1e-8)
    assert np.abs(one[names[0]][4] - one[names[0]][0]) > 1e-3
