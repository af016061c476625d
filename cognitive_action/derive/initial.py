"""Consistent initial conditions: eq. (11) and its general form.

At ``t = 0`` the constraints must hold, ``G(0, q(0)) = 0``, and so must their first
time derivative, ``G_τ + G_q q̇(0) = 0`` (design notes: the paper's (11), with
``q̇(0) = 0`` and ``G_τ = 0``, is sufficient, not necessary). Non-holonomic constraints
``N(0, q, q̇) = 0`` restrict the velocities. :func:`complete_initial_conditions`
solves for the free coordinates (for a network: the outputs ``x(0)`` given ``W(0)`` and
``e(0)``, a forward pass) by Newton's method and for the free velocities (``ẋ(0)``
given ``Ẇ(0)`` and ``ė(0)``) by a linear solve; :func:`validate_initial_conditions`
rejects inconsistent ones with the violated constraints named.

For networks of eq. (4) :func:`complete_network_initial_conditions` does the same
numerically from the per-neuron template (design notes: a forward pass for ``x(0)``, a
linear solve for ``ẋ(0)`` from the constraint Jacobians), with a cost linear in the
arcs; :func:`network_constraint_residuals` evaluates ``G`` and ``Ġ`` the same way.

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

import functools
import warnings
from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np
import sympy as sp
from scipy import sparse
from scipy.sparse import linalg as splinalg

from cognitive_action.declare.network import Network
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.symbols import MAX_ORDER, dot, t
from cognitive_action.derive.calculus import TimeDerivative
from cognitive_action.derive.euler_lagrange import EulerLagrange
from cognitive_action.derive.network import XI, A, neuron_templates
from cognitive_action.derive.numeric import by_name, to_float
from cognitive_action.errors import DeclarationError, InconsistentInitialConditionsError

__all__ = ["complete_initial_conditions", "validate_initial_conditions", "constraint_residuals",
           "check_initial_conditions", "complete_network_initial_conditions",
           "network_constraint_residuals", "network_constraint_jacobian", "network_names",
           "is_plain_network"]


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
        if not abs(g) <= tol:  # NaN is a violation
            bad[name] = g
        if not abs(gd) <= tol:
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
    _refuse_non_finite(vals)
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
    if r.size and not np.all(np.abs(r) <= max(tol, 1e-9)):  # NaN fails too
        bad = {c.name: float(v) for c, v in zip(hol, r) if not abs(v) <= max(tol, 1e-9)}
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
    _refuse_non_finite({str(s): vals[str(s)] for q in free for s in (q, dot(q))},
                       solved=True)
    return vals


def _refuse_non_finite(vals: Mapping[str, float], solved: bool = False) -> None:
    """Refuse NaN or infinite values (given, or solved for): NaN compares false with
    every tolerance, so it would pass the consistency checks unseen."""
    bad = {k: v for k, v in vals.items() if not np.isfinite(v)}
    if bad:
        listing = ", ".join(f"{k} = {v}" for k, v in list(bad.items())[:8])
        raise InconsistentInitialConditionsError(
            f"{'the completed' if solved else 'given'} initial values are not finite: "
            f"{listing}",
            fix="the constraints have no finite solution from these values; change them"
            if solved else "give finite numbers for every coordinate, velocity and "
            "parameter", violated=bad)


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


# -- networks, numerically from the per-neuron template ---------------------------------
def is_plain_network(problem: Problem) -> bool:
    """Whether ``problem``'s constraints are those its instantaneous network declares
    (eq. 4, one per neuron in network order), whatever its loss: the template applies."""
    net = getattr(problem, "network", None)
    if not isinstance(net, Network) or net.speed is not None:
        return False
    cons = problem.constraints
    if len(cons) != len(net.order) or problem.nonholonomic_constraints:
        return False
    coords = set(problem.coordinates)
    for c, j in zip(cons, net.order):
        x = net.x[j]
        if j in net.inputs:
            if (c.expr - x).free_symbols & coords:
                return False
        elif c.expr != net.neuron_constraint(x, net.net_input(j), j):
            return False
    return True


@functools.lru_cache(maxsize=32)
def network_names(net: Network) -> tuple[tuple[str, ...], ...]:
    """Names of the outputs, their velocities, the weights and theirs, in network order
    (``Symbol.name``, cached: printing tens of thousands of symbols is slow)."""
    xs, ws = net.neurons, net.weights
    return (tuple(s.name for s in xs), tuple(dot(s).name for s in xs),
            tuple(s.name for s in ws), tuple(dot(s).name for s in ws))


@functools.lru_cache(maxsize=32)
def _template_functions(net: Network, params: tuple[str, ...]):
    """``g, g_ξ, g_a, g_t`` of the hidden-neuron templates (one per activation),
    vectorized by NumPy: each neuron's row from its own template."""
    tpls, index = neuron_templates(net)
    fns = []
    for tpl in tpls:
        syms = {str(s): s for s in tpl.g.free_symbols}
        args = [XI, dot(XI), A, dot(A), t, *(syms.get(p, sp.Symbol(p)) for p in params)]
        fns.append(sp.lambdify(args, [tpl.g, tpl.g_xi, tpl.g_a, sp.diff(tpl.g, t)],
                               "numpy"))
    if len(fns) == 1:
        return fns[0]
    masks = [index == n for n in range(len(fns))]

    def combined(x, *rest):
        out = [np.zeros(len(index)) for _ in range(4)]
        for f, rows in zip(fns, masks):
            for o, v in zip(out, f(x, *rest)):
                o[rows] = np.broadcast_to(np.asarray(v, dtype=float), o.shape)[rows]
        return out
    return combined


