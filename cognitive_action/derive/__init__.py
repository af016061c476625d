"""Derive with SymPy: Euler-Lagrange (8)-(9), multipliers (10), initial conditions (11),
Proposition 1, per-neuron templates for large networks, and the limits of Section 3
(eq. 12-17, 20 with c → ∞). Every derived system keeps one contract
(:class:`~cognitive_action.derive.contract.DerivedSystem`)."""

from cognitive_action.derive.contract import DerivedSystem
from cognitive_action.derive.energy import EnergySystem, derive_energy
from cognitive_action.derive.euler_lagrange import EulerLagrange, euler_lagrange
from cognitive_action.derive.forms import derive_system
from cognitive_action.derive.initial import (
    check_initial_conditions as check_initial_conditions,  # deprecated name
)
from cognitive_action.derive.initial import (
    complete_initial_conditions,
    constraint_residuals,
    validate_initial_conditions,
)
from cognitive_action.derive.latex import latex
from cognitive_action.derive.limits import (
    Limit,
    ReducedSystem,
    backprop,
    gradient_flow,
    quasi_static,
    reduce,
    staged,
)
from cognitive_action.derive.multipliers import MultiplierEquation, multiplier_equation
from cognitive_action.derive.network import NetworkState, NetworkSystem, derive_network
from cognitive_action.derive.rank import RankReport, constraint_rank

__all__ = ["DerivedSystem", "EulerLagrange", "Limit", "MultiplierEquation", "NetworkState",
           "NetworkSystem", "RankReport", "ReducedSystem", "backprop",
           "complete_initial_conditions", "constraint_rank", "constraint_residuals",
           "derive_network", "derive_system", "euler_lagrange", "gradient_flow", "latex",
           "multiplier_equation", "quasi_static", "reduce", "staged",
           "validate_initial_conditions"]
__all__ += ["EnergySystem", "derive_energy"]
