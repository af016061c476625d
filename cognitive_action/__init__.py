"""cognitive_action: learning laws as variational problems.

Declare an action functional and its constraints, derive the constrained
Euler-Lagrange and Lagrange-multiplier equations with SymPy, compile them with
CasADi, and verify the theoretical limits of Betti & Gori, "Backprop Diffusion is
Biologically Plausible" (2020).

The public names are imported on first use (PEP 562), so that ``import
cognitive_action.diffusion`` (the NumPy model of Section 2) loads neither SymPy nor
CasADi.

>>> import cognitive_action as ca
>>> system = ca.euler_lagrange(ca.xor().problem())
>>> len(system.coordinates), len(system.multipliers)
(11, 5)
"""

import sys as _sys
from typing import TYPE_CHECKING

if _sys.argv and _sys.argv[0].rsplit("/", 1)[-1] == "cognitive-action":  # the program
    from cognitive_action.interrupts import quiet_startup as _quiet_startup

    _quiet_startup()  # Ctrl-C while the command line loads: one line, exit 130

from cognitive_action.lazy_exports import lazy_exports  # noqa: E402

if TYPE_CHECKING:
    from cognitive_action import errors
    from cognitive_action.declare import (
        Action,
        Activation,
        Constraint,
        EnergyModel,
        Network,
        Problem,
        chain,
        coordinates,
        dot,
        hopfield,
        layered,
        parameters,
        register_activation,
        signals,
        t,
        xor,
    )
    from cognitive_action.derive import (
        complete_initial_conditions,
        constraint_rank,
        derive_energy,
        derive_network,
        euler_lagrange,
        latex,
        multiplier_equation,
        validate_initial_conditions,
    )

__version__ = "0.1.0"
__all__ = ["Action", "Activation", "Constraint", "Network", "Problem", "__version__", "chain",
           "complete_initial_conditions", "constraint_rank", "coordinates", "derive_network",
           "dot", "errors", "euler_lagrange", "latex", "layered", "multiplier_equation",
           "parameters", "register_activation", "signals", "t", "validate_initial_conditions",
           "xor"]

__all__ += ["EnergyModel", "derive_energy", "hopfield"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "errors": "cognitive_action",
    **dict.fromkeys(["Action", "Activation", "Constraint", "Network", "Problem", "chain",
                     "coordinates", "dot", "layered", "parameters", "register_activation",
                     "signals", "t", "xor"], "cognitive_action.declare"),
    **dict.fromkeys(["check_initial_conditions", "complete_initial_conditions",
                     "constraint_rank", "derive_network", "euler_lagrange", "latex",
                     "multiplier_equation", "validate_initial_conditions"],
                    "cognitive_action.derive"),
    **dict.fromkeys(["EnergyModel", "hopfield"], "cognitive_action.declare"),
    "derive_energy": "cognitive_action.derive",
})