def _template_params(net: Network) -> tuple[str, ...]:
    local = {XI, dot(XI), A, dot(A), t}
    free = set().union(*(tp.g.free_symbols for tp in neuron_templates(net)[0])) \
        if net.computing else set()
    return tuple(sorted(str(s) for s in free - local))


class _NetworkPoint:
    """Arrays of one network point: weights by arc, template functions, input rows."""

    def __init__(self, problem: Problem, vals: dict[str, float]) -> None:
        net: Network = problem.network
        self.net, self.problem, self.vals = net, problem, vals
        self.names = network_names(net)
        missing = [w for w in self.names[2] if w not in vals]
        if missing:
            raise DeclarationError(f"no value given for the weights {', '.join(missing[:5])}"
                                   + (" ..." if len(missing) > 5 else ""),
                                   fix="give every weight a number (and its velocity, or "
                                   "0 is used)")
        self.idx = {n: i for i, n in enumerate(net.order)}
        self.tg = np.array([self.idx[j] for (j, _k) in net.w], dtype=np.int64)
        self.sc = np.array([self.idx[k] for (_j, k) in net.w], dtype=np.int64)
        self.w = np.array([vals[w] for w in self.names[2]], dtype=float)
        self.wd = np.array([vals.get(w, 0.0) for w in self.names[3]], dtype=float)
        self.hidden = np.array([self.idx[j] for j in net.order if j not in net.inputs],
                               dtype=np.int64)
        self.inputs = np.array([self.idx[i] for i in net.inputs], dtype=np.int64)
        params = _template_params(net)
        lacking = [p for p in params if p not in vals]
        if lacking:
            raise DeclarationError(f"no value given for {', '.join(lacking)}",
                                   fix="give every parameter of the activation a number")
        self.fn = _template_functions(net, params)
        self.pv = [vals[p] for p in params]
        self.nu = len(net.order)

    def template(self, x: np.ndarray, xd: np.ndarray) -> tuple[np.ndarray, ...]:
        """``g, g_ξ, g_a, g_t, ȧ`` at every neuron (input rows are meaningless)."""
        a = np.bincount(self.tg, self.w * x[self.sc], minlength=self.nu)
        ad = np.bincount(self.tg, self.wd * x[self.sc] + self.w * xd[self.sc],
                         minlength=self.nu)
        tt = self.vals["t"]
        out = [np.broadcast_to(np.asarray(v, dtype=float), (self.nu,)).copy()
               for v in self.fn(x, xd, a, ad, tt, *self.pv)]
        return (*out, ad)

    def jacobian(self, g_xi: np.ndarray, g_a: np.ndarray) -> sparse.csr_matrix:
        """``G_ξ``: ``g_ξ`` on the diagonal, ``g_a w_jk`` off it, identity input rows."""
        gx, ga = g_xi.copy(), g_a.copy()
        gx[self.inputs], ga[self.inputs] = 1.0, 0.0
        return (sparse.csr_matrix((ga[self.tg] * self.w, (self.tg, self.sc)),
                                  shape=(self.nu, self.nu)) + sparse.diags(gx)).tocsr()

    def inputs_at(self) -> tuple[np.ndarray, np.ndarray]:
        """``e(t)`` and ``ė(t)`` of the input neurons, from their declared constraints."""
        e, ed = np.zeros(len(self.inputs)), np.zeros(len(self.inputs))
        for n, i in enumerate(self.inputs):
            c = self.problem.constraints[i]
            x = self.net.neurons[i]
            e[n] = -to_float(c.expr.xreplace({x: sp.S.Zero}), self.vals)
            D = TimeDerivative({dot(s, k) for s in [x, *self.problem.signals]
                                for k in range(MAX_ORDER + 1)})
            ed[n] = -to_float(D(c.expr).xreplace({dot(x): sp.S.Zero}), self.vals)
        return e, ed


