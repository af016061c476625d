"""Declare learning laws: coordinates, actions, constraints, networks (the "what")."""

from cognitive_action.declare.activations import Activation, activation
from cognitive_action.declare.network import Network, chain, layered, squared_error, xor
from cognitive_action.declare.problem import Action, Constraint, Problem
from cognitive_action.declare.symbols import coordinates, dot, parameters, signals, t

__all__ = ["Action", "Activation", "Constraint", "Network", "Problem", "activation", "chain",
           "coordinates", "dot", "layered", "parameters", "signals", "squared_error", "t",
           "xor"]
