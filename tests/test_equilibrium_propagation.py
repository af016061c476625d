"""Equilibrium propagation (issue 14, item 1): declared, derived, compiled and verified.

References, none of them the EP formula or the derived phase dynamics:

- a Hopfield energy written by hand in NumPy (S&B 2017 eq. 1) and its central
  differences, for the derived phases ``ẋ = -∂(E + βC)/∂x`` and ``∂E/∂W``;
- the closed form of a linear (identity-activation) net, whose fixed point solves a
  linear system;
- recurrent backprop at the free fixed point (implicit differentiation of the declared
  energy with CasADi AD), itself checked against central differences of the library's
  relaxation.

Expected orders in ``β`` of the EP error, and why: one-sided ``(∂E/∂W(x^β) -
∂E/∂W(x⁰))/β = dJ/dW + β g₂/2 + O(β²)`` keeps the first Taylor term, order 1; symmetric
``(∂E/∂W(x^β) - ∂E/∂W(x^{-β}))/2β = dJ/dW + β² g₃/6 + O(β⁴)`` cancels the even terms,
order 2 (Laborieux et al. 2021).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.compile import compile_system, simulate
from cognitive_action.compile.energy import (
    RelaxOptions,
    compile_energy,
    equilibrium_update,
)
from cognitive_action.declare import symbols as S
from cognitive_action.declare.energy import EnergyModel, hopfield
from cognitive_action.derive.energy import derive_energy
from cognitive_action.errors import DeclarationError, FixedPointError
from cognitive_action.verify import verify
from cognitive_action.verify.equilibrium import (
    check_equilibrium,
    energy_state,
    implicit_gradient,
    relative_rmse,
    sign_error_fraction,
    verify_energy,
)
from cognitive_action.verify.metrics import relative_error


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _layers(sizes):
    out, k = [], 1
    for n in sizes:
        out.append(list(range(k, k + n)))
        k += n
    return out


class HandHopfield:
    """S&B eq. (1) on a layered net, written by hand: ``E = ½Σx² - Σ w_ab ρ(u_a)ρ(u_b) -
    Σ b_j ρ(x_j)``, ``C = ½Σ(x_o - y_o)²``, logistic ``ρ``."""

    def __init__(self, sizes):
        L = _layers(sizes)
        self.inputs, self.free = L[0], [j for layer in L[1:] for j in layer]
        self.outputs = L[-1]
        self.edges = [(a, b) for la, lb in zip(L, L[1:]) for a in la for b in lb]

    def energy(self, x, e, w, b, beta=0.0, y=None):
        u = dict(zip(self.inputs, e)) | dict(zip(self.free, x))
        r = {k: _sigmoid(v) for k, v in u.items()}
        E = 0.5 * np.sum(np.square(x))
        E -= sum(w[f"w{a}_{b_}"] * r[a] * r[b_] for a, b_ in self.edges)
        E -= sum(b[f"b{j}"] * r[j] for j in self.free)
        if beta:
            E += beta * 0.5 * sum((u[o] - y[i]) ** 2 for i, o in enumerate(self.outputs))
        return E


def _draw(model, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, scale, len(model.learnable))
    vals = {str(e): float(rng.standard_normal()) for e in model.inputs}
    vals |= {str(y): float(rng.uniform()) for y in model.targets}
    return w, vals


# -- the derivation ---------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [[2, 3, 1], [3, 2, 2, 2]])
def test_derived_phases_are_the_gradient_of_a_hand_written_energy(sizes):
    model = hopfield(sizes, activation="logistic")
    ce = compile_energy(model)
    hand = HandHopfield(sizes)
    rng = np.random.default_rng(4)
    w, vals = _draw(model, 1)
    wd = dict(zip(map(str, model.learnable), w))
    e = [vals[str(s)] for s in model.inputs]
    y = [vals[str(s)] for s in model.targets]
    for beta in (0.0, 0.7):
        x = rng.standard_normal(len(model.neurons))
        p = ce.parameter_vector(w, vals, beta)
        rates = np.asarray(ce.rates(x, p)).reshape(-1)
        h = 1e-6
        fd = np.array([(hand.energy(x + h * d, e, wd, wd, beta, y)
                        - hand.energy(x - h * d, e, wd, wd, beta, y)) / (2 * h)
                       for d in np.eye(len(x))])
        assert np.allclose(rates, -fd, rtol=1e-7, atol=1e-8)
        # dE/dW against the hand-written energy's differences in each weight
        grad = np.asarray(ce.energy_gradient(x, p)).reshape(-1)
        for k, name in enumerate(map(str, model.learnable)):
            up, dn = dict(wd), dict(wd)
            up[name] += h
            dn[name] -= h
            ref = (hand.energy(x, e, up, up) - hand.energy(x, e, dn, dn)) / (2 * h)
            assert grad[k] == pytest.approx(ref, rel=1e-6, abs=1e-8)


def test_symmetry_is_structural_and_the_jacobian_is_a_hessian():
    model = hopfield([2, 3, 2])
    weights = {str(w) for w in model.learnable if str(w).startswith("w")}
    assert len(weights) == 2 * 3 + 3 * 2  # one symbol per undirected pair, not two
    ce = compile_energy(model)
    w, vals = _draw(model, 2)
    x = np.random.default_rng(0).standard_normal(len(model.neurons))
    J = np.asarray(ce.jacobian(x, ce.parameter_vector(w, vals, 0.3)))
    assert np.allclose(J, J.T, rtol=0, atol=1e-14)


def test_latex_of_the_derived_phases():
    tex = ca.latex(derive_energy(hopfield([1, 1], bias=False, activation="identity")))
    assert r"\dot{x_{2}} &=" in tex and r"\beta" in tex
    assert r"\frac{\partial E}{\partial w_{1,2}} &= - e_{1} x_{2}" in tex


# -- the fixed points and the compiled route ------------------------------------------------
def test_relaxation_finds_the_closed_form_fixed_point_of_a_linear_net():
    """Identity ρ on the chain e1 - x2 - x3: ∂E/∂x = 0 is A x = c with
    A = [[1, -w23], [-w23, 1]], c = [w12 e1 + b2, b3] (+ β(x3 - y3) in the nudged phase)."""
    model = hopfield([(1, 2), (2, 3)], inputs=[1], outputs=[3], activation="identity")
    assert [str(s) for s in model.learnable] == ["w1_2", "w2_3", "b2", "b3"]
    ce = compile_energy(model)
    w12, w23, b2, b3, e1, y3 = 0.7, -0.4, 0.2, -0.1, 1.3, 0.5
    vals = {"e1": e1, "y3": y3}
    for beta in (0.0, 0.25):
        fp = ce.relax([w12, w23, b2, b3], vals, beta)
        A = np.array([[1.0, -w23], [-w23, 1.0 + beta]])
        x = np.linalg.solve(A, [w12 * e1 + b2, b3 + beta * y3])
        assert np.allclose(fp.x, x, rtol=0, atol=1e-13)
        assert fp.min_eigenvalue == pytest.approx(np.linalg.eigvalsh(A).min(), rel=1e-12)
    # recurrent backprop in closed form: dJ/dW = (x3 - y3) dx3/dW, dx/dW = A⁻¹ dc/dW - ...
    A = np.array([[1.0, -w23], [-w23, 1.0]])
    x = np.linalg.solve(A, [w12 * e1 + b2, b3])
    Ainv = np.linalg.inv(A)
    dx = np.column_stack([Ainv @ [e1, 0], Ainv @ [x[1], x[0]], Ainv @ [1, 0], Ainv @ [0, 1]])
    ref = implicit_gradient(model, np.array([w12, w23, b2, b3]), vals, np.zeros(2))
    assert np.allclose(ref.grad, (x[1] - y3) * dx[1], rtol=1e-12, atol=1e-14)


def test_phase_ode_compiles_through_the_route_registry_and_simulates_to_the_fixed_point():
    model = hopfield([2, 3, 1])
    ce = compile_energy(model)
    w, vals = _draw(model, 0)
    fp = ce.relax(w, vals, 0.0)
    system = compile_system(derive_energy(model))
    assert system.route == "energy" and system.states == tuple(map(str, model.neurons))
    params = dict(zip(map(str, model.learnable), w)) | vals | {"beta": 0.0}
    sim = simulate(system, (0.0, 40.0), np.zeros(len(model.neurons)), params)
    assert np.allclose(list(sim.final.values())[:len(fp.x)], fp.x, atol=1e-6)


# -- the EP update against recurrent backprop ----------------------------------------------
@pytest.mark.parametrize("sizes,act,seed", [([2, 3, 1], "logistic", 0),
                                             ([3, 4, 2], "logistic", 1),
                                             ([2, 3, 3, 1], "tanh", 2)])
def test_ep_update_tends_to_recurrent_backprop(sizes, act, seed):
    model = hopfield(sizes, activation=act)
    ce = compile_energy(model)
    st = energy_state(ce, seed=seed)
    ref = implicit_gradient(model, st.weights, st.values, st.free.x)
    g = -ref.grad
    errs = {}
    for nudging in ("one_sided", "symmetric"):
        for beta in (1e-2, 1e-3):
            up = equilibrium_update(ce, st.weights, st.values, beta=beta, nudging=nudging,
                                    free=st.free)
            errs[nudging, beta] = float(relative_error(up.delta_w, g))
    # one-sided ~ C β, symmetric ~ C β²: a decade in β is a decade, resp. two, in error
    assert errs["one_sided", 1e-3] < 5e-3
    assert errs["symmetric", 1e-3] < 1e-5
    assert 7 < errs["one_sided", 1e-2] / errs["one_sided", 1e-3] < 13
    assert 70 < errs["symmetric", 1e-2] / errs["symmetric", 1e-3] < 130


def test_reference_agrees_with_differences_of_the_library_relaxation():
    """The implicit gradient against central differences of J(W) = C(x⁰(W)), each x⁰
    found by the compiled relaxation (not the reference's Newton)."""
    model = hopfield([2, 3, 2])
    ce = compile_energy(model)
    st = energy_state(ce, seed=5)
    ref = implicit_gradient(model, st.weights, st.values, st.free.x)
    outs = [model.neurons.index(o) for o in model.outputs]
    y = np.array([st.values[str(s)] for s in model.targets])
    opts = RelaxOptions(tol=1e-14)

    def J(w):
        x = ce.relax(w, st.values, 0.0, x0=st.free.x, options=opts).x
        return 0.5 * float(np.sum((x[outs] - y) ** 2))

    h = 1e-5
    for k in range(0, len(st.weights), 3):
        d = np.zeros_like(st.weights)
        d[k] = h
        fd = (J(st.weights + d) - J(st.weights - d)) / (2 * h)
        assert fd == pytest.approx(ref.grad[k], rel=1e-6, abs=1e-10)


def test_symmetric_nudging_beats_one_sided_on_the_same_net():
    model = hopfield([3, 4, 2], activation="tanh")
    ce = compile_energy(model)
    for seed in range(3):
        st = energy_state(ce, seed=seed)
        g = -implicit_gradient(model, st.weights, st.values, st.free.x).grad
        for beta in (0.2, 0.05, 0.01):
            one, sym = (relative_error(equilibrium_update(
                ce, st.weights, st.values, beta=beta, nudging=k, free=st.free).delta_w, g)
                for k in ("one_sided", "symmetric"))
            assert sym < one


@pytest.mark.parametrize("sizes,seed", [([2, 3, 1], 0), ([3, 5, 2], 1), ([2, 4, 4, 1], 2)])
def test_verifier_fits_order_one_and_two(sizes, seed):
    report = verify(hopfield(sizes), seed=seed)
    assert report.passed, str(report)
    one, sym = report["ep.one_sided.order"], report["ep.symmetric.order"]
    assert one.status == sym.status == "pass"
    assert abs(one.value - 1) <= 0.15 and abs(sym.value - 2) <= 0.2
    lo, hi = sym.details["ci"]
    assert lo <= sym.value <= hi and hi - lo < 0.4
    metrics = report["ep.symmetric.metrics"].details["groups"]
    assert [r["group"] for r in metrics] == list(hopfield(sizes).groups)
    assert all(r["sign_errors"] == 0 for r in metrics)
    assert report["ep.symmetric_vs_one_sided"].status == "pass"
    text = str(report)
    assert "Tδ" not in text and "c^-1" not in text  # messages of an energy law


@pytest.mark.slow
@pytest.mark.parametrize("structure", [[2, 3, 1], [4, 8, 3], [3, 6, 6, 2], [5, 10, 10, 10, 3],
                                       "random_graph"])
def test_campaign_orders_over_sizes_and_seeds(structure):
    """Ten seeds per structure; a random undirected graph has cycles (triangles)."""
    import networkx as nx

    for seed in range(10):
        if structure == "random_graph":
            g = nx.gnp_random_graph(9, 0.45, seed=seed)
            g.remove_edges_from([(0, 1), (1, 0)])
            model = hopfield(g, inputs=[0, 1], outputs=[8], activation="tanh")
        else:
            model = hopfield(structure, activation="logistic" if seed % 2 else "tanh")
        report = verify_energy(model, seed=seed)
        assert report.passed, f"seed {seed}\n{report}"
        assert report["ep.one_sided.order"].status == "pass"
        assert report["ep.symmetric.order"].status == "pass"


# -- metrics ---------------------------------------------------------------------------------
def test_relative_rmse_and_sign_errors_by_hand():
    a, g = np.array([1.0, -2.0, 3.0, 0.5]), np.array([1.5, -2.0, 2.0, -0.5])
    rms_a, rms_g = np.sqrt(np.mean(a**2)), np.sqrt(np.mean(g**2))
    assert relative_rmse(a, g) == pytest.approx(
        np.sqrt((0.25 + 0 + 1 + 1) / 4) / max(rms_a, rms_g), rel=1e-15)
    assert sign_error_fraction(a, g) == 0.25


# -- bad declarations ------------------------------------------------------------------------
def test_asymmetric_weights_declared_symmetric_are_refused():
    with pytest.raises(DeclarationError, match="declared symmetric") as exc:
        hopfield([(1, 2), (2, 3)], inputs=[1],
                 weight_matrix=[[0, "w12", 0], ["w12", 0, "w23"], [0, "w32", 0]])
    assert "one symbol per undirected pair" in exc.value.fix
    ok = hopfield([(1, 2), (2, 3)], inputs=[1],
                  weight_matrix=[[0, "w12", 0], ["w12", 0, "w23"], [0, "w23", 0]])
    assert [str(s) for s in ok.learnable][:2] == ["w12", "w23"]


def test_a_cost_of_the_wrong_sign_and_a_negative_beta_are_refused():
    model = hopfield([2, 2, 1])
    x, y = model.outputs[0], model.targets[0]
    with pytest.raises(DeclarationError, match="wrong sign"):
        EnergyModel(neurons=model.neurons, energy=model.energy, cost=-(x - y) ** 2 / 2,
                    learnable=model.learnable, inputs=model.inputs, targets=model.targets)
    ce = compile_energy(model)
    w, vals = _draw(model, 0)
    for beta in (-0.1, 0.0):
        with pytest.raises(DeclarationError, match="not positive"):
            equilibrium_update(ce, w, vals, beta=beta)


def test_an_update_of_the_wrong_sign_gets_an_honest_failing_report():
    """The estimator with the nudged and free phases swapped (+(1/β)(...)) points uphill:
    every entry has the wrong sign, the relative RMSE is 2 and the error does not shrink."""
    model = hopfield([2, 3, 1])

    def flipped(ce, w, values, beta, nudging, free):
        return -equilibrium_update(ce, w, values, beta=beta, nudging=nudging,
                                   free=free).delta_w

    checks = {c.name: c for c in check_equilibrium(model, seed=0, update=flipped)}
    for k in ("one_sided", "symmetric"):
        m = checks[f"ep.{k}.metrics"]
        assert m.status == "fail" and m.value == pytest.approx(2.0, abs=0.05)
        assert all(r["sign_errors"] == 1.0 for r in m.details["groups"])
        assert checks[f"ep.{k}.order"].status in ("fail", "inconclusive")
        assert checks[f"ep.{k}.order"].status == "fail" or \
            checks[f"ep.{k}.order"].value is None or abs(checks[f"ep.{k}.order"].value) < 0.5


def test_an_energy_unbounded_below_is_reported():
    """Identity ρ: E = ½xᵀ(I - W)x - ..., unbounded below once I - W is indefinite."""
    model = hopfield([(1, 2), (2, 3)], inputs=[1], outputs=[3], activation="identity")
    ce = compile_energy(model)
    vals = {"e1": 1.0, "y3": 0.0}
    with pytest.raises(FixedPointError, match="not bounded below") as exc:
        ce.relax([0.5, 1.5, 0.1, 0.1], vals)  # eigenvalues of I - W: 1 ± 1.5
    assert exc.value.state_norm is None or exc.value.state_norm > 1e3
    report = verify(model, values=vals | {"w1_2": 0.5, "w2_3": 1.5, "b2": 0.1, "b3": 0.1})
    assert report.exit_code == 1
    fp = report["energy.fixed_point"]
    assert fp.status == "fail" and "not bounded below" in fp.message
    assert all(c.status == "skip" for c in report.checks[1:])
    # an energy that is unbounded whatever the weights: halving them does not help
    x2, = S.coordinates("x2")
    w, e, y = sp.Symbol("w", real=True), sp.Symbol("e", real=True), sp.Symbol("y", real=True)
    bad = EnergyModel(neurons=(x2,), energy=-x2**2 / 2 - w * e * x2, cost=(x2 - y)**2 / 2,
                      learnable=(w,), inputs=(e,), targets=(y,), name="leak_of_wrong_sign")
    report = verify(bad, seed=0)
    assert report["energy.fixed_point"].status == "fail"
    assert report["energy.fixed_point"].details["weight_halvings"] == 10


def test_a_maximum_is_not_accepted_as_a_fixed_point():
    """E = -x²/2 + x⁴/4 - w e x at w = 0: x = 0 is stationary, a maximum (E'' = -1)."""
    x, = S.coordinates("x")
    w, e, y = sp.Symbol("w", real=True), sp.Symbol("e", real=True), sp.Symbol("y", real=True)
    model = EnergyModel(neurons=(x,), energy=-x**2 / 2 + x**4 / 4 - w * e * x,
                        cost=(x - y)**2 / 2, learnable=(w,), inputs=(e,), targets=(y,))
    ce = compile_energy(model)
    with pytest.raises(FixedPointError, match="not a minimum") as exc:
        ce.relax([0.0], {"e": 1.0, "y": 0.0}, x0=np.zeros(1))
    assert exc.value.min_eigenvalue == pytest.approx(-1.0)
    fp = ce.relax([0.0], {"e": 1.0, "y": 0.0}, x0=np.array([0.1]))  # relaxes to x = 1
    assert fp.x[0] == pytest.approx(1.0, abs=1e-13) and fp.min_eigenvalue == pytest.approx(2)


def test_undeclared_and_misplaced_symbols_are_refused():
    x, = S.coordinates("x")
    w, e, y = sp.Symbol("w", real=True), sp.Symbol("e", real=True), sp.Symbol("y", real=True)
    with pytest.raises(DeclarationError, match="target y may not appear in the energy"):
        EnergyModel(neurons=(x,), energy=x**2 / 2 - w * y * x, cost=(x - y)**2 / 2,
                    learnable=(w,), targets=(y,))
    with pytest.raises(DeclarationError, match="undeclared symbol v"):
        EnergyModel(neurons=(x,), energy=x**2 / 2 - w * sp.Symbol("v") * x,
                    cost=(x - y)**2 / 2, learnable=(w,), inputs=(e,), targets=(y,))
    with pytest.raises(DeclarationError, match="learnable weight w may not appear in the"):
        EnergyModel(neurons=(x,), energy=x**2 / 2 - w * e * x, cost=w * (x - y)**2,
                    learnable=(w,), inputs=(e,), targets=(y,))
    with pytest.raises(DeclarationError, match="a registered network law"):
        verify(hopfield([1, 1]), law=lambda *a: None)


def test_the_stability_message_of_gradient_dynamics_as_constraints_applies_to_them():
    """The issue's attempt: neurons x_dot = -dE/dx as non-holonomic constraints. The
    message no longer speaks of c or T delta = -V_x; it points to declare.energy."""
    from cognitive_action.declare.problem import Action, Constraint, Problem
    from cognitive_action.verify.checks import check_stability

    x2, = S.coordinates("x2")
    m, w, e, y = S.parameters("m w e y")
    problem = Problem(Action([x2], masses=m, lagrangian=-(x2 - y) ** 2 / 2),
                      [Constraint(S.dot(x2) + x2 - w * e, name="phase")],
                      parameters=[m, w, e, y])
    chk = check_stability(problem)
    assert chk.status == "fail"
    assert "T delta" not in chk.message and "c^-1" not in chk.message
    assert "EnergyModel" in chk.message


def test_phases_are_the_gradient_flow_limit_of_the_action():
    """The framework's own limit: the action ∫ e^{θt}(½ m_x|ẋ|² - E - βC) dt, reduced
    by gradient_flow (θ m_x = γ, m_x → 0, eq. 14 of Betti & Gori), gives
    γ ẋ = -∂(E + βC)/∂x, the derived phases, term for term."""
    from cognitive_action.declare.problem import Action, Problem
    from cognitive_action.derive.limits import GAMMA, gradient_flow, reduce

    model = hopfield([(1, 2), (2, 3)], inputs=[1], outputs=[3])
    theta, mx = sp.Symbol("theta", real=True), sp.Symbol("m_x", positive=True)
    w = sp.exp(theta * S.t)
    problem = Problem(Action(model.neurons, masses=mx, weight=w, lagrangian=-w * model.total),
                      parameters=[*model.learnable, model.beta, *model.inputs,
                                  *model.targets, theta, mx])
    rates = reduce(ca.euler_lagrange(problem), gradient_flow(theta, mass_W=mx)).solve()
    derived = derive_energy(model)
    for x, r in zip(model.neurons, derived.rates):
        assert sp.simplify(GAMMA * rates[S.dot(x)] - r) == 0


def test_the_law_page_shows_a_fresh_derivation():
    """docs/laws/equilibrium_propagation.md: its LaTeX block is the library's export."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "laws"
            / "equilibrium_propagation.md").read_text()
    block = page.split("<!-- latex:begin -->", 1)[1].split("<!-- latex:end -->", 1)[0]
    fresh = ca.latex(derive_energy(hopfield([(1, 2), (2, 3)], inputs=[1], outputs=[3])))
    assert block.strip() == f"$$\n{fresh}\n$$"


# -- the problem file ------------------------------------------------------------------------
def test_shipped_file_loads_an_energy_model_with_its_inputs_and_targets():
    from cognitive_action.problem_files.loader import load_problem

    spec = load_problem("equilibrium_propagation")
    assert isinstance(spec.problem, EnergyModel) and spec.network is None
    assert spec.values == {"e1": 0.5, "e2": -1.0, "y7": 0.8}
    assert [str(s) for s in spec.problem.neurons] == ["x3", "x4", "x5", "x6", "x7"]
    assert len(spec.problem.learnable) == 2 * 4 + 4 * 1 + 5


_GOOD = """
kind = "energy"
[energy]
layers = [1, 2, 1]
[inputs]
1 = "0.5"
[targets]
4 = "0.2"
"""


@pytest.mark.parametrize("change,field", [
    (("layers = [1, 2, 1]", "layers = [1, 2, 1]\nspeed = 2"), "energy.speed"),
    (("layers = [1, 2, 1]", "layers = [1, 2, 1]\nedges = [[1, 2]]"), "energy"),
    (('1 = "0.5"', '3 = "0.5"'), "inputs.3"),
    (('4 = "0.2"', '4 = "t"'), "targets.4"),
    (("layers = [1, 2, 1]", 'layers = [1, 2, 1]\nactivation = "relu"'), "energy.activation"),
    (("kind = \"energy\"", "kind = \"energy\"\n[verify]\nlaw = \"feedback_alignment\""),
     "verify.law"),
    (("kind = \"energy\"", "kind = \"energy\"\n[network]\nlayers = [1, 1]"), "network"),
])
def test_bad_energy_files_name_the_field(tmp_path, change, field):
    from click.testing import CliRunner

    from cognitive_action.cli import main
    from cognitive_action.errors import ProblemFileError
    from cognitive_action.problem_files.loader import load_problem

    path = tmp_path / "bad.toml"
    path.write_text(_GOOD.replace(*change))
    with pytest.raises(ProblemFileError) as exc:
        load_problem(path)
    assert exc.value.field == field and exc.value.fix
    res = CliRunner().invoke(main, ["verify", str(path)])
    assert res.exit_code == 2 and f"{path}:{field}:" in res.output


def test_cli_verifies_energy_files_with_exit_codes(tmp_path):
    """The shipped file passes (exit 0); an identity-activation file whose given weights
    leave E unbounded below fails (exit 1) with the reason."""
    from click.testing import CliRunner

    from cognitive_action.cli import main

    res = CliRunner().invoke(main, ["verify", "equilibrium_propagation"])
    assert res.exit_code == 0, res.output
    assert "ep.symmetric.order" in res.output
    path = tmp_path / "unbounded.toml"
    path.write_text(_GOOD.replace("layers = [1, 2, 1]",
                                  'layers = [1, 2, 1]\nactivation = "identity"\nbias = false')
                    + "\n[parameters]\nw1_2 = 0.3\nw1_3 = 0.3\nw2_4 = 1.2\nw3_4 = 1.2\n")
    res = CliRunner().invoke(main, ["verify", str(path)])
    assert res.exit_code == 1 and "not bounded below" in res.output
    res = CliRunner().invoke(main, ["derive", "equilibrium_propagation", "--latex"])
    assert res.exit_code == 0 and r"\frac{\partial E}{\partial w_{1,3}}" in res.output


def test_one_weight_per_pair_is_s_and_b_half_sum_over_i_neq_j_and_asymmetric_w_is_refused():
    """E with one symbol per edge equals S&B's ½Σ_{i≠j} W_ij ρ(u_i)ρ(u_j) form written with
    a symmetric matrix, E = ½|x|² - ½ρ(u)ᵀWρ(u) - bᵀρ(x); an asymmetric W is refused."""
    from cognitive_action.declare.energy import weights_from_matrix

    model = hopfield([2, 3, 1])
    units = list(model.units)
    n = len(units)
    rng = np.random.default_rng(3)
    mask = np.zeros((n, n), dtype=bool)
    for a, b in model.couplings.values():
        mask[units.index(a), units.index(b)] = mask[units.index(b), units.index(a)] = True
    A = rng.normal(size=(n, n))
    W = np.where(mask, A + A.T, 0.0)
    b = rng.normal(size=len(model.neurons))
    named = weights_from_matrix(model, W, b)
    ce = compile_energy(model)
    e, x = rng.normal(size=2), rng.normal(size=len(model.neurons))
    vals = {"e1": e[0], "e2": e[1], "y6": 0.3}
    r = _sigmoid(np.concatenate([e, x]))
    E_matrix = 0.5 * x @ x - 0.5 * r @ W @ r - b @ r[2:]
    energy = float(ce.energy(x, ce.parameter_vector(named, vals)))
    assert energy == pytest.approx(E_matrix, rel=1e-13)
    W_bad = W.copy()
    W_bad[2, 5] += 0.1
    with pytest.raises(DeclarationError, match="W is not symmetric: W\\[3, 6\\]"):
        weights_from_matrix(model, W_bad, b)
    W_stray = W.copy()
    W_stray[0, 1] = W_stray[1, 0] = 1.0  # inputs 1 and 2 are not coupled
    with pytest.raises(DeclarationError, match="no edge between units 1 and 2"):
        weights_from_matrix(model, W_stray, b)
