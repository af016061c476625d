"""Compile the reduced systems of Section 3's limits into ``ẏ = f(t, y, p)``.

:func:`~cognitive_action.derive.limits.reduce` (and ``staged``) turn a derived system into
a :class:`~cognitive_action.derive.limits.ReducedSystem`: leading-order rows linear in
their unknowns, ``M(t, y, p) · u = f(t, y, p)``. :func:`compile_reduced` compiles such a
system into the same :class:`~cognitive_action.compile.system.CompiledSystem` as the
full equations, so that ``simulate``, ``simulate_batch``, ``evaluate``, ``jacobian`` and
``eigenvalues`` run it unchanged:

- the gradient-flow limit (eq. 14: ``γ Ẇ = −∂V̄/∂W``, reached in stages, ``m_x → 0`` then
  ``θ → ∞`` with ``θ m_W = γ``), and the backprop limit (eq. 15-17: ``δ`` from
  ``T δ = −V_x``, ``γ ẇ_ij = σ'(a_i) δ_i x_j``);
- the quasi-static limit ``m_x → 0`` (eq. 12-13, and with neurons (19) the continuous
  diffusion dynamics: the multipliers ``μ`` are states with rates ``μ̇``, eq. 20).

**The state vector** is worked out from the unknowns: an unknown that is a rate of a
state (``q̈``, a promoted velocity ``q̇``, ``μ̇``) makes its integrals states (``q̈ →``
states ``q, q̇``; ``q̇ →`` state ``q``; ``μ̇ →`` state ``μ``). The other unknowns
(multipliers: the backprop deltas in the backprop limit) are solved at every instant by
a linear-solve node, never by a symbolic inverse, as on the generic route of
:func:`~cognitive_action.compile.system.compile_system`. Order: coordinates, velocities,
multiplier states.

**Algebraic constraints.** When a neuron's mass vanishes, its constraint row is lowered
to velocity level (``Ġ = 0``) and the reduced system keeps ``G = 0`` (the forward pass)
in :attr:`~cognitive_action.derive.limits.ReducedSystem.algebraic`. The velocity rows
determine the promoted velocities ``ẋ`` (the system is index 1 after one
differentiation), so ``x`` is integrated and ``G`` is an invariant of the exact flow:
the ``constraints`` function returns ``G`` and ``Ġ = ∂G/∂y · ẏ + ∂G/∂t`` (zero up to
round-off along the compiled rates) so that drift is monitored as for the full systems.
``stabilization="baumgarte"`` solves ``Ġ + α G = 0`` on those rows (``G̈ + 2αĠ + β²G = 0``
on rows still at acceleration level); ``stabilization="projection"`` projects the
coordinate states onto ``G = 0`` by minimum-norm Gauss-Newton steps.

:func:`freeze` holds coordinates fixed (weights read, not learned, as in Figures 1-3):
they become runtime parameters; the frozen ``m_x → 0`` reduction of neurons (19) is the
continuous diffusion system of :mod:`~cognitive_action.diffusion.continuous`.

A reduction whose rows do not determine the unknowns (a singular limit such as
``θ → ∞`` with finite neuron mass), or which leaves a coordinate in the rows without any
rate, raises :class:`~cognitive_action.errors.CompileError` naming the limit.

Examples
--------
The backprop limit (eq. 15-17) of the paper's 3-neuron chain: the output delta is
``δ_3 = y_3 − x_3 = −V_x3`` and the weight moves along ``+σ'(a_3) δ_3 x_2 / γ``:

>>> import numpy as np
>>> import sympy as sp
>>> import cognitive_action as ca
>>> from cognitive_action.declare import symbols as S
>>> from cognitive_action.derive.limits import backprop, reduce
>>> theta, = S.parameters("theta")
>>> p = ca.chain(3).problem(weight=sp.exp(theta * S.t), parameters=[theta])
>>> sys = compile_reduced(reduce(ca.euler_lagrange(p), backprop(rate=theta)))
>>> sys.states, sys.parameters
(('x1', 'x2', 'x3', 'w2_1', 'w3_2'), ('e1', 'gamma', 'y3'))
>>> x2 = np.tanh(0.5); x3 = np.tanh(-x2)
>>> y = {"x1": 1.0, "x2": x2, "x3": x3, "w2_1": 0.5, "w3_2": -1.0}
>>> u = sys.evaluate_unknowns(0.0, y, {"e1": 1.0, "gamma": 2.0, "y3": 0.0})
>>> bool(np.isclose(u["delta_G3"], -x3))
True
>>> bool(np.isclose(u["w3_2_dot"], (1 - x3**2) * u["delta_G3"] * x2 / 2.0))
True
"""

