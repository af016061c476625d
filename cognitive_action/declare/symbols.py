"""Time, coordinates, signals and their time derivatives as plain SymPy symbols.

cognitive_action works with *jet symbols*: a time-dependent quantity ``q`` is the
plain symbol ``q`` and its derivatives are the symbols ``q_dot``, ``q_ddot``,
``q_d3``, ``q_d4``. Differentiation with respect to a jet symbol is then an ordinary
partial derivative, and the total time derivative is the chain rule over the jet
(``cognitive_action.derive.calculus``). Expressions written in function form
(``q(t)``, ``Derivative(q(t), t)``, as ``sympy.physics.mechanics.dynamicsymbols``
produces them) are converted by :func:`to_jet_form`.

Examples
--------
>>> from cognitive_action.declare.symbols import coordinates, dot, t
>>> q1, q2 = coordinates("q1 q2")
>>> dot(q1), dot(q1, 2), dot(dot(q1))
(q1_dot, q1_ddot, q1_ddot)
>>> import sympy as sp
>>> f = sp.Function("q1")(t)
>>> to_jet_form(sp.Derivative(f, t) * f)
q1*q1_dot
"""

from __future__ import annotations

import contextlib
import functools
import gc
import re
from collections.abc import Iterable, Iterator, Mapping

import sympy as sp
from sympy.core.function import AppliedUndef

from cognitive_action.errors import DeclarationError

__all__ = [
    "t",
    "MAX_ORDER",
    "SUFFIXES",
    "symbol",
    "symbols_bulk",
    "Jets",
    "dot",
    "base",
    "order",
    "coordinates",
    "signals",
    "parameters",
    "to_jet_form",
    "substitute",
    "from_jet_form",
    "check_name",
]

#: The time variable (the same symbol as ``sympy.physics.mechanics.dynamicsymbols._t``).
t = sp.Symbol("t")

#: Highest time derivative of a coordinate that a Lagrangian of order two can produce
#: (``d²/dt² F_q̈`` of eq. 8-9 gives fourth derivatives).
MAX_ORDER = 4

#: Name suffix of the jet symbol of each time-derivative order (the one list of them).
SUFFIXES = {1: "_dot", 2: "_ddot", 3: "_d3", 4: "_d4"}
_ORDER_RE = re.compile(r"^(?P<base>.+?)(?P<suf>" + "|".join(map(re.escape, SUFFIXES.values()))
                       + ")$")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ORDER_OF_SUFFIX = {v: k for k, v in SUFFIXES.items()}
#: What every suffix starts with: a name without it has order 0.
_SUFFIX_START = "_d"
assert all(v.startswith(_SUFFIX_START) for v in SUFFIXES.values())


#: A real symbol whose assumption objects every jet symbol shares (SymPy shares them
#: too: ``Symbol._canonical_assumptions`` is cached per set of assumptions).
_REAL = sp.Symbol("_real", real=True)
_new_object = object.__new__


def _real_symbol(name: str) -> sp.Symbol:
    """``sp.Symbol(name, real=True)`` without the constructor's assumption handling.

    The object is what ``Symbol.__xnew__`` makes: the same class, name and assumption
    objects, hence equal to (and hashing like) ``sp.Symbol(name, real=True)``; it only
    skips ``_sanitize``, the keyword cache and ``Basic.__new__``, which were the bulk of
    declaring a dense network (docs/performance.md, "Numbers behind choices").
    """
    if not isinstance(name, str):
        raise TypeError(f"name should be a string, not {type(name)!r}")
    obj = _new_object(sp.Symbol)
    obj._assumptions = _REAL._assumptions
    obj._mhash = None
    obj._args = ()
    obj.name = name
    obj._assumptions_orig = _REAL._assumptions_orig
    obj._assumptions0 = _REAL._assumptions0
    return obj


