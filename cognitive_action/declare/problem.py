"""Actions, constraints and problems: the declarative "what" of a learning law.

A :class:`Problem` is the action functional of eq. (5)/(7),

    A = ∫ ϖ(t) ½ q̇ᵀ M(t, q) q̇ + F(t, q, q̇, q̈) dt,

with ``M = diag(m_x, …, m_W, …)`` in the paper, subject to holonomic constraints
``G(t, q) = 0`` (eq. 4, 6) and non-holonomic constraints ``G(t, q, q̇) = 0``
(eq. 18-19). Expressions are SymPy expressions in jet symbols
(:mod:`cognitive_action.declare.symbols`) or in function form (``q(t)``); they are
validated here, so that a misspelt or undeclared symbol is reported before any
derivation starts.

Examples
--------
>>> import sympy as sp
>>> from cognitive_action.declare import symbols as S
>>> q1, q2 = S.coordinates("q1 q2")
>>> m, g, L = S.parameters("m g L")
>>> pendulum = Problem(
...     Action([q1, q2], masses=m, lagrangian=m * g * q1),
...     [Constraint(q1**2 + q2**2 - L**2, name="rod")],
...     parameters=[m, g, L])
>>> [c.kind for c in pendulum.constraints]
['holonomic']
>>> Problem(Action([q1], masses=m), [Constraint(q1 - L)], parameters=[m])
Traceback (most recent call last):
...
cognitive_action.errors.DeclarationError: constraint G1 uses undeclared symbol(s) L. \
Fix: declare them as parameters, signals or coordinates (or correct the spelling)
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sympy as sp

from cognitive_action.declare.roles import Role, RoleKind, RoleMap, generated_names
from cognitive_action.declare.symbols import MAX_ORDER, Jets, base, dot, order, t, to_jet_form
from cognitive_action.errors import DeclarationError, ShapeError

if TYPE_CHECKING:
    from cognitive_action.declare.network import Network

__all__ = ["Action", "Constraint", "Problem", "NONHOLONOMIC_RULES"]

#: How non-holonomic constraints enter the Euler-Lagrange equations.
#: ``"vakonomic"``: the multiplier rule on the action (the paper's derivation of eq. 20:
#: ``- μ G_q + d/dt(μ G_q̇)``); ``"dalembert"``: Lagrange-d'Alembert (Chetaev)
#: constraint forces ``- μ G_q̇``, the rule of classical mechanics and of
#: ``sympy.physics.mechanics``. The two agree on holonomic constraints and differ on
#: genuinely non-integrable ones (the knife edge, the rolling disc).
NONHOLONOMIC_RULES = ("vakonomic", "dalembert")


def _as_expr(value: object, what: str) -> sp.Expr:
    if isinstance(value, str):
        raise DeclarationError(
            f"{what} is the string {value!r}, not an expression",
            fix="build expressions from declared symbols; problem files parse strings safely "
            "with cognitive_action.problem_files",
        )
    try:
        expr = sp.sympify(value, strict=True)  # safe: strict, non-string input only
    except (sp.SympifyError, TypeError) as exc:
        raise DeclarationError(f"{what} is not a SymPy expression: {value!r}",
                               fix="use SymPy expressions or numbers") from exc
    if isinstance(expr, sp.MatrixBase) or not isinstance(expr, sp.Expr):
        raise ShapeError(f"{what} must be a scalar expression, got {type(expr).__name__}",
                         fix="give one scalar expression per entry")
    return to_jet_form(expr)


@dataclass(frozen=True)
class Constraint:
    """A constraint ``G(t, q[, q̇]) = 0``.

    Parameters
    ----------
    expr
        The constraint function ``G``. Its kind is decided by what it depends on:
        ``"holonomic"`` without velocities, ``"nonholonomic"`` with them.
    name
        Name used in reports (``G1``, ``G2``, … when omitted).
    kind
        Set by :class:`Problem` (inferred; a kind given here must agree).
    symbols
        The free symbols of ``expr`` when whoever built it knows them without a walk (a
        :class:`~cognitive_action.declare.network.Network` knows those of its net inputs):
        :class:`Problem` then checks this set instead of scanning ``expr``, which must be
        in jet form. None (the default): ``expr`` is scanned.
    """

    expr: sp.Expr
    name: str | None = None
    kind: str = field(default="", compare=False)
    symbols: frozenset[sp.Symbol] | None = field(default=None, compare=False, repr=False)


@dataclass
class Action:
    """The action ``∫ ϖ(t) ½ q̇ᵀ M q̇ + F dt`` (eq. 5, 7).

    Parameters
    ----------
    coordinates
        Generalized coordinates (jet symbols or functions of ``t``).
    masses
        Diagonal of ``M``: one expression for all coordinates, a sequence aligned with
        ``coordinates``, or a mapping ``{coordinate: mass}`` (missing ones get no
        kinetic term). Exclusive with ``mass_matrix``.
    mass_matrix
        A full ``M(t, q)`` for mechanical systems.
    weight
        The time weight ``ϖ(t) > 0`` (``exp(θ t)`` in the paper). It multiplies the
        kinetic term only; write it into ``lagrangian`` where ``F`` needs it too
        (the paper's ``F = -e^{θt} V``).
    lagrangian
        ``F(t, q, q̇, q̈)``.
    """

    coordinates: Sequence[sp.Symbol]
    masses: object = None
    mass_matrix: object = None
    weight: object = 1
    lagrangian: object = 0

    def __post_init__(self) -> None:
        coords = [c if isinstance(c, sp.Symbol) else to_jet_form(c) for c in self.coordinates]
        for c in coords:
            if not isinstance(c, sp.Symbol) or order(c) != 0:
                raise DeclarationError(f"coordinate {c} is not a plain symbol",
                                       fix="declare coordinates with coordinates('q1 q2')")
        coord_set = set(coords)
        if len(coord_set) != len(coords):
            raise DeclarationError("a coordinate is declared twice",
                                   fix="give each coordinate once")
        if not coords:
            raise DeclarationError("an action needs at least one coordinate",
                                   fix="declare coordinates with coordinates('q1 q2')")
        self.coordinates = tuple(coords)
        # kept for Problem, with the tuple it was made from (~10⁵ hashes in a network)
        self._coordinate_set = (self.coordinates, frozenset(coord_set))
        n = len(coords)
        if self.masses is not None and self.mass_matrix is not None:
            raise DeclarationError("both masses and mass_matrix given",
                                   fix="give masses (diagonal) or mass_matrix, not both")
        if self.mass_matrix is not None:
            M = sp.Matrix(self.mass_matrix)
            if M.shape != (n, n):
                raise ShapeError(f"mass_matrix is {M.shape[0]}x{M.shape[1]} but there are "
                                 f"{n} coordinates", fix=f"give a {n}x{n} matrix")
            if (M - M.T).applyfunc(sp.simplify) != sp.zeros(n, n):
                raise DeclarationError("mass_matrix is not symmetric",
                                       fix="only the symmetric part of M enters q̇ᵀ M q̇")
            self.mass_matrix = M.applyfunc(lambda e: _as_expr(e, "a mass_matrix entry"))
            diag = {}
        elif self.masses is None:
            diag = {}
        elif isinstance(self.masses, Mapping) and _plain_masses(self.masses, coord_set):
            diag = dict(self.masses)  # copies the stored hashes: ~10⁵ keys in a network
        elif isinstance(self.masses, Mapping):
            diag = {}
            seen: dict[int, sp.Expr] = {}  # one mass object is usually shared by many
            for k, v in self.masses.items():
                k = k if isinstance(k, sp.Symbol) else to_jet_form(k)
                if k not in coord_set:
                    raise DeclarationError(f"masses names {k}, which is not a coordinate",
                                           fix=f"use coordinates among {_short(coords)}")
                if id(v) not in seen:
                    seen[id(v)] = _as_expr(v, f"mass of {k}")
                diag[k] = seen[id(v)]
        elif isinstance(self.masses, (list, tuple)):
            if len(self.masses) != n:
                raise ShapeError(f"{len(self.masses)} masses for {n} coordinates",
                                 fix="give one mass per coordinate, or one mass for all")
            diag = {c: _as_expr(m, f"mass of {c}") for c, m in zip(coords, self.masses)}
        else:
            m = _as_expr(self.masses, "mass")
            diag = dict.fromkeys(coords, m)
        self.masses = diag
        self.weight = _as_expr(self.weight, "the time weight ϖ(t)")
        self.lagrangian = _as_expr(self.lagrangian, "the Lagrangian F")

    @property
    def kinetic(self) -> sp.Expr:
        """``½ q̇ᵀ M q̇`` in jet symbols."""
        if self.mass_matrix is not None:
            v = sp.Matrix([dot(c) for c in self.coordinates])
            return sp.expand((v.T * self.mass_matrix * v)[0, 0] / 2)
        return sp.Add(*(m * dot(c) ** 2 / 2 for c, m in self.masses.items()))

    @property
    def density(self) -> sp.Expr:
        """The integrand ``ϖ ½ q̇ᵀ M q̇ + F``."""
        return self.weight * self.kinetic + self.lagrangian


def _plain_masses(masses: Mapping, coord_set: set[sp.Symbol]) -> bool:
    """Whether ``masses`` is a dict ``{coordinate symbol: expression}`` that
    :class:`Action` would keep as it is (every key a declared coordinate, every mass
    already an expression in jet form), checked with set operations and once per distinct
    mass object."""
    if type(masses) is not dict or not all(isinstance(k, sp.Symbol) for k in masses):
        return False
    if set(masses) - coord_set:  # set(dict) reuses the stored hashes
        return False
    distinct = {id(v): v for v in masses.values()}
    try:
        return all(_as_expr(v, "a mass") is v for v in distinct.values())
    except (DeclarationError, ShapeError):
        return False  # the general path reports it with the coordinate's name


_WHERE_ALLOWED = ("time weights and masses may depend on t and parameters (a mass matrix also "
                  "on coordinates); constraints on coordinates and, if non-holonomic, "
                  "velocities; F on derivatives up to order 2")


def _short(symbols: Iterable[sp.Symbol], k: int = 6) -> str:
    s = [str(x) for x in symbols]
    return ", ".join(s[:k]) + (", …" if len(s) > k else "")


class Problem:
    """A learning law: an action and its constraints.

    Parameters
    ----------
    action
        The :class:`Action`.
    constraints
        :class:`Constraint` objects or bare expressions ``G`` (meaning ``G = 0``).
    signals
        External signals of time that may appear (inputs ``e``, targets ``y``).
    parameters
        Constant symbols that may appear (masses, ``θ``, ``c``, targets held fixed).
    nonholonomic
        Rule for non-holonomic constraints, one of :data:`NONHOLONOMIC_RULES`.
    name
        A name for reports.
    network
        The :class:`~cognitive_action.declare.network.Network` the problem was built
        from (set by ``Network.problem``), or None.
    roles
        Refined kinds of parameters, ``{symbol: RoleKind}`` (``RoleKind.SPEED`` for
        the speed ``c`` of eq. 18-19, ``RoleKind.MASS``, ``RoleKind.RATE``). Masses
        (a parameter that is the mass of a coordinate) and the rate ``ϖ̇/ϖ`` of the time
        weight (``θ`` in ``exp(θt)``) are recognised without being told.
    metadata
        Free-form information for reports.

    Raises
    ------
    DeclarationError
        For undeclared symbols (with a suggestion for misspellings), constraints that
        involve no coordinate or second derivatives, a time weight that depends on
        coordinates, names declared twice, a declared name that the derivation gives to
        a multiplier (``delta_G3`` beside a constraint ``G3``).
    """

    def __init__(self, action: Action, constraints: Iterable[Constraint | sp.Expr] = (), *,
                 signals: Iterable[sp.Symbol] = (), parameters: Iterable[sp.Symbol] = (),
                 nonholonomic: str = "vakonomic", name: str = "problem",
                 network: Network | None = None,
                 roles: Mapping[sp.Symbol, RoleKind | str] | None = None,
                 metadata: Mapping[str, object] | None = None) -> None:
        if not isinstance(action, Action):
            raise DeclarationError(f"action must be an Action, got {type(action).__name__}",
                                   fix="build it with Action(coordinates, masses=..., ...)")
        if nonholonomic not in NONHOLONOMIC_RULES:
            raise DeclarationError(f"unknown non-holonomic rule {nonholonomic!r}",
                                   fix=f"use one of {NONHOLONOMIC_RULES}")
        self.action = action
        self.name = name
        self.nonholonomic = nonholonomic
        self.metadata = dict(metadata or {})
        if network is None and "network" in self.metadata:  # the older spelling
            network = self.metadata.pop("network")
        self.network = network
        self.coordinates: tuple[sp.Symbol, ...] = action.coordinates
        self.signals = tuple(to_jet_form(s) for s in signals)
        self.parameters = tuple(parameters)
        self._check_names()
        self._normalize_action()
        self._constants = set(self.parameters) | {t} | {
            dot(s, k) for s in self.signals for k in range(MAX_ORDER + 1)}
        made = getattr(action, "_coordinate_set", (None, None))
        self._coordinate_set: frozenset[sp.Symbol] = made[1] if made[0] is self.coordinates \
            else frozenset(self.coordinates)
        self._configuration = (self._constants, self._coordinate_set)
        by_name = {q.name: q for q in self.coordinates}
        self._velocities = Jets(by_name, 1)
        self._lagrangian = (*self._configuration, self._velocities, Jets(by_name, 2))
        self.constraints = tuple(self._constraint(c, i) for i, c in enumerate(constraints))
        names = [c.name for c in self.constraints]
        if len(set(names)) != len(names):
            raise DeclarationError("two constraints have the same name",
                                   fix="give each constraint a distinct name")
        self._check_generated_names(names)
        self._declared_roles = self._refined_roles(roles or {})
        self._check_expression(action.weight, "the time weight ϖ(t)", allow=self._constants)
        checked: set[int] = set()  # one mass object is usually shared by many coordinates
        for c, m in action.masses.items():
            if id(m) not in checked:
                self._check_expression(m, f"the mass of {c}", allow=self._constants)
                checked.add(id(m))
        if action.mass_matrix is not None:
            for e in action.mass_matrix:
                self._check_expression(e, "the mass matrix", allow=self._configuration)
        self._check_expression(action.lagrangian, "the Lagrangian F", allow=self._lagrangian)

    # -- views ---------------------------------------------------------------------------
    @property
    def coordinate_set(self) -> frozenset[sp.Symbol]:
        """The coordinates as a set, for membership tests (made once: a dense network has
        ~10⁵ of them).

        >>> from cognitive_action.declare import symbols as S
        >>> q, = S.coordinates("q")
        >>> q in Problem(Action([q], masses=1)).coordinate_set
        True
        """
        return self._coordinate_set

    @property
    def holonomic(self) -> tuple[Constraint, ...]:
        """The holonomic constraints ``G(t, q) = 0``."""
        return tuple(c for c in self.constraints if c.kind == "holonomic")

    @property
    def nonholonomic_constraints(self) -> tuple[Constraint, ...]:
        """The non-holonomic constraints ``G(t, q, q̇) = 0``."""
        return tuple(c for c in self.constraints if c.kind == "nonholonomic")

    @functools.cached_property
    def roles(self) -> RoleMap:
        """The role of every declared symbol and of its time derivatives.

        Coordinates and signals with their jets (``q``, ``q̇``, …), parameters,
        masses (parameters that are the mass of a coordinate), the rate ``ϖ̇/ϖ`` of the
        time weight when it is one parameter (``θ`` in ``exp(θt)``), and the kinds given
        in ``roles=``.

        >>> from cognitive_action.declare import symbols as S
        >>> x, = S.coordinates("x")
        >>> m, theta = S.parameters("m theta")
        >>> p = Problem(Action([x], masses=m, weight=sp.exp(theta * S.t)),
        ...             parameters=[m, theta])
        >>> [(str(s), str(r.kind)) for s, r in p.roles.items()]
        [('x', 'coordinate'), ('m', 'mass'), ('theta', 'rate')]
        >>> p.roles[S.dot(x)].describe()
        'velocity of x'
        """
        out: dict[sp.Symbol, Role] = {}
        for kind, group in ((RoleKind.COORDINATE, self.coordinates),
                            (RoleKind.SIGNAL, self.signals)):
            for s in group:
                out[s] = Role(kind)
        weighs: dict[sp.Symbol, list[sp.Symbol]] = {}
        for c, m in self.action.masses.items():
            if isinstance(m, sp.Symbol):
                weighs.setdefault(m, []).append(c)
        for p in self.parameters:
            kind = self._declared_roles.get(p)
            if kind is None:
                kind = RoleKind.MASS if p in weighs else \
                    RoleKind.RATE if p == self._rate_parameter() else RoleKind.PARAMETER
            out[p] = Role(kind, of=tuple(weighs[p]) if kind == RoleKind.MASS and p in weighs
                          else None)
        return RoleMap(out)

    def _rate_parameter(self) -> sp.Symbol | None:
        """``θ`` when ``ϖ̇/ϖ = θ`` is one declared parameter (``ϖ = exp(θ t)``)."""
        w = self.action.weight
        if w == 1 or not isinstance(w, sp.Basic) or w.free_symbols - set(self.parameters) \
                - {t}:
            return None
        rate = sp.simplify(sp.diff(w, t) / w)
        return rate if isinstance(rate, sp.Symbol) and rate in set(self.parameters) else None

    def __repr__(self) -> str:
        return (f"Problem({self.name!r}: {len(self.coordinates)} coordinates, "
                f"{len(self.holonomic)} holonomic and {len(self.nonholonomic_constraints)} "
                f"non-holonomic constraints)")

    # -- validation ----------------------------------------------------------------------
    def _rename(self, expr: sp.Expr, symbols: Iterable[sp.Symbol] | None = None
                ) -> sp.Expr:
        """Replace symbols that carry a declared name but other assumptions (``Symbol('m')``
        for the declared real ``m``) by the declared symbol: SymPy would treat them as
        different symbols. ``symbols``: the free symbols of ``expr``, when known."""
        if not isinstance(expr, sp.Basic):
            return expr
        repl = {}
        by_name = self._by_name
        for s in (expr.free_symbols if symbols is None else symbols):
            if by_name.get(s.name) is s:  # a declared symbol itself
                continue
            b = base(s)
            declared = self._by_name.get(b.name)
            if declared is None:
                continue
            target = dot(declared, order(s)) if order(s) else declared
            if target is not s and target != s:
                repl[s] = target
        return expr.xreplace(repl) if repl else expr

    def _normalize_action(self) -> None:
        self._by_name = {s.name: s for s in self._declared}
        a = self.action
        a.weight = self._rename(a.weight)
        a.lagrangian = self._rename(a.lagrangian)
        distinct = {id(m): m for m in a.masses.values()}  # usually one object, shared
        renamed = {i: self._rename(m) for i, m in distinct.items()}
        if any(renamed[i] is not m for i, m in distinct.items()):
            for c, m in a.masses.items():
                a.masses[c] = renamed[id(m)]
        if a.mass_matrix is not None:
            a.mass_matrix = a.mass_matrix.applyfunc(self._rename)
        if a.weight == 0 or (a.weight.is_number and not a.weight > 0):
            raise DeclarationError(f"the time weight ϖ(t) = {a.weight} is not positive",
                                   fix="use a positive weight such as 1 or exp(theta*t)")
        negative = {id(m) for m in renamed.values() if m.is_number and m < 0}
        for c, m in (a.masses.items() if negative else ()):
            if id(m) in negative:
                raise DeclarationError(f"the mass of {c} is negative ({m})",
                                       fix="masses are positive (zero for no kinetic term)")

    def _check_names(self) -> None:
        seen: dict[sp.Symbol, str] = {}
        groups = [("coordinate", self.coordinates), ("signal", self.signals),
                  ("parameter", self.parameters)]
        coords = self.coordinates
        if all(isinstance(s, sp.Symbol) and order(s) == 0 and s.name != t.name
               for s in coords):  # ~10⁵ coordinates in a network: one dict, one pass
            seen = dict.fromkeys(coords, "coordinate")
            if len(seen) == len(coords):
                groups = groups[1:]
            else:
                seen = {}
        for what, group in groups:
            for s in group:
                if not isinstance(s, sp.Symbol) or order(s) != 0 or \
                        (s.name == t.name and s == t):  # only a symbol named t can be t
                    raise DeclarationError(f"{what} {s} is not a plain name",
                                           fix="declare it with the symbols helpers")
                if s in seen:
                    twice = (f"{s} is declared twice as {what}" if seen[s] == what
                             else f"{s} is declared both as {seen[s]} and as {what}")
                    raise DeclarationError(twice, fix="give each name one role, once")
                seen[s] = what
        self._declared = seen

    def _check_generated_names(self, constraint_names: list[str]) -> None:
        """Refuse declared names that the derivation gives to multipliers."""
        generated = generated_names(constraint_names)
        for s, what in self._declared.items():
            if s.name in generated:
                c = generated[s.name]
                raise DeclarationError(
                    f"the {what} {s.name!r} has the name the derivation gives a multiplier "
                    f"of constraint {c} (lambda_, delta_, mu_, nu_ + the constraint's name)",
                    fix=f"rename the {what} (e.g. {s.name.replace('_', '', 1)!r}) or the "
                    f"constraint {c}")

    def _refined_roles(self, roles: Mapping[sp.Symbol, RoleKind | str]
                       ) -> dict[sp.Symbol, RoleKind]:
        out = {}
        params = set(self.parameters)
        for s, k in roles.items():
            try:
                kind = RoleKind(k)
            except ValueError:
                raise DeclarationError(
                    f"unknown role {k!r} for {s}",
                    fix="use RoleKind.PARAMETER, MASS, RATE or SPEED") from None
            if s not in params or kind not in (RoleKind.PARAMETER, RoleKind.MASS,
                                                RoleKind.RATE, RoleKind.SPEED):
                raise DeclarationError(
                    f"roles= refines parameters only; {s} as {kind} is not one",
                    fix="declare it under parameters= and give it a constant kind "
                    "(parameter, mass, rate or speed)")
            out[s] = kind
        return out

    def _check_expression(self, expr: sp.Expr, what: str,
                          allow: set[sp.Symbol] | tuple[set[sp.Symbol], ...],
                          symbols: set[sp.Symbol] | None = None) -> None:
        allowed = allow if isinstance(allow, tuple) else (allow,)
        bad = expr.free_symbols if symbols is None else symbols
        for a in allowed:  # set differences first: a network's constraints have ~10⁵ symbols
            bad = bad - a if isinstance(a, (set, frozenset)) else {s for s in bad if s not in a}
            if not bad:
                return
        known = [str(s) for s in self._declared] + ["t"]
        misplaced, undeclared = [], []
        for s in sorted(bad, key=str):
            b = base(s)
            if b in self._declared and self._declared[b] == "coordinate":
                kind = "the coordinate" if order(s) == 0 else \
                    f"a derivative of order {order(s)} of the coordinate {b}:"
                misplaced.append(f"{kind} {s} is not allowed in {what}")
            elif b in self._declared:
                misplaced.append(f"{b} is a {self._declared[b]} and cannot appear in {what} "
                                 f"as {s}")
            else:
                close = difflib.get_close_matches(str(s), known, n=1, cutoff=0.5)
                undeclared.append(f"{s}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        if undeclared:
            msg = f"{what} uses undeclared symbol(s) {', '.join(undeclared)}"
            if misplaced:
                msg += "; also " + "; ".join(misplaced)
            raise DeclarationError(msg, fix="declare them as parameters, signals or "
                                   "coordinates (or correct the spelling)")
        raise DeclarationError("; ".join(misplaced),
                               fix=f"remove them from {what}: " + _WHERE_ALLOWED)

    def _constraint(self, c: Constraint | sp.Expr, i: int) -> Constraint:
        if not isinstance(c, Constraint):
            c = Constraint(c)
        name = c.name or f"G{i + 1}"
        if c.symbols is None:
            expr = self._rename(_as_expr(c.expr, f"constraint {name}"))
            symbols = expr.free_symbols
        else:  # the builder knows the symbols (a network's constraints): no scan
            expr, symbols = c.expr, c.symbols
            renamed = self._rename(expr, symbols - self._coordinate_set)  # set operation
            if renamed is not expr:
                expr, symbols = renamed, renamed.free_symbols
        self._check_expression(expr, f"constraint {name}",
                               allow=(*self._configuration, self._velocities),
                               symbols=symbols)
        velocities = self._velocities
        others = symbols - self._coordinate_set  # set operations: ~10⁵ symbols in a network
        moving = {s for s in others if s in velocities}
        used = (symbols - others) | moving
        if not used:
            raise DeclarationError(
                f"constraint {name} = {expr} involves no coordinate",
                fix="a constraint must restrict the coordinates; move conditions on "
                "parameters or signals elsewhere")
        kind = "nonholonomic" if moving else "holonomic"
        if c.kind and c.kind != kind:
            raise DeclarationError(f"constraint {name} was declared {c.kind} but is {kind}",
                                   fix="drop the kind, it is inferred from the expression")
        return Constraint(expr, name, kind, frozenset(symbols))
