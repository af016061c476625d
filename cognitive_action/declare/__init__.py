"""Declare learning laws: coordinates, actions, constraints, networks (the "what").

Names are imported on first use (PEP 562): importing a NumPy-only submodule such as
:mod:`cognitive_action.declare.activations` does not load SymPy.
"""

from typing import TYPE_CHECKING

from cognitive_action.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from cognitive_action.declare.activations import (
        Activation,
        NumericActivation,
        activation,
        register_activation,
    )
    from cognitive_action.declare.energy import EnergyModel, hopfield
    from cognitive_action.declare.network import (
        Network,
        chain,
        layered,
        softmax_cross_entropy,
        squared_error,
        xor,
    )
    from cognitive_action.declare.problem import Action, Constraint, Problem
    from cognitive_action.declare.roles import Role, RoleKind, RoleMap
    from cognitive_action.declare.symbols import coordinates, dot, parameters, signals, t

__all__ = ["Action", "Activation", "Constraint", "Network", "NumericActivation", "Problem",
           "Role", "RoleKind", "RoleMap", "activation", "chain", "coordinates", "dot",
           "layered", "parameters", "register_activation", "signals", "softmax_cross_entropy",
           "squared_error", "t", "xor"]
__all__ += ["EnergyModel", "hopfield"]

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(["Activation", "NumericActivation", "activation", "register_activation"],
                    "cognitive_action.declare.activations"),
    **dict.fromkeys(["Network", "chain", "layered", "softmax_cross_entropy", "squared_error",
                     "xor"],
                    "cognitive_action.declare.network"),
    **dict.fromkeys(["Action", "Constraint", "Problem"], "cognitive_action.declare.problem"),
    **dict.fromkeys(["EnergyModel", "hopfield"], "cognitive_action.declare.energy"),
    **dict.fromkeys(["Role", "RoleKind", "RoleMap"], "cognitive_action.declare.roles"),
    **dict.fromkeys(["coordinates", "dot", "parameters", "signals", "t"],
                    "cognitive_action.declare.symbols"),
})
