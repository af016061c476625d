"""The generic engine against independent references: sympy.diff, LagrangesMethod,
integration by parts."""

from __future__ import annotations

import random

import pytest
import sympy as sp
from sympy.physics.mechanics import LagrangesMethod, dynamicsymbols

from cognitive_action.declare import symbols as S
from cognitive_action.declare.problem import Action, Problem
from cognitive_action.derive import euler_lagrange
from cognitive_action.derive.calculus import sparse_gradient, total_derivative
from cognitive_action.errors import DerivationError

q1, q2 = S.coordinates("q1 q2")
m, k, a, c = S.parameters("m k a c")


def _random_expression(rng: random.Random, depth: int = 3) -> sp.Expr:
    atoms = [q1, q2, S.dot(q1), S.dot(q2), S.t, m, sp.Integer(rng.randint(1, 3))]
    if depth == 0:
        return rng.choice(atoms)
    op = rng.choice(["add", "mul", "pow", "tanh", "sin", "exp", "log"])
    x, y = _random_expression(rng, depth - 1), _random_expression(rng, depth - 1)
    return {"add": lambda: x + y, "mul": lambda: x * y, "pow": lambda: x**2,
            "tanh": lambda: sp.tanh(x), "sin": lambda: sp.sin(x * y),
            "exp": lambda: sp.exp(-x), "log": lambda: sp.log(1 + x**2)}[op]()


@pytest.mark.parametrize("seed", range(12))
def test_total_derivative_equals_sympy_diff_in_function_form(seed):
    """d/dt on jet symbols equals sympy.diff of the same expression written with q(t)."""
    e = _random_expression(random.Random(seed))
    ours = total_derivative(e, [S.dot(q, j) for q in (q1, q2) for j in range(4)])
    theirs = S.to_jet_form(sp.diff(S.from_jet_form(e, [q1, q2]), S.t))
    assert sp.simplify(ours - theirs) == 0


@pytest.mark.parametrize("seed", range(12))
def test_sparse_gradient_equals_sympy_diff(seed):
    e = _random_expression(random.Random(100 + seed))
    variables = [q1, q2, S.dot(q1), S.dot(q2)]
    grad = sparse_gradient(e, variables)
    for v in variables:
        assert sp.simplify(grad.get(v, 0) - sp.diff(e, v)) == 0


def test_lagrangian_linear_in_acceleration_equals_its_integration_by_parts():
    """F = a q q̈ and F = -a q̇² differ by d/dt(a q q̇): the same Euler-Lagrange equation
    (the d²/dt² F_q̈ term of eq. 8)."""
    x, = S.coordinates("x")
    p1 = Problem(Action([x], masses=m, lagrangian=a * x * S.dot(x, 2) - k * x**2 / 2),
                 parameters=[m, a, k])
    p2 = Problem(Action([x], masses=m, lagrangian=-a * S.dot(x) ** 2 - k * x**2 / 2),
                 parameters=[m, a, k])
    r1, r2 = euler_lagrange(p1).residuals[0], euler_lagrange(p2).residuals[0]
    assert sp.expand(r1 - r2) == 0
    assert sp.expand(r1 - (-(m - 2 * a) * S.dot(x, 2) - k * x)) == 0


def test_lagrangian_nonlinear_in_acceleration_is_rejected():
    x, = S.coordinates("x")
    p = Problem(Action([x], masses=m, lagrangian=a * S.dot(x, 2) ** 2), parameters=[m, a])
    with pytest.raises(DerivationError, match="order above two"):
        euler_lagrange(p)


def test_full_mass_matrix_against_lagranges_method():
    """A constant non-diagonal mass matrix with a coordinate-dependent potential."""
    M = sp.Matrix([[m, m * c], [m * c, 2 * m]])
    V = k * q1**2 / 2 + sp.cos(q1 - q2)
    ours = euler_lagrange(Problem(Action([q1, q2], mass_matrix=M, lagrangian=-V),
                                  parameters=[m, c, k]))
    f1, f2 = dynamicsymbols("q1 q2")
    qd = sp.Matrix([f1.diff(), f2.diff()])
    L = (qd.T * M * qd)[0] / 2 - V.subs({q1: f1, q2: f2})
    lm = LagrangesMethod(L, [f1, f2])
    theirs = [S.to_jet_form(e) for e in lm.form_lagranges_equations()]
    assert [sp.simplify(a_ - b) for a_, b in zip(ours.equations_of_motion(), theirs)] == [0, 0]
    assert ours.mass_matrix.to_matrix() == M


def test_general_time_weight_against_lagranges_method():
    """ϖ = 1 + t² (not exponential): eq. (8) divided by ϖ, against LagrangesMethod."""
    x, = S.coordinates("x")
    w = 1 + S.t**2
    ours = euler_lagrange(Problem(Action([x], masses=m, weight=w, lagrangian=-w * k * x**2 / 2),
                                  parameters=[m, k]))
    f = dynamicsymbols("x")
    lm = LagrangesMethod(w * (m * f.diff() ** 2 / 2 - k * f**2 / 2), [f])
    theirs = S.to_jet_form(lm.form_lagranges_equations()[0]) / w
    assert sp.simplify(ours.equations_of_motion()[0] - theirs) == 0
    assert sp.simplify(ours.rate - 2 * S.t / (1 + S.t**2)) == 0