def network_constraint_residuals(problem: Problem, values: Mapping[str | sp.Symbol, float]
                                 ) -> dict[str, tuple[float, float]]:
    """``(G, dG/dt)`` of every neuron constraint, evaluated from the per-neuron template.

    The numeric counterpart of :func:`constraint_residuals` for networks of eq. (4): the
    cost is linear in the arcs and nothing is lambdified per neuron.

    Parameters
    ----------
    problem
        A network problem (:func:`is_plain_network`).
    values
        Numbers for the outputs, weights, their velocities, parameters, signal jets and
        ``t`` (missing velocities count as 0).
    """
    vals = by_name(values)
    vals.setdefault("t", 0.0)
    pt = _NetworkPoint(problem, vals)
    x = np.array([vals[s] for s in pt.names[0]], dtype=float)
    xd = np.array([vals.get(s, 0.0) for s in pt.names[1]], dtype=float)
    g, g_xi, g_a, g_t, ad = pt.template(x, xd)
    G, Gd = g, g_xi * xd + g_a * ad + g_t
    e, ed = pt.inputs_at()
    G[pt.inputs], Gd[pt.inputs] = x[pt.inputs] - e, xd[pt.inputs] - ed
    return {c.name: (float(G[i]), float(Gd[i])) for i, c in enumerate(problem.constraints)}


def network_constraint_jacobian(problem: Problem, values: Mapping[str | sp.Symbol, float]
                                ) -> sparse.csr_matrix:
    """``G_ξ`` (``ν × ν``, sparse) of a network of eq. (4) at a point, from the template.

    Parameters
    ----------
    problem
        A network problem (:func:`is_plain_network`); its loss does not matter.
    values
        Numbers for the outputs, weights, parameters of the activation and ``t``.
    """
    vals = by_name(values)
    vals.setdefault("t", 0.0)
    pt = _NetworkPoint(problem, vals)
    x = np.array([vals[s] for s in pt.names[0]], dtype=float)
    _, g_xi, g_a, _, _ = pt.template(x, np.zeros_like(x))
    return pt.jacobian(g_xi, g_a)