from __future__ import annotations

import dataclasses
import time
import types
from collections.abc import Mapping, Sequence

import casadi as ca
import networkx as nx
import numpy as np
import sympy as sp

from cognitive_action.compile.assembly import (
    LINEAR_SOLVERS,
    STABILIZATION_PARAMETERS,
    argument_symbols,
    bind_parameters,
    bind_signals,
    constraint_projection,
    listing,
    signal_values,
    sparse_sx,
)
from cognitive_action.compile.routes import BuildOptions, register_route
from cognitive_action.compile.system import CompiledSystem
from cognitive_action.compile.translate import Translator
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.symbols import MAX_ORDER, base, dot, order, t
from cognitive_action.derive.euler_lagrange import EulerLagrange
from cognitive_action.derive.limits import ReducedSystem
from cognitive_action.errors import CompileError, DerivationError

__all__ = ["compile_reduced", "freeze", "ReducedLayout", "reduced_layout"]

class ReducedLayout:
    """How the unknowns of a reduced system become a state vector.

    Attributes
    ----------
    coordinates, velocities, multiplier_states
        State symbols, in the order of ``y``: coordinates (``q``), velocities (``q̇``
        whose rate ``q̈`` is an unknown), then multiplier states (``μ`` with rate ``μ̇``).
    rates
        ``{state: source}`` where the source is ``("state", index)`` (the rate of ``q``
        is the state ``q̇``) or ``("unknown", index)``.
    solved
        The unknowns that are not rates (multipliers, promoted multipliers): solved at
        every instant, integrated nowhere.
    symbols
        The remaining free symbols (parameters and signals, and their time derivatives).
    """

    def __init__(self, states: list[sp.Symbol], coords: list[sp.Symbol],
                 velocities: list[sp.Symbol], multipliers: list[sp.Symbol],
                 rates: dict[sp.Symbol, tuple[str, int]], solved: list[sp.Symbol],
                 symbols: set[sp.Symbol]) -> None:
        self.states = tuple(states)
        self.coordinates = tuple(coords)
        self.velocities = tuple(velocities)
        self.multiplier_states = tuple(multipliers)
        self.rates = rates
        self.solved = tuple(solved)
        self.symbols = symbols

    def __repr__(self) -> str:
        return (f"ReducedLayout(states={[str(s) for s in self.states]}, "
                f"solved={[str(s) for s in self.solved]})")


def _free(exprs: Sequence[sp.Expr]) -> set[sp.Symbol]:
    free = (sp.sympify(e, strict=True).free_symbols for e in exprs)  # safe: strict, no str
    return set().union(*free, set())


