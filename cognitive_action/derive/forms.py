"""Choose the form a problem is derived in (the :mod:`~cognitive_action.derive.contract`).

A network problem is derived from per-neuron templates (eq. 4 or 18-19), which scale to
research sizes; any other problem, or a network problem the templates do not fit (a
changed constraint, a loss of the weights, per-coordinate masses), by the generic
Euler-Lagrange derivation (eq. 8-10).

Examples
--------
>>> import cognitive_action as ca
>>> derive_system(ca.xor().problem()).form
'network'
>>> derive_system(ca.xor().problem(), form="generic").form
'euler_lagrange'
"""

from __future__ import annotations

from cognitive_action.declare.energy import EnergyModel
from cognitive_action.declare.problem import Problem
from cognitive_action.derive.contract import DerivedSystem
from cognitive_action.derive.energy import derive_energy
from cognitive_action.derive.euler_lagrange import EulerLagrange, euler_lagrange
from cognitive_action.derive.network import derive_network
from cognitive_action.derive.network_speed import derive_speed_network
from cognitive_action.errors import DerivationError

__all__ = ["FORMS", "derive_system", "derived", "as_template", "as_generic"]

#: ``"auto"``: templates when they fit, else generic; ``"generic"``: eq. (8)-(10) for
#: every symbol; ``"template"``: per-neuron templates or a DerivationError.
FORMS = ("auto", "generic", "template")


def as_template(problem: Problem) -> DerivedSystem:
    """The template form of a network problem: eq. (4) neurons → ``NetworkSystem``,
    eq. (18)-(19) neurons → ``SpeedNetworkSystem``.

    Raises
    ------
    DerivationError
        Not a network problem, or one the templates do not fit (the message says why).
    """
    net = problem.network
    if net is not None and net.speed is not None:
        return derive_speed_network(problem)
    return derive_network(problem)


def as_generic(system: DerivedSystem) -> DerivedSystem:
    """The generic (mass-matrix) form of the same problem; reduced systems stay as they
    are (they have no other form)."""
    if system.form in ("euler_lagrange", "reduced"):
        return system
    if system.form == "network":
        return system.euler_lagrange()
    return euler_lagrange(system.problem)


def derive_system(problem: Problem, form: str = "auto") -> DerivedSystem:
    """Derive ``problem`` in the form asked for (one of :data:`FORMS`).

    Parameters
    ----------
    problem
        The declared problem.
    form
        ``"auto"`` uses the templates for network problems they fit and falls back to
        the generic derivation; ``"template"`` raises when they do not fit.

    Raises
    ------
    DerivationError
        Under ``form="template"``, a problem the templates do not fit.
    ValueError
        An unknown form.
    """
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}: use one of {FORMS}")
    if form == "generic":
        return euler_lagrange(problem)
    if form == "template" or problem.network is not None:
        try:
            return as_template(problem)
        except DerivationError:
            if form == "template":
                raise
    return euler_lagrange(problem)


def derived(system: Problem | DerivedSystem, form: str = "auto") -> DerivedSystem:
    """``system`` itself when already derived (re-derived from its problem when another
    form is asked for), else :func:`derive_system`."""
    if isinstance(system, Problem):
        return derive_system(system, form)
    if isinstance(system, EnergyModel):  # an energy model has one form: its phases
        return derive_energy(system)
    if form == "generic":
        return as_generic(system)
    if form == "template" and isinstance(system, EulerLagrange):
        return as_template(system.problem)
    return system
