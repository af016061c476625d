"""Derive with SymPy: Euler-Lagrange (8)-(9), multipliers (10), initial conditions (11),
Proposition 1, per-neuron templates for large networks."""

from cognitive_action.derive.euler_lagrange import EulerLagrange, euler_lagrange
from cognitive_action.derive.initial import (
    check_initial_conditions as check_initial_conditions,  # deprecated name
)
from cognitive_action.derive.initial import (
    complete_initial_conditions,
    constraint_residuals,
    validate_initial_conditions,
)
from cognitive_action.derive.latex import latex
from cognitive_action.derive.multipliers import MultiplierEquation, multiplier_equation
from cognitive_action.derive.network import NetworkState, NetworkSystem, derive_network
from cognitive_action.derive.rank import RankReport, constraint_rank

__all__ = ["EulerLagrange", "MultiplierEquation", "NetworkState", "NetworkSystem", "RankReport",
           "complete_initial_conditions", "constraint_rank", "constraint_residuals",
           "derive_network", "euler_lagrange", "latex", "multiplier_equation",
           "validate_initial_conditions"]