def reduced_layout(reduced: ReducedSystem) -> ReducedLayout:
    """The state vector of a reduced system (see the module docstring).

    Raises
    ------
    CompileError
        If a coordinate (or one of its derivatives) occurs in the rows but none of its
        rates is an unknown (nothing determines how it moves), if a derivative above the
        highest integrated one occurs without being an unknown, or if two unknowns are
        rates of the same quantity at different orders.

    Examples
    --------
    >>> import sympy as sp
    >>> import cognitive_action as ca
    >>> from cognitive_action.derive.limits import quasi_static, reduce
    >>> red = reduce(ca.euler_lagrange(ca.chain(2).problem()), quasi_static())
    >>> lay = reduced_layout(red)
    >>> lay.states, lay.solved
    ((x1, x2, w2_1, w2_1_dot), (lambda_G1, lambda_G2))
    """
    lim = reduced.limit.name
    unknowns = list(reduced.unknowns)
    coords = list(reduced.coordinates)
    coord_set = set(coords)
    top: dict[sp.Symbol, sp.Symbol] = {}
    for u in unknowns:
        k = order(u)
        if k < 1:
            continue
        b = base(u)
        if b in top:
            raise CompileError(
                f"the reduced system of {lim!r} has both {top[b]} and {u} as unknowns",
                fix="one of them should be a state: check the limit's scalings")
        top[b] = u
    used = _free(list(reduced.equations) + list(reduced.algebraic))
    # coordinates whose jets occur but that have no rate
    stuck = sorted({str(base(s)) for s in used
                    if base(s) in coord_set and base(s) not in top}, key=str)
    if stuck:
        raise CompileError(
            f"the reduced system of {lim!r} uses {listing(stuck)} but determines none of "
            "their rates (no q_ddot or promoted q_dot among its unknowns)",
            fix="take a limit that keeps these coordinates' rows (e.g. m_x -> 0 before "
            "theta -> oo), or substitute the frozen values into the rows before compiling")
    idx_u = {u: j for j, u in enumerate(unknowns)}
    cs = [b for b in coords if b in top]
    ms = [b for b in top if b not in coord_set]
    positions, velocities, mults = [], [], []
    for b in cs:
        positions.append(b)
        velocities.extend(dot(b, j) for j in range(1, order(top[b])))
    for b in ms:
        mults.extend(dot(b, j) for j in range(order(top[b])))
    states = positions + velocities + mults
    idx_s = {s: i for i, s in enumerate(states)}
    rates: dict[sp.Symbol, tuple[str, int]] = {}
    for s in states:
        nxt = dot(s)
        rates[s] = ("unknown", idx_u[nxt]) if nxt in idx_u else ("state", idx_s[nxt])
    dynamic = set(states) | set(unknowns)
    stray = sorted((str(s) for s in used if s not in dynamic
                    and (base(s) in top or base(s) in coord_set)), key=str)
    if stray:
        raise CompileError(
            f"the reduced system of {lim!r} uses {listing(stray)}, which is neither a "
            "state nor an unknown", fix="the limit left a derivative that nothing "
            "determines; check its scalings")
    loose = sorted((str(s) for s in used if s not in dynamic
                    and reduced.roles.is_multiplier(s)), key=str)
    if loose:
        raise CompileError(
            f"the reduced system of {lim!r} uses the multiplier(s) {listing(loose)} but "
            "neither solves for them nor integrates them", fix="check the limit's scalings "
            "(e.g. declare unknown_scalings for multipliers of another order)")
    solved = [u for u in unknowns if order(u) == 0 or base(u) not in top or top[base(u)] != u]
    others = {s for s in used if s not in dynamic and s != t}
    return ReducedLayout(states, positions, velocities, mults, rates, solved, others)


