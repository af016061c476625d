"""Consistent initial conditions: eq. (11) and its general form.

At ``t = 0`` the constraints must hold, ``G(0, q(0)) = 0``, and so must their first
time derivative, ``G_τ + G_q q̇(0) = 0`` (design notes: the paper's (11), with
``q̇(0) = 0`` and ``G_τ = 0``, is sufficient, not necessary). Non-holonomic constraints
``N(0, q, q̇) = 0`` restrict the velocities. :func:`complete_initial_conditions`
solves for the free coordinates (for a network: the outputs ``x(0)`` given ``W(0)`` and
``e(0)``, a forward pass) by Newton's method and for the free velocities (``ẋ(0)``
given ``Ẇ(0)`` and ``ė(0)``) by a linear solve; :func:`validate_initial_conditions`
rejects inconsistent ones with the violated constraints named.

Examples
--------
>>> import sympy as sp
>>> from cognitive_action.declare.network import chain
>>> from cognitive_action.derive.euler_lagrange import euler_lagrange
>>> el = euler_lagrange(chain(2, "identity").problem(targets={2: 0}))
>>> ic = complete_initial_conditions(el, {"w2_1": 3.0, "w2_1_dot": 1.0, "e1": 2.0,
...                                       "e1_dot": 0.5})
>>> round(ic["x2"], 12), round(ic["x2_dot"], 12)
(6.0, 3.5)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import sympy as sp

from cognitive_action.declare.symbols import dot, t
from cognitive_action.derive.euler_lagrange import EulerLagrange
from cognitive_action.derive.numeric import by_name, to_float
from cognitive_action.errors import DeclarationError, InconsistentInitialConditionsError

__all__ = ["complete_initial_conditions", "validate_initial_conditions", "constraint_residuals",
           "check_initial_conditions"]


def constraint_residuals(system: EulerLagrange, values: Mapping[str | sp.Symbol, float]
                         ) -> dict[str, tuple[float, float]]:
    """``(G, dG/dt)`` of every constraint at a point (``(N, 0)`` for non-holonomic ones).

    Parameters
    ----------
    system
        The derived system.
    values
        Numbers for coordinates, velocities, parameters, signal jets and ``t``.
    """
    vals = by_name(values)
    vals.setdefault("t", 0.0)
    D = system.time_derivative()
    out = {}
    for c in system.problem.constraints:
        g = to_float(c.expr, vals)
        gd = to_float(D(c.expr), vals) if c.kind == "holonomic" else 0.0
        out[c.name] = (g, gd)
    return out


def validate_initial_conditions(system: EulerLagrange,
                                values: Mapping[str | sp.Symbol, float], *,
                                tol: float = 1e-9) -> None:
    """Raise if ``G(0) = 0`` or ``dG/dt(0) = 0`` fails (the general form of eq. 11).

    Raises
    ------
    InconsistentInitialConditionsError
        Naming each violated constraint with its residual.
    """
    bad = {}
    for name, (g, gd) in constraint_residuals(system, values).items():
        if abs(g) > tol:
            bad[name] = g
        if abs(gd) > tol:
            bad[f"d{name}/dt"] = gd
    if bad:
        listing = ", ".join(f"{k} = {v:.3g}" for k, v in bad.items())
        raise InconsistentInitialConditionsError(
            f"initial conditions violate {listing}",
            fix="complete them with complete_initial_conditions(system, given), which solves "
            "for the free coordinates and velocities", violated=bad)


def check_initial_conditions(system: EulerLagrange, values: Mapping[str | sp.Symbol, float],
                             *, tol: float = 1e-9) -> None:
    """Deprecated name of :func:`validate_initial_conditions` (it raises; the verifier's
    :func:`~cognitive_action.verify.checks.check_initial_conditions` returns a ``Check``)."""
    warnings.warn("derive.check_initial_conditions is now validate_initial_conditions",
                  DeprecationWarning, stacklevel=2)
    validate_initial_conditions(system, values, tol=tol)


def complete_initial_conditions(system: EulerLagrange,
                                given: Mapping[str | sp.Symbol, float], *,
                                free: Sequence[sp.Symbol] | None = None, t0: float = 0.0,
                                tol: float = 1e-12, max_iter: int = 50) -> dict[str, float]:
    """Solve the constraints for the free coordinates and velocities at ``t0``.

    Parameters
    ----------
    system
        The derived system.
    given
        Numbers for parameters, signal jets (``e1``, ``e1_dot``, …), the coordinates
        and velocities that are not free (missing velocities default to 0).
    free
        The coordinates to solve for (their velocities are solved for too). Default:
        the coordinates not in ``given``.
    t0
        Initial time.
    tol, max_iter
        Newton tolerance on ``|G|`` and iteration limit.

    Returns
    -------
    dict
        ``given`` completed with the free coordinates and velocities, and ``t``.

    Raises
    ------
    InconsistentInitialConditionsError
        If Newton's method does not reach ``|G| ≤ tol`` (no consistent completion).
    """
    vals = by_name(given)
    vals["t"] = t0
    coords = system.coordinates
    if free is None:
        free = [q for q in coords if str(q) not in vals]
    free = list(free)
    for q in coords:
        if q not in free:
            if str(q) not in vals:
                raise DeclarationError(f"no value for the coordinate {q}",
                                       fix="give it, or list it among the free coordinates")
            vals.setdefault(str(dot(q)), 0.0)
    hol = system.problem.holonomic
    nonhol = system.problem.nonholonomic_constraints
    J = system.jacobian
    # Position level: Newton on the holonomic constraints.
    for q in free:
        vals.setdefault(str(q), 0.0)
    G = [c.expr for c in hol]
    pos = _Newton(G, J.rows[:len(hol)], free, vals)
    pos.solve(tol, max_iter)
    r = pos.residual()
    if r.size and np.max(np.abs(r)) > max(tol, 1e-9):
        bad = {c.name: float(v) for c, v in zip(hol, r) if abs(v) > max(tol, 1e-9)}
        raise InconsistentInitialConditionsError(
            f"no coordinates satisfy {', '.join(bad)} given the others",
            fix="change the given values or free more coordinates", violated=bad)
    # Velocity level: dG/dt = 0 (holonomic) and N = 0 (non-holonomic); their Jacobians
    # with respect to q̇ are G_q and N_q̇, kept sparse.
    D = system.time_derivative()
    V = [D(e) for e in G] + [c.expr for c in nonhol]
    vfree = [dot(q) for q in free]
    for v in vfree:
        vals[str(v)] = 0.0
    to_v = {q: dot(q) for q in system.coordinates}
    rows = [{to_v[q]: e for q, e in r.items()} for r in J.rows[:len(hol)]]
    rows += system.velocity_jacobian.rows
    _Newton(V, rows, vfree, vals).solve(tol, max_iter)
    validate_initial_conditions(system, vals, tol=max(tol, 1e-9))
    return vals


class _Newton:
    """Newton's method on ``F(z) = 0`` for the free unknowns ``z``, with the sparse
    Jacobian rows given symbolically (evaluated numerically at each step)."""

    def __init__(self, F: list[sp.Expr], rows: list[dict[sp.Symbol, sp.Expr]],
                 free: list[sp.Symbol], vals: dict[str, float]) -> None:
        self.free, self.vals = free, vals
        col = {q: i for i, q in enumerate(free)}
        self.entries = [(i, col[q], e) for i, r in enumerate(rows) for q, e in r.items()
                        if q in col]
        self.shape = (len(F), len(free))
        exprs = F + [e for _, _, e in self.entries]
        self.syms = sorted(set().union(*(e.free_symbols for e in exprs), {t}), key=str)
        missing = [str(s) for s in self.syms if str(s) not in vals]
        if missing:
            raise DeclarationError(f"no value given for {', '.join(missing)}",
                                   fix="give every parameter and signal a number, and the "
                                   "signals' velocities too (e.g. e1_dot)")
        self.fF = sp.lambdify(self.syms, F, "numpy")
        self.fJ = sp.lambdify(self.syms, [e for _, _, e in self.entries], "numpy")

    def _point(self) -> list[float]:
        return [self.vals[str(s)] for s in self.syms]

    def residual(self) -> np.ndarray:
        if not self.shape[0]:
            return np.zeros(0)
        return np.asarray(self.fF(*self._point()), dtype=float).reshape(-1)

    def jacobian(self) -> np.ndarray:
        A = np.zeros(self.shape)
        if self.entries:
            v = np.broadcast_to(np.asarray(self.fJ(*self._point()), dtype=float),
                                (len(self.entries),))
            for (i, j, _), x in zip(self.entries, v):
                A[i, j] = x
        return A

    def solve(self, tol: float, max_iter: int) -> None:
        if not self.shape[0] or not self.shape[1]:
            return
        for _ in range(max_iter):
            r = self.residual()
            if np.max(np.abs(r)) <= tol:
                return
            step = np.linalg.lstsq(self.jacobian(), r, rcond=None)[0]
            for q, s in zip(self.free, step):
                self.vals[str(q)] -= float(s)
