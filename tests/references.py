"""Reference systems shared by the compile tests, with their closed forms.

Not a test module: the tests import it (``from references import ...``; pytest puts this
folder on ``sys.path``).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from cognitive_action.declare import symbols as S
from cognitive_action.declare.problem import Action, Constraint, Problem

#: Gravitational acceleration of the pendulum references.
G_ACC = 9.81


def oscillator() -> Problem:
    """The weighted oscillator ``m ẍ + θ m ẋ + k x = 0`` (``ϖ = exp(θt)``)."""
    x, = S.coordinates("x")
    m, k, theta = S.parameters("m k theta")
    w = sp.exp(theta * S.t)
    return Problem(Action([x], masses=m, weight=w, lagrangian=-w * k * x**2 / 2),
                   parameters=[m, k, theta], name="oscillator")


def oscillator_solution(t, m, k, theta, x0, v0):
    """Closed form of ``m ẍ + θ m ẋ + k x = 0`` (under- or overdamped, not critical)."""
    a = -theta / 2
    disc = k / m - theta**2 / 4
    if disc > 0:
        w = np.sqrt(disc)
        return np.exp(a * t) * (x0 * np.cos(w * t) + (v0 - a * x0) / w * np.sin(w * t))
    s = np.sqrt(-disc)
    r1, r2 = a + s, a - s
    c1 = (v0 - r2 * x0) / (r1 - r2)
    return c1 * np.exp(r1 * t) + (x0 - c1) * np.exp(r2 * t)


def pendulum() -> Problem:
    """The planar pendulum in Cartesian coordinates, rod constraint ``q1² + q2² = L²``
    (``q1`` along gravity)."""
    q1, q2 = S.coordinates("q1 q2")
    m, g, L = S.parameters("m g L")
    return Problem(Action([q1, q2], masses=m, lagrangian=m * g * q1),
                   [Constraint(q1**2 + q2**2 - L**2, name="rod")], parameters=[m, g, L])
