"""Reduced systems in the limits of Section 3, derived by asymptotic scaling.

A derived system is linear in its unknowns (eq. 8-10 in mass-matrix form,
``mass_matrix · unknowns = forcing``; unknowns ``q̈``, multipliers, and ``ν̇`` for
non-holonomic multipliers). A :class:`Limit` declares how parameters scale with a small
``ε``: ``p → ε^a · p`` (the remaining ``p`` is the O(1) prefactor, so the reduced
equations keep the original names) after exact relations such as ``θ = γ/m_W`` are
substituted. :func:`reduce` then, for every row ``r_i(ε) = Σ_j M_ij u_j - f_i``,

1. finds the leading power ``ε^{p_i}`` (term by term, ``as_leading_term``) and keeps
   ``ε^{-p_i} r_i`` at ``ε = 0`` (multiplying through and taking the leading order);
2. marks an unknown derivative *degenerate* when it drops out of every coordinate row
   (``q̈`` when the mass of ``q`` vanishes, ``ν̇`` when ``c⁻¹ → 0``); the state below it
   (``q̇``, ``ν``) becomes an algebraic unknown if it still appears (a slaved
   velocity: the weight law), and constraint rows that involve a degenerate unknown are
   lowered to the constraint itself at leading order (``G = 0``: the forward pass);
3. returns a :class:`ReducedSystem`, itself linear in its unknowns, so that limits can
   be taken in stages (``m_x → 0`` gives eq. 12-13, then ``θ → ∞``, ``θ m_W = γ``
   gives eq. 14).

Nothing here knows the answer: backprop (eq. 15-17) is what the verifier checks the
reduced system against, with an independent gradient of the composed loss.

Examples
--------
The paper's 3-neuron chain in the limit ``m_x → 0, m_W → 0, m_x/m_W → 0`` with
``θ = γ/m_W``: the output multiplier is ``-V_x3`` (eq. 17) and the weight law is
gradient descent, ``ẇ_32 = +σ'(a_3) δ_3 x_2/γ`` (the sign that eq. 15 as printed gets
wrong, see ``docs/verify.md``):

>>> import sympy as sp
>>> import cognitive_action as ca
>>> from cognitive_action.declare import symbols as S
>>> theta, = S.parameters("theta")
>>> p = ca.chain(3).problem(weight=sp.exp(theta * S.t), parameters=[theta])
>>> red = reduce(ca.euler_lagrange(p), backprop(rate=theta))
>>> sol = red.solve()
>>> sol[S.symbol("delta_G3")]
-x3 + y3
>>> x2, x3, y3, w32 = (S.symbol(n) for n in ("x2", "x3", "y3", "w3_2"))
>>> V = (sp.tanh(w32 * x2) - y3) ** 2 / 2          # independent: V through x3 = σ(w32 x2)
>>> sp.simplify((sol[S.dot(w32)] + sp.diff(V, w32) / GAMMA).subs(x3, sp.tanh(w32 * x2)))
0
>>> [str(c) for c in red.algebraic]
['-e1 + x1', 'x2 - tanh(w2_1*x1)', 'x3 - tanh(w3_2*x2)']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import sympy as sp

from cognitive_action.declare.network import MASS_W, MASS_X
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.roles import RoleKind, RoleMap
from cognitive_action.declare.symbols import base, dot, order
from cognitive_action.derive.contract import DerivedSystem
from cognitive_action.derive.euler_lagrange import EulerLagrange
from cognitive_action.errors import DeclarationError, DerivationError

__all__ = ["EPSILON", "GAMMA", "Limit", "ReducedSystem", "reduce", "quasi_static",
           "gradient_flow", "backprop", "backprop_limit", "learning_symbols", "leading_order"]

#: The small parameter of the asymptotic scalings.
EPSILON = sp.Symbol("epsilon", positive=True)
#: The learning-rate constant ``γ = θ m_W`` (eq. 14): learning rate ``1/γ``.
GAMMA = sp.Symbol("gamma", positive=True)


@dataclass(frozen=True)
class Limit:
    """A limit declaration: exact relations, then scalings ``p → ε^a p`` with ``ε → 0``.

    Parameters
    ----------
    name
        Name used in reports.
    scalings
        ``{parameter: a}``: the parameter is replaced by ``ε^a ·`` itself (``a > 0``:
        tends to 0; ``a < 0``: tends to infinity).
    relations
        ``{parameter: expression}`` substituted first (e.g. ``θ = γ/m_W``).
    unknown_scalings
        ``{unknown: k}``: the unknown is assumed of order ``ε^k`` (default 0: every
        unknown stays O(1)).
    description
        What the limit means, for reports.
    """

    name: str
    scalings: Mapping[sp.Symbol, sp.Rational | int]
    relations: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    unknown_scalings: Mapping[sp.Symbol, sp.Rational | int] = field(default_factory=dict)
    description: str = ""

    def matched(self, symbols: set[sp.Symbol]) -> Limit:
        """The same limit with its symbols replaced by the system's symbols of the same
        name (``m_x`` declared in a problem file is real, the default ``m_x`` positive:
        SymPy would treat them as different symbols)."""
        by_name = {s.name: s for s in symbols if isinstance(s, sp.Symbol)}
        repl = {k: by_name[k.name] for k in (*self.scalings, *self.relations)
                if k.name in by_name and by_name[k.name] is not k}
        for e in self.relations.values():
            repl |= {s: by_name[s.name] for s in sp.sympify(e).free_symbols  # safe: Expr
                     if s.name in by_name and by_name[s.name] is not s}
        if not repl:
            return self
        return Limit(self.name, {repl.get(k, k): a for k, a in self.scalings.items()},
                     {repl.get(k, k): sp.sympify(e).xreplace(repl)  # safe: Expr
                      for k, e in self.relations.items()},
                     dict(self.unknown_scalings), self.description)

    def substitution(self) -> dict[sp.Symbol, sp.Expr]:
        """The substitution ``{p: ε^a p}`` composed after the relations."""
        scale = {p: EPSILON ** sp.Rational(a) * p for p, a in self.scalings.items()}
        rel = {p: sp.sympify(e).xreplace(scale) for p, e in self.relations.items()}  # safe: Expr
        return {**scale, **rel}


def quasi_static(mass_x: sp.Symbol = MASS_X) -> Limit:
    """``m_x → 0``: instantaneous neurons, eq. (12)-(13) with ``ϖ = exp(θt)``.

    >>> quasi_static().substitution()
    {m_x: epsilon*m_x}
    """
    return Limit("m_x -> 0", {mass_x: 1}, description="massless neurons (eq. 12-13)")


def gradient_flow(rate: sp.Symbol, mass_W: sp.Symbol = MASS_W, gamma: sp.Symbol = GAMMA
                  ) -> Limit:
    """``θ → ∞`` with ``θ m_W = γ`` fixed (so ``m_W → 0``): eq. (13) → eq. (14)."""
    return Limit("theta -> oo, theta*m_W = gamma", {mass_W: 1}, {rate: gamma / mass_W},
                 description="strong dissipation, learning rate 1/gamma (eq. 14)")


def backprop(rate: sp.Symbol | None = None, mass_x: sp.Symbol = MASS_X,
             mass_W: sp.Symbol = MASS_W, gamma: sp.Symbol = GAMMA,
             speed: sp.Symbol | None = None) -> Limit:
    """``m_x → 0, m_W → 0, m_x/m_W → 0`` with ``θ = γ/m_W``: eq. (15)-(17).

    Scalings ``m_x = ε² m_x``, ``m_W = ε m_W``. With ``speed`` (the non-holonomic neuron
    of eq. 19), also ``c = ε⁻² c``: the speed must grow faster than ``θ ~ ε⁻¹``, since
    the derived multiplier equation carries ``c⁻¹(ν̇ + θ ν)`` (``docs/verify.md``).
    """
    scal: dict[sp.Symbol, int] = {mass_x: 2, mass_W: 1}
    if speed is not None:
        scal[speed] = -2
    rel = {rate: gamma / mass_W} if rate is not None else {}
    return Limit("backprop: m_x, m_W, m_x/m_W -> 0" + (", c -> oo" if speed is not None else ""),
                 scal, rel, description="the backprop limit (eq. 15-17, 20 with c -> oo)")


def learning_symbols(problem: Problem) -> tuple[sp.Symbol | None, sp.Expr, sp.Expr]:
    """``(θ, m_x, m_W)`` of a network problem, found by their roles: the rate of
    ``ϖ = exp(θt)`` (None without one), the mass of the neurons and of the weights.

    Raises
    ------
    DeclarationError
        For a problem not built from a network.

    Examples
    --------
    >>> import cognitive_action as ca
    >>> from cognitive_action.declare import symbols as S
    >>> k, a, b = S.parameters("k heavy light")
    >>> learning_symbols(ca.chain(2).problem(weight=sp.exp(k * S.t), mass_x=a, mass_W=b,
    ...                                      parameters=[k]))
    (k, heavy, light)
    """
    net = problem.network
    if net is None:
        raise DeclarationError("the problem was not built from a Network",
                               fix="build it with Network(...).problem(); for other "
                               "problems declare the Limit's scalings yourself")
    rates = problem.roles.symbols(RoleKind.RATE)
    masses = problem.action.masses
    m_w = masses[net.weights[0]] if net.weights else sp.S.One
    return (rates[0] if len(rates) == 1 else None), masses[net.neurons[0]], m_w


def backprop_limit(problem: Problem, gamma: sp.Symbol = GAMMA) -> Limit:
    """:func:`backprop` with the problem's own rate, masses (and speed ``c`` for the
    neurons of eq. 18-19), found by their roles, whatever their names."""
    rate, m_x, m_w = learning_symbols(problem)
    speed = problem.roles.symbols(RoleKind.SPEED)
    return backprop(rate=rate, mass_x=m_x, mass_W=m_w, gamma=gamma,
                    speed=speed[0] if len(speed) == 1 else None)


def leading_order(expr: sp.Expr, eps: sp.Symbol = EPSILON) -> tuple[sp.Rational, sp.Expr]:
    """Leading power and coefficient of ``expr`` as ``ε → 0``: ``expr ~ c ε^p``.

    Works term by term on the top-level sum; terms of the lowest power whose
    coefficients cancel are dropped and the next power is tried.

    Examples
    --------
    >>> m, x = sp.symbols("m x", positive=True)
    >>> leading_order(EPSILON**2 * m + EPSILON * x + EPSILON * x)
    (1, 2*x)
    >>> leading_order(m / (m + EPSILON * x) - 1)
    (1, -x/m)
    """
    if not expr.has(eps):
        return sp.S.Zero, expr
    groups: dict[sp.Rational, list[sp.Expr]] = {}
    for term in sp.Add.make_args(expr):
        if not term.has(eps):
            p, c = sp.S.Zero, term
        else:
            lt = _leading_term(term, eps)
            c, p = lt.as_coeff_exponent(eps)
            if c.has(eps):
                raise DerivationError(f"no power-law leading term for {term} as {eps} -> 0",
                                      fix="declare scalings that give algebraic orders")
        groups.setdefault(p, []).append(c)
    for p in sorted(groups):
        total = sp.Add(*groups[p])
        if total != 0 and sp.expand(total) != 0:
            return p, total
    # Everything cancelled term by term at every order: expand the whole expression.
    lt = _leading_term(sp.together(expr), eps)
    c, p = lt.as_coeff_exponent(eps)
    return p, c


def _leading_term(term: sp.Expr, eps: sp.Symbol) -> sp.Expr:
    try:
        return term.as_leading_term(eps)
    except (NotImplementedError, ValueError, TypeError):
        return sp.series(term, eps, 0, 1).removeO()


@dataclass
class ReducedSystem(DerivedSystem):
    """The leading-order system of a limit, linear in its unknowns (form ``"reduced"`` of
    the :class:`~cognitive_action.derive.contract.DerivedSystem` contract).

    Attributes
    ----------
    limit
        The :class:`Limit` taken.
    labels, kinds
        Row labels (a coordinate, or a constraint name) and kinds (``"coordinate"`` or
        ``"constraint"``).
    orders
        The leading power ``ε^{p_i}`` of each kept row.
    equations
        Leading-order rows ``R_i = 0`` (``ε^{-p_i} r_i`` at ``ε = 0``).
    unknowns
        What the rows determine: remaining accelerations, multipliers and the states
        promoted to algebraic unknowns (slaved velocities, multipliers whose rate
        dropped out).
    promoted
        The promoted states, keyed by the degenerate derivative they replace.
    algebraic
        Position-level constraints the reduced system imposes (e.g. the forward pass
        ``G = 0``), at leading order.
    coordinates
        Coordinate symbols (to know which rows are coordinate rows in later stages).
    source_constraints, velocity_constraints
        ``{name: G}`` and ``{name: Ġ}`` (``N`` for non-holonomic constraints) of the
        original problem at leading order, to lower constraint rows in later stages.
    rates
        The unknowns that are still rates of states (``q̈``, ``ν̇``), as opposed to
        multipliers and promoted states.
    problem
        The problem the limit was taken of (None for a hand-built system).
    roles
        The roles of the source system's symbols (multipliers stay multipliers, a
        promoted ``q̇`` stays the velocity of ``q``).
    """

    limit: Limit
    labels: tuple
    kinds: tuple[str, ...]
    orders: tuple[sp.Rational, ...]
    equations: list[sp.Expr]
    unknowns: tuple[sp.Symbol, ...]
    promoted: dict[sp.Symbol, sp.Symbol]
    algebraic: list[sp.Expr]
    coordinates: tuple[sp.Symbol, ...]
    source_constraints: dict[str, sp.Expr]
    velocity_constraints: dict[str, sp.Expr]
    rates: tuple[sp.Symbol, ...] = ()
    problem: Problem | None = field(default=None, repr=False)
    roles: RoleMap = field(default_factory=RoleMap, repr=False)

    form: ClassVar[str] = "reduced"

    @property
    def states(self) -> tuple[sp.Symbol, ...]:
        """What is integrated: coordinates that have a rate among the unknowns, their
        velocities below that rate, then multiplier states (``ν`` whose ``ν̇`` is an
        unknown)."""
        top = {base(u): u for u in self.unknowns if order(u) >= 1}
        coords = [q for q in self.coordinates if q in top]
        others = [b for b in top if b not in set(self.coordinates)]
        return (tuple(coords) + tuple(dot(q, j) for q in coords for j in range(1, order(top[q])))
                + tuple(dot(b, j) for b in others for j in range(order(top[b]))))

    def linear_form(self) -> tuple[sp.Matrix, sp.Matrix]:
        """``(M, f)`` with ``M · unknowns = f`` equivalent to :attr:`equations`."""
        us = list(self.unknowns)
        zero = dict.fromkeys(us, sp.S.Zero)
        M = sp.zeros(len(self.equations), len(us))
        f = sp.zeros(len(self.equations), 1)
        for i, e in enumerate(self.equations):
            for j, u in enumerate(us):
                c = sp.diff(e, u)
                if c.has(*us):
                    raise DerivationError(f"reduced row {self.labels[i]} is not linear in {u}",
                                          fix="the limit produced a nonlinear leading order")
                M[i, j] = c
            f[i] = -e.xreplace(zero)
        return M, f

    def solve(self, simplify: bool = False) -> dict[sp.Symbol, sp.Expr]:
        """Solve the leading-order rows for the unknowns (small systems).

        Raises
        ------
        DerivationError
            If the rows do not determine the unknowns (the scaling is not a regular
            limit: declare ``unknown_scalings`` or another order of limits).
        """
        M, f = self.linear_form()
        if M.shape[0] != M.shape[1]:
            raise DerivationError(
                f"the limit {self.limit.name!r} leaves {M.shape[0]} equations for "
                f"{M.shape[1]} unknowns", fix="the scaling is not a regular limit; declare "
                "unknown_scalings (e.g. multipliers of order 1/epsilon) or change the scalings")
        try:
            x = M.LUsolve(f)
        except (ValueError, ZeroDivisionError) as exc:
            raise DerivationError(f"the reduced system of {self.limit.name!r} is singular",
                                  fix="the limit may not be regular (e.g. m_W -> 0 without "
                                  "theta = gamma/m_W) or the constraint Jacobian is rank "
                                  "deficient") from exc
        out = {u: x[i] for i, u in enumerate(self.unknowns)}
        if simplify:
            out = {u: sp.simplify(v) for u, v in out.items()}
        return out


def _integral(u: sp.Symbol) -> sp.Symbol | None:
    """The state whose derivative ``u`` is (``q̈ → q̇``, ``ν̇ → ν``); None for multipliers."""
    k = order(u)
    return dot(base(u), k - 1) if k >= 1 else None


def _rows_of(system: EulerLagrange | ReducedSystem) -> tuple:
    """"Rows of the linear form with everything :func:`reduce` needs."""
    if isinstance(system, EulerLagrange):
        coords = system.coordinates
        labels = system.mass_matrix.row_labels
        kinds = tuple("coordinate" if lab in set(coords) else "constraint" for lab in labels)
        D = system.time_derivative()
        cons = {c.name: c.expr for c in system.problem.constraints}
        vcons = {c.name: D(c.expr) if c.kind == "holonomic" else c.expr
                 for c in system.problem.constraints}
        rates = tuple(u for u in system.unknowns if _integral(u) is not None)
        return (labels, kinds, system.unknowns, system.mass_matrix.rows, system.forcing,
                coords, cons, vcons, rates, system.problem, system.roles)
    M, f = system.linear_form()
    rows = [{u: M[i, j] for j, u in enumerate(system.unknowns) if M[i, j] != 0}
            for i in range(M.shape[0])]
    return (system.labels, system.kinds, system.unknowns, rows, list(f), system.coordinates,
            system.source_constraints, system.velocity_constraints, system.rates,
            system.problem, system.roles)


