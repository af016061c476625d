"""Constrained Euler-Lagrange equations, eq. (8)-(9) and the system above eq. (20).

For a :class:`~cognitive_action.declare.problem.Problem` with Lagrangian density
``ℒ = ϖ ½ q̇ᵀ M q̇ + F`` and constraints, :func:`euler_lagrange` returns the residuals

    E_i = ℒ_{q_i} - d/dt ℒ_{q̇_i} + d²/dt² ℒ_{q̈_i} - λ_j G^j_{q_i} + [non-holonomic terms]

(the paper's sign: eq. 8 reads ``-m_x ϖ ẍ - m_x ϖ̇ ẋ - λ_j G^j_ξ + L_F = 0``).
Non-holonomic constraints ``N^k(t, q, q̇) = 0`` contribute

- ``- μ_k N^k_{q_i} + d/dt(μ_k N^k_{q̇_i})`` with the vakonomic rule (the paper's
  multiplier rule on the action, leading to eq. 20), where ``μ`` are states;
- ``- μ_k N^k_{q̇_i}`` with the Lagrange-d'Alembert rule of classical mechanics.

When the time weight is not 1, every residual is divided by ``ϖ`` term by term and the
multipliers are rescaled, ``δ = λ/ϖ`` (the paper's ``δ_j = e^{-θt} λ_j``), so that
``ϖ = exp(θ t)`` leaves only ``ϖ̇/ϖ = θ`` and no growing exponentials.

The derivation is generic: nothing here knows about neural networks. It scales to
large networks because every differentiation is a single memoized sweep
(:mod:`cognitive_action.derive.calculus`) and every matrix is sparse.

Examples
--------
The ``exp(θt)``-weighted oscillator gives ``m ẍ + θ m ẋ + k x = 0``:

>>> import sympy as sp
>>> from cognitive_action.declare import symbols as S
>>> from cognitive_action.declare.problem import Action, Problem
>>> x, = S.coordinates("x")
>>> m, k, theta = S.parameters("m k theta")
>>> w = sp.exp(theta * S.t)
>>> osc = Problem(Action([x], masses=m, weight=w, lagrangian=-w * k * x**2 / 2),
...               parameters=[m, k, theta])
>>> sp.expand(-euler_lagrange(osc).residuals[0])
k*x + m*theta*x_dot + m*x_ddot
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import ClassVar

import sympy as sp

from cognitive_action.declare.problem import Problem
from cognitive_action.declare.roles import RoleMap, multiplier_name
from cognitive_action.declare.symbols import MAX_ORDER, dot, symbol
from cognitive_action.derive.calculus import Differentiator, TimeDerivative
from cognitive_action.derive.contract import DerivedSystem, multiplier_roles
from cognitive_action.derive.sparse import SparseRows, Walker
from cognitive_action.errors import DerivationError

__all__ = ["EulerLagrange", "euler_lagrange"]


@dataclass
class EulerLagrange(DerivedSystem):
    """The constrained Euler-Lagrange system of a problem (form ``"euler_lagrange"`` of
    the :class:`~cognitive_action.derive.contract.DerivedSystem` contract).

    Attributes
    ----------
    problem
        The declared problem.
    coordinates, velocities, accelerations
        Jet symbols ``q``, ``q̇``, ``q̈``.
    multipliers
        Multipliers of the holonomic constraints (``λ``; ``δ = λ/ϖ`` when weighted).
    nonholonomic_multipliers
        Multipliers ``μ`` of the non-holonomic constraints (states under the vakonomic
        rule, algebraic under d'Alembert's).
    residuals
        ``E_i`` per coordinate (divided by ``ϖ`` when weighted).
    rate
        ``ϖ̇/ϖ`` (``θ`` for ``exp(θt)``), ``0`` without weight.
    jacobian
        ``G_q`` of all constraints (holonomic first, then non-holonomic).
    velocity_jacobian
        ``N_q̇`` of the non-holonomic constraints.
    acceleration_constraints
        ``G̈`` (holonomic) and ``Ṅ`` (non-holonomic): the constraints at the level where
        they are linear in the unknowns.
    unknowns
        ``q̈``, then ``λ`` (or ``δ``), then ``μ̇`` (vakonomic) or ``μ`` (d'Alembert).
    mass_matrix, forcing
        The linear system ``mass_matrix · unknowns = forcing`` equivalent to the
        residuals and acceleration constraints (rows: coordinates then constraints),
        in the sign convention of ``sympy.physics.mechanics`` (positive masses).
    """

    problem: Problem
    coordinates: tuple[sp.Symbol, ...]
    velocities: tuple[sp.Symbol, ...]
    accelerations: tuple[sp.Symbol, ...]
    multipliers: tuple[sp.Symbol, ...]
    nonholonomic_multipliers: tuple[sp.Symbol, ...]
    residuals: list[sp.Expr]
    rate: sp.Expr
    jacobian: SparseRows
    velocity_jacobian: SparseRows
    acceleration_constraints: list[sp.Expr]
    unknowns: tuple[sp.Symbol, ...]
    mass_matrix: SparseRows
    forcing: list[sp.Expr]
    time_dependent: frozenset = field(repr=False)

    form: ClassVar[str] = "euler_lagrange"

    @functools.cached_property
    def roles(self) -> RoleMap:
        """The problem's roles and those of the multipliers this derivation created."""
        return self.problem.roles.merged(multiplier_roles(
            self.multipliers, tuple(c.name for c in self.problem.holonomic),
            self.nonholonomic_multipliers,
            tuple(c.name for c in self.problem.nonholonomic_constraints)))

    @property
    def weighted(self) -> bool:
        """Whether residuals were divided by a time weight ``ϖ ≠ 1``."""
        return self.problem.action.weight != 1

    @property
    def states(self) -> tuple[sp.Symbol, ...]:
        """State vector of the first-order system: ``q, q̇`` (and ``μ`` if vakonomic)."""
        mu = self.nonholonomic_multipliers if self.problem.nonholonomic == "vakonomic" else ()
        return self.coordinates + self.velocities + mu

    def equations_of_motion(self) -> list[sp.Expr]:
        """``-E_i``: the residuals in the sign of ``sympy.physics.mechanics`` (``M q̈ - f``)."""
        return [-r for r in self.residuals]

    def time_derivative(self) -> TimeDerivative:
        """A total-derivative operator aware of every time-dependent symbol here."""
        return TimeDerivative(self.time_dependent)


def _divide(expr: sp.Expr, weight: sp.Expr) -> sp.Expr:
    """``expr / weight`` distributed over the top-level sum (so ``exp(θt)`` cancels)."""
    if weight == 1:
        return expr
    terms = expr.args if isinstance(expr, sp.Add) else (expr,)
    return sp.Add(*(a / weight for a in terms))


def euler_lagrange(problem: Problem) -> EulerLagrange:
    """Derive the constrained Euler-Lagrange equations (8)-(9) of a problem.

    Parameters
    ----------
    problem
        The declared learning law or mechanical system.

    Returns
    -------
    EulerLagrange
        Residuals, Jacobians and the mass-matrix form.

    Raises
    ------
    DerivationError
        If the equations are not of second order (a Lagrangian whose dependence on
        ``q̈`` survives), or not linear in the unknowns.
    """
    coords = problem.coordinates
    vel = tuple(dot(q) for q in coords)
    acc = tuple(dot(q, 2) for q in coords)
    weight = problem.action.weight
    hol, nonhol = problem.holonomic, problem.nonholonomic_constraints
    weighted = weight != 1
    lam = tuple(symbol(multiplier_name(c.name, holonomic=True, weighted=weighted))
                for c in hol)
    mu = tuple(symbol(multiplier_name(c.name, holonomic=False, weighted=weighted))
               for c in nonhol)
    vakonomic = problem.nonholonomic == "vakonomic"

    time_dependent = {dot(s, k) for s in coords + problem.signals for k in range(MAX_ORDER + 1)}
    if vakonomic:
        time_dependent |= {dot(m, k) for m in mu for k in range(2)}
    D = TimeDerivative(time_dependent)
    rate = sp.simplify(D(weight) / weight) if weight != 1 else sp.S.Zero

    # Unconstrained part: L_q - d/dt L_q̇ + d²/dt² L_q̈, divided by ϖ.
    jets = set(coords) | set(vel) | set(acc)
    grad = Differentiator(jets).gradient(problem.action.density)
    residual_terms: list[list[sp.Expr]] = []
    for q, v, a in zip(coords, vel, acc):
        e = grad.get(q, sp.S.Zero) - D(grad.get(v, sp.S.Zero)) + D(D(grad.get(a, sp.S.Zero)))
        residual_terms.append([_divide(e, weight)])

    # Constraint Jacobians, one sweep per constraint.
    dq = Differentiator(coords)
    dv = Differentiator(vel)
    jac_rows = [dq.gradient(c.expr) for c in hol + nonhol]
    vjac_rows = [dv.gradient(c.expr) for c in nonhol]
    index = {q: i for i, q in enumerate(coords)}
    vindex = {v: i for i, v in enumerate(vel)}
    for j, row in enumerate(jac_rows[: len(hol)]):
        for q, g in row.items():
            residual_terms[index[q]].append(-lam[j] * g)
    for k, (row, vrow) in enumerate(zip(jac_rows[len(hol):], vjac_rows)):
        for q, g in row.items():
            if vakonomic:
                residual_terms[index[q]].append(-mu[k] * g)
        for v, g in vrow.items():
            i = vindex[v]
            if vakonomic:
                # d/dt(ϖ μ N_q̇)/ϖ = ρ μ N_q̇ + d/dt(μ N_q̇)
                residual_terms[i].append(D(mu[k] * g) + rate * mu[k] * g)
            else:
                residual_terms[i].append(-mu[k] * g)
    residuals = [sp.Add(*terms) for terms in residual_terms]

    # Acceleration-level constraints and the mass-matrix form.
    acc_constraints = [D(D(c.expr)) for c in hol] + [D(c.expr) for c in nonhol]
    # μ are states under the vakonomic rule (their rates are unknown), algebraic otherwise.
    mu_unknowns = tuple(dot(m) for m in mu) if vakonomic else mu
    unknowns = acc + lam + mu_unknowns
    high = {dot(q, k) for q in coords for k in range(3, MAX_ORDER + 1)}
    high_walk = Walker(high)
    for i, r in enumerate(residuals):
        if high_walk.depends(r):
            r = sp.expand(r)
            if Walker(high).depends(r):  # a fresh memo: r changed
                raise DerivationError(
                    f"the Euler-Lagrange equation of {coords[i]} is of order above two",
                    fix="a Lagrangian term F that depends on q̈ other than linearly gives "
                    "higher-order equations; remove the q̈ dependence")
            residuals[i] = r
    eom = [-r for r in residuals] + acc_constraints
    du = Differentiator(unknowns)
    zero = Walker(unknowns)
    mm_rows, forcing = [], []
    for i, e in enumerate(eom):
        row = du.gradient(e)
        for u, g in row.items():
            if zero.depends(g):
                raise DerivationError(
                    f"equation {i} is not linear in {u}: coefficient {g}",
                    fix="the Lagrangian must be quadratic in velocities (plus terms linear in "
                    "them) for the multiplier rule of eq. (10)")
        mm_rows.append(row)
        forcing.append(-zero.zero_out(e))
    row_labels = tuple(coords) + tuple(c.name for c in hol + nonhol)
    return EulerLagrange(
        problem=problem, coordinates=coords, velocities=vel, accelerations=acc,
        multipliers=lam, nonholonomic_multipliers=mu, residuals=residuals, rate=rate,
        jacobian=SparseRows([c.name for c in hol + nonhol], coords, jac_rows),
        velocity_jacobian=SparseRows([c.name for c in nonhol], vel, vjac_rows),
        acceleration_constraints=acc_constraints, unknowns=unknowns,
        mass_matrix=SparseRows(row_labels, unknowns, mm_rows), forcing=forcing,
        time_dependent=frozenset(time_dependent | {dot(x) for x in lam}))

