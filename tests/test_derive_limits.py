"""Limits of Section 3 by asymptotic scaling, against independent computations.

References are written here, not taken from the library: the composed loss
``V(f_W(e))`` is built by hand for each net and differentiated with ``sympy.diff``.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.declare import Action, Constraint, Problem
from cognitive_action.declare import symbols as S
from cognitive_action.derive.limits import (
    EPSILON,
    GAMMA,
    Limit,
    backprop,
    gradient_flow,
    leading_order,
    quasi_static,
    reduce,
    staged,
)
from cognitive_action.errors import DeclarationError, DerivationError
from cognitive_action.verify import metrics
from cognitive_action.verify.checks import check_formula

theta, c = S.parameters("theta c")
sym = S.symbol


def _zero(expr: sp.Expr) -> bool:
    return sp.expand(expr) == 0 or sp.simplify(expr) == 0


@pytest.fixture(scope="module")
def chain_el():
    p = ca.chain(3).problem(weight=sp.exp(theta * S.t), parameters=[theta])
    return ca.euler_lagrange(p)


def _chain_reference():
    """Forward pass and composed loss of the 3-neuron chain, written by hand."""
    e1, w21, w32, y3 = sym("e1"), sym("w2_1"), sym("w3_2"), sym("y3")
    x = {sym("x1"): e1, sym("x2"): sp.tanh(w21 * e1)}
    x[sym("x3")] = sp.tanh(w32 * x[sym("x2")])
    V = (x[sym("x3")] - y3) ** 2 / 2
    return x, V, (w21, w32)


def test_chain_backprop_limit_equals_sympy_gradient(chain_el):
    sol = reduce(chain_el, backprop(rate=theta)).solve()
    x, V, ws = _chain_reference()
    for w in ws:  # eq. (14)-(15): W_dot = -(1/gamma) dV/dW
        assert _zero(sol[S.dot(w)].xreplace(x) + sp.diff(V, w) / GAMMA)
    # eq. (17) by the paper's example: delta3 = -V_x3, delta2 = s'(w32 x2) w32 delta3, ...
    x1, x2, x3, w21, w32, y3 = (sym(n) for n in ("x1", "x2", "x3", "w2_1", "w3_2", "y3"))
    d3 = -(x3 - y3)
    d2 = (1 - sp.tanh(w32 * x2) ** 2) * w32 * d3
    d1 = (1 - sp.tanh(w21 * x1) ** 2) * w21 * d2
    for name, ref in (("delta_G3", d3), ("delta_G2", d2), ("delta_G1", d1)):
        assert _zero(sol[sym(name)] - ref)


def test_xor_backprop_limit_equals_sympy_gradient():
    p = ca.xor().problem(weight=sp.exp(theta * S.t), parameters=[theta])
    sol = reduce(ca.euler_lagrange(p), backprop(rate=theta)).solve()
    e1, e2, y5 = sym("e1"), sym("e2"), sym("y5")
    w = {n: sym(n) for n in ("w3_1", "w3_2", "w4_1", "w4_2", "w5_3", "w5_4")}
    x3 = sp.tanh(w["w3_1"] * e1 + w["w3_2"] * e2)
    x4 = sp.tanh(w["w4_1"] * e1 + w["w4_2"] * e2)
    x5 = sp.tanh(w["w5_3"] * x3 + w["w5_4"] * x4)
    V = (x5 - y5) ** 2 / 2
    fwd = {sym("x1"): e1, sym("x2"): e2, sym("x3"): x3, sym("x4"): x4, sym("x5"): x5}
    for ws in w.values():
        assert _zero(sol[S.dot(ws)].xreplace(fwd) + sp.diff(V, ws) / GAMMA), ws


def test_staged_limits_give_eq13_then_eq14(chain_el):
    mW = ca.declare.network.MASS_W
    x, V, ws = _chain_reference()
    r13 = reduce(chain_el, quasi_static())
    sol13 = r13.solve()
    for w in ws:  # eq. (13): W_ddot + theta W_dot = -(1/m_W) dV/dW
        assert _zero(sol13[S.dot(w, 2)].xreplace(x) + theta * S.dot(w) + sp.diff(V, w) / mW)
    sol14 = staged(chain_el, [quasi_static(), gradient_flow(theta)]).solve()
    direct = reduce(chain_el, backprop(rate=theta)).solve()
    for w in ws:  # eq. (14), and the same as the one-step limit of eq. (15)-(17)
        assert _zero(sol14[S.dot(w)].xreplace(x) + sp.diff(V, w) / GAMMA)
        assert _zero(sol14[S.dot(w)] - direct[S.dot(w)])


def test_eq15_as_printed_has_the_wrong_sign_and_eq20_line2_is_right(chain_el):
    x1, x2, w21, w32 = sym("x1"), sym("x2"), sym("w2_1"), sym("w3_2")
    d2, d3 = sym("delta_G2"), sym("delta_G3")
    sp_ = lambda a: 1 - sp.tanh(a) ** 2  # noqa: E731
    printed15 = {S.dot(w21): -sp_(w21 * x1) * d2 * x1 / GAMMA,
                 S.dot(w32): -sp_(w32 * x2) * d3 * x2 / GAMMA}
    chk = check_formula(chain_el, printed15, name="eq15")
    assert chk.status == "fail"
    assert sorted(chk.details["opposite_sign"]) == ["w2_1_dot", "w3_2_dot"]
    # eq. (20), second line: W_dot = -(1/gamma) delta_j G^j_M with G^j_{w_jk} = -s' x_k
    line2 = {S.dot(w21): -d2 * (-sp_(w21 * x1) * x1) / GAMMA,
             S.dot(w32): -d3 * (-sp_(w32 * x2) * x2) / GAMMA}
    assert check_formula(chain_el, line2, name="eq20").status == "pass"


def test_nonholonomic_infinite_speed_reduces_to_backprop():
    p = ca.chain(3, speed=c).problem(weight=sp.exp(theta * S.t), parameters=[theta])
    el = ca.euler_lagrange(p)
    sol = reduce(el, backprop(rate=theta, speed=c)).solve()
    x, V, ws = _chain_reference()
    for w in ws:
        assert _zero(sol[S.dot(w)].xreplace(x) + sp.diff(V, w) / GAMMA)
    x2, x3, w32, y3 = sym("x2"), sym("x3"), sym("w3_2"), sym("y3")
    assert _zero(sol[sym("nu_G3")] + (x3 - y3))
    assert _zero(sol[sym("nu_G2")] - (1 - sp.tanh(w32 * x2) ** 2) * w32 * (y3 - x3))


def test_nonholonomic_at_fixed_speed_freezes_learning():
    """The derived vakonomic term c^-1 (nu_dot + theta nu) dominates when theta -> oo at
    fixed c: the multipliers vanish at leading order (eq. 20 as printed drops theta nu)."""
    p = ca.chain(3, speed=c).problem(weight=sp.exp(theta * S.t), parameters=[theta])
    el = ca.euler_lagrange(p)
    x2 = sym("x2")
    assert any(sp.diff(r, sym("nu_G2")).has(theta) for r in el.residuals
               if r.has(S.dot(x2, 2)))
    sol = reduce(el, backprop(rate=theta)).solve()
    assert sol[sym("nu_G2")] == 0 and sol[sym("nu_G3")] == 0
    assert sol[S.dot(sym("w3_2"))] == 0


def test_toy_constraint_closed_form_tends_to_backprop_delta_with_order_one():
    x2, w = S.coordinates("x2 w")
    x1, a = S.parameters("x1 a")
    mx, mw = sp.symbols("m_x m_W", positive=True)
    p = Problem(Action([x2, w], masses={x2: mx, w: mw}, lagrangian=-(x2 - a) ** 2 / 2),
                [Constraint(x2 - sp.tanh(w * x1), name="N")], parameters=[x1, a, mx, mw])
    me = ca.multiplier_equation(p)
    rest = {S.dot(x2): 0, S.dot(w): 0}
    lam = (me.b()[0] / me.A()[0, 0]).subs(rest)
    closed = mw * (a - x2) / (mw + mx * x1**2 * sp.sech(w * x1) ** 4)  # design.md
    assert _zero((lam - closed).rewrite(sp.exp))
    # Leading order as m_x/m_W -> 0: the output delta a - x2 = -V_x2 ...
    p0, c0 = leading_order(closed.subs(mx, EPSILON * mx))
    assert p0 == 0 and _zero(c0 - (a - x2))
    # ... and the reduced system of the same limit, derived from the problem:
    sol = reduce(ca.euler_lagrange(p), quasi_static(mx)).solve()
    assert _zero(sol[sym("lambda_N")] - (a - x2))
    # Fitted order 1: lam - (a - x2) = -(a - x2) r s/(1 + r s), r = m_x/m_W.
    f = sp.lambdify(mx, (lam - (a - x2)).subs({mw: 1, x1: 0.7, w: 0.4, a: 1.0, x2: 0.2}))
    r = np.array([1e-2, 1e-3, 1e-4, 1e-5])
    fit = metrics.convergence_order(r, np.abs([f(v) for v in r]))
    assert abs(fit.order - 1.0) < 1e-2 and fit.ci[0] < 1.0 + 1e-2


def test_leading_order_and_limit_errors(chain_el):
    m, x = sp.symbols("m x", positive=True)
    assert leading_order(EPSILON**-1 * m + x) == (-1, m)
    assert leading_order(EPSILON * (x - x) + EPSILON**2 * m) == (2, m)
    with pytest.raises(DeclarationError, match="does not occur"):
        reduce(chain_el, Limit("bad", {sp.Symbol("zeta"): 1}))
    # Without theta = gamma/m_W the mass limit is not regular: the weight rows lose W_dot.
    unweighted = ca.euler_lagrange(ca.chain(3).problem())
    with pytest.raises(DerivationError, match="may not be regular"):
        reduce(unweighted, backprop()).solve()