def reduce(system: EulerLagrange | ReducedSystem, limit: Limit) -> ReducedSystem:
    """Take the leading-order limit of a derived system (see the module docstring).

    Parameters
    ----------
    system
        An :class:`~cognitive_action.derive.euler_lagrange.EulerLagrange` (the
        mass-matrix form of any problem) or a :class:`ReducedSystem` (staged limits).
    limit
        The :class:`Limit` declaration.

    Returns
    -------
    ReducedSystem

    Raises
    ------
    DeclarationError
        If a scaled parameter does not occur in the system.
    """
    (labels, kinds, unknowns, rows, forcing, coords, cons, vcons, rates, problem,
     roles) = _rows_of(system)
    present = set().union(*(sp.Add(*r.values(), f).free_symbols for r, f in zip(rows, forcing)))
    present |= set().union(*(c.free_symbols for c in cons.values()), set())
    limit = limit.matched(present)
    sub = limit.substitution()
    uscale = {u: EPSILON ** sp.Rational(k) for u, k in limit.unknown_scalings.items()}
    missing = [p for p in list(limit.scalings) + list(limit.relations) if p not in present]
    if missing:
        raise DeclarationError(
            f"the limit {limit.name!r} scales {', '.join(map(str, missing))}, which does not "
            "occur in the system", fix="pass the problem's own symbols (e.g. rate=theta)")

    def row_expr(r: dict, f: sp.Expr) -> sp.Expr:
        terms = [c.xreplace(sub) * uscale.get(u, 1) * u for u, c in r.items()]
        terms += [-a.xreplace(sub) for a in sp.Add.make_args(f)]
        return sp.Add(*terms)

    def lead(e: sp.Expr) -> tuple[sp.Rational, sp.Expr]:
        p, c = leading_order(e)
        return p, (sp.expand(c) if c.has(*unknowns) else c)

    led = [lead(row_expr(r, f)) for r, f in zip(rows, forcing)]
    eqs = [e for _, e in led]
    in_coord = set().union(*(e.free_symbols for e, k in zip(eqs, kinds) if k == "coordinate"),
                           set())
    degenerate = {u for u in rates if u not in in_coord}
    velocities = {dot(q) for q in coords}
    out_labels, out_kinds, out_orders, out_eqs = [], [], [], []
    for lab, k, (p, e) in zip(labels, kinds, led):
        if k == "constraint" and e.free_symbols & degenerate:
            # Lower the row by one level: G̈ → Ġ (holonomic), Ṅ → N (non-holonomic).
            p, e = lead(vcons[str(lab)].xreplace(sub))
            if not e.free_symbols & velocities:
                continue  # nothing left at velocity level: the position level is algebraic
            k = "velocity"
        out_labels.append(lab)
        out_kinds.append(k)
        out_orders.append(p)
        out_eqs.append(e)
    kept_syms = set().union(*(e.free_symbols for e in out_eqs), set())
    promoted = {u: _integral(u) for u in unknowns
                if u in degenerate and _integral(u) in kept_syms}
    new_unknowns = tuple(u for u in unknowns if u not in degenerate) + tuple(promoted.values())
    algebraic = []
    for expr in cons.values():
        e = leading_order(expr.xreplace(sub))[1]
        if not e.free_symbols & velocities:
            algebraic.append(e)
    new_cons = {n: leading_order(e.xreplace(sub))[1] for n, e in cons.items()}
    new_vcons = {n: leading_order(e.xreplace(sub))[1] for n, e in vcons.items()}
    return ReducedSystem(limit=limit, labels=tuple(out_labels), kinds=tuple(out_kinds),
                         orders=tuple(out_orders), equations=out_eqs, unknowns=new_unknowns,
                         promoted=promoted, algebraic=algebraic, coordinates=tuple(coords),
                         source_constraints=new_cons, velocity_constraints=new_vcons,
                         rates=tuple(u for u in rates if u not in degenerate),
                         problem=problem, roles=roles)


def staged(system: EulerLagrange, limits: Sequence[Limit]) -> ReducedSystem:
    """Take several limits one after the other (e.g. eq. 12-13, then eq. 14)."""
    out: EulerLagrange | ReducedSystem = system
    for lim in limits:
        out = reduce(out, lim)
    if not isinstance(out, ReducedSystem):
        raise DeclarationError("no limit given", fix="pass at least one Limit")
    return out
