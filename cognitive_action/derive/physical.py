"""Physical checks of a declared problem at a point: positive masses, a positive definite
mass matrix, finite numbers.

The kinetic energy ``½ q̇ᵀ M q̇`` of the action (eq. 5-6; diagonal ``M`` for the masses
``m_x``, ``m_W`` of a network) must be positive definite for eq. (8)-(10) to determine
the accelerations: ``J M⁻¹ Jᵀ`` of eq. (10) needs ``M⁻¹``. The declaration refuses a
negative *literal* mass; a mass given as a parameter is only a number once its value is
known (a problem file's ``parameters``), and a mass matrix may depend on the coordinates
(``M(q)``), so :func:`check_masses` evaluates them numerically at the initial state,
before anything is integrated. A mass that is the literal ``0`` declares a coordinate
without kinetic term and is left to the solvability of the whole system.

Examples
--------
>>> from cognitive_action.declare import symbols as S
>>> from cognitive_action.declare.problem import Action, Problem
>>> q, = S.coordinates("q"); m, = S.parameters("m")
>>> p = Problem(Action([q], masses=m), parameters=[m])
>>> check_masses(p, {"m": 2.0}).smallest
2.0
>>> check_masses(p, {"m": -1.0})
Traceback (most recent call last):
...
cognitive_action.errors.PhysicalError: the mass of q is m = -1, not positive (the \
kinetic energy must be positive definite, eq. 5-6). Fix: give m a positive value
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from cognitive_action.declare.problem import Problem
from cognitive_action.declare.symbols import t
from cognitive_action.errors import PhysicalError

__all__ = ["MassCheck", "check_finite_values", "check_masses", "check_solvable"]

#: Relative size of the smallest eigenvalue of a mass matrix, against its largest,
#: below which it counts as singular (not numerically positive definite).
SINGULAR_RTOL = 1e-12


@dataclass(frozen=True)
class MassCheck:
    """What :func:`check_masses` evaluated.

    Attributes
    ----------
    smallest
        The smallest mass or mass-matrix eigenvalue evaluated (``None``: none could be).
    evaluated
        How many distinct mass expressions (and the mass matrix) were evaluated.
    unevaluated
        Symbols without a value that kept some mass from being evaluated.
    """

    smallest: float | None
    evaluated: int
    unevaluated: tuple[str, ...] = ()


def _value(expr: sp.Expr, values: Mapping[str, float]) -> float | None:
    sub = {s: sp.Float(values[s.name]) for s in expr.free_symbols if s.name in values}
    v = sp.sympify(expr).xreplace(sub)  # safe: a declared SymPy mass (or a number), never text
    if v.free_symbols:
        return None
    try:
        return float(v)
    except TypeError:  # complex
        return math.nan


def check_finite_values(values: Mapping[str, float], *, what: str = "value") -> None:
    """Refuse NaN and infinite numbers among ``values`` (by name).

    Raises
    ------
    PhysicalError
        Naming the first non-finite value.

    Examples
    --------
    >>> check_finite_values({"q1": float("nan")}, what="initial value")
    Traceback (most recent call last):
    ...
    cognitive_action.errors.PhysicalError: the initial value q1 = nan is not a finite \
