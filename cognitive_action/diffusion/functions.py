"""Numeric activations σ, their derivatives σ', and output losses V for Section 2.

The time-delay model (1) applies ``σ`` elementwise; the backward wave (the system after
eq. 2) multiplies by ``σ'``; the output delta needs ``∂V/∂x_L``. These are plain NumPy
versions; the symbolic activations of the declare stage live in
:mod:`cognitive_action.declare`.

Examples
--------
>>> import numpy as np
>>> act = get_activation("logistic")
>>> float(act.f(0.0)), float(act.df(0.0))
(0.5, 0.25)
>>> get_loss("squared").grad(np.array([1.0, 2.0]), np.array([0.5, 2.0]))
array([0.5, 0. ])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cognitive_action.errors import ActivationError, DeclarationError

__all__ = ["Activation", "Loss", "ACTIVATIONS", "LOSSES", "get_activation", "get_loss"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Activation:
    """An elementwise activation with its derivative.

    Attributes
    ----------
    name
        Name used in reports.
    f
        ``σ(a)``, elementwise.
    df
        ``σ'(a)``, elementwise.
    """

    name: str
    f: Callable[[Array], Array]
    df: Callable[[Array], Array]


def _logistic(a: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # overflow-free form of 1/(1+e^{-a})


def _dlogistic(a: Array) -> Array:
    s = _logistic(a)
    return s * (1.0 - s)


def _softplus(a: Array) -> Array:
    return np.logaddexp(0.0, a)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", np.tanh, lambda a: 1.0 - np.tanh(a) ** 2),
    "logistic": Activation("logistic", _logistic, _dlogistic),
    "identity": Activation("identity", lambda a: np.asarray(a, dtype=float) * 1.0,
                           lambda a: np.ones_like(a, dtype=float)),
    "softplus": Activation("softplus", _softplus, _logistic),
}


@dataclass(frozen=True)
class Loss:
    """A per-frame output loss ``V(x_L, y)`` with its gradient in ``x_L``.

    Attributes
    ----------
    name
        Name used in reports.
    value
        ``V(x, y)``, summed over the last axis.
    grad
        ``∂V/∂x``, same shape as ``x``.
    """

    name: str
    value: Callable[[Array, Array], Array]
    grad: Callable[[Array, Array], Array]


LOSSES: dict[str, Loss] = {
    # V = ½‖x − y‖²: the usual regression loss.
    "squared": Loss("squared", lambda x, y: 0.5 * np.sum((x - y) ** 2, axis=-1),
                    lambda x, y: x - y),
    # V = −yᵀx: a correlation loss whose gradient does not depend on the output.
    "linear": Loss("linear", lambda x, y: -np.sum(x * y, axis=-1),
                   lambda x, y: -np.broadcast_to(y, np.shape(x)).astype(float)),
}


def get_activation(activation: str | Activation) -> Activation:
    """Look an activation up by name, or pass an :class:`Activation` through.

    Raises
    ------
    ActivationError
        For an unknown name.

    Examples
    --------
    >>> get_activation("relu")
    Traceback (most recent call last):
    ...
    cognitive_action.errors.ActivationError: unknown activation 'relu'. Fix: use one of \
identity, logistic, softplus, tanh, or pass Activation(name, f, df)
    """
    if isinstance(activation, Activation):
        return activation
    try:
        return ACTIVATIONS[activation]
    except KeyError:
        raise ActivationError(
            f"unknown activation {activation!r}",
            fix=f"use one of {', '.join(sorted(ACTIVATIONS))}, or pass Activation(name, f, df)",
        ) from None


def get_loss(loss: str | Loss) -> Loss:
    """Look a loss up by name (``"squared"``, ``"linear"``), or pass a :class:`Loss`.

    Raises
    ------
    DeclarationError
        For an unknown name.
    """
    if isinstance(loss, Loss):
        return loss
    try:
        return LOSSES[loss]
    except KeyError:
        raise DeclarationError(
            f"unknown loss {loss!r}",
            fix=f"use one of {', '.join(sorted(LOSSES))}, or pass Loss(name, value, grad)",
        ) from None