def freeze(reduced: ReducedSystem, coordinates: Sequence[sp.Symbol | str]) -> ReducedSystem:
    """The reduced system with some coordinates held fixed (read, not learned).

    The rows labelled by the frozen coordinates are dropped, their rates
    (``q̇, q̈, …``) are set to zero in the other rows and removed from the unknowns, and
    they leave :attr:`~cognitive_action.derive.limits.ReducedSystem.coordinates`, so that
    :func:`compile_reduced` makes them runtime parameters. This is how Figures 1-3 read
    the weights: e.g. the continuous diffusion of eq. (18)-(20) with the weights frozen
    (what :func:`~cognitive_action.diffusion.continuous.derive_diffusion` compiles).

    Raises
    ------
    CompileError
        A name that is not a coordinate of the reduced system.

    Examples
    --------
    >>> import cognitive_action as ca
    >>> from cognitive_action.derive.limits import quasi_static, reduce
    >>> red = reduce(ca.euler_lagrange(ca.chain(2).problem()), quasi_static())
    >>> sys = compile_reduced(freeze(red, ["w2_1"]))
    >>> sys.states, sys.parameters
    (('x1', 'x2'), ('e1', 'w2_1', 'y2'))
    """
    by_name = {str(q): q for q in reduced.coordinates}
    bad = [str(q) for q in coordinates if str(q) not in by_name]
    if bad:
        raise CompileError(f"{listing(bad)} {'is' if len(bad) == 1 else 'are'} not a "
                           f"coordinate of the reduced system of {reduced.limit.name!r}",
                           fix=f"freeze coordinates among {listing(list(by_name))}")
    frozen = {by_name[str(q)] for q in coordinates}
    rates = {dot(q, k): sp.S.Zero for q in frozen for k in range(1, MAX_ORDER + 1)}
    keep = [i for i, lab in enumerate(reduced.labels) if lab not in frozen]
    return dataclasses.replace(
        reduced, labels=tuple(reduced.labels[i] for i in keep),
        kinds=tuple(reduced.kinds[i] for i in keep),
        orders=tuple(reduced.orders[i] for i in keep),
        equations=[reduced.equations[i].xreplace(rates) for i in keep],
        unknowns=tuple(u for u in reduced.unknowns if u not in rates),
        promoted={k: v for k, v in reduced.promoted.items() if v not in rates},
        algebraic=[e.xreplace(rates) for e in reduced.algebraic],
        coordinates=tuple(q for q in reduced.coordinates if q not in frozen),
        source_constraints={n: e.xreplace(rates)
                            for n, e in reduced.source_constraints.items()},
        velocity_constraints={n: e.xreplace(rates)
                              for n, e in reduced.velocity_constraints.items()},
        rates=tuple(u for u in reduced.rates if u not in rates))


def _check_square(reduced: ReducedSystem, M: sp.Matrix) -> None:
    """Shape and structural rank of ``M`` (bipartite matching rows ↔ unknowns)."""
    lim = reduced.limit.name
    n_r, n_u = M.shape
    if n_r != n_u:
        raise CompileError(
            f"the reduced system of {lim!r} has {n_r} rows for {n_u} unknowns: its rows do "
            "not determine the unknowns", fix="the scaling is not a regular limit; take "
            "limits in stages (staged(el, [quasi_static(), gradient_flow(theta)])) or declare "
            "unknown_scalings")
    graph = nx.Graph()
    rows = [("r", i) for i in range(n_r)]
    graph.add_nodes_from(rows)
    graph.add_nodes_from(("u", j) for j in range(n_u))
    graph.add_edges_from((("r", i), ("u", j)) for i in range(n_r) for j in range(n_u)
                         if M[i, j] != 0)
    match = nx.bipartite.hopcroft_karp_matching(graph, top_nodes=rows)
    missing = [str(reduced.unknowns[j]) for j in range(n_u) if ("u", j) not in match]
    if missing:
        raise CompileError(
            f"the reduced system of {lim!r} is singular: its rows do not determine "
            f"{listing(missing)} (structural rank {n_u - len(missing)} of {n_u})",
            fix="the limit is not regular as declared (e.g. theta -> oo at finite neuron "
            "mass); take limits in stages, staged(el, [quasi_static(), "
            "gradient_flow(theta)]), or use backprop(rate=theta)")


def _parameters_and_signals(reduced: ReducedSystem, layout: ReducedLayout,
                            problem: Problem | None
                            ) -> tuple[list[sp.Symbol], list[sp.Symbol]]:
    """``(parameters, signals)``: the problem's signals when it is given, otherwise every
    free symbol may be named as a signal (its derivatives are then taken)."""
    bases = {base(s) for s in layout.symbols}
    if problem is None:
        cand = sorted(bases, key=str)
        return cand, cand
    sig = list(problem.signals)
    params = sorted((b for b in bases if b not in set(sig)), key=str)
    return params, sig


