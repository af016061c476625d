"""LaTeX of derived objects, in the paper's dotted notation.

Jet symbols print as time derivatives (``x_ddot`` as ``\\ddot{x}``), multipliers as
``λ`` or ``δ``. Large systems are truncated to ``max_rows`` equations with a note.

Examples
--------
>>> import sympy as sp
>>> from cognitive_action.declare import symbols as S
>>> from cognitive_action.declare.problem import Action, Problem
>>> from cognitive_action.derive.euler_lagrange import euler_lagrange
>>> x, = S.coordinates("x"); m, k = S.parameters("m k")
>>> el = euler_lagrange(Problem(Action([x], masses=m, lagrangian=-k * x**2 / 2),
...                              parameters=[m, k]))
>>> print(latex(el))
\\begin{aligned}
- k x - m \\ddot{x} &= 0
\\end{aligned}
"""

from __future__ import annotations

import re

import sympy as sp

from cognitive_action.declare.symbols import base, order
from cognitive_action.derive.energy import EnergySystem
from cognitive_action.derive.euler_lagrange import EulerLagrange
from cognitive_action.derive.multipliers import MultiplierEquation

__all__ = ["latex", "row_count", "symbol_names"]

_ACCENT = {1: r"\dot{%s}", 2: r"\ddot{%s}", 3: r"\dddot{%s}", 4: r"\ddddot{%s}"}
_GREEK = {"lambda": r"\lambda", "delta": r"\delta", "mu": r"\mu", "nu": r"\nu",
          "theta": r"\theta", "xi": r"\xi", "gamma": r"\gamma",
          "beta": r"\beta"}


def _name(s: str) -> str:
    m = re.match(r"^([A-Za-z]+)_?(.*)$", s)
    if not m:
        return s
    head, tail = m.groups()
    head = _GREEK.get(head, head)
    tail = tail.replace("_", ",")
    return f"{head}_{{{tail}}}" if tail else head


def symbol_names(expr: sp.Basic) -> dict[sp.Symbol, str]:
    """LaTeX names for the jet and multiplier symbols of an expression."""
    out = {}
    for s in expr.free_symbols:
        k = order(s)
        name = _name(base(s).name)
        out[s] = _ACCENT[k] % name if k else name
    return out


def _tex(e: sp.Expr) -> str:
    return sp.latex(e, symbol_names=symbol_names(e))


def latex(obj: EulerLagrange | MultiplierEquation | EnergySystem | sp.Expr,
          max_rows: int | None = 20) -> str:
    """LaTeX of an Euler-Lagrange system (eq. 8-9), a multiplier equation (eq. 10), the
    phases of an energy model (``ẋ = -∂(E + βC)/∂x``, then ``∂E/∂w``), or an
    expression.

    Parameters
    ----------
    obj
        What to print.
    max_rows
        Rows shown before ``\\text{… N more}``; ``None``: every row (exports).

    Returns
    -------
    str
        An ``aligned`` environment, one row per equation: the residuals of eq. (8)-(9)
        then the constraints, the rows of eq. (10), or the phase rates then ``∂E/∂w``.
    """
    if isinstance(obj, EnergySystem):
        m = obj.model
        rows = [f"{_tex(sp.Symbol(x.name + '_dot'))} &= {_tex(r)}"
                for x, r in zip(m.neurons, obj.rates)]
        rows += [rf"\frac{{\partial E}}{{\partial {_tex(w)}}} &= {_tex(g)}"
                 for w, g in zip(m.learnable, obj.energy_gradient)]
    elif isinstance(obj, EulerLagrange):
        rows = [f"{_tex(r)} &= 0" for r in obj.residuals]
        rows += [f"{_tex(c.expr)} &= 0" for c in obj.problem.constraints]
    elif isinstance(obj, MultiplierEquation):
        A, b = obj.A(), obj.b()
        lam = sp.Matrix(obj.multipliers)
        rows = [f"{_tex((A * lam)[i])} &= {_tex(b[i])}" for i in range(len(lam))]
    else:
        return _tex(obj)
    extra = 0 if max_rows is None else len(rows) - max_rows
    if extra > 0:
        rows = rows[:max_rows] + [rf"\text{{… {extra} more}}"]
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def row_count(obj: EulerLagrange | MultiplierEquation | EnergySystem) -> int:
    """The number of rows :func:`latex` prints for ``obj`` in full."""
    if isinstance(obj, EnergySystem):
        return len(obj.rates) + len(obj.energy_gradient)
    if isinstance(obj, EulerLagrange):
        return len(obj.residuals) + len(obj.problem.constraints)
    return len(obj.multipliers)


def _repr_latex_(self: object) -> str:
    return f"${latex(self)}$"


EulerLagrange._repr_latex_ = _repr_latex_  # notebooks render derived objects as LaTeX
MultiplierEquation._repr_latex_ = _repr_latex_
EnergySystem._repr_latex_ = _repr_latex_
