"""Neural activations σ: one registry for the symbolic and the numeric forms.

Every activation is an :class:`Activation`: a named map from a SymPy expression (the
net input ``a_j = m_jk ξ^k``) to a SymPy expression, used by the declare and derive
stages for the constraints of eq. (4) and (18), together with NumPy ``σ`` and ``σ'``
used by the NumPy model of Section 2 (:mod:`cognitive_action.diffusion`) and by the
numeric references. The built-in activations give hand-written NumPy forms
(overflow-free); for an activation of your own the NumPy forms may be given or are
derived from the symbolic form (``sympy.lambdify`` of ``σ`` and ``dσ/da``).

Eq. (4) asks for σ of class C²; this is checked when an activation is made: its first
two derivatives must exist as ordinary expressions (no ``Heaviside``, ``DiracDelta``,
``sign`` or unevaluated derivatives), and NumPy forms given with it must agree with
the symbolic form.

This module imports SymPy only when a symbolic form is evaluated or checked, so
that the NumPy model can look activations up without loading SymPy.

Examples
--------
>>> import sympy as sp
>>> z = sp.Symbol("z")
>>> activation("logistic")(z)
1/(1 + exp(-z))
>>> sigma = activation("logistic").numeric()
>>> float(sigma.f(0.0)), float(sigma.df(0.0))
(0.5, 0.25)
>>> swish = register_activation(Activation("swish", lambda a: a / (1 + sp.exp(-a))))
>>> round(float(activation("swish").numeric().df(0.0)), 12)
0.5
>>> unregister_activation("swish")
>>> activation("relu")
Traceback (most recent call last):
...
cognitive_action.errors.ActivationError: unknown activation 'relu'. Fix: use one of \
identity, logistic, softplus, tanh, or pass Activation(name, function) for a C² function \
of your own (register_activation makes it known by name)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from cognitive_action.errors import ActivationError

if TYPE_CHECKING:
    import sympy as sp

__all__ = ["Activation", "NumericActivation", "activation", "register_activation",
           "unregister_activation", "ACTIVATIONS", "BUILTIN_ACTIVATIONS"]

Array = NDArray[np.float64]

#: Points at which NumPy forms given with an activation are compared with its
#: symbolic form (and its symbolic derivative).
_CHECK_POINTS = np.linspace(-3.0, 3.0, 13)


@dataclass(frozen=True)
class NumericActivation:
    """An elementwise NumPy activation: ``f`` is ``σ(a)`` and ``df`` its derivative
    ``σ'(a)``, both elementwise on arrays of floats; ``name`` is used in reports.

    Examples
    --------
    >>> import numpy as np
    >>> square = NumericActivation("square", lambda a: a * a, lambda a: 2 * a)
    >>> square.df(np.array([1.0, -2.0]))
    array([ 2., -4.])
    """

    name: str
    f: Callable[[Array], Array]
    df: Callable[[Array], Array]


@dataclass(frozen=True)
class Activation:
    """A C² activation σ: its symbolic form and, optionally, NumPy ``σ`` and ``σ'``.

    Parameters
    ----------
    name
        Name used in reports, LaTeX and the registry.
    function
        Callable mapping a SymPy expression to a SymPy expression.
    value
        NumPy ``σ``, elementwise (optional: derived from ``function`` when omitted).
    derivative
        NumPy ``σ'``, elementwise (optional: derived from ``function`` when omitted).

    Raises
    ------
    ActivationError
        If ``function`` is not a C² function of its argument, or the NumPy forms do not
        agree with it.

    Examples
    --------
    >>> import sympy as sp
    >>> Activation("sin", sp.sin, value=lambda a: a)
    Traceback (most recent call last):
    ...
    cognitive_action.errors.ActivationError: the NumPy value of activation 'sin' does \
