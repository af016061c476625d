"""Roles are carried by objects, never parsed back out of names (issue: a parameter named
``delta_G3`` was taken for a multiplier, one named ``mu_reg`` broke compile_reduced).

References are independent of the derivation: SymPy's gradient of a hand-written forward
pass, and the problem's own declarations.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.compile import compile_system
from cognitive_action.compile.reduced import compile_reduced, reduced_layout
from cognitive_action.compile.routes import ROUTES, register_route, route_for
from cognitive_action.declare import symbols as S
from cognitive_action.declare.roles import RoleKind, RoleMap, generated_names
from cognitive_action.derive.contract import DerivedSystem
from cognitive_action.derive.forms import derive_system
from cognitive_action.derive.limits import backprop, quasi_static, reduce
from cognitive_action.derive.network_speed import derive_speed_network
from cognitive_action.errors import CompileError, DeclarationError


# -- the two defects -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["delta_G3", "lambda_G1", "mu_G2", "nu_G3"])
def test_a_declared_name_equal_to_a_generated_multiplier_is_refused(name):
    p, = S.parameters(name)
    net = ca.chain(3)
    with pytest.raises(DeclarationError, match=f"parameter '{name}' has the name the "
                       "derivation gives a multiplier") as info:
        net.problem(parameters=[p], loss=p * (net.neurons[2] - S.symbol("y3")) ** 2)
    assert "rename the parameter" in info.value.fix


def test_a_multiplier_like_name_without_its_constraint_stays_a_parameter():
    """``delta_G9`` on a 3-neuron chain names no multiplier: it is a parameter, it is
    no unknown, and the derivation treats it as a constant."""
    d, = S.parameters("delta_G9")
    net = ca.chain(3)
    x3, y3 = net.neurons[2], S.symbol("y3")
    el = ca.euler_lagrange(net.problem(parameters=[d], loss=d * (x3 - y3) ** 2 / 2))
    assert d not in el.unknowns and d in el.parameters
    assert el.roles[d].kind == RoleKind.PARAMETER
    assert [str(m) for m in el.multipliers] == ["lambda_G1", "lambda_G2", "lambda_G3"]


def test_a_parameter_named_like_a_multiplier_compiles_in_a_limit():
    """``mu_reg`` (a weight-decay gain) in the backprop limit: compile_reduced takes it
    for the parameter it is, and the weight law is gradient descent on the regularised
    loss, against SymPy's gradient of a hand-written forward pass (eq. 14-17)."""
    theta, mu_reg = S.parameters("theta mu_reg")
    net = ca.chain(3)
    x1, x2, x3 = net.neurons
    w21, w32 = net.weights
    e1, y3 = S.symbol("e1"), S.symbol("y3")
    loss = (x3 - y3) ** 2 / 2 + mu_reg * (w21 ** 2 + w32 ** 2) / 2
    p = net.problem(weight=sp.exp(theta * S.t), parameters=[theta, mu_reg], loss=loss)
    red = reduce(ca.euler_lagrange(p), backprop(rate=theta))
    system = compile_reduced(red, problem=p)
    assert "mu_reg" in system.parameters
    vals = {"e1": 0.7, "y3": 0.3, "gamma": 2.0, "mu_reg": 0.25}
    w = {"w2_1": 0.8, "w3_2": -1.3}
    # independent: the composed loss V(f_W(e)) + mu |W|^2/2, differentiated by SymPy
    a, b = sp.symbols("a b")
    fwd2 = sp.tanh(a * e1)
    composed = (sp.tanh(b * fwd2) - y3) ** 2 / 2 + mu_reg * (a ** 2 + b ** 2) / 2
    at = {a: w["w2_1"], b: w["w3_2"]} | {sp.Symbol(k): v for k, v in vals.items()} | \
        {e1: vals["e1"], y3: vals["y3"], mu_reg: vals["mu_reg"]}
    xs = {"x1": vals["e1"], "x2": np.tanh(w["w2_1"] * vals["e1"])}
    xs["x3"] = np.tanh(w["w3_2"] * xs["x2"])
    u = system.evaluate_unknowns(0.0, xs | w, vals)
    for name, s in (("w2_1", a), ("w3_2", b)):
        expected = -float(sp.diff(composed, s).subs(at)) / vals["gamma"]
        assert u[f"{name}_dot"] == pytest.approx(expected, rel=1e-10)
    del x1, x2  # named for readability only


# -- role maps -----------------------------------------------------------------------------
def test_masses_rate_and_speed_are_recognised_whatever_their_names():
    k, a, b, c = S.parameters("k heavy light c")
    net = ca.chain(3, speed=c)
    p = net.problem(weight=sp.exp(k * S.t), mass_x=a, mass_W=b, parameters=[k, c])
    kinds = {str(s): r.kind for s, r in p.roles.items()}
    assert kinds["k"] == RoleKind.RATE
    assert kinds["heavy"] == kinds["light"] == RoleKind.MASS
    assert kinds["c"] == RoleKind.SPEED
    assert p.roles.masses_of(net.neurons) == (a,)
    assert set(p.roles[b].of) == set(net.weights)