@register_route("reduced")
def _reduced_route(reduced: ReducedSystem, options: BuildOptions) -> CompiledSystem:
    return compile_reduced(reduced, signals=options.signals,
                           linear_solver=options.linear_solver, name=options.name)


def compile_reduced(reduced: ReducedSystem, *,
                    signals: Mapping[str | sp.Symbol, object] | None = None,
                    name: str | None = None, linear_solver: str | None = None,
                    problem: Problem | EulerLagrange | None = None,
                    check_rank: bool = True) -> CompiledSystem:
    """Compile a reduced (limit) system: eq. (12)-(13), (14), (15)-(17), (20).

    Parameters
    ----------
    reduced
        A :class:`~cognitive_action.derive.limits.ReducedSystem` from ``reduce`` or
        ``staged``.
    signals
        Signals given as SymPy expressions of ``t`` (or numbers), by name; the others
        are constant runtime parameters (their time derivatives are zero).
    name
        For reports (default: ``"<limit name>"``).
    linear_solver
        CasADi ``Linsol`` plugin of the linear-solve node, one of
        :data:`~cognitive_action.compile.system.LINEAR_SOLVERS` (default ``"qr"``).
    problem
        The problem (or its ``EulerLagrange``) the reduction came from. Optional: it
        tells signals from parameters (the parameters then come first, sorted, then the
        constant signals); without it the parameters are every remaining free symbol,
        sorted by name, and any of them may be given in ``signals``.
    check_rank
        Check that ``M`` is structurally nonsingular and nonsingular at a random point.

    Returns
    -------
    CompiledSystem
        ``route="reduced"``; ``unknowns`` returns every unknown of the reduced rows by
        name (the multipliers are the backprop deltas ``δ`` in the backprop limit);
        ``constraints`` returns ``G`` (the reduced system's algebraic constraints, the
        forward pass) and ``Ġ`` along the compiled rates.

    Raises
    ------
    CompileError
        Rows that do not determine the unknowns (non-square, structurally singular, or
        singular at a random point), a coordinate without a rate, an unknown signal or
        linear solver.
    TranslationError
        An expression outside the translator's whitelist.
    """
    if not isinstance(reduced, ReducedSystem):
        raise CompileError(f"compile_reduced needs a ReducedSystem, not a "
                           f"{type(reduced).__name__}",
                           fix="reduce(euler_lagrange(problem), limit), or compile_system for "
                           "the full equations")
    t_start = time.perf_counter()
    lim = reduced.limit.name
    lsolver = linear_solver or "qr"
    if lsolver not in LINEAR_SOLVERS:
        raise CompileError(f"unknown linear solver {lsolver!r} for a reduced system",
                           fix=f"use one of {', '.join(LINEAR_SOLVERS)}")
    if isinstance(problem, EulerLagrange):
        problem = problem.problem
    try:
        M_sym, f_sym = reduced.linear_form()
    except DerivationError as exc:
        raise CompileError(f"the reduced system of {lim!r} is not linear in its unknowns: "
                           f"{exc.message}",
                           fix="the limit produced a nonlinear leading order") from exc
    if check_rank or M_sym.shape[0] != M_sym.shape[1]:
        _check_square(reduced, M_sym)
    layout = reduced_layout(reduced)
    params, sigs = _parameters_and_signals(reduced, layout, problem)
    shim = types.SimpleNamespace(signals=tuple(sigs), parameters=tuple(params))
    sig_exprs, constants, described = signal_values(shim, signals, ca.SX)
    used0 = {str(s) for s in layout.symbols if order(s) == 0}
    for e in sig_exprs.values():
        used0 |= {str(s) for s in sp.sympify(e, strict=True).free_symbols  # safe: strict
                  if s != t and str(s) != "t"}
    const_set = set(constants)
    pnames = tuple([str(s) for s in params if str(s) in used0 and str(s) not in const_set]
                   + [c for c in constants if c in used0])
    if problem is None:
        described = {k: v for k, v in described.items() if v != "constant parameter"}
    states = [str(s) for s in layout.states]
    n_y, n_p = len(states), len(pnames) + len(STABILIZATION_PARAMETERS)
    tt, y, p = argument_symbols(ca.SX, n_y, n_p)
    alpha, beta = p[len(pnames)], p[len(pnames) + 1]
    values: dict[str, object] = {"t": tt}
    for i, s in enumerate(states):
        values[s] = y[i]
    bind_parameters(values, pnames, p)
    bind_signals(values, sig_exprs, Translator(values))
    for s in layout.symbols:  # derivatives of symbols given neither way: constants
        values.setdefault(str(s), 0.0 if order(s) >= 1 else None)
    missing = sorted(n for n, v in values.items() if v is None)
    if missing:
        raise CompileError(f"no value for {listing(missing)} in the reduced system of {lim!r}",
                           fix="pass problem= so that signals and parameters are known")
    tr = Translator(values)

    n_u = len(reduced.unknowns)
    rows, cols, vals = [], [], []
    for i in range(M_sym.shape[0]):
        for j in range(n_u):
            if M_sym[i, j] != 0:
                rows.append(i)
                cols.append(j)
                vals.append(tr(M_sym[i, j]))
    M = sparse_sx(M_sym.shape[0], n_u, rows, cols, vals)
    f = [tr(e) for e in f_sym]

    # algebraic constraints G = 0 and their names; Baumgarte terms on the rows of G
    names_by_expr = {sp.sympify(e, strict=True): n  # safe: strict (no strings)
                     for n, e in reduced.source_constraints.items()}
    alg = list(reduced.algebraic)
    cnames = [names_by_expr.get(sp.sympify(e, strict=True), f"algebraic_{k}")  # safe: strict
              for k, e in enumerate(alg)]
    G = [tr(e) for e in alg]
    # The level of a constraint row is the highest derivative of a coordinate in it:
    # Ġ (lowered rows) gets Ġ + α G = 0, G̈ gets G̈ + 2α Ġ + β² G = 0, Ṅ gets Ṅ + α N = 0.
    coord_set = set(reduced.coordinates)
    state_rates = ca.vertcat(*[y[i] if src == "state" else ca.SX(0)
                               for src, i in (layout.rates[s] for s in layout.states)]) \
        if layout.states else ca.SX(0, 1)
    for i, (lab, kind) in enumerate(zip(reduced.labels, reduced.kinds)):
        src = reduced.source_constraints.get(str(lab))
        if src is None or kind == "coordinate":
            continue
        level = max((order(s) for s in reduced.equations[i].free_symbols
                     if base(s) in coord_set), default=0)
        own = max((order(s) for s in src.free_symbols if base(s) in coord_set), default=0)
        if level - own == 1 and own == 0:
            f[i] = f[i] - alpha * tr(src)
        elif level - own == 2 and own == 0:
            g = tr(src)
            gd = ca.jtimes(g, y, state_rates) + ca.jacobian(g, tt)
            f[i] = f[i] - 2 * alpha * gd - beta * beta * g
        elif level - own == 1 and all(str(s) in values for s in src.free_symbols):
            f[i] = f[i] - alpha * tr(src)               # N' + alpha N, N of states only
    f_vec = ca.vertcat(*f) if f else ca.SX(0, 1)
    mf = ca.Function("mass_forcing", [tt, y, p], [M, f_vec], ["t", "y", "p"], ["M", "f"])

    def rates_of(u_vec):
        parts = [y[i] if src == "state" else u_vec[i]
                 for src, i in (layout.rates[s] for s in layout.states)]
        return ca.vertcat(*parts) if parts else ca.SX(0, 1)

    tm, ym, pm = argument_symbols(ca.MX, n_y, n_p)
    Mm, fm = mf(tm, ym, pm)
    u = ca.solve(Mm, fm, lsolver)
    parts = [ym[i] if src == "state" else u[i]
             for src, i in (layout.rates[s] for s in layout.states)]
    ydot = ca.vertcat(*parts) if parts else ca.MX(0, 1)
    rhs = ca.Function("rhs", [tm, ym, pm], [ydot], ["t", "y", "p"], ["ydot"])
    unknowns = ca.Function("unknowns", [tm, ym, pm], [u], ["t", "y", "p"], ["u"])

    z = ca.SX.sym("z", n_u)
    dae_fn = ca.Function("dae", [tt, y, z, p], [rates_of(z), ca.mtimes(M, z) - f_vec],
                         ["t", "y", "z", "p"], ["ode", "alg"])

    constraints = projection = None
    if G:
        Gv = ca.vertcat(*G)
        gfun = ca.Function("G_parts", [tt, y, p],
                           [Gv, ca.jacobian(Gv, y), ca.jacobian(Gv, tt)])
        Gm, Jm, Gt = gfun(tm, ym, pm)
        constraints = ca.Function("constraints", [tm, ym, pm],
                                  [Gm, ca.mtimes(Jm, ydot) + Gt], ["t", "y", "p"],
                                  ["G", "Gdot"])
        nq = len(layout.coordinates)

        def projection() -> ca.Function:
            return constraint_projection(tt, y, p, nq, Gv, None, lsolver)

    out = CompiledSystem(
        name=name or lim, route="reduced", states=tuple(states),
        coordinates=tuple(str(s) for s in layout.coordinates),
        velocities=tuple(str(s) for s in layout.velocities),
        multiplier_states=tuple(str(s) for s in layout.multiplier_states), parameters=pnames,
        rhs=rhs, unknowns=unknowns, unknown_names=tuple(str(s) for s in reduced.unknowns),
        multipliers=tuple(str(m) for m in reduced.multiplier_unknowns()),
        constraints=constraints, constraint_names=tuple(cnames),
        constraint_kinds=("holonomic",) * len(cnames), projection_builder=projection,
        dae={"function": dae_fn, "z_names": tuple(str(s) for s in reduced.unknowns)},
        vakonomic=bool(layout.multiplier_states), linear_solver=lsolver, build_time=0.0,
        signals=described)
    if check_rank:
        _check_numeric_rank(out, reduced, mf)
    out.build_time = time.perf_counter() - t_start
    out.origin = (reduced, {"signals": signals, "linear_solver": linear_solver, "name": name,
                            "problem": problem})
    return out