not agree with its symbolic form sin(z) (at z = -3: -3 against -0.14112). \
Fix: give value = σ and derivative = σ' of the same function, or omit them to derive \
them from the symbolic form
    """

    name: str
    function: Callable[[Any], Any]
    value: Callable[[Array], Array] | None = None
    derivative: Callable[[Array], Array] | None = None

    def __post_init__(self) -> None:
        if not getattr(self, "_trusted", False):
            self._check()

    @classmethod
    def _builtin(cls, name: str, function: Callable[[Any], Any],
                 value: Callable[[Array], Array], derivative: Callable[[Array], Array]
                 ) -> Activation:
        """A built-in entry: known C², NumPy forms checked by the test suite, so no
        check (which would import SymPy) at import time."""
        self = cls.__new__(cls)
        object.__setattr__(self, "_trusted", True)
        for k, v in (("name", name), ("function", function), ("value", value),
                     ("derivative", derivative)):
            object.__setattr__(self, k, v)
        return self

    def _symbolic(self) -> tuple[sp.Symbol, sp.Expr, sp.Expr, sp.Expr]:
        import sympy as sp

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
        return z, value, d1, sp.diff(d1, z)

    def _check(self) -> None:
        import sympy as sp

        non_smooth = (sp.Heaviside, sp.DiracDelta, sp.sign, sp.Derivative, sp.Subs,
                      sp.Piecewise)
        z, value, d1, d2 = self._symbolic()
        if any(d.has(*non_smooth) for d in (value, d1, d2)):
            raise ActivationError(
                f"activation {self.name!r} = {value} is not C² (its derivatives are {d1} "
                f"and {d2})",
                fix="the multiplier equation (10) needs second derivatives of σ: use a smooth "
                "function such as tanh, logistic or softplus",
            )
        for label, given, expr in (("value", self.value, value),
                                   ("derivative", self.derivative, d1)):
            if given is None:
                continue
            ref = np.broadcast_to(sp.lambdify([z], expr, "numpy")(_CHECK_POINTS),
                                  _CHECK_POINTS.shape)
            got = np.broadcast_to(np.asarray(given(_CHECK_POINTS.copy()), dtype=float),
                                  _CHECK_POINTS.shape)
            ok = np.isclose(got, ref, rtol=1e-7, atol=1e-9) | ~np.isfinite(ref)
            if not ok.all():
                i = int(np.argmin(ok))
                raise ActivationError(
                    f"the NumPy {label} of activation {self.name!r} does not agree with its "
                    f"symbolic form {value} (at z = {_CHECK_POINTS[i]:g}: {got[i]:.6g} against "
                    f"{ref[i]:.6g})",
                    fix="give value = σ and derivative = σ' of the same function, or omit "
                    "them to derive them from the symbolic form")

    def __call__(self, a: sp.Expr) -> sp.Expr:
        return self.function(a)

    def numeric(self) -> NumericActivation:
        """NumPy ``σ`` and ``σ'``: the given forms, or ``lambdify`` of the symbolic ones.

        Returns
        -------
        NumericActivation
            Elementwise callables on arrays of floats.
        """
        cached = self.__dict__.get("_numeric")
        if cached is not None:
            return cached
        f, df = self.value, self.derivative
        if f is None or df is None:
            import sympy as sp

            z, value, d1, _ = self._symbolic()
            fv = sp.lambdify([z], value, "numpy")
            dv = sp.lambdify([z], d1, "numpy")

            def _full(fun: Callable[[Array], Array]) -> Callable[[Array], Array]:
                def g(a: Array) -> Array:
                    a = np.asarray(a, dtype=float)
                    return np.broadcast_to(np.asarray(fun(a), dtype=float), a.shape) * 1.0
                return g

            f = f if f is not None else _full(fv)
            df = df if df is not None else _full(dv)
        out = NumericActivation(self.name, f, df)
        object.__setattr__(self, "_numeric", out)
        return out


# -- built-in activations: symbolic forms (SymPy imported when called) and NumPy forms.

def _tanh(a: sp.Expr) -> sp.Expr:
    import sympy as sp
    return sp.tanh(a)


def _logistic(a: sp.Expr) -> sp.Expr:
    import sympy as sp
    return sp.Integer(1) / (sp.Integer(1) + sp.exp(-a))


def _identity(a: sp.Expr) -> sp.Expr:
    return a


def _softplus(a: sp.Expr) -> sp.Expr:
    import sympy as sp
    return sp.log(sp.Integer(1) + sp.exp(a))


def _np_logistic(a: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # overflow-free form of 1/(1+e^{-a})


def _np_dlogistic(a: Array) -> Array:
    s = _np_logistic(a)
    return s * (1.0 - s)


def _np_dtanh(a: Array) -> Array:
    return 1.0 - np.tanh(a) ** 2


def _np_identity(a: Array) -> Array:
    return np.asarray(a, dtype=float) * 1.0


def _np_one(a: Array) -> Array:
    return np.ones_like(a, dtype=float)


def _np_softplus(a: Array) -> Array:
    return np.logaddexp(0.0, a)


_BUILTINS: dict[str, Activation] = {
    "tanh": Activation._builtin("tanh", _tanh, np.tanh, _np_dtanh),
    "logistic": Activation._builtin("logistic", _logistic, _np_logistic, _np_dlogistic),
    "identity": Activation._builtin("identity", _identity, _np_identity, _np_one),
    "softplus": Activation._builtin("softplus", _softplus, _np_softplus, _np_logistic),
}
_REGISTRY: dict[str, Activation] = dict(_BUILTINS)

#: The built-in activations (read-only).
BUILTIN_ACTIVATIONS = MappingProxyType(_BUILTINS)
#: Every known activation by name, built-in and registered (a read-only live view).
ACTIVATIONS = MappingProxyType(_REGISTRY)


def register_activation(spec: Activation | Callable[[Any], Any], *, name: str | None = None,
                        value: Callable[[Array], Array] | None = None,
                        derivative: Callable[[Array], Array] | None = None,
                        replace: bool = False) -> Activation:
    """Make an activation known by name to networks, problem files and the NumPy model.

    Parameters
    ----------
    spec
        An :class:`Activation`, or a callable giving the symbolic form.
    name
        Registry name (default: the activation's name, or the callable's ``__name__``).
    value, derivative
        NumPy ``σ`` and ``σ'`` when ``spec`` is a callable (checked against it).
    replace
        Allow replacing an activation registered earlier under the same name.

    Returns
    -------
    Activation
        The registered activation.

    Raises
    ------
    ActivationError
        If the function is not C², the NumPy forms disagree with it, or the name is
        built in or already taken.

    Examples
    --------
    >>> import sympy as sp
    >>> register_activation(sp.tanh, name="tanh")
    Traceback (most recent call last):
    ...
    cognitive_action.errors.ActivationError: 'tanh' is a built-in activation. Fix: \
