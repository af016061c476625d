"""Compile derived systems with CasADi: translation, assembly, simulation.

- :mod:`~cognitive_action.compile.translate`: a memoized SymPy → CasADi tree walker with
  a whitelist of functions (:func:`to_casadi`).
- :mod:`~cognitive_action.compile.system`: :func:`compile_system` assembles ``ẏ = f(t, y, p)``
  from any derived system, by the compiler registered for its form
  (:mod:`~cognitive_action.compile.routes`): an ``EulerLagrange`` (scalar SX graph,
  unknowns by a linear-solve node), a ``NetworkSystem`` or ``SpeedNetworkSystem`` (MX
  matrix operations from per-neuron templates), a ``ReducedSystem`` (a limit).
- :mod:`~cognitive_action.compile.options`: :class:`SolverOptions`, the validated solver
  options that :func:`simulate`, :func:`simulate_batch` and :func:`adjoint_sweep` share.
- :mod:`~cognitive_action.compile.simulate`: :func:`simulate` over CasADi's integrators
  (cvodes, idas, erk, rk, collocation) with drift monitoring, Baumgarte stabilization or
  projection, and typed errors.
- :mod:`~cognitive_action.compile.codegen`: :func:`codegen_system` runs a compiled system
  from generated C, built with the system's C compiler and cached on disk.
- :mod:`~cognitive_action.compile.batch`: :func:`simulate_batch` runs one system over
  named grids of parameters and initial states through CasADi's ``map`` on threads.
"""

from cognitive_action.compile.adjoint import adjoint_sweep
from cognitive_action.compile.batch import BatchSimulation, NamedArray, simulate_batch
from cognitive_action.compile.codegen import codegen_system
from cognitive_action.compile.energy import CompiledEnergy, compile_energy, equilibrium_update
from cognitive_action.compile.network_speed import compile_speed_network
from cognitive_action.compile.options import SolverOptions
from cognitive_action.compile.reduced import compile_reduced
from cognitive_action.compile.routes import ROUTES, BuildOptions, register_route
from cognitive_action.compile.simulate import METHODS, STABLE_VARIANTS, Simulation, simulate
from cognitive_action.compile.system import CompiledSystem, compile_system
from cognitive_action.compile.translate import Translator, to_casadi
from cognitive_action.compile.variants import stable_variant

__all__ = ["METHODS", "ROUTES", "STABLE_VARIANTS", "BatchSimulation", "BuildOptions",
           "CompiledSystem", "NamedArray", "Simulation", "SolverOptions", "Translator",
           "adjoint_sweep", "codegen_system", "compile_reduced", "compile_speed_network",
           "compile_system", "register_route",
           "simulate", "simulate_batch", "stable_variant", "to_casadi"]
__all__ += ["CompiledEnergy", "compile_energy", "equilibrium_update"]