def _check_numeric_rank(system: CompiledSystem, reduced: ReducedSystem, mf: ca.Function,
                        seed: int = 12345, tol: float = 1e-10) -> None:
    """``M`` at a random point (states, parameters ~ U(0.5, 1.5), t ~ U(0, 1)) must have
    full numerical rank: a structurally nonsingular ``M`` may still be singular (a
    constraint Jacobian of deficient rank)."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(0.5, 1.5, system.n_states)
    p = np.r_[rng.uniform(0.5, 1.5, len(system.parameters)), 0.0, 0.0]
    M, _ = mf(float(rng.uniform(0, 1)), y, p)
    M = np.asarray(ca.densify(M).full())
    if not np.all(np.isfinite(M)):
        return  # a point outside the domain (e.g. log of a negative): nothing to say
    s = np.linalg.svd(M, compute_uv=False) if M.size else np.zeros(0)
    if s.size and s[-1] <= tol * max(1.0, s[0]):
        raise CompileError(
            f"the reduced system of {reduced.limit.name!r} is singular at a random point "
            f"(smallest singular value {s[-1]:.3g} of {s[0]:.3g}): its rows do not determine "
            f"the unknowns {listing([str(u) for u in reduced.unknowns])}",
            fix="the limit is not regular as declared, or the constraint Jacobian is rank "
            "deficient; take limits in stages or check the constraints")
