"""The contract every derived system keeps.

A derivation turns a declared :class:`~cognitive_action.declare.problem.Problem` into a
system of equations. There are several forms, each suited to a size or a limit:

=================  ==========================================  ==============================
form               class                                       what it holds
=================  ==========================================  ==============================
``euler_lagrange`` :class:`~.euler_lagrange.EulerLagrange`     eq. (8)-(10) in mass-matrix
                                                               form, any problem
``network``        :class:`~.network.NetworkSystem`            per-neuron templates of
                                                               eq. (4), (8)-(10)
``speed_network``  :class:`~.network_speed.SpeedNetworkSystem` templates of eq. (18)-(20)
``reduced``        :class:`~.limits.ReducedSystem`             the leading order of a limit
                                                               (eq. 12-17, 20 with c → ∞)
=================  ==========================================  ==============================

All of them expose the same protocol (:class:`DerivedSystem`): the ``problem`` derived,
a :class:`~cognitive_action.declare.roles.RoleMap` of every symbol (``roles``), the
``states`` of the first-order system, the ``unknowns`` solved at every instant (rates,
multipliers), the ``parameters`` and ``signals``, the ``constraints``, and ``form``, the
key by which :func:`cognitive_action.compile.compile_system` picks its compiler from a
registry. Downstream code asks this protocol; it never tests a class name.

Examples
--------
>>> import cognitive_action as ca
>>> el = ca.euler_lagrange(ca.chain(2).problem())
>>> el.form, [str(s) for s in el.unknowns][-2:]
('euler_lagrange', ['lambda_G1', 'lambda_G2'])
>>> str(el.multiplier_of("G2")), el.roles[el.multiplier_of("G2")].describe()
('lambda_G2', 'multiplier of G2')
>>> isinstance(el, DerivedSystem)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import sympy as sp

from cognitive_action.declare.roles import CONSTANT_KINDS, Role, RoleKind

if TYPE_CHECKING:
    from cognitive_action.declare.problem import Constraint, Problem

__all__ = ["DerivedSystem", "multiplier_roles"]


class DerivedSystem:
    """Base class and protocol of derived systems.

    Subclasses set the class attribute :attr:`form` and provide ``problem``, ``roles``,
    ``states`` and ``unknowns``; the rest follows from the roles.
    """

    #: Key of the compiler that handles this form (``compile.routes``).
    form: ClassVar[str] = ""

    problem: Problem | None
    # Every subclass also provides ``roles`` (a RoleMap), ``states`` and ``unknowns``
    # (tuples of symbols): as dataclass fields or properties, so they are not declared
    # here (a property here would shadow a subclass's dataclass field).

    @property
    def parameters(self) -> tuple[sp.Symbol, ...]:
        """Constant symbols: parameters, masses, the rate ``ϖ̇/ϖ``, the speed ``c``."""
        return self.roles.symbols(*CONSTANT_KINDS)

    @property
    def signals(self) -> tuple[sp.Symbol, ...]:
        """External signals of time (inputs ``e``, targets ``y``)."""
        return self.roles.symbols(RoleKind.SIGNAL)

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        """The declared constraints (holonomic, then non-holonomic, as declared)."""
        return self.problem.constraints if self.problem is not None else ()

    def multiplier_unknowns(self) -> tuple[sp.Symbol, ...]:
        """The unknowns that are multipliers (``λ``, ``δ``; ``μ`` under d'Alembert's
        rule), as opposed to rates (``q̈``, ``μ̇``) and promoted velocities."""
        out = []
        for u in self.unknowns:
            role = self.roles.get(u)
            if role is not None and role.is_multiplier and role.order == 0:
                out.append(u)
        return tuple(out)

    def multiplier_of(self, constraint: str) -> sp.Symbol:
        """The multiplier (``λ``, ``δ``, ``μ`` or ``ν``) of the constraint named
        ``constraint``."""
        return self.roles.multiplier_of(constraint)


def multiplier_roles(holonomic: tuple[sp.Symbol, ...], holonomic_names: tuple[str, ...],
                     nonholonomic: tuple[sp.Symbol, ...] = (),
                     nonholonomic_names: tuple[str, ...] = ()) -> dict[sp.Symbol, Role]:
    """Roles of multipliers, set where a derivation creates them: ``{λ_k: multiplier of
    G_k, ...}`` (their time derivatives resolve through the role map)."""
    out: dict[sp.Symbol, Role] = {}
    for kind, syms, names in ((RoleKind.MULTIPLIER, holonomic, holonomic_names),
                              (RoleKind.NONHOLONOMIC_MULTIPLIER, nonholonomic,
                               nonholonomic_names)):
        for s, n in zip(syms, names):
            out[s] = Role(kind, of=n)
    return out
