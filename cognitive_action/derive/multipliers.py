"""The multiplier equation (10): ``A λ = b`` as objects, not a symbolic inverse.

Differentiating the holonomic constraints twice in time gives ``J q̈ + h = 0`` with
``J = G_q`` and ``h = G̈|_{q̈=0}`` (the ``G_ττ + 2 G_τq q̇ + q̇ᵀ G_qq q̇`` terms of eq. 10).
The Euler-Lagrange equations in mass-matrix form read ``M q̈ + Jᵀ λ = f``. With a
diagonal ``M`` (the paper's ``m_x``, ``m_W``), eliminating ``q̈`` gives eq. (10):

    (J M⁻¹ Jᵀ) λ = J M⁻¹ f + h,

i.e. ``(G^i_ξ G^j_ξ / m_x + G^i_M G^j_M / m_W) λ_j = … + L_F G^i / m`` after dividing by
``ϖ``. :class:`MultiplierEquation` keeps the factors ``J``, ``M⁻¹``, ``f`` and ``h``;
the dense ``A`` and ``b`` are formed only on request (they are dense ``ν × ν`` for a
dense network), and :meth:`MultiplierEquation.solve` solves numerically at a point.

Examples
--------
The non-minimal pendulum at rest: ``λ = m g q1 / (2 L²)``, i.e. ``m g/(2L)`` hanging.

>>> import sympy as sp
>>> from cognitive_action.declare import symbols as S
>>> from cognitive_action.declare.problem import Action, Constraint, Problem
>>> q1, q2 = S.coordinates("q1 q2"); m, g, L = S.parameters("m g L")
>>> p = Problem(Action([q1, q2], masses=m, lagrangian=m * g * q1),
...             [Constraint(q1**2 + q2**2 - L**2, name="rod")], parameters=[m, g, L])
>>> eq = multiplier_equation(p)
>>> lam = eq.A()[0, 0] ** -1 * eq.b()[0]
>>> sp.simplify(lam.subs({S.dot(q1): 0, S.dot(q2): 0, q1: L, q2: 0}))
g*m/(2*L)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from cognitive_action.declare.problem import Problem
from cognitive_action.derive.euler_lagrange import EulerLagrange, euler_lagrange
from cognitive_action.derive.numeric import by_name, to_float
from cognitive_action.derive.sparse import SparseRows, Walker
from cognitive_action.errors import DerivationError

__all__ = ["MultiplierEquation", "multiplier_equation"]


@dataclass
class MultiplierEquation:
    """Eq. (10), ``(J M⁻¹ Jᵀ) λ = J M⁻¹ f + h``, kept in factored form.

    Attributes
    ----------
    multipliers
        ``λ`` (or ``δ = λ/ϖ``), one per holonomic constraint.
    jacobian
        ``J = G_q`` (holonomic constraints × coordinates), sparse.
    inverse_masses
        Diagonal of ``M⁻¹`` per coordinate (absent: zero mass is not allowed here).
    forcing
        ``f`` per coordinate: everything in ``M q̈ + Jᵀλ = f`` but the unknowns.
    h
        ``G̈|_{q̈=0}`` per constraint.
    """

    multipliers: tuple[sp.Symbol, ...]
    jacobian: SparseRows
    inverse_masses: dict[sp.Symbol, sp.Expr]
    forcing: dict[sp.Symbol, sp.Expr]
    h: list[sp.Expr]

    def A(self) -> sp.Matrix:
        """The dense matrix ``J M⁻¹ Jᵀ`` (small systems only)."""
        n = len(self.multipliers)
        A = sp.zeros(n, n)
        rows = self.jacobian.rows
        for i in range(n):
            for j in range(i, n):
                common = rows[i].keys() & rows[j].keys()
                v = sp.Add(*(rows[i][q] * self.inverse_masses[q] * rows[j][q] for q in common))
                A[i, j] = A[j, i] = v
        return A

    def b(self) -> sp.Matrix:
        """The dense right-hand side ``J M⁻¹ f + h``."""
        return sp.Matrix(self.b_entries())

    def b_entries(self) -> list[sp.Expr]:
        """``J M⁻¹ f + h`` as a list of expressions (linear in size)."""
        out = []
        for row, h in zip(self.jacobian.rows, self.h):
            out.append(sp.Add(*(g * self.inverse_masses[q] * self.forcing[q]
                                for q, g in row.items())) + h)
        return out

    def solve(self, values: Mapping[sp.Symbol | str, float]) -> np.ndarray:
        """Solve numerically for the multipliers at a point.

        Parameters
        ----------
        values
            Numbers for every symbol in ``J``, ``M⁻¹``, ``f`` and ``h`` (coordinates,
            velocities, parameters, signals, ``t``), keyed by symbol or by name.
        """
        vals = by_name(values)

        def num(e: sp.Expr) -> float:
            return to_float(e, vals)

        n = len(self.multipliers)
        J = np.zeros((n, len(self.jacobian.columns)))
        for i, row in enumerate(self.jacobian.rows):
            for q, g in row.items():
                J[i, self.jacobian.column_index(q)] = num(g)
        cols = self.jacobian.columns
        minv = np.array([num(self.inverse_masses[q]) for q in cols])
        f = np.array([num(self.forcing[q]) for q in cols])
        h = np.array([num(e) for e in self.h])
        A = (J * minv) @ J.T
        rhs = J @ (minv * f) + h
        try:
            return np.linalg.solve(A, rhs)
        except np.linalg.LinAlgError as exc:
            raise DerivationError(
                "the multiplier matrix J M⁻¹ Jᵀ is singular at this point",
                fix="check the rank of the constraint Jacobian (Proposition 1) with "
                "cognitive_action.derive.rank.constraint_rank") from exc


def multiplier_equation(system: Problem | EulerLagrange) -> MultiplierEquation:
    """Eq. (10) for the holonomic constraints of a problem with a diagonal mass matrix.

    Parameters
    ----------
    system
        A problem, or its already derived :class:`EulerLagrange` system.

    Raises
    ------
    DerivationError
        With non-holonomic constraints (use the mass-matrix form of
        :func:`~cognitive_action.derive.euler_lagrange.euler_lagrange`), with a
        non-diagonal or zero mass in the ``q̈`` block, or without constraints.
    """
    el = system if isinstance(system, EulerLagrange) else euler_lagrange(system)
    if el.nonholonomic_multipliers:
        raise DerivationError(
            "eq. (10) is for holonomic constraints only",
            fix="for non-holonomic constraints use euler_lagrange(problem).mass_matrix, "
            "which includes the multiplier dynamics of eq. (20)")
    if not el.multipliers:
        raise DerivationError("the problem has no constraints, hence no multipliers",
                              fix="add constraints, or simulate the unconstrained system")
    n = len(el.coordinates)
    accel = set(el.accelerations)
    inv = {}
    for i, q in enumerate(el.coordinates):
        row = el.mass_matrix.rows[i]
        block = {u: v for u, v in row.items() if u in accel}
        a = el.accelerations[i]
        if set(block) - {a}:
            raise DerivationError(
                f"the mass matrix couples {q} with other coordinates",
                fix="eq. (10) in factored form needs a diagonal mass matrix; solve the "
                "mass-matrix form (EulerLagrange.mass_matrix) instead")
        m = block.get(a, sp.S.Zero)
        if m == 0:
            raise DerivationError(
                f"{q} has zero mass, so eq. (10) cannot be formed",
                fix="give every coordinate a positive mass; the massless limits are derived "
                "by cognitive_action's limits, not by eq. (10)")
        inv[q] = 1 / m
    nh = len(el.multipliers)
    zero_acc = Walker(accel)
    h = [zero_acc.zero_out(c) for c in el.acceleration_constraints[:nh]]
    forcing = dict(zip(el.coordinates, el.forcing[:n]))
    return MultiplierEquation(
        multipliers=el.multipliers, jacobian=el.jacobian, inverse_masses=inv,
        forcing=forcing, h=h)