_SYMBOLS: dict[str, sp.Symbol] = {}


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a block makes ~10⁵ objects.

    SymPy expressions hold no reference cycles, but every few hundred allocations the
    collector walks the young objects, and now and then all of them: with 10⁵ symbols
    and products alive, that took a third of declaring a dense network
    (docs/performance.md). Nothing is lost: the collector runs again afterwards (and
    stays off if it was off).

    >>> import gc
    >>> with gc_paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def symbol(name: str) -> sp.Symbol:
    """The jet symbol named ``name``: a real SymPy symbol.

    All time-dependent quantities are real; saying so keeps SymPy from expensive
    case analysis (``tanh(a).is_real`` on a complex ``a`` calls a polynomial gcd).
    Cached: the same name gives the same object, and creating a symbol with assumptions
    through ``sp.Symbol`` is slow compared with a dictionary look-up
    (docs/performance.md).

    >>> symbol("w3_1") == sp.Symbol("w3_1", real=True), symbol("w3_1") is symbol("w3_1")
    (True, True)
    """
    hit = _SYMBOLS.get(name)
    if hit is None:
        hit = _SYMBOLS[name] = _real_symbol(name)
    return hit


def symbols_bulk(names: Iterable[str]) -> list[sp.Symbol]:
    """:func:`symbol` of every name, in order (one loop for tens of thousands of names).

    >>> symbols_bulk(["a1", "a2"])
    [a1, a2]
    """
    table, new, cls = _SYMBOLS, _new_object, sp.Symbol
    kb, orig, a0 = _REAL._assumptions, _REAL._assumptions_orig, _REAL._assumptions0
    out = []
    with gc_paused():
        for name in names:
            hit = table.get(name)
            if hit is None:  # _real_symbol(name), inlined: ~10⁵ names in a network
                if not isinstance(name, str):
                    raise TypeError(f"name should be a string, not {type(name)!r}")
                hit = table[name] = new(cls)
                hit._assumptions, hit._mhash, hit._args = kb, None, ()
                hit.name, hit._assumptions_orig, hit._assumptions0 = name, orig, a0
            out.append(hit)
    return out


