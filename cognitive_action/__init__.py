"""cognitive_action: learning laws as variational problems.

Declare an action functional and its constraints, derive the constrained
Euler-Lagrange and Lagrange-multiplier equations with SymPy, compile them with
CasADi, and verify the theoretical limits of Betti & Gori, "Backprop Diffusion is
Biologically Plausible" (2020).

>>> import cognitive_action as ca
>>> system = ca.euler_lagrange(ca.xor().problem())
>>> len(system.coordinates), len(system.multipliers)
(11, 5)
"""

from cognitive_action import errors
from cognitive_action.declare import (
    Action,
    Activation,
    Constraint,
    Network,
    Problem,
    chain,
    coordinates,
    dot,
    layered,
    parameters,
    signals,
    t,
    xor,
)
from cognitive_action.derive import (
    check_initial_conditions,
    complete_initial_conditions,
    constraint_rank,
    derive_network,
    euler_lagrange,
    latex,
    multiplier_equation,
)

__version__ = "0.1.0"
__all__ = ["Action", "Activation", "Constraint", "Network", "Problem", "__version__", "chain",
           "check_initial_conditions", "complete_initial_conditions", "constraint_rank",
           "coordinates", "derive_network", "dot", "errors", "euler_lagrange", "latex",
           "layered", "multiplier_equation", "parameters", "signals", "t", "xor"]
