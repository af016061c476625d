"""Neural activations σ for the constraints of eq. (4) and (18).

An :class:`Activation` is a named map from a SymPy expression (the net input
``a_j = m_jk ξ^k``) to a SymPy expression. Eq. (4) asks for σ of class C²; this is
checked when the activation is made: its first two derivatives must exist as
ordinary expressions (no ``Heaviside``, ``DiracDelta``, ``sign`` or unevaluated
derivatives).

Examples
--------
>>> import sympy as sp
>>> z = sp.Symbol("z")
>>> activation("logistic")(z)
1/(1 + exp(-z))
>>> activation("relu")
Traceback (most recent call last):
...
cognitive_action.errors.ActivationError: unknown activation 'relu'. Fix: use one of \
identity, logistic, softplus, tanh, or pass Activation(name, function) for a C² function \
of your own
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from cognitive_action.errors import ActivationError

__all__ = ["Activation", "activation", "BUILTIN_ACTIVATIONS"]

_NON_SMOOTH = (sp.Heaviside, sp.DiracDelta, sp.sign, sp.Derivative, sp.Subs, sp.Piecewise)


@dataclass(frozen=True)
class Activation:
    """A C² activation σ.

    Parameters
    ----------
    name
        Name used in reports and LaTeX.
    function
        Callable mapping a SymPy expression to a SymPy expression.
    """

    name: str
    function: Callable[[sp.Expr], sp.Expr]

    def __post_init__(self) -> None:
        z = sp.Symbol("z", real=True)
        try:
            value = self.function(z)
            if isinstance(value, str):
                raise TypeError("it returned a string")
            value = sp.sympify(value, strict=True)  # safe: strings rejected above
        except Exception as exc:
            raise ActivationError(
                f"activation {self.name!r} cannot be applied to a symbol: {exc}",
                fix="pass a function built from SymPy operations, e.g. lambda a: sp.tanh(a)",
            ) from exc
        if not isinstance(value, sp.Expr) or value.free_symbols - {z}:
            raise ActivationError(
                f"activation {self.name!r} gives {value}, not an expression of its argument",
                fix="use a function of one argument with no free parameters",
            )
        d1 = sp.diff(value, z)
        d2 = sp.diff(d1, z)
        if any(d.has(*_NON_SMOOTH) for d in (value, d1, d2)):
            raise ActivationError(
                f"activation {self.name!r} = {value} is not C² (its derivatives are {d1} "
                f"and {d2})",
                fix="the multiplier equation (10) needs second derivatives of σ: use a smooth "
                "function such as tanh, logistic or softplus",
            )

    def __call__(self, a: sp.Expr) -> sp.Expr:
        return self.function(a)


BUILTIN_ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", sp.tanh),
    "logistic": Activation("logistic", lambda a: 1 / (1 + sp.exp(-a))),
    "identity": Activation("identity", lambda a: a),
    "softplus": Activation("softplus", lambda a: sp.log(1 + sp.exp(a))),
}


def activation(spec: str | Activation | Callable[[sp.Expr], sp.Expr]) -> Activation:
    """Resolve an activation given by name, as an :class:`Activation`, or as a callable."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        try:
            return BUILTIN_ACTIVATIONS[spec]
        except KeyError:
            raise ActivationError(
                f"unknown activation {spec!r}",
                fix=f"use one of {', '.join(sorted(BUILTIN_ACTIVATIONS))}, or pass "
                "Activation(name, function) for a C² function of your own",
            ) from None
    if callable(spec):
        return Activation(getattr(spec, "__name__", "sigma"), spec)
    raise ActivationError(f"cannot use {spec!r} as an activation",
                          fix="pass a name, an Activation or a callable")