register yours under another name
    """
    if isinstance(spec, Activation):
        if value is not None or derivative is not None:
            raise ActivationError("value/derivative given with an Activation",
                                  fix="pass them to Activation(...) instead")
        act = spec if name is None or name == spec.name else Activation(
            name, spec.function, spec.value, spec.derivative)
    elif callable(spec):
        act = Activation(name or getattr(spec, "__name__", "sigma"), spec, value, derivative)
    else:
        raise ActivationError(f"cannot register {spec!r} as an activation",
                              fix="pass an Activation or a callable on SymPy expressions")
    if act.name in _BUILTINS:
        raise ActivationError(f"{act.name!r} is a built-in activation",
                              fix="register yours under another name")
    if act.name in _REGISTRY and not replace:
        raise ActivationError(f"an activation {act.name!r} is already registered",
                              fix="use another name, or pass replace=True")
    if not act.name.isidentifier():
        raise ActivationError(f"activation name {act.name!r} is not an identifier",
                              fix="use a name such as 'swish' (problem files refer to it)")
    _REGISTRY[act.name] = act
    return act


def unregister_activation(name: str) -> None:
    """Forget an activation registered with :func:`register_activation`.

    Raises
    ------
    ActivationError
        For a built-in or unknown name.
    """
    if name in _BUILTINS or name not in _REGISTRY:
        raise ActivationError(f"{name!r} is not a registered activation",
                              fix="built-in activations cannot be removed")
    del _REGISTRY[name]


def activation(spec: str | Activation | Callable[[Any], Any]) -> Activation:
    """Resolve an activation given by name, as an :class:`Activation`, or as a callable.

    Raises
    ------
    ActivationError
        For an unknown name or a function that is not C².
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        try:
            return _REGISTRY[spec]
        except KeyError:
            raise ActivationError(
                f"unknown activation {spec!r}",
                fix=f"use one of {', '.join(sorted(_REGISTRY))}, or pass "
                "Activation(name, function) for a C² function of your own "
                "(register_activation makes it known by name)",
            ) from None
    if callable(spec):
        return Activation(getattr(spec, "__name__", "sigma"), spec)
    raise ActivationError(f"cannot use {spec!r} as an activation",
                          fix="pass a name, an Activation or a callable")
