"""Proposition 1: rank of the constraint Jacobian, symbolically or by SVD.

Proposition 1 of the paper: for a feedforward network the Jacobian ``G_ξ`` of the
constraints (4) with respect to the neuron outputs is upper triangular with unit
diagonal (in the paper's ``T = G_ξᵀ``), hence of full rank, so the multiplier
equation (10) has a unique solution. :func:`constraint_rank` checks any constraint
set: symbolically (generic rank, for small systems) or numerically (SVD at sample
points, with a relative tolerance), and names the dependent constraints when the rank
is deficient.

Examples
--------
>>> import sympy as sp
>>> from cognitive_action.declare import symbols as S
>>> from cognitive_action.declare.problem import Action, Constraint, Problem
>>> q1, q2 = S.coordinates("q1 q2")
>>> p = Problem(Action([q1, q2], masses=1), [Constraint(q1 + q2, name="A"),
...             Constraint(2 * q1 + 2 * q2, name="B")])
>>> report = constraint_rank(p, method="symbolic")
>>> report.rank, report.full, report.dependent
(1, False, ('B',))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from cognitive_action.declare.problem import Problem
from cognitive_action.derive.euler_lagrange import EulerLagrange, euler_lagrange
from cognitive_action.derive.sparse import SparseRows
from cognitive_action.errors import DeclarationError

__all__ = ["RankReport", "constraint_rank"]


@dataclass(frozen=True)
class RankReport:
    """Result of a rank check.

    Attributes
    ----------
    rank, size
        The rank found and the number of constraints.
    full
        ``rank == size``.
    dependent
        Names of constraints that depend on the others (empty when full).
    method
        ``"symbolic"`` or ``"numeric"``.
    singular_values
        Smallest-to-largest ratio data: the singular values at the worst sample
        (numeric method only).
    tolerance
        Relative tolerance on singular values (numeric method only).
    """

    rank: int
    size: int
    full: bool
    dependent: tuple[str, ...]
    method: str
    singular_values: tuple[float, ...] = field(default=())
    tolerance: float | None = None


def _jacobian(system: Problem | EulerLagrange, wrt: Sequence[sp.Symbol] | None
              ) -> SparseRows:
    el = system if isinstance(system, EulerLagrange) else euler_lagrange(system)
    J = el.jacobian
    n_hol = len(el.multipliers)
    if el.velocity_jacobian.rows:
        # Non-holonomic rows: N_q̇, the coefficients of q̈ in Ṅ (what makes the
        # mass-matrix form solvable), mapped onto the coordinate columns.
        to_q = dict(zip(el.velocities, el.coordinates))
        rows = J.rows[:n_hol] + [{to_q[v]: e for v, e in r.items()}
                                 for r in el.velocity_jacobian.rows]
        J = SparseRows(J.row_labels, J.columns, rows)
    if wrt is None:
        return J
    unknown = [q for q in wrt if q not in set(J.columns)]
    if unknown:
        raise DeclarationError(f"{unknown[0]} is not a coordinate of the problem",
                               fix="pass coordinates of the problem as wrt")
    return J.restrict(list(wrt))


def constraint_rank(system: Problem | EulerLagrange, *, wrt: Sequence[sp.Symbol] | None = None,
                    method: str = "auto", at: Mapping[sp.Symbol, float] | None = None,
                    samples: int = 3, tol: float = 1e-10, seed: int = 0) -> RankReport:
    """Rank of the constraint Jacobian (``G_ξ`` with ``wrt`` the outputs: Proposition 1).

    Holonomic constraints contribute ``G_q``; non-holonomic ones ``N_q̇`` (the rows
    that multiply ``q̈`` in ``Ṅ``), so that full rank means the mass-matrix form can be
    solved for the multipliers.

    Parameters
    ----------
    system
        A problem or its derived Euler-Lagrange system.
    wrt
        Columns to keep (default: all coordinates). Proposition 1 uses the neuron
        outputs.
    method
        ``"symbolic"`` (exact generic rank), ``"numeric"`` (SVD), or ``"auto"``
        (symbolic for up to 12 constraints with polynomial entries, else numeric).
    at
        Values for symbols at which to evaluate (numeric); unspecified symbols are
        drawn from a standard normal distribution.
    samples
        Number of random sample points (numeric); the smallest rank found counts.
    tol
        Singular values below ``tol · σ_max`` count as zero.
    seed
        Seed of the random sample points.
    """
    J = _jacobian(system, wrt)
    names = tuple(str(n) for n in J.row_labels)
    if method == "auto":
        # Exact elimination with simplification is fast on polynomial entries only
        # (tanh entries make it blow up already at 4 neurons; docs/performance.md).
        polynomial = all(v.is_polynomial() for r in J.rows for v in r.values())
        method = "symbolic" if J.shape[0] <= 12 and polynomial else "numeric"
    if method == "symbolic":
        M = J.to_matrix()
        if at:
            M = M.xreplace(dict(at))
        _, pivots = M.T.rref(simplify=True)
        rank = len(pivots)
        dependent = tuple(n for i, n in enumerate(names) if i not in pivots)
        return RankReport(rank, len(names), rank == len(names), dependent, "symbolic")
    if method != "numeric":
        raise DeclarationError(f"unknown method {method!r}",
                               fix="use 'symbolic', 'numeric' or 'auto'")
    entries = [(i, J.column_index(c), v) for i, r in enumerate(J.rows) for c, v in r.items()]
    symbols = sorted(set().union(*(v.free_symbols for _, _, v in entries)), key=str) \
        if entries else []
    f = sp.lambdify(symbols, [v for _, _, v in entries], "numpy")
    rng = np.random.default_rng(seed)
    fixed = {str(k): v for k, v in (at or {}).items()}
    worst = None
    for _ in range(max(1, samples)):
        point = [fixed.get(str(s), rng.standard_normal()) for s in symbols]
        vals = np.broadcast_to(np.asarray(f(*point), dtype=float), (len(entries),))
        A = np.zeros(J.shape)
        for (i, j, _), v in zip(entries, vals):
            A[i, j] = v
        sv = np.linalg.svd(A, compute_uv=False)
        rank = int(np.sum(sv > tol * (sv[0] if sv.size and sv[0] > 0 else 1.0)))
        if worst is None or rank < worst[0]:
            worst = (rank, A, sv)
    rank, A, sv = worst
    dependent: tuple[str, ...] = ()
    if rank < len(names):
        # In declaration order: a constraint is dependent if it adds no rank to those
        # before it (the convention of the symbolic method).
        scale = tol * (sv[0] if sv.size and sv[0] > 0 else 1.0)
        kept: list[int] = []
        for i in range(len(names)):
            trial = A[kept + [i]]
            if np.sum(np.linalg.svd(trial, compute_uv=False) > scale) > len(kept):
                kept.append(i)
        dependent = tuple(n for i, n in enumerate(names) if i not in kept)
    return RankReport(rank, len(names), rank == len(names), dependent, "numeric",
                      tuple(float(s) for s in sv), tol)