number. Fix: give q1 a finite number
    """
    for k, v in values.items():
        try:
            ok = math.isfinite(float(v))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise PhysicalError(f"the {what} {k} = {v} is not a finite number",
                                fix=f"give {k} a finite number")


def _who(expr: sp.Expr) -> str:
    return f"{expr} = " if not expr.is_number else ""


def check_masses(problem: Problem, values: Mapping[str, float], *,
                 rtol: float = SINGULAR_RTOL) -> MassCheck:
    """Evaluate the masses (or the mass matrix) at a point and refuse non-physical ones.

    Parameters
    ----------
    problem
        The declared problem.
    values
        Numbers by name: parameters, and for a mass matrix ``M(q)`` the coordinates
        (``t`` defaults to 0). Masses whose symbols have no value are not evaluated
        (listed in :attr:`MassCheck.unevaluated`).
    rtol
        A mass matrix whose smallest eigenvalue is at most ``rtol`` times its largest
        is singular.

    Returns
    -------
    MassCheck

    Raises
    ------
    PhysicalError
        A mass that is not finite, negative, or zero (unless declared as the literal 0:
        no kinetic term), or a mass matrix that is not symmetric positive definite,
        naming the coordinates and the parameters involved.
    """
    vals = {str(k): float(v) for k, v in values.items()}
    vals.setdefault(str(t), 0.0)
    action = problem.action
    smallest: float | None = None
    missing: set[str] = set()
    evaluated = 0
    if action.mass_matrix is not None:
        M = action.mass_matrix
        entries = [_value(e, vals) for e in M]
        if any(e is None for e in entries):
            missing |= {str(s) for e in M for s in e.free_symbols if str(s) not in vals}
        else:
            A = np.array(entries, dtype=float).reshape(M.shape)
            evaluated += 1
            if not np.all(np.isfinite(A)):
                raise PhysicalError("the mass matrix has entries that are not finite "
                                    "numbers at the initial state",
                                    fix="check the parameters and the coordinates it "
                                    "depends on")
            if not np.allclose(A, A.T, rtol=1e-12, atol=0.0):
                raise PhysicalError("the mass matrix is not symmetric at the initial "
                                    "state", fix="declare a symmetric mass matrix")
            eig = np.linalg.eigvalsh(A) if A.size else np.zeros(0)
            scale = float(np.max(np.abs(eig), initial=0.0))
            low = float(eig.min()) if eig.size else math.inf
            coords = ", ".join(str(c) for c in problem.coordinates)
            if not low > rtol * scale or scale == 0.0:
                kind = "singular" if abs(low) <= rtol * scale else "indefinite"
                raise PhysicalError(
                    f"the mass matrix of ({coords}) is not positive definite at the "
                    f"initial state: it is {kind}, eigenvalues "
                    f"{', '.join(f'{e:.4g}' for e in eig[:6])} (the kinetic energy "
                    "½ q̇ᵀ M q̇ must be positive for every velocity, else eq. 8-10 do "
                    "not determine the accelerations)",
                    fix="give a symmetric positive definite mass matrix (e.g. "
                    "[[2, 1], [1, 2]]; check parameters in it)",
                    symbols=tuple(sorted({str(s) for e in M for s in e.free_symbols}
                                         & {str(p) for p in problem.parameters})))
            smallest = low
    by_expr: dict[sp.Expr, list[sp.Symbol]] = {}
    for c, m in action.masses.items():
        by_expr.setdefault(m, []).append(c)
    for m, coords in by_expr.items():
        if m.is_number and m == 0:  # declared without kinetic term
            continue
        v = _value(m, vals)
        if v is None:
            missing |= {str(s) for s in m.free_symbols if str(s) not in vals}
            continue
        evaluated += 1
        who = ", ".join(str(c) for c in coords[:4]) + (
            f" and {len(coords) - 4} more" if len(coords) > 4 else "")
        params = sorted(str(s) for s in m.free_symbols)
        fix = (f"give {', '.join(params)} a positive value" if params else
               "give a positive mass")
        if not math.isfinite(v):
            raise PhysicalError(f"the mass of {who} is {_who(m)}{v}, not a finite real "
                                "number", fix=fix, symbols=tuple(params))
        if v <= 0:
            zero = " (a coordinate without kinetic term is declared with the mass 0)" \
                if v == 0 else ""
            raise PhysicalError(
                f"the mass of {who} is {_who(m)}{v:g}, not positive (the kinetic "
                f"energy must be positive definite, eq. 5-6){zero}", fix=fix,
                symbols=tuple(params))
        smallest = v if smallest is None else min(smallest, v)
    return MassCheck(smallest, evaluated, tuple(sorted(missing)))


def check_solvable(system, values: Mapping[str, float], *, max_size: int = 400,
                   rtol: float = SINGULAR_RTOL) -> float | None:
    """Refuse a derived system whose linear system ``mass_matrix · unknowns = forcing``
    (the accelerations and multipliers, eq. 8-10) is singular at a point.

    Catches what positive masses alone do not: a coordinate declared without kinetic
    term that no constraint determines, a rank-deficient constraint Jacobian
    (Proposition 1) at this point.

    Parameters
    ----------
    system
        An :class:`~cognitive_action.derive.euler_lagrange.EulerLagrange` system.
    values
        Numbers by name for the states and the parameters (``t`` defaults to 0).
    max_size
        Larger systems are not checked (returns ``None``); networks are covered by
        their masses and the rank check.

    Returns
    -------
    float or None
        The smallest singular value relative to the largest; ``None`` when not
        evaluated (too large, or a symbol without a value).

    Raises
    ------
    PhysicalError
        The matrix is singular or not finite there.
    """
    rows = system.mass_matrix
    n_r, n_c = rows.shape
    if n_r == 0 or max(n_r, n_c) > max_size:
        return None
    vals = {str(k): float(v) for k, v in values.items()}
    vals.setdefault(str(t), 0.0)
    A = np.zeros((n_r, n_c))
    for i, r in enumerate(rows.rows):
        for c, e in r.items():
            v = _value(e, vals)
            if v is None:
                return None
            A[i, rows.column_index(c)] = v
    if not np.all(np.isfinite(A)):
        raise PhysicalError("the equations of motion are not finite at the initial "
                            "state (a mass or a parameter is infinite or NaN there)",
                            fix="check the parameters and the initial values")
    s = np.linalg.svd(A, compute_uv=False)
    ratio = float(s.min() / s.max()) if s.size and s.max() > 0 else 0.0
    if n_r != n_c or ratio <= rtol:
        raise PhysicalError(
            f"the accelerations and multipliers are not determined at the initial state: "
            f"the {n_r}x{n_c} system mass_matrix · unknowns = forcing of eq. (8)-(10) is "
            f"singular (smallest/largest singular value {ratio:.3g}): a coordinate without "
            "kinetic term that no constraint fixes, or dependent constraints there "
            "(Proposition 1)",
            fix="give every coordinate a positive mass, or remove the dependent constraint")
    return ratio
