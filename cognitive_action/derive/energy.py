"""The phase dynamics of an energy model, derived from its declared energy.

For an :class:`~cognitive_action.declare.energy.EnergyModel` with energy ``E``, cost
``C`` and nudging ``β``, :func:`derive_energy` differentiates the declared expressions
with SymPy (one sparse sweep each, :mod:`cognitive_action.derive.calculus`):

- the phase dynamics ``ẋ_i = -∂E/∂x_i - β ∂C/∂x_i = -∂(E + βC)/∂x_i`` (Scellier &
  Bengio 2017, Sections 2-3; the free phase is ``β = 0``), the ``rates``;
- ``∂E/∂W`` for every learnable symbol, which the EP update reads at the fixed points
  (S&B Theorem 1 with ``∂C/∂W = 0``).

Nothing here knows the Hopfield energy: the same derivation serves any ``E``. The result
keeps the :class:`~cognitive_action.derive.contract.DerivedSystem` contract (form
``"energy"``): the neurons are the ``states``, their velocities the ``unknowns``; the
weights, ``β`` and the constants are ``parameters``, inputs and targets ``signals``.

These phases are the gradient-flow limit (eq. 14 of Betti & Gori) of the action
``∫ e^{θt}(½ m_x‖ẋ‖² - E - βC) dt`` with ``θ m_x = 1``, ``m_x → 0``.

Examples
--------
>>> import sympy as sp
>>> from cognitive_action.declare.energy import hopfield
>>> system = derive_energy(hopfield([(1, 2)], inputs=[1], activation="identity",
...                                 bias=False))
>>> system.form, sp.expand(system.rates[0])
('energy', -beta*x2 + beta*y2 + e1*w1_2 - x2)
>>> system.energy_gradient
(-e1*x2,)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import sympy as sp

from cognitive_action.declare.energy import EnergyModel
from cognitive_action.declare.roles import RoleMap
from cognitive_action.declare.symbols import dot
from cognitive_action.derive.calculus import Differentiator
from cognitive_action.derive.contract import DerivedSystem
from cognitive_action.errors import DeclarationError

__all__ = ["EnergySystem", "derive_energy"]


@dataclass
class EnergySystem(DerivedSystem):
    """The derived phases of an energy model (form ``"energy"``).

    Attributes
    ----------
    model
        The declared :class:`~cognitive_action.declare.energy.EnergyModel`.
    rates
        ``-∂(E + βC)/∂x_i`` per neuron: the nudged phase; ``β = 0`` gives the free one.
    energy_gradient
        ``∂E/∂w`` per learnable symbol (``model.learnable`` order).
    """

    model: EnergyModel
    rates: tuple[sp.Expr, ...]
    energy_gradient: tuple[sp.Expr, ...]

    form: ClassVar[str] = "energy"

    @property
    def problem(self) -> EnergyModel:  # the contract's name for what was derived
        return self.model

    @functools.cached_property
    def roles(self) -> RoleMap:
        return self.model.roles

    @property
    def states(self) -> tuple[sp.Symbol, ...]:
        """The neurons ``x``."""
        return self.model.neurons

    @property
    def coordinates(self) -> tuple[sp.Symbol, ...]:
        """The neurons (as :attr:`states`)."""
        return self.model.neurons

    @property
    def unknowns(self) -> tuple[sp.Symbol, ...]:
        """The velocities ``ẋ`` (given by :attr:`rates`)."""
        return tuple(dot(x) for x in self.model.neurons)

    @property
    def constraints(self) -> tuple:
        return ()

    def free_rates(self) -> tuple[sp.Expr, ...]:
        """``-∂E/∂x``: the free phase (``β = 0``)."""
        return tuple(r.subs(self.model.beta, 0) for r in self.rates)

    def equations(self) -> list[tuple[sp.Expr, sp.Expr]]:
        """``(left, right)`` pairs: ``ẋ_i = rate_i``, then ``∂E/∂w = …``."""
        m = self.model
        rows = [(dot(x), r) for x, r in zip(m.neurons, self.rates)]
        rows += [(sp.Derivative(sp.Symbol("E"), w), g)
                 for w, g in zip(m.learnable, self.energy_gradient)]
        return rows


def derive_energy(model: EnergyModel) -> EnergySystem:
    """Derive the phase dynamics and ``∂E/∂W`` of an energy model.

    Raises
    ------
    DeclarationError
        If ``model`` is not an :class:`EnergyModel`.
    """
    if not isinstance(model, EnergyModel):
        raise DeclarationError(f"derive_energy takes an EnergyModel, got "
                               f"{type(model).__name__}",
                               fix="declare it with declare.energy.hopfield(...) or "
                               "EnergyModel(...)")
    dE = Differentiator(model.neurons).gradient(model.energy)
    # the cost is small (the outputs only): its gradient is simplified for reading
    dC = {x: sp.simplify(g) for x, g in Differentiator(model.neurons).gradient(
        model.cost).items()}
    dw = Differentiator(model.learnable).gradient(model.energy)
    rates = tuple(-dE.get(x, sp.S.Zero) - model.beta * dC.get(x, sp.S.Zero)
                  for x in model.neurons)
    grad = tuple(dw.get(w, sp.S.Zero) for w in model.learnable)
    return EnergySystem(model=model, rates=rates, energy_gradient=grad)
