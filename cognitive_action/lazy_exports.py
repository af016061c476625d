"""Lazy package exports (PEP 562): a name → module table instead of eager imports.

A package ``__init__`` that imports its submodules eagerly makes ``import
cognitive_action.diffusion`` (the NumPy model) load SymPy and CasADi, because Python
runs every parent package's ``__init__`` first. With :func:`lazy_exports` a package
lists where each public name lives and imports that module on first access.

Examples
--------
>>> import sys, types
>>> pkg = types.ModuleType("demo_pkg")
>>> pkg.__getattr__, pkg.__dir__ = lazy_exports("demo_pkg", {"errors": "cognitive_action",
...                                              "dedent": "textwrap"})
>>> sys.modules["demo_pkg"] = pkg
>>> pkg.dedent("  a")
'a'
>>> "dedent" in dir(pkg), pkg.errors.__name__
(True, 'cognitive_action.errors')
>>> pkg.nothing
Traceback (most recent call last):
...
AttributeError: module 'demo_pkg' has no attribute 'nothing'
>>> del sys.modules["demo_pkg"]
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` serving ``exports`` lazily.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        ``{public name: absolute module name}``; the name is looked up as an attribute
        of that module (a submodule of the same name is imported if it is not one).

    Returns
    -------
    tuple
        ``(__getattr__, __dir__)`` to assign in the package namespace; each value is
        cached in the package after its first access.
    """
    table = dict(exports)

    def get(name: str) -> object:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(target)
        try:
            value = getattr(module, name)
        except AttributeError:
            value = importlib.import_module(f"{target}.{name}")
        setattr(sys.modules[package], name, value)
        return value

    def listing() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return get, listing
