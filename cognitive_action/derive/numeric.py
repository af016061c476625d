"""Numbers from derived expressions at a point given by name.

>>> import sympy as sp
>>> x = sp.Symbol("x", real=True)
>>> to_float(2 * x + 1, {"x": 0.5})
2.0
>>> to_float(x + sp.Symbol("y"), {"x": 1.0})
Traceback (most recent call last):
...
cognitive_action.errors.DeclarationError: no value given for y. Fix: pass a number for \
every coordinate, velocity, parameter and signal (by name or symbol)
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp

from cognitive_action.errors import DeclarationError

__all__ = ["to_float", "by_name"]


def by_name(values: Mapping[sp.Symbol | str, float]) -> dict[str, float]:
    """``{name: float}`` from values keyed by symbol or by name."""
    return {str(k): float(v) for k, v in values.items()}


def to_float(expr: sp.Expr, values: Mapping[str, float]) -> float:
    """Evaluate ``expr`` with its symbols replaced by ``values[name]``.

    Symbols are matched by name, so that values need not carry the symbols'
    assumptions (``m_x`` is positive, coordinates are real).

    Raises
    ------
    DeclarationError
        Naming the symbols that have no value.
    """
    sub = {s: values[s.name] for s in expr.free_symbols if s.name in values}
    v = expr.xreplace(sub)
    try:
        return float(v)
    except TypeError:
        missing = ", ".join(sorted(map(str, v.free_symbols)))
        raise DeclarationError(
            f"no value given for {missing}",
            fix="pass a number for every coordinate, velocity, parameter and signal "
            "(by name or symbol)") from None
