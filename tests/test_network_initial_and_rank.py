"""Numeric initial conditions of networks and the triangular rank certificate.

References: the generic Newton completion of
:func:`~cognitive_action.derive.initial.complete_initial_conditions` on the
Euler-Lagrange system (lambdified declared constraints), a fixed point checked by plain
NumPy, and SymPy's row reduction for the rank.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.declare import Action, Constraint, Problem
from cognitive_action.declare import symbols as S
from cognitive_action.declare.symbols import dot
from cognitive_action.derive.euler_lagrange import euler_lagrange
from cognitive_action.derive.initial import (
    complete_initial_conditions,
    complete_network_initial_conditions,
    constraint_residuals,
    is_plain_network,
    network_constraint_jacobian,
    network_constraint_residuals,
)
from cognitive_action.derive.rank import _jacobian, constraint_rank, triangular_full_rank
from cognitive_action.errors import InconsistentInitialConditionsError


def _given(p, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    net = p.network
    g = {str(w): scale * rng.standard_normal() for w in net.weights}
    g |= {str(dot(w)): rng.standard_normal() for w in net.weights}
    for s in p.signals:
        g |= {str(s): rng.standard_normal(), str(dot(s)): rng.standard_normal(),
              str(dot(s, 2)): 0.0}
    return g | {str(q): 1.0 for q in p.parameters}


NETS = {
    "layered-time-inputs": lambda: ca.layered([2, 3, 2], "logistic").problem(
        inputs={1: sp.sin(S.t), 2: sp.cos(2 * S.t)}),
    "self-loop": lambda: ca.Network([(1, 2), (2, 2), (2, 3)], inputs=[1]).problem(),
    "two-cycle": lambda: ca.Network([(1, 2), (2, 3), (3, 2), (3, 4)], inputs=[1]).problem(),
    "skip": lambda: ca.Network([(1, 3), (2, 3), (1, 4), (3, 4), (2, 5), (4, 5)],
                               inputs=[1, 2], activation="softplus").problem(),
}


@pytest.mark.parametrize("name", list(NETS))
def test_numeric_completion_matches_the_generic_newton_completion(name):
    p = NETS[name]()
    assert is_plain_network(p)
    given = _given(p, seed=4)
    ours = complete_network_initial_conditions(p, given, t0=0.7)
    ref = complete_initial_conditions(euler_lagrange(p), given, t0=0.7)
    for s in p.network.neurons:
        assert ours[str(s)] == pytest.approx(ref[str(s)], abs=1e-10)
        assert ours[str(dot(s))] == pytest.approx(ref[str(dot(s))], abs=1e-10)
    # residuals from the template and from the declared constraints (SymPy) agree and vanish
    tpl = network_constraint_residuals(p, ours)
    sym = constraint_residuals(euler_lagrange(p), ours)
    for k, (g, gd) in sym.items():
        assert abs(g) < 1e-10 and abs(gd) < 1e-10
        assert tpl[k] == pytest.approx((g, gd), abs=1e-10)


def test_cyclic_completion_is_a_fixed_point_of_the_network():
    p = NETS["two-cycle"]()
    given = _given(p, seed=1)
    ic = complete_network_initial_conditions(p, given, t0=0.0)
    x = {n: ic[f"x{n}"] for n in (1, 2, 3, 4)}
    w = {k: given[k] for k in given if k.startswith("w") and not k.endswith("_dot")}
    assert x[1] == pytest.approx(given["e1"])
    assert x[2] == pytest.approx(np.tanh(w["w2_1"] * x[1] + w["w2_3"] * x[3]), abs=1e-12)
    assert x[3] == pytest.approx(np.tanh(w["w3_2"] * x[2]), abs=1e-12)
    assert x[4] == pytest.approx(np.tanh(w["w4_3"] * x[3]), abs=1e-12)


def test_no_fixed_point_is_a_typed_error():
    # identity neuron with a unit self-loop: x2 = x2 + e1 has no solution for e1 != 0
    p = ca.Network([(1, 2), (2, 2)], inputs=[1], activation="identity",
                   outputs=[2]).problem()
    given = {"w2_1": 1.0, "w2_2": 1.0, "e1": 1.0, "e1_dot": 0.0, "y2": 0.0}
    with pytest.raises(InconsistentInitialConditionsError, match="fixed point"):
        complete_network_initial_conditions(p, given)


def test_template_jacobian_is_the_declared_one():
    p = NETS["skip"]()
    vals = complete_network_initial_conditions(p, _given(p, seed=2), t0=0.3)
    J = network_constraint_jacobian(p, vals).toarray()
    el = euler_lagrange(p)
    ref = el.jacobian.restrict(list(p.network.neurons)).to_matrix()
    ref = np.array(ref.xreplace({s: vals[s.name] for s in ref.free_symbols}), dtype=float)
    assert np.allclose(J, ref, atol=1e-14)
    # and the symbolic rows of the rank check equal the Euler-Lagrange Jacobian
    assert sp.simplify(_jacobian(p, list(p.network.neurons)).to_matrix() -
                       el.jacobian.restrict(list(p.network.neurons)).to_matrix()) == \
        sp.zeros(len(p.network.order))


@pytest.mark.parametrize("name, certified", [("self-loop", True), ("two-cycle", False),
                                             ("skip", True)])
def test_triangular_certificate_agrees_with_row_reduction(name, certified):
    p = NETS[name]()
    wrt = list(p.network.neurons)
    assert triangular_full_rank(p, wrt=wrt) is certified
    M = _jacobian(p, wrt).to_matrix()
    assert M.rank(simplify=True) == len(wrt)  # the reference: SymPy's own rank
    r = constraint_rank(p, wrt=wrt, method="symbolic")
    assert r.full and r.rank == len(wrt)


def test_certificate_is_not_fooled_by_a_diagonal_that_is_zero_in_disguise():
    q1, q2 = S.coordinates("q1 q2")
    zero = sp.sin(q1) ** 2 + sp.cos(q1) ** 2 - 1  # not simplified by SymPy on its own
    p = Problem(Action([q1, q2], masses=1),
                [Constraint(q1, name="A"), Constraint(q1 + q2 * zero, name="B")])
    assert not triangular_full_rank(p)
    r = constraint_rank(p, method="symbolic")
    assert (r.rank, r.dependent) == (1, ("B",))
