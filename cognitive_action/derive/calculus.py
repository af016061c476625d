"""Structure-preserving differentiation: sparse gradients and total time derivatives.

``sympy.diff`` differentiates an expression with respect to one variable at a time,
walking the whole expression each time; the Jacobian of a neuron constraint
``x_j - σ(Σ_k w_jk x_k)`` with respect to its ``2 deg`` variables then costs
``O(deg²)``. The routines here walk an expression once and return all its nonzero
partial derivatives (a forward-mode sweep over the SymPy tree, memoized on shared
subexpressions), so that the cost is linear in the size of the expression and the
results share subexpressions such as ``σ'(a_j)`` by reference.

Examples
--------
>>> import sympy as sp
>>> from cognitive_action.declare.symbols import coordinates, dot
>>> x1, x2, w = coordinates("x1 x2 w")
>>> g = sparse_gradient(x2 - sp.tanh(w * x1), [x1, x2, w])
>>> g[x2], g[w]
(1, -x1*(1 - tanh(w*x1)**2))
>>> total_derivative(x2 - sp.tanh(w * x1), [x1, x2, w])
x2_dot - (1 - tanh(w*x1)**2)*(w*x1_dot + w_dot*x1)
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy as sp

from cognitive_action.declare.symbols import dot, substitute, t
from cognitive_action.derive.sparse import Walker
from cognitive_action.errors import DerivationError

__all__ = ["sparse_gradient", "total_derivative", "Differentiator", "TimeDerivative"]

Gradient = dict[sp.Symbol, sp.Expr]
_Z = sp.Symbol("_z", real=True)
_OUTER: dict[type, sp.Expr] = {}
_NON_SMOOTH = (sp.Derivative, sp.Subs, sp.Heaviside, sp.DiracDelta, sp.sign, sp.Piecewise)


def _add_into(acc: Gradient, grad: Gradient, factor: sp.Expr = sp.S.One) -> None:
    for v, d in grad.items():
        term = d if factor is sp.S.One else factor * d
        acc[v] = acc[v] + term if v in acc else term


class Differentiator:
    """Memoized sparse differentiation with respect to a fixed set of variables.

    Parameters
    ----------
    variables
        The symbols to differentiate with respect to. Other symbols are constants.

    Notes
    -----
    The memo is keyed by subexpression, so the gradient of a shared net input
    ``a_j = Σ_k w_jk x_k`` is computed once however many times it appears.
    """

    def __init__(self, variables: Iterable[sp.Symbol]) -> None:
        self.variables = frozenset(variables)
        self._walker = Walker(self.variables)
        self._memo: dict[sp.Basic, Gradient] = {}

    def gradient(self, expr: sp.Expr) -> Gradient:
        """All nonzero partial derivatives of ``expr`` as ``{variable: derivative}``."""
        if not self._walker.depends(expr):
            return {}
        hit = self._memo.get(expr)
        if hit is not None:
            return hit
        out = self._gradient(expr)
        self._memo[expr] = out
        return out

    @staticmethod
    def _outer(e: sp.Function) -> sp.Expr:
        """Derivative of a one-argument function with respect to its argument.

        Taken on a placeholder and substituted (:func:`substitute`), so that a large
        argument is not re-evaluated by the function's ``eval``.
        """
        outer = _OUTER.get(e.func)
        if outer is None:
            outer = _OUTER[e.func] = Differentiator._outer_of(e.func)
        return substitute(outer, {_Z: e.args[0]})

    @staticmethod
    def _outer_of(func: type) -> sp.Expr:
        e = func(_Z)
        try:
            outer = e.fdiff(1)
        except Exception as exc:  # SymPy raises ArgumentIndexError and others
            raise DerivationError(
                f"cannot differentiate {e.func}: {exc}",
                fix="use a differentiable (C²) function with known derivatives",
            ) from exc
        if outer.has(*_NON_SMOOTH):
            raise DerivationError(
                f"{e.func.__name__} has no usable derivative ({outer})",
                fix="use C² functions (tanh, logistic, softplus, exp, log, sin, ...); the "
                "multiplier equation (10) needs second derivatives",
            )
        return outer

    def _gradient(self, e: sp.Expr) -> Gradient:
        if isinstance(e, sp.Symbol):
            return {e: sp.S.One}
        if isinstance(e, sp.Add):
            acc: Gradient = {}
            for a in e.args:
                _add_into(acc, self.gradient(a))
            return {v: d for v, d in acc.items() if d != 0}
        if isinstance(e, sp.Mul):
            acc = {}
            args = e.args
            for i, a in enumerate(args):
                ga = self.gradient(a)
                if ga:
                    rest = sp.Mul(*(args[:i] + args[i + 1:]))
                    _add_into(acc, ga, rest)
            return acc
        if isinstance(e, sp.Pow):
            b, p = e.args
            gb, gp = self.gradient(b), self.gradient(p)
            acc = {}
            if gb:
                _add_into(acc, gb, p * b ** (p - 1))
            if gp:
                _add_into(acc, gp, e * sp.log(b))
            return acc
        if isinstance(e, sp.Function) and len(e.args) == 1:
            (a,) = e.args
            ga = self.gradient(a)
            if not ga:
                return {}
            acc = {}
            _add_into(acc, ga, self._outer(e))
            return acc
        # General fallback: one diff per variable that occurs.
        out = {}
        for v in sorted(e.free_symbols & self.variables, key=str):
            d = sp.diff(e, v)
            if d.has(*_NON_SMOOTH):
                raise DerivationError(
                    f"{e.func.__name__} in {e} is not differentiable everywhere (its "
                    f"derivative with respect to {v} is {d})",
                    fix="the multiplier equation (10) needs C² expressions: replace "
                    f"{e.func.__name__} by a smooth function (no Max, Min, abs, sign)",
                )
            if d != 0:
                out[v] = d
        return out


def sparse_gradient(expr: sp.Expr, variables: Iterable[sp.Symbol]) -> Gradient:
    """All nonzero partial derivatives of ``expr`` with respect to ``variables``.

    Parameters
    ----------
    expr
        A SymPy expression in jet symbols.
    variables
        Symbols to differentiate with respect to.

    Returns
    -------
    dict
        ``{variable: ∂expr/∂variable}`` for the variables on which ``expr`` depends.
    """
    return Differentiator(variables).gradient(sp.sympify(expr, strict=True))  # safe: strict


class TimeDerivative:
    """Memoized total time derivative ``d/dt`` on expressions in jet symbols.

    Forward mode over the expression tree (``d/dt σ(a) = σ'(a) ȧ``, product rule
    for products), so that ``ȧ`` of a shared subexpression ``a`` is built once and
    shared: differentiating a dense neuron constraint twice stays linear in its
    number of in-edges.

    Parameters
    ----------
    time_dependent
        Every jet symbol that depends on time (coordinates, signals, multipliers and
        their derivatives). Other symbols are constants; ``t`` is time.
    """

    def __init__(self, time_dependent: Iterable[sp.Symbol]) -> None:
        self.time_dependent = frozenset(time_dependent)
        self._walker = Walker(self.time_dependent | {t})
        self._memo: dict[sp.Basic, sp.Expr] = {}

    def __call__(self, expr: sp.Expr) -> sp.Expr:
        if not self._walker.depends(expr):
            return sp.S.Zero
        hit = self._memo.get(expr)
        if hit is None:
            hit = self._memo[expr] = self._d(expr)
        return hit

    def _d(self, e: sp.Expr) -> sp.Expr:
        if isinstance(e, sp.Symbol):
            return sp.S.One if e == t else dot(e)
        if isinstance(e, sp.Add):
            return sp.Add(*(self(a) for a in e.args))
        if isinstance(e, sp.Mul):
            args = e.args
            terms = []
            for i, a in enumerate(args):
                da = self(a)
                if da != 0:
                    terms.append(sp.Mul(*(args[:i] + (da,) + args[i + 1:])))
            return sp.Add(*terms)
        if isinstance(e, sp.Pow):
            b, p = e.args
            db, dp = self(b), self(p)
            out = p * b ** (p - 1) * db if db != 0 else sp.S.Zero
            if dp != 0:
                out += e * sp.log(b) * dp
            return out
        if isinstance(e, sp.Function) and len(e.args) == 1:
            (a,) = e.args
            return Differentiator._outer(e) * self(a)
        grad = Differentiator(self.time_dependent | {t}).gradient(e)
        return sp.Add(*(g if v == t else g * dot(v) for v, g in grad.items()))


def total_derivative(expr: sp.Expr, time_dependent: Iterable[sp.Symbol]) -> sp.Expr:
    """Total time derivative ``d/dt`` of an expression in jet symbols.

    ``d/dt e = ∂e/∂t + Σ_s ∂e/∂s · ṡ`` over the time-dependent jet symbols ``s``
    (coordinates, signals and their derivatives) that occur in ``e``. For many
    calls on related expressions, keep one :class:`TimeDerivative`.
    """
    return TimeDerivative(time_dependent)(sp.sympify(expr, strict=True))  # safe: strict
