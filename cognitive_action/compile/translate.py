"""Translate SymPy expressions to CasADi SX or MX graphs with a memoized tree walker.

``sympy.lambdify`` into CasADi prints an expression to Python source and executes it,
which for a learning system of tens of neurons is orders of magnitude slower than this
walker (issue 3; docs/performance.md). The walker visits every distinct subexpression once (SymPy
expressions are hash-consed, so shared subexpressions such as ``σ'(a_j)`` become one
CasADi node), maps symbols by *name* to given CasADi expressions, and accepts only a
whitelist of nodes; anything else raises :class:`~cognitive_action.errors.TranslationError`
naming the node.

Supported: numbers (integers, rationals, floats, ``π``, ``e``), ``+``, ``*``, powers
(``sqrt`` and integer powers specialised), ``exp``, ``log``, trigonometric and
hyperbolic functions and their inverses, ``Abs``, ``sign``, ``Heaviside``, ``Min``,
``Max``, ``floor``, ``ceiling``, ``erf``, ``atan2``, the softmax normaliser
``LogSumExp`` (overflow-free), and ``Piecewise`` with relational
conditions (``<``, ``≤``, ``>``, ``≥``, ``=``, ``≠``, ``And``, ``Or``, ``Not``).
Expressions in function form (``q(t)``, ``Derivative(q(t), t)``) are first converted
to jet symbols (design notes: ``lambdify(cse=True)`` fails on ``Derivative`` arguments).

Values given for symbols may be scalars or vectors of one length: the same template
expression then evaluates elementwise (how :mod:`cognitive_action.compile.system`
builds a network's right-hand side from per-neuron templates).

Examples
--------
>>> import casadi as ca
>>> import sympy as sp
>>> x, y = sp.symbols("x y")
>>> X = ca.SX.sym("x"); Y = ca.SX.sym("y")
>>> e = to_casadi(sp.tanh(x) ** 2 + sp.sqrt(y) / 2, {"x": X, "y": Y})
>>> f = ca.Function("f", [X, Y], [e])
>>> round(float(f(0.5, 4.0)), 12) == round(float(sp.tanh(0.5) ** 2 + 1), 12)
True
>>> to_casadi(sp.gamma(x), {"x": X})
Traceback (most recent call last):
...
cognitive_action.errors.TranslationError: cannot translate gamma(x) to CasADi: the \
function gamma is not supported. Fix: rewrite it with supported functions (exp, log, \
sin, cos, tan, tanh, sqrt, Abs, Piecewise, ...) or declare a smooth activation built \
from them
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Union

import casadi as ca
import sympy as sp
from sympy.core.function import AppliedUndef

from cognitive_action.declare.network import LogSumExp
from cognitive_action.declare.symbols import to_jet_form
from cognitive_action.errors import DeclarationError, TranslationError

__all__ = ["Translator", "to_casadi", "SUPPORTED_FUNCTIONS"]

CasadiExpr = Union[ca.SX, ca.MX, ca.DM, float]  # noqa: UP007 (a runtime alias, py3.10)


def _if_else(c, a, b):
    return ca.if_else(c, a, b)


def _heaviside(x, h0=None):
    half = 0.5 if h0 is None else h0
    return ca.if_else(x > 0, 1.0, ca.if_else(x < 0, 0.0, half))


def _nary(op: Callable) -> Callable:
    def f(*args):
        out = args[0]
        for a in args[1:]:
            out = op(out, a)
        return out
    return f


def _logsumexp(*args):
    """``m + log Σ exp(z - m)`` with ``m = max z``: overflow-free (``LogSumExp``)."""
    m = _nary(ca.fmax)(*args)
    total = ca.exp(args[0] - m)
    for a in args[1:]:
        total = total + ca.exp(a - m)
    return m + ca.log(total)


#: SymPy function classes and their CasADi counterparts.
SUPPORTED_FUNCTIONS: dict[type, Callable] = {
    sp.exp: ca.exp,
    sp.log: ca.log,
    sp.sin: ca.sin,
    sp.cos: ca.cos,
    sp.tan: ca.tan,
    sp.asin: ca.asin,
    sp.acos: ca.acos,
    sp.atan: ca.atan,
    sp.sinh: ca.sinh,
    sp.cosh: ca.cosh,
    sp.tanh: ca.tanh,
    sp.asinh: ca.asinh,
    sp.acosh: ca.acosh,
    sp.atanh: ca.atanh,
    sp.sec: lambda x: 1 / ca.cos(x),
    sp.csc: lambda x: 1 / ca.sin(x),
    sp.cot: lambda x: 1 / ca.tan(x),
    sp.sech: lambda x: 1 / ca.cosh(x),
    sp.csch: lambda x: 1 / ca.sinh(x),
    sp.coth: lambda x: 1 / ca.tanh(x),
    sp.Abs: ca.fabs,
    sp.sign: ca.sign,
    sp.floor: ca.floor,
    sp.ceiling: ca.ceil,
    sp.erf: ca.erf,
    sp.atan2: ca.atan2,
    sp.Heaviside: _heaviside,
    sp.Min: _nary(ca.fmin),
    sp.Max: _nary(ca.fmax),
    LogSumExp: _logsumexp,
}

_RELATIONAL: dict[type, Callable] = {
    sp.StrictLessThan: lambda a, b: a < b,
    sp.LessThan: lambda a, b: a <= b,
    sp.StrictGreaterThan: lambda a, b: a > b,
    sp.GreaterThan: lambda a, b: a >= b,
    sp.Equality: lambda a, b: a == b,
    sp.Unequality: lambda a, b: a != b,
}

_BAD_NUMBERS = (sp.nan, sp.zoo, sp.oo, -sp.oo, sp.I)
_SUPPORTED_NAMES = "exp, log, sin, cos, tan, tanh, sqrt, Abs, Piecewise, ..."


class Translator:
    """A memoized SymPy → CasADi translator for one set of symbol values.

    Parameters
    ----------
    values
        CasADi expressions (SX, MX or DM) or numbers by symbol name (or by symbol).

    Notes
    -----
    One translator can be called on many expressions; subexpressions shared between
    them are translated once (the memo is keyed by the SymPy expression).
    """

    def __init__(self, values: Mapping[str | sp.Symbol, CasadiExpr]) -> None:
        self.values = {str(k): v for k, v in values.items()}
        self._memo: dict[sp.Basic, CasadiExpr] = {}

    # -- public -------------------------------------------------------------------------
    def __call__(self, expr: sp.Basic | float | int) -> CasadiExpr:
        """Translate one expression."""
        if isinstance(expr, (int, float)):
            return float(expr)
        if not isinstance(expr, sp.Basic):
            raise TranslationError(f"cannot translate {expr!r} ({type(expr).__name__})",
                                   fix="pass SymPy expressions or numbers")
        return self._go(expr)

    def many(self, exprs: Iterable[sp.Basic]) -> list[CasadiExpr]:
        """Translate several expressions (sharing the memo)."""
        return [self(e) for e in exprs]

    # -- walker -------------------------------------------------------------------------
    def _go(self, e: sp.Basic) -> CasadiExpr:
        hit = self._memo.get(e)
        if hit is not None:
            return hit
        out = self._node(e)
        self._memo[e] = out
        return out

    def _node(self, e: sp.Basic) -> CasadiExpr:
        if e.is_Symbol:
            try:
                return self.values[e.name]
            except KeyError:
                raise TranslationError(
                    f"the symbol {e.name} has no value",
                    fix="declare it as a parameter, signal, coordinate or velocity of the "
                    "system (or give it a value)") from None
        if e.is_Number or isinstance(e, sp.NumberSymbol) or e in _BAD_NUMBERS:
            return self._number(e)
        if isinstance(e, (AppliedUndef, sp.Derivative)):
            # function form q(t), Derivative(q(t), t): the jet symbols q, q_dot
            try:
                return self._go(to_jet_form(e))
            except DeclarationError as exc:
                raise TranslationError(
                    f"cannot translate {_short(e)}: {exc.message}",
                    fix="replace derivatives and functions of time by plain (jet) symbols "
                    "before translating") from exc
        if e.is_Add:
            args = [self._go(a) for a in e.args]
            out = args[0]
            for a in args[1:]:
                out = out + a
            return out
        if e.is_Mul:
            args = e.args
            out = None
            for a in args:
                v = self._go(a)
                out = v if out is None else out * v
            return out
        if e.is_Pow:
            return self._pow(*e.args)
        if isinstance(e, sp.Piecewise):
            return self._piecewise(e)
        f = SUPPORTED_FUNCTIONS.get(e.func)
        if f is not None:
            return f(*(self._go(a) for a in e.args))
        if isinstance(e, sp.Function):
            if f is None:
                for cls, g in SUPPORTED_FUNCTIONS.items():
                    if isinstance(e, cls):
                        f = g
                        break
            if f is None:
                raise TranslationError(
                    f"cannot translate {_short(e)} to CasADi: the function "
                    f"{getattr(e.func, '__name__', e.func)} is not supported",
                    fix=f"rewrite it with supported functions ({_SUPPORTED_NAMES}) or "
                    "declare a smooth activation built from them")
            return f(*(self._go(a) for a in e.args))
        if type(e) in _RELATIONAL:
            return _RELATIONAL[type(e)](self._go(e.args[0]), self._go(e.args[1]))
        if isinstance(e, sp.And):
            return _nary(ca.logic_and)(*(self._go(a) for a in e.args))
        if isinstance(e, sp.Or):
            return _nary(ca.logic_or)(*(self._go(a) for a in e.args))
        if isinstance(e, sp.Not):
            return ca.logic_not(self._go(e.args[0]))
        if e is sp.true:
            return 1.0
        if e is sp.false:
            return 0.0
        raise TranslationError(
            f"cannot translate {_short(e)} to CasADi: {type(e).__name__} nodes are not "
            "supported",
            fix=f"rewrite it with arithmetic and supported functions ({_SUPPORTED_NAMES})")

    @staticmethod
    def _number(e: sp.Basic) -> float:
        if e in _BAD_NUMBERS or e.is_real is False:
            raise TranslationError(f"cannot translate the number {e} to CasADi",
                                   fix="only finite real numbers can be compiled")
        return float(e)

    def _pow(self, b: sp.Basic, p: sp.Basic) -> CasadiExpr:
        base = self._go(b)
        if p.is_Integer:
            n = int(p)
            if n == 1:
                return base
            if n == 2:
                return base * base
            if n == -1:
                return 1 / base
            return ca.constpow(base, float(n)) if n > 0 else 1 / ca.constpow(base, float(-n))
        if p.is_Rational and p.q == 2:
            r = ca.sqrt(base)
            k = int(p.p)
            if k == 1:
                return r
            if k == -1:
                return 1 / r
            return ca.constpow(r, float(k))
        if p.is_Number:
            return ca.constpow(base, self._number(p))
        if b == sp.E:
            return ca.exp(self._go(p))
        return ca.power(base, self._go(p))

    def _piecewise(self, e: sp.Piecewise) -> CasadiExpr:
        pieces = list(e.args)
        last_val, last_cond = pieces[-1]
        if last_cond is sp.true:
            out = self._go(last_val)
            pieces = pieces[:-1]
        else:
            out = math.nan  # undefined outside the listed conditions, as in SymPy
        for val, cond in reversed(pieces):
            out = ca.if_else(self._go(cond), self._go(val), out)
        return out


def to_casadi(expr: sp.Basic | Iterable[sp.Basic],
              values: Mapping[str | sp.Symbol, CasadiExpr]) -> CasadiExpr | list[CasadiExpr]:
    """Translate one SymPy expression, or a list of them, to CasADi.

    Parameters
    ----------
    expr
        A SymPy expression or an iterable of them.
    values
        CasADi expressions or numbers for every free symbol, by name or symbol.

    Returns
    -------
    A CasADi expression (or a list of them) of the kind of the given values.

    Raises
    ------
    TranslationError
        For a node outside the whitelist or a symbol without value.
    """
    tr = Translator(values)
    if isinstance(expr, (sp.Basic, int, float)):
        return tr(expr)
    return tr.many(expr)


def _short(e: sp.Basic, n: int = 80) -> str:
    s = str(e)
    return s if len(s) <= n else s[: n - 3] + "..."
