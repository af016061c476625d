"""Proposition 1: rank of the constraint Jacobian, symbolically or by SVD.

Proposition 1 of the paper: for a feedforward network the Jacobian ``G_ξ`` of the
constraints (4) with respect to the neuron outputs is upper triangular with unit
diagonal (in the paper's ``T = G_ξᵀ``), hence of full rank, so the multiplier
equation (10) has a unique solution. :func:`constraint_rank` checks any constraint
set: symbolically (generic rank) or numerically (SVD at sample points, with a relative
tolerance), and names the dependent constraints when the rank is deficient.

The symbolic method first looks for a certificate that costs one pass over the
nonzero entries: if the constraint graph (row ``i`` depends on column ``j ≠ i``) has no
cycles, a simultaneous permutation makes the square Jacobian triangular and its
determinant is the product of the diagonal; when no diagonal entry is identically zero
(a nonzero number, or nonzero at a random point) the generic rank is full. This is
Proposition 1's own argument (unit diagonal for a feedforward network) and works at any
size and for self-loops; other Jacobians fall back to row reduction, whose cost grows
fast with the size (docs/performance.md).

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
from cognitive_action.declare.symbols import substitute
from cognitive_action.derive.euler_lagrange import EulerLagrange, euler_lagrange
from cognitive_action.derive.initial import is_plain_network
from cognitive_action.derive.network import XI, A, neuron_templates
from cognitive_action.derive.sparse import SparseRows
from cognitive_action.errors import DeclarationError

__all__ = ["RankReport", "constraint_rank", "triangular_full_rank"]


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


def _network_jacobian(problem: Problem) -> SparseRows:
    """``G_ξ`` of a network of eq. (4) from the per-neuron template: row ``j`` holds
    ``g_ξ(x_j, a_j)`` on the diagonal and ``g_a(x_j, a_j) w_jk`` at the columns ``x_k``
    (the chain rule through ``a_j = Σ_k w_jk x_k``)."""
    net = problem.network
    tpls, index = neuron_templates(net)
    rows: list[dict[sp.Symbol, sp.Expr]] = []
    for n, j in enumerate(net.order):
        xj = net.x[j]
        if j in net.inputs:
            rows.append({xj: sp.S.One})
            continue
        tpl = tpls[index[n]]
        sub = {XI: xj, A: net.net_input(j)}
        g_xi, g_a = substitute(tpl.g_xi, sub), substitute(tpl.g_a, sub)
        row: dict[sp.Symbol, sp.Expr] = {xj: g_xi} if g_xi != 0 else {}
        if g_a != 0:
            for k in net.graph.predecessors(j):
                xk = net.x[k]
                row[xk] = row[xk] + g_a * net.w[j, k] if xk in row else g_a * net.w[j, k]
        rows.append(row)
    return SparseRows([c.name for c in problem.constraints], net.neurons, rows)


def _jacobian(system: Problem | EulerLagrange, wrt: Sequence[sp.Symbol] | None
              ) -> SparseRows:
    if isinstance(system, Problem) and wrt is not None and is_plain_network(system) \
            and list(wrt) == list(system.network.neurons):
        return _network_jacobian(system)
    if isinstance(system, Problem) and wrt is not None and \
            not system.nonholonomic_constraints:
        # G_q restricted to wrt, straight from the holonomic constraints: no derivation
        # of the equations of motion (linear in the nonzero entries)
        cols = list(wrt)
        unknown = [q for q in cols if q not in set(system.coordinates)]
        if unknown:
            raise DeclarationError(f"{unknown[0]} is not a coordinate of the problem",
                                   fix="pass coordinates of the problem as wrt")
        rows = []
        for c in system.constraints:
            free = c.expr.free_symbols
            row = {q: sp.diff(c.expr, q) for q in cols if q in free}
            rows.append({q: v for q, v in row.items() if v != 0})
        return SparseRows([c.name for c in system.constraints], cols, rows)
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


def _nonzero(expr: sp.Expr, rng: np.random.Generator, samples: int = 3) -> bool:
    """Whether ``expr`` is not identically zero: a nonzero number, or nonzero at one of
    ``samples`` random points (``False`` means: not shown)."""
    if expr.is_number:
        return bool(expr != 0)
    syms = sorted(expr.free_symbols, key=str)
    f = sp.lambdify(syms, expr, "numpy", dummify=True)
    for _ in range(samples):
        try:
            v = complex(f(*rng.standard_normal(len(syms))))
        except (ValueError, TypeError, ZeroDivisionError, OverflowError):
            continue
        if np.isfinite(v) and abs(v) > 1e-8:
            return True
    return False


def _triangular_certificate(J: SparseRows, at: Mapping[sp.Symbol, float] | None,
                            seed: int) -> bool:
    """Full generic rank shown by an acyclic dependency graph with a nonzero diagonal."""
    n = J.shape[0]
    if n == 0 or J.shape[1] != n:
        return n == 0
    byname = {str(k): float(v) for k, v in (at or {}).items()}
    deps: list[set[int]] = []
    diag: list[sp.Expr] = []
    for i, row in enumerate(J.rows):
        d: sp.Expr = sp.S.Zero
        others = set()
        for c, v in row.items():
            if v == 0:
                continue
            j = J.column_index(c)
            if j == i:
                d = v
            else:
                others.add(j)
        deps.append(others)
        diag.append(d.xreplace({s: byname[s.name] for s in d.free_symbols
                                if s.name in byname}) if byname else d)
    # Kahn's algorithm: the graph j -> i is acyclic iff every index gets removed
    indeg = [len(d) for d in deps]
    users: list[list[int]] = [[] for _ in range(n)]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    ready = [i for i in range(n) if indeg[i] == 0]
    seen = 0
    while ready:
        j = ready.pop()
        seen += 1
        for i in users[j]:
            indeg[i] -= 1
            if indeg[i] == 0:
                ready.append(i)
    if seen < n:
        return False
    rng = np.random.default_rng(seed)
    return all(_nonzero(d, rng) for d in diag)


def triangular_full_rank(system: Problem | EulerLagrange, *,
                         wrt: Sequence[sp.Symbol] | None = None,
                         at: Mapping[sp.Symbol, float] | None = None, seed: int = 0) -> bool:
    """Whether the cheap symbolic certificate shows full generic rank (module docstring).

    ``False`` means only that the certificate does not apply (a cyclic dependency, or a
    diagonal entry that vanishes at the sample points); row reduction decides then.
    """
    return _triangular_certificate(_jacobian(system, wrt), at, seed)


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
        cert = _triangular_certificate(J, at, seed)
        if cert:
            return RankReport(len(names), len(names), True, (), "symbolic")
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
