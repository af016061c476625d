"""The registry of compilers, keyed by the form of a derived system.

Every derived system names its form (:mod:`cognitive_action.derive.contract`):
``"euler_lagrange"``, ``"network"``, ``"speed_network"``, ``"reduced"``, ``"energy"``. Each compiler
registers itself here for one form with :func:`register_route`, and
:func:`~cognitive_action.compile.system.compile_system` looks the compiler up by
``system.form``: adding a form (a new learning law's template, say) means registering
one function, not editing a dispatch chain.

Examples
--------
>>> load_builtin_routes()
>>> sorted(ROUTES)
['energy', 'euler_lagrange', 'network', 'reduced', 'speed_network']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cognitive_action.errors import CompileError

if TYPE_CHECKING:
    from cognitive_action.compile.system import CompiledSystem
    from cognitive_action.derive.contract import DerivedSystem

__all__ = ["BuildOptions", "ROUTES", "load_builtin_routes", "register_route", "route_for"]

#: The modules whose import registers the built-in compilers.
BUILTIN_ROUTE_MODULES = ("cognitive_action.compile.system",
                         "cognitive_action.compile.network_speed",
                         "cognitive_action.compile.reduced",
                         "cognitive_action.compile.energy")


@dataclass(frozen=True)
class BuildOptions:
    """What every compiler takes besides the system.

    Attributes
    ----------
    signals
        Signals given as SymPy expressions of ``t`` (or numbers), by name.
    linear_solver
        CasADi ``Linsol`` plugin of the linear-solve node (None: the route's default).
    name
        Name for reports (None: the problem's).
    blas
        Let dense MX products call CasADi's BLAS plugin (network route).
    """

    signals: Mapping[str, Any] | None = None
    linear_solver: str | None = None
    name: str | None = None
    blas: bool = True


Builder = Callable[["DerivedSystem", BuildOptions], "CompiledSystem"]

#: ``{form: builder}``.
ROUTES: dict[str, Builder] = {}


def register_route(form: str) -> Callable[[Builder], Builder]:
    """Register the decorated function as the compiler of derived systems of ``form``."""
    def deco(fn: Builder) -> Builder:
        ROUTES[form] = fn
        return fn
    return deco


def load_builtin_routes() -> None:
    """Import the modules that register the built-in compilers (done on first use)."""
    for module in BUILTIN_ROUTE_MODULES:
        importlib.import_module(module)


def route_for(system: object) -> Builder:
    """The compiler registered for ``system.form``.

    Raises
    ------
    CompileError
        For an object that is not a derived system, or a form nobody registered.
    """
    form = getattr(system, "form", None)
    if form not in ROUTES:
        load_builtin_routes()
    if form not in ROUTES:
        raise CompileError(f"cannot compile a {type(system).__name__}",
                           fix="pass a Problem or a derived system (euler_lagrange, "
                           "derive_network, derive.limits.reduce); forms with a compiler: "
                           + ", ".join(sorted(ROUTES)))
    return ROUTES[form]