def complete_network_initial_conditions(problem: Problem,
                                        given: Mapping[str | sp.Symbol, float], *,
                                        t0: float = 0.0, tol: float = 1e-12,
                                        max_iter: int = 50) -> dict[str, float]:
    """Consistent ``x(0)`` and ``ẋ(0)`` of a network of eq. (4), numerically.

    ``x(0)`` by a forward pass (one Newton solve of each neuron's template in
    topological order; a feedforward graph) or by Newton's method on all neurons at once
    (a graph with cycles: a fixed point of the network), ``ẋ(0)`` by the sparse linear
    solve ``G_ξ ẋ = -(G_M Ẇ + G_t)`` (inputs: ``ẋ = ė``).

    Parameters
    ----------
    problem
        A network problem (:func:`is_plain_network`).
    given
        Numbers for the weights, parameters, signal jets; weight velocities (default 0).
    t0
        Initial time.
    tol, max_iter
        Newton tolerance on ``|G|`` and iteration limit.

    Returns
    -------
    dict
        ``given`` with every output, output velocity, missing weight velocity and ``t``.

    Raises
    ------
    InconsistentInitialConditionsError
        If no fixed point is found (a graph with cycles) or ``G_ξ`` is singular.
    """
    vals = by_name(given)
    _refuse_non_finite(vals)
    vals["t"] = float(t0)
    pt = _NetworkPoint(problem, vals)
    net = problem.network
    nu = pt.nu
    x, xd = np.zeros(nu), np.zeros(nu)
    e, ed = pt.inputs_at()
    x[pt.inputs], xd[pt.inputs] = e, ed
    if net.is_feedforward:
        # generation by generation: no arcs inside one, so the Newton steps are diagonal
        # (and exact in one step for eq. 4, whose template is linear in ξ)
        for gen in nx.topological_generations(net.graph):
            idx = np.array([pt.idx[j] for j in gen if j not in net.inputs], dtype=np.int64)
            for _ in range(max_iter if idx.size else 0):
                g, g_xi, *_ = pt.template(x, xd)
                if np.max(np.abs(g[idx])) <= tol:
                    break
                x[idx] -= g[idx] / g_xi[idx]
    else:
        for _ in range(max_iter):
            g, g_xi, g_a, *_ = pt.template(x, xd)
            g[pt.inputs] = 0.0
            if np.max(np.abs(g)) <= tol:
                break
            with warnings.catch_warnings():  # singular: non-finite step, handled below
                warnings.simplefilter("ignore", splinalg.MatrixRankWarning)
                step = splinalg.spsolve(pt.jacobian(g_xi, g_a).tocsc(), g)
            if not np.all(np.isfinite(step)):
                break
            x -= step
    g, g_xi, g_a, g_t, _ = pt.template(x, xd)
    g[pt.inputs] = 0.0
    if not np.all(np.isfinite(g)) or np.max(np.abs(g), initial=0.0) > max(tol, 1e-9):
        bad = {problem.constraints[i].name: float(g[i]) for i in np.flatnonzero(
            ~(np.abs(g) <= max(tol, 1e-9)))[:10]}
        raise InconsistentInitialConditionsError(
            f"no outputs x(0) satisfy {', '.join(bad)} given the weights and inputs "
            "(Newton's method did not converge to a fixed point)",
            fix="give smaller weights (a contracting network has one fixed point) or "
            "the outputs x(0) themselves", violated=bad)
    # ẋ: G_ξ ẋ = -(g_a Σ ẇ x + g_t) on hidden rows, ẋ = ė on input rows
    xd0 = np.zeros(nu)
    _, _, _, _, ad_w = pt.template(x, xd0)  # ȧ with ẋ = 0: Σ ẇ_jk x_k
    rhs = -(g_a * ad_w + g_t)
    rhs[pt.inputs] = ed
    J = pt.jacobian(g_xi, g_a).tocsc()
    with warnings.catch_warnings():  # singular: non-finite velocities, handled below
        warnings.simplefilter("ignore", splinalg.MatrixRankWarning)
        xd = splinalg.spsolve(J, rhs) if nu > 1 else rhs / J.toarray().ravel()
    xd = np.atleast_1d(np.asarray(xd, dtype=float))
    if not np.all(np.isfinite(xd)):
        raise InconsistentInitialConditionsError(
            "G_xi is singular at x(0): no unique velocities x_dot(0)",
            fix="check the rank of the constraint Jacobian (Proposition 1)",
            violated={})
    for s, sd, v, vd in zip(pt.names[0], pt.names[1], x, xd):
        vals[s], vals[sd] = float(v), float(vd)
    for wd, v in zip(pt.names[3], pt.wd):
        vals.setdefault(wd, float(v))
    return vals

