"""Building blocks shared by the routes that compile derived systems.

The generic route and the network route (:mod:`~cognitive_action.compile.system`), the
speed-``c`` network route (:mod:`~cognitive_action.compile.network_speed`) and the
reduced systems of limits (:mod:`~cognitive_action.compile.reduced`) all build
CasADi functions of ``(t, y, p)`` the same way: the parameter vector ``p`` holds the
problem's parameters (sorted), then the constant signals, then the hidden Baumgarte
gains :data:`STABILIZATION_PARAMETERS`; given signals are translated with their time
derivatives; constraint projection is a few minimum-norm Gauss-Newton steps. These
pieces live here, under public names, for the modules of :mod:`cognitive_action.compile`
(the package does not re-export them).

Examples
--------
>>> import casadi as ca
>>> t, y, p = argument_symbols(ca.SX, 2, 3)
>>> values = {}
>>> bind_parameters(values, ("k", "m"), p)
>>> str(values["m"])
'p_1'
>>> listing(["a", "b", "c"], k=2)
'a, b, … (3 in all)'
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

import casadi as ca
import sympy as sp

from cognitive_action.compile.translate import Translator
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.symbols import MAX_ORDER, dot, t
from cognitive_action.errors import CompileError

__all__ = ["LINEAR_SOLVERS", "STABILIZATION_PARAMETERS", "argument_symbols",
           "bind_parameters", "bind_signals", "column", "constraint_projection", "listing",
           "loss_forcing", "parameter_names", "signal_values", "sparse_sx", "suggest", "take"]

#: Hidden parameters appended to every parameter vector: the Baumgarte gains.
STABILIZATION_PARAMETERS = ("_baumgarte_alpha", "_baumgarte_beta")

#: Linear solvers accepted for the linear-solve node (CasADi ``Linsol`` plugins that
#: handle the indefinite saddle-point matrix of the mass-matrix form). ``ldl`` is left
#: out on purpose: it returns NaN (with only a warning) on a zero pivot, which every
#: constrained mass matrix has.
LINEAR_SOLVERS = ("qr", "csparse", "lapacklu", "lapackqr", "mumps")

_ORDERS = range(MAX_ORDER + 1)


# -- signals and parameters ----------------------------------------------------------------
def signal_values(problem: Problem, signals: Mapping | None, kind: type
                  ) -> tuple[dict[str, object], list[str], dict[str, str]]:
    """Values of every signal jet, and the constant signals (runtime parameters).

    Parameters
    ----------
    problem
        The problem whose ``signals`` (inputs, targets) are valued.
    signals
        Signal name → SymPy expression of ``t`` (or a number); signals not given are
        constant runtime parameters.
    kind
        ``ca.SX`` or ``ca.MX`` (kept for the callers' symmetry; the values are SymPy).

    Returns
    -------
    tuple
        ``(values, constant_names, described)``: ``values`` maps jet names (``e1``,
        ``e1_dot``, ...) to SymPy expressions of ``t`` (translated later by the caller's
        translator), zero for derivatives of constant signals; ``described`` says per
        signal what it is.

    Raises
    ------
    CompileError
        An unknown signal name, a string, or an expression with symbols other than
        ``t`` and the problem's parameters.
    """
    given = {str(k): v for k, v in (signals or {}).items()}
    names = [str(s) for s in problem.signals]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise CompileError(f"{listing(unknown)} {'is' if len(unknown) == 1 else 'are'} not "
                           f"a signal of the problem (signals: {listing(names)})",
                           fix=suggest(unknown[0], names))
    allowed = {str(p) for p in problem.parameters} | {"t"}
    exprs: dict[str, sp.Expr] = {}
    constants: list[str] = []
    described: dict[str, str] = {}
    for s in problem.signals:
        n = str(s)
        if n not in given:
            constants.append(n)
            for k in _ORDERS[1:]:
                exprs[str(dot(s, k))] = sp.S.Zero
            described[n] = "constant parameter"
            continue
        v = given[n]
        if isinstance(v, str):
            raise CompileError(f"signal {n} is given as the string {v!r}",
                               fix="give a SymPy expression of t or a number")
        try:
            e = sp.sympify(v, strict=True)  # safe: strict, non-string input only
        except (sp.SympifyError, TypeError) as exc:
            raise CompileError(f"signal {n} = {v!r} is not an expression",
                               fix="give a SymPy expression of t or a number") from exc
        bad = sorted(str(x) for x in e.free_symbols if str(x) not in allowed)
        if bad:
            raise CompileError(f"signal {n} = {e} uses {listing(bad)}",
                               fix="signals may depend on t and the problem's parameters only")
        ts = [x for x in e.free_symbols if str(x) == "t"]
        tt = ts[0] if ts else t
        d = e
        for k in _ORDERS:
            exprs[str(dot(s, k))] = d
            d = sp.diff(d, tt)
        described[n] = str(e)
    return exprs, constants, described


def parameter_names(problem: Problem, constants: list[str]) -> tuple[str, ...]:
    """The user-visible parameter vector: the problem's parameters sorted by name, then
    the constant signals (the Baumgarte gains follow, hidden)."""
    return tuple(sorted({str(p) for p in problem.parameters}) + constants)


def argument_symbols(kind: type, n_y: int, n_p: int) -> tuple:
    """Symbols ``(t, y, p)`` of kind ``ca.SX`` or ``ca.MX`` with ``n_y`` states and
    ``n_p`` parameters (the compiled functions' arguments)."""
    return kind.sym("t"), kind.sym("y", n_y), kind.sym("p", n_p)


def bind_parameters(values: dict, names: Sequence[str], p) -> None:
    """Set ``values[name] = p[i]`` for the ``i``-th parameter name (in place)."""
    for i, n in enumerate(names):
        values[n] = p[i]


def bind_signals(values: dict, tr_exprs: Mapping[str, sp.Expr], tr: Translator) -> None:
    """Set ``values[jet] = tr(expression)`` for every signal jet (in place)."""
    for n, e in tr_exprs.items():
        values[n] = tr(e)


# -- matrices and projection ---------------------------------------------------------------
def sparse_sx(n: int, m: int, rows: list[int], cols: list[int], vals: list) -> ca.SX:
    """An SX matrix with the given triplets (column-major nonzero order)."""
    if not rows:
        return ca.SX(n, m)
    order = sorted(range(len(rows)), key=lambda k: (cols[k], rows[k]))
    spy = ca.Sparsity.triplet(n, m, [rows[k] for k in order], [cols[k] for k in order])
    return ca.SX(spy, ca.vertcat(*[vals[k] for k in order]))


def constraint_projection(tt, y, p, nq: int, G, V, lsolver: str, iterations: int = 5
                          ) -> ca.Function:
    """``y ↦ y`` projected onto ``G(q) = 0`` then ``V(q, q̇) = 0`` (minimum-norm steps).

    Parameters
    ----------
    tt, y, p
        The SX symbols that ``G`` and ``V`` are expressions of; ``y`` starts with the
        ``nq`` coordinates, then their ``nq`` velocities.
    nq
        Number of coordinates.
    G, V
        Position-level constraints ``G(q)`` and velocity-level ones ``V(q, q̇)``
        (``None``: none of that kind).
    lsolver
        CasADi linear solver of the ``J Jᵀ`` solves.
    iterations
        Gauss-Newton steps on ``G`` (two on ``V``, which is linear in ``q̇``).

    Returns
    -------
    casadi.Function
        ``projection(t, y, p) → y_projected``.
    """
    fns = []
    if G is not None:
        fns.append(ca.Function("pos", [tt, y, p], [G, ca.jacobian(G, y)[:, :nq]]))
    if V is not None:
        fns.append(ca.Function("vel", [tt, y, p], [V, ca.jacobian(V, y)[:, nq:2 * nq]]))
    tm, ym = ca.MX.sym("t"), ca.MX.sym("y", y.shape[0])
    pm = ca.MX.sym("p", p.shape[0])
    cur = ym
    for k, fn in enumerate(fns):
        lo = 0 if (G is not None and k == 0) else nq
        for _ in range(iterations if lo == 0 else 2):
            r, J = fn(tm, cur, pm)
            step = ca.mtimes(J.T, ca.solve(ca.mtimes(J, J.T), r, lsolver))
            cur = ca.vertcat(cur[:lo], cur[lo:lo + nq] - step, cur[lo + nq:]) if lo else \
                ca.vertcat(cur[:nq] - step, cur[nq:])
    return ca.Function("projection", [tm, ym, pm], [cur], ["t", "y", "p"], ["y_projected"])


def column(v, n: int) -> ca.MX:
    """A column of length ``n`` from a translated template (a number or a 1×1 value is
    broadcast: templates such as ``g_ξ = 1`` translate to constants)."""
    if isinstance(v, (int, float)):
        return ca.MX(ca.DM.ones(n) * float(v))
    if v.shape[0] == 1 and n != 1:
        return ca.repmat(v, n, 1)
    return v


def take(v, idx: list[int]):
    """``v[idx]``, as a slice when ``idx`` is a contiguous range (cheaper in MX graphs)."""
    if not idx:
        return v[0:0]
    if idx == list(range(idx[0], idx[0] + len(idx))):
        return v[idx[0]:idx[0] + len(idx)]
    return v[idx]


def loss_forcing(loss: Sequence[tuple[int, sp.Expr]], neurons: Sequence[str], base: dict,
                 x, xd) -> ca.MX:
    """The loss gradient's part of the neuron forcing ``f_x`` (zero on neurons without a
    loss term): ``loss`` pairs a neuron index with its ``∂V/∂x`` expression."""
    nu = len(neurons)
    if not loss:
        return ca.MX(nu, 1)
    vals = dict(base)
    for i, n in enumerate(neurons):
        vals[n] = x[i]
        vals[n + "_dot"] = xd[i]
    tr = Translator(vals)
    rows = [i for i, _ in loss]
    sel = ca.DM(ca.Sparsity.triplet(nu, len(rows), rows, list(range(len(rows)))), 1.0)
    return ca.mtimes(sel, ca.vertcat(*(column(tr(e), 1) for _, e in loss)))


# -- messages ------------------------------------------------------------------------------
def listing(names: Sequence[str], k: int = 8) -> str:
    """The first ``k`` names, comma-separated, with the total when there are more."""
    names = list(names)
    s = ", ".join(names[:k])
    return s + (f", … ({len(names)} in all)" if len(names) > k else "")


def suggest(name: str, known: Sequence[str]) -> str:
    """A fix for an unknown name: the closest known one, or a listing of them."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"use names among {listing(known)}"