def check_name(name: str, what: str = "name") -> str:
    """Validate a user-chosen name for a coordinate, signal or parameter.

    Names are identifiers that do not end in a reserved derivative suffix
    (``_dot``, ``_ddot``, ``_d3``, ``_d4``) and are not ``t``.

    >>> check_name("w_3_1")
    'w_3_1'
    >>> check_name("x_dot")
    Traceback (most recent call last):
    ...
    cognitive_action.errors.DeclarationError: name 'x_dot' ends in the reserved suffix '_dot' \
(used for time derivatives). Fix: rename it, and write its derivative as dot(x)
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise DeclarationError(
            f"{what} {name!r} is not a valid identifier",
            fix="use letters, digits and underscores, starting with a letter",
        )
    if name == "t":
        raise DeclarationError(f"{what} 't' is reserved for time", fix="choose another name")
    m = _ORDER_RE.match(name)
    if m:
        raise DeclarationError(
            f"name {name!r} ends in the reserved suffix {m.group('suf')!r} "
            "(used for time derivatives)",
            fix=f"rename it, and write its derivative as dot({m.group('base')})",
        )
    return name


def order(symbol_: sp.Symbol) -> int:
    """Order of the time derivative a jet symbol stands for (0 for the quantity itself).

    >>> order(sp.Symbol("x_ddot")), order(sp.Symbol("x"))
    (2, 0)
    """
    name = symbol_.name
    if _SUFFIX_START not in name:  # most names: no regular expression needed
        return 0
    m = _ORDER_RE.match(name)
    return _ORDER_OF_SUFFIX[m.group("suf")] if m else 0


def base(symbol_: sp.Symbol) -> sp.Symbol:
    """The undifferentiated symbol of a jet symbol (``x_ddot`` → ``x``)."""
    name = symbol_.name
    if _SUFFIX_START not in name:
        return symbol_
    m = _ORDER_RE.match(name)
    return symbol(m.group("base")) if m else symbol_


@functools.cache
def dot(symbol_: sp.Symbol, k: int = 1) -> sp.Symbol:
    """The jet symbol of the ``k``-th time derivative of ``symbol``.

    Parameters
    ----------
    symbol_
        A coordinate or signal symbol, or one of its derivatives.
    k
        How many more time derivatives to take.

    Raises
    ------
    DeclarationError
        If the resulting order exceeds :data:`MAX_ORDER`.
    """
    if not isinstance(symbol_, sp.Symbol):
        raise DeclarationError(
            f"dot() takes a coordinate symbol, got {symbol_!r}",
            fix="apply dot() to coordinates; for expressions use "
            "cognitive_action.derive.calculus.total_derivative",
        )
    n = order(symbol_) + k
    if n > MAX_ORDER:
        raise DeclarationError(
            f"time derivative of order {n} of {base(symbol_)} requested",
            fix=f"Lagrangians may depend on derivatives up to order 2 (jets up to {MAX_ORDER})",
        )
    b = base(symbol_)
    return b if n == 0 else symbol(b.name + SUFFIXES[n])


class Jets:
    """The jet symbols of order ``k`` of some base symbols, ``{dot(q, k) for q in bases}``,
    as a container that creates none of them: a dense network has ~10⁵ weights, and a
    constraint or a Lagrangian mentions few of their derivatives.

    >>> q, = coordinates("q")
    >>> dot(q) in Jets([q], 1), dot(q, 2) in Jets([q], 1), q in Jets([q], 1)
    (True, False, False)
    """

    __slots__ = ("_by_name", "_order")

    def __init__(self, bases: Iterable[sp.Symbol] | Mapping[str, sp.Symbol], k: int) -> None:
        # a mapping {name: symbol} of the bases may be given, to share one among orders
        self._by_name = bases if isinstance(bases, Mapping) else {b.name: b for b in bases}
        self._order = k

    def __contains__(self, s: object) -> bool:
        if not isinstance(s, sp.Symbol) or order(s) != self._order:
            return False
        b = self._by_name.get(base(s).name)
        return b is not None and dot(b, self._order) == s


def _names(names: str | Iterable[str]) -> list[str]:
    return names.replace(",", " ").split() if isinstance(names, str) else list(names)


def coordinates(names: str | Iterable[str], n: int | None = None) -> tuple[sp.Symbol, ...]:
    """Declare generalized coordinates: names separated by spaces or commas, or a vector
    ``prefix1 … prefixn`` when ``n`` is given.

    >>> coordinates("x1, x2")
    (x1, x2)
    >>> coordinates("v", 3)
    (v1, v2, v3)
    """
    if n is not None:
        if not isinstance(names, str) or isinstance(n, bool) or not isinstance(n, int) \
                or n < 1:
            raise DeclarationError(f"cannot make a vector {names!r} of size {n!r}",
                                   fix="give a name prefix and a positive integer size")
        names = [f"{names}{i}" for i in range(1, n + 1)]
    return tuple(symbol(check_name(q, "coordinate")) for q in _names(names))


def signals(names: str | Iterable[str]) -> tuple[sp.Symbol, ...]:
    """Declare external time signals (inputs ``e(t)``, targets ``y(t)``).

    Signals have time derivatives (``dot(e)``) like coordinates, but they are given
    functions of time, not varied in the action.
    """
    return tuple(symbol(check_name(n, "signal")) for n in _names(names))


def parameters(names: str | Iterable[str], **assumptions: bool) -> tuple[sp.Symbol, ...]:
    """Declare constant parameters (masses, rates, gains); real unless told otherwise."""
    assumptions = {"real": True} | assumptions
    return tuple(sp.Symbol(check_name(n, "parameter"), **assumptions) for n in _names(names))


def to_jet_form(expr: sp.Expr, time: sp.Symbol = t) -> sp.Expr:
    """Replace ``q(t)`` and ``Derivative(q(t), (t, k))`` by jet symbols.

    Only undefined functions of time alone are converted; known functions
    (``sin(t)``) stay. An undefined function with other arguments is an error.
    """
    if isinstance(expr, str):
        raise DeclarationError(
            f"got the string {expr!r} where a SymPy expression or symbol is expected",
            fix="declare symbols with coordinates(), parameters() or signals(); problem "
            "files parse strings safely with cognitive_action.problem_files")
    try:
        expr = sp.sympify(expr, strict=True)  # safe: strict, strings rejected above
    except sp.SympifyError as exc:
        raise DeclarationError(f"{expr!r} is not a SymPy expression",
                               fix="use SymPy expressions, symbols or numbers") from exc
    if not isinstance(expr, sp.Basic):
        return expr
    repl: dict[sp.Basic, sp.Basic] = {}
    for d in expr.atoms(sp.Derivative):
        f = d.expr
        if not isinstance(f, AppliedUndef) or f.args != (time,):
            raise DeclarationError(
                f"cannot interpret the derivative {d}",
                fix="differentiate coordinates of time only, e.g. q(t).diff(t)",
            )
        k = sum(c for v, c in d.variable_count if v == time)
        if len(d.variable_count) != 1 or k < 1:
            raise DeclarationError(f"derivative {d} is not a time derivative",
                                   fix="take derivatives with respect to t only")
        repl[d] = dot(symbol(check_name(type(f).__name__)), k)
    expr = expr.xreplace(repl)
    frepl = {}
    for f in expr.atoms(AppliedUndef):
        if f.args != (time,):
            raise DeclarationError(
                f"undefined function {f} must be a function of time alone",
                fix="declare it as q(t), or as a parameter if it is constant",
            )
        frepl[f] = symbol(check_name(type(f).__name__))
    return expr.xreplace(frepl)


def substitute(expr: sp.Expr, mapping: dict[sp.Basic, sp.Basic]) -> sp.Expr:
    """``expr.xreplace(mapping)`` without re-evaluating function applications.

    ``xreplace`` rebuilds ``tanh(a)`` through ``tanh.eval``, which for a large net
    input ``a`` looks for multiples of ``iπ`` with polynomial gcds, at a cost that grows
    with the number of terms of ``a`` (docs/performance.md). Arithmetic nodes are still
    evaluated (so zeros drop out); function nodes are rebuilt with ``evaluate=False``.
    Shared subexpressions are substituted once.

    >>> z, a, b = sp.symbols("z a b")
    >>> substitute(1 - sp.tanh(z)**2, {z: a + b})
    1 - tanh(a + b)**2
    """
    memo: dict[sp.Basic, sp.Basic] = {}

    def go(e: sp.Basic) -> sp.Basic:
        if e in mapping:
            return mapping[e]
        if not e.args:
            return e
        hit = memo.get(e)
        if hit is None:
            args = tuple(go(a) for a in e.args)
            if args == e.args:
                hit = e
            elif isinstance(e, sp.Function):
                hit = e.func(*args, evaluate=False)
            else:
                hit = e.func(*args)
            memo[e] = hit
        return hit

    return go(expr)


def from_jet_form(expr: sp.Expr, time_dependent: Iterable[sp.Symbol],
                  time: sp.Symbol = t) -> sp.Expr:
    """Inverse of :func:`to_jet_form` for the given time-dependent base symbols.

    >>> x = sp.Symbol("x")
    >>> from_jet_form(x * dot(x, 2), [x])
    x(t)*Derivative(x(t), (t, 2))
    """
    bases = {b.name for b in time_dependent}
    repl: dict[sp.Symbol, sp.Expr] = {}
    for s in expr.free_symbols:
        if isinstance(s, sp.Symbol) and base(s).name in bases:
            f = sp.Function(base(s).name)(time)
            k = order(s)
            repl[s] = f if k == 0 else sp.Derivative(f, (time, k))
    return expr.xreplace(repl)