@pytest.mark.parametrize("weighted", [False, True])
def test_every_unknown_and_state_has_a_role_in_every_form(weighted):
    theta, c = S.parameters("theta c")
    w = sp.exp(theta * S.t) if weighted else 1
    hol = ca.xor().problem(weight=w, parameters=[theta] if weighted else [])
    spd = ca.chain(3, speed=c).problem(weight=w, parameters=[c] + ([theta] if weighted else []))
    systems = [ca.euler_lagrange(hol), ca.derive_network(hol), ca.euler_lagrange(spd),
               derive_speed_network(spd), reduce(ca.euler_lagrange(hol), quasi_static())]
    for system in systems:
        assert isinstance(system, DerivedSystem)
        missing = [s for s in system.states + system.unknowns if s not in system.roles]
        assert missing == [], (system.form, missing)
        for con in system.constraints:
            m = system.multiplier_of(con.name)
            assert system.roles[m].of == con.name and system.roles[m].is_multiplier
    # the two forms of one problem agree on what is integrated and what is solved
    for generic, template in ((systems[0], systems[1]), (systems[2], systems[3])):
        assert generic.states == template.states
        assert set(generic.unknowns) == set(template.unknowns)


def test_reduced_states_are_those_the_compiler_integrates():
    theta, = S.parameters("theta")
    p = ca.layered([2, 3, 1]).problem(weight=sp.exp(theta * S.t), parameters=[theta])
    for limit in (quasi_static(), backprop(rate=theta)):
        red = reduce(ca.euler_lagrange(p), limit)
        assert red.states == reduced_layout(red).states
        assert red.problem is p


def test_role_map_queries():
    x, lam = S.symbol("x"), S.symbol("lambda_G1")
    roles = RoleMap({x: ca.declare.roles.Role(RoleKind.COORDINATE)})
    assert roles.kind(lam) is None and not roles.is_multiplier(lam)
    with pytest.raises(KeyError, match="G1"):
        roles.multiplier_of("G1")
    assert generated_names(["rod"]) == {"lambda_rod": "rod", "delta_rod": "rod",
                                        "mu_rod": "rod", "nu_rod": "rod"}


def test_roles_refine_parameters_only():
    x, = S.coordinates("x")
    m, = S.parameters("m")
    with pytest.raises(DeclarationError, match="refines parameters only"):
        ca.Problem(ca.Action([x], masses=m), parameters=[m], roles={x: RoleKind.MASS})
    with pytest.raises(DeclarationError, match="unknown role"):
        ca.Problem(ca.Action([x], masses=m), parameters=[m], roles={m: "heaviness"})


# -- the route registry --------------------------------------------------------------------
def test_compile_system_picks_the_route_by_form():
    p = ca.xor().problem()
    assert compile_system(p).route == "network"
    assert compile_system(p, route="generic").route == "generic"
    assert derive_system(p).form == "network"
    assert derive_system(p, "generic").form == "euler_lagrange"


def test_a_new_form_plugs_in_by_registering_one_builder():
    class Toy(DerivedSystem):
        form = "toy_for_test"
        problem = None

    calls = []

    def build(system, options):
        calls.append((system, options))
        return types.SimpleNamespace(route="toy")

    register_route("toy_for_test")(build)
    try:
        toy = Toy()
        out = compile_system(toy, name="mine")
        assert out.route == "toy" and route_for(toy) is build
        assert calls[0][0] is toy and calls[0][1].name == "mine"
    finally:
        del ROUTES["toy_for_test"]
    with pytest.raises(CompileError, match="cannot compile a Toy") as info:
        compile_system(Toy())
    assert "euler_lagrange" in info.value.fix


def test_simulated_multipliers_are_found_by_role_not_by_name():
    """A constraint named ``rod_dot`` has the multiplier ``lambda_rod_dot``: a name that
    ends like a velocity's. The simulation still lists it among the multipliers, with
    the pendulum's value at rest ``λ = m g/(2L)`` (sympy.physics.mechanics, design notes)
    at the start of a run from rest at the bottom, and nothing else."""
    q1, q2 = S.coordinates("q1 q2")
    m, g, L = S.parameters("m g L")
    p = ca.Problem(ca.Action([q1, q2], masses=m, lagrangian=m * g * q1),
                   [ca.Constraint(q1 ** 2 + q2 ** 2 - L ** 2, name="rod_dot")],
                   parameters=[m, g, L])
    system = compile_system(p)
    assert system.multipliers == ("lambda_rod_dot",)
    from cognitive_action.compile import simulate

    run = simulate(system, (0.0, 0.1), {"q1": 2.0, "q2": 0.0, "q1_dot": 0.0, "q2_dot": 0.0},
                   {"m": 3.0, "g": 9.81, "L": 2.0}, n_points=3)
    mult = run.multipliers()
    assert list(mult) == ["lambda_rod_dot"]
    assert mult["lambda_rod_dot"][0] == pytest.approx(3.0 * 9.81 / (2 * 2.0), rel=1e-9)


def test_the_symbolic_backprop_check_finds_masses_and_rate_by_role():
    """Masses named ``heavy``/``light`` and a rate ``k``: the backprop limit is taken
    over the problem's own symbols (it used to look for ``m_x``/``m_W`` and refuse), and
    the reduced law equals SymPy's gradient of the composed loss (the check's own
    reference)."""
    from cognitive_action.verify.checks import check_backprop_symbolic

    k, a, b = S.parameters("k heavy light")
    p = ca.chain(3).problem(weight=sp.exp(k * S.t), mass_x=a, mass_W=b, parameters=[k])
    check = check_backprop_symbolic(p)
    assert check.status == "pass", check.message
